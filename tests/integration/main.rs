//! kiln's integration tests: one test binary, a module per command.

mod boot;
mod fetch;
mod maker;
mod pack;
mod util;
