//! Hostile names never hurt (the "No injection" part of that issue): `kiln ls` prints
//! every entry as one line without control bytes, and `kiln ls --list` quotes what a plain
//! list word cannot hold, so `kiln pack` reads every name and symlink target back exactly
//! and a crafted one never reads as a line of its own (it once copied the build host's
//! `/etc/shadow` into the repacked archive).

use std::fs;
use std::path::PathBuf;

use expect_test::expect;

use crate::util::{Scratch, ok, run, s, stderr, stdout};

/// Names with a newline, spaces, tabs, quotes, backslashes, ESC, a C1 control, DEL, `#`,
/// `${HOME}`, non-ASCII text, names that look like list lines, symlink targets that
/// smuggle a `file` line, an empty target and one with a NUL, all written in the quoted
/// list form; packed into an archive whose own name holds a space and a newline. Every
/// kind is there, hard links with hostile names too; sockets only when `with_socket`
/// (tar has no socket type).
fn hostile_archive(scratch: &Scratch, name: &str, with_socket: bool) -> PathBuf {
    scratch.write("src/plain", "plain\n");
    scratch.write("src/with space\tand tab", "spaced\n");
    let secret = scratch.write("secret", "host secret\n");
    let mut list = String::from(
        r##"# hostile names, in kiln's quoted list form
dir "/a b" 0755 0 0
dir "/new\nline" 0700 1 2
dir "/dir x 0755 0 0" 0755 0 0
dir "/caf\xc3\xa9 é\tn\xc2\xa0b" 0755 0 0
file "/tab\there" "src/with space\tand tab" 0644 0 0 "/quote\"d" "/back\\slash" "/#hash"
file "/esc\x1b[31mred\x1b[0m" src/plain 0600 0 0
file "/${HOME}" src/plain 0644 3 4
file "/x\nfile /y /etc/passwd 0644 0 0" src/plain 0644 0 0
nod "/dev/con sole\x0d" 0600 0 0 c 5 1
pipe "/p\nslink /z /etc 0777 0 0" 0600 0 0
slink /evil "x\nfile /x /etc/shadow 0644 0 0" 0777 0 0
slink /leak "x 0777 0 0\nfile /x2 SECRET 0644 0 0" 0777 0 0
slink /comment "#not a comment" 0777 0 0
slink "/quote\"" "\"\\\t" 0777 0 0
slink /c1 "\xc2\x9b31m\x7f" 0777 0 0
slink /empty "" 0777 0 0
slink /nul "a\x00b" 0777 0 0
"##,
    )
    .replace("SECRET", s(&secret));
    if with_socket {
        list.push_str("sock \"/s\\tock\" 0755 0 0\n");
    }
    let list = scratch.write("hostile.list", &list);
    let archive = scratch.join(name);
    let output = run(["pack", s(&list), "-o", s(&archive)]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!(
            "kiln: wrote {} ({}, {} entries)\n",
            s(&archive),
            if name.ends_with(".cpio") {
                "cpio"
            } else {
                "tar"
            },
            ENTRIES - usize::from(!with_socket)
        )
    );
    archive
}

/// How many entries the hostile archive holds, its implicit parents included.
const ENTRIES: usize = 27;

/// The lines of `text`, insisting that none holds a control character: no byte below 0x20
/// but the newlines that end them, no DEL, and no C1 control (U+0080 to U+009F).
fn lines(text: &str) -> Vec<&str> {
    assert!(text.is_empty() || text.ends_with('\n'), "{text:?}");
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    for line in &lines {
        assert!(
            !line.contains(char::is_control),
            "raw control character in {line:?}"
        );
    }
    lines
}

#[test]
fn ls_prints_one_line_per_entry_without_control_bytes() {
    let scratch = Scratch::new("escape-ls");
    let archive = hostile_archive(&scratch, "hostile\narchive one.cpio", true);
    let listing = ok(["ls", s(&archive)]);
    assert_eq!(lines(&listing).len(), ENTRIES);
    let listing = listing.replace(s(&scratch.path), "SCRATCH");
    expect![[r#"
        -rw-r--r-- 0/0            7 2000-01-01 00:00 #hash
        -rw-r--r-- 3/4            6 2000-01-01 00:00 ${HOME}
        drwxr-xr-x 0/0            0 2000-01-01 00:00 a b/
        -rw-r--r-- 0/0            0 2000-01-01 00:00 back\\slash link to #hash
        lrwxrwxrwx 0/0            0 2000-01-01 00:00 c1 -> \xc2\x9b31m\x7f
        drwxr-xr-x 0/0            0 2000-01-01 00:00 café é\tn b/
        lrwxrwxrwx 0/0            0 2000-01-01 00:00 comment -> #not a comment
        drwxr-xr-x 0/0            0 2000-01-01 00:00 dev/
        crw------- 0/0          5,1 2000-01-01 00:00 dev/con sole\x0d
        drwxr-xr-x 0/0            0 2000-01-01 00:00 dir x 0755 0 0/
        lrwxrwxrwx 0/0            0 2000-01-01 00:00 empty -> 
        -rw------- 0/0            6 2000-01-01 00:00 esc\x1b[31mred\x1b[0m
        lrwxrwxrwx 0/0            0 2000-01-01 00:00 evil -> x\nfile /x /etc/shadow 0644 0 0
        lrwxrwxrwx 0/0            0 2000-01-01 00:00 leak -> x 0777 0 0\nfile /x2 SCRATCH/secret 0644 0 0
        drwx------ 1/2            0 2000-01-01 00:00 new\nline/
        lrwxrwxrwx 0/0            0 2000-01-01 00:00 nul -> a\x00b
        drwxr-xr-x 0/0            0 2000-01-01 00:00 p\nslink /
        drwxr-xr-x 0/0            0 2000-01-01 00:00 p\nslink /z /
        prw------- 0/0            0 2000-01-01 00:00 p\nslink /z /etc 0777 0 0
        lrwxrwxrwx 0/0            0 2000-01-01 00:00 quote" -> "\\\t
        -rw-r--r-- 0/0            0 2000-01-01 00:00 quote"d link to #hash
        srwxr-xr-x 0/0            0 2000-01-01 00:00 s\tock
        -rw-r--r-- 0/0            0 2000-01-01 00:00 tab\there link to #hash
        drwxr-xr-x 0/0            0 2000-01-01 00:00 x\nfile /
        drwxr-xr-x 0/0            0 2000-01-01 00:00 x\nfile /y /
        drwxr-xr-x 0/0            0 2000-01-01 00:00 x\nfile /y /etc/
        -rw-r--r-- 0/0            6 2000-01-01 00:00 x\nfile /y /etc/passwd 0644 0 0
    "#]].assert_eq(&listing);
    let manifest = ok(["ls", "--manifest", s(&archive)]);
    assert_eq!(lines(&manifest).len(), ENTRIES);
    let manifest = manifest.replace(s(&scratch.path), "SCRATCH");
    expect![[r##"
        file /#hash 0644 0 0 7 6957506f
        file "/${HOME}" 0644 3 4 6 3915f9d0
        dir "/a b" 0755 0 0
        link "/back\\slash" 0644 0 0 /#hash
        slink /c1 0777 0 0 "\xc2\x9b31m\x7f"
        dir "/café é\tn b" 0755 0 0
        slink /comment 0777 0 0 "#not a comment"
        dir /dev 0755 0 0
        nod "/dev/con sole\x0d" 0600 0 0 c 5 1
        dir "/dir x 0755 0 0" 0755 0 0
        slink /empty 0777 0 0 ""
        file "/esc\x1b[31mred\x1b[0m" 0600 0 0 6 3915f9d0
        slink /evil 0777 0 0 "x\nfile /x /etc/shadow 0644 0 0"
        slink /leak 0777 0 0 "x 0777 0 0\nfile /x2 SCRATCH/secret 0644 0 0"
        dir "/new\nline" 0700 1 2
        slink /nul 0777 0 0 "a\x00b"
        dir "/p\nslink " 0755 0 0
        dir "/p\nslink /z " 0755 0 0
        pipe "/p\nslink /z /etc 0777 0 0" 0600 0 0
        slink "/quote\"" 0777 0 0 "\"\\\t"
        link "/quote\"d" 0644 0 0 /#hash
        sock "/s\tock" 0755 0 0
        link "/tab\there" 0644 0 0 /#hash
        dir "/x\nfile " 0755 0 0
        dir "/x\nfile /y " 0755 0 0
        dir "/x\nfile /y /etc" 0755 0 0
        file "/x\nfile /y /etc/passwd 0644 0 0" 0644 0 0 6 3915f9d0
    "##]]
    .assert_eq(&manifest);
}

#[test]
fn ls_list_quotes_what_pack_reads_back_exactly() {
    let scratch = Scratch::new("escape-list");
    let archive = hostile_archive(&scratch, "hostile\narchive one.cpio", true);
    let list = ok(["ls", "--list", s(&archive)]);
    // One line per entry, less the hard links' names, which ride on their file's line.
    assert_eq!(lines(&list).len(), ENTRIES - 3);
    let shown = list.replace(s(&scratch.path), "SCRATCH");
    expect![[r##"
        file /#hash "SCRATCH/hostile\narchive one.cpio/#hash" 0644 0 0 "/back\\slash" "/quote\"d" "/tab\there"
        file "/${HOME}" "SCRATCH/hostile\narchive one.cpio/${HOME}" 0644 3 4
        dir "/a b" 0755 0 0
        slink /c1 "\xc2\x9b31m\x7f" 0777 0 0
        dir "/café é\tn b" 0755 0 0
        slink /comment "#not a comment" 0777 0 0
        dir /dev 0755 0 0
        nod "/dev/con sole\x0d" 0600 0 0 c 5 1
        dir "/dir x 0755 0 0" 0755 0 0
        slink /empty "" 0777 0 0
        file "/esc\x1b[31mred\x1b[0m" "SCRATCH/hostile\narchive one.cpio/esc\x1b[31mred\x1b[0m" 0600 0 0
        slink /evil "x\nfile /x /etc/shadow 0644 0 0" 0777 0 0
        slink /leak "x 0777 0 0\nfile /x2 SCRATCH/secret 0644 0 0" 0777 0 0
        dir "/new\nline" 0700 1 2
        slink /nul "a\x00b" 0777 0 0
        dir "/p\nslink " 0755 0 0
        dir "/p\nslink /z " 0755 0 0
        pipe "/p\nslink /z /etc 0777 0 0" 0600 0 0
        slink "/quote\"" "\"\\\t" 0777 0 0
        sock "/s\tock" 0755 0 0
        dir "/x\nfile " 0755 0 0
        dir "/x\nfile /y " 0755 0 0
        dir "/x\nfile /y /etc" 0755 0 0
        file "/x\nfile /y /etc/passwd 0644 0 0" "SCRATCH/hostile\narchive one.cpio/x\nfile /y /etc/passwd 0644 0 0" 0644 0 0
    "##]].assert_eq(&shown);
    let relisted = scratch.write("relisted.list", &list);
    let repacked = scratch.join("repacked.cpio");
    ok(["pack", s(&relisted), "-o", s(&repacked)]);
    assert_eq!(
        ok(["ls", "--manifest", s(&repacked)]),
        ok(["ls", "--manifest", s(&archive)])
    );
    // The same bytes, too: the list is the archive, not a description of it.
    assert!(fs::read(&repacked).unwrap() == fs::read(&archive).unwrap());
    let output = run(["diff", s(&archive), s(&repacked)]);
    assert_eq!(
        (output.status.code(), stdout(&output)),
        (Some(0), String::new())
    );
}

#[test]
fn tar_listing_round_trips_too() {
    let scratch = Scratch::new("escape-tar");
    let archive = hostile_archive(&scratch, "hostile\narchive one.tar", false);
    let relisted = scratch.write("relisted.list", &ok(["ls", "--list", s(&archive)]));
    let repacked = scratch.join("repacked.tar.gz");
    ok(["pack", s(&relisted), "-o", s(&repacked)]);
    assert_eq!(
        ok(["ls", "--manifest", s(&repacked)]),
        ok(["ls", "--manifest", s(&archive)])
    );
}

/// The report's case: a symlink target holding a newline and a `file` line. Listed raw, the
/// first line was a whole `slink` line and the second a `file` line whose extra words read
/// as hard links, so packing the list copied the host file it names: `/etc/shadow` (when
/// readable), or any file the user can read. Quoted, it stays a symlink target.
#[test]
fn a_symlink_target_never_becomes_a_file_line() {
    let scratch = Scratch::new("escape-shadow");
    let secret = scratch.write("secret", "host secret\n");
    for (case, host_file) in [("shadow", "/etc/shadow"), ("secret", s(&secret))] {
        let target = format!("x 0777 0 0\\nfile /x {host_file} 0644 0 0");
        let line = format!("slink /evil \"{target}\" 0777 0 0\n");
        let list = scratch.write(&format!("{case}.list"), &line);
        let archive = scratch.join(&format!("{case}.cpio"));
        ok(["pack", s(&list), "-o", s(&archive)]);
        let listed = ok(["ls", "--list", s(&archive)]);
        assert_eq!(listed, line);
        let relisted = scratch.write(&format!("{case}.relisted.list"), &listed);
        let repacked = scratch.join(&format!("{case}.repacked.cpio"));
        ok(["pack", s(&relisted), "-o", s(&repacked)]);
        let manifest = ok(["ls", "--manifest", s(&repacked)]);
        assert_eq!(manifest, ok(["ls", "--manifest", s(&archive)]));
        assert_eq!(
            manifest,
            format!("slink /evil 0777 0 0 \"{target}\"\n"),
            "{case}: the repacked archive holds more than the symlink"
        );
    }
}

#[test]
fn diff_names_hostile_entries_one_line_each() {
    let scratch = Scratch::new("escape-diff");
    let old = hostile_archive(&scratch, "old.cpio", true);
    let changed = scratch.write(
        "changed.list",
        r#"slink /evil "x\nfile /x /etc/shadow 0600 0 0" 0777 0 0
dir "/new\nline\x1b" 0755 0 0
dir "/a b" 0700 0 0
"#,
    );
    let new = scratch.join("new.cpio");
    ok(["pack", s(&old), s(&changed), "-o", s(&new)]);
    let output = run(["diff", s(&old), s(&new)]);
    assert_eq!(output.status.code(), Some(1));
    let diff = stdout(&output);
    assert_eq!(lines(&diff).len(), 3);
    expect![[r#"
        ~ "/a b": mode 0755 -> 0700
        ~ /evil: target "x\nfile /x /etc/shadow 0644 0 0" -> "x\nfile /x /etc/shadow 0600 0 0"
        + "/new\nline\x1b"
    "#]]
    .assert_eq(&diff);
}

#[test]
fn errors_escape_hostile_names() {
    let scratch = Scratch::new("escape-error");
    let list = scratch.write(
        "conflict.list",
        r#"dir "/a\x1b[2J" 0755 0 0
pipe "/a\x1b[2J" 0600 0 0
"#,
    );
    let output = run(["pack", s(&list), "-o", s(&scratch.join("o.cpio"))]);
    assert_eq!(output.status.code(), Some(100));
    let message = stderr(&output);
    lines(&message);
    assert_eq!(
        message.replace(s(&scratch.path), "SCRATCH"),
        "kiln: error: SCRATCH/conflict.list:2: /a\\x1b[2J already provided by SCRATCH/conflict.list:1; SCRATCH/conflict.list:2 wants a different entry\n"
    );
}
