//! `kiln image` (issue 6): card and disk images made unprivileged, read back with
//! e2fsprogs (not kiln) and compared entry by entry with the tar rootfs of the same board;
//! bad layouts refused before anything is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Scratch, s, stderr};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The partitions of an image as (start, size) in bytes, read by sfdisk.
fn partitions(image: &Path) -> Vec<(u64, u64)> {
    let output = Command::new("/usr/sbin/sfdisk")
        .arg("--dump")
        .arg(image)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(" : ").map(|(_, fields)| fields.to_string()))
        .map(|fields| {
            let number = |name: &str| -> u64 {
                fields
                    .split(',')
                    .find_map(|field| field.trim().strip_prefix(name))
                    .and_then(|rest| rest.trim_start().strip_prefix('='))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            };
            (number("start") * 512, number("size") * 512)
        })
        .collect()
}

/// Runs debugfs commands on the filesystem at `at` (`IMAGE?offset=N`); returns each
/// command with the lines it printed.
fn debugfs(at: &str, commands: &[String], scratch: &Scratch) -> Vec<(String, Vec<String>)> {
    let file = scratch.write("debugfs.cmds", &(commands.join("\n") + "\n"));
    let output = Command::new("/usr/sbin/debugfs")
        .arg("-f")
        .arg(&file)
        .arg(at)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        match line.strip_prefix("debugfs: ") {
            Some(command) => sections.push((command.to_string(), Vec::new())),
            None => sections.last_mut().unwrap().1.push(line.to_string()),
        }
    }
    sections
}

/// The ext4 filesystem at `offset` as `kiln ls --manifest` prints a tree: modes, owners,
/// device numbers and inode sharing from debugfs, contents and symlink targets from its
/// `rdump`, whose file and directory times are checked on the way. lost+found, which
/// every ext4 has, is left out.
fn ext4_manifest(image: &Path, offset: u64, scratch: &Scratch) -> String {
    let at = format!("{}?offset={offset}", s(image));
    // (path, inode, mode, uid, gid), level by level.
    let mut entries: Vec<(String, u64, u32, u32, u32)> = Vec::new();
    let mut level = vec![String::new()];
    while !level.is_empty() {
        let commands: Vec<String> = level
            .iter()
            .map(|dir| format!("ls -p \"{}/\"", dir))
            .collect();
        let mut next = Vec::new();
        for ((_, lines), dir) in debugfs(&at, &commands, scratch).iter().zip(&level) {
            for line in lines.iter().filter(|line| !line.is_empty()) {
                // /ino/mode/uid/gid/name/size/
                let fields: Vec<&str> = line.split('/').collect();
                let name = fields[5];
                if name == "." || name == ".." || (dir.is_empty() && name == "lost+found") {
                    continue;
                }
                let path = format!("{dir}/{name}");
                let mode = u32::from_str_radix(fields[2], 8).unwrap();
                if mode & 0o170000 == 0o040000 {
                    next.push(path.clone());
                }
                entries.push((
                    path,
                    fields[1].parse().unwrap(),
                    mode,
                    fields[3].parse().unwrap(),
                    fields[4].parse().unwrap(),
                ));
            }
        }
        level = next;
    }
    entries.sort();
    let dump = scratch.join(&format!(
        "rdump-{}",
        image.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(&dump).unwrap();
    debugfs(&at, &[format!("rdump / {}", s(&dump))], scratch);
    let nodes: Vec<String> = entries
        .iter()
        .filter(|entry| matches!(entry.2 & 0o170000, 0o020000 | 0o060000))
        .map(|entry| format!("stat \"{}\"", entry.0))
        .collect();
    let mut numbers = BTreeMap::new();
    for (command, lines) in debugfs(&at, &nodes, scratch) {
        let path = command
            .trim_start_matches("stat ")
            .trim_matches('"')
            .to_string();
        let found = lines
            .iter()
            .find_map(|line| line.strip_prefix("Device major/minor number: "))
            .unwrap();
        let (major, minor) = found
            .split_whitespace()
            .next()
            .unwrap()
            .split_once(':')
            .unwrap();
        numbers.insert(
            path,
            (major.parse::<u32>().unwrap(), minor.parse::<u32>().unwrap()),
        );
    }
    let mut first_name: BTreeMap<u64, String> = BTreeMap::new();
    let mut out = String::new();
    for (raw_path, inode, mode, uid, gid) in &entries {
        // As `kiln ls --manifest` writes names: quoted where a list word cannot carry
        // them plainly (these test names need only the space rule).
        let quoted = list_word(raw_path);
        let path = &quoted;
        let meta = format!("{:04o} {uid} {gid}", mode & 0o7777);
        let host = dump.join(raw_path.trim_start_matches('/'));
        let line = match mode & 0o170000 {
            0o040000 => {
                assert_eq!(mtime(&host), 946_684_800, "{path}: its time");
                format!("dir {path} {meta}")
            }
            0o100000 => match first_name.get(inode) {
                Some(first) => format!("link {path} {meta} {first}"),
                None => {
                    first_name.insert(*inode, quoted.clone());
                    assert_eq!(mtime(&host), 946_684_800, "{path}: its time");
                    let bytes = std::fs::read(&host).unwrap();
                    let mut crc = flate2::Crc::new();
                    crc.update(&bytes);
                    format!("file {path} {meta} {} {:08x}", bytes.len(), crc.sum())
                }
            },
            0o120000 => format!(
                "slink {path} {meta} {}",
                std::fs::read_link(&host).unwrap().display()
            ),
            0o020000 | 0o060000 => {
                let letter = if mode & 0o170000 == 0o020000 {
                    'c'
                } else {
                    'b'
                };
                let (major, minor) = numbers[raw_path];
                format!("nod {path} {meta} {letter} {major} {minor}")
            }
            0o010000 => format!("pipe {path} {meta}"),
            other => panic!("{path}: unexpected type {other:o}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A name as a gen_init_cpio list word: plain, or in double quotes when it holds
/// whitespace, a quote or a backslash (the names these tests make hold nothing else).
fn list_word(name: &str) -> String {
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        name.to_string()
    }
}

/// A file's mtime in seconds: rdump keeps the inode's times, and every one must be the
/// image's (2000-01-01 without SOURCE_DATE_EPOCH).
fn mtime(path: &Path) -> u64 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A board beyond the shipped ones: hard links, block and char devices with group owners,
/// a setuid file, a home owned by a user, and a GPT table.
fn test_board(scratch: &Scratch) -> PathBuf {
    let overlay = scratch.join("overlay");
    for dir in ["usr/bin", "home/user", "srv"] {
        std::fs::create_dir_all(overlay.join(dir)).unwrap();
    }
    std::fs::write(overlay.join("usr/bin/suidtest"), "#!/bin/sh\nid\n").unwrap();
    std::fs::write(overlay.join("home/user/notes"), "mine\n").unwrap();
    std::fs::write(overlay.join("srv/data"), "shared\n").unwrap();
    std::fs::hard_link(overlay.join("srv/data"), overlay.join("srv/data-link")).unwrap();
    std::fs::write(overlay.join("srv/with space"), "spaces\n").unwrap();
    // Boot-partition files from a host directory, with a subdirectory.
    std::fs::create_dir_all(scratch.join("firmware/overlays")).unwrap();
    std::fs::write(scratch.join("firmware/fw.cfg"), "option=1\n").unwrap();
    std::fs::write(scratch.join("firmware/overlays/a.dtbo"), "dtbo\n").unwrap();
    scratch.write(
        "devices.txt",
        "/dev/mmcblk0 b 660 0 6 179 0 - - -\n/dev/ttyS0 c 660 0 20 4 64 - - -\n/dev/zero c 666 0 0 1 5 - - -\n",
    );
    scratch.write(
        "image-test.toml",
        &format!(
            r#"name = "image-test"
inherit = "{ROOT}/board-configs/qemu-x86_64.toml"
devices = ["devices.txt"]

[[users]]
name = "root"
uid = 0
gid = 0

[[users]]
name = "log"
uid = 70
gid = 70

[[users]]
name = "user"
uid = 1000
gid = 1000

[[overlays]]
source = "{ROOT}/initramfs"

[[overlays]]
source = "overlay"
[overlays.files]
"/usr/bin/suidtest" = {{ mode = "4755" }}
"/home/user" = {{ mode = "0700", uid = 1000, gid = 1000 }}
"/home/user/notes" = {{ mode = "0600", uid = 1000, gid = 1000 }}

[image]
table = "gpt"

[[image.partitions]]
label = "BOOT"
filesystem = "fat32"
contents = "boot"
size = "64M"
files = ["busybox-static:bin/busy*", "firmware"]

[[image.partitions]]
label = "rootfs"
filesystem = "ext4"
contents = "root"
"#
        ),
    )
}

fn enabled() -> bool {
    crate::util::network_tests_with(
        "image tests download packages",
        &[
            "apt-get", "sfdisk", "debugfs", "e2fsck", "mkfs.fat", "fsck.fat", "mcopy", "mdir",
        ],
    )
}

/// What `image_reads_back_as_built` made and read: the first image, the boot partition's
/// offset and the root partition's manifest.
struct Checked {
    image: PathBuf,
    boot_start: u64,
    ext4: String,
}

/// `kiln image BOARD` twice, unprivileged (see `util::kiln`), with the shared package cache:
/// the two images are identical, hold two partitions, a clean FAT32 boot partition with the
/// boot files and `boot_files`, and a clean ext4 root equal entry by entry to the board's tar
/// rootfs, with the init's console, fifo and log directory as built.
fn image_reads_back_as_built(scratch: &Scratch, board: &Path, boot_files: &[&str]) -> Checked {
    let cache = crate::util::shared_cache();
    let name = board.file_stem().unwrap().to_string_lossy().into_owned();
    let kiln = |args: &[&str]| {
        let output = crate::util::kiln()
            .env("KILN_CACHE", &cache)
            .current_dir(&scratch.path)
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        stderr(&output)
    };
    let images: Vec<PathBuf> = ["a", "b"]
        .iter()
        .map(|round| scratch.join(&format!("{name}-{round}.img")))
        .collect();
    let mut report = String::new();
    for image in &images {
        report = kiln(&["image", s(board), "-o", s(image)]);
    }
    let seconds = report
        .lines()
        .find_map(|line| line.strip_prefix("kiln: image built in "))
        .unwrap_or_else(|| panic!("{name}: no build time in\n{report}"));
    eprintln!("{name}: image built in {seconds} (second, warm run)\n{report}");
    let (first, second) = (
        std::fs::read(&images[0]).unwrap(),
        std::fs::read(&images[1]).unwrap(),
    );
    assert!(first == second, "{name}: two images differ");
    let table = partitions(&images[0]);
    assert_eq!(table.len(), 2, "{name}: {table:?}");
    let (root_start, _) = table[1];
    let fsck = Command::new("/usr/sbin/e2fsck")
        .arg("-fn")
        .arg(format!("{}?offset={root_start}", s(&images[0])))
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{name}: e2fsck: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        stderr(&fsck)
    );

    // The boot partition: a clean FAT32 with the boot files.
    let (boot_start, boot_size) = table[0];
    let fat = scratch.join("boot.fat");
    std::fs::write(
        &fat,
        &first[boot_start as usize..(boot_start + boot_size) as usize],
    )
    .unwrap();
    let check = Command::new("fsck.fat")
        .arg("-n")
        .arg(&fat)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{name}: fsck.fat: {}",
        stderr(&check)
    );
    let listing = mdir(&images[0], boot_start, "::/");
    for file in ["::/vmlinuz", "::/initrd.img", "::/cmdline.txt"]
        .iter()
        .chain(boot_files)
    {
        assert!(listing.contains(file), "{name}: no {file} in\n{listing}");
    }

    // The root partition equals the board's tar rootfs, entry by entry.
    let tar_dir = scratch.join(&format!("{name}-tar"));
    kiln(&["build", s(board), "--format", "tar", "-o", s(&tar_dir)]);
    let expected = crate::util::ok(["ls", "--manifest", s(&tar_dir.join(format!("{name}.tar")))]);
    let got = ext4_manifest(&images[0], root_start, scratch);
    if got != expected {
        let (want, have): (Vec<&str>, Vec<&str>) =
            (expected.lines().collect(), got.lines().collect());
        let missing: Vec<&&str> = want
            .iter()
            .filter(|line| !have.contains(line))
            .take(10)
            .collect();
        let extra: Vec<&&str> = have
            .iter()
            .filter(|line| !want.contains(line))
            .take(10)
            .collect();
        panic!(
            "{name}: the ext4 differs from the tar rootfs\nonly in tar: {missing:#?}\nonly in ext4: {extra:#?}"
        );
    }
    for line in [
        "nod /dev/console 0600 0 0 c 5 1",
        "pipe /etc/s6-linux-init/run-image/service/s6-svscan-log/fifo 0600 0 0",
        "dir /etc/s6-linux-init/run-image/uncaught-logs 2700 70 70",
    ] {
        assert!(
            got.lines().any(|have| have == line),
            "{name}: no {line:?} in the ext4"
        );
    }
    Checked {
        image: images[0].clone(),
        boot_start,
        ext4: got,
    }
}

/// mtools' bare listing of `dir` in the FAT at `offset` of `image`.
fn mdir(image: &Path, offset: u64, dir: &str) -> String {
    crate::util::tool(
        "mdir",
        &["-b", "-i", &format!("{}@@{offset}", s(image)), dir],
        None,
    )
}

/// The Pi's SD card, with its firmware config and device tree, is a power of two as QEMU's
/// SD card must be.
#[test]
fn raspberrypi3_64_card_reads_back_as_built() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new("image-rpi3");
    let board = PathBuf::from(format!("{ROOT}/board-configs/raspberrypi3-64.toml"));
    let checked = image_reads_back_as_built(
        &scratch,
        &board,
        &["::/config.txt", "::/bcm2837-rpi-3-b.dtb"],
    );
    let size = std::fs::metadata(&checked.image).unwrap().len();
    assert!(size.is_power_of_two(), "an SD card of {size} bytes");
}

#[test]
fn qemu_x86_64_disk_reads_back_as_built() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new("image-x86_64");
    let board = PathBuf::from(format!("{ROOT}/board-configs/qemu-x86_64.toml"));
    image_reads_back_as_built(&scratch, &board, &[]);
}

/// `test_board`: boot files from a package glob and from a host directory with a
/// subdirectory; hard links, devices with group owners, a setuid file, a user's home and a
/// name with a space on the ext4 of a GPT disk.
#[test]
fn gpt_image_with_links_devices_and_owners_reads_back_as_built() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new("image-gpt");
    let board = test_board(&scratch);
    let checked = image_reads_back_as_built(
        &scratch,
        &board,
        &["::/busybox", "::/fw.cfg", "::/overlays/"],
    );
    let sub = mdir(&checked.image, checked.boot_start, "::/overlays");
    assert!(sub.contains("::/overlays/a.dtbo"), "{sub}");
    let got = &checked.ext4;
    for line in [
        "nod /dev/mmcblk0 0660 0 6 b 179 0",
        "nod /dev/ttyS0 0660 0 20 c 4 64",
        "dir /home/user 0700 1000 1000",
        "link /srv/data-link 0644 0 0 /srv/data",
    ] {
        assert!(
            got.lines().any(|have| have == line),
            "no {line:?} in the ext4:\n{got}"
        );
    }
    assert!(got.contains("file /usr/bin/suidtest 4755 0 0 "), "{got}");
    assert!(got.contains("file \"/srv/with space\" 0644 0 0 "), "{got}");
}

#[test]
fn bad_layouts_are_refused_before_anything_is_written() {
    let scratch = Scratch::new("image-bad");
    let base = format!("name = \"bad\"\ninherit = \"{ROOT}/board-configs/raspberrypi3-64.toml\"\n");
    let cases = [
        (
            "[image]\ntable = \"zfs\"\n",
            "[image] table: unknown partition table \"zfs\": expected mbr or gpt",
        ),
        (
            "[image]\nsize = \"200M\"\n",
            "QEMU's SD card must be a power of two (e.g. 256M)",
        ),
        (
            "[image]\nsize = \"64M\"\n",
            "[image] size 64M: the partitions need",
        ),
        (
            "[[image.partitions]]\nlabel = \"BOOT\"\nfilesystem = \"fat32\"\ncontents = \"boot\"\nsize = \"64M\"\n[[image.partitions]]\nlabel = \"rootfs\"\nfilesystem = \"ext4\"\ncontents = \"root\"\nstart = \"32M\"\n",
            "start 32M overlaps the previous partition, which ends at 65M",
        ),
        (
            "[[image.partitions]]\nlabel = \"rootfs\"\nfilesystem = \"btrfs\"\ncontents = \"root\"\n",
            "unknown filesystem \"btrfs\": expected fat32 or ext4",
        ),
        (
            "[[image.partitions]]\nlabel = \"BOOT\"\nfilesystem = \"fat32\"\ncontents = \"boot\"\nsize = \"32M\"\n[[image.partitions]]\nfilesystem = \"ext4\"\ncontents = \"root\"\n",
            "FAT32 needs at least 64M",
        ),
        (
            "[[image.partitions]]\nfilesystem = \"fat32\"\ncontents = \"root\"\n",
            "the root partition must be ext4",
        ),
        (
            "[qemu]\ndrive = \"floppy\"\n",
            "unknown drive \"floppy\": expected sd or virtio",
        ),
    ];
    for (index, (toml, message)) in cases.iter().enumerate() {
        let board = scratch.write(&format!("bad{index}.toml"), &(base.clone() + toml));
        let image = scratch.join(&format!("bad{index}.img"));
        let output = crate::util::run(["image", s(&board), "-o", s(&image)]);
        assert_eq!(
            output.status.code(),
            Some(100),
            "{toml}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{toml}: wanted {message:?} in {}",
            stderr(&output)
        );
        assert!(stderr(&output).contains(s(&board)), "{}", stderr(&output));
        assert!(!image.exists(), "{toml}: an image was written");
    }
    // A board without [image] says where to describe one.
    let plain = scratch.write(
        "plain.toml",
        "arch = \"x86_64\"\n[qemu]\nmachine = \"q35\"\nconsole = \"ttyS0\"\n",
    );
    let output = crate::util::run(["image", s(&plain), "-o", s(&scratch.join("p.img"))]);
    assert_eq!(output.status.code(), Some(100), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no [image] table"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        scratch
            .names()
            .iter()
            .filter(|n| n.ends_with(".img"))
            .count(),
        0
    );
}

#[test]
fn a_module_the_kernel_package_lacks_is_named() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new("image-module");
    let board = scratch.write(
        "mod.toml",
        &format!(
            "name = \"mod\"\ninherit = \"{ROOT}/board-configs/qemu-x86_64.toml\"\n[[overlays]]\nsource = \"{ROOT}/initramfs\"\n[image]\nmodules = [\"virtio_blk\", \"no_such_module\"]\n"
        ),
    );
    let image = scratch.join("mod.img");
    let output = crate::util::kiln()
        .env("KILN_CACHE", crate::util::shared_cache())
        .args(["image", s(&board), "-o", s(&image)])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(100), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "mod.toml: [image] modules: no module or alias \"no_such_module\" in the kernel package"
        ),
        "{}",
        stderr(&output)
    );
    assert!(!image.exists());
}
