//! [`Instant`]: a point on the monotonic clock, because `core` has none.
//!
//! `CLOCK_MONOTONIC` is the clock `epoll_wait(2)`, poll(2) and select(2) measure their timeouts
//! against, it never jumps when the wall clock is set (NTP, an RTC-less board booting in 1970),
//! and on Linux it is read through the vDSO without entering the kernel. An instant is held as
//! nanoseconds since boot in a `u64`, which lasts 584 years of uptime; arithmetic saturates
//! instead of overflowing, so no input can panic.

use core::ops::{Add, Sub};
use core::time::Duration;
use rustix::time::{clock_gettime, ClockId};

/// A point on the monotonic clock (`CLOCK_MONOTONIC`), in nanoseconds.
///
/// Like `std::time::Instant`, but available without `std` and 8 bytes on every target.
///
/// # Examples
///
/// ```
/// use picosel::Instant;
/// use std::time::Duration;
///
/// let start = Instant::now();
/// let later = start + Duration::from_millis(5);
/// assert_eq!(later - start, Duration::from_millis(5));
/// assert!(start <= Instant::now());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    nanos: u64,
}

/// Saturates a duration to whole nanoseconds in a `u64`.
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Instant {
    /// The clock's origin (boot, on Linux).
    ///
    /// ```
    /// assert!(picosel::Instant::ZERO <= picosel::Instant::now());
    /// ```
    pub const ZERO: Instant = Instant { nanos: 0 };

    /// The farthest representable instant: a deadline there never comes.
    ///
    /// ```
    /// assert!(picosel::Instant::MAX > picosel::Instant::now());
    /// ```
    pub const MAX: Instant = Instant { nanos: u64::MAX };

    /// Reads `CLOCK_MONOTONIC`.
    ///
    /// No syscall on Linux targets with a vDSO (`x86_64`, aarch64, armv7): the kernel maps the
    /// clock into the process.
    ///
    /// ```
    /// let a = picosel::Instant::now();
    /// let b = picosel::Instant::now();
    /// assert!(b >= a); // monotonic
    /// ```
    ///
    /// # References
    /// - [clock_gettime(2)](https://man7.org/linux/man-pages/man2/clock_gettime.2.html)
    #[doc(alias = "clock_gettime")]
    #[must_use]
    pub fn now() -> Instant {
        let ts = clock_gettime(ClockId::Monotonic);
        // The monotonic clock is never negative; clamp rather than trust that blindly.
        let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
        let nsec = u64::try_from(ts.tv_nsec).unwrap_or(0);
        Instant::from_secs_nanos(secs, nsec)
    }

    /// Seconds and nanoseconds as read from the clock, saturating at [`MAX`](Self::MAX).
    const fn from_secs_nanos(secs: u64, nsec: u64) -> Instant {
        Instant {
            nanos: secs.saturating_mul(1_000_000_000).saturating_add(nsec),
        }
    }

    /// The instant `nanos` nanoseconds after [`ZERO`](Self::ZERO); for tests and for clocks kept
    /// elsewhere.
    ///
    /// ```
    /// use picosel::Instant;
    /// assert_eq!(Instant::from_nanos(1_500).as_nanos(), 1_500);
    /// ```
    #[must_use]
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant { nanos }
    }

    /// Nanoseconds since [`ZERO`](Self::ZERO).
    ///
    /// ```
    /// assert_eq!(picosel::Instant::ZERO.as_nanos(), 0);
    /// ```
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// `self + d`, or `None` past [`MAX`](Self::MAX).
    ///
    /// ```
    /// use picosel::Instant;
    /// use std::time::Duration;
    /// assert_eq!(Instant::ZERO.checked_add(Duration::from_nanos(3)), Some(Instant::from_nanos(3)));
    /// assert_eq!(Instant::MAX.checked_add(Duration::from_nanos(1)), None);
    /// ```
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        let n = u64::try_from(d.as_nanos()).ok()?;
        self.nanos.checked_add(n).map(Instant::from_nanos)
    }

    /// `self + d`, stopping at [`MAX`](Self::MAX).
    ///
    /// ```
    /// use picosel::Instant;
    /// use std::time::Duration;
    /// assert_eq!(Instant::now().saturating_add(Duration::MAX), Instant::MAX);
    /// ```
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant::from_nanos(self.nanos.saturating_add(duration_nanos(d)))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    ///
    /// ```
    /// use picosel::Instant;
    /// use std::time::Duration;
    /// let (a, b) = (Instant::from_nanos(10), Instant::from_nanos(25));
    /// assert_eq!(b.saturating_duration_since(a), Duration::from_nanos(15));
    /// assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    /// ```
    #[must_use]
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }

    /// The time since `self`, read from the clock now.
    ///
    /// ```
    /// let t = picosel::Instant::now();
    /// assert!(t.elapsed() < std::time::Duration::from_secs(60));
    /// ```
    #[must_use]
    pub fn elapsed(self) -> Duration {
        Instant::now().saturating_duration_since(self)
    }
}

/// Saturating: an instant past [`Instant::MAX`] is `MAX`.
///
/// ```
/// use picosel::Instant;
/// use std::time::Duration;
/// assert_eq!(Instant::ZERO + Duration::from_micros(2), Instant::from_nanos(2_000));
/// ```
impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

/// Saturating: a later instant minus an earlier one, or zero.
///
/// ```
/// use picosel::Instant;
/// use std::time::Duration;
/// assert_eq!(Instant::from_nanos(9) - Instant::from_nanos(4), Duration::from_nanos(5));
/// ```
impl Sub for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_instead_of_panicking() {
        assert_eq!(Instant::MAX + Duration::MAX, Instant::MAX);
        assert_eq!(Instant::ZERO - Instant::MAX, Duration::ZERO);
        assert_eq!(duration_nanos(Duration::MAX), u64::MAX);
        assert_eq!(duration_nanos(Duration::from_secs(1)), 1_000_000_000);
    }

    /// Overflow audit: every operation at the ends of the range, where a plain `+` or `-`
    /// would panic with overflow checks (debug builds, `overflow-checks = true`).
    #[test]
    fn arithmetic_at_the_ends_of_the_range_never_overflows() {
        let max_ns = Duration::from_nanos(u64::MAX);
        let just_past = max_ns + Duration::from_nanos(1);
        assert_eq!(Instant::ZERO.checked_add(max_ns), Some(Instant::MAX));
        assert_eq!(Instant::ZERO.checked_add(just_past), None);
        assert_eq!(Instant::from_nanos(1).checked_add(max_ns), None);
        assert_eq!(Instant::MAX.checked_add(Duration::ZERO), Some(Instant::MAX));
        assert_eq!(Instant::ZERO.checked_add(Duration::MAX), None);
        assert_eq!(Instant::from_nanos(1) + max_ns, Instant::MAX);
        assert_eq!(Instant::ZERO + Duration::MAX, Instant::MAX);
        assert_eq!(Instant::MAX - Instant::ZERO, max_ns);
        assert_eq!(Instant::ZERO - Instant::MAX, Duration::ZERO);
        assert_eq!(
            Instant::MAX.saturating_duration_since(Instant::from_nanos(u64::MAX - 1)),
            Duration::from_nanos(1)
        );
        assert_eq!(duration_nanos(just_past), u64::MAX);
        assert_eq!(Instant::MAX.elapsed(), Duration::ZERO);
        // What `now` makes of any clock reading: exact up to 584 years of uptime, then MAX.
        let (s, n) = (u64::MAX / 1_000_000_000, u64::MAX % 1_000_000_000);
        assert_eq!(Instant::from_secs_nanos(s, n), Instant::MAX);
        assert_eq!(Instant::from_secs_nanos(s, n - 1).as_nanos(), u64::MAX - 1);
        assert_eq!(Instant::from_secs_nanos(s, n + 1), Instant::MAX);
        assert_eq!(Instant::from_secs_nanos(s + 1, 0), Instant::MAX);
        assert_eq!(Instant::from_secs_nanos(u64::MAX, u64::MAX), Instant::MAX);
    }

    #[test]
    fn clock_moves_forward() {
        let a = Instant::now();
        let mut b = Instant::now();
        for _ in 0..1_000_000 {
            if b > a {
                break;
            }
            b = Instant::now();
        }
        assert!(b > a);
    }
}
