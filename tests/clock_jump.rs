//! Setting the wall clock under a running loop: the clock-set watch fires, a wall-clock job is
//! re-armed from the new time, and the loop's monotonic timers are unaffected.
//!
//! Setting the clock is a machine-wide act, so this test is opt-in: it runs only with
//! `PICOSEL_TEST_SET_CLOCK=1` and with `CAP_SYS_TIME`, and otherwise prints
//! `SKIPPED: <reason>`. It is the only test of its binary, so it runs alone. It jumps the clock
//! forward an hour and back again, and restores it from the monotonic clock (which the jumps
//! do not move) even when an assertion fails.

mod support;

use picosel::{
    wall_now, ClockSetWatch, Daily, DefaultEventLoop, Instant, Interest, IoEvent, TimerEvent,
    TimerId,
};
use rustix::process::Signal;
use rustix::time::{clock_gettime, clock_settime, ClockId, Timespec};
use std::time::Duration;
use support::examples::Example;

const HOUR: Duration = Duration::from_secs(3600);

/// Puts the wall clock back where it would be without the test's jumps, when dropped.
struct Restore {
    wall: Duration,
    mono: Instant,
}

impl Restore {
    fn now() -> Restore {
        Restore {
            wall: wall_now(),
            mono: Instant::now(),
        }
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let right = self.wall + (Instant::now() - self.mono);
        if let Err(e) = set_wall(right) {
            eprintln!("could not restore the wall clock: {e}");
        }
    }
}

fn set_wall(to: Duration) -> rustix::io::Result<()> {
    clock_settime(
        ClockId::Realtime,
        Timespec {
            tv_sec: to.as_secs() as i64,
            tv_nsec: i64::from(to.subsec_nanos()) as _,
        },
    )
}

/// Moves the wall clock by `by` forward (`ahead`) or back.
fn jump(ahead: bool, by: Duration) {
    let now = wall_now();
    set_wall(if ahead { now + by } else { now - by }).unwrap();
}

struct Ctx {
    watch: ClockSetWatch,
    job: Daily,
    job_timer: Option<TimerId>,
    /// The job's delay each time it was armed.
    armed: Vec<Duration>,
    clock_sets: u32,
    /// When the monotonic timer fired.
    heartbeat: Option<Instant>,
}
type Loop = DefaultEventLoop<Ctx, 2, 2>;

fn arm_job(ev: &mut Loop) {
    if let Some(t) = ev.context_mut().job_timer.take() {
        ev.cancel_timer(t).unwrap();
    }
    let delay = ev.context().job.delay_after(wall_now());
    let id = ev
        .add_timer(delay, 0, |_, _| panic!("the job is hours away"))
        .unwrap();
    let c = ev.context_mut();
    c.job_timer = Some(id);
    c.armed.push(delay);
}

fn on_clock_set(ev: &mut Loop, _io: IoEvent) {
    if ev.context().watch.clock_was_set().unwrap() {
        ev.context_mut().clock_sets += 1;
        arm_job(ev);
    }
}

fn on_heartbeat(ev: &mut Loop, _t: TimerEvent) {
    ev.context_mut().heartbeat = Some(Instant::now());
}

/// Runs turns until `done` holds.
fn run_until(ev: &mut Loop, done: impl Fn(&Ctx) -> bool) {
    while !done(ev.context()) {
        ev.run_once(None).unwrap();
    }
}

fn skip_reason() -> Option<String> {
    if std::env::var_os("PICOSEL_TEST_SET_CLOCK").is_none_or(|v| v != "1") {
        return Some(
            "set PICOSEL_TEST_SET_CLOCK=1 to run it (it sets this machine's wall clock an hour \
             forward and back)"
                .into(),
        );
    }
    // Setting the clock to what it reads is the cheapest probe of CAP_SYS_TIME.
    let now = clock_gettime(ClockId::Realtime);
    match clock_settime(ClockId::Realtime, now) {
        Ok(()) => None,
        Err(e) => Some(format!(
            "cannot set the wall clock ({e}): CAP_SYS_TIME is needed"
        )),
    }
}

#[test]
fn setting_the_wall_clock_rearms_wall_jobs_and_leaves_monotonic_timers_alone() {
    if let Some(why) = skip_reason() {
        println!("SKIPPED: clock_jump: {why}");
        return;
    }
    let _restore = Restore::now();
    in_process();
    under_the_example();
}

/// The library's pieces in one loop.
fn in_process() {
    // A job two hours from now (to the second), and a monotonic heartbeat 300 ms away.
    let in_two_hours = (wall_now() + 2 * HOUR).as_secs() % 86_400;
    let job = Daily::at(
        (in_two_hours / 3600) as u8,
        (in_two_hours / 60 % 60) as u8,
        (in_two_hours % 60) as u8,
    )
    .unwrap();
    let mut ev = Loop::new(Ctx {
        watch: ClockSetWatch::new().unwrap(),
        job,
        job_timer: None,
        armed: Vec::new(),
        clock_sets: 0,
        heartbeat: None,
    });
    ev.register_with(|c| &c.watch, Interest::READ, 0, on_clock_set)
        .unwrap();
    arm_job(&mut ev);
    let start = Instant::now();
    ev.add_timer(Duration::from_millis(300), 0, on_heartbeat)
        .unwrap();

    jump(true, HOUR);
    run_until(&mut ev, |c| c.clock_sets == 1);
    jump(false, HOUR);
    run_until(&mut ev, |c| c.clock_sets == 2);
    // Nobody set the clock since: the watch is quiet again.
    assert!(!ev.context().watch.clock_was_set().unwrap());

    // Armed at about 2 h; an hour less after the jump forward; 2 h again after the jump back.
    let armed = &ev.context().armed;
    let near = |d: Duration, want: Duration| d <= want && want - d < Duration::from_secs(5);
    assert!(near(armed[0], 2 * HOUR), "{armed:?}");
    assert!(near(armed[1], HOUR), "{armed:?}");
    assert!(near(armed[2], 2 * HOUR), "{armed:?}");

    // The monotonic heartbeat fired on its own clock: not at the jump forward (an hour early
    // on the wall clock), and not an hour late after the jump back.
    run_until(&mut ev, |c| c.heartbeat.is_some());
    let beat = ev.context().heartbeat.expect("the heartbeat fired");
    assert!(beat - start >= Duration::from_millis(300));
    assert!(beat - start < HOUR / 2, "{:?}", beat - start);
}

/// The example re-arms its job when the clock is set under it.
fn under_the_example() {
    let mut ex = Example::spawn("daily_job", &["--at", "03:00"]);
    let first = ex.expect_line("the first arming", |l| l.starts_with("next run at "));
    jump(true, HOUR);
    ex.expect_line("the clock-set line", |l| l.starts_with("clock set: now "));
    let second = ex.expect_line("the new arming", |l| l.starts_with("next run at "));
    jump(false, HOUR);
    ex.expect_line("the clock-set line", |l| l.starts_with("clock set: now "));
    let third = ex.expect_line("the new arming", |l| l.starts_with("next run at "));
    let secs = |l: &str| -> f64 {
        l.rsplit(" in ")
            .next()
            .unwrap()
            .trim_end_matches(" s")
            .parse()
            .unwrap()
    };
    let (a, b, c) = (secs(&first), secs(&second), secs(&third));
    // An hour less after the jump forward (or a day less one hour, past 03:00), back after.
    assert!(
        ((a - b).rem_euclid(86_400.0) - 3600.0).abs() < 5.0,
        "{first} / {second}"
    );
    assert!((a - c).abs() < 5.0, "{first} / {third}");
    ex.signal(Signal::TERM);
    assert_eq!(ex.finish().0.code(), Some(0), "{}", ex.stderr());
}
