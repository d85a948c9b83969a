//! Zero heap allocations in the event loop (CONFORMANCE 26): creating a loop, then thousands
//! of register / dispatch / modify / unregister cycles with one-shot, cancelled and periodic
//! timers, raised signals and waker wakes, on each backend, allocate nothing; nor do the
//! wall-clock sources, the child watcher, the virtual clock and the simulated backend (the
//! notifier and the watchdog are counted in `tests/notify.rs`, the selector on the simulated
//! backend in `tests/no_alloc.rs`). A counting global
//! allocator counts the allocations made by this thread while armed.

use picosel::backend::Backend;
use picosel::{EventLoop, Interest, IoEvent, TimerEvent};
#[cfg(feature = "signal")]
use picosel::{Signal, SignalEvent};
use rustix::fd::BorrowedFd;
use rustix::pipe::PipeFlags;
use std::time::Duration;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{allocations, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[derive(Default)]
struct Ctx {
    reads: u64,
    timers: u64,
    missed: u64,
    signals: u64,
    wakes: u64,
}

type L<B> = EventLoop<B, Ctx, 16, 8>;

#[allow(unsafe_code)]
fn on_read<B: Backend>(ev: &mut L<B>, io: IoEvent) {
    // SAFETY: the test keeps the pipe open across every dispatch.
    let fd = unsafe { BorrowedFd::borrow_raw(io.fd) };
    let mut buf = [0u8; 16];
    let n = rustix::io::read(fd, &mut buf).unwrap();
    ev.context_mut().reads += n as u64;
}

fn on_timer<B: Backend>(ev: &mut L<B>, t: TimerEvent) {
    ev.context_mut().timers += 1;
    ev.context_mut().missed += u64::from(t.missed);
}

fn never<B: Backend>(_ev: &mut L<B>, _t: TimerEvent) {
    panic!("a cancelled timer fired");
}

#[cfg(feature = "signal")]
fn on_signal<B: Backend>(ev: &mut L<B>, s: SignalEvent) {
    assert_eq!(s.signal, Signal::USR1);
    ev.context_mut().signals += 1;
}

fn on_wake<B: Backend>(ev: &mut L<B>) {
    ev.context_mut().wakes += 1;
}

#[cfg(feature = "signal")]
#[allow(unsafe_code)]
fn raise(sig: Signal) {
    // SAFETY: raise(3) signals the calling thread, which blocks `sig` (add_signal did).
    assert_eq!(unsafe { libc::raise(sig.as_raw()) }, 0);
}

const CYCLES: u64 = 2_000;

fn loop_cycles<B: Backend>() {
    let (r, w) = rustix::pipe::pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC).unwrap();
    let mut totals = Ctx::default();
    // rustix locates the vDSO once per process, on the first clock read. Where the C library
    // cannot tell it (qemu-user gives 32-bit ARM programs no vDSO), it reads /proc/self/auxv,
    // into a Vec when rustix's `alloc` feature is on (here through `std`): one allocation per
    // process, outside the loop, so it is made before counting starts.
    let _ = picosel::Instant::now();
    let n = allocations(|| {
        let mut ev = L::<B>::new(Ctx::default());
        #[cfg(feature = "signal")]
        ev.add_signal(Signal::USR1, on_signal::<B>).unwrap();
        let waker = ev.waker(on_wake::<B>).unwrap();
        let periodic = ev
            .add_periodic(Duration::from_micros(100), 0, on_timer::<B>)
            .unwrap();
        for i in 0..CYCLES {
            ev.register(&r, Interest::READ, i as usize, on_read::<B>)
                .unwrap();
            rustix::io::write(&w, b"x").unwrap();
            ev.add_timer(Duration::ZERO, 0, on_timer::<B>).unwrap();
            let gone = ev
                .add_timer(Duration::from_secs(60), 0, never::<B>)
                .unwrap();
            ev.cancel_timer(gone).unwrap();
            #[cfg(feature = "signal")]
            if i % 10 == 0 {
                raise(Signal::USR1);
            }
            waker.wake().unwrap();
            waker.wake().unwrap();
            // The read, the zero timer, the wake (and maybe the periodic and the signal).
            let mut ran = 0;
            while ran < 3 {
                ran += ev.run_once(Some(Duration::from_millis(10))).unwrap();
            }
            ev.modify(&r, Interest::READ | Interest::PRIORITY).unwrap();
            ev.unregister(&r).unwrap();
        }
        // Collect any signal still pending.
        while cfg!(feature = "signal") && ev.context_mut().signals < CYCLES / 10 {
            ev.run_once(Some(Duration::from_millis(10))).unwrap();
        }
        ev.cancel_timer(periodic).unwrap();
        let c = ev.context_mut();
        totals = Ctx {
            reads: c.reads,
            timers: c.timers,
            missed: c.missed,
            signals: c.signals,
            wakes: c.wakes,
        };
        drop(ev);
        drop(waker);
    });
    assert_eq!(n, 0, "{} allocations on {}", n, B::NAME);
    // The work really happened.
    assert_eq!(totals.reads, CYCLES);
    assert!(
        totals.timers > CYCLES,
        "zero timers plus some periodic ticks"
    );
    if cfg!(feature = "signal") {
        assert_eq!(totals.signals, CYCLES / 10);
    }
    assert_eq!(totals.wakes, CYCLES);
    let _ = totals.missed;
}

#[test]
fn epoll_loop_allocates_nothing() {
    loop_cycles::<picosel::Epoll>();
}

#[test]
fn poll_loop_allocates_nothing() {
    loop_cycles::<picosel::Poll>();
}

#[test]
fn select_loop_allocates_nothing() {
    loop_cycles::<picosel::Select>();
}

fn on_clock_set(ev: &mut picosel::DefaultEventLoop<picosel::ClockSetWatch, 2, 1>, _io: IoEvent) {
    assert!(!ev.context().clock_was_set().unwrap());
}

type Reaper = picosel::DefaultEventLoop<(picosel::ChildWatch, Option<picosel::ChildExit>), 1, 0>;

fn on_child_end(ev: &mut Reaper, io: IoEvent) {
    if let Some(exit) = ev.context_mut().0.reap().unwrap() {
        ev.context_mut().1 = Some(exit);
        ev.unregister(io.fd).unwrap();
        ev.stop();
    }
}

/// The child watcher: opening a pidfd, registering it, the dispatch of the child's end and
/// the reap allocate nothing (the spawn is std's, before counting starts).
#[test]
fn watching_and_reaping_a_child_allocates_nothing() {
    // The watch reaps it, not std's `Child`, which is only a pid here.
    #[allow(clippy::zombie_processes)]
    let pid = std::process::Command::new("true").spawn().unwrap().id();
    let mut exit = None;
    let n = allocations(|| {
        let watch = picosel::ChildWatch::open(pid).unwrap();
        let mut ev = Reaper::new((watch, None));
        ev.register_with(|c| &c.0, Interest::READ, 0, on_child_end)
            .unwrap();
        ev.run().unwrap();
        exit = ev.context().1;
    });
    assert_eq!(n, 0);
    assert_eq!(exit.map(|e| (e.pid, e.status.success())), Some((pid, true)));
}

/// The wall-clock sources: making a clock-set watch, registering it, asking it, and computing
/// daily deadlines allocate nothing.
#[test]
fn wall_clock_sources_allocate_nothing() {
    let _ = picosel::wall_now();
    let n = allocations(|| {
        let watch = picosel::ClockSetWatch::new().unwrap();
        let mut ev = picosel::DefaultEventLoop::<_, 2, 1>::new(watch);
        ev.register_with(|w| w, Interest::READ, 0, on_clock_set)
            .unwrap();
        let job = picosel::Daily::at(3, 0, 0)
            .unwrap()
            .with_utc_offset(3600)
            .unwrap();
        for _ in 0..100 {
            let delay = job.delay_after(picosel::wall_now());
            assert!(delay > Duration::ZERO);
            assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 0);
            assert!(!ev.context().clock_was_set().unwrap());
        }
    });
    assert_eq!(n, 0);
}

/// The counter does count: a `Vec` allocates.
#[test]
fn the_counter_counts() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 64]))) >= 1);
}

type Sim = picosel::SimEventLoop<Ctx, 16, 8>;

fn sim_read(ev: &mut Sim, io: IoEvent) {
    ev.context_mut().reads += 1;
    ev.sim_mut()
        .clear_ready(io.fd, picosel::Ready::READ)
        .unwrap();
}

fn sim_tick(ev: &mut Sim, t: TimerEvent) {
    ev.context_mut().timers += 1;
    ev.context_mut().missed += u64::from(t.missed);
}

/// The simulated backend and the virtual clock allocate nothing either: making a loop,
/// registrations, injected readiness and errors, auto-advanced and stalled time, a deadlock.
#[test]
fn sim_loop_in_virtual_time_allocates_nothing() {
    let n = allocations(|| {
        let mut ev = Sim::new(Ctx::default());
        ev.add_periodic(Duration::from_millis(10), 0, sim_tick)
            .unwrap();
        for round in 0..2_000 {
            let fd = 3 + round % 8;
            ev.register(fd, Interest::READ, 0, sim_read).unwrap();
            ev.sim_mut().set_ready(fd, picosel::Ready::READ).unwrap();
            if round % 7 == 0 {
                ev.sim_mut().fail_next_wait(picosel::Errno::INTR);
            }
            ev.run_once(None).unwrap();
            ev.run_once(None).unwrap();
            ev.unregister(fd).unwrap();
            if round % 100 == 0 {
                ev.clock_mut().advance(Duration::from_millis(105));
            }
        }
        let id = ev.add_timer(Duration::ZERO, 0, sim_tick).unwrap();
        ev.cancel_timer(id).unwrap();
        let totals = ev.context();
        assert!(totals.reads > 0 && totals.timers > 0 && totals.missed > 0);
        let mut idle = Sim::new(Ctx::default());
        assert_eq!(idle.run(), Err(picosel::Error::Deadlock));
    });
    assert_eq!(n, 0);
}
