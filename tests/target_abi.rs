//! What differs between the targets picosel runs on (x86_64, aarch64 and 32-bit armv7, as run
//! under qemu-user by scripts/pi-test.sh), checked with real fds on each backend:
//!
//! - select's `fd_set` is an array of `c_ulong`: 64-bit elements on x86_64 and aarch64, 32-bit
//!   on armv7, so fds 31/32 and 63/64 sit at element boundaries on one target and not on the
//!   other, and 1023 is the last bit of the last element everywhere;
//! - `epoll_event` is 12 bytes and packed on x86_64 only, 16 bytes elsewhere, and its 64-bit
//!   `data` must come back whole: the token keeps the slot's generation in the high half;
//! - `time_t` is 32-bit in armv7's old syscalls: long timeouts must not overflow on the way to
//!   the kernel (rustix uses the 64-bit time syscalls there).
//!
//! The boundary test puts fds at fixed numbers, so it is the only test in this file that opens
//! fds above 30; this binary is its own process, so no other test's fds are in the way.

mod support;

use picosel::backend::{Backend, Epoll, Poll, Select};
use picosel::{Interest, Ready, Selector};
use rustix::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};
use support::pipe;

const SHORT: Option<Duration> = Some(Duration::from_millis(500));

fn ready<B: Backend, const N: usize>(sel: &mut Selector<B, RawFd, N>) -> Vec<(RawFd, Ready)> {
    ready_within(sel, SHORT)
}

fn ready_within<B: Backend, const N: usize>(
    sel: &mut Selector<B, RawFd, N>,
    timeout: Option<Duration>,
) -> Vec<(RawFd, Ready)> {
    let mut got: Vec<_> = sel
        .select(timeout)
        .unwrap()
        .map(|(k, r)| (k.data(), r))
        .collect();
    got.sort_unstable_by_key(|&(fd, _)| fd);
    got
}

/// fds on both sides of every `fd_set` element boundary of both element sizes, and the last
/// fd select can take: each reported alone, and only when it is ready.
fn fd_set_boundaries<B: Backend>() {
    const AT: [RawFd; 7] = [31, 32, 33, 63, 64, 65, 1023];
    let limit = support::raise_fd_limit();
    assert!(limit > 1023, "need an fd limit above 1023, have {limit}");
    let mut ends: Vec<(OwnedFd, OwnedFd)> = Vec::new();
    for &n in &AT {
        let (r, w) = pipe();
        let high = rustix::io::fcntl_dupfd_cloexec(&r, n).unwrap();
        assert_eq!(high.as_raw_fd(), n, "fd {n} is taken in this process");
        ends.push((high, w));
    }
    let mut sel = Selector::<B, RawFd, 8>::new();
    for (r, _) in &ends {
        sel.register(r, Interest::READ, r.as_raw_fd()).unwrap();
    }
    let now = Some(Duration::ZERO);
    assert_eq!(ready_within(&mut sel, now), [], "nothing was written yet");
    for (r, w) in &ends {
        rustix::io::write(w, b"x").unwrap();
        assert_eq!(ready(&mut sel), [(r.as_raw_fd(), Ready::READ)]);
        let mut buf = [0u8; 1];
        assert_eq!(rustix::io::read(r, &mut buf), Ok(1));
    }
    // All at once.
    for (_, w) in &ends {
        rustix::io::write(w, b"x").unwrap();
    }
    let all: Vec<_> = AT.iter().map(|&n| (n, Ready::READ)).collect();
    assert_eq!(ready(&mut sel), all);
}

/// The token's generation lives in the high 32 bits of the 64-bit event data: after the same
/// slot is reused, an event whose data lost its high half would be dropped as stale.
fn token_high_half_survives_the_kernel<B: Backend>() {
    let (r, w) = pipe();
    let mut sel = Selector::<B, RawFd, 2>::new();
    for _ in 0..5 {
        sel.register(&r, Interest::READ, r.as_raw_fd()).unwrap();
        sel.unregister(&r).unwrap();
    }
    sel.register(&r, Interest::READ, r.as_raw_fd()).unwrap();
    rustix::io::write(&w, b"x").unwrap();
    assert_eq!(ready(&mut sel), [(r.as_raw_fd(), Ready::READ)]);
}

/// Timeouts whose seconds do not fit a 32-bit `time_t`, and the longest there is, reach the
/// kernel without error and do not delay a ready fd.
fn long_timeouts<B: Backend>() {
    let (r, w) = pipe();
    let mut sel = Selector::<B, RawFd, 2>::new();
    sel.register(&r, Interest::READ, r.as_raw_fd()).unwrap();
    rustix::io::write(&w, b"x").unwrap();
    for timeout in [
        Duration::from_secs(u64::from(u32::MAX) + 1),
        Duration::from_millis(i32::MAX as u64 + 1),
        Duration::MAX,
    ] {
        let t = Instant::now();
        let got: Vec<_> = sel
            .select(Some(timeout))
            .unwrap()
            .map(|(k, r)| (k.data(), r))
            .collect();
        assert_eq!(got, [(r.as_raw_fd(), Ready::READ)], "timeout {timeout:?}");
        assert!(t.elapsed() < Duration::from_secs(30), "timeout {timeout:?}");
    }
}

macro_rules! per_backend {
    ($($name:ident: $backend:ty),*) => {$(
        mod $name {
            #[test]
            fn token_high_half_survives_the_kernel() {
                super::token_high_half_survives_the_kernel::<$backend>();
            }
            #[test]
            fn long_timeouts() {
                super::long_timeouts::<$backend>();
            }
        }
    )*};
}

per_backend!(epoll: super::Epoll, poll: super::Poll, select: super::Select);

/// One test for all backends, in turn: it holds fixed fd numbers.
#[test]
fn fd_set_boundaries_on_every_backend() {
    fd_set_boundaries::<Select>();
    fd_set_boundaries::<Poll>();
    fd_set_boundaries::<Epoll>();
}

/// The epoll event layout the README's size figures rest on.
#[test]
fn epoll_event_layout() {
    let size = std::mem::size_of::<rustix::event::epoll::Event>();
    if cfg!(target_arch = "x86_64") {
        assert_eq!(size, 12, "packed on x86_64");
    } else {
        assert_eq!(size, 16, "naturally aligned 64-bit data elsewhere");
    }
}

/// select's element type is the C `unsigned long`: 4 bytes on 32-bit targets.
#[test]
fn fd_set_element_is_c_ulong() {
    assert_eq!(
        std::mem::size_of::<rustix::event::FdSetElement>(),
        std::mem::size_of::<libc::c_ulong>()
    );
    assert_eq!(
        std::mem::size_of::<libc::c_ulong>(),
        std::mem::size_of::<usize>()
    );
}
