//! The QEMU command line, pure: the board and the artifacts give the argv, golden-tested
//! per board in `tests/data/qemu/`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::config::boot::Firmware;
use crate::config::{Board, Drive};

/// What QEMU boots.
pub struct Artifacts {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub dtb: Option<PathBuf>,
    /// The kernel command line instead of the board's (a card's cmdline.txt).
    pub cmdline: Option<String>,
    /// A card or disk image, attached as the board's drive.
    pub disk: Option<(PathBuf, Drive)>,
}

/// The QEMU program for an arch.
pub fn binary(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "qemu-system-x86_64",
        Arch::Aarch64 => "qemu-system-aarch64",
        Arch::Armv7 => "qemu-system-arm",
    }
}

/// The QEMU command line: machine, cpu, memory, serial console on stdio, no reboot (so a
/// reboot or a panic with `panic=-1` ends QEMU), no default NIC (its option ROM is not
/// installed without recommends), kernel, initrd, dtb, and the kernel command line.
pub fn command(
    board: &Board,
    artifacts: &Artifacts,
    append: Option<&str>,
    accel: &str,
) -> Vec<OsString> {
    let mut argv = machine(board, accel);
    argv.push("-kernel".into());
    argv.push(artifacts.kernel.clone().into());
    if let Some(initrd) = &artifacts.initrd {
        argv.push("-initrd".into());
        argv.push(initrd.clone().into());
    }
    if let Some(dtb) = &artifacts.dtb {
        argv.push("-dtb".into());
        argv.push(dtb.clone().into());
    }
    if let Some((disk, drive)) = &artifacts.disk {
        argv.extend(drive_args(disk, *drive));
    }
    let mut cmdline = artifacts
        .cmdline
        .clone()
        .unwrap_or_else(|| board.kernel.cmdline.clone());
    if !cmdline
        .split_whitespace()
        .any(|word| word.starts_with("panic="))
    {
        cmdline.push_str(" panic=-1");
    }
    if let Some(append) = append {
        cmdline.push(' ');
        cmdline.push_str(append);
    }
    argv.push("-append".into());
    argv.push(cmdline.into());
    argv
}

/// The machine firmware QEMU runs for a chain, when it is not the card's own or QEMU's
/// default (SeaBIOS): a file of a Debian host package (`ci/install-qemu` installs them).
pub fn machine_firmware(board: &Board, firmware: Firmware) -> Option<(&'static str, &'static str)> {
    match (firmware, board.arch) {
        (Firmware::Uefi, Arch::X86_64) => Some(("/usr/share/ovmf/OVMF.fd", "ovmf")),
        (Firmware::Uefi, Arch::Aarch64) => Some((
            "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
            "qemu-efi-aarch64",
        )),
        // U-Boot on the card is the board's (its boot ROM loads it); else it is the
        // virt machine's firmware.
        (Firmware::UBoot, arch) if uboot_on_card(board).is_none() => match arch {
            Arch::Armv7 => Some(("/usr/lib/u-boot/qemu_arm/u-boot.bin", "u-boot-qemu")),
            Arch::Aarch64 => Some(("/usr/lib/u-boot/qemu_arm64/u-boot.bin", "u-boot-qemu")),
            Arch::X86_64 => None,
        },
        _ => None,
    }
}

fn uboot_on_card(board: &Board) -> Option<u64> {
    board
        .boot
        .as_ref()
        .and_then(|boot| boot.uboot.card.as_ref())
        .map(|card| card.offset)
}

/// The QEMU command line of a boot through the firmware: the machine, its firmware
/// (`-bios`) where the chain needs one, and the card; no -kernel, -initrd, -dtb or
/// -append, because the firmware reads all of it from the card.
pub fn firmware_command(
    board: &Board,
    card: &Path,
    firmware: Firmware,
    accel: &str,
) -> Vec<OsString> {
    let mut argv = machine(board, accel);
    if let Some((file, _)) = machine_firmware(board, firmware) {
        argv.push("-bios".into());
        argv.push(file.into());
    }
    argv.extend(drive_args(card, board.qemu.drive));
    argv
}

/// The machine: -M, -cpu, -m, serial console on stdio, no reboot (so a reboot or a
/// panic with `panic=-1` ends QEMU), no default NIC, the accelerator, the board's extras.
fn machine(board: &Board, accel: &str) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![binary(board.arch).into()];
    let mut push = |items: &[&str]| argv.extend(items.iter().map(OsString::from));
    push(&["-M", &board.qemu.machine]);
    if let Some(cpu) = &board.qemu.cpu {
        push(&["-cpu", cpu]);
    }
    push(&[
        "-m",
        &board.qemu.memory,
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
    ]);
    if !board.qemu.extra.iter().any(|arg| arg == "-accel") {
        push(&["-accel", accel]);
    }
    let extra: Vec<&str> = board.qemu.extra.iter().map(String::as_str).collect();
    push(&extra);
    argv
}

/// A card or disk image as the board's drive.
fn drive_args(disk: &Path, drive: Drive) -> [OsString; 2] {
    // QEMU's option syntax doubles a comma inside a value.
    let file = disk.display().to_string().replace(',', ",,");
    let interface = drive.name();
    [
        "-drive".into(),
        format!("file={file},if={interface},format=raw").into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The argv of every shipped board against `tests/data/qemu/<board>.args`.
    #[test]
    fn qemu_command_lines_match_their_goldens() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for name in [
            "qemu-x86_64",
            "qemu-aarch64",
            "qemu-armv7",
            "raspberrypi3-64",
            "orangepi-pc",
            "cubieboard",
        ] {
            let board = Board::load(&root.join(format!("board-configs/{name}.toml"))).unwrap();
            let mut artifacts = Artifacts {
                kernel: PathBuf::from("KERNEL"),
                initrd: Some(PathBuf::from("INITRD")),
                dtb: board.kernel.dtb.as_ref().map(|_| PathBuf::from("DTB")),
                cmdline: None,
                disk: None,
            };
            let text = |artifacts: &Artifacts| {
                command(&board, artifacts, None, "tcg")
                    .iter()
                    .map(|arg| arg.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("\n")
                    + "\n"
            };
            expect_test::expect_file![root.join(format!("tests/data/qemu/{name}.args"))]
                .assert_eq(&text(&artifacts));
            // Booting the card: its cmdline.txt and the image as the board's drive.
            artifacts.cmdline = Some("CMDLINE.TXT".to_string());
            artifacts.disk = Some((PathBuf::from("out/a,b.img"), board.qemu.drive));
            expect_test::expect_file![root.join(format!("tests/data/qemu/{name}.disk.args"))]
                .assert_eq(&text(&artifacts));
            // Booting the card through each firmware chain it carries.
            // (The Pi's GPU stage is emulated with -kernel: the disk.args form.)
            for firmware in board
                .boot
                .iter()
                .flat_map(|boot| &boot.firmware)
                .filter(|firmware| **firmware != Firmware::Pi)
            {
                let argv = firmware_command(&board, Path::new("out/a,b.img"), *firmware, "tcg");
                let text = argv
                    .iter()
                    .map(|arg| arg.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("\n")
                    + "\n";
                expect_test::expect_file![
                    root.join(format!("tests/data/qemu/{name}.{}.args", firmware.name()))
                ]
                .assert_eq(&text);
            }
        }
    }
}

/// `[qemu] nic` for the machine's built-in NIC.
pub const ON_BOARD: &str = "on-board";

/// `--forward HOSTPORT:GUESTPORT`, both 1 to 65535.
pub fn parse_forward(text: &str) -> Result<(u16, u16), String> {
    let parsed = text.split_once(':').and_then(|(host, guest)| {
        let host: u16 = host.parse().ok().filter(|p| *p > 0)?;
        let guest: u16 = guest.parse().ok().filter(|p| *p > 0)?;
        Some((host, guest))
    });
    parsed.ok_or_else(|| {
        format!("--forward {text:?}: give HOSTPORT:GUESTPORT, ports from 1 to 65535, e.g. 8080:80")
    })
}

/// A TCP port on 127.0.0.1 nobody listens on now (the OS picks it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// Replaces `-nic none` with QEMU user networking through `nic`, forwarding each
/// (host, guest) TCP port from 127.0.0.1 only; `romfile=` because Debian's QEMU has the
/// NIC option ROMs only with recommends, and a `-kernel` boot needs none.
/// `on-board` is the machine's own NIC (e.g. the H3's EMAC on orangepi-pc), which only
/// `-nic` reaches.
pub fn add_network(argv: &mut Vec<OsString>, nic: &str, forwards: &[(u16, u16)]) {
    let mut user = "user".to_string();
    if nic != ON_BOARD {
        user.push_str(",id=kiln0");
    }
    for (host, guest) in forwards {
        user.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
    }
    let args: Vec<OsString> = if nic == ON_BOARD {
        vec!["-nic".into(), user.into()]
    } else {
        let mut device = format!("{nic},netdev=kiln0");
        if nic.ends_with("-pci") {
            device.push_str(",romfile=");
        }
        vec![
            "-netdev".into(),
            user.into(),
            "-device".into(),
            device.into(),
        ]
    };
    if let Some(at) = argv
        .windows(2)
        .position(|pair| pair[0] == "-nic" && pair[1] == "none")
    {
        argv.splice(at..at + 2, args);
    } else {
        argv.extend(args);
    }
}

#[cfg(test)]
mod network_tests {
    use super::*;

    #[test]
    fn forwards_parse_and_network_replaces_no_nic() {
        assert_eq!(parse_forward("8080:80"), Ok((8080, 80)));
        for bad in ["8080", "0:80", "8080:70000", "a:b", ":80", "8080:80:1"] {
            assert!(
                parse_forward(bad)
                    .unwrap_err()
                    .contains("HOSTPORT:GUESTPORT"),
                "{bad}"
            );
        }
        let mut argv: Vec<OsString> = ["qemu", "-nic", "none", "-kernel", "K"]
            .map(OsString::from)
            .to_vec();
        add_network(&mut argv, "virtio-net-pci", &[(2222, 22), (8080, 80)]);
        assert_eq!(
            argv,
            [
                "qemu",
                "-netdev",
                "user,id=kiln0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:8080-:80",
                "-device",
                "virtio-net-pci,netdev=kiln0,romfile=",
                "-kernel",
                "K"
            ]
            .map(OsString::from)
        );
        let mut argv: Vec<OsString> = ["qemu", "-nic", "none"].map(OsString::from).to_vec();
        add_network(&mut argv, ON_BOARD, &[(2222, 22)]);
        assert_eq!(
            argv,
            ["qemu", "-nic", "user,hostfwd=tcp:127.0.0.1:2222-:22"].map(OsString::from)
        );
    }
}
