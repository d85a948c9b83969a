//! [`EventLoop`]: fn-pointer handlers over a [`Selector`], with timers, signals, a waker and
//! stop — in memory fixed at compile time.
//!
//! The design, cost and size are documented on [`EventLoop`] itself (this module is private).

use crate::backend::{Backend, Epoll, Poll, Select};
use crate::timer::Timers;
use crate::waker::{self, Waker};
use crate::{Error, Instant, Interest, Mode, RawFd, Ready, Result, Selector, Source, TimerId};
use core::ops::{Deref, DerefMut};
use core::time::Duration;
use rustix::fd::{AsRawFd, OwnedFd};

#[cfg(feature = "signal")]
use crate::signal::{self, Signal, SignalEvent, SignalFd};

/// Handles readiness of a registered fd.
///
/// ```
/// use picosel::{DefaultEventLoop, IoEvent, IoHandler};
/// fn on_read(_ev: &mut DefaultEventLoop<(), 4, 0>, io: IoEvent) {
///     assert!(io.ready.is_readable());
/// }
/// let _h: IoHandler<picosel::Epoll, (), 4, 0> = on_read;
/// ```
pub type IoHandler<B, C, const N: usize, const T: usize> = fn(&mut EventLoop<B, C, N, T>, IoEvent);

/// Handles a timer that fired.
///
/// ```
/// use picosel::{DefaultEventLoop, TimerEvent};
/// fn tick(ev: &mut DefaultEventLoop<u64, 4, 2>, t: TimerEvent) {
///     *ev.context() += 1 + u64::from(t.missed);
/// }
/// # let _ = tick;
/// ```
pub type TimerHandler<B, C, const N: usize, const T: usize> =
    fn(&mut EventLoop<B, C, N, T>, TimerEvent);

/// Handles a delivered signal (feature `signal`).
///
/// ```
/// use picosel::{DefaultEventLoop, SignalEvent};
/// fn on_term(ev: &mut DefaultEventLoop<(), 4, 0>, _sig: SignalEvent) {
///     ev.stop();
/// }
/// # let _ = on_term;
/// ```
#[cfg(feature = "signal")]
pub type SignalHandler<B, C, const N: usize, const T: usize> =
    fn(&mut EventLoop<B, C, N, T>, SignalEvent);

/// Handles a wake from a [`Waker`].
///
/// ```
/// use picosel::DefaultEventLoop;
/// fn on_wake(ev: &mut DefaultEventLoop<(), 4, 0>) {
///     ev.stop();
/// }
/// # let _ = on_wake;
/// ```
pub type WakeHandler<B, C, const N: usize, const T: usize> = fn(&mut EventLoop<B, C, N, T>);

/// What an [`IoHandler`] is told.
///
/// ```
/// use picosel::{IoEvent, Ready};
/// let e = IoEvent { fd: 3, ready: Ready::READ, token: 7 };
/// assert!(e.ready.is_readable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoEvent {
    /// The registered fd.
    pub fd: RawFd,
    /// Its readiness, masked to the registered interest (plus `HUP` / `ERROR`).
    pub ready: Ready,
    /// The token given at registration (or by [`EventLoop::set_handler`]).
    pub token: usize,
}

/// What a [`TimerHandler`] is told.
///
/// ```
/// # use picosel::{DefaultEventLoop, TimerEvent};
/// fn tick(ev: &mut DefaultEventLoop<u32, 4, 1>, t: TimerEvent) {
///     // A periodic timer stays armed under the same id; `missed` periods were skipped.
///     *ev.context() += t.missed;
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
}

/// The registration's data kept in the selector: who handles it, with which token. A stale
/// event (its fd unregistered, or closed and registered again, during the batch) is filtered
/// by the selector's slot generation before it gets here.
struct Entry<B: Backend, C, const N: usize, const T: usize> {
    handler: IoHandler<B, C, N, T>,
    token: usize,
    /// The loop's own fds (waker, signalfd): not counted as handlers run.
    internal: bool,
}

impl<B: Backend, C, const N: usize, const T: usize> Clone for Entry<B, C, N, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Backend, C, const N: usize, const T: usize> Copy for Entry<B, C, N, T> {}

/// An event loop over backend `B`, with context `C`, `N` fd registrations and `T` timers.
///
/// # Design
///
/// The loop owns a context value `C` and hands `&mut EventLoop` to every handler, so a
/// handler reaches the context ([`EventLoop::context`]) and can register, modify and
/// unregister any fd (its own included), add and cancel timers, and stop the loop, all during
/// dispatch. Handlers are plain `fn` pointers: nothing is boxed, nothing captured.
///
/// - I/O: each registration's handler and token live in the selector's own fixed table, as
///   the key's data: that table *is* the heapless map from registration to handler.
/// - Timers: a [`Timers`] table of capacity `T`.
/// - Signals (feature `signal`): one signalfd(2), registered like any fd; see
///   [`add_signal`](EventLoop::add_signal).
/// - Waker: one eventfd(2), registered like any fd; see [`waker`](EventLoop::waker).
///
/// `N` counts *all* registrations: the user's, plus one for the waker once
/// [`waker`](EventLoop::waker) is called and one for the signalfd once a signal is added.
/// [`len`](EventLoop::len) counts only the user's.
///
/// # One turn of the loop ([`run_once`](EventLoop::run_once))
///
/// 1. The wait timeout is the caller's, or the time to the next timer deadline if that is
///    sooner. The clock is read only when a timer is armed. The selector rounds the timeout up
///    to whole milliseconds, so a timer never fires early.
/// 2. One wait (`epoll_wait`, `poll` or `select`). A signal interrupting it (EINTR) gives no
///    events, not an error; timers are checked as usual. If the last turn did not dispatch its
///    whole batch (a handler panicked and the caller caught it), there is no wait: the rest of
///    that batch, signals already read included, is this turn's batch.
/// 3. Each ready registration's handler runs, in the order the kernel reported them. Before
///    each call the event is checked against the live table: an fd unregistered by an earlier
///    handler of the same batch (or closed and registered again under the same number) is
///    skipped, and the readiness is masked to the current interest. A handler cannot start a
///    turn of its own ([`Error::InDispatch`]).
/// 4. If a timer is armed and no handler of this turn called [`stop`](EventLoop::stop), the
///    clock is read once and every timer due by then fires, in deadline order.
///
/// # Cost
///
/// Per ready fd: one O(1) check of the backend's event against the live table (slot and
/// generation, no hashing) and no syscall besides the wait itself (no `epoll_ctl`, no clock
/// read without timers); the batch is read in place from the backend's buffer, not copied.
/// Timers: O(log T) add, cancel and fire, O(1) next deadline.
/// Signals: one `read` per readiness of the signalfd, for up to four signals. Waker: one
/// `read` per dispatch, however many wakes.
///
/// # Size
///
/// Everything is inline. Measured `size_of` on x86_64 with `C = ()`: each fd registration
/// costs 56 bytes on epoll (82 on poll, 81 on select) — the registration table and the
/// backend's event buffer; each timer 44 bytes (48 with alignment); the signal handler table 512 bytes (feature `signal`); the rest about 100 bytes
/// plus `size_of::<C>()`. `DefaultEventLoop<(), 64, 16>` is 4,896 bytes: put a large loop in a
/// `static` (`new` is `const`) rather than on a small thread stack.
///
/// # Examples
///
/// Count what arrives on a pipe until a timer stops the loop:
///
/// ```
/// use picosel::{DefaultEventLoop, Interest, IoEvent, TimerEvent};
/// use rustix::fd::{AsRawFd, OwnedFd};
/// use std::time::Duration;
///
/// struct Ctx {
///     pipe: OwnedFd,
///     bytes: usize,
/// }
/// type Loop = DefaultEventLoop<Ctx, 8, 2>;
///
/// fn on_read(ev: &mut Loop, io: IoEvent) {
///     let mut buf = [0u8; 64];
///     match rustix::io::read(&ev.context_ref().pipe, &mut buf) {
///         Ok(0) | Err(_) => ev.unregister(io.fd).unwrap(),
///         Ok(n) => ev.context().bytes += n,
///     }
/// }
///
/// fn give_up(ev: &mut Loop, _t: TimerEvent) {
///     ev.stop();
/// }
///
/// let (r, w) = rustix::pipe::pipe().unwrap();
/// let mut ev = Loop::new(Ctx { pipe: r, bytes: 0 });
/// let fd = ev.context_ref().pipe.as_raw_fd(); // fds register by number, too
/// ev.register(fd, Interest::READ, 0, on_read).unwrap();
/// ev.add_timer(Duration::from_millis(20), give_up).unwrap();
/// rustix::io::write(&w, b"hello").unwrap();
/// ev.run().unwrap();
/// assert_eq!(ev.context_ref().bytes, 5);
/// ```
pub struct EventLoop<B: Backend, C, const N: usize, const T: usize> {
    selector: Selector<B, Entry<B, C, N, T>, N>,
    timers: Timers<TimerHandler<B, C, N, T>, T>,
    context: C,
    stopped: bool,
    /// Handlers run, for `run_once`'s count.
    dispatched: usize,
    /// Registrations of the loop's own fds (0 to 2).
    internal: usize,
    waker: Option<OwnedFd>,
    wake_handler: Option<WakeHandler<B, C, N, T>>,
    #[cfg(feature = "signal")]
    signals: SignalFd,
    #[cfg(feature = "signal")]
    signal_handlers: [Option<SignalHandler<B, C, N, T>>; 64],
    /// Signals read from the signalfd: `signal_batch[signal_next..signal_len]` are not
    /// dispatched yet (a handler panicked), and go first next turn.
    #[cfg(feature = "signal")]
    signal_batch: [SignalEvent; SIGNAL_BATCH],
    #[cfg(feature = "signal")]
    signal_next: usize,
    #[cfg(feature = "signal")]
    signal_len: usize,
}

/// Signals read from the signalfd at a time (its record buffer in `signal.rs`).
#[cfg(feature = "signal")]
const SIGNAL_BATCH: usize = 4;

/// An event loop on epoll, the default on Linux.
pub type DefaultEventLoop<C, const N: usize, const T: usize> = EventLoop<Epoll, C, N, T>;
/// An event loop on epoll.
pub type EpollEventLoop<C, const N: usize, const T: usize> = EventLoop<Epoll, C, N, T>;
/// An event loop on poll(2).
pub type PollEventLoop<C, const N: usize, const T: usize> = EventLoop<Poll, C, N, T>;
/// An event loop on select(2); fds must be below 1024.
pub type SelectEventLoop<C, const N: usize, const T: usize> = EventLoop<Select, C, N, T>;

impl<B: Backend, C, const N: usize, const T: usize> EventLoop<B, C, N, T> {
    /// An empty loop owning `context`. No syscall (the kernel objects are made on first use),
    /// so it can be built in a `static`.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::DefaultEventLoop;
    /// use std::sync::Mutex;
    ///
    /// static LOOP: Mutex<DefaultEventLoop<u32, 256, 32>> = Mutex::new(DefaultEventLoop::new(0));
    /// assert!(LOOP.lock().unwrap().is_empty());
    /// ```
    pub const fn new(context: C) -> Self {
        EventLoop {
            selector: Selector::new(),
            timers: Timers::new(),
            context,
            stopped: false,
            dispatched: 0,
            internal: 0,
            waker: None,
            wake_handler: None,
            #[cfg(feature = "signal")]
            signals: SignalFd::CLOSED,
            #[cfg(feature = "signal")]
            signal_handlers: [None; 64],
            #[cfg(feature = "signal")]
            signal_batch: signal::NO_SIGNALS,
            #[cfg(feature = "signal")]
            signal_next: 0,
            #[cfg(feature = "signal")]
            signal_len: 0,
        }
    }

    /// The context, for handlers and for the owner between turns.
    ///
    /// ```
    /// let mut ev = picosel::DefaultEventLoop::<u32, 4, 0>::new(1);
    /// *ev.context() += 1;
    /// assert_eq!(*ev.context_ref(), 2);
    /// ```
    pub fn context(&mut self) -> &mut C {
        &mut self.context
    }

    /// The context, shared.
    ///
    /// ```
    /// let ev = picosel::DefaultEventLoop::<&str, 4, 0>::new("config");
    /// assert_eq!(*ev.context_ref(), "config");
    /// ```
    pub fn context_ref(&self) -> &C {
        &self.context
    }

    /// The backend's name: `"epoll"`, `"poll"` or `"select"`.
    ///
    /// ```
    /// assert_eq!(picosel::PollEventLoop::<(), 4, 0>::new(()).backend_name(), "poll");
    /// ```
    pub const fn backend_name(&self) -> &'static str {
        B::NAME
    }

    /// The number of fd registrations the loop can hold, `N`, the loop's own included.
    ///
    /// ```
    /// assert_eq!(picosel::DefaultEventLoop::<(), 16, 0>::new(()).capacity(), 16);
    /// ```
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The number of the user's fd registrations (not counting the waker's and the
    /// signalfd's).
    ///
    /// ```
    /// # use picosel::{DefaultEventLoop, Interest, IoEvent};
    /// # fn h(_: &mut DefaultEventLoop<(), 4, 0>, _: IoEvent) {}
    /// # fn w(_: &mut DefaultEventLoop<(), 4, 0>) {}
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.register(&r, Interest::READ, 0, h).unwrap();
    /// let _waker = ev.waker(w).unwrap();
    /// assert_eq!(ev.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.selector.len() - self.internal
    }

    /// Whether the user has no fd registered.
    ///
    /// ```
    /// assert!(picosel::DefaultEventLoop::<(), 4, 0>::new(()).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers `fd` for `interest` (level-triggered), to be handled by `handler`, which is
    /// told `token`. O(1) expected; one `epoll_ctl` on epoll.
    ///
    /// # Errors
    /// As [`Selector::register`]: `InvalidInterest`, `InvalidFd`, `AlreadyRegistered`, `Full`
    /// (`N` counts the waker and signalfd too), `FdOutOfRange` (select), or the kernel's
    /// refusal. Nothing is registered on error.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Interest, IoEvent};
    /// use std::time::Duration;
    ///
    /// fn writable(ev: &mut DefaultEventLoop<usize, 4, 0>, io: IoEvent) {
    ///     *ev.context() = io.token;
    ///     ev.unregister(io.fd).unwrap();
    /// }
    /// let (_r, w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = DefaultEventLoop::<usize, 4, 0>::new(0);
    /// ev.register(&w, Interest::WRITE, 42, writable).unwrap();
    /// assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    /// assert_eq!(*ev.context(), 42);
    /// ```
    pub fn register<F: Source>(
        &mut self,
        fd: F,
        interest: Interest,
        token: usize,
        handler: IoHandler<B, C, N, T>,
    ) -> Result<()> {
        self.register_mode(fd, interest, Mode::Level, token, handler)
    }

    /// Registers `fd` with an explicit [`Mode`]; see [`register`](Self::register).
    ///
    /// # Errors
    /// As [`register`](Self::register), and [`Error::Unsupported`] for a mode the backend
    /// cannot do (edge on poll and select).
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Interest, IoEvent, Mode};
    /// # fn h(_: &mut DefaultEventLoop<(), 4, 0>, _: IoEvent) {}
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.register_mode(&r, Interest::READ, Mode::Edge, 0, h).unwrap();
    /// ```
    pub fn register_mode<F: Source>(
        &mut self,
        fd: F,
        interest: Interest,
        mode: Mode,
        token: usize,
        handler: IoHandler<B, C, N, T>,
    ) -> Result<()> {
        let entry = Entry {
            handler,
            token,
            internal: false,
        };
        self.selector
            .register_mode(fd, interest, mode, entry)
            .map(drop)
    }

    /// Changes `fd`'s interest, keeping its mode, handler and token; re-arms a oneshot
    /// registration. No syscall if nothing changes (level or edge mode). O(1) expected.
    ///
    /// # Errors
    /// [`Error::NotRegistered`], [`Error::InvalidInterest`], or the kernel's refusal; the
    /// registration is unchanged on error.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Interest, IoEvent};
    /// # fn h(_: &mut DefaultEventLoop<(), 4, 0>, _: IoEvent) {}
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.register(&a, Interest::READ, 0, h).unwrap();
    /// ev.modify(&a, Interest::READ | Interest::WRITE).unwrap(); // now also wait to write
    /// ```
    pub fn modify<F: Source>(&mut self, fd: F, interest: Interest) -> Result<()> {
        let fd = fd.raw_fd();
        let key = self.user_key(fd)?;
        self.selector.modify(fd, interest, key.data()).map(drop)
    }

    /// Changes `fd`'s interest and mode, keeping its handler and token; see
    /// [`modify`](Self::modify).
    ///
    /// # Errors
    /// As [`modify`](Self::modify), and [`Error::Unsupported`] for a mode the backend cannot do.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Interest, IoEvent, Mode};
    /// # fn h(_: &mut DefaultEventLoop<(), 4, 0>, _: IoEvent) {}
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.register(&r, Interest::READ, 0, h).unwrap();
    /// ev.modify_mode(&r, Interest::READ, Mode::Oneshot).unwrap();
    /// ```
    pub fn modify_mode<F: Source>(&mut self, fd: F, interest: Interest, mode: Mode) -> Result<()> {
        let fd = fd.raw_fd();
        let key = self.user_key(fd)?;
        self.selector
            .modify_mode(fd, interest, mode, key.data())
            .map(drop)
    }

    /// Replaces `fd`'s handler and token, keeping its interest. No syscall, except that a
    /// oneshot registration is re-armed (as by every modify). An event of the current batch
    /// not yet dispatched goes to the new handler.
    ///
    /// # Errors
    /// [`Error::NotRegistered`].
    ///
    /// # Examples
    ///
    /// A connection that moves from a handshake handler to a data handler:
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Interest, IoEvent};
    /// use std::time::Duration;
    /// type Loop = DefaultEventLoop<Vec<&'static str>, 4, 0>;
    ///
    /// fn handshake(ev: &mut Loop, io: IoEvent) {
    ///     ev.context().push("handshake");
    ///     ev.set_handler(io.fd, io.token, data).unwrap();
    /// }
    /// fn data(ev: &mut Loop, io: IoEvent) {
    ///     ev.context().push("data");
    ///     ev.unregister(io.fd).unwrap();
    /// }
    /// # let (_r, w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = Loop::new(Vec::new());
    /// ev.register(&w, Interest::WRITE, 0, handshake).unwrap();
    /// ev.run_once(Some(Duration::ZERO)).unwrap();
    /// ev.run_once(Some(Duration::ZERO)).unwrap();
    /// assert_eq!(*ev.context(), ["handshake", "data"]);
    /// ```
    pub fn set_handler<F: Source>(
        &mut self,
        fd: F,
        token: usize,
        handler: IoHandler<B, C, N, T>,
    ) -> Result<()> {
        let fd = fd.raw_fd();
        let key = self.user_key(fd)?;
        let entry = Entry {
            handler,
            token,
            internal: false,
        };
        self.selector.modify(fd, key.interest(), entry).map(drop)
    }

    /// Unregisters `fd`. An event for it still queued in the current batch is not delivered.
    /// Succeeds if `fd` was closed (or closed and its number reused) while registered. O(1)
    /// expected.
    ///
    /// # Errors
    /// [`Error::NotRegistered`] for an fd the user did not register.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Error, Interest, IoEvent};
    /// # fn h(_: &mut DefaultEventLoop<(), 4, 0>, _: IoEvent) {}
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.register(&r, Interest::READ, 0, h).unwrap();
    /// ev.unregister(&r).unwrap();
    /// assert_eq!(ev.unregister(&r), Err(Error::NotRegistered));
    /// ```
    pub fn unregister<F: Source>(&mut self, fd: F) -> Result<()> {
        let fd = fd.raw_fd();
        if self.is_internal(fd) {
            return Err(Error::NotRegistered);
        }
        self.selector.unregister(fd).map(drop)
    }

    /// Whether the user registered `fd`.
    ///
    /// ```
    /// # use picosel::{DefaultEventLoop, Interest, IoEvent};
    /// # fn h(_: &mut DefaultEventLoop<(), 4, 0>, _: IoEvent) {}
    /// # let (r, w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.register(&r, Interest::READ, 0, h).unwrap();
    /// assert!(ev.is_registered(&r) && !ev.is_registered(&w));
    /// ```
    pub fn is_registered<F: Source>(&self, fd: F) -> bool {
        self.user_key(fd.raw_fd()).is_ok()
    }

    /// Arms a one-shot timer firing `after` from now (never earlier). O(log T); reads the
    /// clock.
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
    /// ev.add_timer(Duration::from_millis(10), done).unwrap();
    /// assert_eq!(ev.add_timer(Duration::ZERO, done), Err(Error::Full)); // T = 1
    /// ev.run().unwrap();
    /// assert!(start.elapsed() >= Duration::from_millis(10));
    /// ```
    pub fn add_timer(
        &mut self,
        after: Duration,
        handler: TimerHandler<B, C, N, T>,
    ) -> Result<TimerId> {
        if self.timers.len() >= T {
            return Err(Error::Full);
        }
        self.timers.add(Instant::now() + after, None, handler)
    }

    /// Arms a one-shot timer firing at `deadline` on the monotonic clock. O(log T).
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
    /// let id = ev.add_timer_at(at, h).unwrap();
    /// assert_eq!(ev.timer_deadline(id), Some(at));
    /// ```
    pub fn add_timer_at(
        &mut self,
        deadline: Instant,
        handler: TimerHandler<B, C, N, T>,
    ) -> Result<TimerId> {
        self.timers.add(deadline, None, handler)
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
    ///     *ev.context() += 1 + t.missed;
    ///     if *ev.context() >= 3 {
    ///         ev.cancel_timer(t.id).unwrap();
    ///         ev.stop();
    ///     }
    /// }
    /// let mut ev = DefaultEventLoop::<u32, 2, 1>::new(0);
    /// ev.add_periodic(Duration::from_millis(2), tick).unwrap();
    /// ev.run().unwrap();
    /// assert!(*ev.context() >= 3);
    /// ```
    pub fn add_periodic(
        &mut self,
        period: Duration,
        handler: TimerHandler<B, C, N, T>,
    ) -> Result<TimerId> {
        if self.timers.len() >= T {
            return Err(Error::Full);
        }
        self.timers
            .add(Instant::now() + period, Some(period), handler)
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
    /// let id = ev.add_timer(Duration::from_millis(1), h).unwrap();
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
    /// let id = ev.add_periodic(Duration::from_secs(1), h).unwrap();
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

    /// Handles `signal` through the loop: blocks it in the calling thread, adds it to the
    /// loop's signalfd (created, and registered as one of the `N`, on first use) and runs
    /// `handler` in the loop for each delivery. Adding a signal again replaces its handler.
    ///
    /// In a program with several threads, call [`block_signals`](crate::block_signals) in
    /// `main` before spawning any thread: the mask is per thread, and a thread that does not
    /// block the signal would take it with its default action (see
    /// [`signal`](crate::block_signals)); likewise when the loop is moved to, and run on, a
    /// thread other than the one that called `add_signal`. The signal stays blocked after the
    /// loop is dropped (unblocking would let a pending SIGTERM kill the process there).
    /// Children inherit the blocked mask: start helpers with
    /// `picosel::CommandSignalsExt::unblock_signals` (feature `std`) so that
    /// SIGTERM stops them.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for SIGKILL and SIGSTOP; [`Error::ReservedSignal`] for the signals
    /// the C library keeps (32 up to `SIGRTMIN() - 1`); [`Error::Full`] if the signalfd does not
    /// fit in `N`; the kernel's refusal. On error the mask is as before.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Signal, SignalEvent};
    ///
    /// fn on_term(ev: &mut DefaultEventLoop<u32, 4, 0>, sig: SignalEvent) {
    ///     assert_eq!(sig.signal, Signal::TERM);
    ///     ev.stop();
    /// }
    /// let mut ev = DefaultEventLoop::<u32, 4, 0>::new(0);
    /// ev.add_signal(Signal::TERM, on_term).unwrap();
    /// // Sent to the process (this example runs in a process of its own).
    /// rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM)
    ///     .unwrap();
    /// ev.run().unwrap(); // returns once on_term stops it
    /// ```
    ///
    /// # References
    /// - [signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html)
    #[cfg(feature = "signal")]
    #[doc(alias = "signalfd")]
    pub fn add_signal(&mut self, signal: Signal, handler: SignalHandler<B, C, N, T>) -> Result<()> {
        if !signal.can_block() {
            return Err(Error::Unsupported);
        }
        if self.signals.contains(signal) {
            self.set_signal_handler(signal, handler);
            return Ok(());
        }
        // Blocked first: a signal arriving between the signalfd and the block would otherwise
        // take its default action.
        let was_blocked = signal::block_one(signal)?;
        if let Err(e) = self.watch_signal(signal) {
            if !was_blocked {
                signal::unblock_one(signal);
            }
            return Err(e);
        }
        self.set_signal_handler(signal, handler);
        Ok(())
    }

    #[cfg(feature = "signal")]
    fn watch_signal(&mut self, signal: Signal) -> Result<()> {
        if let Some(fd) = self.signals.open_or_add(signal)? {
            self.register_internal(&fd, Self::on_signal)?;
            self.signals.opened(fd, signal);
        }
        Ok(())
    }

    #[cfg(feature = "signal")]
    fn set_signal_handler(&mut self, signal: Signal, handler: SignalHandler<B, C, N, T>) {
        if let Some(slot) = self.signal_handlers.get_mut(signal.index()) {
            *slot = Some(handler);
        }
    }

    #[cfg(feature = "signal")]
    fn on_signal(&mut self, _io: IoEvent) {
        if self.signal_next >= self.signal_len {
            self.signal_len = self.signals.read(&mut self.signal_batch);
            self.signal_next = 0;
        }
        self.dispatch_signals();
    }

    /// Runs the handlers of the signals read and not dispatched yet, each taken before its
    /// handler runs (a handler that panics does not get it again; the others still come).
    #[cfg(feature = "signal")]
    fn dispatch_signals(&mut self) {
        while let Some(sig) = self.signal_batch[..self.signal_len]
            .get(self.signal_next)
            .copied()
        {
            self.signal_next += 1;
            let handler = self
                .signal_handlers
                .get(sig.signal.index())
                .copied()
                .flatten();
            if let Some(h) = handler {
                self.dispatched = self.dispatched.wrapping_add(1);
                h(self, sig);
            }
        }
    }

    #[cfg(feature = "signal")]
    fn signals_pending(&self) -> bool {
        self.signal_next < self.signal_len
    }

    #[cfg(not(feature = "signal"))]
    fn signals_pending(&self) -> bool {
        false
    }

    #[cfg(not(feature = "signal"))]
    fn dispatch_signals(&mut self) {}

    /// A [`Waker`] for this loop; `handler` runs once per dispatch after any number of wakes.
    /// The first call creates the loop's eventfd and registers it (one of the `N`); later
    /// calls return another waker and replace the handler.
    ///
    /// To stop the loop from another thread, call [`stop`](Self::stop) in the wake handler.
    ///
    /// # Errors
    /// [`Error::Full`] if the eventfd does not fit in `N`; the kernel's refusal.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::DefaultEventLoop;
    /// use std::sync::Arc;
    ///
    /// fn on_wake(ev: &mut DefaultEventLoop<(), 4, 0>) {
    ///     ev.stop();
    /// }
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// let waker = Arc::new(ev.waker(on_wake).unwrap());
    /// let w = Arc::clone(&waker);
    /// std::thread::spawn(move || w.wake().unwrap()).join().unwrap();
    /// ev.run().unwrap();
    /// ```
    #[doc(alias = "eventfd")]
    pub fn waker(&mut self, handler: WakeHandler<B, C, N, T>) -> Result<Waker> {
        let waker = match &self.waker {
            Some(fd) => Waker::new(fd)?,
            None => {
                let fd = waker::open()?;
                let waker = Waker::new(&fd)?;
                self.register_internal(&fd, Self::on_wake)?;
                self.waker = Some(fd);
                waker
            }
        };
        self.wake_handler = Some(handler);
        Ok(waker)
    }

    fn on_wake(&mut self, _io: IoEvent) {
        if let Some(fd) = &self.waker {
            waker::drain(fd);
        }
        if let Some(h) = self.wake_handler {
            self.dispatched = self.dispatched.wrapping_add(1);
            h(self);
        }
    }

    /// Makes [`run`](Self::run) return after the current turn: the rest of the current batch
    /// of fd events is still dispatched (an edge-triggered event would otherwise be lost),
    /// timers not yet fired in this turn stay armed for later. It changes nothing else: the
    /// next [`run_once`](Self::run_once) is a turn like any other.
    ///
    /// ```
    /// let mut ev = picosel::DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.stop();
    /// assert!(ev.is_stopped());
    /// ```
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Whether [`stop`](Self::stop) was called since the last turn began.
    ///
    /// ```
    /// assert!(!picosel::DefaultEventLoop::<(), 4, 0>::new(()).is_stopped());
    /// ```
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Runs turns ([`run_once`](Self::run_once) without timeout) until a handler calls
    /// [`stop`](Self::stop). A stopped loop can be run again.
    ///
    /// # Errors
    /// The first error of a wait (not EINTR, which is no error); the loop is then as it was.
    /// [`Error::InDispatch`] when called from a handler.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, TimerEvent};
    /// use std::time::Duration;
    /// fn done(ev: &mut DefaultEventLoop<(), 2, 1>, _t: TimerEvent) {
    ///     ev.stop();
    /// }
    /// let mut ev = DefaultEventLoop::<(), 2, 1>::new(());
    /// ev.add_timer(Duration::from_millis(1), done).unwrap();
    /// ev.run().unwrap();
    /// ```
    pub fn run(&mut self) -> Result<()> {
        loop {
            self.run_once(None)?;
            if self.stopped {
                return Ok(());
            }
        }
    }

    /// One turn: one wait of at most `timeout` (shortened to the next timer deadline), then
    /// the ready fds' handlers and the due timers' handlers. Returns how many handlers ran.
    ///
    /// `None` waits without limit (until an fd, a timer, a signal or a wake); `Some(ZERO)`
    /// polls. See [`EventLoop`] for the order of things.
    ///
    /// A turn whose batch was not dispatched to its end (a handler panicked and the caller
    /// caught it with `catch_unwind`) leaves the rest to the next turn, which hands it out
    /// before it waits: no edge-triggered or oneshot event, and no signal already read, is
    /// lost. A handler cannot start a turn of its own: `run_once` (and [`run`](Self::run))
    /// from a handler returns [`Error::InDispatch`] and changes nothing.
    ///
    /// # Errors
    /// The kernel's refusal of the wait; [`Error::InDispatch`] from a handler. A wait
    /// interrupted by a signal (EINTR) is not an error: the turn just has no fd events (timers
    /// still fire if due).
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Interest, IoEvent};
    /// use std::time::Duration;
    /// # fn h(_: &mut DefaultEventLoop<(), 4, 0>, _: IoEvent) {}
    /// # let (r, w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.register(&r, Interest::READ, 0, h).unwrap();
    /// assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 0); // nothing ready
    /// rustix::io::write(&w, b"x").unwrap();
    /// assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    /// ```
    #[doc(alias = "epoll_wait")]
    pub fn run_once(&mut self, timeout: Option<Duration>) -> Result<usize> {
        if self.selector.dispatching() {
            return Err(Error::InDispatch);
        }
        self.stopped = false;
        let start = self.dispatched;
        // Signals read but not dispatched go first: do not block before them.
        let timeout = if self.signals_pending() {
            Some(Duration::ZERO)
        } else {
            self.wait_timeout(timeout)
        };
        self.selector.wait(timeout)?;
        let mut turn = Turn::begin(self);
        turn.dispatch_signals();
        // Each entry is read from the backend's buffer and checked against the live table as
        // it is dispatched (O(1)), so handlers may change registrations between entries.
        while let Some((key, ready)) = turn.selector.next_event() {
            turn.call_io(key.fd(), ready, key.data());
        }
        if !turn.stopped && !turn.timers.is_empty() {
            turn.fire_timers();
        }
        drop(turn);
        Ok(self.dispatched.wrapping_sub(start))
    }

    fn call_io(&mut self, fd: RawFd, ready: Ready, entry: Entry<B, C, N, T>) {
        if !entry.internal {
            self.dispatched = self.dispatched.wrapping_add(1);
        }
        let io = IoEvent {
            fd,
            ready,
            token: entry.token,
        };
        (entry.handler)(self, io);
    }

    /// The wait timeout: the caller's, or sooner for a timer. Reads the clock only when a
    /// timer is armed.
    fn wait_timeout(&self, caller: Option<Duration>) -> Option<Duration> {
        let Some(deadline) = self.timers.next_deadline() else {
            return caller;
        };
        let until = deadline - Instant::now();
        Some(match caller {
            Some(c) if c < until => c,
            _ => until,
        })
    }

    /// Fires the timers due now, in deadline order. Bounded by `T` so handlers that keep adding
    /// already-due timers cannot hold the loop here; the rest fire next turn.
    fn fire_timers(&mut self) {
        let now = Instant::now();
        for _ in 0..T {
            if self.stopped {
                break;
            }
            let Some(e) = self.timers.expire(now) else {
                break;
            };
            self.dispatched = self.dispatched.wrapping_add(1);
            (e.handler)(
                self,
                TimerEvent {
                    id: e.id,
                    missed: e.missed,
                },
            );
        }
    }

    fn register_internal(&mut self, fd: &OwnedFd, handler: IoHandler<B, C, N, T>) -> Result<()> {
        let entry = Entry {
            handler,
            token: 0,
            internal: true,
        };
        self.selector.register(fd, Interest::READ, entry)?;
        self.internal += 1;
        Ok(())
    }

    fn is_internal(&self, fd: RawFd) -> bool {
        #[cfg(feature = "signal")]
        if self.signals.raw_fd() == Some(fd) {
            return true;
        }
        self.waker.as_ref().map(|w| w.as_raw_fd()) == Some(fd)
    }

    /// The key of a user registration.
    fn user_key(&self, fd: RawFd) -> Result<crate::SelectorKey<Entry<B, C, N, T>>> {
        if self.is_internal(fd) {
            return Err(Error::NotRegistered);
        }
        self.selector.get_key(fd)
    }
}

/// One turn's dispatch: the selector refuses waits while it lives, and takes that back when it
/// is dropped, at the end of the turn or while a handler's panic unwinds through it (so the
/// next turn, after a `catch_unwind`, can hand out the rest of the batch).
struct Turn<'a, B: Backend, C, const N: usize, const T: usize>(&'a mut EventLoop<B, C, N, T>);

impl<'a, B: Backend, C, const N: usize, const T: usize> Turn<'a, B, C, N, T> {
    #[inline]
    fn begin(ev: &'a mut EventLoop<B, C, N, T>) -> Self {
        ev.selector.set_dispatching(true);
        Turn(ev)
    }
}

impl<B: Backend, C, const N: usize, const T: usize> Drop for Turn<'_, B, C, N, T> {
    #[inline]
    fn drop(&mut self) {
        self.0.selector.set_dispatching(false);
    }
}

impl<B: Backend, C, const N: usize, const T: usize> Deref for Turn<'_, B, C, N, T> {
    type Target = EventLoop<B, C, N, T>;
    #[inline]
    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl<B: Backend, C, const N: usize, const T: usize> DerefMut for Turn<'_, B, C, N, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0
    }
}

impl<B: Backend, C: Default, const N: usize, const T: usize> Default for EventLoop<B, C, N, T> {
    fn default() -> Self {
        Self::new(C::default())
    }
}

impl<B: Backend, C: core::fmt::Debug, const N: usize, const T: usize> core::fmt::Debug
    for EventLoop<B, C, N, T>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EventLoop")
            .field("backend", &B::NAME)
            .field("capacity", &N)
            .field("len", &self.len())
            .field("timers", &self.timers.len())
            .field("stopped", &self.stopped)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::{DefaultEventLoop, TimerEvent};
    use core::time::Duration;

    type Loop = DefaultEventLoop<u32, 4, 1>;

    fn tick(ev: &mut Loop, _t: TimerEvent) {
        *ev.context() += 1;
    }

    /// The count of handlers run wraps instead of overflowing (a panic in an overflow-checked
    /// build after 2^32 events on a 32-bit target): forced to its end, a turn still counts 1.
    #[test]
    fn handler_count_wraps_without_overflow() {
        let mut ev = Loop::new(0);
        ev.dispatched = usize::MAX;
        ev.add_timer(Duration::ZERO, tick).unwrap();
        assert_eq!(ev.run_once(Some(Duration::ZERO)), Ok(1));
        assert_eq!((ev.dispatched, *ev.context()), (0, 1));
    }
}
