//! `examples/reconnect.rs`'s own handlers in virtual time, with real sockets: a port where
//! nothing listens refuses each attempt at once, for real, and the retry schedule (exponential
//! backoff with seeded jitter) is asserted to the millisecond without sleeping; a server that
//! comes up, sends and closes resets the backoff.

#[path = "../examples/reconnect.rs"]
#[allow(dead_code)]
mod reconnect;

use picosel::Instant;
use reconnect::{Client, Event, Loop, Policy};
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use std::io::Write;
use std::net::{SocketAddrV4, TcpListener};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

/// A loopback port where nothing listens: one the kernel just gave out and took back.
fn free_port() -> SocketAddrV4 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    match l.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        a => panic!("not IPv4: {a}"),
    }
}

fn client(server: SocketAddrV4) -> Loop {
    let policy = Policy {
        base: MS * 100,
        max: MS * 2000,
        seed: 42,
    };
    let mut lp = Loop::new(Client::new(server, policy, false));
    reconnect::connect(&mut lp);
    lp
}

/// Turns until the log holds `n` events.
fn run_until(lp: &mut Loop, n: usize) {
    while lp.context().log.len() < n {
        lp.run_once(None).unwrap();
    }
}

/// The failures' times in ms on the virtual clock, and their delays in ms.
fn failures(lp: &Loop) -> Vec<(u128, u128)> {
    lp.context()
        .log
        .iter()
        .filter_map(|(t, e)| match e {
            Event::Failed(_, d) => Some(((*t - Instant::ZERO).as_millis(), d.as_millis())),
            _ => None,
        })
        .collect()
}

/// The errno SO_ERROR gives for a refused non-blocking connect, as the example reads it.
/// ECONNREFUSED on a real kernel; qemu-user 7.2 (Debian 12) copies the host's SO_ERROR value
/// to the guest untranslated, so a MIPS program (whose ECONNREFUSED is 146) under it reads
/// x86's 111: the errno check is then left out, with a SKIPPED line.
fn refused_so_error() -> Errno {
    let s = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::NONBLOCK,
        None,
    )
    .unwrap();
    match rustix::net::connect(&s, &free_port()) {
        Err(Errno::INPROGRESS) => {}
        other => return other.expect_err("connected to a port where nothing listens"),
    }
    let mut fds = [PollFd::new(&s, PollFlags::OUT)];
    rustix::event::poll(&mut fds, None).unwrap();
    let got = rustix::net::sockopt::socket_error(&s).unwrap();
    got.expect_err("connected to a port where nothing listens")
}

#[test]
fn refused_attempts_back_off_exponentially_with_seeded_jitter() {
    let refused = refused_so_error();
    if refused != Errno::CONNREFUSED {
        eprintln!(
            "SKIPPED: the errno check: SO_ERROR of a refused connect is {} here, not \
             ECONNREFUSED ({}): an emulator that does not translate it",
            refused.raw_os_error(),
            Errno::CONNREFUSED.raw_os_error()
        );
    }
    let mut lp = client(free_port());
    run_until(&mut lp, 16);
    let log = &lp.context().log;
    // Connecting, refused; connecting, refused; ... each refusal at its attempt's time.
    for pair in log.chunks(2) {
        assert_eq!(pair[0].1, Event::Connecting);
        assert!(
            matches!(pair[1].1, Event::Failed(e, _) if e == refused),
            "{pair:?}"
        );
        assert_eq!(pair[0].0, pair[1].0, "refused at once");
    }
    let f = failures(&lp);
    // Each delay is within [d/2, d] for d = min(2000, 100 × 2^k) ms.
    for (k, &(_, delay)) in f.iter().enumerate() {
        let d = (100u128 << k).min(2000);
        assert!((d / 2..=d).contains(&delay), "attempt {k}: {delay} ms");
    }
    // The schedule, to the millisecond, for seed 42.
    assert_eq!(f, SCHEDULE);
    // Each attempt starts exactly when the last one's delay ends.
    for w in f.windows(2) {
        assert_eq!(w[1].0, w[0].0 + w[0].1);
    }
}

/// (time of the refusal, delay before the next attempt), in ms, for seed 42: xorshift64 from
/// 43 (the seed with its low bit set), jitter = next % (d/2 + 1) ms; the same formula written
/// apart from the example gives these.
const SCHEDULE: [(u128, u128); 8] = [
    (0, 60),
    (60, 168),
    (228, 247),
    (475, 497),
    (972, 1126),
    (2098, 1112),
    (3210, 1034),
    (4244, 1148),
];

#[test]
fn a_server_that_comes_up_resets_the_backoff() {
    let addr = free_port();
    let mut lp = client(addr);
    run_until(&mut lp, 6); // three refusals
    let listener = TcpListener::bind(addr).unwrap();
    run_until(&mut lp, 8); // connecting, connected
    assert_eq!(lp.context().log[7].1, Event::Connected);
    let up_at = lp.context().log[7].0;
    let (mut conn, _) = listener.accept().unwrap();
    conn.write_all(b"hello").unwrap();
    drop(conn);
    drop(listener);
    run_until(&mut lp, 10);
    let log = &lp.context().log;
    assert_eq!(log[8], (up_at, Event::Closed(5)));
    // The backoff starts again from its first step: at most 100 ms.
    match log[9] {
        (t, Event::Failed(Errno::CONNRESET, d)) => {
            assert_eq!(t, up_at);
            assert!(d >= MS * 50 && d <= MS * 100, "{d:?}");
        }
        ref e => panic!("{e:?}"),
    }
}
