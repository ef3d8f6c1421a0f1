//! What lets a user in: a `[[users]] password` (a crypt(3) hash, never clear text) and
//! `authorized_keys` (OpenSSH public keys, each decoded and checked), checked when the
//! board loads.

use std::path::Path;

/// A user's password, as `/etc/shadow` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// No password login (the default).
    Locked,
    /// `""`: no password at all (console login without a prompt for one).
    Empty,
    /// A crypt(3) hash.
    Hash(String),
}

impl Password {
    /// The shadow field. busybox 1.35's login dies with "bad salt" on a one-character
    /// field such as `!` or `*` (measured; it takes the field for a DES salt), so a
    /// locked password is `!*`, and `*NP*` for a user with keys: dropbear refuses every
    /// kind of login, keys included, to a field starting with `!`.
    pub fn shadow_field(&self, has_keys: bool) -> &str {
        match self {
            Password::Locked if has_keys => "*NP*",
            Password::Locked => "!*",
            Password::Empty => "",
            Password::Hash(hash) => hash,
        }
    }
}

/// crypt(3)'s alphabet for salts and hashes.
fn is_crypt64(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
}

const HOW: &str = "note: make a hash with `openssl passwd -6` (SHA-512 crypt) and put that in the board; a clear-text password in a board file is readable by anyone who has the file";

/// Checks a `password` value: `""`, or an MD5, SHA-256 or SHA-512 crypt hash, the
/// methods busybox 1.35's login and dropbear's libc both check.
pub fn password(text: &str) -> Result<Password, String> {
    if text.is_empty() {
        return Ok(Password::Empty);
    }
    let parts: Vec<&str> = text.split('$').collect();
    // "$6$salt$hash" or "$6$rounds=N$salt$hash" splits into "", id, [rounds,] salt, hash.
    let (id, salt, hash) = match parts.as_slice() {
        ["", id, salt, hash] => (*id, *salt, *hash),
        ["", id, rounds, salt, hash]
            if rounds
                .strip_prefix("rounds=")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            (*id, *salt, *hash)
        }
        ["", id, ..] if !["1", "5", "6"].contains(id) => {
            return Err(format!(
                "a ${id}$ hash: busybox 1.35's login checks only $6$ (SHA-512), $5$ and $1$ hashes ({HOW})"
            ));
        }
        _ => {
            return Err(format!(
                "is not a crypt(3) hash; clear-text passwords are refused ({HOW})"
            ));
        }
    };
    let length = match id {
        "1" => 22,
        "5" => 43,
        "6" => 86,
        _ => {
            return Err(format!(
                "a ${id}$ hash: busybox 1.35's login checks only $6$ (SHA-512), $5$ and $1$ hashes ({HOW})"
            ));
        }
    };
    if salt.is_empty()
        || salt.len() > 16
        || !is_crypt64(salt)
        || hash.len() != length
        || !is_crypt64(hash)
    {
        return Err(format!(
            "is not a well-formed ${id}$ hash (salt of 1 to 16 and hash of {length} characters of [./0-9A-Za-z]) ({HOW})"
        ));
    }
    Ok(Password::Hash(text.to_string()))
}

/// Standard base64 with padding, strict: what an OpenSSH public key's middle field is.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (index, chunk) in bytes.chunks(4).enumerate() {
        let last = index == bytes.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &b in &chunk[..4 - pad] {
            n = (n << 6) | value(b)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

/// Key types dropbear 2022.83 and OpenSSH both take.
const KEY_TYPES: [&str; 6] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
];

/// Checks one public key line (`TYPE BASE64 [COMMENT]`): a known type whose blob
/// decodes and names the same type, as sshd would read it. Returns the line, trimmed.
pub fn public_key(line: &str) -> Result<String, String> {
    let line = line.trim();
    if line.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err("a public key is one line without control characters".to_string());
    }
    let mut words = line.split_whitespace();
    let kind = words.next().unwrap_or("");
    if !KEY_TYPES.contains(&kind) {
        let shown: String = kind.chars().take(40).collect();
        return Err(format!(
            "{shown:?} is not a public key type ({}; options before the key are not supported) (note: give the line of a .pub file, e.g. ssh-ed25519 AAAA... user@host)",
            KEY_TYPES.join(", ")
        ));
    }
    let blob = words
        .next()
        .and_then(base64_decode)
        .ok_or_else(|| format!("{kind} key: its data is not base64"))?;
    // The blob starts with the type as an SSH string: a 32-bit length, then the name.
    let named = blob
        .get(..4)
        .map(|len| u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize)
        .and_then(|len| blob.get(4..4 + len));
    if named != Some(kind.as_bytes()) || blob.len() < 4 + kind.len() + 16 {
        return Err(format!(
            "{kind} key: its data is not a {kind} key (cut or pasted wrong?)"
        ));
    }
    Ok(line.to_string())
}

/// The keys of an `authorized_keys` file: one a line; blank lines and `#` comments skipped.
pub fn keys_file(path: &Path) -> Result<Vec<String>, String> {
    let bytes = crate::host::input::read(path, 1 << 20, "an authorized_keys file")
        .map_err(|err| format!("unable to read {}: {err}", path.display()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        keys.push(
            public_key(trimmed)
                .map_err(|why| format!("{}:{}: {why}", path.display(), index + 1))?,
        );
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ed25519 public key (generated for this test; its private half is gone).
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFckeyf/+alIiBMdCNDxVyvV3XBnKlW/IylDcYlHQuyn test@kiln";

    #[test]
    fn hashes_pass_and_clear_text_is_refused() {
        let sha512 = "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";
        assert_eq!(password(sha512), Ok(Password::Hash(sha512.to_string())));
        assert_eq!(password(""), Ok(Password::Empty));
        let rounds = "$5$rounds=5000$salt$".to_string() + &"a".repeat(43);
        assert!(password(&rounds).is_ok());
        for bad in ["secret", "$6$salt$short", "$6$$", "hunter2$", "$6$a b$x"] {
            let why = password(bad).unwrap_err();
            assert!(why.contains("openssl passwd -6"), "{bad}: {why}");
        }
        assert!(
            password("$y$j9T$abc$def")
                .unwrap_err()
                .contains("busybox 1.35")
        );
        assert_eq!(Password::Locked.shadow_field(false), "!*");
        assert_eq!(Password::Locked.shadow_field(true), "*NP*");
    }

    #[test]
    fn keys_are_decoded_and_checked() {
        assert_eq!(public_key(&format!("  {KEY} ")), Ok(KEY.to_string()));
        for (bad, why) in [
            ("ssh-dss AAAA", "is not a public key type"),
            ("ssh-ed25519 not-base64!", "not base64"),
            // Valid base64 of an rsa blob under an ed25519 label.
            (
                "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ==",
                "is not a ssh-ed25519 key",
            ),
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
                "is not a ssh-ed25519 key",
            ),
            ("command=\"x\" ssh-ed25519 AAAA", "options before the key"),
        ] {
            let got = public_key(bad).unwrap_err();
            assert!(got.contains(why), "{bad}: {got}");
        }
        assert_eq!(base64_decode("aGk="), Some(b"hi".to_vec()));
        assert_eq!(base64_decode("aG=k"), None);
    }
}
