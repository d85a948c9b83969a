//! `periodic_sensor` with a temporary file standing in for the sensor: readings at the
//! period, SIGHUP reloading the config file (and saying there is nothing to reload without
//! one), config-file mistakes named as such, SIGTERM/SIGINT ending it with status 0.

mod support;

use rustix::process::Signal;
use std::path::PathBuf;
use support::examples::{run_to_end, Example};

/// A fresh temporary directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("picosel_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A reading line: `WALL t=SECONDS value=VALUE`.
struct Reading {
    t: f64,
    value: String,
}

fn next_reading(ex: &mut Example) -> Reading {
    let line = ex.expect_line("a reading", |l| l.contains(" t=") && l.contains(" value="));
    let field = |name: &str| {
        line.split(' ')
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
            .to_string()
    };
    Reading {
        t: field("t=").parse().unwrap(),
        value: field("value="),
    }
}

#[test]
fn readings_arrive_at_the_period_and_sigterm_exits_zero() {
    let dir = TempDir::new("sensor_period");
    let sensor = dir.file("temp", "42000\n");
    let mut ex = Example::spawn(
        "periodic_sensor",
        &["--path", &sensor, "--period-ms", "100"],
    );
    ex.expect_line("the start line", |l| {
        l == format!("reading {sensor} every 100 ms")
    });
    for k in 1..=5 {
        let r = next_reading(&mut ex);
        assert_eq!(r.value, "42000");
        // A periodic timer never fires early: the k-th reading is at least k periods after
        // the start (printed to the millisecond, hence the 1 ms of slack).
        assert!(r.t >= k as f64 * 0.1 - 0.001, "reading {k} at t={}", r.t);
    }
    std::fs::write(&sensor, "43500\n").unwrap();
    ex.expect_line("the new value", |l| l.ends_with(" value=43500"));

    ex.signal(Signal::TERM);
    let (status, rest) = ex.finish();
    assert_eq!(status.code(), Some(0), "{}", ex.stderr());
    assert!(
        rest.last().is_some_and(|l| l.starts_with("stopped after ")),
        "{rest:?}"
    );
}

#[test]
fn sighup_rereads_the_config_file_and_sigint_exits_zero() {
    let dir = TempDir::new("sensor_reload");
    let a = dir.file("a", "1\n");
    let b = dir.file("b", "2\n");
    let config = dir.file(
        "sensor.conf",
        &format!("# first\npath = {a}\nperiod_ms = 50\n"),
    );
    let mut ex = Example::spawn("periodic_sensor", &["--config", &config]);
    ex.expect_line("the start line", |l| {
        l == format!("reading {a} every 50 ms")
    });
    assert_eq!(next_reading(&mut ex).value, "1");

    std::fs::write(&config, format!("path = {b}\nperiod_ms = 30\n")).unwrap();
    ex.signal(Signal::HUP);
    ex.expect_line("the reload", |l| {
        l == format!("reloaded: path={b} period_ms=30")
    });
    assert_eq!(next_reading(&mut ex).value, "2");

    // A broken file is reported and the running settings kept.
    std::fs::write(&config, "period_ms = soon\n").unwrap();
    ex.signal(Signal::HUP);
    let deadline = std::time::Instant::now() + support::examples::PATIENCE;
    // Wait for the whole line: stderr is unbuffered, so `eprintln!` may arrive in pieces.
    let want = format!(
        "reload failed, keeping the running settings: config file {config}: line 1: \
         period_ms: not a number: \"soon\"\n"
    );
    while !ex.stderr().contains(&want) {
        assert!(std::time::Instant::now() < deadline, "{}", ex.stderr());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(next_reading(&mut ex).value, "2");

    ex.signal(Signal::INT);
    let (status, _) = ex.finish();
    assert_eq!(status.code(), Some(0), "{}", ex.stderr());
}

#[test]
fn a_missing_sensor_is_a_clear_error() {
    let (status, _, stderr) = run_to_end("periodic_sensor", &["--path", "/nonexistent/temp"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read /nonexistent/temp") && stderr.contains("--path"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_and_config_are_refused() {
    for args in [&["--period-ms", "0"][..], &["--path"][..], &["--fast"][..]] {
        let (status, _, stderr) = run_to_end("periodic_sensor", args);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("usage:"), "{args:?}: {stderr}");
    }
}

/// A mistake in the config file says it is the config file, names it, and gives the line;
/// at start it ends the program with status 2, without the command line's usage (the command
/// line was right).
#[test]
fn a_config_file_error_names_the_file_as_the_config_and_the_line() {
    let dir = TempDir::new("sensor_badconf");
    for (contents, want) in [
        (
            "# sensor\npath = /tmp\ncolour = blue\n",
            "line 3: unknown key \"colour\" (path, period_ms)",
        ),
        (
            "period_ms 100\n",
            "line 1: expected `key = value`, not \"period_ms 100\"",
        ),
        (
            "period_ms = soon\n",
            "line 1: period_ms: not a number: \"soon\"",
        ),
        (
            "\nperiod_ms = 0\n",
            "line 2: period_ms: not accepted: \"0\" (use a positive number of milliseconds)",
        ),
    ] {
        let config = dir.file("bad.conf", contents);
        let (status, stdout, stderr) = run_to_end("periodic_sensor", &["--config", &config]);
        assert_eq!(status.code(), Some(2), "{stderr}");
        assert_eq!(stdout, "");
        assert_eq!(
            stderr,
            format!("periodic_sensor: config file {config}: {want}\n")
        );
    }
    let missing = dir.0.join("missing.conf");
    let missing = missing.to_str().unwrap();
    let (status, _, stderr) = run_to_end("periodic_sensor", &["--config", missing]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("periodic_sensor: config file {missing}: "))
            && stderr.contains("No such file"),
        "{stderr}"
    );
}

#[test]
fn help_states_every_default_and_exits_zero() {
    for flag in ["--help", "-h"] {
        let (status, stdout, stderr) = run_to_end("periodic_sensor", &[flag]);
        assert_eq!(status.code(), Some(0), "{flag}: {stderr}");
        assert!(
            stdout.starts_with(
                "usage: periodic_sensor [--path FILE] [--period-ms MS] [--config FILE]\n"
            ),
            "{stdout}"
        );
        for want in [
            "(default: /sys/class/thermal/thermal_zone0/temp)",
            "(default: 1000)",
            "(default: none)",
            "epoll, room for 2 registrations",
            "1 timer",
            "SIGHUP: re-read --config",
            "SIGINT, SIGTERM: exit 0",
        ] {
            assert!(stdout.contains(want), "no {want:?} in:\n{stdout}");
        }
    }
}

/// Without `--config` there is nothing to reload: SIGHUP says so, and the readings go on.
#[test]
fn sighup_without_a_config_says_nothing_to_reload_and_keeps_reading() {
    let dir = TempDir::new("sensor_noconf");
    let sensor = dir.file("temp", "7\n");
    let mut ex = Example::spawn("periodic_sensor", &["--path", &sensor, "--period-ms", "50"]);
    assert_eq!(next_reading(&mut ex).value, "7");
    ex.signal(Signal::HUP);
    ex.expect_line("the SIGHUP line", |l| {
        l == "SIGHUP: nothing to reload (no config file); still running"
    });
    std::fs::write(&sensor, "8\n").unwrap();
    ex.expect_line("a reading after SIGHUP", |l| l.ends_with(" value=8"));
    ex.signal(Signal::TERM);
    let (status, _) = ex.finish();
    assert_eq!(status.code(), Some(0), "{}", ex.stderr());
}
