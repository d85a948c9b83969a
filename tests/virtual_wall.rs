//! Wall-clock jobs in virtual time: a daily job armed from the loop's wall clock fires at its
//! time of day exactly, day after day, and is re-armed right when the wall clock jumps (as the
//! handler of a `ClockSetWatch` does), while a monotonic timer keeps its own schedule. No real
//! clock is read or set.

use picosel::{Daily, TimerEvent, TimerId, VirtualEventLoop};
use std::time::Duration;

const DAY: u64 = 86_400;
/// 2026-11-29 00:00:00 UTC.
const MIDNIGHT: u64 = 1_795_910_400;

struct Ctx {
    job: Daily,
    timer: Option<TimerId>,
    /// The wall time of each run of the job.
    runs: Vec<Duration>,
    /// The monotonic time of each heartbeat.
    beats: Vec<Duration>,
}
type Loop = VirtualEventLoop<Ctx, 1, 2>;

/// What `examples/daily_job.rs` does: cancel, compute from the loop's wall clock, arm.
fn arm(ev: &mut Loop) {
    if let Some(old) = ev.context_mut().timer.take() {
        ev.cancel_timer(old).unwrap();
    }
    let delay = ev.context().job.delay_after(ev.wall());
    let id = ev.add_timer(delay, 0, on_time).unwrap();
    ev.context_mut().timer = Some(id);
}

fn on_time(ev: &mut Loop, _t: TimerEvent) {
    let wall = ev.wall();
    ev.context_mut().runs.push(wall);
    ev.context_mut().timer = None;
    arm(ev);
}

fn on_beat(ev: &mut Loop, _t: TimerEvent) {
    let t = ev.now() - picosel::Instant::ZERO;
    ev.context_mut().beats.push(t);
}

fn start(wall: Duration, at: (u8, u8, u8), offset: i32) -> Loop {
    let job = Daily::at(at.0, at.1, at.2)
        .unwrap()
        .with_utc_offset(offset)
        .unwrap();
    let mut ev = Loop::new(Ctx {
        job,
        timer: None,
        runs: Vec::new(),
        beats: Vec::new(),
    });
    ev.clock_mut().set_wall(wall);
    arm(&mut ev);
    ev
}

/// Runs turns until `n` runs of the job.
fn run_until_runs(ev: &mut Loop, n: usize) {
    while ev.context().runs.len() < n {
        ev.run_once(None).unwrap();
    }
}

#[test]
fn a_daily_job_fires_at_its_time_of_day_exactly_every_day() {
    // Booted at 02:59:30 UTC; the job is 03:00 at UTC+01:00, that is 02:00 UTC: tomorrow.
    let mut ev = start(
        Duration::from_secs(MIDNIGHT + 2 * 3600 + 59 * 60 + 30),
        (3, 0, 0),
        3600,
    );
    run_until_runs(&mut ev, 30);
    let runs = &ev.context().runs;
    for (day, wall) in runs.iter().enumerate() {
        let want = MIDNIGHT + (day as u64 + 1) * DAY + 2 * 3600;
        assert_eq!(*wall, Duration::from_secs(want), "run {day}");
    }
}

#[test]
fn a_wall_clock_jump_rearms_the_job_and_leaves_monotonic_timers_alone() {
    // A board without an RTC boots at the epoch; the job is at 03:00 UTC.
    let mut ev = start(Duration::ZERO, (3, 0, 0), 0);
    ev.add_periodic(Duration::from_secs(600), 0, on_beat)
        .unwrap();
    // An hour later NTP sets the clock to 2026-11-29 01:30 UTC: the watch's handler re-arms.
    while ev.now() - picosel::Instant::ZERO < Duration::from_secs(3600) {
        ev.run_once(None).unwrap();
    }
    assert!(ev.context().runs.is_empty(), "03:00 of 1970 not reached");
    let jumped = Duration::from_secs(MIDNIGHT + 5400);
    ev.clock_mut().set_wall(jumped);
    arm(&mut ev);
    // The job now runs at 03:00 on 2026-11-29, 90 minutes on, not at 03:00 of 1970 (two
    // hours on by the old wall clock), and daily after that.
    run_until_runs(&mut ev, 3);
    let runs = &ev.context().runs;
    assert_eq!(runs[0], Duration::from_secs(MIDNIGHT + 3 * 3600));
    assert_eq!(runs[1], Duration::from_secs(MIDNIGHT + DAY + 3 * 3600));
    assert_eq!(runs[2], Duration::from_secs(MIDNIGHT + 2 * DAY + 3 * 3600));
    // The heartbeat kept its 10-minute grid on the monotonic clock through the jump.
    let beats = &ev.context().beats;
    // 1 h + 90 min + 2 days of monotonic time, one beat every 10 minutes.
    assert_eq!(beats.len(), (3600 + 5400 + 2 * DAY as usize) / 600);
    for (k, t) in beats.iter().enumerate() {
        assert_eq!(*t, Duration::from_secs(600 * (k as u64 + 1)), "beat {k}");
    }
}
