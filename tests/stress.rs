//! Stress tests: faults and load, bounded in count and time, loopback only. Each ends by itself
//! (every socket has a timeout, every loop a bound) and every child process is killed and reaped
//! when its guard drops, also when a test fails.
//!
//! They are `#[ignore]`d so the default `cargo test` stays fast; run them with
//!
//! ```sh
//! cargo test --release --test stress -- --ignored --test-threads=1
//! ```
//!
//! - `echo_server` (the example, run as a user runs it): 20,000 connect / echo / close cycles
//!   with no fd leak and every byte checked; a table of 64 with 200 clients arriving; fd
//!   exhaustion under `RLIMIT_NOFILE` 32 without an accept spin; clients that never read.
//! - Own loops on the selector and the event loop: a SIGUSR1 storm (EINTR-safe, no lost byte),
//!   and fds closed while registered (no misdispatch, no failing or spinning wait).
//!
//! Timing assertions are lower bounds or generous upper bounds, for a loaded 2-core machine.

mod example_harness;

use example_harness::{example_path, Example, Rng};
use picosel::backend::{Backend, Epoll, Poll, Select};
use picosel::{EventLoop, Interest, IoEvent, Ready, Selector};
use rustix::fd::{AsRawFd, OwnedFd, RawFd};
use rustix::process::Signal;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// Read and write timeout of every client socket: only a hung server reaches it.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The number of fds open in process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .count()
}

/// Total CPU time (user + system) of process `pid`, in clock ticks (fields 14 and 15 of
/// /proc/PID/stat, counted after the parenthesised command name).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
#[allow(unsafe_code)]
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant; no memory is passed.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// Resident set size of process `pid`, in KiB (VmRSS in /proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// Polls `f` every 10 ms until it holds or `limit` passes; returns whether it held.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Writes `payload` (from a second thread for payloads that may exceed the socket buffers)
/// and checks that exactly it comes back.
fn echo(s: &TcpStream, payload: &[u8]) {
    if payload.len() <= 16 * 1024 {
        (&*s).write_all(payload).expect("write");
    } else {
        let mut w = s.try_clone().unwrap();
        let p = payload.to_vec();
        thread::spawn(move || w.write_all(&p).expect("write"));
    }
    let mut got = vec![0; payload.len()];
    (&*s)
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("echo of {} bytes: {e}", payload.len()));
    if let Some(i) = (0..got.len()).find(|&i| got[i] != payload[i]) {
        panic!("byte {i} of {} differs", payload.len());
    }
}

/// A refused client sees the end of the stream (or a reset), never a hang or data.
fn assert_refused_cleanly(s: &TcpStream) {
    let mut buf = [0u8; 16];
    match (&*s).read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("refused client got {n} bytes"),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("refused client: {e}"),
    }
}

fn start_server(args: &[&str]) -> (Example, SocketAddr) {
    let mut server = Example::spawn("echo_server", args);
    let addr = server.listening_addr();
    (server, addr)
}

/// SIGTERM, then the exit status must be success and the summary line is returned.
fn stop_server(mut server: Example) -> String {
    server.signal(Signal::TERM);
    let (status, rest) = server.finish();
    assert!(status.success(), "{status}; stderr: {}", server.stderr());
    rest.into_iter()
        .find(|l| l.starts_with("served "))
        .unwrap_or_else(|| panic!("no summary line; stderr: {}", server.stderr()))
}

/// Waits for the server's verdict on each client (`ADDR connected` or `ADDR refused: ...`);
/// returns, per client local address, whether it was served.
fn verdicts(server: &mut Example, clients: &[TcpStream]) -> HashMap<String, bool> {
    let want: Vec<String> = clients
        .iter()
        .map(|c| c.local_addr().unwrap().to_string())
        .collect();
    let mut got = HashMap::new();
    while got.len() < want.len() {
        let line = server.expect_line("a verdict on a client", |l| {
            l.ends_with(" connected") || l.contains(" refused: ")
        });
        let peer = line.split(' ').next().unwrap_or("").to_string();
        if want.contains(&peer) {
            got.insert(peer, line.ends_with(" connected"));
        }
    }
    got
}

// ---------------------------------------------------------------------------------------------
// echo_server: cycles, capacity, EMFILE, slow readers.

/// `cycles` connect / echo / half-close / close cycles, one at a time; the server's fd count
/// must come back to where it was, and its summary must count every connection and byte.
fn connect_echo_close_cycles(backend: &str, cycles: u64) {
    let (server, addr) = start_server(&["--quiet", "--backend", backend, "127.0.0.1:0"]);
    let pid = server.pid();
    let before = open_fds(pid);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ cycles);
    let mut bytes = 0u64;
    let start = Instant::now();
    for i in 0..cycles {
        let s = connect(addr);
        let payload = rng.payload(1, 700);
        echo(&s, &payload);
        bytes += payload.len() as u64;
        // Half-close: the server echoes what is left (nothing), closes, and we see the end.
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = [0u8; 1];
        match (&s).read(&mut rest) {
            Ok(0) => {}
            other => panic!("cycle {i}: expected end of stream, got {other:?}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "cycle {i} after {:?}: too slow",
            start.elapsed()
        );
    }
    let elapsed = start.elapsed();
    assert!(
        eventually(Duration::from_secs(10), || open_fds(pid) == before),
        "{backend}: server had {before} fds before {cycles} cycles and {} after",
        open_fds(pid)
    );
    let summary = stop_server(server);
    assert_eq!(
        summary,
        format!("served {cycles} connections, echoed {bytes} bytes"),
        "{backend}"
    );
    eprintln!(
        "{backend}: {cycles} cycles in {elapsed:?} ({:.0} per s), {bytes} bytes, fds {before} before and after",
        cycles as f64 / elapsed.as_secs_f64()
    );
}

#[test]
#[ignore = "stress: run with --ignored"]
fn echo_server_20000_cycles_leak_no_fd_and_lose_no_byte() {
    connect_echo_close_cycles("epoll", 20_000);
}

#[test]
#[ignore = "stress: run with --ignored"]
fn echo_server_cycles_on_poll_and_select() {
    connect_echo_close_cycles("poll", 20_000);
    connect_echo_close_cycles("select", 20_000);
}

#[test]
#[ignore = "stress: run with --ignored"]
fn capacity_64_with_200_clients_arriving() {
    let (mut server, addr) = start_server(&["--capacity", "64", "127.0.0.1:0"]);
    let pid = server.pid();
    let before = open_fds(pid);
    // All 200 arrive at once and stay.
    let clients: Vec<TcpStream> = (0..200).map(|_| connect(addr)).collect();
    let verdict = verdicts(&mut server, &clients);
    let (served, refused): (Vec<&TcpStream>, Vec<&TcpStream>) = clients
        .iter()
        .partition(|c| verdict[&c.local_addr().unwrap().to_string()]);
    // 64 registrations, less the loop's own: the listener and the signalfd.
    assert!(
        (60..=64).contains(&served.len()),
        "served {} of 200 with a table of 64",
        served.len()
    );
    for c in &refused {
        assert_refused_cleanly(c);
    }
    let mut rng = Rng(64);
    for c in &served {
        echo(c, &rng.payload(1000, 3000));
    }
    eprintln!(
        "capacity 64: {} served, {} refused cleanly",
        served.len(),
        refused.len()
    );
    // The server keeps running: everyone leaves, its fds come back, as many are served again.
    let n = served.len();
    drop(clients);
    assert!(
        eventually(Duration::from_secs(10), || open_fds(pid) == before),
        "fds {before} before, {} after",
        open_fds(pid)
    );
    let again: Vec<TcpStream> = (0..n).map(|_| connect(addr)).collect();
    for c in &again {
        echo(c, b"the table has room again");
    }
    stop_server(server);
}

#[test]
#[ignore = "stress: run with --ignored"]
#[allow(unsafe_code)]
fn emfile_under_rlimit_32_with_100_clients_no_accept_spin() {
    let mut cmd = Command::new(example_path("echo_server"));
    cmd.args(["--capacity", "64", "127.0.0.1:0"]);
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit, an
    // async-signal-safe syscall; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 32,
                rlim_max: 32,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut server = Example::spawn_cmd("echo_server", &mut cmd);
    let addr = server.listening_addr();
    let pid = server.pid();
    let clients: Vec<TcpStream> = (0..100).map(|_| connect(addr)).collect();
    let verdict = verdicts(&mut server, &clients);
    let (served, refused): (Vec<&TcpStream>, Vec<&TcpStream>) = clients
        .iter()
        .partition(|c| verdict[&c.local_addr().unwrap().to_string()]);
    assert!(!refused.is_empty(), "the fd limit was never reached");
    assert!(
        served.len() >= 16,
        "only {} served under 32 fds",
        served.len()
    );
    for c in &refused {
        assert_refused_cleanly(c);
    }
    let at_limit = open_fds(pid);
    assert!(
        at_limit >= 30,
        "the server should be at its fd limit: {at_limit} open"
    );

    // Exhausted, with more clients knocking: each is refused, and the server does not spin on
    // a listener that stays readable.
    let tps = ticks_per_second();
    let t0 = cpu_ticks(pid);
    let wall = Instant::now();
    let mut late = Vec::new();
    for _ in 0..20 {
        late.push(connect(addr));
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(1000));
    let used = cpu_ticks(pid) - t0;
    let secs = wall.elapsed().as_secs_f64();
    // A spinning server burns a whole core: ~secs * tps ticks. Allow a tenth of that.
    assert!(
        (used as f64) < secs * tps as f64 / 10.0,
        "{used} ticks of CPU in {secs:.1} s while out of fds"
    );
    let late_verdict = verdicts(&mut server, &late);
    assert!(
        late_verdict.values().all(|&ok| !ok),
        "served beyond the fd limit"
    );
    for c in &late {
        assert_refused_cleanly(c);
    }

    // Served clients were never disturbed.
    for c in &served {
        echo(c, b"still served");
    }
    // Service resumes when clients leave.
    let (n, n_refused) = (served.len(), refused.len() + late.len());
    drop(late);
    drop(clients);
    assert!(
        eventually(Duration::from_secs(10), || open_fds(pid) < 16),
        "fds not released: {}",
        open_fds(pid)
    );
    let back: Vec<TcpStream> = (0..n).map(|_| connect(addr)).collect();
    let back_verdict = verdicts(&mut server, &back);
    assert!(
        back_verdict.values().all(|&ok| ok),
        "service did not resume"
    );
    for c in &back {
        echo(c, b"welcome back");
    }
    eprintln!(
        "EMFILE: {n} served, {} refused, {used} CPU ticks in {secs:.1} s while exhausted",
        n_refused
    );
    stop_server(server);
}

/// The most payload one connection can hold in kernel buffers: the receiver's and the
/// sender's socket buffer limits (tcp_rmem / tcp_wmem maxima).
fn kernel_buffer_bytes() -> u64 {
    let max = |f: &str| -> u64 {
        std::fs::read_to_string(f)
            .ok()
            .and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
            .unwrap_or(8 << 20)
    };
    max("/proc/sys/net/ipv4/tcp_rmem") + max("/proc/sys/net/ipv4/tcp_wmem")
}

#[test]
#[ignore = "stress: run with --ignored"]
fn slow_readers_keep_memory_bounded_and_others_fast() {
    let (server, addr) = start_server(&["--quiet", "127.0.0.1:0"]);
    let pid = server.pid();

    // A reference latency before the hogs arrive.
    let probe = connect(addr);
    let round_trips = |n: usize| -> Vec<Duration> {
        let mut rng = Rng(7);
        (0..n)
            .map(|_| {
                let p = rng.bytes(200);
                let t = Instant::now();
                echo(&probe, &p);
                t.elapsed()
            })
            .collect()
    };
    let mut quiet = round_trips(200);
    let rss_before = rss_kib(pid);

    // Eight clients write as fast as they can and never read.
    let hogs = 8;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    let mut hog_socks = Vec::new();
    for h in 0..hogs {
        let s = connect(addr);
        s.set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut w = s.try_clone().unwrap();
        hog_socks.push(s);
        let stop = Arc::clone(&stop);
        writers.push(thread::spawn(move || {
            let chunk = vec![h as u8; 64 * 1024];
            let mut taken = 0u64;
            // At most 256 MiB offered; ends when a write times out (windows full) or on stop.
            for _ in 0..4096 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match w.write(&chunk) {
                    Ok(n) => taken += n as u64,
                    Err(_) => break,
                }
            }
            taken
        }));
    }
    // Let the hogs fill their buffers, then measure others' latency and the server's memory.
    thread::sleep(Duration::from_millis(1500));
    let mut loaded = round_trips(500);
    let mut rss_peak = rss_kib(pid);
    for _ in 0..10 {
        rss_peak = rss_peak.max(rss_kib(pid));
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let taken: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();

    quiet.sort();
    loaded.sort();
    let p = |v: &[Duration], q: f64| v[((v.len() - 1) as f64 * q) as usize];
    eprintln!(
        "slow readers: latency p50 {:?} -> {:?}, p99 {:?} -> {:?}, max {:?}; RSS {rss_before} -> {rss_peak} KiB; bytes taken per hog {taken:?}",
        p(&quiet, 0.5),
        p(&loaded, 0.5),
        p(&quiet, 0.99),
        p(&loaded, 0.99),
        loaded.last().unwrap()
    );
    // Per-connection buffers are fixed: the server does not grow with what hogs send.
    assert!(
        rss_peak < rss_before + 4 * 1024,
        "server RSS grew from {rss_before} KiB to {rss_peak} KiB under slow readers"
    );
    // The server stops reading a client whose echo it cannot send: a hog gets no further
    // than the kernel's buffers plus the server's 16 KiB.
    let bound = kernel_buffer_bytes() + 16 * 1024 + (1 << 20);
    for (h, t) in taken.iter().enumerate() {
        assert!(*t < bound, "hog {h}: {t} bytes taken, bound {bound}");
    }
    // Others keep their latency: generous bounds for a loaded 2-core machine.
    assert!(
        p(&loaded, 0.5) < Duration::from_millis(50),
        "median latency under load"
    );
    assert!(
        p(&loaded, 0.99) < Duration::from_millis(500),
        "p99 latency under load"
    );
    drop(hog_socks);
    drop(probe);
    stop_server(server);
}

// ---------------------------------------------------------------------------------------------
// A SIGUSR1 storm at a loop that echoes.

static SIGNALS: AtomicU64 = AtomicU64::new(0);

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
        tid_tx.send(me).unwrap();
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
        let r = unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
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
    let handled = SIGNALS.load(Ordering::Relaxed) - handled_before;
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
    let ctx = lp.context();
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
    let c = &mut lp.context().conns[ev.token];
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
    lp.add_periodic(TICK, on_storm_tick).unwrap();
    let mut stats = LoopStats::default();
    let deadline = Instant::now() + STORM + Duration::from_secs(60);
    let mut last_return = start;
    while lp.context().conns.iter().any(|c| !c.done) {
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
    let ticks = lp.context_ref().ticks;
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

// ---------------------------------------------------------------------------------------------
// fds closed while registered.

fn pipe() -> (OwnedFd, OwnedFd) {
    use rustix::pipe::{pipe_with, PipeFlags};
    pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).expect("pipe")
}

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
    let t = Instant::now();
    let mut wakeups = 0;
    while t.elapsed() < Duration::from_millis(500) {
        let n = sel.select(Some(Duration::from_millis(50))).unwrap().count();
        assert_eq!(n, 0, "{}: events with nothing ready", B::NAME);
        wakeups += 1;
    }
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
    let t = Instant::now();
    let mut wakeups = 0;
    while t.elapsed() < Duration::from_millis(500) {
        let n = sel.select(Some(Duration::from_millis(50))).unwrap().count();
        assert_eq!(n, 0, "{}: events with nothing ready", B::NAME);
        wakeups += 1;
    }
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
