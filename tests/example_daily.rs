//! `daily_job`: the job runs at the time of day given, the next run is armed a day later,
//! and the command line is checked. (Setting the wall clock under it is in `clock_jump.rs`,
//! which is opt-in.)

mod support;

use rustix::process::Signal;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::examples::Example;

/// `HH:MM:SS` in UTC, `ahead` from now.
fn utc_time_of_day(ahead: Duration) -> String {
    let t = (SystemTime::now() + ahead)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 86_400;
    format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

/// The seconds in a `next run at ... in N s` line.
fn seconds_until(line: &str) -> f64 {
    line.rsplit(" in ")
        .next()
        .and_then(|s| s.strip_suffix(" s"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no delay in {line:?}"))
}

#[test]
fn the_job_runs_at_its_time_of_day_and_is_armed_again_a_day_later() {
    let at = utc_time_of_day(Duration::from_secs(3));
    let mut ex = Example::spawn("daily_job", &["--at", &at]);
    let first = ex.expect_line("the first arming", |l| l.starts_with("next run at "));
    assert!(first.contains(&format!("T{at}Z")), "{first}");
    let delay = seconds_until(&first);
    assert!((1.0..=4.0).contains(&delay), "{first}");
    let ran = ex.expect_line("the run", |l| l.starts_with("job: ran at "));
    // The timer never fires early: the run is at the time given, or after.
    assert!(
        ran.as_str() >= format!("job: ran at {}", &first[12..32]).as_str(),
        "{ran} / {first}"
    );
    let next = ex.expect_line("the next arming", |l| l.starts_with("next run at "));
    let delay = seconds_until(&next);
    assert!((86_390.0..=86_400.0).contains(&delay), "{next}");
    assert!(next.contains(&format!("T{at}Z")), "{next}");

    ex.signal(Signal::TERM);
    let (status, rest) = ex.finish();
    assert_eq!(status.code(), Some(0), "{}", ex.stderr());
    assert_eq!(
        rest.last().map(String::as_str),
        Some("stopped after 1 runs")
    );
}

#[test]
fn an_offset_moves_the_run_in_utc() {
    // 03:00 at UTC+02:00 is 01:00 UTC.
    let mut ex = Example::spawn("daily_job", &["--at", "3:00", "--utc-offset", "+02:00"]);
    let line = ex.expect_line("the arming", |l| l.starts_with("next run at "));
    assert!(line.contains("T01:00:00Z"), "{line}");
    ex.signal(Signal::INT);
    assert_eq!(ex.finish().0.code(), Some(0), "{}", ex.stderr());
}

#[test]
fn bad_times_and_offsets_are_refused() {
    support::examples::assert_usage_errors(
        "daily_job",
        &[
            &["--at", "24:00"],
            &["--at", "12:60"],
            &["--at", "12"],
            &["--at", "1:2:3:4"],
            &["--at", "+1:00"],
            &["--utc-offset", "02:00"],
            &["--utc-offset", "+24:00"],
            &["--utc-offset", "+01:30:00"],
            &["--at"],
            &["--every", "day"],
        ],
    );
}

#[test]
fn help_states_the_defaults() {
    support::examples::assert_help(
        "daily_job",
        &[
            "(default: 03:00)",
            "(default: +00:00, that is UTC",
            "room for 2 registrations",
            "1 timer",
            "SIGINT, SIGTERM: exit 0",
        ],
    );
}
