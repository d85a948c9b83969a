//! The service manager's notifications (`Notifier`) and the hardware watchdog
//! (`WatchdogDevice`): first each call against a test-owned notify socket (a path and an
//! abstract name) and a file or FIFO standing for `/dev/watchdog`, its errors, and that none
//! of it allocates; then `examples/notify_daemon` run as systemd runs it, with
//! `$NOTIFY_SOCKET` and `$WATCHDOG_USEC`: `READY=1` first, `WATCHDOG=1` at least once per
//! half interval, `STATUS=` counts, `STOPPING=1` on SIGTERM, the device petted and closed
//! with the magic `V`; nothing sent and nothing failing without the variables; and a handler
//! that hangs stops both watchdogs.
//!
//! Real time is only bounded from below: so many keep-alives at least, never at most.

mod support;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{allocations, CountingAlloc};
use picosel::{Errno, Error, Notifier, WatchdogDevice};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// A directory of this test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("picosel-notify-{}-{what}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unique abstract socket name (without the `@`).
fn abstract_name(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("picosel-test-{}-{what}-{n}", std::process::id())
}

/// The test's side of the notify socket: what the service manager would read.
struct Manager {
    sock: UnixDatagram,
    /// The address as `$NOTIFY_SOCKET` writes it.
    address: String,
}

impl Manager {
    fn at_path(path: &Path) -> Manager {
        Manager {
            sock: UnixDatagram::bind(path).unwrap(),
            address: path.to_str().unwrap().to_string(),
        }
    }

    fn at_abstract_name(name: &str) -> Manager {
        let addr = SocketAddr::from_abstract_name(name).unwrap();
        Manager {
            sock: UnixDatagram::bind_addr(&addr).unwrap(),
            address: format!("@{name}"),
        }
    }

    fn notifier(&self, watchdog: Option<Duration>) -> Notifier {
        Notifier::new(self.address.as_bytes(), watchdog).unwrap()
    }

    /// The next datagram, or `None` after `timeout`.
    fn recv(&self, timeout: Duration) -> Option<String> {
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 4096];
        match self.sock.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8(buf[..n].to_vec()).expect("UTF-8 datagram")),
            Err(_) => None,
        }
    }

    /// Every datagram until `end`.
    fn until(&self, end: Instant) -> Vec<String> {
        let mut got = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return got;
            }
            got.extend(self.recv(left));
        }
    }

    /// The datagrams already queued, without waiting.
    fn queued(&self) -> Vec<String> {
        self.sock.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        self.sock.set_nonblocking(false).unwrap();
        got
    }
}

/// Every notification a notifier sends arrives as one datagram, as sd_notify(3) writes it.
fn each_notification_arrives(mgr: &Manager) {
    let n = mgr.notifier(Some(Duration::from_millis(200)));
    assert!(n.is_enabled());
    assert_eq!(n.watchdog_interval(), Some(Duration::from_millis(200)));
    assert_eq!(n.watchdog_period(), Some(Duration::from_millis(100)));
    n.ready().unwrap();
    n.status(format_args!("{} jobs done", 3)).unwrap();
    n.status("plain text").unwrap();
    n.watchdog().unwrap();
    n.send("RELOADING=1\nMONOTONIC_USEC=1").unwrap();
    n.stopping().unwrap();
    let t = Duration::from_secs(1);
    let got: Vec<String> = (0..6).map(|_| mgr.recv(t).unwrap()).collect();
    assert_eq!(
        got,
        [
            "READY=1",
            "STATUS=3 jobs done",
            "STATUS=plain text",
            "WATCHDOG=1",
            "RELOADING=1\nMONOTONIC_USEC=1",
            "STOPPING=1"
        ]
    );
    assert!(mgr
        .until(Instant::now() + Duration::from_millis(50))
        .is_empty());
}

#[test]
fn a_path_address_gets_each_notification() {
    let dir = TempDir::new("path");
    each_notification_arrives(&Manager::at_path(&dir.join("notify")));
}

#[test]
fn an_abstract_address_gets_each_notification() {
    each_notification_arrives(&Manager::at_abstract_name(&abstract_name("abstract")));
}

/// The longest path a `sockaddr_un` holds, 108 bytes with no room for a NUL, works end to end
/// (std cannot bind it, rustix can); one byte more is refused with a clear error.
#[test]
fn a_path_of_108_bytes_works_and_109_is_too_long() {
    let dir = TempDir::new("long");
    let base = dir.0.to_str().unwrap().len() + 1;
    assert!(
        base < 100,
        "temp dir too long for this test: {}",
        dir.0.display()
    );
    let path = dir.join(&"p".repeat(108 - base));
    let path_bytes = path.to_str().unwrap().as_bytes().to_vec();
    assert_eq!(path_bytes.len(), 108);
    let manager = rustix::net::socket(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .unwrap();
    let addr = rustix::net::SocketAddrUnix::new(path_bytes.as_slice()).unwrap();
    rustix::net::bind(&manager, &addr).unwrap();

    Notifier::new(&path_bytes, None).unwrap().ready().unwrap();
    let mut buf = [0u8; 16];
    let n = rustix::io::read(&manager, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");

    let mut longer = path_bytes.clone();
    longer.push(b'p');
    assert_eq!(
        Notifier::new(&longer, None).unwrap_err(),
        Error::Os(Errno::NAMETOOLONG)
    );
}

#[test]
fn malformed_addresses_and_intervals_are_clear_errors() {
    let name = |len: usize| {
        let mut a = vec![b'n'; len + 1];
        a[0] = b'@';
        a
    };
    assert!(Notifier::new(&name(107), None).is_ok());
    assert_eq!(
        Notifier::new(&name(108), None).unwrap_err(),
        Error::Os(Errno::NAMETOOLONG)
    );
    for bad in [&b""[..], b"notify", b"./notify", b"vsock:2:1234"] {
        assert_eq!(
            Notifier::new(bad, None).unwrap_err(),
            Error::Os(Errno::AFNOSUPPORT),
            "{bad:?}"
        );
    }
    assert_eq!(
        Notifier::new(b"/run/a\0b", None).unwrap_err(),
        Error::Os(Errno::INVAL)
    );
    assert_eq!(
        Notifier::new(b"@x", Some(Duration::ZERO)).unwrap_err(),
        Error::InvalidPeriod
    );
    // The smallest interval still gives a period a timer takes.
    let n = Notifier::new(b"@x", Some(Duration::from_nanos(1))).unwrap();
    assert_eq!(n.watchdog_period(), Some(Duration::from_nanos(1)));
}

/// `from_vars` is `from_env`'s rules without the environment (the environment itself is the
/// example's, below: a test binary's threads must not set variables).
#[test]
fn environment_rules() {
    let me = std::process::id();
    let other = (me + 1).to_string();
    let mine = me.to_string();
    let sock = Some(&b"@picosel-test-vars"[..]);
    // Unset or empty: disabled, whatever else is set, malformed or not.
    for unset in [None, Some(&b""[..])] {
        let n = Notifier::from_vars(unset, Some(b"junk"), Some(b"junk"), me).unwrap();
        assert!(!n.is_enabled());
        assert_eq!(n.watchdog_period(), None);
    }
    let n = Notifier::from_vars(sock, None, None, me).unwrap();
    assert!(n.is_enabled());
    assert_eq!(n.watchdog_interval(), None);
    let n = Notifier::from_vars(sock, Some(b"200000"), None, me).unwrap();
    assert_eq!(n.watchdog_period(), Some(Duration::from_millis(100)));
    let n = Notifier::from_vars(sock, Some(b"200000"), Some(mine.as_bytes()), me).unwrap();
    assert_eq!(n.watchdog_period(), Some(Duration::from_millis(100)));
    let n = Notifier::from_vars(sock, Some(b"200000"), Some(other.as_bytes()), me).unwrap();
    assert!(n.is_enabled());
    assert_eq!(n.watchdog_period(), None);
    for bad in [&b"2s"[..], b"", b"-1", b" 1", b"99999999999999999999"] {
        assert_eq!(
            Notifier::from_vars(sock, Some(bad), None, me).unwrap_err(),
            Error::Os(Errno::INVAL),
            "WATCHDOG_USEC={bad:?}"
        );
    }
    assert_eq!(
        Notifier::from_vars(sock, Some(b"0"), None, me).unwrap_err(),
        Error::InvalidPeriod
    );
    assert_eq!(
        Notifier::from_vars(sock, Some(b"1"), Some(b"pid"), me).unwrap_err(),
        Error::Os(Errno::INVAL)
    );
    assert_eq!(
        Notifier::from_vars(Some(b"relative"), None, None, me).unwrap_err(),
        Error::Os(Errno::AFNOSUPPORT)
    );
}

#[test]
fn a_disabled_notifier_sends_nothing_and_never_fails() {
    for n in [Notifier::disabled(), Notifier::default()] {
        assert!(!n.is_enabled());
        assert_eq!(n.watchdog_interval(), None);
        assert_eq!(n.watchdog_period(), None);
        assert_eq!(n.ready(), Ok(()));
        assert_eq!(n.status(format_args!("{}", 1)), Ok(()));
        assert_eq!(n.watchdog(), Ok(()));
        assert_eq!(n.send("X=1"), Ok(()));
        assert_eq!(n.stopping(), Ok(()));
    }
}

/// A status is one assignment: newlines and NULs become spaces, and long text is cut at a
/// character boundary to `STATUS_MAX` bytes.
#[test]
fn a_status_is_one_line_cut_at_a_character_boundary() {
    let mgr = Manager::at_abstract_name(&abstract_name("status"));
    let n = mgr.notifier(None);
    n.status("a\nREADY=1\0b").unwrap();
    assert_eq!(
        mgr.recv(Duration::from_secs(1)).unwrap(),
        "STATUS=a READY=1 b"
    );

    let long = "é".repeat(200); // 400 bytes
    n.status(&long).unwrap();
    let got = mgr.recv(Duration::from_secs(1)).unwrap();
    let text = got.strip_prefix("STATUS=").unwrap();
    assert_eq!(text.len(), Notifier::STATUS_MAX - 1); // 124 whole characters of 2 bytes
    assert!(long.starts_with(text));

    let exact = "x".repeat(Notifier::STATUS_MAX);
    n.status(format_args!("{exact}{}", "never")).unwrap();
    let got = mgr.recv(Duration::from_secs(1)).unwrap();
    assert_eq!(got, format!("STATUS={exact}"));
    assert!(mgr.queued().is_empty());
}

/// A manager that does not read its socket cannot stop the loop: the sends fail with EAGAIN
/// instead of blocking (this test would hang otherwise).
#[test]
fn a_manager_that_does_not_read_gets_eagain_not_a_stuck_loop() {
    let mgr = Manager::at_abstract_name(&abstract_name("full"));
    let n = mgr.notifier(Some(Duration::from_secs(1)));
    let mut sent = 0;
    let err = loop {
        match n.watchdog() {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 1_000_000, "the queue never filled");
    };
    assert_eq!(err, Error::Os(Errno::AGAIN), "after {sent} datagrams");
    assert!(sent > 0);
    // Read one, and the next goes through again.
    mgr.recv(Duration::from_secs(1)).unwrap();
    n.watchdog().unwrap();
}

#[test]
fn nobody_listening_is_an_error() {
    let dir = TempDir::new("nobody");
    let path = dir.join("gone");
    let n = Notifier::new(path.to_str().unwrap().as_bytes(), None).unwrap();
    assert_eq!(n.ready(), Err(Error::Os(Errno::NOENT)));
    let n = Notifier::new(format!("@{}", abstract_name("nobody")).as_bytes(), None).unwrap();
    assert_eq!(n.ready(), Err(Error::Os(Errno::CONNREFUSED)));
}

#[test]
fn a_watchdog_file_gets_pets_and_the_magic_close() {
    let dir = TempDir::new("device");
    let path = dir.join("watchdog");
    std::fs::write(&path, b"").unwrap();
    let wd = WatchdogDevice::open(path.as_path()).unwrap();
    for _ in 0..3 {
        wd.pet().unwrap();
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"\0\0\0");
    wd.close_cleanly().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"\0\0\0V");
}

/// Dropped without `close_cleanly`, the device is closed without the `V`: a real watchdog
/// stays armed and resets the board.
#[test]
fn dropping_the_watchdog_leaves_it_armed() {
    let dir = TempDir::new("drop");
    let path = dir.join("watchdog");
    std::fs::write(&path, b"").unwrap();
    let wd = WatchdogDevice::open(path.to_str().unwrap()).unwrap();
    wd.pet().unwrap();
    drop(wd);
    assert_eq!(std::fs::read(&path).unwrap(), b"\0");
}

/// A FIFO stands for the device as well: its reader sees the pets as they come, then the `V`,
/// then the end of file of the close.
#[test]
fn a_watchdog_fifo_gets_pets_and_the_magic_close() {
    use rustix::fs::{FileType, Mode, OFlags, CWD};
    let dir = TempDir::new("fifo");
    let path = dir.join("watchdog");
    rustix::fs::mknodat(CWD, &path, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
    // The reader first: a FIFO's write-only open waits for one.
    let reader = rustix::fs::open(&path, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()).unwrap();
    let wd = WatchdogDevice::open(path.as_path()).unwrap();
    wd.pet().unwrap();
    wd.pet().unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(rustix::io::read(&reader, &mut buf), Ok(2));
    assert_eq!(&buf[..2], b"\0\0");
    wd.close_cleanly().unwrap();
    assert_eq!(rustix::io::read(&reader, &mut buf), Ok(1));
    assert_eq!(buf[0], b'V');
    assert_eq!(rustix::io::read(&reader, &mut buf), Ok(0)); // closed
}

#[test]
fn opening_a_missing_or_wrong_device_is_an_error() {
    assert_eq!(
        WatchdogDevice::open("/nonexistent/watchdog").unwrap_err(),
        Error::Os(Errno::NOENT)
    );
    let dir = TempDir::new("isdir");
    assert_eq!(
        WatchdogDevice::open(dir.0.as_path()).unwrap_err(),
        Error::Os(Errno::ISDIR)
    );
}

/// Nothing allocates: making a notifier from values, every notification (a formatted status
/// included), opening, petting and closing the device.
#[test]
fn nothing_allocates() {
    let mgr = Manager::at_abstract_name(&abstract_name("alloc"));
    let dir = TempDir::new("alloc");
    let device = dir.join("watchdog");
    std::fs::write(&device, b"").unwrap();
    let address = mgr.address.clone();
    let device = device.to_str().unwrap().to_string();
    let me = std::process::id();
    // The manager reads as it goes (its queue holds 10 datagrams), into a buffer on the stack.
    mgr.sock.set_nonblocking(true).unwrap();
    let mut received = 0usize;
    let mut last_status = ([0u8; 64], 0usize);
    let read_queue = |received: &mut usize, last_status: &mut ([u8; 64], usize)| {
        let mut buf = [0u8; 64];
        while let Ok(len) = mgr.sock.recv(&mut buf) {
            *received += 1;
            if buf.starts_with(b"STATUS=") {
                *last_status = (buf, len);
            }
        }
    };
    let count = allocations(|| {
        let n = Notifier::from_vars(Some(address.as_bytes()), Some(b"200000"), None, me).unwrap();
        let wd = WatchdogDevice::open(device.as_str()).unwrap();
        n.ready().unwrap();
        for jobs in 1..=100 {
            n.status(format_args!("{jobs} jobs done, {:.1} %", 12.5))
                .unwrap();
            n.watchdog().unwrap();
            wd.pet().unwrap();
            read_queue(&mut received, &mut last_status);
        }
        n.stopping().unwrap();
        wd.close_cleanly().unwrap();
        read_queue(&mut received, &mut last_status);
        let _ = Notifier::new(b"@", None).map(|n| n.send("X=1"));
        let _ = Notifier::new(b"relative", None);
    });
    assert_eq!(count, 0, "allocations");
    assert_eq!(received, 202);
    let (buf, len) = last_status;
    assert_eq!(&buf[..len], b"STATUS=100 jobs done, 12.5 %");
    let mut petted = vec![0u8; 100];
    petted.push(b'V');
    assert_eq!(std::fs::read(&device).unwrap(), petted);
}

/// `examples/notify_daemon`, run as systemd runs a `Type=notify` service with `WatchdogSec=`.
#[cfg(all(feature = "std", feature = "signal"))]
mod example {
    use super::{abstract_name, Manager, TempDir};
    use crate::support::examples::{example_path, run_to_end, Example, PATIENCE};
    use rustix::process::Signal;
    use std::path::Path;
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// `WATCHDOG_USEC=200000`: a keep-alive every 100 ms.
    const WATCHDOG_USEC: &str = "200000";
    const KEEP_ALIVE: Duration = Duration::from_millis(100);
    const WINDOW: Duration = Duration::from_secs(1);

    /// The example's command, with the service manager's variables as given (and no others:
    /// the test may itself run under a service manager).
    fn command(vars: &[(&str, &str)], args: &[&str]) -> Command {
        let mut cmd = Command::new(example_path("notify_daemon"));
        cmd.args(args);
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            cmd.env_remove(var);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// The example under a service manager with a watchdog of `WATCHDOG_USEC`, petting
    /// `device` every 20 ms, with `extra` options.
    fn spawn_with_watchdogs(mgr: &Manager, device: &Path, extra: &[&str]) -> Example {
        let mut args = vec![
            "--watchdog-device",
            device.to_str().unwrap(),
            "--pet-ms",
            "20",
        ];
        args.extend_from_slice(extra);
        let vars = [
            ("NOTIFY_SOCKET", mgr.address.as_str()),
            ("WATCHDOG_USEC", WATCHDOG_USEC),
        ];
        Example::spawn_cmd("notify_daemon", &mut command(&vars, &args))
    }

    /// The first datagram, which must be `READY=1`.
    fn expect_ready(mgr: &Manager, ex: &Example) {
        let first = mgr.recv(PATIENCE);
        assert_eq!(
            first.as_deref(),
            Some("READY=1"),
            "the first notification; stderr: {}",
            ex.stderr()
        );
    }

    /// The `N` of each `STATUS=N jobs done`, in order.
    fn job_counts(got: &[String]) -> Vec<u64> {
        got.iter()
            .filter_map(|m| m.strip_prefix("STATUS="))
            .map(|s| {
                s.strip_suffix(" jobs done")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected status {s:?}"))
            })
            .collect()
    }

    /// SIGTERM: `STOPPING=1` comes, the example exits 0.
    fn stop(mgr: &Manager, ex: &mut Example) -> Vec<String> {
        ex.signal(Signal::TERM);
        let mut after = Vec::new();
        let end = Instant::now() + PATIENCE;
        while !after.iter().any(|m| m == "STOPPING=1") {
            let left = end.saturating_duration_since(Instant::now());
            match mgr.recv(left) {
                Some(m) => after.push(m),
                None => panic!("no STOPPING=1; got {after:?}; stderr: {}", ex.stderr()),
            }
        }
        let status = ex.wait();
        assert!(status.success(), "{status:?}: {}", ex.stderr());
        after.extend(mgr.queued());
        assert_eq!(
            after.last().map(String::as_str),
            Some("STOPPING=1"),
            "{after:?}"
        );
        after
    }

    /// The whole life of the service: READY=1 first, then for 1 s WATCHDOG=1 every 100 ms (one
    /// per two 50 ms jobs: counted against the daemon's own progress, so a loaded machine does
    /// not fail it) and increasing STATUS= counts, then STOPPING=1 on SIGTERM.
    fn run_service(mgr: &Manager, device: &Path) {
        let mut ex = spawn_with_watchdogs(mgr, device, &["--work-ms", "50"]);
        expect_ready(mgr, &ex);
        let mut got = mgr.until(Instant::now() + WINDOW);
        // And what was sent within the window but not yet read by this thread.
        got.extend(mgr.queued());
        let keep_alives = got.iter().filter(|m| *m == "WATCHDOG=1").count();
        let jobs = job_counts(&got);
        // Measured against the daemon's own progress, not the wall clock: on a starved machine
        // the loop turns less often and both its 50 ms jobs and its 100 ms keep-alives fall
        // behind together; a keep-alive that stopped while jobs went on is the failure.
        let jobs_done = jobs.last().copied().unwrap_or(0) as usize;
        assert!(
            keep_alives >= 2 && 2 * keep_alives + 2 >= jobs_done,
            "{keep_alives} WATCHDOG=1 for {jobs_done} jobs of 50 ms in {WINDOW:?}: {got:?}"
        );
        assert_eq!(
            jobs.first(),
            Some(&0),
            "STATUS=0 jobs done after READY=1: {got:?}"
        );
        assert!(jobs.windows(2).all(|w| w[0] < w[1]), "{jobs:?}");
        assert!(jobs.last() > Some(&0), "no job done in {WINDOW:?}: {got:?}");
        assert!(
            !got.iter().any(|m| m == "READY=1" || m == "STOPPING=1"),
            "{got:?}"
        );
        stop(mgr, &mut ex);
        let (_, lines) = ex.finish();
        assert!(
            lines.iter().any(|l| l.starts_with("stopped after ")),
            "{lines:?}"
        );
    }

    /// The pets (NULs) then one `V`, at the end: the magic close.
    fn assert_petted_and_closed(bytes: &[u8]) {
        let (last, pets) = bytes.split_last().expect("the device got nothing");
        assert_eq!(*last, b'V', "no magic close at the end: {bytes:?}");
        assert!(pets.iter().all(|&b| b == 0), "{bytes:?}");
        // 20 ms pets for more than a second: several, even on a starved machine.
        assert!(pets.len() >= 3, "only {} pets", pets.len());
    }

    #[test]
    fn path_socket_and_watchdog_file() {
        let dir = TempDir::new("example-path");
        let mgr = Manager::at_path(&dir.join("notify"));
        let device = dir.join("watchdog");
        std::fs::write(&device, b"").unwrap();
        run_service(&mgr, &device);
        assert_petted_and_closed(&std::fs::read(&device).unwrap());
    }

    #[test]
    fn abstract_socket_and_watchdog_fifo() {
        use rustix::fs::{FileType, Mode, OFlags, CWD};
        let dir = TempDir::new("example-abstract");
        let mgr = Manager::at_abstract_name(&abstract_name("example"));
        let device = dir.join("watchdog");
        rustix::fs::mknodat(CWD, &device, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        let reader =
            rustix::fs::open(&device, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()).unwrap();
        run_service(&mgr, &device);
        // The example has exited: what it wrote is in the FIFO, then its end.
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match rustix::io::read(&reader, &mut buf) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) => panic!("reading the FIFO: {e}"),
            }
        }
        assert_petted_and_closed(&bytes);
    }

    /// Without `$NOTIFY_SOCKET` the example runs as anywhere else: nothing sent, nothing
    /// failing, also with `$WATCHDOG_USEC` alone or `$NOTIFY_SOCKET` empty.
    #[test]
    fn without_a_service_manager_nothing_is_sent_and_nothing_fails() {
        for vars in [
            &[][..],
            &[("WATCHDOG_USEC", WATCHDOG_USEC)],
            &[("NOTIFY_SOCKET", ""), ("WATCHDOG_USEC", "junk")],
        ] {
            let mut ex =
                Example::spawn_cmd("notify_daemon", &mut command(vars, &["--work-ms", "10"]));
            let line = ex.expect_line("`ready: ...`", |l| l.starts_with("ready: "));
            assert_eq!(
                line, "ready: no service manager; no watchdog device",
                "{vars:?}"
            );
            std::thread::sleep(Duration::from_millis(300));
            ex.signal(Signal::TERM);
            let (status, lines) = ex.finish();
            assert!(status.success(), "{vars:?}: {status:?}: {}", ex.stderr());
            assert_eq!(ex.stderr(), "SIGTERM: stopping\n", "{vars:?}");
            assert!(
                lines.iter().any(|l| l.starts_with("stopped after ")),
                "{vars:?}: {lines:?}"
            );
        }
    }

    /// `$WATCHDOG_PID` naming another process: the keep-alives are not the example's to send;
    /// the rest is.
    #[test]
    fn watchdog_pid_of_another_process_means_no_keep_alives() {
        let mgr = Manager::at_abstract_name(&abstract_name("pid"));
        let mut ex = Example::spawn_cmd(
            "notify_daemon",
            &mut command(
                &[
                    ("NOTIFY_SOCKET", &mgr.address),
                    ("WATCHDOG_USEC", WATCHDOG_USEC),
                    ("WATCHDOG_PID", "1"),
                ],
                &["--work-ms", "50"],
            ),
        );
        expect_ready(&mgr, &ex);
        let got = mgr.until(Instant::now() + Duration::from_millis(500));
        assert!(!got.iter().any(|m| m == "WATCHDOG=1"), "{got:?}");
        assert!(!job_counts(&got).is_empty(), "{got:?}");
        stop(&mgr, &mut ex);
    }

    /// SIGHUP from a user (not a terminal gone) asks for a reload: nothing to reload, said as
    /// every example says it, and the service goes on notifying.
    #[test]
    fn sighup_has_nothing_to_reload_and_the_service_goes_on() {
        let mgr = Manager::at_abstract_name(&abstract_name("hup"));
        let mut ex = Example::spawn_cmd(
            "notify_daemon",
            &mut command(&[("NOTIFY_SOCKET", &mgr.address)], &["--work-ms", "20"]),
        );
        expect_ready(&mgr, &ex);
        ex.signal(Signal::HUP);
        ex.expect_line("the SIGHUP line", |l| {
            l == "SIGHUP: nothing to reload (no config file); still running"
        });
        let _ = mgr.queued();
        let next = mgr.recv(PATIENCE);
        assert!(
            next.as_deref().is_some_and(|m| m.starts_with("STATUS=")),
            "{next:?}"
        );
        stop(&mgr, &mut ex);
    }

    /// The command line follows the examples' rules (`examples/common/mod.rs`): each kind of
    /// mistake worded the same, status 2; `--help` on stdout, status 0.
    #[test]
    fn command_line_mistakes_are_worded_as_in_every_example() {
        for (args, msg) in [
            (&["--bogus"][..], "unknown option --bogus"),
            (&["-x"], "unknown option -x"),
            (&["2"], "unexpected argument \"2\""),
            (&["--watchdog-device"], "--watchdog-device needs a value"),
            (&["--pet-ms"], "--pet-ms needs a value"),
            (&["--work-ms", "x"], "--work-ms: not a number: \"x\""),
            (
                &["--pet-ms", "0"],
                "--pet-ms: not accepted: \"0\" (use a positive number of milliseconds)",
            ),
        ] {
            let (status, _, stderr) = run_to_end("notify_daemon", args);
            assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
            let first = stderr.lines().next().unwrap_or("");
            assert_eq!(first, format!("notify_daemon: {msg}"), "{args:?}");
        }
        let (status, stdout, _) = run_to_end("notify_daemon", &["--help"]);
        assert!(status.success());
        assert!(stdout.starts_with("usage: notify_daemon "), "{stdout}");
        assert!(stdout.contains("--watchdog-device PATH"), "{stdout}");
    }

    /// A malformed variable is a clear error at start, naming the variables.
    #[test]
    fn a_malformed_watchdog_usec_is_a_clear_error() {
        let mgr = Manager::at_abstract_name(&abstract_name("malformed"));
        let mut ex = Example::spawn_cmd(
            "notify_daemon",
            &mut command(
                &[("NOTIFY_SOCKET", &mgr.address), ("WATCHDOG_USEC", "2s")],
                &[],
            ),
        );
        // `finish`, not `wait`: stderr is complete only once its reader is done.
        let (status, _) = ex.finish();
        assert_eq!(status.code(), Some(1), "{}", ex.stderr());
        let err = ex.stderr();
        assert!(err.contains("WATCHDOG_USEC"), "{err}");
        assert!(err.contains("Invalid argument"), "{err}");
        assert!(mgr.queued().is_empty());
    }

    /// A handler that hangs stops the keep-alives and the pets (they come from the loop, not
    /// from a thread of their own); killed then, the example leaves the device without the
    /// `V`: a real watchdog would reset the board.
    #[test]
    fn a_stuck_handler_stops_both_watchdogs() {
        let dir = TempDir::new("example-stuck");
        let mgr = Manager::at_abstract_name(&abstract_name("stuck"));
        let device = dir.join("watchdog");
        std::fs::write(&device, b"").unwrap();
        let mut ex = spawn_with_watchdogs(&mgr, &device, &["--hang-on-usr1"]);
        expect_ready(&mgr, &ex);
        let end = Instant::now() + PATIENCE;
        while mgr
            .recv(end.saturating_duration_since(Instant::now()))
            .as_deref()
            != Some("WATCHDOG=1")
        {
            assert!(Instant::now() < end, "no WATCHDOG=1: {}", ex.stderr());
        }
        ex.signal(Signal::USR1);
        ex.expect_line("`SIGUSR1: hanging`", |l| l.starts_with("SIGUSR1: hanging"));
        // Everything sent before the hang is in the socket and the file by now (one thread,
        // and both writes are done when the syscall returns).
        let _ = mgr.queued();
        let pets = std::fs::read(&device).unwrap();
        assert!(!pets.is_empty());
        // Three keep-alive periods, thirty pet periods.
        std::thread::sleep(3 * KEEP_ALIVE);
        assert_eq!(mgr.queued(), Vec::<String>::new(), "notified while stuck");
        assert_eq!(std::fs::read(&device).unwrap(), pets, "petted while stuck");

        ex.signal(Signal::KILL);
        ex.wait();
        let bytes = std::fs::read(&device).unwrap();
        assert!(
            bytes.iter().all(|&b| b == 0),
            "a V without a clean stop: {bytes:?}"
        );
    }
}
