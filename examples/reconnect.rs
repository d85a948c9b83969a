//! A client that keeps a TCP connection to its server up: when the connection is refused or
//! lost, it tries again after an exponential backoff with jitter, on one thread, on picosel's
//! event loop.
//!
//! ```sh
//! cargo run --example reconnect -- --server 127.0.0.1:7000         # nothing listens: retries
//! cargo run --example reconnect -- --server 127.0.0.1:7000 --seed 7 --base-ms 50 --max-ms 5000
//! ```
//!
//! Attempt `k` (from 0) after a failure waits `d/2 + jitter` with `d = min(max, base × 2^k)` and
//! `jitter` uniform in `[0, d/2]` ("equal jitter"), drawn from a xorshift generator seeded by
//! `--seed`, so a run's schedule is reproducible. A connection that comes up resets `k`; data
//! from the server is counted, and its close starts the retries again. Each event is one line:
//! `t=SECONDS connecting`, `t=SECONDS refused: ERROR (retry in MS ms)`, `t=SECONDS connected`.
//!
//! The loop alias is the only thing a test build changes: `tests/example_reconnect.rs` runs
//! these handlers on picosel's virtual clock with real sockets (refused at once, for real, by a
//! port where nothing listens) and asserts the schedule to the millisecond without sleeping.

#[cfg(not(test))]
use picosel::DefaultEventLoop;
use picosel::{Instant, Interest, IoEvent, TimerEvent};
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use std::io::Write;
use std::net::SocketAddrV4;
use std::process::ExitCode;
use std::time::Duration;

/// The socket and one timer. Tests run the same handlers in virtual time.
#[cfg(not(test))]
pub(crate) type Loop = DefaultEventLoop<Client, 2, 1>;
#[cfg(test)]
pub(crate) type Loop = picosel::VirtualEventLoop<Client, 2, 1>;

/// The backoff policy: the first delay, the cap, and the generator's seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub(crate) base: Duration,
    pub(crate) max: Duration,
    pub(crate) seed: u64,
}

/// One thing that happened, at a time on the loop's clock.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Event {
    Connecting,
    /// The attempt failed with this errno; the next one is this far off.
    Failed(Errno, Duration),
    Connected,
    /// The server closed the connection after this many bytes.
    Closed(usize),
}

pub(crate) struct Client {
    server: SocketAddrV4,
    policy: Policy,
    /// The generator's state (xorshift64; never 0).
    rng: u64,
    /// Failed attempts since the last connection.
    attempt: u32,
    sock: Option<OwnedFd>,
    bytes: usize,
    /// What happened, for the output and for tests.
    pub(crate) log: Vec<(Instant, Event)>,
    /// Print each event as it happens.
    print: bool,
}

impl Client {
    pub(crate) fn new(server: SocketAddrV4, policy: Policy, print: bool) -> Client {
        Client {
            server,
            policy,
            rng: policy.seed | 1,
            attempt: 0,
            sock: None,
            bytes: 0,
            log: Vec::new(),
            print,
        }
    }

    /// The next number of the xorshift64 generator (Marsaglia, 2003).
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// The delay before the next attempt: half the capped exponential, plus up to the other
    /// half at random.
    fn backoff(&mut self) -> Duration {
        let exp = self
            .policy
            .base
            .saturating_mul(1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX));
        let d = exp.min(self.policy.max);
        let half = d / 2;
        let half_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let jitter = Duration::from_millis(self.next_random() % (half_ms + 1));
        self.attempt = self.attempt.saturating_add(1);
        half + jitter
    }
}

fn note(lp: &mut Loop, event: Event) {
    let now = lp.now();
    let c = lp.context_mut();
    if c.print {
        let t = (now - c.log.first().map_or(now, |e| e.0)).as_secs_f64();
        let mut out = std::io::stdout().lock();
        // A closed stdout (`| head`) is no reason to stop reconnecting.
        let _ = match &event {
            Event::Connecting => writeln!(out, "t={t:.3} connecting to {}", c.server),
            Event::Failed(e, d) => {
                writeln!(out, "t={t:.3} refused: {e} (retry in {} ms)", d.as_millis())
            }
            Event::Connected => writeln!(out, "t={t:.3} connected"),
            Event::Closed(n) => writeln!(out, "t={t:.3} closed by the server after {n} bytes"),
        };
    }
    c.log.push((now, event));
}

/// Starts a connection attempt: a non-blocking connect, which the loop watches for WRITE.
pub(crate) fn connect(lp: &mut Loop) {
    note(lp, Event::Connecting);
    let started = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .and_then(|s| match rustix::net::connect(&s, &lp.context().server) {
        Ok(()) | Err(Errno::INPROGRESS) => Ok(s),
        Err(e) => Err(e),
    });
    match started {
        Ok(s) => {
            let fd = s.as_raw_fd();
            lp.context_mut().sock = Some(s);
            if let Err(e) = lp.register(fd, Interest::WRITE, 0, on_connect) {
                fail(lp, Errno::from_raw_os_error(e_errno(e)));
            }
        }
        Err(e) => fail(lp, e),
    }
}

/// The errno of a loop error (EINVAL for the loop's own refusals).
fn e_errno(e: picosel::Error) -> i32 {
    match e {
        picosel::Error::Os(e) => e.raw_os_error(),
        _ => Errno::INVAL.raw_os_error(),
    }
}

/// The attempt failed: drop the socket and arm the retry.
fn fail(lp: &mut Loop, e: Errno) {
    if let Some(s) = lp.context_mut().sock.take() {
        let _ = lp.unregister(s.as_raw_fd());
    }
    let delay = lp.context_mut().backoff();
    note(lp, Event::Failed(e, delay));
    if let Err(err) = lp.add_timer(delay, 0, on_retry) {
        eprintln!("reconnect: cannot arm the retry: {err}");
        lp.stop();
    }
}

fn on_retry(lp: &mut Loop, _t: TimerEvent) {
    connect(lp);
}

/// The connect finished: SO_ERROR says how.
fn on_connect(lp: &mut Loop, io: IoEvent) {
    let result = match &lp.context().sock {
        Some(s) => rustix::net::sockopt::socket_error(s).unwrap_or(Err(Errno::BADF)),
        None => return,
    };
    match result {
        Ok(()) => {
            lp.context_mut().attempt = 0;
            lp.context_mut().bytes = 0;
            note(lp, Event::Connected);
            let watched = lp
                .set_handler(io.fd, 0, on_data)
                .and_then(|()| lp.modify(io.fd, Interest::READ));
            if let Err(e) = watched {
                fail(lp, Errno::from_raw_os_error(e_errno(e)));
            }
        }
        Err(e) => fail(lp, e),
    }
}

/// Data from the server is counted; its close (or an error) starts the retries.
fn on_data(lp: &mut Loop, _io: IoEvent) {
    let mut buf = [0u8; 4096];
    let read = match &lp.context().sock {
        Some(s) => rustix::io::read(s, &mut buf),
        None => return,
    };
    match read {
        Ok(0) => {
            let n = lp.context().bytes;
            note(lp, Event::Closed(n));
            fail(lp, Errno::CONNRESET);
        }
        Ok(n) => lp.context_mut().bytes += n,
        Err(Errno::AGAIN) => {}
        Err(e) => fail(lp, e),
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!(
        "reconnect: {msg}\nusage: reconnect [--server IPV4:PORT] [--base-ms MS] [--max-ms MS] \
         [--seed N]\n  defaults: --server 127.0.0.1:7000 --base-ms 100 --max-ms 30000 --seed 1"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut server = SocketAddrV4::new([127, 0, 0, 1].into(), 7000);
    let mut policy = Policy {
        base: Duration::from_millis(100),
        max: Duration::from_secs(30),
        seed: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(opt) = args.next() {
        let Some(value) = args.next() else {
            return usage(&format!("{opt} needs a value"));
        };
        let ms = || value.parse::<u64>().ok().filter(|&v| v > 0);
        match opt.as_str() {
            "--server" => match value.parse() {
                Ok(a) => server = a,
                Err(_) => return usage(&format!("--server: not IPV4:PORT: {value:?}")),
            },
            "--base-ms" | "--max-ms" | "--seed" => {
                let Some(v) = ms() else {
                    return usage(&format!("{opt}: not a positive number: {value:?}"));
                };
                match opt.as_str() {
                    "--base-ms" => policy.base = Duration::from_millis(v),
                    "--max-ms" => policy.max = Duration::from_millis(v),
                    _ => policy.seed = v,
                }
            }
            _ => return usage(&format!("unknown option {opt:?}")),
        }
    }
    let mut lp = Loop::new(Client::new(server, policy, true));
    connect(&mut lp);
    if let Err(e) = lp.run() {
        eprintln!("reconnect: event loop: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
