//! Load generator for any TCP echo server on loopback.
//!
//! ```text
//! loadgen --addr 127.0.0.1:PORT [--conns 64] [--size 64] [--secs 2] [--idle 0]
//!         [--threads 1] [--warmup 0.3] [--pid SERVER_PID] [--cpu N]
//! ```
//!
//! Each active connection runs a closed loop: send `size` bytes, wait for all of them to come
//! back, check every byte, record the latency, repeat. `--idle K` opens K more connections that
//! stay open and silent (they cost the server an fd and a registration, nothing else). Each
//! client thread runs its own epoll loop over its share of the connections, so one thread keeps
//! hundreds of connections busy without a thread per connection. Latencies go into a fixed
//! log-linear histogram (16 sub-buckets per power of two, about 6% resolution): nothing is
//! allocated per round trip.
//!
//! With `--pid`, the server's CPU time (the sum of its threads' `sum_exec_runtime` from
//! `/proc/PID/task/*/schedstat`, in ns) is sampled at the start and end of the measured window,
//! and reported per round trip. `--cpu N` pins the client (all its threads) to CPU N.
//!
//! Prints one JSON line. Refuses addresses that are not loopback; the run is capped at 60 s
//! and every wait has a timeout, so it always ends by itself.

use picosel_bench::{cpu_ns_of_pid, Histogram};
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::time::Timespec;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

const MAX_SECS: f64 = 60.0;
const MAX_CONNS: usize = 10_000;
const MAX_IDLE: usize = 16_000;
const MAX_SIZE: usize = 1 << 20;
const MAX_THREADS: usize = 16;

struct Args {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    secs: f64,
    idle: usize,
    threads: usize,
    warmup: f64,
    pid: Option<u32>,
    cpu: Option<usize>,
}

fn usage(msg: &str) -> String {
    format!(
        "loadgen: {msg}\nusage: loadgen --addr 127.0.0.1:PORT [--conns N] [--size BYTES] [--secs S] \
         [--idle K] [--threads T] [--warmup S] [--pid SERVER_PID] [--cpu N]"
    )
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:0".parse().map_err(|_| usage("internal"))?,
        conns: 1,
        size: 64,
        secs: 2.0,
        idle: 0,
        threads: 1,
        warmup: 0.3,
        pid: None,
        cpu: None,
    };
    let mut have_addr = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it
            .next()
            .ok_or_else(|| usage(&format!("{flag} needs a value")))?;
        let bad = || usage(&format!("bad value for {flag}: {val}"));
        match flag.as_str() {
            "--addr" => {
                a.addr = val.parse().map_err(|_| bad())?;
                have_addr = true;
            }
            "--conns" => a.conns = val.parse().map_err(|_| bad())?,
            "--size" => a.size = val.parse().map_err(|_| bad())?,
            "--secs" => a.secs = val.parse().map_err(|_| bad())?,
            "--idle" => a.idle = val.parse().map_err(|_| bad())?,
            "--threads" => a.threads = val.parse().map_err(|_| bad())?,
            "--warmup" => a.warmup = val.parse().map_err(|_| bad())?,
            "--pid" => a.pid = Some(val.parse().map_err(|_| bad())?),
            "--cpu" => a.cpu = Some(val.parse().map_err(|_| bad())?),
            _ => return Err(usage(&format!("unknown flag {flag}"))),
        }
    }
    if !have_addr {
        return Err(usage("--addr is required"));
    }
    if !a.addr.ip().is_loopback() {
        return Err(usage(&format!(
            "refusing non-loopback address {}: this tool only loads 127.0.0.0/8 or ::1",
            a.addr
        )));
    }
    if !(1..=MAX_CONNS).contains(&a.conns) {
        return Err(usage(&format!("--conns must be in 1..={MAX_CONNS}")));
    }
    if !(1..=MAX_SIZE).contains(&a.size) {
        return Err(usage(&format!("--size must be in 1..={MAX_SIZE}")));
    }
    if a.idle > MAX_IDLE {
        return Err(usage(&format!("--idle must be at most {MAX_IDLE}")));
    }
    if !(1..=MAX_THREADS).contains(&a.threads) {
        return Err(usage(&format!("--threads must be in 1..={MAX_THREADS}")));
    }
    if !a.secs.is_finite() || a.secs <= 0.0 {
        return Err(usage("--secs must be positive"));
    }
    a.secs = a.secs.min(MAX_SECS);
    if !a.warmup.is_finite() || a.warmup < 0.0 {
        return Err(usage("--warmup must be >= 0"));
    }
    a.warmup = a.warmup.min(5.0);
    a.threads = a.threads.min(a.conns);
    Ok(a)
}

/// The byte at offset `i` of message number `seq` on a connection: a different pattern for each
/// round trip, so a stale, duplicated or reordered echo fails the check.
fn pattern(seq: u32, i: usize) -> u8 {
    (seq as usize).wrapping_mul(31).wrapping_add(i) as u8
}

struct Conn {
    stream: TcpStream,
    seq: u32,
    sent: usize,
    recvd: usize,
    started: Instant,
    want_out: bool,
    dead: bool,
}

#[derive(Default)]
struct Tally {
    round_trips: u64,
    all_round_trips: u64,
    errors: u64,
    hist: Histogram,
}

struct Window {
    start: Instant,
    end: Instant,
}

fn set_interest(epfd: &rustix::fd::OwnedFd, c: &Conn, idx: usize) -> std::io::Result<()> {
    let mut f = EventFlags::IN;
    if c.want_out {
        f |= EventFlags::OUT;
    }
    epoll::modify(epfd, c.stream.as_fd(), EventData::new_u64(idx as u64), f)?;
    Ok(())
}

/// Writes as much of the current message as the socket takes.
fn push(c: &mut Conn, size: usize, buf: &mut [u8]) -> std::io::Result<()> {
    while c.sent < size {
        let n = (size - c.sent).min(buf.len());
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(c.seq, c.sent + i);
        }
        match c.stream.write(&buf[..n]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(w) => c.sent += w,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn client_thread(
    addr: SocketAddr,
    conns: usize,
    size: usize,
    sync: Arc<(Barrier, OnceLock<Window>)>,
    stop: Arc<AtomicBool>,
    connect_by: Instant,
) -> Tally {
    let mut t = Tally::default();
    let epfd = match epoll::create(CreateFlags::CLOEXEC) {
        Ok(fd) => fd,
        Err(_) => {
            t.errors += conns as u64;
            return t;
        }
    };
    let mut cs: Vec<Conn> = Vec::with_capacity(conns);
    for _ in 0..conns {
        if Instant::now() > connect_by {
            t.errors += 1;
            continue;
        }
        let s = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => s,
            Err(_) => {
                t.errors += 1;
                continue;
            }
        };
        if s.set_nodelay(true).is_err() || s.set_nonblocking(true).is_err() {
            t.errors += 1;
            continue;
        }
        let idx = cs.len();
        if epoll::add(
            &epfd,
            s.as_fd(),
            EventData::new_u64(idx as u64),
            EventFlags::IN,
        )
        .is_err()
        {
            t.errors += 1;
            continue;
        }
        cs.push(Conn {
            stream: s,
            seq: 0,
            sent: 0,
            recvd: 0,
            started: Instant::now(),
            want_out: false,
            dead: false,
        });
    }
    let mut wbuf = vec![0u8; size.min(64 * 1024)];
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut events = vec![
        Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0),
        };
        1024
    ];
    // Everyone starts at once, when all threads have connected (a server that accepts slowly
    // makes connects wait for SYN retries, which must not eat into the measured window).
    sync.0.wait();
    sync.0.wait();
    let Some(window) = sync.1.get() else {
        return t;
    };
    for (idx, c) in cs.iter_mut().enumerate() {
        c.started = Instant::now();
        if push(c, size, &mut wbuf).is_err() {
            c.dead = true;
            t.errors += 1;
        } else if c.sent < size {
            c.want_out = true;
            let _ = set_interest(&epfd, c, idx);
        }
    }
    let mut live = cs.iter().filter(|c| !c.dead).count();
    while live > 0 && !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= window.end {
            break;
        }
        let left = (window.end - now).min(Duration::from_millis(100));
        let ts = Timespec {
            tv_sec: 0,
            tv_nsec: left.as_nanos().max(1_000_000) as i64,
        };
        let n = match epoll::wait(&epfd, &mut events[..], Some(&ts)) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => 0,
            Err(_) => break,
        };
        for ev in &events[..n] {
            let idx = ev.data.u64() as usize;
            let flags = ev.flags;
            let Some(c) = cs.get_mut(idx) else { continue };
            if c.dead {
                continue;
            }
            let mut failed = false;
            if flags.contains(EventFlags::OUT) {
                if push(c, size, &mut wbuf).is_err() {
                    failed = true;
                } else if c.sent == size && c.want_out {
                    c.want_out = false;
                    let _ = set_interest(&epfd, c, idx);
                }
            }
            if !failed && flags.intersects(EventFlags::IN | EventFlags::HUP | EventFlags::ERR) {
                // Read what is there (level-triggered: the rest comes with the next event).
                let want = (size - c.recvd).min(rbuf.len());
                match c.stream.read(&mut rbuf[..want]) {
                    Ok(0) => failed = true,
                    Ok(r) => {
                        let base = c.recvd;
                        let seq = c.seq;
                        if rbuf[..r]
                            .iter()
                            .enumerate()
                            .any(|(i, &b)| b != pattern(seq, base + i))
                        {
                            failed = true;
                        } else {
                            c.recvd += r;
                        }
                    }
                    Err(e)
                        if e.kind() == ErrorKind::WouldBlock
                            || e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => failed = true,
                }
                if !failed && c.recvd == size && c.sent == size {
                    let done = Instant::now();
                    t.all_round_trips += 1;
                    if c.started >= window.start && done <= window.end {
                        t.round_trips += 1;
                        t.hist.record((done - c.started).as_nanos() as u64);
                    }
                    c.seq = c.seq.wrapping_add(1);
                    c.sent = 0;
                    c.recvd = 0;
                    c.started = done;
                    if push(c, size, &mut wbuf).is_err() {
                        failed = true;
                    } else if c.sent < size && !c.want_out {
                        c.want_out = true;
                        let _ = set_interest(&epfd, c, idx);
                    }
                }
            }
            if failed {
                c.dead = true;
                t.errors += 1;
                let _ = epoll::delete(&epfd, c.stream.as_fd());
                live -= 1;
            }
        }
    }
    t
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Many connections need many fds; the soft limit may be below the hard one.
    picosel_bench::raise_nofile();
    if let Some(cpu) = a.cpu {
        if let Err(e) = picosel_bench::pin(None, cpu) {
            eprintln!("loadgen: cannot pin to CPU {cpu}: {e}");
            return ExitCode::from(2);
        }
    }
    let hard_stop = Instant::now() + Duration::from_secs_f64(a.secs + a.warmup + 40.0);
    let mut idle = Vec::with_capacity(a.idle);
    let mut errors = 0u64;
    for _ in 0..a.idle {
        match TcpStream::connect_timeout(&a.addr, Duration::from_secs(5)) {
            Ok(s) => idle.push(s),
            Err(_) => errors += 1,
        }
        if Instant::now() > hard_stop {
            break;
        }
    }
    let sync = Arc::new((Barrier::new(a.threads + 1), OnceLock::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let connect_by = hard_stop - Duration::from_secs(20);
    let mut handles = Vec::new();
    for i in 0..a.threads {
        let n = a.conns / a.threads + usize::from(i < a.conns % a.threads);
        let (y, s) = (sync.clone(), stop.clone());
        let addr = a.addr;
        let size = a.size;
        handles.push(std::thread::spawn(move || {
            client_thread(addr, n, size, y, s, connect_by)
        }));
    }
    sync.0.wait();
    let start = Instant::now() + Duration::from_secs_f64(a.warmup);
    let window = Window {
        start,
        end: start + Duration::from_secs_f64(a.secs),
    };
    let (wstart, wend) = (window.start, window.end);
    let _ = sync.1.set(window);
    sync.0.wait();
    // Server CPU over exactly the measured window.
    let sleep_until = |t: Instant| {
        let now = Instant::now();
        if t > now {
            std::thread::sleep(t - now);
        }
    };
    sleep_until(wstart);
    let cpu0 = a.pid.and_then(cpu_ns_of_pid);
    sleep_until(wend);
    let cpu1 = a.pid.and_then(cpu_ns_of_pid);
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for h in handles {
        match h.join() {
            Ok(t) => {
                total.round_trips += t.round_trips;
                total.all_round_trips += t.all_round_trips;
                total.errors += t.errors;
                total.hist.merge(&t.hist);
            }
            Err(_) => total.errors += 1,
        }
    }
    total.errors += errors;
    drop(idle);
    let rt = total.round_trips;
    let cpu = match (cpu0, cpu1) {
        (Some(x), Some(y)) if rt > 0 => format!("{:.1}", (y.saturating_sub(x)) as f64 / rt as f64),
        _ => "null".to_string(),
    };
    println!(
        "{{\"addr\":\"{}\",\"conns\":{},\"idle\":{},\"size\":{},\"threads\":{},\"secs\":{},\
         \"round_trips\":{},\"all_round_trips\":{},\"rt_per_sec\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\
         \"errors\":{},\"server_cpu_ns_per_rt\":{}}}",
        a.addr,
        a.conns,
        a.idle,
        a.size,
        a.threads,
        a.secs,
        rt,
        total.all_round_trips,
        rt as f64 / a.secs,
        total.hist.percentile(0.50) as f64 / 1000.0,
        total.hist.percentile(0.99) as f64 / 1000.0,
        total.errors,
        cpu
    );
    if total.errors > 0 || rt == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
