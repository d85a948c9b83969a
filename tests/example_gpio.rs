//! `gpio_watch` without GPIO hardware: argument handling, the errors a user meets first, and
//! SIGHUP answered with "nothing to reload".
//! The PRIORITY mechanism itself (POLLPRI through every backend) is covered by the
//! conformance suite with TCP out-of-band data.

mod support;

use std::process::Command;
use support::examples::{example_path, run_to_end, Example};

#[test]
fn no_path_is_a_usage_error() {
    let (status, _, stderr) = run_to_end("gpio_watch", &[]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("gpio_watch: PATH is required\nusage: gpio_watch PATH\n"),
        "{stderr}"
    );
}

#[test]
fn two_paths_or_an_unknown_option_are_usage_errors() {
    for args in [&["/a", "/b"][..], &["--fast"][..]] {
        let (status, _, stderr) = run_to_end("gpio_watch", args);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("usage:"), "{stderr}");
    }
}

#[test]
fn help_prints_usage_and_succeeds() {
    for flag in ["--help", "-h"] {
        let (status, stdout, stderr) = run_to_end("gpio_watch", &[flag]);
        assert_eq!(status.code(), Some(0), "{flag}: {stderr}");
        assert!(stdout.starts_with("usage: gpio_watch PATH\n"), "{stdout}");
        for want in [
            "/sys/class/gpio/gpio17/value",
            "(required; no default)",
            "epoll, 1 registration",
            "SIGHUP: nothing to reload",
        ] {
            assert!(stdout.contains(want), "no {want:?} in:\n{stdout}");
        }
    }
}

/// SIGHUP asks a daemon to reload its configuration; the watcher has none, so it says so and
/// keeps watching (a hang-up of its terminal ends it instead: tests/example_echo.rs).
#[test]
fn sighup_says_nothing_to_reload_and_keeps_watching() {
    let mut ex = Example::spawn("gpio_watch", &["/proc/self/mounts"]);
    ex.expect_line("`watching ...`", |l| l.starts_with("watching "));
    for _ in 0..2 {
        ex.signal(rustix::process::Signal::HUP);
        ex.expect_line("the SIGHUP line", |l| {
            l == "SIGHUP: nothing to reload (no config file); still running"
        });
    }
    assert_eq!(ex.next_line(std::time::Duration::from_millis(200)), None);
    assert!(running(ex.pid()), "{}", ex.stderr());
    ex.signal(rustix::process::Signal::TERM);
    let (status, _) = ex.finish();
    assert!(
        !status.success(),
        "SIGTERM keeps its default action: {status}"
    );
}

/// Whether process `pid` is still running: not exited (a zombie not yet reaped is `Z`).
fn running(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state is the first field after the parenthesised command name.
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .is_some_and(|state| state != "Z" && state != "X")
}

#[test]
fn a_missing_path_says_how_to_export_the_pin() {
    let path = "/sys/class/gpio/gpio9999/value";
    let (status, _, stderr) = run_to_end("gpio_watch", &[path]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(path) && stderr.contains("no such file"),
        "{stderr}"
    );
    assert!(stderr.contains("/sys/class/gpio/export"), "{stderr}");
}

#[test]
fn a_directory_is_refused_with_the_file_to_use() {
    let dir = std::env::temp_dir();
    let (status, _, stderr) = run_to_end("gpio_watch", &[dir.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is a directory") && stderr.contains("/value"),
        "{stderr}"
    );
}

#[test]
fn a_regular_file_is_refused_as_unable_to_signal_edges() {
    let path = std::env::temp_dir().join(format!("gpio_watch_value_{}", std::process::id()));
    std::fs::write(&path, "0\n").unwrap();
    let (status, _, stderr) = run_to_end("gpio_watch", &[path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot signal edges"), "{stderr}");
}

#[test]
fn an_unreadable_file_says_permission_denied() {
    if rustix::process::geteuid().is_root() {
        // root reads any file: there is no permission error to see here.
        return;
    }
    let path = std::env::temp_dir().join(format!("gpio_watch_locked_{}", std::process::id()));
    std::fs::write(&path, "0\n").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let (status, _, stderr) = run_to_end("gpio_watch", &[path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
}

/// A file that signals changes with POLLPRI as a GPIO value file does: `/proc/self/mounts`
/// (proc_mounts_poll). The watcher starts, reads the value and waits.
#[test]
fn a_pollpri_file_is_watched_until_killed() {
    let mut ex = Example::spawn("gpio_watch", &["/proc/self/mounts"]);
    let line = ex.expect_line("`watching ...`", |l| l.starts_with("watching "));
    assert!(line.contains("/proc/self/mounts for edges"), "{line}");
    // Nothing changes the mount table: no edge is reported, the watcher keeps waiting.
    assert_eq!(ex.next_line(std::time::Duration::from_millis(300)), None);
    ex.signal(rustix::process::Signal::TERM);
    let (status, _) = ex.finish();
    assert!(!status.success());
}

/// Whether this process may make mount namespaces (root, and a kernel or container that
/// allows it).
fn can_unshare_mounts() -> bool {
    rustix::process::geteuid().is_root()
        && Command::new("unshare")
            .args(["-m", "true"])
            .status()
            .is_ok_and(|s| s.success())
}

/// A whole edge, from the PRIORITY wake-up through `lseek` + `read` to the printed line:
/// mounting in a private mount namespace changes that namespace's `/proc/self/mounts`, which
/// then signals `POLLPRI | POLLERR` exactly as a GPIO value file does on an edge. Needs root
/// and `unshare`/`nsenter` (util-linux); skipped without them.
#[test]
fn a_pollpri_change_is_printed_as_an_edge_with_a_monotonic_timestamp() {
    if !can_unshare_mounts() {
        eprintln!("skipped: cannot make a mount namespace here");
        return;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--"])
        .arg(example_path("gpio_watch"))
        .arg("/proc/self/mounts");
    let mut ex = Example::spawn_cmd("gpio_watch", &mut cmd);
    let start = ex.expect_line("`watching ...`", |l| l.starts_with("watching "));
    let t0: f64 = start.rsplit(' ').next().unwrap().parse().unwrap();

    // `unshare` execs the watcher, so its pid names the namespace; the mount stays inside it.
    let dir = std::env::temp_dir().join(format!("gpio_watch_mnt_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid = ex.pid().to_string();
    let mount = Command::new("nsenter")
        .args(["-t", &pid, "-m", "mount", "-t", "tmpfs", "picosel-edge"])
        .arg(&dir)
        .status()
        .expect("nsenter");
    assert!(mount.success());
    let edge = ex.expect_line("an edge", |l| l.contains(" edge value="));
    let _ = std::fs::remove_dir(&dir);
    let t1: f64 = edge.split(' ').next().unwrap().parse().unwrap();
    assert!(t1 >= t0, "edge at {t1} before the start at {t0}");
}
