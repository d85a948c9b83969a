//! Exact user-space instructions per echo round trip, counted by callgrind.
//!
//! ```text
//! icount --bin DIR [--echo-server PATH] [--runs 3] [--k1 1000] [--k2 11000] [--where 12]
//!        [--annotate DIR] [--gate N] [--gate-loop M]
//! ```
//!
//! Each server (`floor_echo`, `sel_echo`, and the root crate's `echo_server` when given) runs
//! under `valgrind --tool=callgrind` twice per run: once driven through K1 round trips of 64
//! bytes on one connection, once through K2. Both runs start, accept one connection, see it
//! closed and stop the same way, so (Ir(K2) − Ir(K1)) / (K2 − K1) is what one round trip costs
//! in the server's process (its code, picosel, rustix, libc; not the kernel's), with start-up,
//! connection set-up and shutdown cancelled out. The client is this process, which valgrind
//! does not see. Each run starts every server afresh; the spread over runs shows whether the
//! count is exact.
//!
//! Prints one JSON line per measurement and per server (median, min, max of the runs), and with
//! `--where M` the M source lines that cost most per round trip in each server (the same
//! difference, taken per line of the callgrind profiles; inlined code counts at its own line).
//! `--annotate DIR` writes that difference of the last run as a callgrind profile of its own,
//! `DIR/SERVER.cg`, for `callgrind_annotate`. A readable summary goes to stderr. `--gate N`
//! exits 1 when `sel_echo`'s median exceeds `floor_echo`'s by more than N instructions per
//! round trip; `--gate-loop M` when `echo_server`'s does by more than M (it needs
//! `--echo-server`).

use picosel_bench::{median, Server};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const SIZE: usize = 64;

struct Opts {
    bin: PathBuf,
    echo_server: Option<PathBuf>,
    runs: usize,
    k1: u64,
    k2: u64,
    top: usize,
    annotate: Option<PathBuf>,
    gate: Option<f64>,
    gate_loop: Option<f64>,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        bin: PathBuf::new(),
        echo_server: None,
        runs: 3,
        k1: 1000,
        k2: 11000,
        top: 0,
        annotate: None,
        gate: None,
        gate_loop: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(f) = it.next() {
        let v = it.next().ok_or(format!("{f} needs a value"))?;
        let bad = || format!("bad value for {f}: {v}");
        match f.as_str() {
            "--bin" => o.bin = v.into(),
            "--echo-server" => o.echo_server = Some(v.into()),
            "--runs" => o.runs = v.parse().map_err(|_| bad())?,
            "--k1" => o.k1 = v.parse().map_err(|_| bad())?,
            "--k2" => o.k2 = v.parse().map_err(|_| bad())?,
            "--where" => o.top = v.parse().map_err(|_| bad())?,
            "--annotate" => o.annotate = Some(v.into()),
            "--gate" => o.gate = Some(v.parse().map_err(|_| bad())?),
            "--gate-loop" => o.gate_loop = Some(v.parse().map_err(|_| bad())?),
            _ => return Err(format!("unknown flag {f}")),
        }
    }
    if o.bin.as_os_str().is_empty() {
        return Err("--bin is required".into());
    }
    if o.k1 >= o.k2 {
        return Err("--k1 must be below --k2".into());
    }
    o.runs = o.runs.clamp(1, 20);
    Ok(o)
}

/// The byte at offset `i` of message `seq`: each round trip differs, so a stale echo fails.
fn pattern(seq: u64, i: usize) -> u8 {
    (seq as usize).wrapping_mul(31).wrapping_add(i) as u8
}

/// One connection, `k` round trips of `SIZE` bytes, every byte checked; then a half-close, and
/// a read until the server has closed its end, so the server is idle again when this returns.
fn drive(addr: &str, k: u64) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let (mut out, mut back) = ([0u8; SIZE], [0u8; SIZE]);
    for seq in 0..k {
        for (i, b) in out.iter_mut().enumerate() {
            *b = pattern(seq, i);
        }
        s.write_all(&out).map_err(|e| format!("write: {e}"))?;
        s.read_exact(&mut back)
            .map_err(|e| format!("read, round trip {seq}: {e}"))?;
        if back != out {
            return Err(format!("round trip {seq}: wrong bytes echoed"));
        }
    }
    s.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
    match s.read(&mut back) {
        Ok(0) => Ok(()),
        Ok(_) => Err("bytes after the last echo".into()),
        Err(e) => Err(format!("waiting for the server to close: {e}")),
    }
}

/// A callgrind profile: its total Ir, and Ir per (source file, line, function) of self cost.
struct Profile {
    total: u64,
    lines: HashMap<(String, u32, String), u64>,
}

/// Reads callgrind's output format (valgrind's docs, "Callgrind Format Specification"): name
/// compression `(id) name`, relative line numbers, `fi=`/`fe=` for inlined code, and the cost
/// line after `calls=`, which is the callee's inclusive cost and not this line's own.
fn read_profile(path: &Path) -> Result<Profile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut files: HashMap<String, String> = HashMap::new();
    let mut fns: HashMap<String, String> = HashMap::new();
    let name = |table: &mut HashMap<String, String>, v: &str| -> String {
        let v = v.trim();
        match v.strip_prefix('(').and_then(|r| r.split_once(')')) {
            Some((id, rest)) if rest.trim().is_empty() => {
                table.get(id).cloned().unwrap_or_default()
            }
            Some((id, rest)) => {
                table.insert(id.to_string(), rest.trim().to_string());
                rest.trim().to_string()
            }
            None => v.to_string(),
        }
    };
    let (mut file, mut func) = (String::new(), String::new());
    let mut line: i64 = 0;
    let mut after_call = false;
    let mut p = Profile {
        total: 0,
        lines: HashMap::new(),
    };
    let mut summed = 0u64;
    for l in text.lines() {
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some((key, v)) = l.split_once('=') {
            if key.chars().all(|c| c.is_ascii_lowercase()) {
                match key {
                    "fl" | "fi" | "fe" => file = name(&mut files, v),
                    "fn" => func = name(&mut fns, v),
                    "cfi" | "cfl" | "jfi" => drop(name(&mut files, v)),
                    "cfn" | "jfn" => drop(name(&mut fns, v)),
                    "calls" => after_call = true,
                    _ => {}
                }
                continue;
            }
        }
        if let Some(v) = l
            .strip_prefix("summary:")
            .or_else(|| l.strip_prefix("totals:"))
        {
            p.total = v.trim().parse().map_err(|_| format!("bad total: {l}"))?;
            continue;
        }
        let mut f = l.split_whitespace();
        let (Some(pos), Some(cost)) = (f.next(), f.next()) else {
            continue;
        };
        line = match pos.as_bytes().first() {
            Some(b'+') => line + pos[1..].parse::<i64>().unwrap_or(0),
            Some(b'-') => line - pos[1..].parse::<i64>().unwrap_or(0),
            Some(b'*') => line,
            Some(c) if c.is_ascii_digit() => pos.parse().unwrap_or(0),
            _ => continue,
        };
        let Ok(cost) = cost.parse::<u64>() else {
            continue;
        };
        if after_call {
            after_call = false;
            continue;
        }
        summed += cost;
        *p.lines
            .entry((file.clone(), line as u32, func.clone()))
            .or_default() += cost;
    }
    if p.total == 0 {
        p.total = summed;
    }
    if p.total == 0 {
        return Err(format!("{}: no instructions recorded", path.display()));
    }
    Ok(p)
}

/// A source path as a reader finds it: relative to this repository, to the crate in cargo's
/// registry, or to Rust's library.
fn short(path: &str, root: &str) -> String {
    if let Some(r) = path.strip_prefix(root) {
        return r.trim_start_matches('/').to_string();
    }
    for mark in ["/registry/src/", "/rustc/"] {
        if let Some(i) = path.find(mark) {
            let rest = &path[i + mark.len()..];
            // Skip the registry's index directory or the compiler's commit hash.
            return rest.split_once('/').map_or(rest, |(_, r)| r).to_string();
        }
    }
    path.to_string()
}

struct Measure {
    per_rt: f64,
    k1: Profile,
    k2: Profile,
}

/// Starts `prog` under callgrind, drives it through `k` round trips, stops it with SIGTERM and
/// reads the profile.
fn profile(
    valgrind: &Path,
    prog: &Path,
    args: &[&str],
    k: u64,
    out: &Path,
) -> Result<Profile, String> {
    let _ = std::fs::remove_file(out);
    let mut full: Vec<String> = vec![
        "--tool=callgrind".into(),
        "-q".into(),
        format!("--callgrind-out-file={}", out.display()),
        prog.display().to_string(),
    ];
    full.extend(args.iter().map(|a| a.to_string()));
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    let mut s = Server::start("server", valgrind, &full)?;
    let driven = drive(&s.addr, k);
    // The server has closed the connection; let it go back to its wait before the signal, so
    // both runs stop at the same place.
    std::thread::sleep(Duration::from_millis(200));
    if let Some(pid) = rustix::process::Pid::from_raw(s.pid() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    // SIGTERM: a clean exit for echo_server, a fatal signal for the others; callgrind writes
    // the profile either way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(s);
    driven?;
    read_profile(out)
}

fn measure(
    valgrind: &Path,
    prog: &Path,
    args: &[&str],
    o: &Opts,
    dir: &Path,
) -> Result<Measure, String> {
    let k1 = profile(valgrind, prog, args, o.k1, &dir.join("k1.cg"))?;
    let k2 = profile(valgrind, prog, args, o.k2, &dir.join("k2.cg"))?;
    let per_rt = (k2.total as f64 - k1.total as f64) / (o.k2 - o.k1) as f64;
    Ok(Measure { per_rt, k1, k2 })
}

/// The source lines that cost most per round trip: K2's self cost minus K1's, per line.
fn hot_lines(m: &Measure, o: &Opts, root: &str) -> Vec<(f64, String, String)> {
    let span = (o.k2 - o.k1) as f64;
    let mut v: Vec<(f64, String, String)> =
        m.k2.lines
            .iter()
            .map(|(key, &c2)| {
                let c1 = m.k1.lines.get(key).copied().unwrap_or(0);
                let (file, line, func) = key;
                let d = (c2 as f64 - c1 as f64) / span;
                (d, format!("{}:{line}", short(file, root)), func.clone())
            })
            .filter(|(d, _, _)| *d >= 0.5)
            .collect();
    v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    v.truncate(o.top);
    v
}

/// The K2 − K1 difference as a callgrind profile (self cost per source line and function,
/// lines that cost nothing left out), so that `callgrind_annotate` can read it.
fn write_difference(
    m: &Measure,
    o: &Opts,
    name: &str,
    root: &str,
    path: &Path,
) -> std::io::Result<()> {
    let mut rows: Vec<(&(String, u32, String), u64)> =
        m.k2.lines
            .iter()
            .filter_map(|(key, &c2)| {
                let d = c2.saturating_sub(m.k1.lines.get(key).copied().unwrap_or(0));
                (d > 0).then_some((key, d))
            })
            .collect();
    rows.sort_by(|a, b| (&a.0 .0, &a.0 .2, a.0 .1).cmp(&(&b.0 .0, &b.0 .2, b.0 .1)));
    let total: u64 = rows.iter().map(|r| r.1).sum();
    let mut out = format!(
        "# callgrind format\nversion: 1\ncreator: icount\ncmd: {name}: Ir of {} round trips minus Ir of {}\npositions: line\nevents: Ir\nsummary: {total}\n",
        o.k2, o.k1
    );
    let (mut file, mut func) = ("", "");
    for ((f, line, func_name), cost) in rows {
        if f != file {
            out.push_str(&format!("fl={}\n", short(f, root)));
            file = f;
            func = "";
        }
        if func_name != func {
            out.push_str(&format!("fn={func_name}\n"));
            func = func_name;
        }
        out.push_str(&format!("{line} {cost}\n"));
    }
    out.push_str(&format!("totals: {total}\n"));
    std::fs::write(path, out)
}

fn json_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("icount: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(valgrind) = picosel_bench::which("valgrind") else {
        eprintln!("icount: valgrind is not installed");
        return ExitCode::from(2);
    };
    let root = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let mut servers: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        (
            "floor_echo",
            o.bin.join("floor_echo"),
            vec!["--quiet", "127.0.0.1:0"],
        ),
        (
            "sel_echo",
            o.bin.join("sel_echo"),
            vec!["--backend", "epoll", "--quiet", "127.0.0.1:0"],
        ),
    ];
    if let Some(es) = &o.echo_server {
        servers.push((
            "echo_server",
            es.clone(),
            vec!["--backend", "epoll", "--quiet", "127.0.0.1:0"],
        ));
    }
    let dir = std::env::temp_dir().join(format!("picosel-icount-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("icount: {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    let mut counts: Vec<Vec<f64>> = vec![vec![]; servers.len()];
    let mut last: Vec<Option<Measure>> = servers.iter().map(|_| None).collect();
    let mut failed = false;
    for run in 1..=o.runs {
        for (i, (name, prog, args)) in servers.iter().enumerate() {
            match measure(&valgrind, prog, args, &o, &dir) {
                Ok(m) => {
                    println!(
                        "{{\"server\":\"{name}\",\"run\":{run},\"k1\":{},\"k2\":{},\"ir_k1\":{},\"ir_k2\":{},\"per_rt\":{:.2}}}",
                        o.k1, o.k2, m.k1.total, m.k2.total, m.per_rt
                    );
                    counts[i].push(m.per_rt);
                    last[i] = Some(m);
                }
                Err(e) => {
                    eprintln!("icount: {name}, run {run}: {e}");
                    failed = true;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut med = HashMap::new();
    eprintln!(
        "user-space instructions per 64-byte echo round trip (callgrind, (Ir(K2) - Ir(K1)) / (K2 - K1), K1 = {}, K2 = {}, {} runs):",
        o.k1, o.k2, o.runs
    );
    for (i, (name, _, _)) in servers.iter().enumerate() {
        let c = &counts[i];
        if c.is_empty() {
            continue;
        }
        let (lo, hi) = c
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            });
        let m = median(c);
        med.insert(*name, m);
        let runs: Vec<String> = c.iter().map(|x| format!("{x:.2}")).collect();
        println!(
            "{{\"server\":\"{name}\",\"median\":{m:.2},\"min\":{lo:.2},\"max\":{hi:.2},\"runs\":[{}]}}",
            runs.join(",")
        );
        eprintln!(
            "  {name:<12} {m:>7.1}   runs: {}   spread {:.2}",
            runs.join(" "),
            hi - lo
        );
    }
    if o.top > 0 {
        for (i, (name, _, _)) in servers.iter().enumerate() {
            let Some(m) = &last[i] else { continue };
            for (d, at, func) in hot_lines(m, &o, &root) {
                println!(
                    "{{\"where\":\"{name}\",\"per_rt\":{d:.2},\"line\":\"{}\",\"fn\":\"{}\"}}",
                    json_escape(&at),
                    json_escape(&func)
                );
            }
        }
    }
    if let Some(dir) = &o.annotate {
        let _ = std::fs::create_dir_all(dir);
        for (i, (name, _, _)) in servers.iter().enumerate() {
            if let Some(m) = &last[i] {
                let path = dir.join(format!("{name}.cg"));
                if let Err(e) = write_difference(m, &o, name, &root, &path) {
                    eprintln!("icount: {}: {e}", path.display());
                    failed = true;
                }
            }
        }
    }
    if failed {
        return ExitCode::from(1);
    }
    let gates = [("sel_echo", o.gate), ("echo_server", o.gate_loop)];
    let mut over = false;
    for (name, gate) in gates {
        let Some(g) = gate else { continue };
        let (Some(&f), Some(&s)) = (med.get("floor_echo"), med.get(name)) else {
            eprintln!("icount: no counts of floor_echo and {name} to check");
            return ExitCode::from(1);
        };
        if s > f + g {
            eprintln!(
                "FAILED: {name} costs {s:.1} instructions per round trip, more than floor_echo's {f:.1} + {g} = {:.1}",
                f + g
            );
            over = true;
        } else {
            eprintln!(
                "ok: {name} {s:.1} <= floor_echo {f:.1} + {g} = {:.1}",
                f + g
            );
        }
    }
    if over {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
