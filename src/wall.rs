//! The wall clock: reading it, noticing when it is set, and daily schedules on it.
//!
//! The loop's timers run on `CLOCK_MONOTONIC`, which never jumps. A daemon that must act at a
//! time of day ("every day at 03:00") needs the wall clock (`CLOCK_REALTIME`) instead, and on a
//! board without a real-time clock that clock starts in 1970 and jumps at the first NTP sync.
//! So a wall-clock job is a monotonic timer armed for "the next 03:00, from the wall clock read
//! now", re-armed whenever the wall clock is set: [`Daily`] computes the delay (a pure
//! function), and [`ClockSetWatch`] is the fd that becomes readable when the clock is set
//! (`timerfd_create(2)` with `TFD_TIMER_CANCEL_ON_SET`). Monotonic timers need none of this.
//!
//! There is no time-zone database without `std` (nor on most firmware images): a schedule is
//! in UTC or at a fixed offset the user gives.

use crate::error::{Error, Result};
use core::time::Duration;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::time::{
    clock_gettime, timerfd_create, timerfd_settime, ClockId, Itimerspec, TimerfdClockId,
    TimerfdFlags, TimerfdTimerFlags, Timespec,
};

const DAY: u64 = 86_400;
/// A day, for offsets from UTC.
const DAY_SECS: i32 = 86_400;
const NANOS: u128 = 1_000_000_000;

/// Reads the wall clock (`CLOCK_REALTIME`): the time since the Unix epoch, 1970-01-01 00:00
/// UTC. A clock set before 1970 reads as zero.
///
/// ```
/// let now = picosel::wall_now();
/// let std_now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
/// assert!(std_now.abs_diff(now) < std::time::Duration::from_secs(60));
/// ```
#[doc(alias = "CLOCK_REALTIME")]
#[must_use]
pub fn wall_now() -> Duration {
    let ts = clock_gettime(ClockId::Realtime);
    match (u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
        (Ok(secs), Ok(nanos)) if nanos < 1_000_000_000 => Duration::new(secs, nanos),
        _ => Duration::ZERO,
    }
}

/// A time of day, every day, in UTC or at a fixed offset from it: when a wall-clock job runs.
///
/// [`delay_after`](Daily::delay_after) gives how long a monotonic timer must wait from a wall
/// time to the next occurrence; re-arm that timer when [`ClockSetWatch`] reports that the
/// clock was set, and after each run.
///
/// # Examples
///
/// ```
/// use picosel::Daily;
/// use std::time::Duration;
///
/// // 03:00 in UTC+02:00, that is 01:00 UTC.
/// let job = Daily::at(3, 0, 0)?.with_utc_offset(2 * 3600)?;
/// // Read at 1970-01-01 00:30 UTC (a board without an RTC, before NTP):
/// let wall = Duration::from_secs(30 * 60);
/// assert_eq!(job.next_after(wall), Duration::from_secs(3600));
/// assert_eq!(job.delay_after(wall), Duration::from_secs(30 * 60));
/// # Ok::<(), picosel::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Daily {
    /// Seconds after local midnight, below 86,400.
    second_of_day: u32,
    /// Seconds east of UTC, strictly between -86,400 and 86,400.
    utc_offset: i32,
}

impl Daily {
    /// Every day at `hour:minute:second`, in UTC until [`with_utc_offset`](Self::with_utc_offset).
    ///
    /// # Errors
    /// [`Error::InvalidTime`] unless `hour < 24`, `minute < 60` and `second < 60` (a leap
    /// second is not a time a schedule can name: the kernel's clock repeats 23:59:59 instead).
    ///
    /// ```
    /// use picosel::{Daily, Error};
    /// assert!(Daily::at(23, 59, 59).is_ok());
    /// assert_eq!(Daily::at(24, 0, 0), Err(Error::InvalidTime));
    /// ```
    pub const fn at(hour: u8, minute: u8, second: u8) -> Result<Daily> {
        if hour >= 24 || minute >= 60 || second >= 60 {
            return Err(Error::InvalidTime);
        }
        let second_of_day = hour as u32 * 3600 + minute as u32 * 60 + second as u32;
        Ok(Daily {
            second_of_day,
            utc_offset: 0,
        })
    }

    /// The same time of day, read at `seconds_east` of UTC (`3600` for UTC+01:00, `-5 * 3600`
    /// for UTC-05:00). Daylight-saving changes are the user's to apply (there is no time-zone
    /// database here): set the new offset when they happen.
    ///
    /// # Errors
    /// [`Error::InvalidTime`] unless the offset is less than a day either way.
    ///
    /// ```
    /// use picosel::{Daily, Error};
    /// assert!(Daily::at(3, 0, 0)?.with_utc_offset(-(9 * 3600 + 30 * 60)).is_ok());
    /// assert_eq!(Daily::at(3, 0, 0)?.with_utc_offset(86_400), Err(Error::InvalidTime));
    /// # Ok::<(), picosel::Error>(())
    /// ```
    pub const fn with_utc_offset(self, seconds_east: i32) -> Result<Daily> {
        if seconds_east <= -DAY_SECS || seconds_east >= DAY_SECS {
            return Err(Error::InvalidTime);
        }
        Ok(Daily {
            second_of_day: self.second_of_day,
            utc_offset: seconds_east,
        })
    }

    /// The time of day, in seconds after local midnight.
    ///
    /// ```
    /// assert_eq!(picosel::Daily::at(3, 0, 1)?.second_of_day(), 10_801);
    /// # Ok::<(), picosel::Error>(())
    /// ```
    #[must_use]
    pub const fn second_of_day(&self) -> u32 {
        self.second_of_day
    }

    /// The offset from UTC, in seconds east.
    ///
    /// ```
    /// assert_eq!(picosel::Daily::at(3, 0, 0)?.utc_offset(), 0);
    /// # Ok::<(), picosel::Error>(())
    /// ```
    #[must_use]
    pub const fn utc_offset(&self) -> i32 {
        self.utc_offset
    }

    /// The first occurrence strictly after `wall` (time since the Unix epoch, as
    /// [`wall_now`] reads it). It is never more than a day after `wall`; at the end of
    /// `Duration`'s range it saturates.
    ///
    /// ```
    /// use picosel::Daily;
    /// use std::time::Duration;
    /// let noon = Daily::at(12, 0, 0)?;
    /// let day = Duration::from_secs(86_400);
    /// // Exactly at noon, the next one is tomorrow's.
    /// assert_eq!(noon.next_after(day / 2), day + day / 2);
    /// # Ok::<(), picosel::Error>(())
    /// ```
    #[must_use]
    pub fn next_after(&self, wall: Duration) -> Duration {
        // Local time in nanoseconds, shifted by a day so that a negative offset at the epoch
        // stays positive: `shift` is in (0, 2 days), and all arithmetic is on u128, which
        // cannot overflow here (Duration's range is below 2^94 ns).
        let day = u128::from(DAY) * NANOS;
        let shift = u128::from(DAY.saturating_add_signed(i64::from(self.utc_offset))) * NANOS;
        let local = wall.as_nanos() + shift;
        let midnight = local - local % day;
        let mut next = midnight + u128::from(self.second_of_day) * NANOS;
        if next <= local {
            next += day;
        }
        // `next > local >= shift`, so the subtraction cannot underflow.
        let utc = next - shift;
        match u64::try_from(utc / NANOS) {
            Ok(secs) => Duration::new(secs, (utc % NANOS) as u32),
            Err(_) => Duration::MAX,
        }
    }

    /// How long from `wall` to the next occurrence: what to arm a monotonic timer with. Never
    /// zero, at most a day.
    ///
    /// ```
    /// use picosel::Daily;
    /// use std::time::Duration;
    /// let three = Daily::at(3, 0, 0)?;
    /// assert_eq!(three.delay_after(Duration::from_secs(2 * 3600)), Duration::from_secs(3600));
    /// # Ok::<(), picosel::Error>(())
    /// ```
    #[must_use]
    pub fn delay_after(&self, wall: Duration) -> Duration {
        self.next_after(wall).saturating_sub(wall)
    }
}

/// An fd that becomes readable when the wall clock is set: by `settimeofday`, `clock_settime`,
/// NTP stepping the clock, a user's `date -s`. Register it for [`READ`](crate::Interest::READ)
/// like any fd, and in its handler call [`clock_was_set`](Self::clock_was_set) (which
/// consumes the event and re-arms the watch), then re-arm the wall-clock timers. It takes
/// one registration of the loop's `N`.
///
/// It is a timerfd on `CLOCK_REALTIME` armed at the end of time with
/// `TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET`: the kernel cancels such a timer whenever the
/// clock changes discontinuously and a read then fails with `ECANCELED` (`timerfd_create(2)`).
/// The clock's gradual slewing by NTP (adjtime) is not a jump and is not reported; nor is
/// anything on the monotonic clock, on which the loop's own timers run.
///
/// # Examples
///
/// ```
/// use picosel::{ClockSetWatch, DefaultEventLoop, Interest, IoEvent};
///
/// struct Ctx {
///     watch: ClockSetWatch,
/// }
/// type Loop = DefaultEventLoop<Ctx, 4, 1>;
///
/// fn on_clock_set(ev: &mut Loop, _io: IoEvent) {
///     if ev.context().watch.clock_was_set().unwrap_or(false) {
///         // re-arm the wall-clock timers here, from picosel::wall_now()
///     }
/// }
///
/// let mut ev = Loop::new(Ctx { watch: ClockSetWatch::new()? });
/// ev.register_with(|c| &c.watch, Interest::READ, 0, on_clock_set)?;
/// // Nobody set the clock: nothing is ready.
/// assert_eq!(ev.run_once(Some(std::time::Duration::ZERO))?, 0);
/// assert_eq!(ev.context().watch.clock_was_set(), Ok(false));
/// # Ok::<(), picosel::Error>(())
/// ```
#[derive(Debug)]
pub struct ClockSetWatch {
    fd: OwnedFd,
}

/// The farthest expiry the kernel takes; never reached, so the timer only ever ends by being
/// cancelled. A kernel or C library limited to a 32-bit `time_t` refuses it (EOVERFLOW from
/// rustix's 32-bit fallback, EINVAL from the kernel): then 2038, the farthest it can hold.
const END_OF_TIME: [i64; 2] = [i64::MAX, i32::MAX as i64];

impl ClockSetWatch {
    /// A new watch, armed.
    ///
    /// # Errors
    /// The kernel's refusal of `timerfd_create` or `timerfd_settime` (EMFILE, ENOMEM; ENOSYS
    /// or EINVAL on a kernel before 3.0, which lacks `TFD_TIMER_CANCEL_ON_SET`).
    ///
    /// ```
    /// let watch = picosel::ClockSetWatch::new()?;
    /// assert_eq!(watch.clock_was_set(), Ok(false));
    /// # Ok::<(), picosel::Error>(())
    /// ```
    #[doc(alias = "TFD_TIMER_CANCEL_ON_SET")]
    pub fn new() -> Result<ClockSetWatch> {
        let fd = timerfd_create(
            TimerfdClockId::Realtime,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )?;
        let watch = ClockSetWatch { fd };
        watch.arm()?;
        Ok(watch)
    }

    fn arm(&self) -> Result<()> {
        let mut last = Errno::INVAL;
        for secs in END_OF_TIME {
            let spec = Itimerspec {
                it_interval: Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: Timespec {
                    tv_sec: secs,
                    tv_nsec: 0,
                },
            };
            let flags = TimerfdTimerFlags::ABSTIME | TimerfdTimerFlags::CANCEL_ON_SET;
            match timerfd_settime(&self.fd, flags, &spec) {
                Ok(_) => return Ok(()),
                Err(e @ (Errno::OVERFLOW | Errno::INVAL)) => last = e,
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.into())
    }

    /// Whether the wall clock was set since the watch was made or last asked; when it was, the
    /// event is consumed and the watch re-armed. Never blocks.
    ///
    /// # Errors
    /// The kernel's refusal to re-arm the watch (then ask again: it stays readable).
    ///
    /// ```
    /// let watch = picosel::ClockSetWatch::new()?;
    /// assert_eq!(watch.clock_was_set(), Ok(false)); // nothing happened
    /// # Ok::<(), picosel::Error>(())
    /// ```
    pub fn clock_was_set(&self) -> Result<bool> {
        let mut count = [0u8; 8];
        match rustix::io::read(&self.fd, &mut count) {
            // ECANCELED: the clock was set. A completed read means the timer expired: the
            // clock was set past the end of time (2038 on 32-bit time), which is a jump too.
            Err(Errno::CANCELED) | Ok(_) => {
                self.arm()?;
                Ok(true)
            }
            Err(Errno::AGAIN) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

impl AsFd for ClockSetWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::{Daily, DAY};
    use crate::error::Error;
    use core::time::Duration;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn at_refuses_times_that_are_not_on_the_clock() {
        assert_eq!(Daily::at(24, 0, 0), Err(Error::InvalidTime));
        assert_eq!(Daily::at(0, 60, 0), Err(Error::InvalidTime));
        assert_eq!(Daily::at(0, 0, 60), Err(Error::InvalidTime));
        assert_eq!(Daily::at(23, 59, 59).unwrap().second_of_day(), 86_399);
        let d = Daily::at(0, 0, 0).unwrap();
        assert_eq!(d.with_utc_offset(-86_400), Err(Error::InvalidTime));
        assert_eq!(d.with_utc_offset(i32::MIN), Err(Error::InvalidTime));
        assert_eq!(d.with_utc_offset(86_399).unwrap().utc_offset(), 86_399);
    }

    #[test]
    fn next_after_is_strictly_after_and_at_most_a_day_away() {
        let d = Daily::at(3, 0, 0).unwrap();
        assert_eq!(d.next_after(Duration::ZERO), secs(3 * 3600));
        assert_eq!(d.next_after(secs(3 * 3600)), secs(DAY + 3 * 3600));
        assert_eq!(
            d.next_after(secs(3 * 3600) - Duration::from_nanos(1)),
            secs(3 * 3600)
        );
        assert_eq!(
            d.next_after(secs(3 * 3600) + Duration::from_nanos(1)),
            secs(DAY + 3 * 3600)
        );
        // Midnight itself.
        let m = Daily::at(0, 0, 0).unwrap();
        assert_eq!(m.next_after(secs(5 * DAY)), secs(6 * DAY));
    }

    #[test]
    fn offsets_move_the_occurrence_in_utc() {
        // 03:00 at UTC+05:30 is 21:30 UTC the day before.
        let d = Daily::at(3, 0, 0)
            .unwrap()
            .with_utc_offset(5 * 3600 + 1800)
            .unwrap();
        assert_eq!(
            d.next_after(secs(10 * DAY)),
            secs(10 * DAY + 21 * 3600 + 1800)
        );
        // 20:00 at UTC-08:00 is 04:00 UTC the next day; at the epoch the local date is
        // 1969-12-31 16:00, so the first is 1970-01-01 04:00 UTC.
        let d = Daily::at(20, 0, 0)
            .unwrap()
            .with_utc_offset(-8 * 3600)
            .unwrap();
        assert_eq!(d.next_after(Duration::ZERO), secs(4 * 3600));
        // The extreme offsets stay in range at the epoch.
        for off in [-86_399, 86_399] {
            let d = Daily::at(0, 0, 0).unwrap().with_utc_offset(off).unwrap();
            let n = d.next_after(Duration::ZERO);
            assert!(n > Duration::ZERO && n <= secs(DAY), "{off}: {n:?}");
        }
    }

    #[test]
    fn the_end_of_durations_range_saturates() {
        let d = Daily::at(12, 0, 0).unwrap().with_utc_offset(-3600).unwrap();
        assert_eq!(d.next_after(Duration::MAX), Duration::MAX);
        assert_eq!(d.delay_after(Duration::MAX), Duration::ZERO);
    }

    /// The three properties, checked on many wall times and schedules (a small LCG keeps the
    /// test free of dependencies and deterministic).
    #[test]
    fn next_after_properties_hold() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x >> 11
        };
        for _ in 0..10_000 {
            let wall = Duration::new(next() % (200 * 365 * DAY), (next() % 1_000_000_000) as u32);
            let sod = (next() % DAY) as u32;
            let off = (next() % (2 * DAY - 1)) as i32 - (DAY as i32 - 1);
            let d = Daily {
                second_of_day: sod,
                utc_offset: off,
            };
            let n = d.next_after(wall);
            assert!(n > wall && n - wall <= secs(DAY), "{d:?} {wall:?} {n:?}");
            // The occurrence is on a whole second, at the schedule's local time of day.
            assert_eq!(n.subsec_nanos(), 0);
            let local = n.as_secs() as i64 + i64::from(off);
            assert_eq!(
                local.rem_euclid(DAY as i64),
                i64::from(sod),
                "{d:?} {wall:?}"
            );
        }
    }
}
