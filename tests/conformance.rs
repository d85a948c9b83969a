//! The behaviours every backend must show (CONFORMANCE.md items 1–21 and 27–29; 22–26 are the
//! event loop's, in `tests/event_loop.rs`, `tests/signals.rs` and `tests/no_alloc_loop.rs`):
//! one suite, written once as generic functions, instantiated for epoll, poll and select
//! (`epoll::…`, `poll::…`, `select::…` in the test names), and for the simulated backend where
//! a behaviour is not about real kernel objects (`sim::…`, at the end).

mod support;

use picosel::backend::poll::PollPoller;
use picosel::backend::select::SelectPoller;
use picosel::backend::{Backend, Epoll, Poll, Poller, Select, Token};
use picosel::{Errno, Error, Interest, Mode, Ready, Selector, SelectorKey};
use rustix::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::sync::RwLock;
use std::time::{Duration, Instant};
use support::{ctl_calls, open_fds, pipe, raise_fd_limit, socketpair, CountingCalls};

/// Tests that count the process's fds take this for writing; all others for reading.
static FD_COUNT: RwLock<()> = RwLock::new(());

const ZERO: Option<Duration> = Some(Duration::ZERO);
const SHORT: Option<Duration> = Some(Duration::from_millis(500));

fn is_epoll<B: Backend>() -> bool {
    B::NAME == "epoll"
}

fn write(fd: &OwnedFd, data: &[u8]) {
    assert_eq!(rustix::io::write(fd, data).expect("write"), data.len());
}

/// All (fd, ready) pairs of one wait.
fn wait<B: Backend, D: Copy, const N: usize>(
    sel: &mut Selector<B, D, N>,
    timeout: Option<Duration>,
) -> Vec<(RawFd, Ready)> {
    sel.select(timeout)
        .expect("select")
        .map(|(k, r)| (k.fd(), r))
        .collect()
}

/// One wait's `(fd, data, ready)` triples.
fn wait_data<B: Backend, D: Copy, const N: usize>(
    sel: &mut Selector<B, D, N>,
    timeout: Option<Duration>,
) -> Vec<(RawFd, D, Ready)> {
    sel.select(timeout)
        .expect("select")
        .map(|(k, r)| (k.fd(), k.data(), r))
        .collect()
}

/// Closes `r`'s file by putting the read end of a new pipe under its number (dup2(2)): returns
/// the fd that now holds the number, and the new pipe's write end.
fn new_pipe_over(r: OwnedFd) -> (OwnedFd, OwnedFd) {
    let number = r.as_raw_fd();
    let (new_r, new_w) = pipe();
    let mut slot = r;
    rustix::io::dup2(&new_r, &mut slot).unwrap();
    assert_eq!(slot.as_raw_fd(), number);
    (slot, new_w)
}

/// Waits of 50 ms for 200 ms, each returning nothing: at most 6 wake-ups, or `what` spins the
/// wait.
fn assert_quiet<B: Backend, D: Copy, const N: usize>(sel: &mut Selector<B, D, N>, what: &str) {
    let start = Instant::now();
    let mut wakeups = 0;
    while start.elapsed() < Duration::from_millis(200) {
        assert_eq!(wait(sel, Some(Duration::from_millis(50))), []);
        wakeups += 1;
    }
    assert!(
        wakeups <= 6,
        "{wakeups} wake-ups in 200 ms: {what} spins the wait"
    );
}

// 1
fn register_returns_key<B: Backend>() {
    let (r, _w) = pipe();
    let mut sel = Selector::<B, u32, 4>::new();
    let key = sel.register(&r, Interest::READ, 42).unwrap();
    assert_eq!(key.fd(), r.as_raw_fd());
    assert_eq!(key.interest(), Interest::READ);
    assert_eq!(key.data(), 42);
    assert_eq!(key.mode(), Mode::Level);
    assert_eq!(sel.len(), 1);
}

// 2
fn invalid_interest_registers_nothing<B: Backend>() {
    let (r, _w) = pipe();
    let mut sel = Selector::<B, (), 4>::new();
    assert_eq!(
        sel.register(&r, Interest::empty(), ()),
        Err(Error::InvalidInterest)
    );
    assert_eq!(
        sel.register(&r, Interest::from_bits_retain(0x80), ()),
        Err(Error::InvalidInterest)
    );
    assert_eq!(
        sel.register(&r, Interest::READ | Interest::from_bits_retain(0x40), ()),
        Err(Error::InvalidInterest)
    );
    assert!(sel.is_empty());
    assert_eq!(sel.get_key(&r), Err(Error::NotRegistered));
}

// 3
fn negative_fd_refused<B: Backend>() {
    let mut sel = Selector::<B, (), 4>::new();
    assert_eq!(sel.register(-1, Interest::READ, ()), Err(Error::InvalidFd));
    assert_eq!(
        sel.register(i32::MIN, Interest::READ, ()),
        Err(Error::InvalidFd)
    );
    assert!(sel.is_empty());
}

fn same_fd_twice_refused<B: Backend>() {
    let (r, w) = pipe();
    let mut sel = Selector::<B, u8, 4>::new();
    let first = sel.register(&r, Interest::READ, 1).unwrap();
    // The same number through another handle: a raw fd and a BorrowedFd.
    assert_eq!(
        sel.register(r.as_raw_fd(), Interest::WRITE, 2),
        Err(Error::AlreadyRegistered)
    );
    assert_eq!(
        sel.register(r.as_fd(), Interest::READ, 3),
        Err(Error::AlreadyRegistered)
    );
    assert_eq!(sel.get_key(&r), Ok(first));
    write(&w, b"x");
    assert_eq!(wait(&mut sel, SHORT), [(r.as_raw_fd(), Ready::READ)]);
}

// 4
fn full_table<B: Backend>() {
    let pipes: Vec<_> = (0..5).map(|_| pipe()).collect();
    let mut sel = Selector::<B, usize, 4>::new();
    for (i, (r, _)) in pipes.iter().take(4).enumerate() {
        sel.register(r, Interest::READ, i).unwrap();
    }
    assert_eq!(
        sel.register(&pipes[4].0, Interest::READ, 4),
        Err(Error::Full)
    );
    assert_eq!(sel.len(), 4);
    assert_eq!(sel.get_key(&pipes[4].0), Err(Error::NotRegistered));
    // The four others still work.
    for (_, w) in &pipes {
        write(w, b"x");
    }
    let mut got: Vec<RawFd> = wait(&mut sel, SHORT)
        .into_iter()
        .map(|(fd, _)| fd)
        .collect();
    got.sort();
    let mut want: Vec<RawFd> = pipes[..4].iter().map(|(r, _)| r.as_raw_fd()).collect();
    want.sort();
    assert_eq!(got, want);
    // After one unregister, a new registration succeeds.
    sel.unregister(&pipes[0].0).unwrap();
    sel.register(&pipes[4].0, Interest::READ, 4).unwrap();
    assert_eq!(sel.len(), 4);
}

// 5
fn unregister_unknown<B: Backend>() {
    let (r, w) = pipe();
    let mut sel = Selector::<B, (), 4>::new();
    assert_eq!(sel.unregister(&r), Err(Error::NotRegistered));
    sel.register(&r, Interest::READ, ()).unwrap();
    assert!(sel.unregister(&r).is_ok());
    assert_eq!(sel.unregister(&r), Err(Error::NotRegistered));
    assert_eq!(sel.unregister(&w), Err(Error::NotRegistered));
    assert!(sel.is_empty());
}

// 6
fn unregister_after_close<B: Backend>() {
    let mut sel = Selector::<B, (), 4>::new();
    let (r, _w) = pipe();
    let fd = r.as_raw_fd();
    sel.register(&r, Interest::READ, ()).unwrap();
    drop(r);
    assert!(sel.unregister(fd).is_ok());
    assert!(sel.is_empty());
}

fn unregister_after_close_and_reuse<B: Backend>() {
    let mut sel = Selector::<B, u8, 4>::new();
    let (r, _w) = pipe();
    let fd = r.as_raw_fd();
    sel.register(&r, Interest::READ, 1).unwrap();
    // Close `r` and put another file under the same number with dup2.
    let (slot, w2) = new_pipe_over(r);
    assert!(sel.unregister(fd).is_ok());
    // The new file behind the number is undisturbed: it registers and reports as usual.
    sel.register(&slot, Interest::READ, 2).unwrap();
    write(&w2, b"y");
    assert_eq!(wait_data(&mut sel, SHORT), [(fd, 2, Ready::READ)]);
    let mut buf = [0u8; 1];
    assert_eq!(rustix::io::read(&slot, &mut buf), Ok(1));
}

/// epoll watches open files, not numbers (epoll(7), Q6): a registered fd closed while a
/// duplicate keeps its file open stays in the kernel's interest list. After `unregister`, the
/// selector rebuilds its epoll instance on the first orphaned report, so waits block again.
fn closed_with_live_duplicate_does_not_spin<B: Backend>() {
    let (r, w) = pipe();
    let mut sel = Selector::<B, u8, 4>::new();
    sel.register(&r, Interest::READ, 1).unwrap();
    let (other_r, other_w) = pipe();
    sel.register(&other_r, Interest::READ, 2).unwrap();
    let dup = rustix::io::fcntl_dupfd_cloexec(&r, 0).unwrap();
    let fd = r.as_raw_fd();
    drop(r);
    write(&w, b"x");
    assert_eq!(sel.unregister(fd).map(|k| k.data()), Ok(1));
    assert_quiet(&mut sel, "the orphaned file");
    // The other registration survived the rebuild.
    write(&other_w, b"y");
    assert_eq!(wait(&mut sel, SHORT), [(other_r.as_raw_fd(), Ready::READ)]);
    drop(dup);
}

// 7
fn modify_changes_interest<B: Backend>() {
    let (a, b) = socketpair();
    let mut sel = Selector::<B, u8, 4>::new();
    sel.register(&a, Interest::READ, 1).unwrap();
    assert_eq!(wait(&mut sel, ZERO), []);
    let key = sel.modify(&a, Interest::WRITE, 2).unwrap();
    assert_eq!(sel.get_key(&a), Ok(key));
    assert_eq!((key.interest(), key.data()), (Interest::WRITE, 2));
    assert_eq!(wait(&mut sel, SHORT), [(a.as_raw_fd(), Ready::WRITE)]);
    assert_eq!(sel.modify(&b, Interest::READ, 0), Err(Error::NotRegistered));
    assert_eq!(
        sel.modify(&a, Interest::empty(), 3),
        Err(Error::InvalidInterest)
    );
    assert_eq!(sel.get_key(&a), Ok(key));
}

fn modify_data_alone_makes_no_syscall<B: Backend>() {
    let (r, _w) = pipe();
    let mut sel = Selector::<CountingCalls<B>, u8, 4>::new();
    sel.register(&r, Interest::READ, 1).unwrap();
    let before = ctl_calls();
    let key = sel.modify(&r, Interest::READ, 2).unwrap();
    assert_eq!(ctl_calls(), before, "data-only modify reached the backend");
    assert_eq!(key.data(), 2);
    sel.modify(&r, Interest::READ | Interest::PRIORITY, 2)
        .unwrap();
    assert_eq!(ctl_calls(), before + 1);
}

// 8
fn kernel_refusal_rolls_back<B: Backend>() {
    // Alone, so no other test reuses the closed numbers below.
    let _only_me = FD_COUNT.write().unwrap_or_else(|e| e.into_inner());
    let mut sel = Selector::<B, (), 4>::new();
    let (keep, w) = pipe();
    // Opens the backend first, so its own fd cannot take the number closed below.
    sel.register(&keep, Interest::READ, ()).unwrap();
    // A closed fd: EBADF on every backend, for register and for modify.
    let (r, _w2) = pipe();
    let closed = r.as_raw_fd();
    drop(r);
    assert_eq!(
        sel.register(closed, Interest::READ, ()),
        Err(Error::Os(Errno::BADF))
    );
    assert_eq!(sel.len(), 1);
    assert_eq!(sel.get_key(closed), Err(Error::NotRegistered));
    sel.register(&w, Interest::WRITE, ()).unwrap();
    let wfd = w.as_raw_fd();
    drop(w);
    assert_eq!(
        sel.modify(wfd, Interest::READ, ()),
        Err(Error::Os(Errno::BADF))
    );
    assert_eq!(sel.get_key(wfd).unwrap().interest(), Interest::WRITE);
    assert!(sel.unregister(wfd).is_ok());
    sel.unregister(&keep).unwrap();

    // A regular file: epoll refuses it with EPERM; poll and select accept it (always ready).
    let file = tempfile();
    let res = sel.register(&file, Interest::READ, ());
    if is_epoll::<B>() {
        assert_eq!(res, Err(Error::Os(Errno::PERM)));
        assert!(sel.is_empty());
    } else {
        assert!(res.is_ok());
        assert_eq!(wait(&mut sel, SHORT), [(file.as_raw_fd(), Ready::READ)]);
    }
}

fn tempfile() -> std::fs::File {
    let path = std::env::temp_dir().join(format!(
        "picosel-conformance-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let f = std::fs::File::create(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    f
}

// 9
fn get_key_and_iteration<B: Backend>() {
    let pipes: Vec<_> = (0..3).map(|_| pipe()).collect();
    let mut sel = Selector::<B, usize, 8>::new();
    let mut want = BTreeMap::new();
    for (i, (r, w)) in pipes.iter().enumerate() {
        let k = sel.register(r, Interest::READ, i).unwrap();
        want.insert(k.fd(), k);
        let k = sel.register(w, Interest::WRITE, 10 + i).unwrap();
        want.insert(k.fd(), k);
    }
    sel.unregister(&pipes[1].1).unwrap();
    want.remove(&pipes[1].1.as_raw_fd());
    for (fd, k) in &want {
        assert_eq!(sel.get_key(*fd), Ok(*k));
    }
    assert_eq!(sel.get_key(&pipes[1].1), Err(Error::NotRegistered));
    let got: BTreeMap<RawFd, SelectorKey<usize>> = sel.keys().map(|k| (k.fd(), *k)).collect();
    assert_eq!(got, want);
    assert_eq!(sel.len(), want.len());
}

// 10
fn close_releases_backend_fd<B: Backend>() {
    let _only_me = FD_COUNT.write().unwrap_or_else(|e| e.into_inner());
    let (r, _w) = pipe();
    let before = open_fds();
    let mut sel = Selector::<B, (), 4>::new();
    sel.register(&r, Interest::READ, ()).unwrap();
    let _ = wait(&mut sel, ZERO);
    sel.close();
    assert_eq!(open_fds(), before, "close leaked an fd");
    let mut sel = Selector::<B, (), 4>::new();
    sel.register(&r, Interest::READ, ()).unwrap();
    drop(sel);
    assert_eq!(open_fds(), before, "drop leaked an fd");
}

// 11
fn empty_select_returns_at_once<B: Backend>() {
    let mut sel = Selector::<B, (), 4>::new();
    let t = Instant::now();
    assert_eq!(wait(&mut sel, ZERO), []);
    assert!(t.elapsed() < Duration::from_secs(2));
}

// 12
fn only_ready_interests_reported<B: Backend>() {
    let (a, b) = socketpair();
    let mut sel = Selector::<B, (), 4>::new();
    sel.register(&a, Interest::READ, ()).unwrap();
    sel.register(&b, Interest::WRITE, ()).unwrap();
    assert_eq!(wait(&mut sel, SHORT), [(b.as_raw_fd(), Ready::WRITE)]);
}

// 13
fn read_and_write_in_one_entry<B: Backend>() {
    let (a, b) = socketpair();
    write(&b, b"ping");
    let mut sel = Selector::<B, (), 4>::new();
    sel.register(&a, Interest::READ | Interest::WRITE, ())
        .unwrap();
    assert_eq!(
        wait(&mut sel, SHORT),
        [(a.as_raw_fd(), Ready::READ | Ready::WRITE)]
    );
}

// 14
fn timeouts<B: Backend>() {
    let (r, w) = pipe();
    let mut sel = Selector::<B, (), 4>::new();
    sel.register(&r, Interest::READ, ()).unwrap();

    let t = Instant::now();
    assert_eq!(wait(&mut sel, ZERO), []);
    assert!(t.elapsed() < Duration::from_secs(2));

    let t = Instant::now();
    assert_eq!(wait(&mut sel, Some(Duration::from_secs(1))), []);
    assert!(
        t.elapsed() >= Duration::from_millis(990),
        "{:?}",
        t.elapsed()
    );

    // No timeout: blocks until the event.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        write(&w, b"z");
        w
    });
    let t = Instant::now();
    assert_eq!(wait(&mut sel, None), [(r.as_raw_fd(), Ready::READ)]);
    assert!(t.elapsed() >= Duration::from_millis(90));
    let _w = writer.join().unwrap();

    // Sub-millisecond timeouts round up to 1 ms: 20 ms of them is at most ~20 waits.
    let mut buf = [0u8; 8];
    let _ = rustix::io::read(&r, &mut buf);
    let t = Instant::now();
    let mut waits = 0;
    while t.elapsed() < Duration::from_millis(20) {
        assert_eq!(wait(&mut sel, Some(Duration::from_micros(100))), []);
        waits += 1;
    }
    assert!(waits <= 21, "{waits} waits in 20 ms: a sub-ms timeout spun");
}

// 15
fn many_socketpairs<B: Backend>(count: usize) {
    raise_fd_limit();
    const CAP: usize = 1024;
    let pairs: Vec<_> = (0..count).map(|_| socketpair()).collect();
    let mut sel = Selector::<B, usize, CAP>::new();
    for (i, (a, _)) in pairs.iter().enumerate() {
        sel.register(a, Interest::READ, i).unwrap();
    }
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut buf = [0u8; 16];
    for round in 0..(count * 2).min(400) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let i = (seed % count as u64) as usize;
        let msg = (round as u64).to_le_bytes();
        write(&pairs[i].1, &msg);
        let got: Vec<_> = sel
            .select(SHORT)
            .unwrap()
            .map(|(k, r)| (k.data(), r))
            .collect();
        assert_eq!(got, [(i, Ready::READ)], "round {round}");
        assert_eq!(rustix::io::read(&pairs[i].0, &mut buf), Ok(8));
        assert_eq!(buf[..8], msg);
    }
}

// 16
fn hangup_reports_read_and_hup<B: Backend>() {
    let (r, w) = pipe();
    let mut sel = Selector::<B, (), 4>::new();
    sel.register(&r, Interest::READ, ()).unwrap();
    drop(w);
    let got = wait(&mut sel, SHORT);
    assert_eq!(got.len(), 1);
    let ready = got[0].1;
    assert!(ready.is_readable(), "{ready:?}");
    // select(2) has no hang-up set; epoll and poll report it distinctly.
    if B::NAME != "select" {
        assert!(ready.is_hup(), "{ready:?}");
    }
    let mut buf = [0u8; 4];
    assert_eq!(rustix::io::read(&r, &mut buf), Ok(0), "EOF");

    // A socket peer that goes away: READ (and HUP), then EOF.
    let (a, b) = socketpair();
    sel.register(&a, Interest::READ, ()).unwrap();
    drop(b);
    let got: Vec<_> = wait(&mut sel, SHORT)
        .into_iter()
        .filter(|(fd, _)| *fd == a.as_raw_fd())
        .collect();
    assert_eq!(got.len(), 1);
    assert!(got[0].1.is_readable());
    assert_eq!(rustix::io::read(&a, &mut buf), Ok(0));
}

// 17
fn priority_from_tcp_oob<B: Backend>() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let mut sel = Selector::<B, (), 4>::new();
    sel.register(&server, Interest::PRIORITY, ()).unwrap();
    assert_eq!(wait(&mut sel, ZERO), []);
    rustix::net::send(&client, b"!", rustix::net::SendFlags::OOB).unwrap();
    let got = wait(&mut sel, Some(Duration::from_secs(2)));
    assert_eq!(got, [(server.as_raw_fd(), Ready::PRIORITY)]);
}

// 18
#[allow(unsafe_code)]
fn signal_interrupts_wait<B: Backend>() {
    install_noop_handler(libc::SIGUSR2);
    let (r, _w) = pipe();
    let mut sel = Selector::<B, (), 4>::new();
    sel.register(&r, Interest::READ, ()).unwrap();
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: `me` names the waiting thread, which joins this one before it returns.
        unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGUSR2) };
    });
    let t = Instant::now();
    let events = sel.select(Some(Duration::from_secs(10)));
    let elapsed = t.elapsed();
    killer.join().unwrap();
    let events: Vec<_> = events.expect("EINTR must not be an error").collect();
    assert!(events.is_empty());
    assert!(
        elapsed < Duration::from_secs(9),
        "the signal did not interrupt the wait"
    );
}

#[allow(unsafe_code)]
fn install_noop_handler(sig: libc::c_int) {
    extern "C" fn noop(_: libc::c_int) {}
    // SAFETY: a zeroed sigaction with a valid handler and no SA_RESTART; the handler
    // is async-signal-safe (does nothing).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = noop as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
}

// 19
fn above_fd_setsize<B: Backend>() {
    let limit = raise_fd_limit();
    assert!(limit > 2100, "need an fd limit above 2100, have {limit}");
    let (r, w) = pipe();
    // Hold ~2000 fds, the last ones numbered well above FD_SETSIZE.
    let filler: Vec<OwnedFd> = (0..2000)
        .map(|_| rustix::io::fcntl_dupfd_cloexec(&w, 0).unwrap())
        .collect();
    let high = rustix::io::fcntl_dupfd_cloexec(&r, 1500).unwrap();
    assert!(high.as_raw_fd() >= 1024);
    let mut sel = Selector::<B, (), 8>::new();
    let res = sel.register(&high, Interest::READ, ());
    if B::NAME == "select" {
        assert_eq!(res, Err(Error::FdOutOfRange));
        assert!(sel.is_empty());
        // Below the limit it still works.
        sel.register(&r, Interest::READ, ()).unwrap();
        write(&w, b"s");
        assert_eq!(wait(&mut sel, SHORT), [(r.as_raw_fd(), Ready::READ)]);
    } else {
        res.unwrap();
        write(&w, b"s");
        assert_eq!(wait(&mut sel, SHORT), [(high.as_raw_fd(), Ready::READ)]);
    }
    drop(filler);
}

// 20
fn level_reports_every_wait<B: Backend>() {
    let (r, w) = pipe();
    let mut sel = Selector::<B, (), 4>::new();
    sel.register(&r, Interest::READ, ()).unwrap();
    write(&w, b"abc");
    for _ in 0..3 {
        assert_eq!(wait(&mut sel, SHORT), [(r.as_raw_fd(), Ready::READ)]);
    }
}

fn edge_reports_once<B: Backend>() {
    let (r, w) = pipe();
    let mut sel = Selector::<B, (), 4>::new();
    let res = sel.register_mode(&r, Interest::READ, Mode::Edge, ());
    if !is_epoll::<B>() {
        assert_eq!(res, Err(Error::Unsupported));
        assert!(sel.is_empty());
        sel.register(&r, Interest::READ, ()).unwrap();
        assert_eq!(
            sel.modify_mode(&r, Interest::READ, Mode::Edge, ()),
            Err(Error::Unsupported)
        );
        assert_eq!(sel.get_key(&r).unwrap().mode(), Mode::Level);
        return;
    }
    res.unwrap();
    write(&w, b"a");
    assert_eq!(wait(&mut sel, SHORT), [(r.as_raw_fd(), Ready::READ)]);
    assert_eq!(
        wait(&mut sel, ZERO),
        [],
        "edge: unread data is not reported again"
    );
    write(&w, b"b");
    assert_eq!(wait(&mut sel, SHORT), [(r.as_raw_fd(), Ready::READ)]);
}

fn oneshot_reports_once_until_rearmed<B: Backend>() {
    let (r, w) = pipe();
    let mut sel = Selector::<B, u8, 4>::new();
    sel.register_mode(&r, Interest::READ, Mode::Oneshot, 1)
        .unwrap();
    write(&w, b"a");
    assert_eq!(wait(&mut sel, SHORT), [(r.as_raw_fd(), Ready::READ)]);
    assert_eq!(wait(&mut sel, ZERO), []);
    write(&w, b"b");
    assert_eq!(wait(&mut sel, ZERO), [], "disarmed until modify");
    // Re-arm with the same interest: a oneshot modify always reaches the kernel.
    sel.modify(&r, Interest::READ, 1).unwrap();
    assert_eq!(wait(&mut sel, SHORT), [(r.as_raw_fd(), Ready::READ)]);
    assert_eq!(wait(&mut sel, ZERO), []);
    // A disarmed registration still unregisters cleanly.
    sel.unregister(&r).unwrap();
}

/// A selector with two pipes registered for READ (data 1 and 2), both readable; the pipes
/// come back as (read end, write end).
type Pipe = (OwnedFd, OwnedFd);
fn two_readable_pipes<B: Backend>() -> (Selector<B, u8, 4>, Pipe, Pipe) {
    let (r1, w1) = pipe();
    let (r2, w2) = pipe();
    let mut sel = Selector::<B, u8, 4>::new();
    sel.register(&r1, Interest::READ, 1).unwrap();
    sel.register(&r2, Interest::READ, 2).unwrap();
    write(&w1, b"1");
    write(&w2, b"2");
    (sel, (r1, w1), (r2, w2))
}

// 21
fn unregistered_in_batch_not_delivered<B: Backend>() {
    let (mut sel, (r1, _w1), (r2, _w2)) = two_readable_pipes::<B>();
    let mut delivered = Vec::new();
    let mut events = sel.select(SHORT).unwrap();
    while let Some((key, _)) = events.next() {
        delivered.push(key.data());
        // The first handler unregisters the other fd, whose event is queued.
        let other = if key.fd() == r1.as_raw_fd() { &r2 } else { &r1 };
        let _ = events.selector().unregister(other);
    }
    assert_eq!(delivered.len(), 1, "{delivered:?}");
}

fn reused_number_in_batch_not_delivered<B: Backend>() {
    let (mut sel, (r1, w1), (r2, w2)) = two_readable_pipes::<B>();
    let mut fds = [Some(r1), Some(r2)];
    let mut delivered = Vec::new();
    let mut fresh = Vec::new();
    let mut events = sel.select(SHORT).unwrap();
    while let Some((key, _)) = events.next() {
        delivered.push(key.data());
        if delivered.len() > 1 {
            continue;
        }
        // Close the other fd, put a new, empty pipe under its number, register that.
        let other = fds
            .iter_mut()
            .flatten()
            .find(|f| f.as_raw_fd() != key.fd())
            .unwrap();
        let number = other.as_raw_fd();
        let sel = events.selector();
        sel.unregister(number).unwrap();
        let (nr, nw) = pipe();
        rustix::io::dup2(&nr, other).unwrap();
        assert_eq!(other.as_raw_fd(), number);
        sel.register(number, Interest::READ, 99).unwrap();
        fresh.push((nr, nw));
    }
    assert_eq!(delivered.len(), 1, "stale event delivered: {delivered:?}");
    assert!(!delivered.contains(&99));
    drop(w1);
    drop(w2);
}

// 27
/// A registered fd closed without `unregister`. epoll forgets it (the kernel dropped the file);
/// poll and select report it once, as ERROR (folded into the registered READ), then leave it
/// out of their waits. Either way no wait returns early and nothing else is starved.
fn closed_registration_reported_once_without_spinning<B: Backend>() {
    // Alone, so no other test takes the closed number.
    let _only_me = FD_COUNT.write().unwrap_or_else(|e| e.into_inner());
    let mut sel = Selector::<B, u8, 4>::new();
    let (ready, ready_w) = pipe();
    // Opens the backend first, so its own fd cannot take the number closed below.
    sel.register(&ready, Interest::READ, 1).unwrap();
    let (r, _w) = pipe();
    let closed = r.as_raw_fd();
    sel.register(&r, Interest::READ, 2).unwrap();
    drop(r);
    write(&ready_w, b"x");

    // One wait reports the ready pipe and, on poll and select, the closed registration.
    let mut got = wait(&mut sel, SHORT);
    got.sort_by_key(|(fd, _)| *fd);
    let others: Vec<_> = got.iter().filter(|(fd, _)| *fd != closed).collect();
    assert_eq!(others, [&(ready.as_raw_fd(), Ready::READ)], "{got:?}");
    let report: Vec<Ready> = got
        .iter()
        .filter(|(fd, _)| *fd == closed)
        .map(|(_, r)| *r)
        .collect();
    if is_epoll::<B>() {
        assert_eq!(report, [], "epoll reported the closed fd");
    } else {
        assert_eq!(report.len(), 1, "{got:?}");
        assert!(report[0].is_error() && report[0].is_readable(), "{got:?}");
    }

    // Reported once: later waits report the ready pipe alone, every time.
    for _ in 0..3 {
        assert_eq!(wait(&mut sel, SHORT), [(ready.as_raw_fd(), Ready::READ)]);
    }

    // Nothing ready: a wait blocks for its whole timeout.
    let mut buf = [0u8; 8];
    assert_eq!(rustix::io::read(&ready, &mut buf), Ok(1));
    let quiet = Some(Duration::from_millis(50));
    let t = Instant::now();
    assert_eq!(wait(&mut sel, quiet), []);
    assert!(
        t.elapsed() >= Duration::from_millis(50),
        "{:?}",
        t.elapsed()
    );
    assert_quiet(&mut sel, "the closed fd");

    write(&ready_w, b"y");
    assert_eq!(wait(&mut sel, SHORT), [(ready.as_raw_fd(), Ready::READ)]);
    assert_eq!(sel.unregister(closed).map(|k| k.data()), Ok(2));
    assert_eq!(sel.len(), 1);
    assert_eq!(wait(&mut sel, SHORT), [(ready.as_raw_fd(), Ready::READ)]);
}

// 28
/// The documented limit of poll and select, which watch numbers: a registered number that is
/// closed and taken by another file before a wait saw it closed is watched in its place, and
/// its readiness reaches the registration until `unregister`; `modify` cannot tell either.
/// Once a wait has reported it closed, it is disarmed, and a file that takes the number later
/// is not watched until a `modify` re-arms it. epoll watches files: it never sees the new one.
fn closed_number_taken_by_another_file_is_watched_in_its_place<B: Backend>() {
    // Alone, so the closed numbers go where this test puts them.
    let _only_me = FD_COUNT.write().unwrap_or_else(|e| e.into_inner());
    let watches_numbers = !is_epoll::<B>();
    let quiet = Some(Duration::from_millis(50));
    let mut sel = Selector::<B, u8, 4>::new();
    let (keep, _keep_w) = pipe();
    sel.register(&keep, Interest::READ, 0).unwrap();

    // Closed and taken again (dup2) before any wait.
    let (r, _w) = pipe();
    let number = r.as_raw_fd();
    sel.register(&r, Interest::READ, 1).unwrap();
    let (taken, other_w) = new_pipe_over(r);
    write(&other_w, b"n");
    let got = wait_data(&mut sel, quiet);
    if watches_numbers {
        assert_eq!(got, [(number, 1, Ready::READ)], "the new file's readiness");
        // modify finds the number open and goes on watching the new file.
        sel.modify(number, Interest::READ | Interest::PRIORITY, 3)
            .unwrap();
        let got = wait_data(&mut sel, quiet);
        assert_eq!(got, [(number, 3, Ready::READ)]);
    } else {
        assert_eq!(got, []);
        assert!(sel
            .modify(number, Interest::READ | Interest::PRIORITY, 3)
            .is_err());
    }
    // unregister ends it, and leaves the new file alone.
    assert!(sel.unregister(number).is_ok());
    assert_eq!(wait(&mut sel, quiet), []);
    let mut buf = [0u8; 4];
    assert_eq!(rustix::io::read(&taken, &mut buf), Ok(1));

    // Closed, reported, then taken: disarmed, so not watched until modify.
    let (r, _w) = pipe();
    let number = r.as_raw_fd();
    sel.register(&r, Interest::READ, 4).unwrap();
    // Opened before the close, so nothing else takes the number.
    let (late_src, late_w) = pipe();
    drop(r);
    let got = wait(&mut sel, quiet);
    assert_eq!(got.len(), usize::from(watches_numbers), "{got:?}");
    let late = rustix::io::fcntl_dupfd_cloexec(&late_src, number).unwrap();
    assert_eq!(late.as_raw_fd(), number);
    write(&late_w, b"l");
    assert_eq!(
        wait(&mut sel, quiet),
        [],
        "a disarmed registration was watched"
    );
    if watches_numbers {
        // A modify that reaches the backend re-arms it (one of data alone makes no call).
        sel.modify(number, Interest::READ | Interest::PRIORITY, 5)
            .unwrap();
        let got = wait_data(&mut sel, quiet);
        assert_eq!(got, [(number, 5, Ready::READ)]);
    }
    assert!(sel.unregister(number).is_ok());
    assert_eq!(rustix::io::read(&late, &mut buf), Ok(1));
}

// 29
/// `Poller` and its impls are public: a safe caller that skips the selector gets an error for
/// what the selector would have refused, never a panic or a write past an `fd_set`. `high` is
/// an open fd at or above FD_SETSIZE; `fd_setsize` says whether the backend has that limit.
fn direct_calls_with_bad_input_are_errors<P: Poller<5>>(high: RawFd, fd_setsize: bool) {
    let (r, w) = pipe();
    let fd = r.as_raw_fd();
    let mut p = P::CLOSED;
    p.open().unwrap();
    let (read, level) = (Interest::READ, Mode::Level);
    let ok = Token::<5>::new(0, 0);
    // Slots take ⌈log₂ 5⌉ = 3 bits: 5 to 7 fit in a token but name no slot.
    let outside = Token::<5>::new(7, 0);
    assert_eq!(outside.slot(), 7);

    for bad in [-1, -2, RawFd::MIN] {
        assert_eq!(p.add(bad, ok, read, level), Err(Error::InvalidFd));
        assert_eq!(p.modify(bad, ok, read, level), Err(Error::InvalidFd));
    }
    assert_eq!(p.add(fd, outside, read, level), Err(Error::NotRegistered));
    assert_eq!(
        p.modify(fd, outside, read, level),
        Err(Error::NotRegistered)
    );
    assert_eq!(p.delete(fd, outside), Err(Error::NotRegistered));
    assert_eq!(p.add(fd, ok, read, Mode::Edge), Err(Error::Unsupported));
    if fd_setsize {
        for big in [high, 1024, RawFd::MAX] {
            assert_eq!(p.add(big, ok, read, level), Err(Error::FdOutOfRange));
            assert_eq!(p.modify(big, ok, read, level), Err(Error::FdOutOfRange));
        }
    } else {
        assert_eq!(
            p.add(RawFd::MAX, ok, read, level),
            Err(Error::Os(Errno::BADF))
        );
    }
    // Nothing was stored: a wait sees nothing, and an index past the events is no event.
    assert_eq!(p.wait(Some(Duration::ZERO)), Ok(0));
    assert_eq!(p.event(0).1, Ready::empty());
    assert_eq!(p.event(usize::MAX).1, Ready::empty());

    // Valid calls still work after all that.
    p.add(fd, ok, read, level).unwrap();
    if !fd_setsize {
        p.add(high, Token::new(1, 0), read, level).unwrap();
    }
    write(&w, b"d");
    assert_eq!(
        p.wait(Some(Duration::from_millis(500))),
        Ok(1 + usize::from(!fd_setsize))
    );
    assert_eq!(p.event(0).1, Ready::READ);
    assert_eq!(p.delete(fd, ok), Ok(()));
    p.close();
}

fn high_fd(r: &OwnedFd) -> OwnedFd {
    let limit = raise_fd_limit();
    assert!(limit > 1600, "need an fd limit above 1600, have {limit}");
    let high = rustix::io::fcntl_dupfd_cloexec(r, 1500).unwrap();
    assert!(high.as_raw_fd() >= 1024);
    high
}

#[test]
fn poll_direct_calls_with_bad_input_are_errors() {
    let _shared = FD_COUNT.read().unwrap_or_else(|e| e.into_inner());
    let (r, w) = pipe();
    let high = high_fd(&r);
    write(&w, b"h");
    direct_calls_with_bad_input_are_errors::<PollPoller<5>>(high.as_raw_fd(), false);
}

#[test]
fn select_direct_calls_with_bad_input_are_errors() {
    let _shared = FD_COUNT.read().unwrap_or_else(|e| e.into_inner());
    let (r, _w) = pipe();
    let high = high_fd(&r);
    direct_calls_with_bad_input_are_errors::<SelectPoller<5>>(high.as_raw_fd(), true);
}

/// One module per backend; each test takes the shared side of the fd-count lock.
macro_rules! conformance {
    ($name:ident, $backend:ty) => {
        mod $name {
            use super::*;
            type B = $backend;

            macro_rules! t {
                ($test:ident) => {
                    #[test]
                    fn $test() {
                        let _shared = FD_COUNT.read().unwrap_or_else(|e| e.into_inner());
                        super::$test::<B>();
                    }
                };
                // Takes the exclusive side itself.
                (alone $test:ident) => {
                    #[test]
                    fn $test() {
                        super::$test::<B>();
                    }
                };
            }

            t!(register_returns_key);
            t!(invalid_interest_registers_nothing);
            t!(negative_fd_refused);
            t!(same_fd_twice_refused);
            t!(full_table);
            t!(unregister_unknown);
            t!(unregister_after_close);
            t!(unregister_after_close_and_reuse);
            t!(closed_with_live_duplicate_does_not_spin);
            t!(modify_changes_interest);
            t!(modify_data_alone_makes_no_syscall);
            t!(get_key_and_iteration);
            t!(empty_select_returns_at_once);
            t!(only_ready_interests_reported);
            t!(read_and_write_in_one_entry);
            t!(timeouts);
            t!(hangup_reports_read_and_hup);
            t!(priority_from_tcp_oob);
            t!(signal_interrupts_wait);
            t!(level_reports_every_wait);
            t!(edge_reports_once);
            t!(oneshot_reports_once_until_rearmed);
            t!(unregistered_in_batch_not_delivered);
            t!(reused_number_in_batch_not_delivered);

            t!(alone kernel_refusal_rolls_back);
            t!(alone closed_registration_reported_once_without_spinning);
            t!(alone closed_number_taken_by_another_file_is_watched_in_its_place);
            t!(alone close_releases_backend_fd);
            t!(above_fd_setsize);

            #[test]
            fn twelve_socketpairs() {
                let _shared = FD_COUNT.read().unwrap_or_else(|e| e.into_inner());
                many_socketpairs::<B>(12);
            }
        }
    };
}

conformance!(epoll, Epoll);
conformance!(poll, Poll);
conformance!(select, Select);

/// ~1000 socketpairs (2000 fds): the scalable backends only; select stops at FD_SETSIZE.
#[test]
fn epoll_thousand_socketpairs() {
    let _shared = FD_COUNT.read().unwrap_or_else(|e| e.into_inner());
    many_socketpairs::<Epoll>(1000);
}

#[test]
fn poll_thousand_socketpairs() {
    let _shared = FD_COUNT.read().unwrap_or_else(|e| e.into_inner());
    many_socketpairs::<Poll>(1000);
}

// ---------------------------------------------------------------------------------------------
// The simulated backend (feature `sim`; the tests turn it on). Its readiness is the test's,
// not a pipe's: the behaviours above that wait for no real readiness run as they are, and the
// others as a version that makes the fds ready with `set_ready` and the kernel refuse with
// `fail_next_*`. CONFORMANCE.md ("The simulated backend") lists what is skipped and why.

mod sim {
    use super::*;
    use picosel::backend::sim::SimPoller;
    use picosel::Sim;

    type Sel<D> = Selector<Sim, D, 4>;

    macro_rules! shared {
        ($($test:ident),*) => {$(
            #[test]
            fn $test() {
                // They make pipes: not while a test counts the process's fds.
                let _shared = FD_COUNT.read().unwrap_or_else(|e| e.into_inner());
                super::$test::<Sim>();
            }
        )*};
    }

    // 1, 2, 3 (negative fds), 5, 6, 7 (data-only modify), 9, 11.
    shared!(
        register_returns_key,
        invalid_interest_registers_nothing,
        negative_fd_refused,
        unregister_unknown,
        unregister_after_close,
        modify_data_alone_makes_no_syscall,
        get_key_and_iteration,
        empty_select_returns_at_once
    );

    /// A selector with fds 3 and 4 registered with `interest`, data 3 and 4.
    fn two(interest: Interest) -> Sel<i32> {
        let mut sel = Sel::new();
        for fd in [3, 4] {
            sel.register(fd, interest, fd).unwrap();
        }
        sel
    }

    // 3
    #[test]
    fn same_fd_twice_refused() {
        let mut sel = two(Interest::READ);
        let first = sel.get_key(3).unwrap();
        assert_eq!(
            sel.register(3, Interest::WRITE, 9),
            Err(Error::AlreadyRegistered)
        );
        assert_eq!(sel.get_key(3), Ok(first));
        sel.sim_mut().set_ready(3, Ready::READ).unwrap();
        assert_eq!(wait(&mut sel, ZERO), [(3, Ready::READ)]);
    }

    // 4
    #[test]
    fn full_table() {
        let mut sel = two(Interest::READ);
        sel.register(5, Interest::READ, 5).unwrap();
        sel.register(6, Interest::READ, 6).unwrap();
        assert_eq!(sel.register(7, Interest::READ, 7), Err(Error::Full));
        assert_eq!((sel.len(), sel.get_key(7)), (4, Err(Error::NotRegistered)));
        for fd in 3..7 {
            sel.sim_mut().set_ready(fd, Ready::READ).unwrap();
        }
        let fds: Vec<_> = wait(&mut sel, ZERO).into_iter().map(|e| e.0).collect();
        assert_eq!(fds, [3, 4, 5, 6]);
        sel.unregister(3).unwrap();
        sel.register(7, Interest::READ, 7).unwrap();
    }

    // 7, 12, 13
    #[test]
    fn modify_changes_interest_and_only_ready_interests_are_reported() {
        let mut sel = two(Interest::READ);
        sel.sim_mut().set_ready(3, Ready::WRITE).unwrap();
        assert_eq!(wait(&mut sel, ZERO), []);
        let key = sel.modify(3, Interest::WRITE, 30).unwrap();
        assert_eq!((key.interest(), key.data()), (Interest::WRITE, 30));
        assert_eq!(wait_data(&mut sel, ZERO), [(3, 30, Ready::WRITE)]);
        sel.modify(3, Interest::READ | Interest::WRITE, 30).unwrap();
        sel.sim_mut().set_ready(3, Ready::READ).unwrap();
        assert_eq!(wait(&mut sel, ZERO), [(3, Ready::READ | Ready::WRITE)]);
        assert_eq!(sel.modify(9, Interest::READ, 0), Err(Error::NotRegistered));
        assert_eq!(
            sel.modify(3, Interest::empty(), 0),
            Err(Error::InvalidInterest)
        );
    }

    // 8
    #[test]
    fn kernel_refusal_rolls_back() {
        let mut sel = two(Interest::WRITE);
        for errno in [Errno::BADF, Errno::PERM, Errno::MFILE, Errno::NOMEM] {
            sel.sim_mut().fail_next_add(errno);
            assert_eq!(sel.register(5, Interest::READ, 5), Err(Error::Os(errno)));
            assert_eq!(sel.get_key(5), Err(Error::NotRegistered));
        }
        sel.sim_mut().fail_next_modify(Errno::BADF);
        assert_eq!(
            sel.modify(3, Interest::READ, 0),
            Err(Error::Os(Errno::BADF))
        );
        assert_eq!(sel.get_key(3).unwrap().interest(), Interest::WRITE);
        assert_eq!(
            sel.sim().registration(3),
            Some((Interest::WRITE, Mode::Level))
        );
        assert_eq!(sel.len(), 2);
        let mut fresh = Sel::<()>::new();
        fresh.sim_mut().fail_next_open(Errno::MFILE);
        assert_eq!(
            fresh.register(3, Interest::READ, ()),
            Err(Error::Os(Errno::MFILE))
        );
        assert!(fresh.is_empty());
    }

    // 16, 17, 18
    #[test]
    fn hangup_priority_and_interrupted_waits() {
        let mut sel = two(Interest::READ);
        sel.modify(4, Interest::PRIORITY, 4).unwrap();
        sel.sim_mut().set_ready(3, Ready::HUP).unwrap();
        sel.sim_mut().set_ready(4, Ready::PRIORITY).unwrap();
        assert_eq!(
            wait(&mut sel, ZERO),
            // A hang-up on a READ registration is a read side closed too (16a).
            [
                (3, Ready::READ | Ready::HUP | Ready::READ_CLOSED),
                (4, Ready::PRIORITY)
            ]
        );
        sel.sim_mut().fail_next_wait(Errno::INTR);
        assert_eq!(wait(&mut sel, None), []);
        assert_eq!(wait(&mut sel, ZERO).len(), 2);
    }

    // 20
    #[test]
    fn level_edge_and_oneshot() {
        let mut sel = Sel::<u8>::new();
        sel.register(3, Interest::READ, 0).unwrap();
        sel.register_mode(4, Interest::READ, Mode::Edge, 0).unwrap();
        sel.register_mode(5, Interest::READ, Mode::Oneshot, 0)
            .unwrap();
        for fd in [3, 4, 5] {
            sel.sim_mut().set_ready(fd, Ready::READ).unwrap();
        }
        let all = [(3, Ready::READ), (4, Ready::READ), (5, Ready::READ)];
        assert_eq!(wait(&mut sel, ZERO), all);
        for _ in 0..3 {
            assert_eq!(wait(&mut sel, ZERO), [(3, Ready::READ)]);
        }
        // New data: a new edge; the oneshot stays disarmed until modify re-arms it.
        sel.sim_mut().set_ready(4, Ready::READ).unwrap();
        sel.sim_mut().set_ready(5, Ready::READ).unwrap();
        assert_eq!(wait(&mut sel, ZERO), all[..2]);
        sel.modify(5, Interest::READ, 0).unwrap();
        assert_eq!(wait(&mut sel, ZERO), [all[0], all[2]]);
        sel.unregister(5).unwrap();
    }

    // 21
    #[test]
    fn unregistered_in_batch_not_delivered() {
        let mut sel = two(Interest::READ);
        for fd in [3, 4] {
            sel.sim_mut().set_ready(fd, Ready::READ).unwrap();
        }
        let mut delivered = Vec::new();
        let mut events = sel.select(ZERO).unwrap();
        while let Some((key, _)) = events.next() {
            delivered.push(key.data());
            let _ = events.selector().unregister(7 - key.fd());
        }
        assert_eq!(delivered, [3]);
    }

    // 29: the simulated poller called directly, past the selector's checks.
    #[test]
    fn direct_calls_with_bad_input_are_errors() {
        let mut p = SimPoller::<5>::CLOSED;
        p.open().unwrap();
        let (read, level) = (Interest::READ, Mode::Level);
        let (ok, outside) = (Token::<5>::new(0, 0), Token::<5>::new(7, 0));
        for bad in [-1, RawFd::MIN] {
            assert_eq!(p.add(bad, ok, read, level), Err(Error::InvalidFd));
            assert_eq!(p.modify(bad, ok, read, level), Err(Error::InvalidFd));
        }
        assert_eq!(p.add(3, outside, read, level), Err(Error::NotRegistered));
        assert_eq!(p.modify(3, outside, read, level), Err(Error::NotRegistered));
        assert_eq!(p.delete(3, ok), Err(Error::NotRegistered));
        assert_eq!(p.wait(Some(Duration::ZERO)), Ok(0));
        assert_eq!(p.event(usize::MAX).1, Ready::empty());
        p.add(3, ok, read, level).unwrap();
        assert_eq!(p.add(4, ok, read, level), Err(Error::AlreadyRegistered));
        p.set_ready(3, Ready::READ).unwrap();
        assert_eq!(p.wait(None), Ok(1));
        assert_eq!(p.event(0), (ok, Ready::READ));
        assert_eq!(p.event(1).1, Ready::empty());
        p.delete(3, ok).unwrap();
        assert_eq!(p.wait(None), Err(Error::Deadlock));
        p.close();
    }
}
