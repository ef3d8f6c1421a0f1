//! `/etc/passwd` and `/etc/group` as others wrote them: `name:x:id:...` lines, read
//! without trusting them. One reader for the maker's `--passwd`/`--group`, the log
//! user's fallback, and the tar writer's user and group names.

/// One line: the name, the id (field 3), and for passwd the primary gid (field 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub id: u32,
    pub gid: Option<u32>,
    /// 1-based, for messages.
    pub line: usize,
}

/// The entries of a passwd- or group-format file, and the 1-based numbers of the lines
/// that are not blank, not comments and do not parse (name empty, id not a number).
pub fn parse(bytes: &[u8]) -> (Vec<Entry>, Vec<usize>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        let number = |field: Option<&&[u8]>| -> Option<u32> {
            let field = field?;
            if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(field).ok()?.parse().ok()
        };
        match (fields.first(), number(fields.get(2))) {
            (Some(name), Some(id)) if !name.is_empty() => entries.push(Entry {
                name: name.to_vec(),
                id,
                gid: number(fields.get(3)),
                line: index + 1,
            }),
            _ => bad.push(index + 1),
        }
    }
    (entries, bad)
}

/// The first entry of this name.
pub fn by_name<'a>(entries: &'a [Entry], name: &[u8]) -> Option<&'a Entry> {
    entries.iter().find(|entry| entry.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_or_are_reported() {
        let (entries, bad) = parse(b"root:x:0:0::/root:/bin/sh\n# c\n\nlog:x:70:71::/:/bin/false\nbad:x:-1:0\n:x:5:5\ngroup:x:20:\n");
        let names: Vec<(&[u8], u32, Option<u32>)> = entries
            .iter()
            .map(|e| (e.name.as_slice(), e.id, e.gid))
            .collect();
        assert_eq!(
            names,
            vec![
                (&b"root"[..], 0, Some(0)),
                (&b"log"[..], 70, Some(71)),
                (&b"group"[..], 20, None)
            ]
        );
        assert_eq!(bad, vec![5, 6]);
        assert_eq!(by_name(&entries, b"log").map(|e| e.id), Some(70));
    }
}
