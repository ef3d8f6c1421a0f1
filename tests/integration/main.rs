//! kiln's integration tests: one test binary, a module per command.

mod bench;
mod boot;
mod escape;
mod fetch;
mod flash;
mod hostile;
mod image;
mod lock;
mod maker;
mod pack;
mod util;
