//! `/etc/passwd`, `/etc/group` and `/etc/shadow` from the board's `[[users]]` and
//! `[[groups]]` (validated when the board loaded), and the users' home directories.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;

use crate::config::Board;
use crate::tree::content::Content;
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

/// /etc/passwd, /etc/group and /etc/shadow (each user's password field: see
/// `Password::shadow_field`) from the board, home dirs and `~/.ssh/authorized_keys`.
/// A board without users keeps whatever its packages and overlays put there.
pub fn add(image: &mut Tree, board: &Board) -> Result<()> {
    if board.users.is_empty() {
        return Ok(());
    }
    let origin = format!("{} [[users]]", board.file.display());
    let (mut passwd, mut shadow) = (String::new(), String::new());
    let mut groups: BTreeMap<u32, (String, Vec<String>)> = BTreeMap::new();
    for group in &board.groups {
        groups.insert(group.gid, (group.name.clone(), group.members.clone()));
    }
    for user in &board.users {
        // Writing to a String cannot fail.
        let _ = writeln!(
            passwd,
            "{}:x:{}:{}::{}:{}",
            user.name, user.uid, user.gid, user.home, user.shell
        );
        let has_keys = !user.authorized_keys.is_empty();
        let _ = writeln!(
            shadow,
            "{}:{}:0:0:99999:7:::",
            user.name,
            user.password.shadow_field(has_keys)
        );
        groups
            .entry(user.gid)
            .or_insert_with(|| (user.name.clone(), Vec::new()));
        if let Ok(home_path) = ArchivePath::new(&user.home) {
            let node = Node::new(Kind::Dir, Meta::new(0o755, user.uid, user.gid), &origin);
            image.replace(home_path, node)?;
        }
        if has_keys {
            let ssh = ArchivePath::new(&format!("{}/.ssh", user.home.trim_end_matches('/')))?;
            let mut keys = user.authorized_keys.join("\n");
            keys.push('\n');
            let dir = Node::new(Kind::Dir, Meta::new(0o700, user.uid, user.gid), &origin);
            let file = Node::new(
                Kind::File(Content::inline(keys)),
                Meta::new(0o600, user.uid, user.gid),
                &origin,
            );
            image.replace(ssh.clone(), dir)?;
            image.replace(ssh.join("authorized_keys")?, file)?;
        }
    }
    let mut group_text = String::new();
    for (gid, (name, members)) in &groups {
        let _ = writeln!(group_text, "{name}:x:{gid}:{}", members.join(","));
    }
    for (path, text, mode) in [
        ("etc/passwd", passwd, 0o644),
        ("etc/group", group_text, 0o644),
        ("etc/shadow", shadow, 0o600),
    ] {
        let node = Node::new(Kind::File(Content::inline(text)), Meta::root(mode), &origin);
        image.replace(ArchivePath::new(path)?, node)?;
    }
    Ok(())
}
