//! Runs the whole benchmark set and writes `BENCHMARKS.md`. Started by `bench/run.sh`, which
//! builds everything first and passes the paths:
//!
//! ```text
//! suite --bin DIR [--echo-server PATH] [--icount-echo-server PATH] [--sizes FILE]
//!       [--notes FILE] [--rounds N] [--secs S] [--out BENCHMARKS.md] [--charts DIR]
//!       [--readme README.md] [--log FILE] [--cpu N|none] [--sensor-test PATH]
//! ```
//!
//! Every comparison is interleaved: in each round every variant runs once, in an order that
//! rotates from round to round, and the reported ratio is the median of the per-round ratios
//! (with their range), never a ratio of two lone times. The main comparisons are also drawn as
//! SVG charts in `--charts` (a directory relative to the output's), and `--readme` gets the
//! summary table of its Performance section rewritten from the same run.

use picosel_bench::chart::{self, Bar, Group, Mark, Series};
use picosel_bench::{json_num, median, which, Server};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

struct Opts {
    bin: PathBuf,
    echo_server: Option<PathBuf>,
    /// The same server built with line tables, for the instruction count's breakdown.
    icount_echo_server: Option<PathBuf>,
    sizes: Option<PathBuf>,
    notes: Option<PathBuf>,
    rounds: usize,
    secs: f64,
    out: PathBuf,
    /// Where the charts go, relative to the output's directory.
    charts: PathBuf,
    readme: Option<PathBuf>,
    log: Option<PathBuf>,
    /// The CPU that each echo server and its client share; `None`: not pinned.
    cpu: Option<usize>,
    /// `tests/virtual_sensor.rs` built in release: the week of `periodic_sensor` it runs.
    sensor_test: Option<PathBuf>,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        bin: PathBuf::new(),
        echo_server: None,
        icount_echo_server: None,
        sizes: None,
        notes: None,
        rounds: 11,
        secs: 0.6,
        out: "BENCHMARKS.md".into(),
        charts: "bench/charts".into(),
        readme: None,
        log: None,
        cpu: Some(
            std::thread::available_parallelism()
                .map(|n| n.get() - 1)
                .unwrap_or(0),
        ),
        sensor_test: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(f) = it.next() {
        let v = it.next().ok_or(format!("{f} needs a value"))?;
        match f.as_str() {
            "--bin" => o.bin = v.into(),
            "--echo-server" => o.echo_server = Some(v.into()),
            "--icount-echo-server" => o.icount_echo_server = Some(v.into()),
            "--sizes" => o.sizes = Some(v.into()),
            "--notes" => o.notes = Some(v.into()),
            "--rounds" => o.rounds = v.parse().map_err(|_| "bad --rounds")?,
            "--secs" => o.secs = v.parse().map_err(|_| "bad --secs")?,
            "--out" => o.out = v.into(),
            "--charts" => o.charts = v.into(),
            "--readme" => o.readme = Some(v.into()),
            "--log" => o.log = Some(v.into()),
            "--cpu" if v == "none" => o.cpu = None,
            "--cpu" => o.cpu = Some(v.parse().map_err(|_| "bad --cpu")?),
            "--sensor-test" => o.sensor_test = Some(v.into()),
            _ => return Err(format!("unknown flag {f}")),
        }
    }
    if o.bin.as_os_str().is_empty() {
        return Err("--bin is required".into());
    }
    o.rounds = o.rounds.clamp(1, 50);
    o.secs = o.secs.clamp(0.2, 10.0);
    Ok(o)
}

struct Ctx {
    o: Opts,
    log: String,
    commands: Vec<String>,
    /// The README's summary rows: what, result.
    readme: Vec<(String, String)>,
}

impl Ctx {
    /// Writes `svg` as chart `name` and returns the Markdown that shows it.
    fn chart(&self, name: &str, alt: &str, svg: &str) -> String {
        let dir = self
            .o
            .out
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.o.charts);
        let _ = std::fs::create_dir_all(&dir);
        if let Err(e) = std::fs::write(dir.join(format!("{name}.svg")), svg) {
            eprintln!("suite: chart {name}: {e}");
        }
        format!("![{alt}]({}/{name}.svg)\n", self.o.charts.display())
    }

    fn note_cmd(&mut self, c: String) {
        if !self.commands.contains(&c) {
            self.commands.push(c);
        }
    }

    /// Runs `prog args`, returns stdout; logs the command and its output.
    fn run(&mut self, prog: &Path, args: &[String], show: &str) -> String {
        let out = Command::new(prog)
            .args(args)
            .stderr(Stdio::inherit())
            .output();
        let text = match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => {
                eprintln!("suite: {}: {e}", prog.display());
                String::new()
            }
        };
        let _ = writeln!(self.log, "$ {show}\n{text}");
        text
    }

    fn loadgen(
        &mut self,
        s: &Server,
        conns: usize,
        idle: usize,
        threads: usize,
        secs: f64,
        cpu: Option<usize>,
    ) -> String {
        let lg = self.o.bin.join("loadgen");
        let mut args: Vec<String> = [
            "--addr",
            &s.addr,
            "--conns",
            &conns.to_string(),
            "--idle",
            &idle.to_string(),
            "--threads",
            &threads.to_string(),
            "--secs",
            &secs.to_string(),
            "--size",
            "64",
            "--warmup",
            "0.2",
            "--pid",
            &s.pid().to_string(),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        let pin = match cpu {
            Some(c) => {
                args.push("--cpu".into());
                args.push(c.to_string());
                format!(" --cpu {c}")
            }
            None => String::new(),
        };
        let show = format!("{} {}   # server: {}", lg.display(), args.join(" "), s.cmd);
        self.note_cmd(format!(
            "{} --addr ADDR --conns {conns} --idle {idle} --threads {threads} --secs {secs} --size 64 --warmup 0.2 --pid SERVER_PID{pin}",
            lg.display()
        ));
        let out = self.run(&lg, &args, &show);
        eprintln!(
            "  {:<22} conns={conns:<4} idle={idle:<4} {}",
            s.name,
            out.trim()
        );
        out
    }
}

fn fmt_ratio(xs: &[f64]) -> String {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return "n/a".into();
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.3} ({:.2}–{:.2})", median(&v), lo, hi)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|x| x.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let u = rustix::system::uname();
    let kernel = format!(
        "{} {} {}",
        u.sysname().to_string_lossy(),
        u.release().to_string_lossy(),
        u.machine().to_string_lossy()
    );
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let sh = |c: &str| {
        Command::new("sh")
            .args(["-c", c])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "- Date: {}\n- Machine: {nproc} CPUs (nproc), {cpu}; kernel {kernel}\n- Toolchain: {}\n- picosel commit: {}\n- Load average when the run started: {load} (the machine is shared; that is why every figure is an interleaved median)\n",
        sh("date -u '+%Y-%m-%d %H:%M:%S UTC'"),
        sh("rustc --version"),
        sh("git describe --always --dirty 2>/dev/null"),
    )
}

struct EchoRow {
    name: String,
    rt: Vec<f64>,
    cpu: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    errors: f64,
}

/// 3a: every server at every connection count, interleaved; index 0 is the floor.
fn echo(ctx: &mut Ctx, servers: &[Server], md: &mut String, summary: &mut Vec<[String; 4]>) {
    let rounds = ctx.o.rounds;
    let secs = ctx.o.secs;
    let cpu = ctx.o.cpu;
    if let Some(c) = cpu {
        for s in servers {
            if let Err(e) = picosel_bench::pin(Some(s.pid()), c) {
                eprintln!("suite: cannot pin {} to CPU {c}: {e}", s.name);
            }
        }
        ctx.note_cmd(format!(
            "taskset -pc {c} SERVER_PID   # each echo server, before its runs"
        ));
    }
    let pinning = match cpu {
        Some(c) => format!(
            "Each server and the client are pinned to the same CPU ({c}): a round trip is then a \
             ping-pong on one CPU with no cross-CPU wake-up, and the noise from other work on this \
             shared machine drops from a factor of several to a few percent between runs. Round \
             trips per second then measure the cost of client and server together (a server 6% \
             costlier per round trip shows as about 3% fewer round trips); the CPU column is the \
             server's own cost."
        ),
        None => "Not pinned: server and client run wherever the scheduler puts them.".into(),
    };
    let _ = writeln!(
        md,
        "## 1. Echo: round trips per second and server CPU per round trip\n\n\
         `loadgen` keeps C connections in a closed loop (64-byte messages, every byte checked), one \
         client thread; each server runs alone on its loop thread. {rounds} rounds x {secs} s per \
         server and connection count, servers in rotating order within each round. Ratios are \
         medians of per-round ratios to the floor (`floor_echo`, raw rustix epoll), with their \
         range. CPU is the server's `sum_exec_runtime` (user + system) over the measured window \
         divided by the round trips in it. The last table adds 900 open, silent connections \
         (`loadgen --idle 900`), so each server holds about 965 registrations of which 64 are \
         busy: the idle-scaling question of section 4, asked of whole servers. {pinning}\n"
    );
    let mut cases: Vec<Case> = Vec::new();
    // The last case adds 900 open, silent connections: every server holds ~965 registrations,
    // and a backend that scans its whole table on each wait shows it.
    for &(conns, idle) in &[(1usize, 0usize), (64, 0), (512, 0), (64, 900)] {
        let mut rows: Vec<EchoRow> = servers
            .iter()
            .map(|s| EchoRow {
                name: s.name.clone(),
                rt: vec![],
                cpu: vec![],
                p50: vec![],
                p99: vec![],
                errors: 0.0,
            })
            .collect();
        eprintln!("echo, {conns} connection(s), {idle} idle:");
        for r in 0..rounds {
            for i in 0..servers.len() {
                let k = (i + r) % servers.len();
                let out = ctx.loadgen(&servers[k], conns, idle, 1, secs, cpu);
                let row = &mut rows[k];
                row.rt
                    .push(json_num(&out, "rt_per_sec").unwrap_or(f64::NAN));
                row.cpu
                    .push(json_num(&out, "server_cpu_ns_per_rt").unwrap_or(f64::NAN));
                row.p50.push(json_num(&out, "p50_us").unwrap_or(f64::NAN));
                row.p99.push(json_num(&out, "p99_us").unwrap_or(f64::NAN));
                row.errors += json_num(&out, "errors").unwrap_or(1.0);
            }
        }
        let _ = writeln!(
            md,
            "### {conns} connection{}{}\n\n| server | round trips/s | vs floor | CPU ns/round trip | vs floor | p50 µs | p99 µs | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|",
            if conns == 1 { "" } else { "s" },
            if idle > 0 {
                format!(" and {idle} idle connections")
            } else {
                String::new()
            }
        );
        let floor = &rows[0];
        let title = if idle > 0 {
            format!("{conns} + {idle} idle connections")
        } else {
            format!("{conns} connection{}", if conns == 1 { "" } else { "s" })
        };
        cases.push(Case {
            title,
            rows: Vec::new(),
        });
        for (idx, row) in rows.iter().enumerate() {
            let rt_ratio: Vec<f64> = (0..rounds).map(|r| row.rt[r] / floor.rt[r]).collect();
            let cpu_ratio: Vec<f64> = (0..rounds).map(|r| row.cpu[r] / floor.cpu[r]).collect();
            if idx > 0 {
                if let Some(c) = cases.last_mut() {
                    c.rows.push(Ratios {
                        name: row.name.clone(),
                        rt: rt_ratio.clone(),
                        cpu: cpu_ratio.clone(),
                    });
                }
            }
            let _ = writeln!(
                md,
                "| {} | {:.0} | {} | {:.0} | {} | {:.1} | {:.1} | {} |",
                row.name,
                median(&row.rt),
                if idx == 0 {
                    "1".into()
                } else {
                    fmt_ratio(&rt_ratio)
                },
                median(&row.cpu),
                if idx == 0 {
                    "1".into()
                } else {
                    fmt_ratio(&cpu_ratio)
                },
                median(&row.p50),
                median(&row.p99),
                row.errors
            );
            if idle == 0 && row.name.starts_with("echo_server epoll")
                || (idle == 0
                    && row.name.starts_with("sel_echo epoll")
                    && !servers.iter().any(|s| s.name.starts_with("echo_server")))
            {
                let m = median(&rt_ratio);
                summary.push([
                    format!("{} round trips >= 0.97x floor, {conns} conn", row.name),
                    format!("{m:.3}x ({})", range(&rt_ratio)),
                    noise(pass(m >= 0.97, m, 0.97, true), &rt_ratio, true),
                    String::new(),
                ]);
                let c = median(&cpu_ratio);
                summary.push([
                    format!("{} CPU/round trip <= 1.05x floor, {conns} conn", row.name),
                    format!("{c:.3}x ({})", range(&cpu_ratio)),
                    noise(pass(c <= 1.05, c, 1.05, false), &cpu_ratio, false),
                    String::new(),
                ]);
            }
        }
        md.push('\n');
    }
    echo_charts(ctx, &cases, md);
}

/// One connection count of section 1: per picosel server, the per-round ratios to the floor.
struct Case {
    title: String,
    rows: Vec<Ratios>,
}

struct Ratios {
    name: String,
    rt: Vec<f64>,
    cpu: Vec<f64>,
}

/// Section 1's ratios drawn, and its README rows.
fn echo_charts(ctx: &mut Ctx, cases: &[Case], md: &mut String) {
    let bar = |name: &str, xs: &[f64]| Bar {
        label: name.to_string(),
        value: median(xs),
        range: span(xs),
    };
    for (which, what, unit, file) in [
        (
            1,
            "Server CPU per round trip, vs the floor",
            "ratio to floor_echo (lower is better)",
            "echo-cpu",
        ),
        (
            0,
            "Round trips per second, vs the floor",
            "ratio to floor_echo (higher is better)",
            "echo-rate",
        ),
    ] {
        let groups: Vec<Group> = cases
            .iter()
            .map(|c| Group {
                title: c.title.clone(),
                bars: c
                    .rows
                    .iter()
                    .map(|r| bar(&r.name, if which == 1 { &r.cpu } else { &r.rt }))
                    .collect(),
            })
            .collect();
        let marks = [Mark {
            at: 1.0,
            label: "floor".into(),
        }];
        let svg = chart::bars(
            &format!("{what} (median of per-round ratios, whisker: range)"),
            unit,
            &groups,
            &marks,
            Some(0.0),
        );
        md.push_str(&ctx.chart(file, what, &svg));
        md.push('\n');
    }
    // The README's rows: the event-loop server on epoll at 1, 64 and 512 connections.
    let pick = |case: usize, name: &str, which: usize| {
        cases
            .get(case)
            .and_then(|c| c.rows.iter().find(|r| r.name.starts_with(name)))
            .map(|r| median(if which == 1 { &r.cpu } else { &r.rt }))
    };
    let main = if cases
        .iter()
        .any(|c| c.rows.iter().any(|r| r.name.starts_with("echo_server")))
    {
        "echo_server epoll"
    } else {
        "sel_echo epoll"
    };
    let three = |which: usize| {
        (0..3)
            .map(|c| pick(c, main, which).map_or("n/a".into(), |v| format!("{v:.3}x")))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let server = main.split(' ').next().unwrap_or(main);
    ctx.readme.push((
        format!("`{server}` on epoll vs the floor: round trips at 1 / 64 / 512 connections"),
        three(0),
    ));
    ctx.readme
        .push(("the same: server CPU per round trip".into(), three(1)));
    let idle: Vec<String> = ["epoll", "poll", "select"]
        .iter()
        .filter_map(|b| pick(3, &format!("{server} {b}"), 1).map(|v| format!("{b} {v:.2}x")))
        .collect();
    if !idle.is_empty() {
        ctx.readme.push((
            "64 busy + 900 idle connections, server CPU per round trip vs the floor".into(),
            idle.join("; "),
        ));
    }
}

/// `v` rounded, with a comma every three digits, as the README writes numbers.
fn thousands(v: f64) -> String {
    let d = format!("{v:.0}");
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The range of the finite values, if any.
fn span(xs: &[f64]) -> Option<(f64, f64)> {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lo, hi))
}

/// `lo–hi` of the finite values.
fn range(xs: &[f64]) -> String {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.2}–{hi:.2}")
}

/// Marks a miss whose per-round ratios straddle parity: the run could not tell the two apart.
/// `higher_is_better`: a ratio above 1 favours picosel (round trips), else one below 1 does
/// (CPU per round trip).
fn noise(status: String, ratios: &[f64], higher_is_better: bool) -> String {
    let v: Vec<f64> = ratios.iter().copied().filter(|x| x.is_finite()).collect();
    let below = v.iter().filter(|&&x| x < 1.0).count();
    let above = v.iter().filter(|&&x| x > 1.0).count();
    let ahead = if higher_is_better { above } else { below };
    if status.starts_with("MISSED") && below > 0 && above > 0 {
        format!(
            "{status}; not resolved: {ahead} of {} rounds favour picosel",
            v.len()
        )
    } else {
        status
    }
}

fn pass(ok: bool, got: f64, target: f64, higher_better: bool) -> String {
    if ok {
        "met".into()
    } else if higher_better {
        format!("MISSED by {:.1}%", (target - got) / target * 100.0)
    } else {
        format!("MISSED by {:.1}%", (got - target) / target * 100.0)
    }
}

/// 3d: strace -c -f on the server during a 1-connection run.
fn syscalls(ctx: &mut Ctx, servers: &[Server], md: &mut String, summary: &mut Vec<[String; 4]>) {
    let _ = writeln!(
        md,
        "## 2. Syscalls per echo round trip (1 connection)\n\n\
         `strace -f -c -p PID` attached to the running server during a 1 s, 1-connection run; \
         counts divided by every round trip the client completed while attached (tracing slows \
         the server down, which changes no count). Connection set-up and teardown (accept, \
         setsockopt, epoll_ctl, close) add a handful of calls to the whole run, under 0.01 per \
         round trip.\n\n| server | wait | read | write | other | total per round trip | other calls |\n|---|---:|---:|---:|---:|---:|---|"
    );
    let Some(strace) = which("strace") else {
        let _ = writeln!(md, "\nSKIPPED: strace not installed.\n");
        return;
    };
    let mut totals = Vec::new();
    for s in servers {
        let out_file = std::env::temp_dir().join(format!("picosel-strace-{}.txt", s.pid()));
        let _ = std::fs::remove_file(&out_file);
        let mut st = match Command::new(&strace)
            .args(["-f", "-c", "-o"])
            .arg(&out_file)
            .args(["-p", &s.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(_) => continue,
        };
        ctx.note_cmd(
            "strace -f -c -o OUT -p SERVER_PID   # while loadgen --conns 1 --secs 1 runs".into(),
        );
        std::thread::sleep(Duration::from_millis(400));
        let out = ctx.loadgen(s, 1, 0, 1, 1.0, None);
        // SIGINT makes strace detach and write its summary.
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(st.id() as i32).expect("child pid is positive"),
            rustix::process::Signal::INT,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while st.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = st.kill();
        let _ = st.wait();
        let rts = json_num(&out, "all_round_trips").unwrap_or(0.0);
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        let _ = writeln!(ctx.log, "strace of {}:\n{text}", s.name);
        let _ = std::fs::remove_file(&out_file);
        let (mut wait, mut read, mut write, mut other) = (0.0, 0.0, 0.0, 0.0);
        let mut others = Vec::new();
        for l in text.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 5 || f[0].starts_with('%') || f[0].starts_with('-') {
                continue;
            }
            let name = f[f.len() - 1];
            if name == "total" {
                continue;
            }
            // Columns: %time seconds usecs/call calls [errors] syscall.
            let Ok(calls) = f[3].parse::<f64>() else {
                continue;
            };
            match name {
                "epoll_wait" | "epoll_pwait" | "epoll_pwait2" | "poll" | "ppoll" | "select"
                | "pselect6" => wait += calls,
                "read" | "recvfrom" | "readv" | "recvmsg" => read += calls,
                "write" | "sendto" | "writev" | "sendmsg" => write += calls,
                _ => {
                    other += calls;
                    others.push(format!("{name} {calls}"));
                }
            }
        }
        if rts <= 0.0 || text.is_empty() {
            let _ = writeln!(
                md,
                "| {} | n/a | n/a | n/a | n/a | n/a | strace gave no data |",
                s.name
            );
            continue;
        }
        let total = (wait + read + write + other) / rts;
        let _ = writeln!(
            md,
            "| {} | {:.3} | {:.3} | {:.3} | {:.4} | **{:.3}** | {} |",
            s.name,
            wait / rts,
            read / rts,
            write / rts,
            other / rts,
            total,
            others.join(", ")
        );
        if s.name.starts_with("echo_server epoll")
            || (s.name.starts_with("sel_echo epoll")
                && !servers.iter().any(|x| x.name.starts_with("echo_server")))
        {
            summary.push([
                format!("{}: 3 syscalls per round trip", s.name),
                format!("{total:.3}"),
                pass(total <= 3.05, total, 3.0, false),
                String::new(),
            ]);
        }
        totals.push(format!(
            "`{}` {total:.3}",
            s.name.split(' ').next().unwrap_or("")
        ));
    }
    md.push('\n');
    if !totals.is_empty() {
        ctx.readme.push((
            "syscalls per round trip, 1 connection (wait, read, write)".into(),
            totals.join("; "),
        ));
    }
}

/// The instruction budget over the floor: `sel_echo` (the selector alone) and `echo_server`
/// (the event loop and the example's own work).
const SEL_BUDGET: f64 = 30.0;
const LOOP_BUDGET: f64 = 80.0;

/// User-space instructions per round trip, exactly, from callgrind (`icount`, which
/// `bench/callgrind.sh` and CI run too): deterministic, unlike times.
fn instructions(ctx: &mut Ctx, md: &mut String, summary: &mut Vec<[String; 4]>) {
    let _ = writeln!(
        md,
        "## 3. User-space instructions per round trip (callgrind)\n\n\
         Instructions executed in the server's own process (its code, picosel, rustix, libc; not \
         the kernel) per 64-byte round trip on one connection, counted by `valgrind \
         --tool=callgrind` (`bench/callgrind.sh`, which CI runs too): each server is driven \
         through K1 and then, started afresh, K2 round trips, and (Ir(K2) − Ir(K1)) / (K2 − K1) \
         cancels its start-up, the connection's set-up and its shutdown. The client is not \
         counted. Exact, so it shows the cost the abstraction adds even where the timings above \
         cannot resolve it; three runs of each show how exact. For scale: the kernel side of a \
         round trip is the bulk of the ~5 µs of CPU measured above. Budgets: `sel_echo` (the \
         selector alone) at most the floor + {SEL_BUDGET}, `echo_server` (event loop and example) \
         at most the floor + {LOOP_BUDGET}.\n"
    );
    if which("valgrind").is_none() {
        let _ = writeln!(md, "SKIPPED: valgrind not installed.\n");
        return;
    }
    let icount = ctx.o.bin.join("icount");
    let dir = std::env::temp_dir().join(format!("picosel-icount-{}", std::process::id()));
    let mut args: Vec<String> = ["--bin", &ctx.o.bin.display().to_string(), "--runs", "3"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(["--where".into(), "12".into(), "--annotate".into()]);
    args.push(dir.display().to_string());
    if let Some(es) = ctx
        .o
        .icount_echo_server
        .as_ref()
        .or(ctx.o.echo_server.as_ref())
    {
        args.extend(["--echo-server".into(), es.display().to_string()]);
    }
    ctx.note_cmd(format!(
        "bench/callgrind.sh --runs 3 --where 12   # {} {}",
        icount.display(),
        args.join(" ")
    ));
    eprintln!("instructions (callgrind):");
    let out = ctx.run(
        &icount,
        &args,
        &format!("{} {}", icount.display(), args.join(" ")),
    );
    let servers = ["floor_echo", "sel_echo", "echo_server"];
    let summary_line = |name: &str| {
        out.lines()
            .find(|l| json_str(l, "server") == name && l.contains("\"median\""))
    };
    let runs = |name: &str| -> Vec<f64> {
        out.lines()
            .filter(|l| json_str(l, "server") == name && l.contains("\"run\""))
            .filter_map(|l| json_num(l, "per_rt"))
            .collect()
    };
    let floor = summary_line("floor_echo").and_then(|l| json_num(l, "median"));
    let _ = writeln!(
        md,
        "| server | instructions per round trip | over the floor | budget | the 3 runs | spread |\n|---|---:|---:|---:|---|---:|"
    );
    let mut counts = Vec::new();
    for name in servers {
        let Some(l) = summary_line(name) else {
            continue;
        };
        let (Some(m), Some(lo), Some(hi)) = (
            json_num(l, "median"),
            json_num(l, "min"),
            json_num(l, "max"),
        ) else {
            continue;
        };
        let budget = match name {
            "sel_echo" => Some(SEL_BUDGET),
            "echo_server" => Some(LOOP_BUDGET),
            _ => None,
        };
        let over = floor.map(|f| m - f);
        let rs: Vec<String> = runs(name).iter().map(|x| format!("{x:.0}")).collect();
        let _ = writeln!(
            md,
            "| {name} | {m:.0} | {} | {} | {} | {:.0} |",
            if name == "floor_echo" {
                "—".into()
            } else {
                over.map_or("n/a".into(), |o| format!("+{o:.0}"))
            },
            budget.map_or("—".into(), |b| format!("+{b:.0}")),
            rs.join(", "),
            hi - lo
        );
        if let (Some(b), Some(o)) = (budget, over) {
            summary.push([
                format!("{name}: user-space instructions per round trip <= floor + {b:.0}"),
                format!("+{o:.0} ({m:.0} vs {:.0})", m - o),
                if o <= b {
                    "met".into()
                } else {
                    format!("MISSED by {:.0} instructions", o - b)
                },
                String::new(),
            ]);
        }
        counts.push((name, m));
    }
    md.push('\n');
    if let Some(f) = floor {
        let svg = chart::bars(
            "User-space instructions per 64-byte echo round trip (callgrind, exact)",
            "instructions per round trip",
            &[Group {
                title: "1 connection".into(),
                bars: counts
                    .iter()
                    .map(|(n, m)| Bar {
                        label: n.to_string(),
                        value: *m,
                        range: None,
                    })
                    .collect(),
            }],
            &[
                Mark {
                    at: f + SEL_BUDGET,
                    label: format!("floor + {SEL_BUDGET:.0}"),
                },
                Mark {
                    at: f + LOOP_BUDGET,
                    label: format!("floor + {LOOP_BUDGET:.0}"),
                },
            ],
            Some(0.0),
        );
        md.push_str(&ctx.chart("instructions", "Instructions per round trip", &svg));
        md.push('\n');
        ctx.readme.push((
            "user-space instructions per round trip (callgrind, exact): floor / `sel_echo` / `echo_server`".into(),
            counts
                .iter()
                .map(|(_, m)| format!("{m:.0}"))
                .collect::<Vec<_>>()
                .join(" / "),
        ));
    }
    // Where the selector's instructions go, line by line.
    let hot: Vec<&str> = out
        .lines()
        .filter(|l| json_str(l, "where") == "sel_echo")
        .collect();
    if !hot.is_empty() {
        let _ = writeln!(
            md,
            "Where `sel_echo`'s instructions go, by source line (self cost per round trip, the \
             same K2 − K1 difference taken per line of the two profiles; picosel's code is inlined \
             into the server's loop, and counts at its own line):\n\n\
             | per round trip | line | function |\n|---:|---|---|"
        );
        for l in hot {
            let _ = writeln!(
                md,
                "| {} | `{}` | `{}` |",
                num(json_num(l, "per_rt"), 0),
                json_str(l, "line"),
                json_str(l, "fn")
            );
        }
        md.push('\n');
    }
    let span = out
        .lines()
        .find_map(|l| Some(json_num(l, "k2")? - json_num(l, "k1")?))
        .unwrap_or(0.0);
    where_by_function(md, &dir, &servers, span);
    if let Some(ann) = which("callgrind_annotate") {
        for (name, rows) in [("sel_echo", 14), ("echo_server", 14)] {
            let file = dir.join(format!("{name}.cg"));
            if !file.exists() {
                continue;
            }
            let Ok(o) = Command::new(&ann).args(["--auto=no"]).arg(&file).output() else {
                continue;
            };
            let t = String::from_utf8_lossy(&o.stdout);
            let table: Vec<&str> = t
                .lines()
                .skip_while(|l| !l.contains("file:function"))
                .skip(2)
                .take_while(|l| !l.trim().is_empty())
                .take(rows)
                .collect();
            if table.is_empty() {
                continue;
            }
            let _ = writeln!(
                md,
                "`callgrind_annotate` of `{name}`'s K2 − K1 difference (`icount --annotate`): Ir over \
                 the {} extra round trips, by source file (inlined code under its own file) and \
                 function:\n\n```text\n{}\n```\n",
                out.lines()
                    .find_map(|l| {
                        let k1 = json_num(l, "k1")?;
                        let k2 = json_num(l, "k2")?;
                        Some(format!("{:.0}", k2 - k1))
                    })
                    .unwrap_or_default(),
                table.join("\n")
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where each server's instructions go, by function (code inlined into a function counts in
/// it) and, within the function, by the source file the instructions come from: the sums of
/// the K2 − K1 difference profiles that `icount --annotate` wrote, per round trip.
fn where_by_function(md: &mut String, dir: &Path, servers: &[&str], span: f64) {
    if span <= 0.0 {
        return;
    }
    let mut rows = Vec::new();
    for name in servers {
        let Ok(text) = std::fs::read_to_string(dir.join(format!("{name}.cg"))) else {
            continue;
        };
        // (function, file) -> Ir; the difference profile has one `fl=`, `fn=` and
        // `line cost` per row, names written out in full.
        let mut by: Vec<((String, String), u64)> = Vec::new();
        let (mut file, mut func) = (String::new(), String::new());
        for l in text.lines() {
            if let Some(v) = l.strip_prefix("fl=") {
                file = v.to_string();
            } else if let Some(v) = l.strip_prefix("fn=") {
                func = v.to_string();
            } else if let Some(cost) = l
                .split_once(' ')
                .filter(|(line, _)| line.chars().all(|c| c.is_ascii_digit()))
                .and_then(|(_, c)| c.trim().parse::<u64>().ok())
            {
                let key = (func.clone(), file.clone());
                match by.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, c)) => *c += cost,
                    None => by.push((key, cost)),
                }
            }
        }
        // (function, its Ir, its Ir per source file)
        type Costs = Vec<(String, u64)>;
        let mut funcs: Vec<(String, u64, Costs)> = Vec::new();
        for ((func, file), cost) in by {
            match funcs.iter_mut().find(|(f, _, _)| *f == func) {
                Some((_, total, files)) => {
                    *total += cost;
                    files.push((file, cost));
                }
                None => funcs.push((func, cost, vec![(file, cost)])),
            }
        }
        funcs.sort_by_key(|f| std::cmp::Reverse(f.1));
        for (func, total, mut files) in funcs {
            let per = total as f64 / span;
            if per < 0.5 {
                continue;
            }
            files.sort_by_key(|f| std::cmp::Reverse(f.1));
            let from: Vec<String> = files
                .iter()
                .map(|(f, c)| (f, *c as f64 / span))
                .filter(|(_, c)| *c >= 0.5)
                .map(|(f, c)| format!("{} `{f}`", num(Some(c), 0)))
                .collect();
            rows.push(format!(
                "| {name} | `{func}` | {} | {} |",
                num(Some(per), 0),
                from.join(", ")
            ));
        }
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "Where each server's instructions go, by function (code inlined into a function counts \
         in it; functions under one instruction per round trip left out) and, within each, by \
         the source file they come from (the K2 − K1 difference profiles of `icount \
         --annotate`, per round trip):\n\n\
         | server | function | per round trip | from (per round trip, source file) |\n|---|---|---:|---|\n{}\n",
        rows.join("\n")
    );
}

fn micro(ctx: &mut Ctx, sub: &str) -> Vec<String> {
    let m = ctx.o.bin.join("micro");
    ctx.note_cmd(format!("{} {sub}", m.display()));
    eprintln!("micro {sub}");
    let out = ctx.run(&m, &[sub.to_string()], &format!("{} {sub}", m.display()));
    out.lines().map(str::to_string).collect()
}

fn json_str(line: &str, key: &str) -> String {
    let pat = format!("\"{key}\":\"");
    line.find(&pat)
        .map(|i| {
            let rest = &line[i + pat.len()..];
            rest[..rest.find('"').unwrap_or(rest.len())].to_string()
        })
        .unwrap_or_default()
}

fn num(x: Option<f64>, prec: usize) -> String {
    match x {
        Some(v) => format!("{v:.prec$}"),
        None => "n/a".into(),
    }
}

fn idle(ctx: &mut Ctx, md: &mut String, summary: &mut Vec<[String; 4]>) {
    let lines = micro(ctx, "idle");
    let _ = writeln!(
        md,
        "## 4. Wait + dispatch with one active fd and K idle registered fds\n\n\
         One eventfd that is always readable plus K idle eventfds, all registered; one iteration \
         is `select(Some(ZERO))` plus a call through the fn pointer in each ready key. ns per \
         iteration, median of 9 interleaved rounds; `vs K=0` is the median of per-round ratios. \
         `raw-epoll` is the same loop on a bare epoll fd.\n\n\
         | backend | K = 0 | K = 100 | K = 1000 | K = 4000 | K=4000 vs K=0 | vs raw epoll at K=4000 |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    let mut series = Vec::new();
    let mut readme = (None, None);
    for b in ["raw-epoll", "epoll", "poll", "select"] {
        let rows: Vec<&String> = lines
            .iter()
            .filter(|l| json_str(l, "backend") == b)
            .collect();
        let at = |k: f64, key: &str| {
            rows.iter()
                .find(|l| json_num(l, "k") == Some(k))
                .and_then(|l| json_num(l, key))
        };
        let cells: Vec<String> = [0.0, 100.0, 1000.0, 4000.0]
            .iter()
            .map(|&k| match (at(k, "ns"), at(k, "vs_k0")) {
                (Some(ns), Some(r)) if k > 0.0 => format!("{ns:.0} ({r:.2}x)"),
                (Some(ns), _) => format!("{ns:.0}"),
                _ => "n/a (fd >= 1024)".into(),
            })
            .collect();
        let _ = writeln!(
            md,
            "| {b} | {} | {} | {} | {} | {} | {} |",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            num(at(4000.0, "vs_k0"), 3),
            num(at(4000.0, "vs_raw"), 3)
        );
        series.push(Series {
            name: b.into(),
            values: [0.0, 100.0, 1000.0, 4000.0]
                .iter()
                .map(|&k| at(k, "ns"))
                .collect(),
        });
        match b {
            "epoll" => readme.0 = at(4000.0, "vs_k0"),
            "poll" => readme.1 = at(4000.0, "vs_k0"),
            _ => {}
        }
        if b == "epoll" {
            if let Some(r) = at(4000.0, "vs_k0") {
                summary.push([
                    "epoll wait+dispatch, K=4000 idle vs K=0, within 10%".into(),
                    format!("{r:.3}x"),
                    pass(r <= 1.10, r, 1.10, false),
                    String::new(),
                ]);
            }
        }
    }
    let _ = writeln!(
        md,
        "\nepoll stays flat: the kernel keeps the interest list and returns only ready fds, and \
         picosel finds each key from the event's token in O(1). poll and select grow linearly in \
         K: the kernel walks every pollfd / every bit below the highest fd on each call (and \
         picosel rebuilds select's fd sets and scans the results). select cannot take K = 4000 at \
         all: it watches fds below FD_SETSIZE = 1024 only, and picosel refuses larger fds at \
         register time with `Error::FdOutOfRange`.\n"
    );
    let svg = chart::log_lines(
        "Wait + dispatch with one active fd and K idle fds",
        "K idle registered fds",
        "ns per iteration (log)",
        &["0".into(), "100".into(), "1000".into(), "4000".into()],
        &series,
    );
    md.push_str(&ctx.chart("idle", "Wait + dispatch against K idle fds", &svg));
    md.push('\n');
    if let (Some(e), Some(p)) = readme {
        ctx.readme.push((
            "epoll wait + dispatch with 4,000 idle fds registered vs none".into(),
            format!("{e:.3}x (poll: {p:.0}x; select refuses fds >= 1024)"),
        ));
    }
}

fn ops(ctx: &mut Ctx, md: &mut String) {
    let lines = micro(ctx, "ops");
    let _ = writeln!(
        md,
        "## 5. Register / modify / unregister, and timers\n\n\
         1,000 eventfds registered, modified (READ -> READ|WRITE), modified again with new data \
         only, and unregistered, per backend; ns per operation, median of 15 interleaved rounds; \
         `raw-epoll` is bare `epoll_ctl` ADD / MOD / DEL. poll and select make no syscall here \
         (they hand the whole table to the kernel on each wait instead).\n\n\
         | backend | register | modify | modify (data only) | unregister |\n|---|---:|---:|---:|---:|"
    );
    for b in ["raw-epoll", "epoll", "poll", "select"] {
        let cell = |op: &str| {
            lines
                .iter()
                .find(|l| json_str(l, "backend") == b && json_str(l, "op") == op)
                .map(|l| match (json_num(l, "ns"), json_num(l, "vs_raw")) {
                    (Some(ns), Some(r)) if b != "raw-epoll" => format!("{ns:.0} ({r:.2}x raw)"),
                    (Some(ns), _) => format!("{ns:.0}"),
                    _ => "—".into(),
                })
                .unwrap_or_else(|| "n/a".into())
        };
        let _ = writeln!(
            md,
            "| {b} | {} | {} | {} | {} |",
            cell("register"),
            cell("modify"),
            cell("modify_data"),
            cell("unregister")
        );
        if b == "epoll" {
            let r = |op: &str| {
                lines
                    .iter()
                    .find(|l| json_str(l, "backend") == b && json_str(l, "op") == op)
                    .and_then(|l| json_num(l, "vs_raw"))
                    .map_or("n/a".into(), |v| format!("{v:.2}x"))
            };
            ctx.readme.push((
                "register / modify / unregister on epoll vs bare `epoll_ctl`".into(),
                format!("{} / {} / {}", r("register"), r("modify"), r("unregister")),
            ));
        }
    }
    let lines = micro(ctx, "timers");
    let _ = writeln!(
        md,
        "\nTimers (`Timers<fn, 2048>`, an indexed binary heap): 1,000 timers stay armed far in \
         the future; each round adds 1,000 more at scattered deadlines (so 1,000 to 2,000 armed), \
         cancels them, adds 1,000 again and expires them. ns per operation, median of 15 rounds \
         (`expire` includes calling the handler).\n\n| add | cancel | expire |\n|---:|---:|---:|"
    );
    let t = |op: &str| {
        num(
            lines
                .iter()
                .find(|l| json_str(l, "op") == op)
                .and_then(|l| json_num(l, "ns")),
            1,
        )
    };
    let _ = writeln!(md, "| {} | {} | {} |\n", t("add"), t("cancel"), t("expire"));
}

fn reuseport(ctx: &mut Ctx, md: &mut String) {
    let _ = writeln!(
        md,
        "## 6. Scaling across cores: SO_REUSEPORT\n\n\
         `sel_echo --threads T`: T event loops on T threads, each with its own `DefaultSelector` \
         and its own listening socket on one port (SO_REUSEPORT; the kernel spreads connections \
         over them). 64 connections from a 2-thread `loadgen`, {} interleaved rounds.\n",
        ctx.o.rounds
    );
    let sel = ctx.o.bin.join("sel_echo");
    let servers: Vec<Server> = ["1", "2"]
        .iter()
        .filter_map(|t| {
            Server::start(
                &format!("{t} loop{}", if *t == "1" { "" } else { "s" }),
                &sel,
                &[
                    "--backend",
                    "epoll",
                    "--threads",
                    t,
                    "--quiet",
                    "127.0.0.1:0",
                ],
            )
            .map_err(|e| eprintln!("suite: {e}"))
            .ok()
        })
        .collect();
    if servers.len() != 2 {
        let _ = writeln!(md, "SKIPPED: could not start the servers.\n");
        return;
    }
    for s in &servers {
        ctx.note_cmd(s.cmd.clone());
    }
    eprintln!("reuseport:");
    let mut rt = [vec![], vec![]];
    let mut cpu = [vec![], vec![]];
    for r in 0..ctx.o.rounds {
        for i in 0..2 {
            let k = (i + r) % 2;
            let out = ctx.loadgen(&servers[k], 64, 0, 2, ctx.o.secs, None);
            rt[k].push(json_num(&out, "rt_per_sec").unwrap_or(f64::NAN));
            cpu[k].push(json_num(&out, "server_cpu_ns_per_rt").unwrap_or(f64::NAN));
        }
    }
    let ratio: Vec<f64> = (0..ctx.o.rounds).map(|r| rt[1][r] / rt[0][r]).collect();
    let cratio: Vec<f64> = (0..ctx.o.rounds).map(|r| cpu[1][r] / cpu[0][r]).collect();
    let _ = writeln!(
        md,
        "| event loops | round trips/s | vs 1 loop | server CPU ns/round trip | vs 1 loop |\n|---|---:|---:|---:|---:|\n\
         | 1 | {:.0} | 1 | {:.0} | 1 |\n| 2 | {:.0} | {} | {:.0} | {} |\n",
        median(&rt[0]),
        median(&cpu[0]),
        median(&rt[1]),
        fmt_ratio(&ratio),
        median(&cpu[1]),
        fmt_ratio(&cratio)
    );
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let _ = writeln!(
        md,
        "On this {nproc}-CPU machine the client's two threads and the server's loops share the \
         same {nproc} CPUs: the ratio is what a second loop gains in that contest, not the \
         speed-up a server with cores of its own would get. The loops share nothing but the port \
         (no lock, no cross-thread wake-up), so CPU per round trip should not rise with the \
         second loop.\n"
    );
}

fn memory(ctx: &mut Ctx, md: &mut String, hwm: &[(String, Option<u64>)]) {
    let lines = micro(ctx, "sizes");
    let _ = writeln!(
        md,
        "## 7. Memory and binary size\n\n### `size_of` (bytes, x86_64; the selector with a fn pointer as user data, the event loop with a `u64` context and room for 16 timers)\n\n\
         | type | N | epoll | poll | select |\n|---|---:|---:|---:|---:|"
    );
    let size = |ty: &str, n: f64| {
        lines
            .iter()
            .find(|l| json_str(l, "type").starts_with(ty) && json_num(l, "n") == Some(n))
            .and_then(|l| json_num(l, "epoll"))
    };
    if let (Some(a), Some(b)) = (size("Selector", 1024.0), size("EventLoop", 1024.0)) {
        ctx.readme.push((
            "`size_of::<DefaultSelector<fn, 1024>>()`, `DefaultEventLoop<u64, 1024, 16>`".into(),
            format!("{} and {} bytes", thousands(a), thousands(b)),
        ));
    }
    for l in &lines {
        if json_str(l, "bench") != "sizes" {
            continue;
        }
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} |",
            json_str(l, "type"),
            num(json_num(l, "n"), 0),
            num(json_num(l, "epoll"), 0),
            num(json_num(l, "poll"), 0),
            num(json_num(l, "select"), 0)
        );
    }
    let _ = writeln!(
        md,
        "\n### Peak RSS under load (VmHWM, after all the echo runs above: up to 964 connections at once)\n\n| server | VmHWM kB |\n|---|---:|"
    );
    for (name, kb) in hwm {
        let _ = writeln!(md, "| {name} | {} |", num(kb.map(|x| x as f64), 0));
    }
    md.push('\n');
    let _ = writeln!(
        md,
        "### Stripped, size-optimised release binaries (`opt-level = \"z\"`, LTO, `panic = \"abort\"`, stripped)\n"
    );
    match ctx
        .o
        .sizes
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
    {
        Some(t) => {
            let _ = writeln!(md, "| target | binary | bytes |\n|---|---|---:|");
            let mut kb = |target: &str, bin: &str| {
                t.lines()
                    .map(|l| l.split('\t').collect::<Vec<_>>())
                    .find(|f| f.len() == 3 && f[0].starts_with(target) && f[1].starts_with(bin))
                    .and_then(|f| f[2].parse::<f64>().ok())
                    .map_or("n/a".to_string(), |b| format!("{:.0}", b / 1000.0))
            };
            let targets = ["x86_64", "aarch64", "armv7"];
            let row = |bin: &str, kb: &mut dyn FnMut(&str, &str) -> String| {
                targets
                    .iter()
                    .map(|t| kb(t, bin))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            let (es, hello) = (row("echo_server", &mut kb), row("hello", &mut kb));
            ctx.readme.push((
                "stripped, size-optimised `echo_server` vs a std hello-world (x86_64 / aarch64 / armv7)".into(),
                format!("{es} KB vs {hello} KB"),
            ));
            for l in t.lines() {
                let f: Vec<&str> = l.split('\t').collect();
                if f.len() == 3 {
                    let _ = writeln!(md, "| {} | {} | {} |", f[0], f[1], f[2]);
                }
            }
            md.push('\n');
        }
        None => {
            let _ = writeln!(md, "SKIPPED: no size table was passed.\n");
        }
    }
}

/// The test of `tests/virtual_sensor.rs` that runs `periodic_sensor` for seven simulated days.
const WEEK_TEST: &str = "seven_days_of_one_second_readings_are_604800_ticks";
/// Its 1 s ticks: seven days of seconds.
const WEEK_TICKS: f64 = 604_800.0;
/// Blocks of runs, and runs per block: a block's CPU time is read once, from clock ticks.
const WEEK_BLOCKS: usize = 11;
const WEEK_RUNS: usize = 20;

/// CPU time (user + system) of this process's children that have ended and been waited for,
/// in seconds: `/proc/self/stat` cutime + cstime. The kernel sums them in nanoseconds and
/// rounds only when it reports them, so a block of runs read once is exact to one tick.
fn children_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; cutime and cstime are fields 16 and 17.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(13)?.parse::<u64>().ok()? + f.get(14)?.parse::<u64>().ok()?;
    Some(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// Runs the test binary `runs` times with `filter` (exactly one test, or none) and returns
/// the CPU time per run in seconds; `None` when a run fails.
fn cpu_per_run(test: &Path, filter: &str, runs: usize) -> Option<f64> {
    let before = children_cpu()?;
    for _ in 0..runs {
        let ok = Command::new(test)
            .args(["--exact", filter, "--test-threads=1", "-q"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
    }
    Some((children_cpu()? - before) / runs as f64)
}

/// 8: the CPU time of `tests/virtual_sensor.rs`'s week of `periodic_sensor` in virtual time,
/// measured here rather than asserted by a timed test.
fn virtual_week(ctx: &mut Ctx, md: &mut String) {
    let _ = writeln!(
        md,
        "## 8. Virtual time: seven simulated days of `periodic_sensor`\n\n\
         `tests/virtual_sensor.rs` `{WEEK_TEST}`, built in release: the example's own handlers \
         on the simulated backend with a `VirtualClock`, 604,800 readings of a 1 s periodic \
         timer, each turn a wait that finds nothing ready, the clock moved to the deadline, the \
         timer fired and the reading formatted and logged through the example's `Io` seam. CPU \
         time (user + system) of the test process, from the kernel's accounting of ended \
         children, minus the same binary run with no test selected (its start-up); {WEEK_BLOCKS} \
         blocks of {WEEK_RUNS} runs each, the median block and the range.\n"
    );
    let Some(test) = ctx.o.sensor_test.clone() else {
        let _ = writeln!(md, "SKIPPED: tests/virtual_sensor.rs was not built.\n");
        return;
    };
    ctx.note_cmd(format!(
        "{} --exact {WEEK_TEST} --test-threads=1 -q   # {WEEK_BLOCKS} x {WEEK_RUNS} runs, and as many with `--exact none` (start-up)",
        test.display()
    ));
    eprintln!("virtual week: {} x {} runs", WEEK_BLOCKS, WEEK_RUNS);
    let mut week = Vec::new();
    let mut start = Vec::new();
    for _ in 0..WEEK_BLOCKS {
        let (Some(w), Some(s)) = (
            cpu_per_run(&test, WEEK_TEST, WEEK_RUNS),
            cpu_per_run(&test, "none", WEEK_RUNS),
        ) else {
            let _ = writeln!(md, "SKIPPED: a run of {} failed.\n", test.display());
            return;
        };
        week.push(w - s);
        start.push(s);
    }
    let _ = writeln!(
        ctx.log,
        "virtual week, CPU s per run: {week:?}; start-up: {start:?}"
    );
    let ms = |v: f64| format!("{:.1}", v * 1e3);
    let per_tick = |v: f64| format!("{:.0}", v * 1e9 / WEEK_TICKS);
    let (lo, hi) = span(&week).unwrap_or((f64::NAN, f64::NAN));
    let m = median(&week);
    let _ = writeln!(
        md,
        "| the week, CPU ms | range | start-up, CPU ms | ns per simulated tick | range |\n\
         |---:|---:|---:|---:|---:|\n\
         | {} | {}–{} | {} | {} | {}–{} |\n",
        ms(m),
        ms(lo),
        ms(hi),
        ms(median(&start)),
        per_tick(m),
        per_tick(lo),
        per_tick(hi)
    );
    ctx.readme.push((
        "seven simulated days of `periodic_sensor` (604,800 1 s ticks, virtual time, release): CPU"
            .into(),
        format!("{} ms ({} ns per tick)", ms(m), per_tick(m)),
    ));
}

const README_BEGIN: &str =
    "<!-- performance: begin (written by bench/run.sh from the run that wrote BENCHMARKS.md) -->\n";
const README_END: &str = "<!-- performance: end -->\n";

/// Rewrites the summary between the README's performance markers (in its Performance section),
/// from this run's figures; leaves the file alone when the markers are missing.
fn write_readme(path: &Path, rows: &[(String, String)], head: &str) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let (Some(b), Some(e)) = (text.find(README_BEGIN), text.find(README_END)) else {
        return Err(std::io::Error::other("no performance markers"));
    };
    if e < b {
        return Err(std::io::Error::other("performance markers out of order"));
    }
    let date = head
        .lines()
        .find_map(|l| l.strip_prefix("- Date: "))
        .unwrap_or("this run");
    let mut t = format!("{README_BEGIN}From the run of {date}:\n\n| what | result |\n|---|---|\n");
    for (what, result) in rows {
        t.push_str(&format!("| {what} | {result} |\n"));
    }
    let updated = format!("{}{t}{}", &text[..b], &text[e..]);
    std::fs::write(path, updated)
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("suite: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut ctx = Ctx {
        o,
        log: String::new(),
        commands: vec![],
        readme: vec![],
    };
    let mut md = String::new();
    let mut summary: Vec<[String; 4]> = vec![];
    let head = machine();

    // The servers: the floor first (ratios are to it), then picosel's.
    let mut servers = Vec::new();
    let floor = ctx.o.bin.join("floor_echo");
    let sel = ctx.o.bin.join("sel_echo");
    let mut specs: Vec<(String, PathBuf, Vec<&str>)> = vec![(
        "floor_echo (raw epoll)".into(),
        floor,
        vec!["--quiet", "127.0.0.1:0"],
    )];
    if let Some(es) = ctx.o.echo_server.clone() {
        for b in ["epoll", "poll", "select"] {
            specs.push((
                format!("echo_server {b}"),
                es.clone(),
                vec!["--backend", b, "--quiet", "127.0.0.1:0"],
            ));
        }
    }
    specs.push((
        "sel_echo epoll".into(),
        sel.clone(),
        vec!["--backend", "epoll", "--quiet", "127.0.0.1:0"],
    ));
    if ctx.o.echo_server.is_none() {
        for b in ["poll", "select"] {
            specs.push((
                format!("sel_echo {b}"),
                sel.clone(),
                vec!["--backend", b, "--quiet", "127.0.0.1:0"],
            ));
        }
    }
    for (name, prog, args) in &specs {
        match Server::start(name, prog, args) {
            Ok(s) => {
                ctx.note_cmd(s.cmd.clone());
                servers.push(s);
            }
            Err(e) => eprintln!("suite: {e}"),
        }
    }
    if servers.is_empty() || servers[0].name != "floor_echo (raw epoll)" {
        eprintln!("suite: the floor server did not start");
        return ExitCode::from(1);
    }
    echo(&mut ctx, &servers, &mut md, &mut summary);
    let hwm: Vec<(String, Option<u64>)> = servers
        .iter()
        .map(|s| (s.name.clone(), picosel_bench::status_kb(s.pid(), "VmHWM")))
        .collect();
    // Syscall counts: the floor, the event-loop server and the selector-only one, on epoll.
    let traced: Vec<Server> = {
        let keep: Vec<usize> = servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name.contains("epoll"))
            .map(|(i, _)| i)
            .collect();
        let mut v = Vec::new();
        for (i, s) in servers.drain(..).enumerate() {
            if keep.contains(&i) {
                v.push(s);
            }
        }
        v
    };
    syscalls(&mut ctx, &traced, &mut md, &mut summary);
    drop(traced);
    instructions(&mut ctx, &mut md, &mut summary);
    idle(&mut ctx, &mut md, &mut summary);
    ops(&mut ctx, &mut md);
    reuseport(&mut ctx, &mut md);
    memory(&mut ctx, &mut md, &hwm);
    virtual_week(&mut ctx, &mut md);

    let mut doc = String::new();
    let _ = writeln!(
        doc,
        "# Benchmarks\n\nWritten by `bench/run.sh` (do not edit by hand; run it again). The claim under test: \
         picosel costs no more than a hand-written epoll loop, and its memory is fixed at build \
         time and small.\n\n{head}- Run time of the suite: {:.0} s\n",
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        doc,
        "## Targets\n\n| target | measured | status |\n|---|---:|---|"
    );
    for s in &summary {
        let _ = writeln!(doc, "| {} | {} | {} |", s[0], s[1], s[2]);
    }
    doc.push('\n');
    if let Some(n) = ctx
        .o
        .notes
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
    {
        doc.push_str(&n);
        doc.push('\n');
    }
    doc.push_str(&md);
    let _ = writeln!(
        doc,
        "## Reproduce\n\n```sh\nbench/run.sh            # builds everything, runs all of the above, rewrites BENCHMARKS.md\n```\n\n\
         The commands it ran (`$CARGO_TARGET_DIR` defaults to `target/`; ADDR and PIDs vary; \
         every picosel server is started once and driven in turn):\n\n```sh"
    );
    for c in &ctx.commands {
        // Paths as the reader's build would have them.
        let c = match std::env::var("CARGO_TARGET_DIR") {
            Ok(t) if !t.is_empty() => c.replace(&t, "$CARGO_TARGET_DIR"),
            _ => c.clone(),
        };
        let _ = writeln!(doc, "{c}");
    }
    let _ = writeln!(doc, "```");
    if let Err(e) = std::fs::write(&ctx.o.out, &doc) {
        eprintln!("suite: write {}: {e}", ctx.o.out.display());
        return ExitCode::from(1);
    }
    if let Some(p) = &ctx.o.readme {
        if let Err(e) = write_readme(p, &ctx.readme, &head) {
            eprintln!("suite: {}: {e}", p.display());
        }
    }
    if let Some(p) = &ctx.o.log {
        let _ = std::fs::write(p, &ctx.log);
    }
    eprintln!(
        "suite: wrote {} in {:.0} s",
        ctx.o.out.display(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
