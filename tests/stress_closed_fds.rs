//! Stress tests: fds closed while registered (no misdispatch, no failing or spinning wait), with
//! their numbers reused, and files kept open by live duplicates. `#[ignore]`d; see
//! `tests/stress_echo.rs` for the command that runs the stress families.

mod support;

use picosel::backend::{Backend, Epoll, Poll, Select};
use picosel::{Interest, Ready, Selector};
use rustix::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};
use support::{pipe, Rng};

// ---------------------------------------------------------------------------------------------
// fds closed while registered.

#[allow(unsafe_code)]
fn readable(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, timeout 0.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r == 1 && p.revents & (libc::POLLIN | libc::POLLHUP) != 0
}

/// Waits of 50 ms for 500 ms with nothing ready: each must return no events; returns how many
/// waits there were (10 when none returned early).
fn quiet_wakeups<B: Backend, D: Copy, const N: usize>(sel: &mut Selector<B, D, N>) -> u32 {
    let t = Instant::now();
    let mut wakeups = 0;
    while t.elapsed() < Duration::from_millis(500) {
        let n = sel.select(Some(Duration::from_millis(50))).unwrap().count();
        assert_eq!(n, 0, "{}: events with nothing ready", B::NAME);
        wakeups += 1;
    }
    wakeups
}

/// One watched pipe of the churn test.
struct Watched {
    /// `None` once closed (registered or not).
    reader: Option<OwnedFd>,
    writer: OwnedFd,
    /// The fd number the registration was made for, and its data, while registered.
    reg: Option<(RawFd, u64)>,
    /// The reader's number when it was opened.
    number: RawFd,
}

/// Random writes, drains, closes without unregistering, and re-registrations (the kernel hands
/// the closed number to the next pipe), on one backend. Every reported event must carry the
/// data of the registration now holding that number, be for an fd that poll(2) finds readable
/// or that was closed (ERROR), and a quiet wait must block instead of spinning.
fn closed_while_registered<B: Backend>(steps: u32) {
    const PIPES: usize = 24;
    let mut sel = Selector::<B, u64, 64>::new();
    let mut rng = Rng(0xfeed ^ u64::from(steps));
    let mut next_data = 0u64;
    let mut pipes: Vec<Watched> = (0..PIPES)
        .map(|_| {
            let (r, w) = pipe();
            next_data += 1;
            let fd = r.as_raw_fd();
            sel.register(&r, Interest::READ, next_data).unwrap();
            Watched {
                reader: Some(r),
                writer: w,
                reg: Some((fd, next_data)),
                number: fd,
            }
        })
        .collect();
    let (mut closed, mut reused, mut errors_seen, mut stale_checks) = (0u32, 0u32, 0u32, 0u32);
    for step in 0..steps {
        let i = rng.below(PIPES as u64) as usize;
        match rng.below(10) {
            0..=4 => {
                let _ = rustix::io::write(&pipes[i].writer, b"x");
            }
            5 => {
                if let Some(r) = &pipes[i].reader {
                    let mut buf = [0u8; 4096];
                    let _ = rustix::io::read(r, &mut buf);
                }
            }
            6 | 7 => {
                // Close without unregistering: the mistake a daemon makes.
                if pipes[i].reader.take().is_some() {
                    closed += 1;
                }
            }
            _ => {
                // A closed one comes back: unregister (must succeed), a new pipe (usually on
                // the same number), register it with new data.
                if pipes[i].reader.is_none() {
                    if let Some((fd, _)) = pipes[i].reg.take() {
                        sel.unregister(fd).unwrap_or_else(|e| {
                            panic!("{}: unregister of closed fd {fd}: {e}", B::NAME)
                        });
                    }
                    let (r, w) = pipe();
                    let fd = r.as_raw_fd();
                    if pipes.iter().any(|p| p.reg.is_some_and(|(f, _)| f == fd)) {
                        // The number is still registered for a closed pipe: the kernel gave it
                        // to us again. Registering must refuse it, leaving the old one alone.
                        assert_eq!(
                            sel.register(&r, Interest::READ, 0),
                            Err(picosel::Error::AlreadyRegistered)
                        );
                        drop((r, w));
                        continue;
                    }
                    if fd == pipes[i].number {
                        reused += 1;
                    }
                    next_data += 1;
                    sel.register(&r, Interest::READ, next_data).unwrap();
                    pipes[i] = Watched {
                        reader: Some(r),
                        writer: w,
                        reg: Some((fd, next_data)),
                        number: fd,
                    };
                }
            }
        }
        // One wait; a handler unregisters what reports ERROR (closed under it).
        let mut events = sel.select(Some(Duration::ZERO)).unwrap_or_else(|e| {
            panic!(
                "{}: select failed at step {step} with closed fds registered: {e}",
                B::NAME
            )
        });
        let mut replaced: Option<RawFd> = None;
        while let Some((key, ready)) = events.next() {
            let fd = key.fd();
            assert_ne!(
                Some(fd),
                replaced,
                "stale event dispatched after replacement"
            );
            let owner = pipes
                .iter()
                .position(|p| p.reg.is_some_and(|(f, _)| f == fd))
                .unwrap_or_else(|| panic!("event for fd {fd}, which no registration holds"));
            let (_, data) = pipes[owner].reg.unwrap();
            assert_eq!(
                key.data(),
                data,
                "fd {fd}: event carries another registration's data"
            );
            match &pipes[owner].reader {
                Some(_) => assert!(
                    readable(fd) && !ready.is_error(),
                    "fd {fd}: reported {ready:?} but not readable"
                ),
                None => {
                    // Closed: epoll dropped it; poll and select report ERROR.
                    assert!(B::NAME != "epoll", "epoll reported closed fd {fd}");
                    assert!(ready.is_error(), "closed fd {fd} reported as {ready:?}");
                    errors_seen += 1;
                    events.selector().unregister(fd).unwrap();
                    pipes[owner].reg = None;
                    continue;
                }
            }
            // Now and then, mid-batch: another ready registration is replaced (unregister,
            // close, a new pipe on the same number, register): none of its queued events may
            // reach the new registration.
            if replaced.is_none() && rng.below(4) == 0 {
                if let Some(v) = pipes
                    .iter()
                    .position(|p| p.reader.is_some() && p.reg.is_some_and(|(f, _)| f != fd))
                {
                    let (vfd, _) = pipes[v].reg.unwrap();
                    events.selector().unregister(vfd).unwrap();
                    pipes[v].reader = None;
                    let (r, w) = pipe();
                    let nfd = r.as_raw_fd();
                    next_data += 1;
                    match events.selector().register(&r, Interest::READ, next_data) {
                        Ok(_) => {
                            if nfd == vfd {
                                stale_checks += 1;
                                replaced = Some(vfd);
                            }
                            pipes[v] = Watched {
                                reader: Some(r),
                                writer: w,
                                reg: Some((nfd, next_data)),
                                number: nfd,
                            };
                        }
                        // The number still belongs to a registration of a closed pipe.
                        Err(picosel::Error::AlreadyRegistered) => pipes[v].reg = None,
                        Err(e) => panic!("register a new pipe: {e}"),
                    }
                }
            }
        }
    }
    // Everything drained and every closed registration dropped: a wait must block for its
    // timeout, not spin, not fail.
    for p in pipes.iter_mut() {
        if let Some(r) = &p.reader {
            let mut buf = [0u8; 65536];
            while rustix::io::read(r, &mut buf).is_ok_and(|n| n > 0) {}
        } else if let Some((fd, _)) = p.reg.take() {
            sel.unregister(fd).unwrap();
        }
    }
    let wakeups = quiet_wakeups(&mut sel);
    assert!(
        wakeups <= 11,
        "{}: {wakeups} wake-ups in 500 ms: a spin",
        B::NAME
    );
    eprintln!(
        "{}: {steps} steps, {closed} fds closed while registered, {reused} numbers reused, \
         {errors_seen} ERROR reports handled, {stale_checks} mid-batch replacements on the same number",
        B::NAME
    );
}

#[test]
#[ignore = "stress: run with --ignored"]
fn closed_while_registered_epoll() {
    closed_while_registered::<Epoll>(20_000);
}

#[test]
#[ignore = "stress: run with --ignored"]
fn closed_while_registered_poll() {
    closed_while_registered::<Poll>(20_000);
}

#[test]
#[ignore = "stress: run with --ignored"]
fn closed_while_registered_select() {
    closed_while_registered::<Select>(20_000);
}

/// Unregisters a closed `fd`, which must succeed on every backend, even when a rebuilt epoll
/// instance took its number.
fn unregister_closed<B: Backend>(sel: &mut Selector<B, u64, 32>, fd: RawFd) {
    if let Err(e) = sel.unregister(fd) {
        panic!("{}: unregister of closed fd {fd}: {e}", B::NAME);
    }
}

/// Registered fds closed while a duplicate keeps their open file alive (`dup`, or a child that
/// inherited them), then unregistered: on epoll the kernel keeps reporting those files under
/// dead tokens (epoll(7), Q6). Such reports must never reach a registration, and once the
/// remaining files are left readable with nothing of theirs registered, waits must block
/// rather than spin. On every backend; epoll is the one where it matters.
fn closed_with_live_duplicates<B: Backend>(steps: u32) {
    const PIPES: usize = 16;
    /// Duplicates go at or above this number, away from the numbers the pipes reuse.
    const DUP_FLOOR: RawFd = 300;
    struct P {
        reader: Option<OwnedFd>,
        writer: OwnedFd,
        /// A duplicate of the reader's file, kept after the reader is closed.
        dup: Option<OwnedFd>,
        reg: Option<(RawFd, u64)>,
    }
    let mut sel = Selector::<B, u64, 32>::new();
    let mut rng = Rng(0xd0d0 ^ u64::from(steps));
    let mut next_data = 0u64;
    let mut new_pipe = |sel: &mut Selector<B, u64, 32>| -> Option<P> {
        let (r, w) = pipe();
        next_data += 1;
        let fd = r.as_raw_fd();
        match sel.register(&r, Interest::READ, next_data) {
            Ok(_) => Some(P {
                reader: Some(r),
                writer: w,
                dup: None,
                reg: Some((fd, next_data)),
            }),
            // The number still belongs to a registration of a closed reader.
            Err(picosel::Error::AlreadyRegistered) => None,
            Err(e) => panic!("register: {e}"),
        }
    };
    let mut pipes: Vec<P> = (0..PIPES).filter_map(|_| new_pipe(&mut sel)).collect();
    let (mut orphaned, mut events_seen) = (0u32, 0u64);
    for step in 0..steps {
        let i = rng.below(pipes.len() as u64) as usize;
        match rng.below(8) {
            0..=3 => {
                let _ = rustix::io::write(&pipes[i].writer, b"x");
            }
            4 => {
                // Close the reader but keep its file open through a duplicate.
                let p = &mut pipes[i];
                if let Some(r) = p.reader.take() {
                    p.dup = Some(rustix::io::fcntl_dupfd_cloexec(&r, DUP_FLOOR).expect("dup"));
                }
            }
            5 => {
                // Unregister a closed reader whose file lives on: an orphan on epoll.
                let p = &mut pipes[i];
                if p.reader.is_none() {
                    if let Some((fd, _)) = p.reg.take() {
                        unregister_closed(&mut sel, fd);
                        orphaned += u32::from(p.dup.is_some());
                    }
                }
            }
            6 => {
                // A dead pipe is replaced by a new one (its dup, if any, stays open).
                if pipes[i].reg.is_none() {
                    if let Some(p) = new_pipe(&mut sel) {
                        let old = std::mem::replace(&mut pipes[i], p);
                        // Keep the old orphan's file alive and readable until the end.
                        if let Some(d) = old.dup {
                            pipes.push(P {
                                reader: None,
                                writer: old.writer,
                                dup: Some(d),
                                reg: None,
                            });
                        }
                    }
                }
            }
            _ => {
                if let Some(r) = &pipes[i].reader {
                    let mut buf = [0u8; 4096];
                    let _ = rustix::io::read(r, &mut buf);
                }
            }
        }
        let events: Vec<(RawFd, u64, Ready)> = sel
            .select(Some(Duration::ZERO))
            .unwrap_or_else(|e| panic!("{}: select at step {step}: {e}", B::NAME))
            .map(|(k, r)| (k.fd(), k.data(), r))
            .collect();
        for (fd, data, ready) in events {
            events_seen += 1;
            let owner = pipes
                .iter()
                .find(|p| p.reg == Some((fd, data)))
                .unwrap_or_else(|| panic!("{}: event ({fd}, {data}) for no registration", B::NAME));
            assert!(!ready.is_empty());
            if owner.reader.is_some() {
                assert!(readable(fd), "fd {fd}: reported {ready:?} but not readable");
            }
        }
        assert!(pipes.len() < 4 * PIPES + steps as usize, "bounded");
    }
    // Drain what is registered and open; unregister the rest. Orphaned files stay readable.
    for p in pipes.iter_mut() {
        match (&p.reader, p.reg.take()) {
            (Some(r), Some(reg)) => {
                let mut buf = [0u8; 65536];
                while rustix::io::read(r, &mut buf).is_ok_and(|n| n > 0) {}
                p.reg = Some(reg);
            }
            (_, Some((fd, _))) => {
                unregister_closed(&mut sel, fd);
                orphaned += u32::from(p.dup.is_some());
            }
            _ => {}
        }
    }
    let readable_orphans = pipes
        .iter()
        .filter_map(|p| p.dup.as_ref())
        .filter(|d| readable(d.as_raw_fd()))
        .count();
    let wakeups = quiet_wakeups(&mut sel);
    assert!(
        wakeups <= 12,
        "{}: {wakeups} wake-ups in 500 ms with {readable_orphans} readable orphaned files: a spin",
        B::NAME
    );
    eprintln!(
        "{}: {steps} steps, {orphaned} registrations orphaned (closed with a live duplicate, then \
         unregistered), {readable_orphans} orphaned files readable at the end, {events_seen} events checked, \
         {wakeups} wake-ups in 500 ms",
        B::NAME
    );
}

#[test]
#[ignore = "stress: run with --ignored"]
fn closed_with_live_duplicates_epoll() {
    closed_with_live_duplicates::<Epoll>(20_000);
}

#[test]
#[ignore = "stress: run with --ignored"]
fn closed_with_live_duplicates_poll_and_select() {
    closed_with_live_duplicates::<Poll>(5_000);
    closed_with_live_duplicates::<Select>(5_000);
}
