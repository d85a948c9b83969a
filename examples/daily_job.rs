//! A job at a time of day ("every day at 03:00"), right even when the wall clock jumps: a
//! board without a real-time clock boots in 1970 and jumps to today at the first NTP sync.
//!
//! ```sh
//! cargo run --example daily_job                              # 03:00 UTC
//! cargo run --example daily_job -- --at 21:30 --utc-offset +02:00
//! ```
//!
//! The job (here: one line, `job: ran at WALL_CLOCK`) runs on a monotonic timer armed for the
//! next occurrence, computed from the wall clock ([`picosel::Daily`]). A
//! [`picosel::ClockSetWatch`] wakes the loop whenever the wall clock is set, and the timer is
//! armed again from the new time: `clock set: ...`, then a new `next run ...` line. Each
//! `next run` line gives the occurrence in UTC and the seconds until it. A heartbeat on the
//! loop's ordinary monotonic timers would be unaffected by the jump; only the wall-clock job
//! moves.
//!
//! SIGINT and SIGTERM exit 0; SIGHUP has nothing to reload and says so (or exits 0 when the
//! terminal it came from is gone). `--help` lists the options and defaults.

mod common;

use picosel::{
    block_signals, ClockSetWatch, Daily, DefaultEventLoop, Interest, IoEvent, Signal, SignalEvent,
    TimerEvent, TimerId,
};
use std::process::ExitCode;

const USAGE: common::Usage = common::Usage {
    synopsis: "daily_job [--at HH:MM[:SS]] [--utc-offset +HH:MM]",
    details: "
  --at HH:MM[:SS]       the time of day the job runs (default: 03:00)
  --utc-offset +HH:MM   the offset from UTC that time is read at, -HH:MM west of UTC
                        (default: +00:00, that is UTC; no time zones, no daylight saving)
  -h, --help            print this help and exit

The event loop: epoll, room for 2 registrations (the clock-set watch, the signalfd), 1 timer.
When the wall clock is set (NTP, date -s), the job's timer is armed again from the new time.
SIGHUP: nothing to reload, says so and keeps running; but when the terminal it was started
from is gone, exit 0 as for SIGTERM.
SIGINT, SIGTERM: exit 0.",
};

/// The clock-set watch and the signalfd; the job's one timer.
type Loop = DefaultEventLoop<Job, 2, 1>;

struct Job {
    when: Daily,
    watch: ClockSetWatch,
    timer: Option<TimerId>,
    runs: u64,
}

/// One or two digits.
fn two_digits(p: &str) -> Option<u8> {
    let ok = !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| p.parse().ok()).flatten()
}

/// `HH:MM` or `HH:MM:SS` (the range is checked by `Daily::at`).
fn parse_time_of_day(s: &str) -> Option<(u8, u8, u8)> {
    let mut parts = s.split(':').map(two_digits);
    let (h, m) = (parts.next()??, parts.next()??);
    let sec = match parts.next() {
        None => 0,
        Some(sec) => sec?,
    };
    parts.next().is_none().then_some((h, m, sec))
}

/// `+HH:MM` or `-HH:MM`, in seconds east of UTC (the range is checked by `Daily`).
fn parse_offset(s: &str) -> Option<i32> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = s[1..].split_once(':')?;
    let (h, m) = (two_digits(h)?, two_digits(m)?);
    (m < 60).then(|| sign * (i32::from(h) * 3600 + i32::from(m) * 60))
}

/// Arms the job's timer for the next occurrence after the wall clock's now, replacing the
/// armed one.
fn arm(lp: &mut Loop) {
    if let Some(old) = lp.context_mut().timer.take() {
        let _ = lp.cancel_timer(old);
    }
    let now = lp.wall();
    let when = lp.context().when;
    let delay = when.delay_after(now);
    match lp.add_timer(delay, 0, on_time) {
        Ok(id) => {
            lp.context_mut().timer = Some(id);
            println!(
                "next run at {} in {} s",
                common::utc_seconds(when.next_after(now)),
                delay.as_secs_f64().ceil()
            );
        }
        Err(e) => {
            eprintln!("daily_job: cannot arm the timer: {e}");
            lp.stop();
        }
    }
}

fn on_time(lp: &mut Loop, _t: TimerEvent) {
    lp.context_mut().timer = None;
    lp.context_mut().runs += 1;
    println!("job: ran at {}", common::utc_seconds(lp.wall()));
    arm(lp);
}

fn on_clock_set(lp: &mut Loop, _io: IoEvent) {
    match lp.context().watch.clock_was_set() {
        Ok(true) => {
            println!("clock set: now {}", common::utc_seconds(lp.wall()));
            arm(lp);
        }
        Ok(false) => {}
        Err(e) => eprintln!("daily_job: clock-set watch: {e}"),
    }
}

fn on_signal(lp: &mut Loop, ev: SignalEvent) {
    if ev.signal == Signal::HUP && common::hangup() == common::Hangup::Reload {
        common::nothing_to_reload();
    } else {
        lp.stop();
    }
}

fn main() -> ExitCode {
    // Signals are taken only through the loop's signalfd, never asynchronously.
    if let Err(e) = block_signals(&[Signal::HUP, Signal::INT, Signal::TERM]) {
        eprintln!("daily_job: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }
    let (mut at, mut offset) = ((3, 0, 0), 0);
    let mut args = common::Args::new(&USAGE);
    while let Some(arg) = args.next() {
        match arg {
            common::Arg::Opt(opt) => match opt.as_str() {
                "--at" => {
                    let v = args.text(&opt);
                    at = parse_time_of_day(&v).unwrap_or_else(|| {
                        USAGE.not_accepted(&opt, &v, "HH:MM or HH:MM:SS, 00:00 to 23:59:59")
                    });
                }
                "--utc-offset" => {
                    let v = args.text(&opt);
                    offset = parse_offset(&v).unwrap_or_else(|| {
                        USAGE.not_accepted(&opt, &v, "+HH:MM or -HH:MM, less than 24 hours")
                    });
                }
                _ => args.unknown_option(&opt),
            },
            common::Arg::Operand(a) => args.unexpected_argument(&a),
        }
    }
    let when = match Daily::at(at.0, at.1, at.2).and_then(|d| d.with_utc_offset(offset)) {
        Ok(d) => d,
        Err(e) => USAGE.error(&format!("--at / --utc-offset: {e}")),
    };
    let watch = match ClockSetWatch::new() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("daily_job: cannot watch the wall clock: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut lp = Loop::new(Job {
        when,
        watch,
        timer: None,
        runs: 0,
    });
    let setup = lp
        .register_with(|j| &j.watch, Interest::READ, 0, on_clock_set)
        .and_then(|_| {
            [Signal::HUP, Signal::INT, Signal::TERM]
                .into_iter()
                .try_for_each(|sig| lp.add_signal(sig, on_signal))
        });
    if let Err(e) = setup {
        eprintln!("daily_job: cannot set up the event loop: {e}");
        return ExitCode::FAILURE;
    }
    arm(&mut lp);
    if let Err(e) = lp.run() {
        eprintln!("daily_job: event loop: {e}");
        return ExitCode::FAILURE;
    }
    common::last_words(format_args!("stopped after {} runs", lp.context().runs));
    ExitCode::SUCCESS
}
