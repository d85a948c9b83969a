//! Stress tests of the `echo_server` example, run as a user runs it: 20,000 connect / echo /
//! close cycles with no fd leak and every byte checked; a table of 64 with 200 clients
//! arriving; fd exhaustion under `RLIMIT_NOFILE` 32 without an accept spin; clients that never
//! read. Bounded in count and time, loopback only; every child process is killed and reaped
//! when its guard drops, also when a test fails.
//!
//! `#[ignore]`d so the default `cargo test` stays fast; run the stress families with
//!
//! ```sh
//! cargo test --release --test stress_echo --test stress_signals --test stress_closed_fds -- --ignored --test-threads=1
//! ```
//!
//! Timing assertions are lower bounds or generous upper bounds, for a loaded 2-core machine.

mod support;

use rustix::process::Signal;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::examples::{example_path, Example};
use support::{connect, Rng};

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
