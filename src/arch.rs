//! Target architectures: Debian names, ELF machine and class, multiarch directories, loader.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
    Armv7,
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::Aarch64, Arch::Armv7];

    /// The name boards use.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Armv7 => "armv7",
        }
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|arch| arch.name() == name)
    }

    /// Debian's architecture name.
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
            Arch::Armv7 => "armhf",
        }
    }

    /// `e_machine` of the arch's ELF objects.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => goblin::elf::header::EM_X86_64,
            Arch::Aarch64 => goblin::elf::header::EM_AARCH64,
            Arch::Armv7 => goblin::elf::header::EM_ARM,
        }
    }

    pub fn is_64_bit(self) -> bool {
        !matches!(self, Arch::Armv7)
    }

    /// The multiarch triplet of Debian's library directories.
    pub fn triplet(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Aarch64 => "aarch64-linux-gnu",
            Arch::Armv7 => "arm-linux-gnueabihf",
        }
    }

    /// Directories the arch's loader searches after RPATH, RUNPATH and ld.so.conf.
    pub fn default_library_dirs(self) -> Vec<String> {
        let triplet = self.triplet();
        let mut dirs = vec![format!("/lib/{triplet}"), format!("/usr/lib/{triplet}")];
        if self == Arch::X86_64 {
            dirs.extend(["/lib64".to_string(), "/usr/lib64".to_string()]);
        }
        dirs.extend(["/lib".to_string(), "/usr/lib".to_string()]);
        dirs
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The arch name of an ELF machine number, for messages.
pub fn machine_name(machine: u16) -> String {
    Arch::ALL
        .into_iter()
        .find(|arch| arch.elf_machine() == machine)
        .map_or_else(
            || format!("machine {machine}"),
            |arch| arch.name().to_string(),
        )
}
