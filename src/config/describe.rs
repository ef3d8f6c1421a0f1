//! `kiln config`: the resolved board (after `inherit`), readable.

use std::path::PathBuf;

use super::boot::UBootSource;
use super::{Board, Drive, KernelSource};

impl Board {
    /// A readable summary of the resolved board (after `inherit`), for `kiln config`.
    pub fn describe(&self) -> String {
        let list = |items: &[String]| items.join(" ");
        let paths = |items: &[PathBuf]| {
            items
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut out = String::new();
        let mut line = |key: &str, value: String| {
            out.push_str(&format!("{key:<16} {value}\n"));
        };
        line("board", format!("{} ({})", self.name, self.file.display()));
        line("arch", self.arch.to_string());
        line(
            "kernel",
            match &self.kernel.source {
                KernelSource::Package(package) => format!("package {package}"),
                KernelSource::File(path) => format!("file {}", path.display()),
                KernelSource::None => "none".to_string(),
            },
        );
        line("cmdline", self.kernel.cmdline.clone());
        line(
            "dtb",
            self.kernel
                .dtb
                .clone()
                .unwrap_or_else(|| "none".to_string()),
        );
        line(
            "qemu",
            format!(
                "-M {}{} -m {} {}",
                self.qemu.machine,
                self.qemu
                    .cpu
                    .as_ref()
                    .map_or(String::new(), |cpu| format!(" -cpu {cpu}")),
                self.qemu.memory,
                list(&self.qemu.extra)
            ),
        );
        line("console", self.qemu.console.clone());
        line(
            "init",
            self.init
                .args()
                .iter()
                .map(|arg| crate::init::quote(arg))
                .collect::<Vec<_>>()
                .join(" "),
        );
        line("log user", format!("{}:{}", self.log_ids.0, self.log_ids.1));
        line(
            "console login",
            if self.autologin {
                "autologin as root (development only)".to_string()
            } else {
                "prompt".to_string()
            },
        );
        line("packages", list(&self.packages.include));
        line("exclude", list(&self.packages.exclude));
        for (package, paths) in &self.packages.select {
            line("select", format!("{package}: {}", list(paths)));
        }
        for user in &self.users {
            line(
                "user",
                format!(
                    "{} {}:{} {} {} password {}{}{}",
                    user.name,
                    user.uid,
                    user.gid,
                    user.home,
                    user.shell,
                    match &user.password {
                        super::login::Password::Locked => "locked",
                        super::login::Password::Empty => "none (empty)",
                        super::login::Password::Hash(_) => "hash",
                    },
                    if user.authorized_keys.is_empty() {
                        String::new()
                    } else {
                        format!(", {} authorized keys", user.authorized_keys.len())
                    },
                    if user.groups.is_empty() {
                        String::new()
                    } else {
                        format!(", groups {}", user.groups.join(","))
                    }
                ),
            );
        }
        for group in &self.groups {
            line(
                "group",
                format!("{} {} {}", group.name, group.gid, list(&group.members)),
            );
        }
        for overlay in &self.overlays {
            let dest = overlay
                .dest
                .as_ref()
                .map_or("/".to_string(), ToString::to_string);
            line(
                "overlay",
                format!(
                    "{} -> {dest} ({} declared)",
                    overlay.source.display(),
                    overlay.files.len()
                ),
            );
            for (path, meta) in &overlay.files {
                line(
                    "  file",
                    format!(
                        "{path} mode {} owner {}:{}",
                        meta.mode
                            .map_or("-".to_string(), |mode| format!("{mode:04o}")),
                        meta.uid.map_or("-".to_string(), |uid| uid.to_string()),
                        meta.gid.map_or("-".to_string(), |gid| gid.to_string())
                    ),
                );
            }
        }
        let devices: Vec<PathBuf> = self.devices.iter().map(|t| t.path.clone()).collect();
        line("devices", paths(&devices));
        for service in &self.services {
            line("service", service.describe());
        }
        line(
            "start order",
            self.waves
                .iter()
                .enumerate()
                .map(|(index, wave)| format!("{}: {}", index + 1, wave.join(" ")))
                .collect::<Vec<_>>()
                .join("; "),
        );
        line(
            "formats",
            self.formats
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(" "),
        );
        line(
            "drive",
            match self.qemu.drive {
                Drive::Sd => format!("{} (card size a power of two)", Drive::Sd.name()),
                drive => drive.name().to_string(),
            },
        );
        if let Some(image) = &self.image {
            let size = |bytes: Option<u64>, default: &str| {
                bytes.map_or(default.to_string(), |b| format!("{}M", b >> 20))
            };
            line(
                "image",
                format!(
                    "{} table, size {}, stage-0 modules: {}",
                    image.table.name(),
                    size(image.size, "from the partitions"),
                    list(&image.modules)
                ),
            );
            for (index, partition) in image.partitions.iter().enumerate() {
                line(
                    &format!("  partition {}", index + 1),
                    format!(
                        "{} {} {} start {} size {} margin {}M{}",
                        partition.label,
                        partition.filesystem.name(),
                        partition.contents.name(),
                        size(partition.start, "next"),
                        size(partition.size, "contents+margin"),
                        partition.margin >> 20,
                        if partition.files.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " files {}",
                                partition
                                    .files
                                    .iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            )
                        }
                    ),
                );
            }
        }
        if let Some(boot) = &self.boot {
            let names: Vec<&str> = boot.firmware.iter().map(|one| one.name()).collect();
            line("firmware", names.join(" "));
            if let Some(card) = &boot.uboot.card {
                let source = match &card.source {
                    UBootSource::Package { package, path } => format!("{package}:{path}"),
                    UBootSource::Host(path) => path.display().to_string(),
                    UBootSource::Build {
                        defconfig,
                        binary,
                        fragment,
                    } => format!(
                        "{binary} built with {defconfig}{}",
                        fragment
                            .as_ref()
                            .map_or(String::new(), |path| format!(" + {}", path.display()))
                    ),
                };
                line("  u-boot", format!("at byte {}: {source}", card.offset));
            }
            if let Some(window) = boot.uboot.kernel_window {
                line("  kernel window", format!("{}M", window >> 20));
            }
            if boot.has(super::boot::Firmware::Pi) {
                line(
                    "  pi firmware",
                    format!("{}: {}", boot.pi.package, list(&boot.pi.files)),
                );
            }
        }
        out
    }
}

impl super::Service {
    /// One line for `kiln config`: name, kind, what it runs and its settings.
    pub fn describe(&self) -> String {
        use super::services::Run;
        let mut text = format!(
            "{} {}",
            self.name,
            if self.oneshot { "oneshot" } else { "longrun" }
        );
        match &self.what {
            Run::Shell(run) => {
                text.push_str(&format!(" sh -c {}", crate::host::tool::sh_word(run)))
            }
            Run::Execline(run) => {
                text.push_str(&format!(" execline {}", crate::host::tool::sh_word(run)));
            }
            Run::Dir(dir) => text.push_str(&format!(" dir {}", dir.display())),
        }
        if let Some(user) = &self.user {
            text.push_str(&format!(" user {} ({}:{})", user.name, user.uid, user.gid));
        }
        if let Some(cwd) = &self.cwd {
            text.push_str(&format!(" cwd {cwd}"));
        }
        for (name, value) in &self.env {
            text.push_str(&format!(
                " env {name}={}",
                crate::host::tool::sh_word(value)
            ));
        }
        if !self.after.is_empty() {
            text.push_str(&format!(" after {}", self.after.join(",")));
        }
        if let Some(fd) = self.notification_fd {
            text.push_str(&format!(" notification-fd {fd}"));
        }
        match &self.log {
            Some(log) => text.push_str(&format!(
                " log /var/log/{} n{} s{}",
                self.name, log.files, log.size
            )),
            None if self.oneshot => {}
            None => text.push_str(" log catch-all"),
        }
        text
    }
}
