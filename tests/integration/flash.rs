//! `kiln flash` (issue 6): against regular files, the running system's disk (refused,
//! and run unprivileged so even a bug could not write it), and a loop device when the
//! test can make one. Never a real disk.

use std::fs;
use std::process::Command;

use crate::util::{KILN, Scratch, is_root, run, s, stderr};

fn image(scratch: &Scratch, len: usize) -> std::path::PathBuf {
    let path = scratch.join("card.img");
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn flash_to_a_file_reads_back_and_matches() {
    let scratch = Scratch::new("flash-file");
    let image = image(&scratch, 3 << 20);
    let target = scratch.join("out.img");
    let output = run(["flash", s(&image), s(&target)]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("synced, read back: CRC-32"),
        "{}",
        stderr(&output)
    );
    assert!(fs::read(&image).unwrap() == fs::read(&target).unwrap());
}

#[test]
fn flash_refuses_the_running_systems_disk() {
    let scratch = Scratch::new("flash-root");
    let image = image(&scratch, 4096);
    let source = Command::new("findmnt")
        .args(["-no", "SOURCE", "/"])
        .output();
    let Some(device) = source
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|dev| dev.starts_with("/dev/") && std::path::Path::new(dev).exists())
    else {
        crate::util::skip("the root filesystem is not on a block device here");
        return;
    };
    // Unprivileged (see util::kiln): even a broken check could not write the disk.
    let output = run(["flash", "--yes", "--force", s(&image), &device]);
    assert_eq!(output.status.code(), Some(100), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("it holds the running system's root filesystem"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn flash_to_a_loop_device_checks_size_and_removability() {
    if !is_root() {
        crate::util::skip("making a loop device needs root");
        return;
    }
    let scratch = Scratch::new("flash-loop");
    let backing = scratch.join("backing");
    fs::File::create(&backing)
        .unwrap()
        .set_len(2 << 20)
        .unwrap();
    let made = Command::new("losetup")
        .args(["-f", "--show", s(&backing)])
        .output();
    let Some(loop_device) = made
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    else {
        crate::util::skip("no loop device could be made here");
        return;
    };
    let detach = || {
        let _ = Command::new("losetup").args(["-d", &loop_device]).status();
    };
    let too_big = image(&scratch, 3 << 20);
    let output = Command::new(KILN)
        .args(["flash", "--yes", "--force", s(&too_big), &loop_device])
        .output()
        .unwrap();
    let refused_size = stderr(&output);
    let fits = scratch.join("small.img");
    fs::write(&fits, vec![0x5a; 1 << 20]).unwrap();
    let not_removable = Command::new(KILN)
        .args(["flash", "--yes", s(&fits), &loop_device])
        .output()
        .unwrap();
    let forced = Command::new(KILN)
        .args(["flash", "--yes", "--force", s(&fits), &loop_device])
        .output()
        .unwrap();
    let written = fs::read(&backing).unwrap();
    detach();
    assert_eq!(output.status.code(), Some(100), "{refused_size}");
    assert!(
        refused_size.contains("it holds 2097152 bytes, the image 3145728"),
        "{refused_size}"
    );
    assert_eq!(
        not_removable.status.code(),
        Some(100),
        "{}",
        stderr(&not_removable)
    );
    assert!(
        stderr(&not_removable).contains("is not a removable disk"),
        "{}",
        stderr(&not_removable)
    );
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert!(written[..1 << 20].iter().all(|&b| b == 0x5a));
    assert!(written[1 << 20..].iter().all(|&b| b == 0));
}
