//! `examples/notify_daemon.rs`'s own handlers in virtual time: the example's `Loop` alias is
//! picosel's epoll loop on a virtual clock in a test build, so this test runs a simulated day
//! with `WATCHDOG_USEC` of 30 s against a real, test-owned notify socket (an abstract name, or
//! a path) and a file standing for `/dev/watchdog`, and asserts the exact cadence: every
//! `WATCHDOG=1`, `STATUS=` and pet on its grid, with the virtual time of the turn that sent
//! it; and a stalled loop's gap.
//!
//! The socket's queue is finite (`net.unix.max_dgram_qlen`): it is drained after every turn of
//! the loop, which sends at most three datagrams, so none is dropped.

#[path = "../examples/notify_daemon.rs"]
#[allow(dead_code)]
mod daemon;

use daemon::{Daemon, Loop};
use picosel::{Instant, Notifier, Signal, WatchdogDevice};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 3600);
/// `$WATCHDOG_USEC` as systemd writes it for `WatchdogSec=30s`.
const WATCHDOG_USEC: &[u8] = b"30000000";
/// Half the interval: the keep-alive's period.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// `--work-ms 60000`: one job, one `STATUS=`, a minute.
const WORK: Duration = Duration::from_secs(60);
/// `--pet-ms 5000`, as the example's unit file has it.
const PET: Duration = Duration::from_secs(5);

/// What the service manager and the device saw, each stamped with the loop's virtual time
/// (since start) at the end of the turn that sent it.
#[derive(Default)]
struct Seen {
    datagrams: Vec<(Duration, String)>,
    pets: Vec<Duration>,
}

impl Seen {
    /// The times of the datagrams that are exactly `what`.
    fn times_of(&self, what: &str) -> Vec<Duration> {
        let hits = self.datagrams.iter().filter(|(_, m)| m == what);
        hits.map(|&(t, _)| t).collect()
    }

    /// The `STATUS=` datagrams: (time, the text after `STATUS=`).
    fn statuses(&self) -> Vec<(Duration, &str)> {
        let texts = self
            .datagrams
            .iter()
            .map(|(t, m)| (*t, m.strip_prefix("STATUS=")));
        texts.filter_map(|(t, s)| Some((t, s?))).collect()
    }
}

/// Where the manager's socket is bound: `$NOTIFY_SOCKET`'s two forms.
#[derive(Clone, Copy)]
enum Address {
    /// `@name`.
    Abstract,
    /// A path in the test's directory.
    Path,
}

/// The example's daemon on its test loop, wired as its `main` wires it, with the manager's
/// socket and the device file owned by the test.
struct Service {
    lp: Loop,
    manager: UnixDatagram,
    device: PathBuf,
    dir: PathBuf,
    seen: Seen,
}

impl Service {
    fn start(name: &str, address: Address) -> Service {
        let dir =
            std::env::temp_dir().join(format!("picosel-vnotify-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let device = dir.join("watchdog");
        std::fs::write(&device, b"").unwrap();

        let (manager, at) = match address {
            Address::Abstract => {
                let name = format!("picosel-vnotify-{}-{name}", std::process::id());
                let addr = SocketAddr::from_abstract_name(&name).unwrap();
                (UnixDatagram::bind_addr(&addr).unwrap(), format!("@{name}"))
            }
            Address::Path => {
                let path = dir.join("notify");
                let at = path.to_str().unwrap().to_string();
                (UnixDatagram::bind(&path).unwrap(), at)
            }
        };
        manager.set_nonblocking(true).unwrap();
        let me = std::process::id();
        let notifier =
            Notifier::from_vars(Some(at.as_bytes()), Some(WATCHDOG_USEC), None, me).unwrap();
        assert_eq!(notifier.watchdog_period(), Some(KEEP_ALIVE));
        let watchdog = WatchdogDevice::open(device.as_path()).unwrap();

        let mut lp = Loop::new(Daemon::new(notifier, Some(watchdog)));
        for sig in daemon::SIGNALS {
            lp.add_signal(sig, daemon::on_signal).unwrap();
        }
        daemon::arm_timers(&mut lp, WORK, PET).unwrap();
        assert_eq!(lp.timer_count(), 3);
        lp.context().announce().unwrap();
        let mut service = Service {
            lp,
            manager,
            device,
            dir,
            seen: Seen::default(),
        };
        service.collect();
        service
    }

    /// The virtual time since start.
    fn t(&self) -> Duration {
        self.lp.now() - Instant::ZERO
    }

    /// Reads what arrived since the last call: the queued datagrams, and the device file's new
    /// bytes (each a pet, a NUL, until the magic close's `V`).
    fn collect(&mut self) {
        let t = self.t();
        let mut buf = [0u8; 512];
        while let Ok(n) = self.manager.recv(&mut buf) {
            let text = String::from_utf8(buf[..n].to_vec()).expect("UTF-8 datagram");
            self.seen.datagrams.push((t, text));
        }
        let bytes = std::fs::read(&self.device).unwrap();
        let new = &bytes[self.seen.pets.len()..];
        assert!(new.iter().all(|&b| b == 0), "not a pet: {new:?}");
        self.seen.pets.extend(new.iter().map(|_| t));
    }

    /// Turns the loop until its clock reaches `end` (since start), collecting after each turn.
    /// A turn finds nothing ready, moves the clock to the next deadline and fires what is due.
    fn run_until(&mut self, end: Duration) {
        while self.t() < end {
            self.lp.run_once(None).unwrap();
            self.collect();
        }
        assert_eq!(self.t(), end);
    }

    /// SIGTERM through the loop's signalfd (raised in this thread, which `add_signal` made
    /// block it), then the clean stop's magic close: the device file's final bytes.
    fn terminate(&mut self) -> Vec<u8> {
        raise(Signal::TERM);
        let before = self.t();
        assert_eq!(self.lp.run_once(None), Ok(1));
        // The signal was ready at once: no time passed, and no timer fired after the stop.
        assert_eq!(self.t(), before);
        self.collect();
        self.lp.context_mut().disarm().unwrap();
        std::fs::read(&self.device).unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[allow(unsafe_code)]
fn raise(sig: Signal) {
    // SAFETY: raise(3) signals the calling thread, which blocks `sig` (add_signal did).
    assert_eq!(unsafe { libc::raise(sig.as_raw()) }, 0);
}

/// The grid of a periodic timer of `period` in a run of `DAY` held still for `stall` after the
/// turn at `stall_at` (on every timer's grid): the deadlines passed during the stall fire once,
/// at its end, and the grid goes on after it.
fn grid(period: Duration, stall_at: Duration, stall: Duration) -> Vec<Duration> {
    let end_of_stall = stall_at + stall;
    let mut times = Vec::new();
    let mut late = false;
    let mut t = period;
    while t <= DAY {
        if t <= stall_at || t > end_of_stall {
            times.push(t);
        } else if !late {
            times.push(end_of_stall);
            late = true;
        }
        t += period;
    }
    times
}

/// `got` is `want`; on failure, says where they part rather than print thousands of times.
fn assert_same<T: PartialEq + std::fmt::Debug>(what: &str, got: &[T], want: &[T]) {
    let parting = got.iter().zip(want).position(|(g, w)| g != w);
    if let Some(i) = parting {
        panic!("{what} #{i}: {:?}, expected {:?}", got[i], want[i]);
    }
    assert_eq!(got.len(), want.len(), "how many {what}");
}

/// The largest gap between two consecutive times, and where it starts.
fn largest_gap(times: &[Duration]) -> (Duration, Duration) {
    let gaps = times.windows(2).map(|w| (w[1] - w[0], w[0]));
    gaps.max().unwrap()
}

/// `STATUS=N jobs done` for N = 0 (start-up) and each job, at its time.
fn expected_statuses(jobs: &[Duration]) -> Vec<(Duration, String)> {
    let later = jobs.iter().enumerate().map(|(i, &t)| (t, i + 1));
    let all = std::iter::once((Duration::ZERO, 0)).chain(later);
    all.map(|(t, n)| (t, format!("{n} jobs done"))).collect()
}

/// When each timer should have fired in a day held still for `stall` at `stall_at`.
struct Grids {
    keep_alives: Vec<Duration>,
    jobs: Vec<Duration>,
    pets: Vec<Duration>,
}

impl Grids {
    fn new(stall_at: Duration, stall: Duration) -> Grids {
        Grids {
            keep_alives: grid(KEEP_ALIVE, stall_at, stall),
            jobs: grid(WORK, stall_at, stall),
            pets: grid(PET, stall_at, stall),
        }
    }

    fn counts(&self) -> (usize, usize, usize) {
        (self.keep_alives.len(), self.jobs.len(), self.pets.len())
    }
}

/// The service's whole life, checked against the grids: READY=1 first, each keep-alive,
/// `STATUS=` and pet at its time, STOPPING=1 last at the end of the day, nothing else.
fn check(s: &Service, want: &Grids) {
    let seen = &s.seen;
    assert_eq!(seen.datagrams[0], (Duration::ZERO, "READY=1".to_string()));
    assert_eq!(seen.times_of("READY=1").len(), 1);
    let keep_alives = seen.times_of("WATCHDOG=1");
    assert_same("WATCHDOG=1", &keep_alives, &want.keep_alives);
    let statuses: Vec<(Duration, String)> = seen
        .statuses()
        .into_iter()
        .map(|(t, text)| (t, text.to_string()))
        .collect();
    assert_same("STATUS=", &statuses, &expected_statuses(&want.jobs));
    assert_eq!(s.lp.context().jobs, want.jobs.len() as u64);
    assert_same("pets", &seen.pets, &want.pets);
    let last = (DAY, "STOPPING=1".to_string());
    assert_eq!(seen.datagrams.last(), Some(&last));
    let total = 1 + keep_alives.len() + statuses.len() + 1;
    assert_eq!(seen.datagrams.len(), total);
}

/// A day with a 30 s watchdog, the manager at an abstract address: 5,760 keep-alives, exactly every 15 s; 1,440 jobs; 17,280 pets
/// every 5 s; STOPPING=1 and the magic `V` at the end.
#[test]
fn a_day_of_keep_alives_on_the_15_s_grid() {
    let mut s = Service::start("day", Address::Abstract);
    s.run_until(DAY);
    let bytes = s.terminate();
    let want = Grids::new(DAY, Duration::ZERO);
    assert_eq!(want.counts(), (5_760, 1_440, 17_280));
    check(&s, &want);
    // From the first keep-alive at 15 s to the last at the end of the day, never more than
    // half the interval between two.
    assert_eq!(want.keep_alives.first(), Some(&KEEP_ALIVE));
    assert_eq!(want.keep_alives.last(), Some(&DAY));
    assert_eq!(largest_gap(&want.keep_alives).0, KEEP_ALIVE);
    let mut petted = vec![0u8; 17_280];
    petted.push(b'V');
    assert_eq!(bytes, petted);
    assert_eq!(s.seen.statuses().last(), Some(&(DAY, "1440 jobs done")));
}

/// A handler stuck for 130 s at noon, the manager at a path (the clock moves, the loop does not turn): no keep-alive
/// and no pet for exactly 130 s, longer than the 30 s interval, so the manager would kill the
/// service; then one late keep-alive, pet and job, and the grids go on. The stall swallows
/// 7 keep-alives, 25 pets and 1 job.
#[test]
fn a_handler_stuck_for_130_s_leaves_exactly_a_130_s_gap() {
    let noon = DAY / 2;
    let stall = Duration::from_secs(130);
    let mut s = Service::start("stuck", Address::Path);
    s.run_until(noon);
    s.lp.clock_mut().advance(stall);
    // One turn, at once: the three overdue timers fire, each once.
    assert_eq!(s.lp.run_once(None), Ok(3));
    assert_eq!(s.t(), noon + stall);
    s.collect();
    s.run_until(DAY);
    let bytes = s.terminate();
    let want = Grids::new(noon, stall);
    assert_eq!(want.counts(), (5_760 - 7, 1_440 - 1, 17_280 - 25));
    check(&s, &want);
    assert_eq!(largest_gap(&s.seen.times_of("WATCHDOG=1")), (stall, noon));
    assert_eq!(largest_gap(&s.seen.pets), (stall, noon));
    // Back on the grids: the next keep-alive and pet at noon + 135 s, the next job at + 180 s.
    let after = |times: &[Duration]| times.iter().copied().find(|&t| t > noon + stall);
    let secs = |n| Some(noon + Duration::from_secs(n));
    assert_eq!(after(&want.keep_alives), secs(135));
    assert_eq!(after(&want.pets), secs(135));
    assert_eq!(after(&want.jobs), secs(180));
    assert_eq!(bytes.len(), 17_280 - 25 + 1);
    assert_eq!(bytes.last(), Some(&b'V'));
}
