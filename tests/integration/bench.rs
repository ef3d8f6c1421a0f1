//! scripts/boot-bench's parser on console logs recorded from real boots (an s6 boot with
//! no services and one with 7 in two waves, each under TCG and under -icount, and the
//! busybox-sh floor): the figures, the README table and the exec breakdown. The boots
//! themselves are not run here.

use std::path::Path;
use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new("bash")
        .arg("scripts/boot-bench")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("bash runs scripts/boot-bench")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "boot-bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

const DATA: &str = "tests/data/boot-bench";

#[test]
fn boot_bench_parses_recorded_boots() {
    let logs: Vec<String> = ["s6-n0", "s6-n7", "floor"]
        .iter()
        .flat_map(|case| ["tcg-1.log", "icount.log"].map(|log| format!("{DATA}/{case}/{log}")))
        .collect();
    let mut args = vec!["--parse"];
    args.extend(logs.iter().map(String::as_str));
    expect_test::expect![[r#"
        tests/data/boot-bench/s6-n0/tcg-1.log: n=0 supervisor 0.796311 stage2 1.151168 done 1.629672 services - (0/0 exec'd)
        tests/data/boot-bench/s6-n0/icount.log: n=0 supervisor 0.029439 stage2 0.047419 done 0.064754 services - (0/0 exec'd)
        tests/data/boot-bench/s6-n7/tcg-1.log: n=7 supervisor 0.903798 stage2 1.260356 done 3.699929 services 3.551797 (7/7 exec'd)
        tests/data/boot-bench/s6-n7/icount.log: n=7 supervisor 0.030744 stage2 0.047370 done 0.142036 services 0.130211 (7/7 exec'd)
        tests/data/boot-bench/floor/tcg-1.log: floor 0.247260
        tests/data/boot-bench/floor/icount.log: floor 0.001998
    "#]].assert_eq(&stdout(&bench(&args)));
}

#[test]
fn boot_bench_table_and_breakdown_from_recorded_boots() {
    let output = bench(&["--table", DATA, "Recorded.", "s6-n0", "s6-n7"]);
    expect_test::expect![[r#"
        Recorded.

        Guest seconds from the kernel's `Run /init`: median (min–max) of 1 TCG boots; icount: guest ms under `-icount shift=0,sleep=off` (1 ns per instruction, idle time skipped to the next timer, so a guest sleep counts its length; the same on every run).

        | supervisor | N | scanner running | stage 2 starts | stage 2 done | N services up | icount ms: scanner / stage 2 / done / up | done / floor (TCG, icount) |
        | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
        | s6 | 0 | 0.796 (0.796–0.796) | 1.151 (1.151–1.151) | 1.630 (1.630–1.630) | - | 29.4 / 47.4 / 64.8 / - | 6.6×, 32.4× |
        | s6 | 7 | 0.904 (0.904–0.904) | 1.260 (1.260–1.260) | 3.700 (3.700–3.700) | 3.552 (3.552–3.552) | 30.7 / 47.4 / 142.0 / 130.2 | 15.0×, 71.1× |
        | busybox-sh floor | - | - | - | 0.247 (0.247–0.247) | - | 2.0 | 1× |

        s6, no services: every exec from `Run /init` to stage 2 done (icount run; TCG: the median boot, tcg-1.log).

        | # | exec (pid: file) | icount: ms since /init | step | TCG: ms since /init |
        | ---: | --- | ---: | ---: | ---: |
        | 1 | 1: `/init` | 0.2 | 0.2 | 42 |
        | 2 | 1: `/usr/lib/execline/bin/export` | 2.6 | 2.4 | 160 |
        | 3 | 1: `/usr/lib/execline/bin/cd` | 4.0 | 1.4 | 201 |
        | 4 | 1: `/usr/bin/s6-setsid` | 5.5 | 1.5 | 238 |
        | 5 | 1: `/usr/lib/execline/bin/umask` | 6.9 | 1.4 | 256 |
        | 6 | 1: `/usr/lib/execline/bin/foreground` | 8.3 | 1.4 | 270 |
        | 7 | 78: `/bin/echo` | 10.1 | 1.7 | 304 |
        | 8 | 1: `/usr/lib/execline/bin/if` | 11.4 | 1.3 | 344 |
        | 9 | 79: `/bin/mount` | 13.0 | 1.6 | 383 |
        | 10 | 1: `/usr/lib/execline/bin/if` | 14.0 | 1.0 | 402 |
        | 11 | 80: `/bin/cp` | 15.6 | 1.6 | 438 |
        | 12 | 1: `/usr/bin/s6-envdir` | 18.0 | 2.4 | 515 |
        | 13 | 1: `/usr/lib/execline/bin/redirfd` | 19.5 | 1.5 | 548 |
        | 14 | 1: `/usr/lib/execline/bin/redirfd` | 20.9 | 1.4 | 574 |
        | 15 | 1: `/usr/lib/execline/bin/background` | 22.4 | 1.5 | 610 |
        | 16 | 1: `/usr/lib/execline/bin/unexport` | 24.0 | 1.7 | 655 |
        | 17 | 1: `/usr/lib/execline/bin/cd` | 25.3 | 1.3 | 702 |
        | 18 | 1: `/usr/lib/execline/bin/fdmove` | 26.8 | 1.5 | 747 |
        | 19 | 1: `/usr/lib/execline/bin/fdmove` | 28.1 | 1.3 | 772 |
        | 20 | 1: `/usr/bin/s6-svscan` | 29.4 | 1.4 | 796 |
        | 21 | 81: `/usr/bin/s6-setsid` | 30.1 | 0.7 | 652 |
        | 22 | 81: `/usr/lib/execline/bin/redirfd` | 32.6 | 2.5 | 701 |
        | 23 | 83: `/usr/bin/s6-supervise` | 34.1 | 1.5 | 856 |
        | 24 | 82: `/usr/bin/s6-supervise` | 35.9 | 1.8 | 860 |
        | 25 | 85: `./run` | 38.0 | 2.1 | 948 |
        | 26 | 84: `./run` | 38.2 | 0.2 | 963 |
        | 27 | 84: `/usr/lib/execline/bin/redirfd` | 40.0 | 1.8 | 1018 |
        | 28 | 84: `/usr/lib/execline/bin/redirfd` | 41.3 | 1.3 | 1069 |
        | 29 | 85: `/bin/getty` | 43.4 | 2.1 | 1017 |
        | 30 | 84: `/usr/lib/execline/bin/redirfd` | 44.7 | 1.3 | 1089 |
        | 31 | 81: `/usr/lib/execline/bin/fdmove` | 46.2 | 1.4 | 1107 |
        | 32 | 81: `/etc/boot-bench-stage2` | 47.4 | 1.3 | 1151 |
        | 33 | 84: `/usr/bin/s6-applyuidgid` | 48.4 | 1.0 | 1118 |
        | 34 | 84: `/usr/bin/s6-log` | 49.9 | 1.5 | 1171 |
        | 35 | 86: `/bin/grep` | 51.6 | 1.7 | 1240 |
        | 36 | 87: `/bin/mount` | 52.6 | 1.0 | 1271 |
        | 37 | 88: `/proc/self/exe` | 53.5 | 0.9 | 1297 |
        | 38 | 89: `/proc/self/exe` | 54.6 | 1.1 | 1347 |
        | 39 | 90: `/proc/self/exe` | 55.5 | 0.9 | 1370 |
        | 40 | 91: `/proc/self/exe` | 56.5 | 1.0 | 1392 |
        | 41 | 93: `/proc/self/exe` | 58.0 | 1.5 | 1429 |
        | 42 | 94: `/proc/self/exe` | 59.0 | 1.0 | 1458 |
        | 43 | 95: `/proc/self/exe` | 59.9 | 0.9 | 1480 |
        | 44 | 96: `/proc/self/exe` | 61.0 | 1.1 | 1504 |
        | 45 | 98: `/usr/bin/s6-svscanctl` | 63.2 | 2.2 | 1585 |
        | | stage 2 done (kmsg mark) | 64.8 | 1.6 | 1630 |
    "#]].assert_eq(&stdout(&output));
}

#[test]
fn boot_bench_names_a_log_without_the_figures() {
    let scratch = crate::util::Scratch::new("boot-bench");
    let recorded = std::fs::read_to_string(Path::new(DATA).join("s6-n0/tcg-1.log")).unwrap();
    // Cut before the wrapper's mark: stage 2 never finished.
    let cut = recorded.find("BENCH stage2-done").unwrap();
    let log = scratch.write("cut.log", &recorded[..cut]);
    let output = bench(&["--parse", log.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cut.log: no 'BENCH stage2-done' mark: stage 2 did not finish"),
        "{stderr}"
    );
    let log = scratch.write("empty.log", "no kernel here\n");
    let output = bench(&["--parse", log.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no 'Run /init as init process' line"),
        "{stderr}"
    );
}
