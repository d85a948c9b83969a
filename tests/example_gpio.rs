//! `gpio_watch` without GPIO hardware.
//!
//! - The character-device mode's loop (`examples/gpio_watch/chardev.rs`, included here) on a
//!   pipe that stands in for a line request's fd, fed with `struct gpio_v2_line_event` records
//!   in the kernel's layout: the lines printed, records split between reads, a record cut
//!   short at the end, gaps in the sequence numbers. This runs on every target (pipes and
//!   epoll are emulated by qemu-user; GPIO ioctls are not).
//! - The command line of both modes, the errors a user meets first, and SIGHUP answered with
//!   "nothing to reload".
//! - A `gpio-sim` chip, end to end, where the kernel has gpio-sim in configfs and this runs as
//!   root; elsewhere `SKIPPED: gpio-sim end-to-end (<reason>)`.
//!
//! The sysfs mode's PRIORITY mechanism (POLLPRI through every backend) is covered by the
//! conformance suite with TCP out-of-band data, and here with `/proc/self/mounts`.

mod support;

#[allow(dead_code)]
#[path = "../examples/gpio_watch/chardev.rs"]
mod chardev;
#[allow(dead_code)]
#[path = "../examples/gpio_watch/gpio_v2.rs"]
mod gpio_v2;

use chardev::{Ended, Records, Sequence};
use rustix::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::time::Duration;
use support::examples::{example_path, run_to_end, Example, PATIENCE};

/// A record as the kernel writes it (`struct gpio_v2_line_event` of linux/gpio.h: timestamp_ns
/// at 0, id at 8, offset at 12, seqno at 16, line_seqno at 20, padding to 48 bytes), in the
/// machine's byte order. `rising` picks the id: 1 (rising) or 2 (falling).
fn record(timestamp_ns: u64, rising: bool, line: u32, seq: u32) -> [u8; 48] {
    let mut r = [0u8; 48];
    r[0..8].copy_from_slice(&timestamp_ns.to_ne_bytes());
    r[8..12].copy_from_slice(&(if rising { 1u32 } else { 2 }).to_ne_bytes());
    r[12..16].copy_from_slice(&line.to_ne_bytes());
    r[16..20].copy_from_slice(&seq.to_ne_bytes());
    r[20..24].copy_from_slice(&seq.to_ne_bytes());
    r
}

/// Three edges of line 17: rising, falling, rising.
fn three_records() -> Vec<u8> {
    [
        record(1_000_000_000, true, 17, 1),
        record(1_000_250_000, false, 17, 2),
        record(2_500_000_001, true, 17, 3),
    ]
    .concat()
}

const THREE_LINES: [&str; 3] = [
    "edge rising line 17 seq 1 at 1.000000 s",
    "edge falling line 17 seq 2 at 1.000250 s",
    "edge rising line 17 seq 3 at 2.500000 s",
];

/// Runs the example's loop on a pipe: `feed` writes into the pipe (and closes it by dropping
/// its end); returns the lines printed and how the watch ended.
fn watch_pipe(feed: impl FnOnce(OwnedFd) + Send + 'static) -> (Vec<String>, Ended) {
    let (r, w) = support::pipe();
    let writer = std::thread::spawn(move || feed(w));
    let mut out = Vec::new();
    let ended = chardev::watch(r.as_fd(), &mut out).expect("watch");
    writer.join().unwrap();
    let text = String::from_utf8(out).unwrap();
    (text.lines().map(str::to_string).collect(), ended)
}

/// Writes all of `bytes` to the non-blocking pipe, waiting while it is full.
fn write_all(w: &OwnedFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match rustix::io::write(w, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::AGAIN) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("write: {e}"),
        }
    }
}

#[test]
fn records_on_the_request_fd_print_one_line_per_edge() {
    let (lines, ended) = watch_pipe(|w| write_all(&w, &three_records()));
    assert_eq!(lines, THREE_LINES);
    assert_eq!(
        ended,
        Ended {
            events: 3,
            missed: 0,
            partial: 0
        }
    );
}

/// The kernel hands out whole records; a pipe need not. Records split anywhere between reads
/// are put together again.
#[test]
fn records_split_between_reads_are_put_together() {
    let (lines, ended) = watch_pipe(|w| {
        let bytes = three_records();
        // 29-byte pieces: the cuts fall inside records and inside their fields.
        for chunk in bytes.chunks(29) {
            write_all(&w, chunk);
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    assert_eq!(lines, THREE_LINES);
    assert_eq!(ended.partial, 0);
}

/// A record cut short by the end of input is reported, not decoded, and nothing panics.
#[test]
fn a_record_cut_short_at_the_end_is_reported() {
    let (lines, ended) = watch_pipe(|w| {
        let bytes = three_records();
        write_all(&w, &bytes[..48 + 20]);
    });
    assert_eq!(lines, THREE_LINES[..1]);
    assert_eq!(
        ended,
        Ended {
            events: 1,
            missed: 0,
            partial: 20
        }
    );
}

/// A gap in the sequence numbers is the kernel's buffer overflowing: the edges lost are
/// counted and said before the next one.
#[test]
fn a_gap_in_the_sequence_numbers_is_reported_as_missed_edges() {
    let (lines, ended) = watch_pipe(|w| {
        let bytes = [
            record(10, true, 4, 1),
            record(20, false, 4, 5),
            record(30, true, 4, 6),
        ]
        .concat();
        write_all(&w, &bytes);
    });
    assert_eq!(
        lines,
        [
            "edge rising line 4 seq 1 at 0.000000 s",
            "missed 3 edges before seq 5 (the kernel's event buffer was full)",
            "edge falling line 4 seq 5 at 0.000000 s",
            "edge rising line 4 seq 6 at 0.000000 s",
        ]
    );
    assert_eq!(ended.missed, 3);
}

/// More records than one read takes (16): every one arrives, in order.
#[test]
fn a_burst_longer_than_one_read_arrives_whole_and_in_order() {
    let (lines, ended) = watch_pipe(|w| {
        let bytes: Vec<u8> = (1..=100u32)
            .flat_map(|i| record(u64::from(i) * 1_000, i % 2 == 1, 17, i))
            .collect();
        write_all(&w, &bytes);
    });
    assert_eq!(lines.len(), 100);
    for (i, line) in lines.iter().enumerate() {
        assert!(line.contains(&format!(" seq {} at ", i + 1)), "{line}");
    }
    assert_eq!(ended.missed, 0);
}

/// The buffer alone, fed by every chunk size: whole records come out, the rest waits.
#[test]
fn the_record_buffer_keeps_a_partial_record_for_the_next_read() {
    let bytes = three_records();
    for chunk in 1..=bytes.len() {
        let mut records = Records::new();
        let mut got = Vec::new();
        for piece in bytes.chunks(chunk) {
            let n = records
                .fill(|buf: &mut [u8]| -> Result<usize, ()> {
                    buf[..piece.len()].copy_from_slice(piece);
                    Ok(piece.len())
                })
                .unwrap();
            assert_eq!(n, piece.len());
            records.drain(|edge| got.push(edge.to_string()));
        }
        assert_eq!(got, THREE_LINES, "chunks of {chunk}");
        assert_eq!(records.partial(), 0);
    }
}

#[test]
fn sequence_numbers_count_the_edges_missed() {
    let mut seq = Sequence::new();
    assert_eq!(seq.missed_before(1), 0);
    assert_eq!(seq.missed_before(2), 0);
    assert_eq!(seq.missed_before(10), 7);
    assert_eq!(seq.missed_before(11), 0);
    // Going back never counts as a loss.
    assert_eq!(seq.missed_before(3), 0);
    // Edges lost before the first read.
    assert_eq!(Sequence::new().missed_before(4), 3);
    // Across the wrap of the 32-bit counter.
    let mut seq = Sequence::new();
    seq.missed_before(u32::MAX);
    assert_eq!(seq.missed_before(0), 0);
    assert_eq!(seq.missed_before(2), 1);
}

#[test]
fn a_chip_is_a_path_a_name_or_a_number() {
    for (arg, path) in [
        ("0", "/dev/gpiochip0"),
        ("4", "/dev/gpiochip4"),
        ("gpiochip4", "/dev/gpiochip4"),
        ("/dev/gpiochip1", "/dev/gpiochip1"),
        ("./chip", "./chip"),
    ] {
        assert_eq!(chardev::chip_path(arg), std::path::Path::new(path), "{arg}");
    }
}

/// The kernel's answers to a line request, each as a message that says what to do.
#[test]
fn each_refusal_of_a_line_request_says_what_to_do() {
    use rustix::io::Errno;
    let chip = std::path::Path::new("/dev/gpiochip0");
    for (errno, want) in [
        (
            Errno::NOTTY,
            "/dev/gpiochip0 is not a GPIO character device",
        ),
        (
            Errno::INVAL,
            "line 17 cannot be requested with these settings",
        ),
        (Errno::BUSY, "line 17 is in use (`gpioinfo` names its user)"),
        (Errno::NOSYS, "GPIO ioctls are not available here"),
        (Errno::ACCESS, "permission denied"),
        (Errno::PERM, "permission denied"),
        (Errno::NOMEM, "/dev/gpiochip0: line 17: "),
    ] {
        let msg = chardev::request_error(chip, 17, errno);
        assert!(msg.contains(want), "{errno:?}: {msg}");
    }
}

#[test]
fn chardev_usage_errors_are_worded_as_in_every_example() {
    for (args, want) in [
        (&["--chip", "0"][..], "gpio_watch: --line is required\n"),
        (&["--line"][..], "gpio_watch: --line needs a value\n"),
        (
            &["--line", "x"][..],
            "gpio_watch: --line: not a number: \"x\"\n",
        ),
        (
            &["--line", "-1"][..],
            "gpio_watch: --line: not a number: \"-1\"\n",
        ),
        (
            &["--line", "17", "--edge", "up"][..],
            "gpio_watch: --edge: not accepted: \"up\" (use rising, falling or both)\n",
        ),
        (
            &["--line", "17", "--bias", "up"][..],
            "gpio_watch: --bias: not accepted: \"up\" \
             (use as-is, pull-up, pull-down or disabled)\n",
        ),
        (
            &["--line", "17", "--debounce-us", "5ms"][..],
            "gpio_watch: --debounce-us: not a number: \"5ms\"\n",
        ),
        (
            &["--line", "17", "/sys/class/gpio/gpio17/value"][..],
            "gpio_watch: unexpected argument \"/sys/class/gpio/gpio17/value\"\n",
        ),
        (&["--fast"][..], "gpio_watch: unknown option --fast\n"),
    ] {
        let (status, _, stderr) = run_to_end("gpio_watch", args);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with(want), "{args:?}: {stderr}");
        assert!(
            stderr.contains("\nusage: gpio_watch --line OFFSET"),
            "{stderr}"
        );
    }
}

#[test]
fn a_missing_chip_says_how_to_list_them() {
    let (status, _, stderr) = run_to_end(
        "gpio_watch",
        &["--chip", "/dev/gpiochip999", "--line", "17"],
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("gpio_watch: /dev/gpiochip999: no such GPIO chip; `ls /dev/gpiochip*`"),
        "{stderr}"
    );
}

/// The line request's ioctl on a device that is no GPIO chip: the kernel answers ENOTTY.
/// qemu-user passes no GPIO ioctl to the kernel (ENOSYS), and the example says that instead.
#[test]
fn a_device_that_is_no_gpio_chip_is_refused() {
    let (status, _, stderr) = run_to_end("gpio_watch", &["--chip", "/dev/null", "--line", "0"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    if stderr.contains("ENOSYS") {
        eprintln!("skipped: GPIO ioctls are not emulated here (qemu-user)");
        return;
    }
    assert!(
        stderr.contains("/dev/null is not a GPIO character device"),
        "{stderr}"
    );
}

#[test]
fn no_line_and_no_path_is_a_usage_error() {
    let (status, _, stderr) = run_to_end("gpio_watch", &[]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(
            "gpio_watch: --line or PATH is required\nusage: gpio_watch --line OFFSET "
        ),
        "{stderr}"
    );
}

#[test]
fn two_paths_or_an_unknown_option_are_usage_errors() {
    support::examples::assert_usage_errors("gpio_watch", &[&["/a", "/b"], &["--fast"]]);
}

#[test]
fn help_prints_usage_and_succeeds() {
    let help = support::examples::assert_help(
        "gpio_watch",
        &[
            "--line OFFSET",
            "(required; no default)",
            "(default: /dev/gpiochip0",
            "(default: both)",
            "(default: as-is)",
            "(default: 0, none)",
            "/sys/class/gpio/gpio529/value",
            "epoll, 1 registration",
            "SIGHUP: nothing to reload",
        ],
    );
    assert!(
        help.starts_with("usage: gpio_watch --line OFFSET [--chip CHIP] [--edge EDGES] "),
        "{help}"
    );
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
    assert!(stderr.contains("gpio_watch --line 17"), "{stderr}");
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

/// A simulated GPIO chip made in configfs (`gpio-sim`, Linux 5.17 and later), removed again
/// when dropped.
struct SimChip {
    dir: std::path::PathBuf,
    /// `gpiochipN`: the device is `/dev/gpiochipN`.
    chip_name: String,
    /// `gpio-sim.N`: the platform device, under which each line has a `pull` attribute.
    dev_name: String,
}

impl SimChip {
    const CONFIGFS: &'static str = "/sys/kernel/config/gpio-sim";

    /// Whether one can be made here; the reason when not.
    fn unavailable() -> Option<String> {
        if cfg!(not(target_os = "linux")) {
            return Some("not Linux".into());
        }
        if !rustix::process::geteuid().is_root() {
            return Some("not root: configfs and the chip's device need it".into());
        }
        if !std::path::Path::new("/sys/kernel/config").is_dir() {
            return Some("no /sys/kernel/config: configfs is not mounted here".into());
        }
        if !std::path::Path::new(Self::CONFIGFS).is_dir() {
            // The module may just not be loaded yet.
            let _ = Command::new("modprobe")
                .arg("gpio-sim")
                .stderr(std::process::Stdio::null())
                .status();
        }
        if !std::path::Path::new(Self::CONFIGFS).is_dir() {
            let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
            return Some(if mounts.lines().any(|m| m.contains(" configfs ")) {
                format!(
                    "no {}: the kernel has no gpio-sim (CONFIG_GPIO_SIM)",
                    Self::CONFIGFS
                )
            } else {
                "configfs is not mounted: mount -t configfs none /sys/kernel/config".into()
            });
        }
        None
    }

    /// A chip with one bank of 8 lines, live.
    fn new() -> SimChip {
        let dir = std::path::Path::new(Self::CONFIGFS)
            .join(format!("picosel-gpio-watch-{}", std::process::id()));
        let mut sim = SimChip {
            dir,
            chip_name: String::new(),
            dev_name: String::new(),
        };
        std::fs::create_dir(&sim.dir).expect("mkdir in gpio-sim's configfs");
        std::fs::create_dir(sim.dir.join("bank0")).expect("mkdir bank0");
        std::fs::write(sim.dir.join("bank0/num_lines"), "8").expect("num_lines");
        std::fs::write(sim.dir.join("live"), "1").expect("live");
        let read = |p: &str| {
            std::fs::read_to_string(sim.dir.join(p))
                .unwrap()
                .trim()
                .to_string()
        };
        sim.chip_name = read("bank0/chip_name");
        sim.dev_name = read("dev_name");
        sim
    }

    /// Pulls simulated line `line` up or down, which is an edge when its value changes.
    fn pull(&self, line: u32, up: bool) {
        let attr = format!(
            "/sys/devices/platform/{}/{}/sim_gpio{line}/pull",
            self.dev_name, self.chip_name
        );
        std::fs::write(&attr, if up { "pull-up" } else { "pull-down" })
            .unwrap_or_else(|e| panic!("{attr}: {e}"));
    }
}

impl Drop for SimChip {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("live"), "0");
        let _ = std::fs::remove_dir(self.dir.join("bank0"));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The character-device mode end to end, on a simulated chip: the line is requested with
/// both edges, the simulator's pull makes a rising and then a falling edge, and each is
/// printed with the kernel's timestamp (on CLOCK_MONOTONIC, between the test's own clock
/// readings around it) and its sequence number.
#[test]
fn gpio_sim_edges_end_to_end() {
    if let Some(why) = SimChip::unavailable() {
        eprintln!("SKIPPED: gpio-sim end-to-end ({why})");
        return;
    }
    let sim = SimChip::new();
    let chip = format!("/dev/{}", sim.chip_name);
    // The device node may appear a moment after the chip goes live (udev).
    let deadline = std::time::Instant::now() + PATIENCE;
    while !std::path::Path::new(&chip).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut ex = Example::spawn("gpio_watch", &["--chip", &chip, "--line", "3"]);
    match ex.next_line(PATIENCE) {
        Some(l) if l.starts_with("watching ") => {
            assert_eq!(
                l,
                format!("watching {chip} line 3 for rising and falling edges")
            );
        }
        other => {
            let stderr = ex.stderr();
            if stderr.contains("ENOSYS") {
                eprintln!(
                    "SKIPPED: gpio-sim end-to-end (GPIO ioctls are not emulated here: qemu-user)"
                );
                return;
            }
            panic!("no `watching` line but {other:?}; stderr: {stderr}");
        }
    }
    let clock = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    };
    let at = |line: &str| -> f64 { line.rsplit(' ').nth(1).unwrap().parse().unwrap() };
    let before = clock();
    sim.pull(3, true);
    let rising = ex.expect_line("a rising edge", |l| l.starts_with("edge "));
    sim.pull(3, false);
    let falling = ex.expect_line("a falling edge", |l| l.starts_with("edge "));
    let after = clock();
    assert!(
        rising.starts_with("edge rising line 3 seq 1 at "),
        "{rising}"
    );
    assert!(
        falling.starts_with("edge falling line 3 seq 2 at "),
        "{falling}"
    );
    // The printed times keep microseconds: allow one of truncation.
    let (t1, t2) = (at(&rising), at(&falling));
    assert!(
        before - 1e-6 <= t1 && t1 <= t2 && t2 <= after,
        "{before} {t1} {t2} {after}"
    );
    ex.signal(rustix::process::Signal::TERM);
    let _ = ex.finish();
}
