//! Timers: [`EventLoop::add_timer`], `add_timer_at`, `add_periodic`, `cancel_timer` and their
//! queries over the loop's [`Timers`](crate::Timers) table; the wait timeout they shorten, and
//! firing the due ones at the end of a turn.

use super::event::TimerEvent;
use super::{EventLoop, TimerHandler};
use crate::backend::Backend;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::time::Instant;
use crate::timer::TimerId;
use core::time::Duration;

impl<B: Backend, C, const N: usize, const T: usize, K: Clock> EventLoop<B, C, N, T, K> {
    /// Arms a one-shot timer firing `after` from now (never earlier), handled by `handler`,
    /// which is told `data` (for example which connection an idle timeout is for). O(log T);
    /// reads the clock.
    ///
    /// # Errors
    /// [`Error::Full`]: `T` timers are armed.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Error, TimerEvent};
    /// use std::time::{Duration, Instant};
    ///
    /// fn done(ev: &mut DefaultEventLoop<(), 2, 1>, _t: TimerEvent) {
    ///     ev.stop();
    /// }
    /// let mut ev = DefaultEventLoop::<(), 2, 1>::new(());
    /// let start = Instant::now();
    /// ev.add_timer(Duration::from_millis(10), 0, done).unwrap();
    /// assert_eq!(ev.add_timer(Duration::ZERO, 0, done), Err(Error::Full)); // T = 1
    /// ev.run().unwrap();
    /// assert!(start.elapsed() >= Duration::from_millis(10));
    /// ```
    pub fn add_timer(
        &mut self,
        after: Duration,
        data: usize,
        handler: TimerHandler<Self>,
    ) -> Result<TimerId> {
        self.arm_after(after, None, data, handler)
    }

    /// Arms a one-shot timer firing at `deadline` on the loop's clock (the monotonic clock,
    /// unless the loop has another: see [`clock`](Self::clock)). O(log T).
    ///
    /// # Errors
    /// [`Error::Full`]: `T` timers are armed.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Instant, TimerEvent};
    /// use std::time::Duration;
    /// # fn h(_: &mut DefaultEventLoop<(), 2, 1>, _: TimerEvent) {}
    /// let mut ev = DefaultEventLoop::<(), 2, 1>::new(());
    /// let at = Instant::now() + Duration::from_secs(1);
    /// let id = ev.add_timer_at(at, 0, h).unwrap();
    /// assert_eq!(ev.timer_deadline(id), Some(at));
    /// ```
    pub fn add_timer_at(
        &mut self,
        deadline: Instant,
        data: usize,
        handler: TimerHandler<Self>,
    ) -> Result<TimerId> {
        self.timers.add(deadline, None, (handler, data))
    }

    /// Arms a periodic timer: first one `period` from now, then every `period` on that grid
    /// (deadline `k` is `start + k × period`, whatever the lateness of earlier ones). Periods
    /// missed entirely are skipped and counted in [`TimerEvent::missed`]. O(log T).
    ///
    /// # Errors
    /// [`Error::Full`]: `T` timers are armed. [`Error::InvalidPeriod`]: a zero period.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, TimerEvent};
    /// use std::time::Duration;
    ///
    /// fn tick(ev: &mut DefaultEventLoop<u32, 2, 1>, t: TimerEvent) {
    ///     *ev.context_mut() += 1 + t.missed;
    ///     if *ev.context_mut() >= 3 {
    ///         ev.cancel_timer(t.id).unwrap();
    ///         ev.stop();
    ///     }
    /// }
    /// let mut ev = DefaultEventLoop::<u32, 2, 1>::new(0);
    /// ev.add_periodic(Duration::from_millis(2), 0, tick).unwrap();
    /// ev.run().unwrap();
    /// assert!(*ev.context_mut() >= 3);
    /// ```
    pub fn add_periodic(
        &mut self,
        period: Duration,
        data: usize,
        handler: TimerHandler<Self>,
    ) -> Result<TimerId> {
        self.arm_after(period, Some(period), data, handler)
    }

    /// Arms a timer `after` from now; the room is checked first, so a full table costs no
    /// clock read.
    fn arm_after(
        &mut self,
        after: Duration,
        period: Option<Duration>,
        data: usize,
        handler: TimerHandler<Self>,
    ) -> Result<TimerId> {
        if self.timers.len() >= T {
            return Err(Error::Full);
        }
        self.timers
            .add(self.clock.now() + after, period, (handler, data))
    }

    /// Disarms a timer. O(log T).
    ///
    /// # Errors
    /// [`Error::NotRegistered`] for a one-shot timer that already fired, a timer already
    /// cancelled, or a stale id: an id never cancels a later timer.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Error, TimerEvent};
    /// use std::time::Duration;
    /// # fn h(_: &mut DefaultEventLoop<(), 2, 1>, _: TimerEvent) { unreachable!() }
    /// let mut ev = DefaultEventLoop::<(), 2, 1>::new(());
    /// let id = ev.add_timer(Duration::from_millis(1), 0, h).unwrap();
    /// ev.cancel_timer(id).unwrap();
    /// assert_eq!(ev.cancel_timer(id), Err(Error::NotRegistered));
    /// ev.run_once(Some(Duration::from_millis(5))).unwrap(); // h never runs
    /// ```
    pub fn cancel_timer(&mut self, id: TimerId) -> Result<()> {
        self.timers.cancel(id).map(drop)
    }

    /// The next deadline of an armed timer, or `None` if `id` is not armed. O(1).
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, TimerEvent};
    /// use std::time::Duration;
    /// # fn h(_: &mut DefaultEventLoop<(), 2, 1>, _: TimerEvent) {}
    /// let mut ev = DefaultEventLoop::<(), 2, 1>::new(());
    /// let id = ev.add_periodic(Duration::from_secs(1), 0, h).unwrap();
    /// assert!(ev.timer_deadline(id).is_some());
    /// ```
    pub fn timer_deadline(&self, id: TimerId) -> Option<Instant> {
        self.timers.deadline(id)
    }

    /// The number of armed timers.
    ///
    /// ```
    /// assert_eq!(picosel::DefaultEventLoop::<(), 2, 4>::new(()).timer_count(), 0);
    /// ```
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// The wait timeout: the caller's, or sooner for a timer. Reads the clock only when a
    /// timer is armed.
    pub(super) fn wait_timeout(&self, caller: Option<Duration>) -> Option<Duration> {
        let Some(deadline) = self.timers.next_deadline() else {
            return caller;
        };
        let until = deadline - self.clock.now();
        Some(match caller {
            Some(c) if c < until => c,
            _ => until,
        })
    }

    /// Fires the timers due now, in deadline order. Bounded by `T` so handlers that keep adding
    /// already-due timers cannot hold the loop here; the rest fire next turn.
    pub(super) fn fire_timers(&mut self) {
        let now = self.clock.now();
        for _ in 0..T {
            if self.stopped {
                break;
            }
            let Some(e) = self.timers.expire(now) else {
                break;
            };
            self.dispatched = self.dispatched.wrapping_add(1);
            let (handler, data) = e.data;
            handler(
                self,
                TimerEvent {
                    id: e.id,
                    missed: e.missed,
                    data,
                },
            );
        }
    }
}
