//! `inherit`: a board's TOML merged over its parent's, key by key.
//!
//! Each file is checked on its own against `RawBoard` first, so an unknown key or a
//! wrong type is reported with its file and line before any merging. Then the file's
//! relative paths are resolved against its own directory, so a parent in another
//! directory keeps its paths when a child inherits them; only then are the tables
//! merged (tables key by key, values and arrays replace).

use std::path::Path;

use super::ConfigError;
use super::raw::RawBoard;

/// The largest board file kiln reads.
const BOARD_LIMIT: u64 = 1 << 20;

/// How deep `inherit` may go before it is taken for a loop.
const MAX_DEPTH: usize = 8;

/// The board file's TOML with its paths resolved, merged over its parents.
pub fn load(path: &Path) -> Result<toml::Table, ConfigError> {
    load_value(path, 0)
}

fn load_value(path: &Path, depth: usize) -> Result<toml::Table, ConfigError> {
    let file = path.display().to_string();
    let error = |message: String| ConfigError {
        file: file.clone(),
        message,
    };
    if depth > MAX_DEPTH {
        return Err(error(format!(
            "inherit chain is longer than {MAX_DEPTH} files (a loop?)"
        )));
    }
    let bytes = crate::host::input::read(path, BOARD_LIMIT, "a board").map_err(|err| {
        error(format!(
            "unable to read board config: {err} (note: give the path of a .toml file, e.g. board-configs/qemu-aarch64.toml)"
        ))
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| error("a board config is UTF-8 text (TOML)".to_string()))?;
    // Unknown keys and wrong types, with line and column, before any merging.
    let raw: RawBoard = toml::from_str(&text).map_err(|err| error(err.to_string()))?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|err| error(err.to_string()))?;
    if let Some(key) = find_nul(&table, "") {
        return Err(error(format!(
            "{key}: contains a NUL byte, which no path, name or script can hold"
        )));
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    rebase(&mut table, dir).map_err(error)?;
    let Some(parent) = raw.inherit else {
        return Ok(table);
    };
    let parent_path = dir.join(parent);
    let mut merged = load_value(&parent_path, depth + 1)?;
    merged.remove("name");
    merge(&mut merged, table);
    merged.remove("inherit");
    Ok(merged)
}

/// The key of the first string with a NUL byte, if any.
fn find_nul(table: &toml::Table, prefix: &str) -> Option<String> {
    fn walk(value: &toml::Value, key: &str) -> Option<String> {
        match value {
            toml::Value::String(text) if text.contains('\0') => Some(key.to_string()),
            toml::Value::Array(items) => items.iter().find_map(|item| walk(item, key)),
            toml::Value::Table(table) => find_nul(table, key),
            _ => None,
        }
    }
    table.iter().find_map(|(name, value)| {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        walk(value, &key)
    })
}

/// Resolves the file's relative paths against its directory, in place: `[kernel] path`,
/// `[[overlays]] source`, `devices`, `[services.NAME] dir`, a `[[users]]
/// authorized_keys` file and the host paths of `[[image.partitions]] files` and
/// `[boot.uboot] file` (not the `PACKAGE:...` ones), and `[boot.uboot] fragment`.
fn rebase(table: &mut toml::Table, dir: &Path) -> Result<(), String> {
    let join = |value: &mut toml::Value| -> Result<(), String> {
        if let toml::Value::String(text) = value {
            if !Path::new(text.as_str()).is_absolute() {
                let joined = dir.join(text.as_str());
                *text = joined
                    .to_str()
                    .ok_or_else(|| {
                        format!("{}: the board's directory is not UTF-8", dir.display())
                    })?
                    .to_string();
            }
        }
        Ok(())
    };
    fn array(value: Option<&mut toml::Value>) -> Vec<&mut toml::Value> {
        match value {
            Some(toml::Value::Array(items)) => items.iter_mut().collect(),
            _ => Vec::new(),
        }
    }
    if let Some(toml::Value::Table(kernel)) = table.get_mut("kernel") {
        if let Some(path) = kernel.get_mut("path") {
            join(path)?;
        }
    }
    for item in array(table.get_mut("devices")) {
        join(item)?;
    }
    if let Some(toml::Value::Table(services)) = table.get_mut("services") {
        for (_, service) in services.iter_mut() {
            if let toml::Value::Table(service) = service {
                if let Some(dir) = service.get_mut("dir") {
                    join(dir)?;
                }
            }
        }
    }
    if let Some(toml::Value::Table(ssh)) = table.get_mut("ssh") {
        for key in array(ssh.get_mut("host_keys")) {
            join(key)?;
        }
    }
    for user in array(table.get_mut("users")) {
        if let toml::Value::Table(user) = user {
            // A file of keys (a list of keys is not a path).
            if let Some(keys @ toml::Value::String(_)) = user.get_mut("authorized_keys") {
                join(keys)?;
            }
        }
    }
    for overlay in array(table.get_mut("overlays")) {
        if let toml::Value::Table(overlay) = overlay {
            if let Some(source) = overlay.get_mut("source") {
                join(source)?;
            }
        }
    }
    if let Some(toml::Value::Table(boot)) = table.get_mut("boot") {
        if let Some(toml::Value::Table(uboot)) = boot.get_mut("uboot") {
            if let Some(fragment) = uboot.get_mut("fragment") {
                join(fragment)?;
            }
            if let Some(file) = uboot.get_mut("file") {
                if !names_a_package_file(file) {
                    join(file)?;
                }
            }
        }
    }
    if let Some(toml::Value::Table(image)) = table.get_mut("image") {
        for partition in array(image.get_mut("partitions")) {
            let toml::Value::Table(partition) = partition else {
                continue;
            };
            for file in array(partition.get_mut("files")) {
                if !names_a_package_file(file) {
                    join(file)?;
                }
            }
        }
    }
    Ok(())
}

/// Tables merge key by key; anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(over_table)) => {
                merge(base_table, over_table);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// `PACKAGE:PATH` (a file of a fetched package, not a host path to rebase).
fn names_a_package_file(value: &toml::Value) -> bool {
    matches!(
        value,
        toml::Value::String(text)
            if text.split_once(':').is_some_and(|(package, _)| !package.contains('/'))
    )
}
