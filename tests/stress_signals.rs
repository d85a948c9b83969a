//! Stress test: a SIGUSR1 storm at loops on the selector (each backend) and on the event loop:
//! EINTR-safe, no lost byte, and a periodic timer that keeps its grid. `#[ignore]`d; see
//! `tests/stress_echo.rs` for the command that runs the stress families.

mod support;

use picosel::backend::{Backend, Epoll, Poll, Select};
use picosel::{EventLoop, Interest, IoEvent, Ready, Selector};
use rustix::fd::{AsRawFd, RawFd};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};
use support::{connect, Rng};

// ---------------------------------------------------------------------------------------------
// A SIGUSR1 storm at a loop that echoes.

/// Signals handled. 32 bits: MIPS32 and 32-bit PowerPC have no 64-bit atomics, and a storm
/// sends about 50,000 (one per 100 µs for 5 s); the count is read as a difference that wraps.
static SIGNALS: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// Installs a counting SIGUSR1 handler without `SA_RESTART`, so a signal interrupts blocking
/// syscalls with EINTR (epoll_wait, poll and select are never restarted anyway: signal(7)).
#[allow(unsafe_code)]
fn install_sigusr1_handler() {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler only
    // does an atomic add, which is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

const STORM: Duration = Duration::from_secs(5);

/// Sets this thread's timer slack (prctl PR_SET_TIMERSLACK); best effort.
#[allow(unsafe_code)]
fn set_timer_slack_ns(ns: libc::c_ulong) {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no memory.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns, 0, 0, 0) };
}
const STORM_PERIOD: Duration = Duration::from_micros(100);
const STORM_CONNS: usize = 4;

/// Echo state of one connection of the loop under test.
struct Conn {
    sock: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    done: bool,
}

impl Conn {
    fn new(sock: TcpStream) -> Conn {
        sock.set_nonblocking(true).unwrap();
        Conn {
            sock,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            eof: false,
            done: false,
        }
    }

    /// Reads what fits and writes what is pending; EINTR and EAGAIN just end the turn.
    fn step(&mut self, ready: Ready) {
        if ready.intersects(Ready::READ | Ready::HUP | Ready::ERROR) && !self.eof && self.end == 0 {
            match (&self.sock).read(&mut self.buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                }
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
                Err(e) => panic!("loop read: {e}"),
            }
        }
        while self.start < self.end {
            match (&self.sock).write(&self.buf[self.start..self.end]) {
                Ok(n) => self.start += n,
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {
                    break
                }
                Err(e) => panic!("loop write: {e}"),
            }
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.eof && !self.done {
                self.sock.shutdown(Shutdown::Write).unwrap();
                self.done = true;
            }
        }
    }

    fn interest(&self) -> Interest {
        if self.end > 0 {
            Interest::WRITE
        } else {
            Interest::READ
        }
    }
}

/// What the loop under test reports back.
#[derive(Debug, Default)]
struct LoopStats {
    waits: u64,
    /// Waits with no event although no timeout had passed: interrupted by a signal.
    interrupted: u64,
    /// Periods of the event loop's periodic timer accounted for.
    timer_ticks: u64,
}

/// Runs the storm: `STORM_CONNS` loopback connections, each with a client thread that writes a
/// reproducible stream and another that checks every byte of the echo; `serve` runs the loop
/// under test on a thread of its own, which gets SIGUSR1 every `STORM_PERIOD` for `STORM`.
fn signal_storm(name: &str, serve: fn(Vec<TcpStream>, &AtomicBool) -> LoopStats) {
    install_sigusr1_handler();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut clients = Vec::new();
    let mut served = Vec::new();
    for _ in 0..STORM_CONNS {
        clients.push(connect(addr));
        served.push(listener.accept().unwrap().0);
    }
    let writing = Arc::new(AtomicBool::new(true));
    let finished = Arc::new(AtomicBool::new(false));
    let (tid_tx, tid_rx) = mpsc::channel();
    let fin = Arc::clone(&finished);
    let server = thread::spawn(move || {
        // This thread is joined only after the signalling stopped, so its pthread_t stays
        // valid while signals are sent to it.
        #[allow(unsafe_code)]
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        // Sent as a number: musl's pthread_t is a pointer, which is not `Send`.
        tid_tx.send(me as usize).unwrap();
        let stats = serve(served, &fin);
        fin.store(true, Ordering::Relaxed);
        stats
    });
    let tid = tid_rx.recv().unwrap();

    let mut streams = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        let mut w = c.try_clone().unwrap();
        let mut r = c;
        let writing = Arc::clone(&writing);
        let writer = thread::spawn(move || {
            let mut rng = Rng(1000 + i as u64);
            let mut sent = 0u64;
            while writing.load(Ordering::Relaxed) {
                let chunk = rng.payload(1, 8192);
                w.write_all(&chunk).expect("client write");
                sent += chunk.len() as u64;
            }
            w.shutdown(Shutdown::Write).unwrap();
            sent
        });
        let reader = thread::spawn(move || {
            let mut rng = Rng(1000 + i as u64);
            let mut want: Vec<u8> = Vec::new();
            let mut pos = 0;
            let mut got = 0u64;
            let mut buf = vec![0u8; 65536];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => panic!("client read: {e}"),
                };
                for &b in &buf[..n] {
                    if pos == want.len() {
                        want = rng.payload(1, 8192);
                        pos = 0;
                    }
                    assert_eq!(b, want[pos], "byte {got} of connection {i} differs");
                    pos += 1;
                    got += 1;
                }
            }
            (got, pos == want.len())
        });
        streams.push((writer, reader));
    }

    // The storm: one SIGUSR1 every STORM_PERIOD on a fixed schedule (a late send is made at
    // once, not skipped), with the timer slack of this thread cut so sleeps of 100 µs are
    // not stretched to the default 50 µs slack plus wake-up latency.
    set_timer_slack_ns(1);
    let handled_before = SIGNALS.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut next = start;
    let mut sent_signals = 0u64;
    while start.elapsed() < STORM && !finished.load(Ordering::Relaxed) {
        // SAFETY: `tid` names the loop thread, which is still running (it is joined below,
        // after this loop, and `finished` is checked first).
        #[allow(unsafe_code)]
        let r = unsafe { libc::pthread_kill(tid as libc::pthread_t, libc::SIGUSR1) };
        assert_eq!(r, 0, "pthread_kill");
        sent_signals += 1;
        next += STORM_PERIOD;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    assert!(
        !finished.load(Ordering::Relaxed),
        "the loop ended during the storm"
    );
    writing.store(false, Ordering::Relaxed);
    let mut total = 0u64;
    for (i, (writer, reader)) in streams.into_iter().enumerate() {
        let sent = writer.join().unwrap();
        let (got, whole_chunks) = reader.join().unwrap();
        assert_eq!(got, sent, "connection {i}: bytes echoed vs sent");
        assert!(whole_chunks, "connection {i}: echo ended inside a chunk");
        total += got;
    }
    let stats = server.join().unwrap();
    let handled = SIGNALS.load(Ordering::Relaxed).wrapping_sub(handled_before);
    eprintln!(
        "{name}: {sent_signals} SIGUSR1 sent in {STORM:?}, {handled} handled (pending ones merge); \
         {} waits, {} interrupted, {} timer ticks; {total} bytes echoed over {STORM_CONNS} connections, none lost",
        stats.waits, stats.interrupted, stats.timer_ticks
    );
    assert!(sent_signals > 1000, "only {sent_signals} signals sent");
    assert!(
        stats.interrupted > 0,
        "no wait was interrupted: the storm missed the loop"
    );
    assert!(total > 0);
}

/// The loop under test on a bare selector: every wait must succeed, EINTR or not.
fn serve_selector<B: Backend>(socks: Vec<TcpStream>, _finished: &AtomicBool) -> LoopStats {
    let mut conns: Vec<Conn> = socks.into_iter().map(Conn::new).collect();
    let mut sel = Selector::<B, usize, 8>::new();
    for (i, c) in conns.iter().enumerate() {
        sel.register(&c.sock, Interest::READ, i).unwrap();
    }
    let mut stats = LoopStats::default();
    let deadline = Instant::now() + STORM + Duration::from_secs(60);
    while conns.iter().any(|c| !c.done) {
        assert!(Instant::now() < deadline, "the loop did not finish");
        let t = Instant::now();
        let timeout = Duration::from_secs(1);
        let events: Vec<(usize, Ready)> = sel
            .select(Some(timeout))
            .unwrap_or_else(|e| panic!("{}: select failed during the storm: {e}", B::NAME))
            .map(|(k, r)| (k.data(), r))
            .collect();
        stats.waits += 1;
        if events.is_empty() && t.elapsed() < timeout {
            stats.interrupted += 1;
        }
        for (i, ready) in events {
            let c = &mut conns[i];
            c.step(ready);
            if c.done {
                sel.unregister(&c.sock).unwrap();
            } else {
                let want = c.interest();
                if sel.get_key(&c.sock).unwrap().interest() != want {
                    sel.modify(&c.sock, want, i).unwrap();
                }
            }
        }
    }
    stats
}

/// The context of the event-loop variant.
struct StormCtx {
    conns: Vec<Conn>,
    /// Periods of the periodic timer accounted for (fired + missed).
    ticks: u64,
    /// Taken before the timer was armed: tick `k` is due no earlier than `start + k × TICK`.
    start: Instant,
}

/// The period of the timer that runs through the storm.
const TICK: Duration = Duration::from_millis(10);

fn on_storm_tick(lp: &mut StormLoop, ev: picosel::TimerEvent) {
    let ctx = lp.context_mut();
    ctx.ticks += 1 + u64::from(ev.missed);
    // The fired deadline and the periods it skipped have all passed.
    let due = ctx.start + TICK * ctx.ticks as u32;
    assert!(
        Instant::now() >= due,
        "timer tick {} fired early during the storm",
        ctx.ticks
    );
}

type StormLoop = EventLoop<Epoll, StormCtx, 8, 1>;

fn on_storm_conn(lp: &mut StormLoop, ev: IoEvent) {
    let c = &mut lp.context_mut().conns[ev.data];
    c.step(ev.ready);
    let (done, want) = (c.done, c.interest());
    if done {
        lp.unregister(ev.fd).unwrap();
    } else {
        lp.modify(ev.fd, want).unwrap();
    }
}

/// The loop under test on the event loop: `run_once` must never fail.
fn serve_event_loop(socks: Vec<TcpStream>, _finished: &AtomicBool) -> LoopStats {
    let conns: Vec<Conn> = socks.into_iter().map(Conn::new).collect();
    let fds: Vec<RawFd> = conns.iter().map(|c| c.sock.as_raw_fd()).collect();
    let start = Instant::now();
    let mut lp: Box<StormLoop> = Box::new(EventLoop::new(StormCtx {
        conns,
        ticks: 0,
        start,
    }));
    for (i, fd) in fds.iter().enumerate() {
        lp.register(*fd, Interest::READ, i, on_storm_conn).unwrap();
    }
    // Timers are re-checked after an interrupted wait: a periodic one keeps its grid.
    lp.add_periodic(TICK, 0, on_storm_tick).unwrap();
    let mut stats = LoopStats::default();
    let deadline = Instant::now() + STORM + Duration::from_secs(60);
    let mut last_return = start;
    while lp.context_mut().conns.iter().any(|c| !c.done) {
        assert!(Instant::now() < deadline, "the loop did not finish");
        let t = Instant::now();
        let timeout = Duration::from_secs(1);
        let n = lp
            .run_once(Some(timeout))
            .unwrap_or_else(|e| panic!("run_once failed during the storm: {e}"));
        last_return = Instant::now();
        stats.waits += 1;
        if n == 0 && t.elapsed() < timeout {
            stats.interrupted += 1;
        }
    }
    // Every period that passed is accounted for (fired, or counted as missed), none early.
    let ticks = lp.context().ticks;
    let periods = ((last_return - start).as_nanos() / TICK.as_nanos()) as u64;
    assert!(
        ticks <= periods && ticks + 5 >= periods,
        "{ticks} timer periods accounted for in {periods} that passed"
    );
    stats.timer_ticks = ticks;
    stats
}

#[test]
#[ignore = "stress: run with --ignored"]
fn signal_storm_selector_epoll() {
    signal_storm("epoll selector", serve_selector::<Epoll>);
}

#[test]
#[ignore = "stress: run with --ignored"]
fn signal_storm_selector_poll() {
    signal_storm("poll selector", serve_selector::<Poll>);
}

#[test]
#[ignore = "stress: run with --ignored"]
fn signal_storm_selector_select() {
    signal_storm("select selector", serve_selector::<Select>);
}

#[test]
#[ignore = "stress: run with --ignored"]
fn signal_storm_event_loop() {
    signal_storm("event loop", serve_event_loop);
}
