//! The loop's one seam to time: the [`Clock`] trait, the real [`Monotonic`] clock every loop
//! has by default, and the [`VirtualClock`] a test drives.
//!
//! An [`EventLoop`](crate::EventLoop) owns its clock as a value (never a global), so tests that
//! run in parallel each move their own time. The loop reads the clock to arm timers, to compute
//! its wait timeout and to fire the due timers, and asks it how to wait: the real clock lets the
//! kernel wait for the timeout; a virtual clock has the backend only poll (timeout zero) and,
//! when nothing was ready, moves itself to the end of the wait, so a loop never blocks in real
//! time while a virtual deadline is pending.

use crate::error::{Error, Result};
use crate::time::{duration_nanos, Instant};
use crate::wall::wall_now;
use core::time::Duration;

/// Where an event loop reads the time, and how it waits for it to pass.
///
/// Implemented by [`Monotonic`] (the real clock, the default) and [`VirtualClock`] (time a test
/// moves). The two hooks [`backend_timeout`](Clock::backend_timeout) and
/// [`waited`](Clock::waited) have the real clock's behaviour by default: the kernel waits.
///
/// # Examples
///
/// ```
/// use picosel::{Clock, Monotonic, VirtualClock};
/// use std::time::Duration;
///
/// fn uptime<K: Clock>(clock: &K, start: picosel::Instant) -> Duration {
///     clock.now() - start
/// }
/// let mut v = VirtualClock::new();
/// let start = v.now();
/// v.advance(Duration::from_secs(3600));
/// assert_eq!(uptime(&v, start), Duration::from_secs(3600));
/// assert!(uptime(&Monotonic, Monotonic.now()) < Duration::from_secs(60));
/// ```
pub trait Clock {
    /// The clock a new loop starts with ([`EventLoop::new`](crate::EventLoop::new) is `const`).
    const START: Self;

    /// The time now, on a clock that never goes back.
    fn now(&self) -> Instant;

    /// The wall clock: the time since the Unix epoch (1970-01-01 UTC), zero before it. Unlike
    /// [`now`](Clock::now) it may jump, back or forth, when it is set (NTP, an RTC-less board
    /// that boots in 1970).
    fn wall(&self) -> Duration;

    /// What the backend is asked to wait, when the loop wants to wait `timeout` on this clock
    /// (`None`: without limit). The real clock's: `timeout` itself.
    #[inline]
    fn backend_timeout(&self, timeout: Option<Duration>) -> Option<Duration> {
        timeout
    }

    /// Told that a wait of `timeout` on this clock ended with nothing ready. The real clock's:
    /// nothing to do, the kernel has waited.
    ///
    /// # Errors
    /// A virtual clock's [`Error::Deadlock`] when that time can only pass by the test's hand.
    #[inline]
    fn waited(&mut self, timeout: Option<Duration>) -> Result<()> {
        let _ = timeout;
        Ok(())
    }
}

/// The real clocks: `CLOCK_MONOTONIC` for [`now`](Clock::now) and `CLOCK_REALTIME` for
/// [`wall`](Clock::wall). Zero-sized, so the loop that holds it is no bigger.
///
/// ```
/// use picosel::{Clock, Monotonic};
/// assert_eq!(core::mem::size_of::<Monotonic>(), 0);
/// assert!(Monotonic.wall().as_secs() > 1_600_000_000); // after September 2020
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Monotonic;

impl Clock for Monotonic {
    const START: Self = Monotonic;

    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> Duration {
        wall_now()
    }
}

/// A clock that moves only when told: by the test ([`advance`](Self::advance)), or by the loop
/// when nothing is ready (auto-advance, on by default), straight to the end of its wait: the
/// next timer deadline or the caller's timeout. A daemon with an hourly timer then runs days in
/// milliseconds, with its timers firing exactly on their deadlines, never early, and a
/// periodic timer's `missed` counting what a stalled loop skipped, as on the real clock.
///
/// The loop asks its backend only to poll (timeout zero) while a deadline is pending, so real
/// fds on a real backend never block it in real time. With nothing ready and no deadline, it
/// waits on the backend without limit: the simulated backend (feature `sim`) then
/// answers [`Error::Deadlock`], a real one waits for a real fd (a signal, another thread).
/// With auto-advance off, a wait that would need time to pass is that deadlock too.
///
/// It holds the time, the wall clock's offset and the auto-advance switch. It starts at
/// [`Instant::ZERO`], with the wall clock at the epoch.
///
/// # Examples
///
/// ```
/// use picosel::{Clock, Instant, VirtualClock};
/// use std::time::Duration;
///
/// let mut c = VirtualClock::new();
/// assert_eq!(c.now(), Instant::ZERO);
/// c.advance(Duration::from_millis(1500));
/// assert_eq!(c.now(), Instant::from_nanos(1_500_000_000));
/// c.set_wall(Duration::from_secs(1_800_000_000)); // January 2027
/// c.advance(Duration::from_secs(1));
/// assert_eq!(c.wall(), Duration::from_secs(1_800_000_001));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualClock {
    now: Instant,
    /// The wall clock minus `now`, in nanoseconds (signed: the wall clock may be set back).
    wall_offset: i128,
    auto_advance: bool,
}

impl VirtualClock {
    /// A clock at [`Instant::ZERO`], wall clock at the epoch, auto-advance on.
    ///
    /// ```
    /// use picosel::{Clock, VirtualClock};
    /// assert_eq!(VirtualClock::new().wall(), std::time::Duration::ZERO);
    /// assert!(VirtualClock::new().auto_advance());
    /// ```
    #[must_use]
    pub const fn new() -> VirtualClock {
        VirtualClock {
            now: Instant::ZERO,
            wall_offset: 0,
            auto_advance: true,
        }
    }

    /// Moves the clock `by` forward (saturating at [`Instant::MAX`]); the wall clock moves
    /// with it. Due timers fire at the loop's next turn.
    ///
    /// ```
    /// use picosel::{Clock, Instant, VirtualClock};
    /// use std::time::Duration;
    /// let mut c = VirtualClock::new();
    /// c.advance(Duration::from_secs(2));
    /// assert_eq!(c.now() - Instant::ZERO, Duration::from_secs(2));
    /// ```
    pub fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
    }

    /// Moves the clock to `t`, if `t` is later; the clock never goes back.
    ///
    /// ```
    /// use picosel::{Clock, Instant, VirtualClock};
    /// let mut c = VirtualClock::new();
    /// c.advance_to(Instant::from_nanos(10));
    /// c.advance_to(Instant::from_nanos(5)); // no effect
    /// assert_eq!(c.now(), Instant::from_nanos(10));
    /// ```
    pub fn advance_to(&mut self, t: Instant) {
        if t > self.now {
            self.now = t;
        }
    }

    /// Sets the wall clock to `since_epoch`, as NTP or `date -s` would; the monotonic time
    /// does not move.
    ///
    /// ```
    /// use picosel::{Clock, VirtualClock};
    /// use std::time::Duration;
    /// let mut c = VirtualClock::new();
    /// c.set_wall(Duration::from_secs(86_400));
    /// assert_eq!(c.wall(), Duration::from_secs(86_400));
    /// ```
    pub fn set_wall(&mut self, since_epoch: Duration) {
        self.wall_offset =
            i128::from(duration_nanos(since_epoch)) - i128::from(self.now.as_nanos());
    }

    /// Whether the loop moves the clock itself when nothing is ready.
    ///
    /// ```
    /// assert!(picosel::VirtualClock::new().auto_advance());
    /// ```
    #[must_use]
    pub const fn auto_advance(&self) -> bool {
        self.auto_advance
    }

    /// Lets the loop move the clock when nothing is ready (`true`, the default), or only the
    /// test (`false`): a wait that would need time to pass then fails with
    /// [`Error::Deadlock`], so drive the loop with `advance` and
    /// [`run_once(Some(Duration::ZERO))`](crate::EventLoop::run_once).
    ///
    /// ```
    /// let mut c = picosel::VirtualClock::new();
    /// c.set_auto_advance(false);
    /// assert!(!c.auto_advance());
    /// ```
    pub fn set_auto_advance(&mut self, on: bool) {
        self.auto_advance = on;
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        VirtualClock::new()
    }
}

impl Clock for VirtualClock {
    const START: Self = VirtualClock::new();

    fn now(&self) -> Instant {
        self.now
    }

    fn wall(&self) -> Duration {
        let nanos = i128::from(self.now.as_nanos()).saturating_add(self.wall_offset);
        // At most u64::MAX + |offset| < 2^66 nanoseconds: seconds fit a u64.
        let nanos = u128::try_from(nanos).unwrap_or(0);
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
        Duration::new(secs, sub)
    }

    /// A deadline pending: poll, never block in real time. None: the backend waits (the
    /// simulated one answers [`Error::Deadlock`]).
    fn backend_timeout(&self, timeout: Option<Duration>) -> Option<Duration> {
        timeout.map(|_| Duration::ZERO)
    }

    fn waited(&mut self, timeout: Option<Duration>) -> Result<()> {
        match timeout {
            Some(d) if d.is_zero() => Ok(()),
            Some(d) if self.auto_advance => {
                self.advance(d);
                Ok(())
            }
            Some(_) => Err(Error::Deadlock),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_follows_the_virtual_time_and_saturates() {
        let mut c = VirtualClock::new();
        c.set_wall(Duration::from_secs(100));
        c.advance(Duration::from_secs(5));
        assert_eq!(c.wall(), Duration::from_secs(105));
        c.set_wall(Duration::ZERO);
        c.advance(Duration::from_secs(1));
        assert_eq!(c.wall(), Duration::from_secs(1));
        // Set far back, then the clock read before the epoch: the epoch.
        let mut c = VirtualClock::new();
        c.advance(Duration::from_secs(10));
        c.set_wall(Duration::ZERO);
        c.advance_to(Instant::MAX);
        assert!(c.wall() > Duration::ZERO);
        c.set_wall(Duration::MAX);
        assert_eq!(c.wall(), Duration::from_nanos(u64::MAX));
        c.advance(Duration::MAX);
        assert_eq!(c.now(), Instant::MAX);
    }

    #[test]
    fn a_wait_moves_virtual_time_only_with_auto_advance() {
        let mut c = VirtualClock::new();
        let d = Some(Duration::from_millis(7));
        assert_eq!(c.backend_timeout(d), Some(Duration::ZERO));
        assert_eq!(c.backend_timeout(None), None);
        assert_eq!(c.waited(d), Ok(()));
        assert_eq!(c.now(), Instant::from_nanos(7_000_000));
        c.set_auto_advance(false);
        assert_eq!(c.waited(d), Err(Error::Deadlock));
        assert_eq!(c.waited(Some(Duration::ZERO)), Ok(()));
        assert_eq!(c.now(), Instant::from_nanos(7_000_000));
        assert_eq!(Monotonic.backend_timeout(d), d);
        assert_eq!(Monotonic.clone().waited(None), Ok(()));
    }
}
