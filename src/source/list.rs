//! The kernel's gen_init_cpio list format (`usr/gen_init_cpio.c`), parsed into a tree, and
//! the quoting that lets a list carry every name and symlink target a tree can hold.
//!
//! The kernel splits a line on whitespace, so its lists cannot hold a name with a space or a
//! newline; printed raw, such a name reads back as other words or a second line (a symlink
//! target `x\nfile /x /etc/shadow 0644 0 0` would copy the host's shadow file). kiln reads
//! the kernel's lists unchanged and adds one form for every other word: a word that starts
//! with `"` runs to the next unescaped `"`, with the escapes `\\`, `\"`, `\n`, `\t` and
//! `\xHH` (one byte). A quoted word is taken literally, with no `${VAR}` expansion. `quote`
//! writes that form only when a word needs it, so ordinary lists stay plain.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Inputs, SpecError, check_extra, expand, mode, number};
use crate::tree::content::Content;
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

impl Inputs {
    /// Parses a gen_init_cpio list into `tree`.
    pub fn parse_list(&mut self, tree: &mut Tree, file: &Path, text: &str) -> Result<()> {
        let base = file.parent().unwrap_or(Path::new("."));
        for (index, raw_line) in text.lines().enumerate() {
            let line = index + 1;
            let error = |message: String| SpecError {
                file: file.to_path_buf(),
                line,
                message,
            };
            let trimmed = raw_line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let words = split(raw_line).map_err(&error)?;
            // A file's location is a host path, the one word that need not be UTF-8.
            let is_file = words[0].bytes.as_ref() == b"file";
            let words_text = words
                .iter()
                .enumerate()
                .map(|(at, word)| match at {
                    2 if is_file => Ok(""),
                    _ => word.as_str(),
                })
                .collect::<Result<Vec<&str>, String>>()
                .map_err(&error)?;
            let words_text = &words_text[..];
            let origin = format!("{}:{line}", file.display());
            let want = |count: usize, synopsis: &str| -> Result<(), SpecError> {
                if words.len() < count {
                    return Err(error(format!("missing field: expected `{synopsis}`")));
                }
                Ok(())
            };
            let name = |word: &str| {
                ArchivePath::new(word).map_err(|err| error(format!("name {word:?}: {err}")))
            };
            let (path, kind, mode_at) = match words_text[0] {
                "file" => {
                    want(
                        6,
                        "file <name> <location> <mode> <uid> <gid> [<hard links>]",
                    )?;
                    let location = words[2].location().map_err(&error)?;
                    let content = self.locate(base, &location).map_err(&error)?;
                    (name(words_text[1])?, Kind::File(content), 3)
                }
                "dir" => {
                    want(5, "dir <name> <mode> <uid> <gid>")?;
                    (name(words_text[1])?, Kind::Dir, 2)
                }
                "nod" => {
                    want(8, "nod <name> <mode> <uid> <gid> <dev_type> <maj> <min>")?;
                    let major = number(words_text[6], "major").map_err(&error)?;
                    let minor = number(words_text[7], "minor").map_err(&error)?;
                    let kind = match words_text[5] {
                        "c" => Kind::CharDev { major, minor },
                        "b" => Kind::BlockDev { major, minor },
                        other => {
                            return Err(error(format!(
                                "bad device type {other:?}: expected c or b"
                            ))
                            .into());
                        }
                    };
                    check_extra(words_text, 8).map_err(&error)?;
                    (name(words_text[1])?, kind, 2)
                }
                "slink" => {
                    want(6, "slink <name> <target> <mode> <uid> <gid>")?;
                    check_extra(words_text, 6).map_err(&error)?;
                    let target = words_text[2].to_string();
                    (name(words_text[1])?, Kind::Symlink(target), 3)
                }
                "pipe" => {
                    want(5, "pipe <name> <mode> <uid> <gid>")?;
                    check_extra(words_text, 5).map_err(&error)?;
                    (name(words_text[1])?, Kind::Fifo, 2)
                }
                "sock" => {
                    want(5, "sock <name> <mode> <uid> <gid>")?;
                    check_extra(words_text, 5).map_err(&error)?;
                    (name(words_text[1])?, Kind::Socket, 2)
                }
                other => {
                    return Err(error(format!(
                        "unknown entry type {other:?}: expected file, dir, nod, slink, pipe or sock"
                    ))
                    .into());
                }
            };
            if words_text[0] == "dir" {
                check_extra(words_text, 5).map_err(&error)?;
            }
            let mode = mode(words_text[mode_at]).map_err(&error)?;
            let uid = number(words_text[mode_at + 1], "uid").map_err(&error)?;
            let gid = number(words_text[mode_at + 2], "gid").map_err(&error)?;
            let meta = Meta::new(mode, uid, gid);
            let links = if is_file { &words_text[6..] } else { &[][..] };
            // The tree names paths raw in its messages; escape them for the terminal.
            let conflict =
                |err: crate::tree::TreeError| error(escape(&err.to_string()).into_owned());
            tree.insert(path.clone(), Node::new(kind, meta, &origin))
                .map_err(conflict)?;
            for link in links {
                let link_path = name(link)?;
                let node = Node::new(Kind::HardLink(path.clone()), meta, &origin);
                tree.insert(link_path, node).map_err(conflict)?;
            }
        }
        Ok(())
    }

    /// A host file, or a member of an archive the location runs through.
    fn locate(&mut self, base: &Path, location: &Path) -> Result<Content, String> {
        let full = base.join(location);
        let shown = escape_bytes(full.as_os_str().as_bytes());
        match fs::metadata(&full) {
            Ok(metadata) if metadata.is_file() => {
                return Ok(Content::Host {
                    path: full,
                    len: metadata.len(),
                });
            }
            Ok(_) => return Err(format!("{shown}: not a regular file")),
            Err(_) => {}
        }
        // Walk up until a prefix exists; if it is a regular file, it is the archive.
        let mut prefix = full.as_path();
        while let Some(parent) = prefix.parent() {
            prefix = parent;
            if prefix.is_file() {
                let member = full
                    .strip_prefix(prefix)
                    .ok()
                    .and_then(|rest| rest.to_str())
                    .and_then(|rest| ArchivePath::new(rest).ok())
                    .ok_or_else(|| format!("{shown}: bad member name"))?;
                let archive = self
                    .archive(prefix)
                    .map_err(|err| format!("{shown}: {}", escape(&format!("{err:#}"))))?;
                return match archive.tree.get(&member) {
                    Some(Node {
                        kind: Kind::File(content),
                        ..
                    }) => Ok(content.clone()),
                    Some(Node {
                        kind: Kind::HardLink(target),
                        ..
                    }) => match archive.tree.get(target) {
                        Some(Node {
                            kind: Kind::File(content),
                            ..
                        }) => Ok(content.clone()),
                        _ => Err(format!("{shown}: broken hard link")),
                    },
                    Some(_) => Err(format!("{shown}: member is not a regular file")),
                    None => Err(format!(
                        "missing source file: {} has no member {}",
                        escape_bytes(prefix.as_os_str().as_bytes()),
                        escape(&member.to_string())
                    )),
                };
            }
            if prefix.exists() {
                break;
            }
        }
        Err(format!("missing source file {shown}"))
    }
}

/// One word of a list line: as written, or decoded from its quoted form.
struct Word<'a> {
    bytes: Cow<'a, [u8]>,
    quoted: bool,
}

impl Word<'_> {
    /// The word as text: names, targets, modes and numbers must be UTF-8.
    fn as_str(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.bytes)
            .map_err(|_| format!("{} is not UTF-8", quote_bytes(&self.bytes)))
    }

    /// A `file` location: a quoted one is a host path taken byte for byte, a plain one
    /// has its `${VAR}`s expanded as gen_init_cpio does.
    fn location(&self) -> Result<PathBuf, String> {
        if self.quoted {
            return Ok(PathBuf::from(OsStr::from_bytes(&self.bytes)));
        }
        Ok(PathBuf::from(expand(self.as_str()?)?))
    }
}

/// The words of one list line, split on whitespace (as the kernel splits them), quoted
/// words decoded (see the module comment).
fn split(line: &str) -> Result<Vec<Word<'_>>, String> {
    let mut words = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let after = if let Some(body) = rest.strip_prefix('"') {
            let (bytes, after) = unquote(body)?;
            if after.starts_with(|c: char| !c.is_whitespace()) {
                return Err(format!(
                    "{}: a quoted word must end at its closing quote",
                    quoted(&bytes)
                ));
            }
            words.push(Word {
                bytes: Cow::Owned(bytes),
                quoted: true,
            });
            after
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            words.push(Word {
                bytes: Cow::Borrowed(&rest.as_bytes()[..end]),
                quoted: false,
            });
            &rest[end..]
        };
        rest = after.trim_start();
    }
    Ok(words)
}

/// Decodes a quoted word's body up to its closing quote: the bytes and what follows.
fn unquote(body: &str) -> Result<(Vec<u8>, &str), String> {
    let bad = |escape: String| {
        format!("bad escape \\{escape} in a quoted word: expected \\\\, \\\", \\n, \\t or \\xHH")
    };
    let mut bytes = Vec::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((bytes, &body[at + 1..])),
            '\\' => {
                let escaped = match chars.next().map(|(_, c)| c) {
                    Some('\\') => b'\\',
                    Some('"') => b'"',
                    Some('n') => b'\n',
                    Some('t') => b'\t',
                    Some('x') => {
                        let digits: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                        if digits.len() != 2 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
                            return Err(bad(format!("x{}", escape(&digits))));
                        }
                        u8::from_str_radix(&digits, 16).map_err(|_| bad(format!("x{digits}")))?
                    }
                    Some(other) => return Err(bad(escape(&other.to_string()).into_owned())),
                    None => break,
                };
                bytes.push(escaped);
            }
            c => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Err("unterminated quoted word: the closing \" is missing".to_string())
}

/// A word as a list holds it: plain when `kiln pack` reads it back as written, else quoted.
pub fn quote(word: &str) -> Cow<'_, str> {
    if is_plain(word) {
        return Cow::Borrowed(word);
    }
    Cow::Owned(quoted(word.as_bytes()))
}

/// `quote` for bytes that need not be UTF-8: a host path.
pub fn quote_bytes(word: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(word) {
        Ok(text) => quote(text),
        Err(_) => Cow::Owned(quoted(word)),
    }
}

/// Text with the quoted form's escapes but no quotes, so it is one line and holds no
/// control character: for `kiln ls` and messages.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_bytes(text.as_bytes())
}

/// `escape` for bytes that need not be UTF-8.
pub fn escape_bytes(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(|c| c == '\\' || c.is_control()) => Cow::Borrowed(text),
        _ => {
            let mut out = String::new();
            escape_into(&mut out, bytes, Quotes::Raw);
            Cow::Owned(out)
        }
    }
}

/// Whether a word reads back as written: not empty, no whitespace, control character,
/// quote or backslash, no leading `#` (a comment) and no `${` (an expansion).
fn is_plain(word: &str) -> bool {
    !word.is_empty()
        && !word.starts_with('#')
        && !word.contains("${")
        && !word
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\')
}

fn quoted(bytes: &[u8]) -> String {
    let mut out = String::from('"');
    escape_into(&mut out, bytes, Quotes::Escaped);
    out.push('"');
    out
}

/// Whether `"` is escaped: inside a quoted word it must be, in plain text it need not.
#[derive(Clone, Copy, PartialEq)]
enum Quotes {
    Escaped,
    Raw,
}

/// `\\`, `\n`, `\t`, `\"` (when asked), and `\xHH` for each byte of any other control
/// character and for each byte that is not UTF-8; everything else as it is.
fn escape_into(out: &mut String, bytes: &[u8], quotes: Quotes) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' if quotes == Quotes::Escaped => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    for byte in c.encode_utf8(&mut [0; 4]).bytes() {
                        out.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words of `line` as bytes, or the error.
    fn words(line: &str) -> Result<Vec<Vec<u8>>, String> {
        Ok(split(line)?
            .into_iter()
            .map(|word| word.bytes.into_owned())
            .collect())
    }

    #[test]
    fn plain_words_stay_plain() {
        for word in [
            "/bin/busybox",
            "0755",
            "c",
            "$HOME",
            "$X}",
            "{a}",
            "a#b",
            "caf\u{e9}",
        ] {
            let quoted = quote(word);
            assert!(
                matches!(quoted, Cow::Borrowed(_)),
                "quote({word:?}) = {quoted}"
            );
        }
        // The kernel's own lines read as they always did.
        assert_eq!(
            words("file /init ${SRC}/init.sh 0755 0 0\t/linit  ").unwrap(),
            [
                "file",
                "/init",
                "${SRC}/init.sh",
                "0755",
                "0",
                "0",
                "/linit"
            ]
            .map(Vec::from)
        );
        // A quote inside a plain word is a character like any other.
        assert_eq!(
            words(r#"a"b c""#).unwrap(),
            [r#"a"b"#, r#"c""#].map(Vec::from)
        );
    }

    #[test]
    fn quotes_what_a_plain_word_cannot_hold() {
        let cases = [
            ("", r#""""#),
            ("a b", r#""a b""#),
            (
                "x\nfile /x /etc/shadow 0644 0 0",
                r#""x\nfile /x /etc/shadow 0644 0 0""#,
            ),
            ("\tq\"\\", r#""\tq\"\\""#),
            ("#c", r##""#c""##),
            ("/${HOME}", r#""/${HOME}""#),
            ("\u{1b}[31m", r#""\x1b[31m""#),
            ("\u{7f}\u{9b}\u{a0}", "\"\\x7f\\xc2\\x9b\u{a0}\""),
            ("\0", r#""\x00""#),
        ];
        for (word, want) in cases {
            assert_eq!(quote(word), want, "quote({word:?})");
        }
        assert_eq!(quote_bytes(b"a\xffb"), r#""a\xffb""#);
    }

    #[test]
    fn every_byte_round_trips() {
        for byte in 0..=u8::MAX {
            for word in [
                vec![byte],
                vec![b'a', byte, b'b'],
                vec![byte, byte, b' ', byte],
            ] {
                let line = format!("x {} y", quote_bytes(&word));
                assert!(!line.contains(|c: char| c.is_control()), "{line:?}");
                assert_eq!(words(&line).unwrap(), [b"x".to_vec(), word, b"y".to_vec()]);
            }
        }
        // And every character of the first 256, as text.
        for c in (0..=0xff).filter_map(char::from_u32) {
            let word = format!("/n{c}{c}");
            assert_eq!(words(&quote(&word)).unwrap(), [word.into_bytes()]);
        }
    }

    #[test]
    fn decodes_quoted_words() {
        assert_eq!(
            words(r#""a b"	"\x41\x7e\n""#).unwrap(),
            [b"a b".to_vec(), b"A~\n".to_vec()]
        );
        assert_eq!(words(r#""""#).unwrap(), [Vec::new()]);
        // A raw tab or non-ASCII character inside quotes is itself.
        assert_eq!(
            words("\"\t\u{e9}\"").unwrap(),
            ["\t\u{e9}".as_bytes().to_vec()]
        );
    }

    #[test]
    fn refuses_malformed_quoting() {
        let cases = [
            (
                r#""abc"#,
                "unterminated quoted word: the closing \" is missing",
            ),
            (
                r#""abc\"#,
                "unterminated quoted word: the closing \" is missing",
            ),
            (
                r#""a\q""#,
                r#"bad escape \q in a quoted word: expected \\, \", \n, \t or \xHH"#,
            ),
            (
                r#""\x4""#,
                r#"bad escape \x4" in a quoted word: expected \\, \", \n, \t or \xHH"#,
            ),
            (
                r#""\x+f""#,
                r#"bad escape \x+f in a quoted word: expected \\, \", \n, \t or \xHH"#,
            ),
            (
                r#""a"b"#,
                r#""a": a quoted word must end at its closing quote"#,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(words(line).unwrap_err(), want, "split({line:?})");
        }
    }

    #[test]
    fn quoted_location_is_literal() {
        let line = split(r#"file /a "${HOME}/\xff" 0644 0 0"#).unwrap();
        assert_eq!(
            line[2].location().unwrap(),
            PathBuf::from(OsStr::from_bytes(b"${HOME}/\xff"))
        );
        let line = split("file /a ${KILN_SURELY_UNSET_VAR} 0644 0 0").unwrap();
        assert_eq!(
            line[2].location().unwrap_err(),
            "variable ${KILN_SURELY_UNSET_VAR} is not set"
        );
    }
}
