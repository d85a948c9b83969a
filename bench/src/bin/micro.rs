//! In-process micro-benchmarks of picosel's selector, one subcommand each, one JSON line per
//! result. Every figure is the median over interleaved rounds (all variants measured once per
//! round, in turn), so a burst of load from elsewhere on the machine hits all of them alike.
//!
//! ```text
//! micro idle   # wait + dispatch with one active fd and K idle registered fds, per backend
//! micro ops    # register / modify / unregister, ns per operation, per backend
//! micro timers # timer add / cancel / expire with 1,000 timers armed
//! micro sizes  # size_of of the selector for N = 16, 64, 256, 1024, per backend
//! ```

use picosel::backend::Backend;
use picosel::{Epoll, Interest, Poll, Select, Selector};
use picosel_bench::median;
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::event::{eventfd, EventfdFlags};
use rustix::fd::{AsFd, OwnedFd};
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The user data of every registration: a handler, as the seed's callbacks.
type Handler = fn(&mut u64);

fn handler(n: &mut u64) {
    *n = black_box(*n + 1);
}

const KS: [usize; 4] = [0, 100, 1000, 4000];
const IDLE_CAP: usize = 4096 + 16;
const ROUNDS: usize = 9;
const SAMPLE: Duration = Duration::from_millis(25);

fn efd() -> OwnedFd {
    match eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("micro: eventfd: {e}");
            std::process::exit(1)
        }
    }
}

/// Runs `step` in batches until `SAMPLE` has passed; ns per step.
fn sample(mut step: impl FnMut()) -> f64 {
    let t = Instant::now();
    let mut n = 0u64;
    loop {
        for _ in 0..32 {
            step();
        }
        n += 32;
        let e = t.elapsed();
        if e >= SAMPLE {
            return e.as_nanos() as f64 / n as f64;
        }
    }
}

/// One selector per K, each holding the active fd and the first K idle fds.
struct IdleSet<B: Backend> {
    sels: Vec<Option<Box<Selector<B, Handler, IDLE_CAP>>>>,
}

impl<B: Backend> IdleSet<B> {
    fn new(active: &OwnedFd, idle: &[OwnedFd]) -> Self {
        let mut sels = Vec::new();
        for &k in &KS {
            let mut sel: Box<Selector<B, Handler, IDLE_CAP>> = Box::new(Selector::new());
            let mut ok = sel.register(active, Interest::READ, handler).is_ok();
            for fd in idle.iter().take(k) {
                ok &= sel.register(fd, Interest::READ, handler).is_ok();
            }
            // select refuses fds >= FD_SETSIZE at register time: no row for that K.
            sels.push(ok.then_some(sel));
        }
        IdleSet { sels }
    }

    fn measure(&mut self, i: usize) -> f64 {
        let Some(Some(sel)) = self.sels.get_mut(i) else {
            return f64::NAN;
        };
        let mut count = 0u64;
        sample(|| {
            if let Ok(events) = sel.select(Some(Duration::ZERO)) {
                for (key, _ready) in events {
                    (key.data())(&mut count);
                }
            }
        })
    }
}

/// The floor for this benchmark: the same wait and dispatch on a raw epoll fd.
struct RawEpoll {
    eps: Vec<OwnedFd>,
    events: Vec<Event>,
    handlers: Vec<Handler>,
}

impl RawEpoll {
    fn new(active: &OwnedFd, idle: &[OwnedFd]) -> Option<Self> {
        let mut eps = Vec::new();
        for &k in &KS {
            let ep = epoll::create(CreateFlags::CLOEXEC).ok()?;
            epoll::add(&ep, active, EventData::new_u64(0), EventFlags::IN).ok()?;
            for (i, fd) in idle.iter().take(k).enumerate() {
                epoll::add(&ep, fd, EventData::new_u64(i as u64 + 1), EventFlags::IN).ok()?;
            }
            eps.push(ep);
        }
        let empty = Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0),
        };
        Some(RawEpoll {
            eps,
            events: vec![empty; IDLE_CAP],
            handlers: vec![handler as Handler; IDLE_CAP],
        })
    }

    fn measure(&mut self, i: usize) -> f64 {
        let Some(ep) = self.eps.get(i) else {
            return f64::NAN;
        };
        let (events, handlers) = (&mut self.events, &self.handlers);
        let mut count = 0u64;
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        sample(|| {
            if let Ok(n) = epoll::wait(ep, &mut events[..], Some(&zero)) {
                for ev in &events[..n] {
                    if let Some(h) = handlers.get(ev.data.u64() as usize) {
                        h(&mut count);
                    }
                }
            }
        })
    }
}

fn idle() -> ExitCode {
    picosel_bench::raise_nofile();
    let active = efd();
    // Level-triggered and never read: the active fd is ready on every wait.
    if rustix::io::write(&active, &1u64.to_ne_bytes()).is_err() {
        return ExitCode::from(1);
    }
    let idle: Vec<OwnedFd> = (0..KS[KS.len() - 1]).map(|_| efd()).collect();
    let mut ep = IdleSet::<Epoll>::new(&active, &idle);
    let mut po = IdleSet::<Poll>::new(&active, &idle);
    let mut se = IdleSet::<Select>::new(&active, &idle);
    let Some(mut raw) = RawEpoll::new(&active, &idle) else {
        eprintln!("micro: raw epoll setup failed");
        return ExitCode::from(1);
    };
    // ns[variant][k][round]
    let mut ns = vec![vec![Vec::new(); KS.len()]; 4];
    for _ in 0..ROUNDS {
        for ki in 0..KS.len() {
            let sample = [
                raw.measure(ki),
                ep.measure(ki),
                po.measure(ki),
                se.measure(ki),
            ];
            for (v, x) in ns.iter_mut().zip(sample) {
                v[ki].push(x);
            }
        }
    }
    let names = ["raw-epoll", "epoll", "poll", "select"];
    for (v, name) in names.iter().enumerate() {
        for (ki, &k) in KS.iter().enumerate() {
            // Ratio to K = 0 of the same round, then the median of those ratios.
            let ratios: Vec<f64> = (0..ROUNDS).map(|r| ns[v][ki][r] / ns[v][0][r]).collect();
            let vs_raw: Vec<f64> = (0..ROUNDS).map(|r| ns[v][ki][r] / ns[0][ki][r]).collect();
            let med = median(&ns[v][ki]);
            if med.is_nan() {
                println!(
                    "{{\"bench\":\"idle\",\"backend\":\"{name}\",\"k\":{k},\"ns\":null,\"vs_k0\":null,\"vs_raw\":null}}"
                );
            } else {
                println!(
                    "{{\"bench\":\"idle\",\"backend\":\"{name}\",\"k\":{k},\"ns\":{med:.1},\"vs_k0\":{:.3},\"vs_raw\":{:.3}}}",
                    median(&ratios),
                    median(&vs_raw)
                );
            }
        }
    }
    ExitCode::SUCCESS
}

const OPS_M: usize = 1000;
const OPS_ROUNDS: usize = 15;

/// ns per op for: register, modify (interest change), modify (data only), unregister.
fn ops_round<B: Backend>(sel: &mut Selector<B, Handler, 1024>, fds: &[OwnedFd]) -> [f64; 4] {
    let per = |t: Instant| t.elapsed().as_nanos() as f64 / fds.len() as f64;
    let t = Instant::now();
    for fd in fds {
        let _ = black_box(sel.register(fd, Interest::READ, handler));
    }
    let reg = per(t);
    let t = Instant::now();
    for fd in fds {
        let _ = black_box(sel.modify(fd, Interest::READ | Interest::WRITE, handler));
    }
    let modi = per(t);
    fn other(n: &mut u64) {
        *n = black_box(*n + 2);
    }
    let t = Instant::now();
    for fd in fds {
        let _ = black_box(sel.modify(fd, Interest::READ | Interest::WRITE, other));
    }
    let data = per(t);
    let t = Instant::now();
    for fd in fds {
        let _ = black_box(sel.unregister(fd));
    }
    [reg, modi, data, per(t)]
}

fn raw_ops_round(ep: &OwnedFd, fds: &[OwnedFd]) -> [f64; 4] {
    let per = |t: Instant| t.elapsed().as_nanos() as f64 / fds.len() as f64;
    let t = Instant::now();
    for (i, fd) in fds.iter().enumerate() {
        let _ = epoll::add(ep, fd.as_fd(), EventData::new_u64(i as u64), EventFlags::IN);
    }
    let reg = per(t);
    let t = Instant::now();
    for (i, fd) in fds.iter().enumerate() {
        let _ = epoll::modify(
            ep,
            fd.as_fd(),
            EventData::new_u64(i as u64),
            EventFlags::IN | EventFlags::OUT,
        );
    }
    let modi = per(t);
    let t = Instant::now();
    for fd in fds {
        let _ = epoll::delete(ep, fd.as_fd());
    }
    [reg, modi, f64::NAN, per(t)]
}

fn ops() -> ExitCode {
    // Fresh process: the fds are small numbers, so select can take all of them.
    let fds: Vec<OwnedFd> = (0..OPS_M).map(|_| efd()).collect();
    let Ok(ep) = epoll::create(CreateFlags::CLOEXEC) else {
        return ExitCode::from(1);
    };
    let mut s_ep: Box<Selector<Epoll, Handler, 1024>> = Box::new(Selector::new());
    let mut s_po: Box<Selector<Poll, Handler, 1024>> = Box::new(Selector::new());
    let mut s_se: Box<Selector<Select, Handler, 1024>> = Box::new(Selector::new());
    let mut r: Vec<Vec<[f64; 4]>> = vec![Vec::new(); 4];
    for _ in 0..OPS_ROUNDS {
        r[0].push(raw_ops_round(&ep, &fds));
        r[1].push(ops_round(&mut s_ep, &fds));
        r[2].push(ops_round(&mut s_po, &fds));
        r[3].push(ops_round(&mut s_se, &fds));
    }
    let names = ["raw-epoll", "epoll", "poll", "select"];
    let ops = ["register", "modify", "modify_data", "unregister"];
    for (v, name) in names.iter().enumerate() {
        for (o, op) in ops.iter().enumerate() {
            let xs: Vec<f64> = r[v].iter().map(|a| a[o]).collect();
            let med = median(&xs);
            let ratio: Vec<f64> = (0..OPS_ROUNDS).map(|i| r[v][i][o] / r[0][i][o]).collect();
            let fmt = |x: f64, p: usize| {
                if x.is_nan() {
                    "null".to_string()
                } else {
                    format!("{x:.p$}")
                }
            };
            println!(
                "{{\"bench\":\"ops\",\"backend\":\"{name}\",\"op\":\"{op}\",\"ns\":{},\"vs_raw\":{}}}",
                fmt(med, 1),
                fmt(median(&ratio), 3)
            );
        }
    }
    ExitCode::SUCCESS
}

fn sizes() -> ExitCode {
    macro_rules! row {
        ($n:literal) => {
            println!(
                "{{\"bench\":\"sizes\",\"type\":\"Selector<_, fn, {}>\",\"n\":{},\"epoll\":{},\"poll\":{},\"select\":{}}}",
                $n,
                $n,
                size_of::<Selector<Epoll, Handler, $n>>(),
                size_of::<Selector<Poll, Handler, $n>>(),
                size_of::<Selector<Select, Handler, $n>>()
            );
        };
    }
    row!(16);
    row!(64);
    row!(256);
    row!(1024);
    // The event loop with 16 timers and a one-word context.
    macro_rules! lrow {
        ($n:literal) => {
            println!(
                "{{\"bench\":\"sizes\",\"type\":\"EventLoop<_, u64, {}, 16>\",\"n\":{},\"epoll\":{},\"poll\":{},\"select\":{}}}",
                $n,
                $n,
                size_of::<picosel::EventLoop<Epoll, u64, $n, 16>>(),
                size_of::<picosel::EventLoop<Poll, u64, $n, 16>>(),
                size_of::<picosel::EventLoop<Select, u64, $n, 16>>()
            );
        };
    }
    lrow!(16);
    lrow!(64);
    lrow!(256);
    lrow!(1024);
    ExitCode::SUCCESS
}

const TIMER_BASE: usize = 1000;
const TIMER_BATCH: usize = 1000;
const TIMER_ROUNDS: usize = 15;

/// A small LCG: deadlines spread over the table in an order that is not sorted.
fn lcg(x: &mut u64) -> u64 {
    *x = x
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *x >> 33
}

/// ns per add, per cancel and per expire, each with 1,000 other timers armed.
fn timers() -> ExitCode {
    use picosel::{Instant as PInstant, Timers};
    let mut t: Box<Timers<Handler, 2048>> = Box::new(Timers::new());
    let mut seed = 42u64;
    // 1,000 timers far in the future: they stay armed throughout.
    const FAR: u64 = 1 << 50;
    for _ in 0..TIMER_BASE {
        if t.add(PInstant::from_nanos(FAR + lcg(&mut seed)), None, handler)
            .is_err()
        {
            return ExitCode::from(1);
        }
    }
    let mut ids = Vec::with_capacity(TIMER_BATCH);
    let mut r: Vec<[f64; 3]> = Vec::new();
    for _ in 0..TIMER_ROUNDS {
        ids.clear();
        let per = |t: Instant| t.elapsed().as_nanos() as f64 / TIMER_BATCH as f64;
        let t0 = Instant::now();
        for _ in 0..TIMER_BATCH {
            if let Ok(id) = t.add(
                PInstant::from_nanos(1_000_000 + lcg(&mut seed)),
                None,
                handler,
            ) {
                ids.push(id);
            }
        }
        let add = per(t0);
        let t0 = Instant::now();
        for id in ids.drain(..) {
            let _ = black_box(t.cancel(id));
        }
        let cancel = per(t0);
        for _ in 0..TIMER_BATCH {
            let _ = t.add(
                PInstant::from_nanos(1_000_000 + lcg(&mut seed)),
                None,
                handler,
            );
        }
        let now = PInstant::from_nanos(FAR - 1);
        let mut count = 0u64;
        let t0 = Instant::now();
        while let Some(e) = t.expire(now) {
            (e.data)(&mut count);
        }
        let expire = per(t0);
        r.push([add, cancel, expire]);
    }
    for (i, op) in ["add", "cancel", "expire"].iter().enumerate() {
        let xs: Vec<f64> = r.iter().map(|a| a[i]).collect();
        println!(
            "{{\"bench\":\"timers\",\"op\":\"{op}\",\"armed\":{TIMER_BASE},\"ns\":{:.1}}}",
            median(&xs)
        );
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("idle") => idle(),
        Some("ops") => ops(),
        Some("sizes") => sizes(),
        Some("timers") => timers(),
        _ => {
            eprintln!("usage: micro idle|ops|timers|sizes");
            ExitCode::from(2)
        }
    }
}
