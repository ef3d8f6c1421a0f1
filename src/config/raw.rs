//! Board TOML exactly as written: serde structs with `deny_unknown_fields` and a doc
//! comment on every key. Only these types derive `Deserialize`; `config` turns them
//! into a validated `Board`. README's board-config reference names every field here
//! (a test checks it).

use std::collections::BTreeMap;

use serde::Deserialize;

/// A board config as written. Every field is optional so that a child of `inherit` may
/// say only what differs; `Board::from_raw` insists on what a build needs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBoard {
    /// Board name; defaults to the file name without `.toml`.
    pub name: Option<String>,
    /// A board config this one extends, relative to this file.
    pub inherit: Option<String>,
    /// `x86_64`, `aarch64` or `armv7`.
    pub arch: Option<String>,
    /// The kernel to boot.
    pub kernel: Option<RawKernel>,
    /// How QEMU boots the board.
    pub qemu: Option<RawQemu>,
    /// s6-linux-init-maker options, by name.
    pub init: Option<RawInit>,
    /// Debian packages that make up the userland.
    pub packages: Option<RawPackages>,
    /// Accounts of the image's /etc/passwd.
    pub users: Option<Vec<RawUser>>,
    /// Groups of the image's /etc/group (besides each user's own).
    pub groups: Option<Vec<RawGroup>>,
    /// Host directories copied into the image.
    pub overlays: Option<Vec<RawOverlay>>,
    /// makedevs device tables (Buildroot format), relative to this file.
    pub devices: Option<Vec<String>>,
    /// Declared services by name: `[services.NAME]`.
    pub services: Option<BTreeMap<String, RawService>>,
    /// Hostname and interfaces.
    pub network: Option<RawNetwork>,
    /// An SSH server.
    pub ssh: Option<RawSsh>,
    /// What to write.
    pub output: Option<RawOutput>,
    /// The partitioned disk or SD-card image `kiln image` writes.
    pub image: Option<RawImage>,
    /// What the whole-image check may let through.
    pub check: Option<RawCheck>,
    /// How the board's firmware finds the system on the card.
    pub boot: Option<RawBoot>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// Image paths whose problems (a dangling symlink, a missing `#!` interpreter, an
    /// unresolved library) do not fail the build, each with the reason.
    pub allow_dangling: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKernel {
    /// Debian kernel package, e.g. `linux-image-arm64` (resolved to its current ABI).
    pub package: Option<String>,
    /// A kernel image file instead of a package, relative to this file.
    pub path: Option<String>,
    /// Kernel command line.
    pub cmdline: Option<String>,
    /// Device tree for real boards: its path under the kernel package's dtbs directory.
    pub dtb: Option<String>,
    /// Kernel modules (names or aliases) to put in the image with what they need, loaded
    /// in order by stage 2: e.g. a watchdog, an SD host driver, a filesystem.
    pub modules: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQemu {
    /// `-M`, e.g. `virt`, `q35`, `raspi3b`.
    pub machine: Option<String>,
    /// `-cpu`.
    pub cpu: Option<String>,
    /// `-m`, e.g. `256M`.
    pub memory: Option<String>,
    /// The serial console's tty in the guest, e.g. `ttyAMA0`.
    pub console: Option<String>,
    /// Extra QEMU arguments.
    pub extra: Option<Vec<String>>,
    /// The NIC model `kiln boot --net` attaches (a `-device` name, e.g. `virtio-net-pci`,
    /// the default on virt and q35).
    pub nic: Option<String>,
    /// How a disk image is attached: `sd` (the board's SD slot; the card size must be a
    /// power of two) or `virtio` (a virtio-blk disk).
    pub drive: Option<String>,
}

/// Every s6-linux-init-maker option, by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInit {
    /// `-c`
    pub basedir: Option<String>,
    /// `-l`
    pub tmpfsdir: Option<String>,
    /// `-b`
    pub execline_bindir: Option<String>,
    /// `-u`: a user of the image, or `UID:GID`.
    pub log_user: Option<String>,
    /// `-g`
    pub early_getty: Option<String>,
    /// `-2`
    pub stage2: Option<String>,
    /// `-r`
    pub redirect_stage2: Option<bool>,
    /// `-Z`
    pub stage2_finish: Option<String>,
    /// `-3`
    pub stage3: Option<String>,
    /// `-p`
    pub path: Option<String>,
    /// `-m`, octal as a string.
    pub umask: Option<String>,
    /// `-t`
    pub timestamp_style: Option<u8>,
    /// `-d`
    pub dev_style: Option<u8>,
    /// `-e`, each `VAR=VALUE`, `VAR=` or `VAR`.
    pub env: Option<Vec<String>>,
    /// `-S` (kiln's extension): the supervision suite, `s6` (the default), `runit` or
    /// `daemontools`.
    pub supervisor: Option<String>,
    /// What the early getty does (not a maker option): `prompt` (the default: getty
    /// asks, login checks) or `autologin` (root is logged in without a password;
    /// development only).
    pub login: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackages {
    /// Packages taken whole (with their Depends closure, minus `exclude`).
    pub include: Option<Vec<String>>,
    /// Packages never pulled in by Depends.
    pub exclude: Option<Vec<String>>,
    /// Packages of which only these paths are taken; libraries follow by ELF closure.
    pub select: Option<BTreeMap<String, Vec<String>>>,
    /// Archive components kiln's apt state adds for the host's own mirrors, e.g.
    /// `["non-free-firmware"]`.
    pub components: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub name: String,
    pub uid: u32,
    /// Primary group id; a group of the user's name is made if none has this id.
    pub gid: u32,
    pub home: Option<String>,
    pub shell: Option<String>,
    /// A crypt(3) hash (`$6$...`, `$5$...`, `$1$...`); `""` means no password; absent
    /// means password login is locked.
    pub password: Option<String>,
    /// Public keys for `~/.ssh/authorized_keys`: a list of keys, or a file of them
    /// relative to this file.
    pub authorized_keys: Option<RawKeys>,
    /// Names of `[[groups]]` the user is also a member of.
    pub groups: Option<Vec<String>>,
}

/// `authorized_keys`: the keys themselves, or a file holding them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawKeys {
    Keys(Vec<String>),
    File(String),
}

/// `[network]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// The image's /etc/hostname.
    pub hostname: Option<String>,
    /// Interfaces by name: `"dhcp"` or a static address.
    pub interfaces: Option<BTreeMap<String, RawInterface>>,
}

/// An interface: `"dhcp"`, or `{ address = "CIDR", gateway, dns }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawInterface {
    Method(String),
    Static(RawStatic),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatic {
    /// IPv4 address with prefix length, e.g. `192.168.1.10/24`.
    pub address: String,
    /// Default route via this address.
    pub gateway: Option<String>,
    /// Name servers for /etc/resolv.conf.
    pub dns: Option<Vec<String>>,
}

/// `[ssh]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    /// `dropbear` (Debian's `dropbear-bin`, which the board must include).
    pub server: Option<String>,
    /// TCP port (default 22).
    pub port: Option<u16>,
    /// The board's own host key files (dropbear format), relative to this file; without
    /// them, keys are generated at first boot.
    pub host_keys: Option<Vec<String>>,
}

/// One `[services.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// The command line, run by `/bin/sh -c` (or as an execline script with `execline`).
    pub run: Option<String>,
    /// `run` is an execline script body instead of a shell command line.
    pub execline: Option<bool>,
    /// A ready-made s6 service directory instead of `run`, relative to this file.
    pub dir: Option<String>,
    /// The image user the service runs as (default root).
    pub user: Option<String>,
    /// Environment variables for the service.
    pub env: Option<BTreeMap<String, String>>,
    /// Working directory (absolute).
    pub cwd: Option<String>,
    /// A dedicated s6-log writing /var/log/NAME/ as the log user (default true; false
    /// for a oneshot).
    pub log: Option<bool>,
    /// Log files s6-log keeps besides `current` (its `n`; default 10).
    pub log_files: Option<u32>,
    /// Bytes after which s6-log rotates `current` (its `s`; default 1000000).
    pub log_size: Option<u32>,
    /// Services that must be up and ready first.
    pub after: Option<Vec<String>>,
    /// Run once, in order, by stage 2 instead of supervised.
    pub oneshot: Option<bool>,
    /// The fd on which the daemon writes a newline when it is ready (s6's
    /// `notification-fd`); without it, "up" counts as ready.
    pub notification_fd: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: String,
    pub gid: u32,
    pub members: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOverlay {
    /// Host directory, relative to this file.
    pub source: String,
    /// Where it goes in the image.
    pub dest: Option<String>,
    /// Declared metadata by image path: `{ mode = "0600", uid = 0, gid = 0 }`; git keeps
    /// only the x bit, so nothing else comes from the checkout.
    pub files: Option<BTreeMap<String, RawMeta>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeta {
    pub mode: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// Archive formats to write, e.g. `["cpio.gz", "tar.zst"]`.
    pub formats: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    /// Partition table: `mbr` (DOS) or `gpt`.
    pub table: Option<String>,
    /// Whole image size, e.g. `512M`; default: the partitions' end, rounded up to what
    /// the drive takes (a power of two for `sd`).
    pub size: Option<String>,
    /// Kernel modules the stage-0 initramfs loads to reach the root (the SD host or
    /// virtio driver and the filesystem, e.g. `["virtio_pci", "virtio_blk", "ext4"]`),
    /// with what they need; they go only into that initramfs.
    pub modules: Option<Vec<String>>,
    /// The partitions, in disk order.
    pub partitions: Option<Vec<RawPartition>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartition {
    /// Filesystem label (the root is found by it at boot).
    pub label: Option<String>,
    /// `fat32` or `ext4`.
    pub filesystem: Option<String>,
    /// `boot` (kernel, dtb, stage-0 initramfs, cmdline.txt, `files`), `root` (the image
    /// tree) or `empty` (formatted, nothing in it).
    pub contents: Option<String>,
    /// Start offset, e.g. `4M`; default: right after the previous one, 1 MiB aligned.
    pub start: Option<String>,
    /// Size, e.g. `64M`; default: the contents plus `margin`, or for the last partition
    /// the rest of the image.
    pub size: Option<String>,
    /// Room added to the contents when `size` is not given, e.g. `32M` (default `16M`).
    pub margin: Option<String>,
    /// MBR type byte (`0x0c`) or GPT type GUID; default from the filesystem.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Extra files for a boot partition: host paths relative to this file (a directory is
    /// copied with its contents), or `PACKAGE:GLOB` for files of a fetched package.
    pub files: Option<Vec<String>>,
}

/// How the board's firmware finds the system: what `kiln image` writes for it and what
/// `kiln boot --image` runs as the machine's firmware.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBoot {
    /// The firmware chains the card carries, the first one booted by default: `bios`
    /// (syslinux), `uefi` (systemd-boot), `u-boot` (extlinux.conf) or `pi` (the Pi's GPU
    /// firmware, config.txt).
    pub firmware: Option<Vec<String>>,
    /// Where U-Boot comes from when it lives on the card.
    pub uboot: Option<RawUBoot>,
    /// The Raspberry Pi firmware's files and config.txt.
    pub pi: Option<RawPi>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUBoot {
    /// The card's byte where the SoC's boot ROM looks for U-Boot (SPL), e.g. 8192; MBR only.
    pub offset: Option<u64>,
    /// A prebuilt binary: `PACKAGE:PATH` of a fetched package, or a host file.
    pub file: Option<String>,
    /// Build Debian's u-boot source with this defconfig, e.g. `orangepi_pc_defconfig`.
    pub defconfig: Option<String>,
    /// The build's output written to the card, e.g. `u-boot-sunxi-with-spl.bin`.
    pub binary: Option<String>,
    /// A Kconfig fragment (host file) applied over the defconfig, e.g. `CONFIG_BOOTDELAY=0`.
    pub fragment: Option<String>,
    /// The largest kernel U-Boot's load window holds (kernel_addr_r up to the next
    /// address U-Boot loads to), e.g. `16M`.
    pub kernel_window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPi {
    /// The package with the GPU firmware (default `raspi-firmware`).
    pub package: Option<String>,
    /// Firmware files taken from it, by path inside the package.
    pub files: Option<Vec<String>>,
    /// Extra config.txt lines, after kiln's own.
    pub config: Option<Vec<String>>,
}
