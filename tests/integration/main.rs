//! kiln's integration tests: one test binary, a module per command.

mod pack;
mod util;
