//! `examples/periodic_sensor.rs`'s own handlers, in virtual time: the example's `Loop` alias is
//! picosel's simulated backend with a virtual clock in a test build, and its sensor and output
//! are behind its `Io` seam, so this test runs seven days of 1 s readings (604,800 ticks) at
//! once, with exact counts, and a stalled loop's `missed` periods exactly.

#[path = "../examples/periodic_sensor.rs"]
#[allow(dead_code)]
mod sensor;

use picosel::Instant;
use sensor::{Daemon, Io, Loop, Settings};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

const PERIOD: Duration = Duration::from_secs(1);
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the daemon printed, as numbers.
#[derive(Debug, Default, PartialEq)]
struct Log {
    readings: u64,
    missed: u64,
    /// `t` of the last reading.
    last_t: Duration,
    /// Readings whose `t` was not on the 1 s grid.
    off_grid: u64,
    /// The readings that reported missed periods: (t, missed).
    late: Vec<(Duration, u32)>,
}

/// A sensor that always reads 42000, and an output that keeps the log.
struct Script(Rc<RefCell<Log>>);

impl Io for Script {
    fn read(&mut self, _path: &Path) -> std::io::Result<String> {
        Ok("42000".to_string())
    }

    fn reading(&mut self, t: Duration, value: &str, missed: u32) {
        assert_eq!(value, "42000");
        let mut log = self.0.borrow_mut();
        log.readings += 1;
        log.missed += u64::from(missed);
        log.last_t = t;
        if t.subsec_nanos() != 0 {
            log.off_grid += 1;
        }
        if missed != 0 {
            log.late.push((t, missed));
        }
    }
}

/// The example's daemon on its test loop, timer started as `main` starts it.
fn daemon() -> (Loop, Rc<RefCell<Log>>) {
    let log = Rc::new(RefCell::new(Log::default()));
    let settings = Settings {
        path: PathBuf::from("/sensor"),
        period: PERIOD,
    };
    let d = Daemon::new(
        settings.clone(),
        None,
        settings,
        Box::new(Script(log.clone())),
    );
    let mut lp = Loop::new(d);
    sensor::start_timer(&mut lp).unwrap();
    (lp, log)
}

/// Turns until the loop's clock reaches `end`; each turn finds nothing ready, moves the clock
/// to the timer's deadline and fires it.
fn run_until(lp: &mut Loop, end: Instant) {
    while lp.now() < end {
        lp.run_once(None).unwrap();
    }
}

#[test]
fn seven_days_of_one_second_readings_are_604800_ticks() {
    let (mut lp, log) = daemon();
    run_until(&mut lp, Instant::ZERO + WEEK);
    assert_eq!(lp.now(), Instant::ZERO + WEEK);
    assert_eq!(lp.context().readings, 604_800);
    let log = log.borrow();
    assert_eq!(
        (log.readings, log.missed, log.last_t, log.off_grid),
        (604_800, 0, WEEK, 0)
    );
    // Every wait was a poll: the loop never asked the backend to block.
    assert_eq!(lp.sim().last_timeout(), Some(Duration::ZERO));
    assert_eq!(lp.sim().waits(), 604_800);
}

#[test]
fn a_loop_stalled_for_ten_and_a_half_periods_misses_exactly_nine() {
    let (mut lp, log) = daemon();
    // Three days on time, then the loop is held (a slow handler, a stopped process) for
    // 10.5 periods just after a reading: the deadlines at +1 s ... +10 s pass. The next turn
    // fires once, late, for +1 s and counts the nine it skipped; the grid then goes on at +11 s.
    let stall_at = Instant::ZERO + Duration::from_secs(3 * 24 * 3600);
    run_until(&mut lp, stall_at);
    lp.clock_mut().advance(PERIOD * 21 / 2);
    assert_eq!(lp.run_once(None), Ok(1));
    assert_eq!(lp.now(), stall_at + PERIOD * 21 / 2); // the late turn did not wait
    run_until(&mut lp, Instant::ZERO + WEEK);
    let log = log.borrow();
    let late_t = stall_at + PERIOD * 21 / 2 - Instant::ZERO;
    assert_eq!(log.late, [(late_t, 9)]);
    assert_eq!((log.readings, log.missed), (604_800 - 9, 9));
    // Back on the grid: the last reading is exactly at the end of the week.
    assert_eq!((log.last_t, log.off_grid), (WEEK, 1));
}
