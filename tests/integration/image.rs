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

# A GPT disk boots through UEFI only (bios needs the MBR's boot code).
[boot]
firmware = ["uefi"]

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
            "syslinux", "dpkg-deb",
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
        &[
            "::/config.txt",
            "::/bcm2837-rpi-3-b.dtb",
            "::/bootcode.bin",
            "::/start.elf",
            "::/fixup.dat",
        ],
    );
    let size = std::fs::metadata(&checked.image).unwrap().len();
    assert!(size.is_power_of_two(), "an SD card of {size} bytes");
    // What the GPU firmware reads: kiln's config.txt, naming the card's own files, and the
    // firmware byte for byte from Debian's raspi-firmware (non-free-firmware).
    let fat = |name: &str| fat_file(&checked.image, checked.boot_start, name, &scratch);
    expect_test::expect![[r#"
        # Written by kiln for raspberrypi3-64: the Raspberry Pi firmware reads this.
        arm_64bit=1
        enable_uart=1
        kernel=vmlinuz
        initramfs initrd.img followkernel
        device_tree=bcm2837-rpi-3-b.dtb
    "#]]
    .assert_eq(&String::from_utf8(fat("config.txt")).unwrap());
    for name in ["bootcode.bin", "start.elf", "fixup.dat"] {
        assert_eq!(
            fat(name),
            package_file(
                "arm64",
                "raspi-firmware",
                &format!("usr/lib/raspi-firmware/{name}"),
                &scratch
            ),
            "{name}"
        );
    }
}

#[test]
fn qemu_x86_64_disk_reads_back_as_built() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new("image-x86_64");
    let board = PathBuf::from(format!("{ROOT}/board-configs/qemu-x86_64.toml"));
    let checked = image_reads_back_as_built(
        &scratch,
        &board,
        &["::/syslinux.cfg", "::/EFI", "::/loader"],
    );
    // Both of a PC's ways in, and one command line in every file the firmware reads.
    let fat = |name: &str| fat_file(&checked.image, checked.boot_start, name, &scratch);
    let cmdline = String::from_utf8(fat("cmdline.txt")).unwrap();
    let cmdline = cmdline.trim_end();
    assert_eq!(
        cmdline,
        "console=ttyS0 panic=-1 root=LABEL=rootfs rootfstype=ext4 rootwait rw"
    );
    let syslinux = String::from_utf8(fat("syslinux.cfg")).unwrap();
    assert!(
        syslinux.contains(&format!("\n  APPEND {cmdline}\n")),
        "{syslinux}"
    );
    let entry = String::from_utf8(fat("loader/entries/kiln.conf")).unwrap();
    assert!(entry.contains(&format!("\noptions {cmdline}\n")), "{entry}");
    // BIOS: syslinux's MBR code in the first 440 bytes (the table after it kept), its
    // boot sector in the FAT's (OEM name "SYSLINUX") and ldlinux.sys.
    let image = std::fs::read(&checked.image).unwrap();
    let mbr = std::fs::read("/usr/lib/syslinux/mbr/mbr.bin").unwrap();
    assert_eq!(&image[..mbr.len()], &mbr[..]);
    assert_eq!(&image[510..512], &[0x55, 0xaa]);
    let vbr = &image[checked.boot_start as usize..][..512];
    assert_eq!(&vbr[3..11], b"SYSLINUX");
    let hidden = crate::util::tool(
        "mdir",
        &[
            "-a",
            "-b",
            "-i",
            &format!("{}@@{}", s(&checked.image), checked.boot_start),
            "::/",
        ],
        None,
    );
    assert!(hidden.contains("::/ldlinux.sys"), "{hidden}");
    // UEFI: systemd-boot, byte for byte from the target's systemd-boot-efi.
    assert_eq!(
        fat("EFI/BOOT/BOOTX64.EFI"),
        package_file(
            "amd64",
            "systemd-boot-efi",
            "usr/lib/systemd/boot/efi/systemd-bootx64.efi",
            &scratch
        )
    );
}

/// A file of the FAT at `offset` of `image`, through mtools.
fn fat_file(image: &Path, offset: u64, name: &str, scratch: &Scratch) -> Vec<u8> {
    let dest = scratch.join(&format!("fat-{}", name.replace('/', "-")));
    crate::util::tool(
        "mcopy",
        &[
            "-n",
            "-i",
            &format!("{}@@{offset}", s(image)),
            &format!("::/{name}"),
            s(&dest),
        ],
        None,
    );
    std::fs::read(&dest).unwrap()
}

/// A file of a package kiln fetched into the shared cache, read by dpkg-deb.
fn package_file(arch: &str, package: &str, path: &str, scratch: &Scratch) -> Vec<u8> {
    let dir = crate::util::shared_cache().join("debs").join(arch);
    let deb = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|deb| {
            deb.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{package}_"))
        })
        .unwrap_or_else(|| panic!("no {package} in {}", dir.display()));
    let tree = scratch.join(&format!("deb-{package}"));
    crate::util::tool("dpkg-deb", &["-x", s(&deb), s(&tree)], None);
    std::fs::read(tree.join(path)).unwrap()
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

/// Boot-chain mistakes that only the packages, the kernel or U-Boot's source reveal
/// (issue 12): each exits 100 naming the board file and the key, and writes nothing.
#[test]
fn bad_boot_chains_are_refused_before_anything_is_written() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new("image-bad-boot");
    let blob = scratch.write("spl.bin", &"x".repeat(100_000));
    let cases = [
        (
            "qemu-armv7",
            "[boot.uboot]\nkernel_window = \"1M\"\n".to_string(),
            "[boot.uboot] kernel_window: the kernel is",
        ),
        (
            "raspberrypi3-64",
            "[boot.pi]\npackage = \"kiln-no-such-firmware\"\n".to_string(),
            ": [boot.pi] package) is not available",
        ),
        (
            "orangepi-pc",
            "[boot.uboot]\ndefconfig = \"orangepi_pc_nosuch_defconfig\"\n".to_string(),
            "[boot.uboot] defconfig: u-boot 2023.01",
        ),
        (
            "qemu-armv7",
            format!(
                "[qemu]\nmachine = \"orangepi-pc\"\ndrive = \"sd\"\n[boot.uboot]\noffset = 1000000\nfile = \"{}\"\n",
                s(&blob)
            ),
            "[boot.uboot] offset: DIR/spl.bin (100000 bytes) at byte 1000000 ends at 1100000, past the first partition's start (1048576)",
        ),
    ];
    for (index, (parent, toml, message)) in cases.iter().enumerate() {
        let message = message.replace("DIR", &scratch.path.display().to_string());
        let text =
            format!("name = \"bad\"\ninherit = \"{ROOT}/board-configs/{parent}.toml\"\n{toml}");
        let board = scratch.write(&format!("bad{index}.toml"), &text);
        let image = scratch.join(&format!("bad{index}.img"));
        let output = crate::util::kiln()
            .env("KILN_CACHE", crate::util::shared_cache())
            .current_dir(&scratch.path)
            .args(["image", s(&board), "-o", s(&image)])
            .output()
            .unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(100), "{text}: {err}");
        assert!(err.contains(s(&board)), "{text}: {err}");
        assert!(
            err.contains(&message),
            "{text}: wanted {message:?} in {err}"
        );
        assert!(!image.exists(), "{text}: an image was written");
    }
    let left: Vec<String> = scratch
        .names()
        .into_iter()
        .filter(|name| name.contains(".img") || name.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The Orange Pi card (issues 12 and 14): U-Boot built from Debian's source at byte 8192,
/// the table and partitions after it intact, extlinux.conf naming the board's dtb. The
/// source is pinned: `kiln vendor` copies its files (their SHA-256 as sha256sum gives
/// them, the lock's), and the card built again offline from that directory, in an empty
/// cache (no apt state is ever made, so nothing was downloaded; U-Boot is rebuilt in
/// another directory), is identical. The card's SBOM names the source package, which the
/// U-Boot binary is GENERATED_FROM, and passes the SPDX validator.
#[test]
fn orangepi_pc_card_with_u_boot_from_source_is_reproducible() {
    if !enabled() {
        return;
    }
    let scratch = Scratch::new("image-opi");
    let board = format!("{ROOT}/board-configs/orangepi-pc.toml");
    let shared = crate::util::shared_cache();
    let other = scratch.join("cache");
    std::fs::create_dir_all(&other).unwrap();
    // kiln may run as another user (see util::kiln): the cache is everyone's.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let image = |cache: &Path, name: &str, extra: &[&str]| {
        let output = crate::util::kiln()
            .env("KILN_CACHE", cache)
            .current_dir(&scratch.path)
            .args(["image", "--locked", &board, "-o", s(&scratch.join(name))])
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        eprintln!("{}", stderr(&output));
        std::fs::read(scratch.join(name)).unwrap()
    };
    let mut images = vec![image(&shared, "opi-a.img", &["--cyclonedx"])];
    let vendor = scratch.join("vendor");
    let vendored = crate::util::kiln()
        .env("KILN_CACHE", &shared)
        .args(["vendor", &board, s(&vendor)])
        .output()
        .unwrap();
    assert!(vendored.status.success(), "{}", stderr(&vendored));
    assert!(
        stderr(&vendored).contains(" packages and 1 source package into "),
        "{}",
        stderr(&vendored)
    );
    let check = Command::new("sha256sum")
        .current_dir(&vendor)
        .args(["--check", "--quiet", "SHA256SUMS"])
        .status()
        .unwrap();
    assert!(check.success(), "sha256sum --check SHA256SUMS failed");
    // The lock's [[source]] entry: each file's size and SHA-256, as the tools see them.
    let lock = std::fs::read_to_string(format!("{ROOT}/board-configs/orangepi-pc.lock")).unwrap();
    let (_, source) = lock
        .split_once("\n[[source]]\npackage = \"u-boot\"\n")
        .unwrap();
    let version = source
        .lines()
        .find_map(|line| line.strip_prefix("version = "))
        .unwrap()
        .trim_matches('"');
    let mut pinned = Vec::new();
    for file in source.split("[[source.file]]\n").skip(1) {
        let field = |key: &str| {
            file.lines()
                .find_map(|line| line.strip_prefix(&format!("{key} = ")))
                .unwrap()
                .trim_matches('"')
                .to_string()
        };
        let name = field("name");
        let sum = crate::util::tool("sha256sum", &[s(&vendor.join(&name))], None);
        assert_eq!(sum.split(' ').next().unwrap(), field("sha256"), "{name}");
        let size = std::fs::metadata(vendor.join(&name)).unwrap().len();
        assert_eq!(size.to_string(), field("size"), "{name}");
        pinned.push((name, field("sha256")));
    }
    let names: Vec<&str> = pinned.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("u-boot_{version}.debian.tar.xz"),
            format!("u-boot_{version}.dsc"),
            "u-boot_2023.01+dfsg.orig.tar.xz".to_string()
        ],
        "{source}"
    );
    images.push(image(&other, "opi-b.img", &["--offline", s(&vendor)]));
    assert!(
        !other.join("apt").exists(),
        "the offline build made an apt state"
    );
    assert!(images[0] == images[1], "two Orange Pi cards differ");
    let card = &images[0];
    let built: Vec<PathBuf> = std::fs::read_dir(other.join("u-boot"))
        .unwrap()
        .map(|entry| entry.unwrap().path().join("u-boot-sunxi-with-spl.bin"))
        .filter(|path| path.is_file())
        .collect();
    assert_eq!(built.len(), 1, "{built:?}");
    let spl = std::fs::read(&built[0]).unwrap();
    assert_eq!(&card[8192..8192 + spl.len()], &spl[..]);
    // The eGON header the H3's boot ROM looks for, 4 bytes into the SPL.
    assert_eq!(&spl[4..12], b"eGON.BT0");
    let banner = b"U-Boot SPL 2023.01";
    assert!(spl.windows(banner.len()).any(|window| window == banner));
    // The MBR and the FAT at 1 MiB are untouched by it.
    assert_eq!(&card[510..512], &[0x55, 0xaa]);
    assert_eq!(partitions(&scratch.join("opi-a.img"))[0].0, 1 << 20);
    let conf = fat_file(
        &scratch.join("opi-a.img"),
        1 << 20,
        "extlinux/extlinux.conf",
        &scratch,
    );
    expect_test::expect![[r#"
        # Written by kiln for orangepi-pc: U-Boot's distro boot reads this.
        default kiln
        timeout 0

        label kiln
            kernel /vmlinuz
            initrd /initrd.img
            fdt /sun8i-h3-orangepi-pc.dtb
            append console=ttyS0 panic=-1 nosmp root=LABEL=rootfs rootfstype=ext4 rootwait rw
    "#]]
    .assert_eq(&String::from_utf8(conf).unwrap());
    // The card's SBOM: the source package by its .dsc's SHA-256, the binary made from it.
    let sbom_path = scratch.join("opi-a.img.spdx.json");
    let sbom = std::fs::read_to_string(&sbom_path).unwrap();
    let dsc_sha = &pinned[1].1;
    let source_package = sbom
        .lines()
        .find(|line| line.contains("\"SPDXID\": \"SPDXRef-Source-u-boot\""))
        .unwrap_or_else(|| panic!("no u-boot source package in\n{sbom}"));
    for wanted in [
        format!("\"versionInfo\": \"{version}\""),
        format!("\"checksumValue\": \"{dsc_sha}\""),
        "\"primaryPackagePurpose\": \"SOURCE\"".to_string(),
        "GPL-2.0-or-later".to_string(),
    ] {
        assert!(
            source_package.contains(&wanted),
            "no {wanted} in {source_package}"
        );
    }
    let spl_sha = crate::util::tool("sha256sum", &[s(&built[0])], None);
    let spl_sha = spl_sha.split(' ').next().unwrap();
    assert!(
        sbom.contains(spl_sha),
        "the SBOM lacks the U-Boot binary's SHA-256"
    );
    for (from, kind, to) in [
        (
            "SPDXRef-Built-u-boot-sunxi-with-spl.bin",
            "GENERATED_FROM",
            "SPDXRef-Source-u-boot",
        ),
        (
            "SPDXRef-Image-opi-a.img",
            "CONTAINS",
            "SPDXRef-Built-u-boot-sunxi-with-spl.bin",
        ),
    ] {
        let relationship = format!(
            "{{\"spdxElementId\": \"{from}\", \"relationshipType\": \"{kind}\", \"relatedSpdxElement\": \"{to}\"}}"
        );
        assert!(sbom.contains(&relationship), "no {relationship} in\n{sbom}");
    }
    let valid = Command::new(crate::lock::pyspdxtools())
        .arg("-i")
        .arg(&sbom_path)
        .output()
        .unwrap();
    assert!(
        valid.status.success(),
        "{}{}",
        String::from_utf8_lossy(&valid.stdout),
        stderr(&valid)
    );
    // The CycloneDX SBOM says the same: the binary's pedigree is the source package.
    let cdx_path = scratch.join("opi-a.img.cdx.json");
    let valid = crate::lock::cyclonedx_validator()
        .arg(&cdx_path)
        .output()
        .unwrap();
    assert!(
        valid.status.success(),
        "{}{}",
        String::from_utf8_lossy(&valid.stdout),
        stderr(&valid)
    );
    let cdx = std::fs::read_to_string(&cdx_path).unwrap();
    let binary = cdx
        .lines()
        .find(|line| line.contains("\"bom-ref\": \"SPDXRef-Built-u-boot-sunxi-with-spl.bin\""))
        .unwrap_or_else(|| panic!("no U-Boot binary in\n{cdx}"));
    let (_, pedigree) = binary
        .split_once("\"pedigree\": {\"ancestors\": [")
        .unwrap();
    assert!(
        pedigree.contains(&format!("\"name\": \"u-boot\", \"version\": \"{version}\""))
            && pedigree.contains(dsc_sha.as_str())
            && pedigree.contains(&format!(
                "pkg:deb/debian/u-boot@{}?arch=source",
                version.replace('+', "%2B")
            )),
        "{binary}"
    );
}
