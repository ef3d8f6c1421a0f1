//! `kiln boot --then`: what kiln adds to (a copy of) the image so the host can power the
//! guest off once its command ran: a service listening on a forwarded port that sends
//! pid 1 SIGUSR1 (s6-linux-init's power-off) when anyone connects.

use crate::rootfs::Additions;
use crate::tree::ArchivePath;

/// The guest port the power-off listener takes; kiln forwards a free host port to it.
pub const GUEST_PORT: u16 = 5999;

pub fn additions() -> Additions {
    let path = |text: &str| ArchivePath::new(text).expect("a valid constant path");
    let run = format!(
        "#!/bin/sh\n\
         # kiln boot --then: a connection to this port powers the guest off (SIGUSR1 to pid 1).\n\
         exec nc -l -p {GUEST_PORT} -e /etc/kiln/then-poweroff\n"
    );
    let poweroff =
        "#!/bin/sh\necho \"kiln: --then done, powering off\" > /dev/console\nexec kill -USR1 1\n";
    Additions {
        stage2: None,
        files: vec![
            (path("etc/s6/services/kiln-then/run"), run),
            (path("etc/kiln/then-poweroff"), poweroff.to_string()),
        ],
        cmdline: Vec::new(),
    }
}
