//! Shared pieces of the picosel benchmarks: a fixed latency histogram, CPU time of a process,
//! medians, and the few lines of argument and JSON handling the bench programs share.

use std::time::Instant;

pub mod chart;

/// Sub-buckets per power of two: 16, so a bucket spans at most 1/16 of its value (about 6%).
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = SUB * (64 - SUB_BITS as usize + 1);

/// A log-linear histogram of `u64` values (nanoseconds here), fixed size: recording is a
/// couple of bit operations and an increment, with no allocation.
///
/// ```
/// let mut h = picosel_bench::Histogram::default();
/// for v in 1..=100u64 { h.record(v * 1000); }
/// let p50 = h.percentile(0.5);
/// assert!((47_000..=53_000).contains(&p50), "{p50}");
/// ```
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let e = msb - SUB_BITS;
        SUB * (e as usize + 1) + ((v >> e) as usize & (SUB - 1))
    }

    /// The middle of bucket `i`.
    fn value(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let e = (i / SUB - 1) as u32;
        let m = (i % SUB) as u64;
        ((SUB as u64 + m) << e) + ((1u64 << e) >> 1)
    }

    /// Adds one value.
    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
    }

    /// Adds all of `other`'s values.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The number of values.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether no value was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The value at quantile `q` (0..=1), within the bucket resolution; 0 when empty.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i);
            }
        }
        0
    }
}

/// CPU time (user + system) consumed so far by every thread of process `pid`, in ns, from the
/// scheduler's `sum_exec_runtime` in `/proc/PID/task/TID/schedstat` (ns resolution, unlike the
/// clock ticks of `/proc/PID/stat`). Falls back to `/proc/PID/stat` utime + stime.
pub fn cpu_ns_of_pid(pid: u32) -> Option<u64> {
    let mut sum = 0u64;
    let mut any = false;
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in dir.flatten() {
            let p = t.path().join("schedstat");
            if let Ok(s) = std::fs::read_to_string(p) {
                if let Some(ns) = s
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                {
                    sum += ns;
                    any = true;
                }
            }
        }
    }
    if any {
        return Some(sum);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000_000)
}

/// A field of `/proc/PID/status` in kB (`VmHWM`, `VmRSS`, ...).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Pins process (or thread) `pid` (`None`: the caller) to CPU `cpu`. Threads created
/// afterwards inherit it.
pub fn pin(pid: Option<u32>, cpu: usize) -> std::io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    let pid = match pid {
        Some(p) => Some(
            rustix::process::Pid::from_raw(p as i32)
                .ok_or_else(|| std::io::Error::other("pid 0"))?,
        ),
        None => None,
    };
    rustix::thread::sched_setaffinity(pid, &set)?;
    Ok(())
}

/// Raises the soft limit on open fds to the hard limit: the benchmarks hold thousands.
pub fn raise_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    if let Some(max) = lim.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(max),
                maximum: Some(max),
            },
        );
    }
}

/// The median of `v` (mean of the middle two for an even count); NaN when empty.
///
/// ```
/// assert_eq!(picosel_bench::median(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(picosel_bench::median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
/// ```
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The number after `"key":` in a flat JSON line; `None` for `null` or a missing key.
///
/// ```
/// let line = r#"{"a":1.5,"b":null,"c":7}"#;
/// assert_eq!(picosel_bench::json_num(line, "a"), Some(1.5));
/// assert_eq!(picosel_bench::json_num(line, "b"), None);
/// assert_eq!(picosel_bench::json_num(line, "c"), Some(7.0));
/// ```
pub fn json_num(line: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let at = line.find(&pat)? + pat.len();
    let rest = &line[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// Nanoseconds per iteration of `f`, run `iters` times.
pub fn ns_per_iter(iters: u64, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

/// Parses `[--backend NAME] [--quiet] [--threads T] ADDR` (the interface of the root
/// crate's `echo_server` example, shared by the bench servers).
pub struct ServerArgs {
    /// `epoll`, `poll` or `select`.
    pub backend: String,
    /// Do not log connections.
    pub quiet: bool,
    /// Event loops (threads) for the servers that take it.
    pub threads: usize,
    /// Where to listen; port 0 picks a free one.
    pub addr: std::net::SocketAddr,
}

impl ServerArgs {
    /// From `std::env::args`, or a usage message.
    pub fn parse(prog: &str) -> Result<Self, String> {
        let usage =
            || format!("usage: {prog} [--backend epoll|poll|select] [--threads T] [--quiet] ADDR");
        let mut a = ServerArgs {
            backend: "epoll".into(),
            quiet: false,
            threads: 1,
            addr: "127.0.0.1:0".parse().map_err(|_| usage())?,
        };
        let mut it = std::env::args().skip(1);
        while let Some(x) = it.next() {
            match x.as_str() {
                "--backend" => a.backend = it.next().ok_or_else(usage)?,
                "--threads" => {
                    a.threads = it.next().and_then(|v| v.parse().ok()).ok_or_else(usage)?
                }
                "--quiet" => a.quiet = true,
                s if !s.starts_with('-') => a.addr = s.parse().map_err(|_| usage())?,
                _ => return Err(usage()),
            }
        }
        if !a.addr.ip().is_loopback() {
            return Err(format!("{prog}: benchmarks listen on loopback only"));
        }
        Ok(a)
    }
}

/// `count` listening TCP sockets on `addr`, non-blocking and close-on-exec, backlog 1024. With
/// `count > 1` they share one port through `SO_REUSEPORT` (set before `bind`, as the kernel
/// requires on every socket of the group), and the kernel spreads new connections over them.
/// Returns the sockets and the address they listen on (port 0 is resolved).
pub fn listeners(
    addr: std::net::SocketAddr,
    count: usize,
) -> std::io::Result<(Vec<rustix::fd::OwnedFd>, std::net::SocketAddr)> {
    use rustix::net::{
        bind, getsockname, listen, socket_with, sockopt, AddressFamily, SocketFlags, SocketType,
    };
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let mut out = Vec::with_capacity(count);
    let mut bound = addr;
    for _ in 0..count.max(1) {
        let s = socket_with(
            family,
            SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )?;
        sockopt::set_socket_reuseaddr(&s, true)?;
        if count > 1 {
            sockopt::set_socket_reuseport(&s, true)?;
        }
        bind(&s, &bound)?;
        listen(&s, 1024)?;
        let local: std::net::SocketAddr = getsockname(&s)?
            .try_into()
            .map_err(|_| std::io::Error::other("getsockname: not an IP address"))?;
        bound = local;
        out.push(s);
    }
    Ok((out, bound))
}

/// A server process started for a benchmark, killed when dropped.
pub struct Server {
    /// The name the reports give it.
    pub name: String,
    /// The command line, for the reports.
    pub cmd: String,
    /// The process.
    pub child: std::process::Child,
    /// The address from its first line, `listening on ADDR`.
    pub addr: String,
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `prog args` and waits (up to 10 s) for its `listening on ADDR` line.
    pub fn start(name: &str, prog: &std::path::Path, args: &[&str]) -> Result<Server, String> {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new(prog)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", prog.display()))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(out);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining: a server that prints later (a summary at exit) must not meet a
            // closed pipe.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        let cmd = format!("{} {}", prog.display(), args.join(" "));
        let line = match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{cmd}: no 'listening on' line within 10 s"));
            }
        };
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd}: unexpected first line {line:?}"));
        };
        Ok(Server {
            name: name.into(),
            cmd,
            addr: addr.to_string(),
            child,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The program `p` on `PATH`, if there.
pub fn which(p: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(p))
            .find(|f| f.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn histogram_buckets_are_contiguous_and_close() {
        for v in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            33,
            1000,
            123_456,
            9_999_999_999,
        ] {
            let i = Histogram::index(v);
            let mid = Histogram::value(i);
            let err = (mid as f64 - v as f64).abs() / (v.max(1) as f64);
            assert!(err <= 1.0 / 16.0 + 1e-9, "{v} -> {mid}");
        }
        let mut last = 0;
        for v in 0..100_000u64 {
            let i = Histogram::index(v);
            assert!(i == last || i == last + 1, "{v}");
            last = i;
        }
        assert!(Histogram::index(u64::MAX) < super::BUCKETS);
    }
}
