//! The build host, in one place: temporary outputs renamed into place, scratch
//! directories, progress on a terminal, and finding and running host tools.
//!
//! Everything else that writes an output goes through `temp`, everything that draws
//! progress through `progress`, and everything that spawns a tool (other than QEMU,
//! whose console `boot::console` watches) through `tool`; `signals` takes SIGINT,
//! SIGTERM and SIGHUP so `temp` can clean up.

pub mod apt;
pub mod input;
pub mod progress;
pub mod signals;
pub mod temp;
pub mod tool;
