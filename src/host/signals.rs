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

/// Makes the child `command` starts get SIGKILL from the kernel when kiln dies, even by a
/// signal kiln cannot catch (SIGKILL from a test harness left QEMU running otherwise).
/// The kernel sends it when the spawning *thread* ends: spawn from the thread that lives
/// as long as the child matters (kiln's main thread).
#[allow(unsafe_code)]
pub fn dies_with_kiln(command: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes one prctl(2) system call (through
    // nix's thin wrapper: no allocation, no lock) and builds an io::Error from an errno
    // value on failure, which allocates nothing either.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(|errno| std::io::Error::from_raw_os_error(errno as i32))
        })
    }
}

/// Children that must not outlive kiln (QEMU): their pids, for `terminate_children`.
static CHILDREN: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// A child process kiln waits for; while it lives, a signal to kiln terminates the child
/// too, so an interrupted `kiln boot` never leaves QEMU running.
pub struct Tracked(i32);

pub fn track(child: &std::process::Child) -> Tracked {
    let pid = i32::try_from(child.id()).unwrap_or(0);
    lock_children().push(pid);
    Tracked(pid)
}

impl Drop for Tracked {
    fn drop(&mut self) {
        lock_children().retain(|pid| *pid != self.0);
    }
}

fn lock_children() -> std::sync::MutexGuard<'static, Vec<i32>> {
    // A panic elsewhere leaves the list whole: a poisoned lock is still usable.
    CHILDREN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Ends every tracked child; what a signal handler calls before kiln exits. SIGTERM
/// first, then SIGKILL after half a second: QEMU 10 was seen to ignore SIGTERM, SIGHUP
/// and SIGINT once the guest had booted to its login prompt.
pub fn terminate_children() {
    let pids: Vec<nix::unistd::Pid> = std::mem::take(&mut *lock_children())
        .into_iter()
        .filter(|pid| *pid > 0)
        .map(nix::unistd::Pid::from_raw)
        .collect();
    for pid in &pids {
        let _ = nix::sys::signal::kill(*pid, Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    for pid in &pids {
        // Our own child: it stays a zombie (signal 0 succeeds) until kiln reaps or exits.
        while std::time::Instant::now() < deadline && alive(*pid) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(*pid, Signal::SIGKILL);
    }
}

/// Whether a child still runs (not yet a zombie).
fn alive(pid: nix::unistd::Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(after != 'Z')
        })
        .unwrap_or(false)
}
