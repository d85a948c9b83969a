//! What the loop tells its fd and timer handlers: [`IoEvent`] and [`TimerEvent`]. Plain data,
//! importing nothing else of the event loop, so that every other file of it can import these.

use crate::interest::Ready;
use crate::timer::TimerId;
use rustix::fd::RawFd;

/// What an [`IoHandler`](crate::IoHandler) is told.
///
/// ```
/// use picosel::{IoEvent, Ready};
/// let e = IoEvent { fd: 3, ready: Ready::READ, data: 7 };
/// assert!(e.ready.is_readable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoEvent {
    /// The registered fd.
    pub fd: RawFd,
    /// Its readiness, masked to the registered interest (plus `HUP` / `ERROR`, and
    /// `READ_CLOSED` with `READ`: see [`Ready`]).
    pub ready: Ready,
    /// The data given at registration (or by
    /// [`EventLoop::set_handler`](crate::EventLoop::set_handler)), as Python's `key.data`.
    pub data: usize,
}

/// What a [`TimerHandler`](crate::TimerHandler) is told.
///
/// ```
/// # use picosel::{DefaultEventLoop, TimerEvent};
/// fn tick(ev: &mut DefaultEventLoop<u32, 4, 1>, t: TimerEvent) {
///     // A periodic timer stays armed under the same id; `missed` periods were skipped.
///     *ev.context_mut() += t.missed;
/// }
/// # let _ = tick;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerEvent {
    /// The timer: stale for a one-shot timer, still armed for a periodic one (cancel it to
    /// stop it).
    pub id: TimerId,
    /// Whole periods skipped because the loop was late by more than a period (periodic
    /// timers; 0 for one-shot).
    pub missed: u32,
    /// The data given when the timer was armed.
    pub data: usize,
}
