//! The loop's clock: [`EventLoop::with_clock`], [`clock`](EventLoop::clock),
//! [`clock_mut`](EventLoop::clock_mut) and [`now`](EventLoop::now), and the turn's wait, which
//! asks the clock how to wait and tells it when the wait found nothing.

use super::EventLoop;
use crate::backend::Backend;
use crate::clock::Clock;
use crate::error::Result;
use crate::time::Instant;
use core::time::Duration;

impl<B: Backend, C, const N: usize, const T: usize, K: Clock> EventLoop<B, C, N, T, K> {
    /// An empty loop owning `context`, reading the time from `clock` (for example a
    /// [`VirtualClock`](crate::VirtualClock) set to a given wall-clock time). No syscall.
    ///
    /// ```
    /// use picosel::{Clock, VirtualClock, VirtualEventLoop};
    /// use std::time::Duration;
    /// let mut clock = VirtualClock::new();
    /// clock.set_wall(Duration::from_secs(1_800_000_000));
    /// let ev = VirtualEventLoop::<(), 4, 1>::with_clock((), clock);
    /// assert_eq!(ev.clock().wall(), Duration::from_secs(1_800_000_000));
    /// ```
    pub fn with_clock(context: C, clock: K) -> Self {
        let mut ev = Self::new(context);
        ev.clock = clock;
        ev
    }

    /// The loop's clock.
    ///
    /// ```
    /// use picosel::{Clock, DefaultEventLoop};
    /// let ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// assert!(ev.clock().now() <= picosel::Instant::now());
    /// ```
    pub fn clock(&self) -> &K {
        &self.clock
    }

    /// The loop's clock, for a test to move a [`VirtualClock`](crate::VirtualClock) between
    /// turns (or from a handler: a stalled loop).
    ///
    /// ```
    /// use picosel::{Instant, VirtualEventLoop};
    /// use std::time::Duration;
    /// let mut ev = VirtualEventLoop::<(), 4, 1>::new(());
    /// ev.clock_mut().advance(Duration::from_secs(60));
    /// assert_eq!(ev.now(), Instant::from_nanos(60_000_000_000));
    /// ```
    pub fn clock_mut(&mut self) -> &mut K {
        &mut self.clock
    }

    /// The time now on the loop's clock: what handlers should read instead of
    /// [`Instant::now`], so they run unchanged in virtual time.
    ///
    /// ```
    /// let ev = picosel::VirtualEventLoop::<(), 4, 1>::new(());
    /// assert_eq!(ev.now(), picosel::Instant::ZERO);
    /// ```
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The wall clock on the loop's clock (time since the Unix epoch): what handlers should
    /// read instead of [`wall_now`](crate::wall_now), for the same reason. Arm wall-clock jobs
    /// from it ([`Daily::delay_after`](crate::Daily::delay_after)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut ev = picosel::VirtualEventLoop::<(), 4, 1>::new(());
    /// ev.clock_mut().set_wall(Duration::from_secs(1_800_000_000));
    /// assert_eq!(ev.wall(), Duration::from_secs(1_800_000_000));
    /// ```
    #[must_use]
    pub fn wall(&self) -> Duration {
        self.clock.wall()
    }

    /// The turn's wait: at most `timeout`, shortened to the next timer deadline, as the clock
    /// says to wait it.
    #[inline]
    pub(super) fn wait(&mut self, timeout: Option<Duration>) -> Result<()> {
        let wait = self.wait_timeout(timeout);
        self.wait_on_clock(wait)
    }

    /// A wait of `timeout` as the clock says to wait it (no timer to shorten it: the fast path
    /// when none is armed). A wait that found nothing is told to the clock (a virtual one moves
    /// to the wait's end); its refusal ends the batch the wait began, so the loop stays as it
    /// was. On the real clock both hooks are empty and inline to nothing.
    // Inlined into `run`'s loop on purpose: the hot path's instruction count is gated in CI
    // (bench/callgrind.sh --gate-loop), and a call here costs it.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(super) fn wait_on_clock(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.selector.wait(self.clock.backend_timeout(timeout))?;
        if !self.selector.has_events() {
            if let Err(e) = self.clock.waited(timeout) {
                self.selector.set_dispatching(false);
                return Err(e);
            }
        }
        Ok(())
    }
}
