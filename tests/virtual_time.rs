//! Virtual time: the production `EventLoop` driven by a `VirtualClock`, on the simulated
//! backend (readiness and kernel errors the test injects) and on epoll with real pipes.
//! Determinism (one scenario, run twice, the same full trace), the test's deadlock as an error,
//! auto-advance and manual time, and no real-time blocking while a virtual deadline is pending.

use picosel::{
    Errno, Error, Instant, Interest, IoEvent, Mode, Ready, SimEventLoop, TimerEvent,
    VirtualEventLoop,
};
use rustix::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

/// One handler call: when, which handler, and what it was told.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    /// Time, fd, readiness, data.
    Io(Instant, i32, Ready, usize),
    /// Time, data, missed periods.
    Timer(Instant, usize, u32),
}

#[derive(Default)]
struct Trace {
    calls: Vec<Call>,
    /// Timers the handlers still arm: a backoff schedule, data = attempt.
    retries: usize,
}

type Sim = SimEventLoop<Trace, 8, 4>;

fn on_io(ev: &mut Sim, io: IoEvent) {
    let call = Call::Io(ev.now(), io.fd, io.ready, io.data);
    ev.context_mut().calls.push(call);
    // Read everything there is: the readiness goes away, as a drained pipe's would.
    ev.sim_mut().clear_ready(io.fd, Ready::READ).unwrap();
    if io.ready.is_hup() {
        ev.unregister(io.fd).unwrap();
    }
}

fn on_timer(ev: &mut Sim, t: TimerEvent) {
    let call = Call::Timer(ev.now(), t.data, t.missed);
    ev.context_mut().calls.push(call);
    // A retry with exponential backoff: 10 ms, 20 ms, 40 ms, ...
    if t.data >= 100 && ev.context().retries < 6 {
        ev.context_mut().retries += 1;
        let n = ev.context().retries;
        ev.add_timer(MS * 10 * (1 << n), 100 + n, on_timer).unwrap();
    }
}

/// A scripted scenario: three fds, a periodic timer, a backoff chain, a stall, an interrupted
/// wait, a refused registration and a hang-up. Returns the full trace.
fn scenario() -> Vec<Call> {
    let mut ev = Sim::new(Trace::default());
    ev.register(3, Interest::READ, 30, on_io).unwrap();
    ev.register_mode(4, Interest::READ | Interest::WRITE, Mode::Edge, 40, on_io)
        .unwrap();
    ev.register_mode(5, Interest::READ, Mode::Oneshot, 50, on_io)
        .unwrap();
    ev.sim_mut().fail_next_add(Errno::MFILE);
    assert_eq!(
        ev.register(6, Interest::READ, 60, on_io),
        Err(Error::Os(Errno::MFILE))
    );
    ev.add_periodic(MS * 25, 1, on_timer).unwrap();
    ev.add_timer(MS * 10, 100, on_timer).unwrap();

    ev.sim_mut().set_ready(3, Ready::READ).unwrap();
    ev.sim_mut().set_ready(4, Ready::WRITE).unwrap();
    ev.sim_mut().set_ready(5, Ready::READ).unwrap();
    assert_eq!(ev.run_once(None), Ok(3)); // all three, in slot order, at time zero
    for _ in 0..5 {
        ev.run_once(None).unwrap(); // timers only: the edge and oneshot fds stay quiet
    }
    ev.sim_mut().fail_next_wait(Errno::INTR);
    ev.run_once(None).unwrap();
    ev.clock_mut().advance(MS * 60); // stalled: the periodic timer misses two periods
    ev.sim_mut().set_ready(4, Ready::READ).unwrap(); // a new edge
    ev.sim_mut().set_ready(3, Ready::HUP).unwrap();
    for _ in 0..10 {
        ev.run_once(None).unwrap();
    }
    ev.context_mut().calls.clone()
}

#[test]
fn the_same_script_gives_the_same_trace_every_run() {
    let first = scenario();
    assert_eq!(first, scenario());
    // And it is the trace the script describes.
    let at = |ms: u32| Instant::ZERO + MS * ms;
    let io = |t, fd, ready, data| Call::Io(at(t), fd, ready, data);
    let timer = |t, data, missed| Call::Timer(at(t), data, missed);
    assert_eq!(
        first[..16],
        [
            // All three fds, in slot order, at time zero.
            io(0, 3, Ready::READ, 30),
            io(0, 4, Ready::WRITE, 40),
            io(0, 5, Ready::READ, 50),
            // Timers only, each on its deadline: the periodic 25 ms one and the backoff
            // (10 ms, then 20 and 40 ms more); the edge and oneshot fds stay quiet.
            timer(10, 100, 0),
            timer(25, 1, 0),
            timer(30, 101, 0),
            timer(50, 1, 0),
            timer(70, 102, 0),
            // The interrupted wait found nothing: time moved to the next deadline.
            timer(75, 1, 0),
            // After the 60 ms stall (now 135 ms): the fds first (the hang-up, the new edge
            // with all the fd's readiness), then the periodic timer, 35 ms late, one period
            // (at 100 ms) skipped.
            io(135, 3, Ready::READ | Ready::HUP | Ready::READ_CLOSED, 30),
            io(135, 4, Ready::READ | Ready::WRITE, 40),
            timer(135, 1, 1),
            // Two timers due at once fire in one turn; then the grid goes on.
            timer(150, 103, 0),
            timer(150, 1, 0),
            timer(175, 1, 0),
            timer(200, 1, 0),
        ]
    );
    assert_eq!(first.len(), 22);
}

fn stop(ev: &mut Sim, _t: TimerEvent) {
    ev.stop();
}

#[test]
fn nothing_ready_and_no_timer_is_the_deadlock_error() {
    let mut ev = Sim::new(Trace::default());
    assert_eq!(ev.run(), Err(Error::Deadlock));
    ev.register(3, Interest::READ, 0, on_io).unwrap();
    assert_eq!(ev.run_once(None), Err(Error::Deadlock));
    // Nothing changed: the registration is there, and the loop runs on once something is ready.
    ev.sim_mut().set_ready(3, Ready::READ).unwrap();
    assert_eq!(ev.run_once(None), Ok(1));
    // A bounded wait is no deadlock: the time passes.
    assert_eq!(ev.run_once(Some(MS * 5)), Ok(0));
    assert_eq!(ev.now(), Instant::ZERO + MS * 5);
    // With an armed timer, `run` ends where the timer stops it.
    ev.add_timer(Duration::from_secs(86_400), 0, stop).unwrap();
    assert_eq!(ev.run(), Ok(()));
    assert_eq!(
        ev.now(),
        Instant::ZERO + MS * 5 + Duration::from_secs(86_400)
    );
    assert_eq!(ev.run(), Err(Error::Deadlock));
}

#[test]
fn without_auto_advance_only_the_test_moves_time() {
    let mut ev = Sim::new(Trace::default());
    ev.clock_mut().set_auto_advance(false);
    ev.add_timer(MS * 10, 7, on_timer).unwrap();
    // The loop would have to wait for time only the test moves: the deadlock, and nothing
    // fired or changed.
    assert_eq!(ev.run_once(None), Err(Error::Deadlock));
    assert_eq!((ev.now(), ev.timer_count()), (Instant::ZERO, 1));
    ev.clock_mut().advance(MS * 9);
    assert_eq!(ev.run_once(Some(Duration::ZERO)), Ok(0)); // never early
    ev.clock_mut().advance(MS);
    assert_eq!(ev.run_once(Some(Duration::ZERO)), Ok(1));
    assert_eq!(
        ev.context().calls,
        [Call::Timer(Instant::ZERO + MS * 10, 7, 0)]
    );
}

#[test]
fn the_simulation_shows_what_is_registered_and_refuses_as_told() {
    let mut ev = Sim::new(Trace::default());
    ev.register(3, Interest::READ, 0, on_io).unwrap();
    ev.register_mode(4, Interest::WRITE, Mode::Oneshot, 0, on_io)
        .unwrap();
    for errno in [Errno::MFILE, Errno::NOMEM, Errno::PERM] {
        ev.sim_mut().fail_next_add(errno);
        assert_eq!(
            ev.register(5, Interest::READ, 0, on_io),
            Err(Error::Os(errno))
        );
    }
    ev.modify(3, Interest::READ | Interest::WRITE).unwrap();
    let all: Vec<_> = ev.sim().registrations().collect();
    assert_eq!(
        all,
        [
            (3, Interest::READ | Interest::WRITE, Mode::Level),
            (4, Interest::WRITE, Mode::Oneshot)
        ]
    );
    ev.sim_mut().set_ready(4, Ready::ERROR).unwrap();
    assert_eq!(ev.run_once(None), Ok(1));
    assert_eq!(ev.run_once(None), Err(Error::Deadlock)); // oneshot: reported once
    ev.modify(4, Interest::WRITE).unwrap(); // re-armed, still in error
    assert_eq!(ev.run_once(None), Ok(1));
    assert_eq!(
        ev.sim_mut().set_ready(9, Ready::READ),
        Err(Error::NotRegistered)
    );
}

// Real fds in virtual time.

struct Pipes {
    r: OwnedFd,
    bytes: usize,
    fired: Vec<Instant>,
}

type Real = VirtualEventLoop<Pipes, 4, 2>;

fn drain(ev: &mut Real, _io: IoEvent) {
    let mut buf = [0u8; 64];
    let n = rustix::io::read(&ev.context().r, &mut buf).unwrap();
    ev.context_mut().bytes += n;
}

fn hourly(ev: &mut Real, t: TimerEvent) {
    let now = ev.now();
    ev.context_mut().fired.push(now);
    if t.data == 1 {
        ev.stop();
    }
}

#[test]
fn real_pipes_on_epoll_never_block_while_a_virtual_deadline_is_pending() {
    let (r, w) = rustix::pipe::pipe().unwrap();
    let fd = r.as_raw_fd();
    let mut ev = Real::new(Pipes {
        r,
        bytes: 0,
        fired: Vec::new(),
    });
    ev.register(fd, Interest::READ, 0, drain).unwrap();
    ev.add_periodic(Duration::from_secs(3600), 0, hourly)
        .unwrap();
    ev.add_timer(Duration::from_secs(30 * 24 * 3600 + 1800), 1, hourly)
        .unwrap();
    rustix::io::write(&w, b"hello").unwrap();
    // Ready data comes first, at virtual time zero.
    assert_eq!(ev.run_once(None), Ok(1));
    assert_eq!((ev.context().bytes, ev.now()), (5, Instant::ZERO));
    // Then a month of hourly timers: epoll is only ever polled, so this returns at once
    // instead of after a month; each timer fires on its deadline.
    ev.run().unwrap();
    let month = Instant::ZERO + Duration::from_secs(30 * 24 * 3600 + 1800);
    assert_eq!(ev.now(), month);
    let fired = &ev.context().fired;
    assert_eq!(fired.len(), 30 * 24 + 1);
    let on_grid = fired[..30 * 24]
        .iter()
        .enumerate()
        .all(|(k, &t)| t == Instant::ZERO + Duration::from_secs(3600 * (k as u64 + 1)));
    assert!(on_grid);
    // Data written now is read at once, time unmoved.
    rustix::io::write(&w, b"!").unwrap();
    assert_eq!(ev.run_once(None), Ok(1));
    assert_eq!((ev.context().bytes, ev.now()), (6, month));
}
