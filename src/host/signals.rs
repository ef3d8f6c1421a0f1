//! SIGINT, SIGTERM and SIGHUP, taken by one thread instead of killing kiln mid-write.

use nix::sys::signal::{SigSet, Signal};

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and so in every thread started
/// after it; children get a clean mask from `std::process`) and runs `then` with the
/// signal's number on a thread that waits for them. Call it first thing in `main`.
pub fn watch(then: impl FnOnce(i32) + Send + 'static) {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    // Without the block, the signals keep their default action: kiln dies at once.
    if set.thread_block().is_ok() {
        std::thread::spawn(move || {
            if let Ok(signal) = set.wait() {
                then(signal as i32);
            }
        });
    }
}
