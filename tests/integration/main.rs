//! kiln's integration tests: one test binary, a module per command.

mod maker;
mod pack;
mod util;
