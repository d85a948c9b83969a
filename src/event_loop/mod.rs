//! [`EventLoop`]: fn-pointer handlers over a [`Selector`], with timers, signals, a waker and
//! stop — in memory fixed at compile time. This file holds the loop itself: what it owns, the
//! handler types that take it, the entry it keeps as selector data, and one turn (wait,
//! dispatch, timers).
//!
//! The other files each add one job to `EventLoop`, as an `impl` block:
//! - `io`: the user's fd registrations;
//! - `timers`: timers, and firing the due ones;
//! - `signals` (feature `signal`): signals, and dispatching them;
//! - `wake`: the waker;
//! - `time`: the loop's clock, and the wait it decides;
//! - `sim` (feature `sim`): the simulated backend's handle, for tests.
//!
//! Imports point one way: those files import from this file and from `event` (what handlers
//! are told), this file only from `event`, and `event` from none of them. The loop, the handler
//! types and the entry share this file because they name each other (the loop holds entries,
//! an entry holds a handler, a handler takes the loop).
//!
//! The design, cost and size are documented on [`EventLoop`] itself (this module is private).

pub(crate) mod event;
mod io;
#[cfg(feature = "signal")]
mod signals;
#[cfg(feature = "sim")]
mod sim;
mod time;
mod timers;
mod wake;

use crate::backend::epoll::Epoll;
use crate::backend::poll::Poll;
use crate::backend::select::Select;
#[cfg(feature = "sim")]
use crate::backend::sim::Sim;
use crate::backend::Backend;
use crate::clock::{Clock, Monotonic, VirtualClock};
use crate::error::{Error, Result};
use crate::interest::Ready;
use crate::selector::Selector;
#[cfg(feature = "signal")]
use crate::signal::{SignalEvent, SignalTable};
use crate::timer::Timers;
use crate::waker::WakeFd;
use core::ops::{Deref, DerefMut};
use core::time::Duration;
use event::{IoEvent, TimerEvent};
use rustix::fd::RawFd;

/// Handles readiness of a registered fd. `L` is the loop type, named once:
/// `type Loop = DefaultEventLoop<Ctx, 64, 4>` (context, fd registrations, timers), then
/// `IoHandler<Loop>`.
///
/// ```
/// use picosel::{DefaultEventLoop, IoEvent, IoHandler};
/// type Loop = DefaultEventLoop<(), 4, 0>;
/// fn on_read(_ev: &mut Loop, io: IoEvent) {
///     assert!(io.ready.is_readable());
/// }
/// let _h: IoHandler<Loop> = on_read;
/// ```
pub type IoHandler<L> = fn(&mut L, IoEvent);

/// Handles a timer that fired; `L` is the loop type, as for [`IoHandler`].
///
/// ```
/// use picosel::{DefaultEventLoop, TimerEvent, TimerHandler};
/// type Loop = DefaultEventLoop<u64, 4, 2>;
/// fn tick(ev: &mut Loop, t: TimerEvent) {
///     *ev.context_mut() += 1 + u64::from(t.missed);
/// }
/// let _h: TimerHandler<Loop> = tick;
/// ```
pub type TimerHandler<L> = fn(&mut L, TimerEvent);

/// Handles a delivered signal (feature `signal`); `L` is the loop type, as for [`IoHandler`].
///
/// ```
/// use picosel::{DefaultEventLoop, SignalEvent, SignalHandler};
/// type Loop = DefaultEventLoop<(), 4, 0>;
/// fn on_term(ev: &mut Loop, _sig: SignalEvent) {
///     ev.stop();
/// }
/// let _h: SignalHandler<Loop> = on_term;
/// ```
#[cfg(feature = "signal")]
pub type SignalHandler<L> = fn(&mut L, SignalEvent);

/// Handles a wake from a [`Waker`](crate::Waker); `L` is the loop type, as for [`IoHandler`].
///
/// ```
/// use picosel::{DefaultEventLoop, WakeHandler};
/// type Loop = DefaultEventLoop<(), 4, 0>;
/// fn on_wake(ev: &mut Loop) {
///     ev.stop();
/// }
/// let _h: WakeHandler<Loop> = on_wake;
/// ```
pub type WakeHandler<L> = fn(&mut L);

/// A registration's data in the selector: the user's fd, with its handler and data, or one of
/// the loop's own fds. The variant is the one record of which fds are the loop's: the user's
/// calls see a loop fd as not registered, and dispatch counts only the user's handlers. A
/// stale event (its fd unregistered, or closed and registered again, during the batch) is
/// filtered by the selector's slot generation before it gets here.
enum Entry<B: Backend, C, const N: usize, const T: usize, K: Clock> {
    User {
        handler: IoHandler<EventLoop<B, C, N, T, K>>,
        data: usize,
    },
    /// One of the loop's own fds.
    Own(Own),
}

/// The loop's own fds. An enum of its own inside [`Entry`], so that `Entry` has two variants
/// and keeps the size of `User`: the handler's null value (a fn pointer is never null) marks
/// `Own`, whose tag then sits where `User` keeps its data. A flat enum with three variants
/// needs a tag of its own: 8 bytes more per registration on 64-bit targets.
#[derive(Clone, Copy)]
enum Own {
    /// The waker's eventfd.
    Waker,
    /// The signalfd.
    #[cfg(feature = "signal")]
    Signals,
}

impl<B: Backend, C, const N: usize, const T: usize, K: Clock> Clone for Entry<B, C, N, T, K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Backend, C, const N: usize, const T: usize, K: Clock> Copy for Entry<B, C, N, T, K> {}

/// An event loop over backend `B`, with context `C`, `N` fd registrations and `T` timers,
/// reading the time from clock `K`: the real [`Monotonic`] clock unless a test gives it a
/// [`VirtualClock`](crate::VirtualClock) (see [`VirtualEventLoop`], and `SimEventLoop` with
/// feature `sim`).
///
/// # Design
///
/// The loop owns a context value `C` and hands `&mut EventLoop` to every handler, so a
/// handler reaches the context ([`EventLoop::context`]) and can register, modify and
/// unregister any fd (its own included), add and cancel timers, and stop the loop, all during
/// dispatch. Handlers are plain `fn` pointers: nothing is boxed, nothing captured.
///
/// - I/O: each registration's handler and data live in the selector's own fixed table, as
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
///    events, not an error; timers are checked as usual. On a
///    [`VirtualClock`](crate::VirtualClock) the wait only polls while a deadline is pending,
///    and one that found nothing moves the clock to the wait's end (see [`Clock`]). If the
///    last turn did not dispatch its whole batch (a handler panicked and the caller caught
///    it), there is no wait: the rest of that batch, signals already read included, is this
///    turn's batch.
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
/// Everything is inline: per fd registration, the selector's table entry (with its handler and
/// data) and event buffer slot; per timer, its slot in the [`Timers`] table; the signal table
/// (feature `signal`: a handler per signal and the signalfd's record buffer); the context. The
/// crate docs' Memory section lists the measured `size_of` values (checked by
/// `tests/sizes.rs`); a loop for dozens of fds takes kilobytes, so put a large loop in a
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
///     match rustix::io::read(&ev.context().pipe, &mut buf) {
///         Ok(0) | Err(_) => ev.unregister(io.fd).unwrap(),
///         Ok(n) => ev.context_mut().bytes += n,
///     }
/// }
///
/// fn give_up(ev: &mut Loop, _t: TimerEvent) {
///     ev.stop();
/// }
///
/// let (r, w) = rustix::pipe::pipe().unwrap();
/// let mut ev = Loop::new(Ctx { pipe: r, bytes: 0 });
/// let fd = ev.context().pipe.as_raw_fd(); // fds register by number, too
/// ev.register(fd, Interest::READ, 0, on_read).unwrap();
/// ev.add_timer(Duration::from_millis(20), 0, give_up).unwrap();
/// rustix::io::write(&w, b"hello").unwrap();
/// ev.run().unwrap();
/// assert_eq!(ev.context().bytes, 5);
/// ```
pub struct EventLoop<B: Backend, C, const N: usize, const T: usize, K: Clock = Monotonic> {
    selector: Selector<B, Entry<B, C, N, T, K>, N>,
    /// Each timer's handler and the user's data.
    timers: Timers<(TimerHandler<Self>, usize), T>,
    #[cfg(feature = "signal")]
    signals: SignalTable<SignalHandler<EventLoop<B, C, N, T, K>>>,
    wake: WakeFd<WakeHandler<EventLoop<B, C, N, T, K>>>,
    context: C,
    stopped: bool,
    /// Handlers run, for `run_once`'s count.
    dispatched: usize,
    /// Where the loop reads the time: zero-sized for the real clock.
    clock: K,
}

/// An event loop on epoll, the default on Linux.
pub type DefaultEventLoop<C, const N: usize, const T: usize> = EventLoop<Epoll, C, N, T>;
/// An event loop on epoll.
pub type EpollEventLoop<C, const N: usize, const T: usize> = EventLoop<Epoll, C, N, T>;
/// An event loop on poll(2).
pub type PollEventLoop<C, const N: usize, const T: usize> = EventLoop<Poll, C, N, T>;
/// An event loop on select(2); fds must be below 1024.
pub type SelectEventLoop<C, const N: usize, const T: usize> = EventLoop<Select, C, N, T>;
/// An event loop on epoll in virtual time: real fds, with timers on a
/// [`VirtualClock`](crate::VirtualClock) that the test moves (or that moves itself to the next
/// deadline when nothing is ready), so it never blocks in real time while a deadline is pending.
///
/// ```
/// use picosel::{TimerEvent, VirtualEventLoop};
/// use std::time::Duration;
/// type Loop = VirtualEventLoop<u32, 4, 1>;
/// fn hourly(ev: &mut Loop, _t: TimerEvent) {
///     *ev.context_mut() += 1;
///     if *ev.context() == 24 * 7 {
///         ev.stop();
///     }
/// }
/// let mut ev = Loop::new(0);
/// ev.add_periodic(Duration::from_secs(3600), 0, hourly).unwrap();
/// ev.run().unwrap(); // a week, at once
/// assert_eq!(ev.now() - picosel::Instant::ZERO, Duration::from_secs(7 * 24 * 3600));
/// ```
pub type VirtualEventLoop<C, const N: usize, const T: usize> =
    EventLoop<Epoll, C, N, T, VirtualClock>;
/// An event loop for tests (feature `sim`): the [simulated backend](crate::backend::sim) and a
/// [`VirtualClock`](crate::VirtualClock). The test makes its registrations ready, injects the
/// kernel's errors and moves time; the same script gives the same handler calls, every run.
/// A `#[cfg(test)]` alias switches a daemon's loop to it, handlers unchanged.
///
/// ```
/// use picosel::{Interest, IoEvent, SimEventLoop, Ready};
/// type Loop = SimEventLoop<u32, 4, 0>;
/// fn on_read(ev: &mut Loop, io: IoEvent) {
///     *ev.context_mut() += 1;
///     ev.sim_mut().clear_ready(io.fd, Ready::READ).unwrap();
/// }
/// let mut ev = Loop::new(0);
/// ev.register(7, Interest::READ, 0, on_read).unwrap(); // fds are numbers to the simulation
/// ev.sim_mut().set_ready(7, Ready::READ).unwrap();
/// assert_eq!(ev.run_once(None), Ok(1));
/// assert_eq!(ev.run_once(None), Err(picosel::Error::Deadlock)); // nothing can happen now
/// ```
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub type SimEventLoop<C, const N: usize, const T: usize> = EventLoop<Sim, C, N, T, VirtualClock>;

impl<B: Backend, C, const N: usize, const T: usize, K: Clock> EventLoop<B, C, N, T, K> {
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
            #[cfg(feature = "signal")]
            signals: SignalTable::new(),
            wake: WakeFd::new(),
            context,
            stopped: false,
            dispatched: 0,
            clock: K::START,
        }
    }

    /// The context, shared.
    ///
    /// ```
    /// let ev = picosel::DefaultEventLoop::<&str, 4, 0>::new("config");
    /// assert_eq!(*ev.context(), "config");
    /// ```
    pub fn context(&self) -> &C {
        &self.context
    }

    /// The context, for handlers and for the owner between turns.
    ///
    /// ```
    /// let mut ev = picosel::DefaultEventLoop::<u32, 4, 0>::new(1);
    /// *ev.context_mut() += 1;
    /// assert_eq!(*ev.context(), 2);
    /// ```
    pub fn context_mut(&mut self) -> &mut C {
        &mut self.context
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
        self.selector.len().saturating_sub(self.own_len())
    }

    /// How many of the loop's own fds are registered: those it holds, since each is registered
    /// before the loop takes it and stays so (the user's calls refuse its entry).
    fn own_len(&self) -> usize {
        let n = usize::from(self.wake.is_open());
        #[cfg(feature = "signal")]
        let n = n + usize::from(self.signals.is_open());
        n
    }

    /// Whether the user has no fd registered.
    ///
    /// ```
    /// assert!(picosel::DefaultEventLoop::<(), 4, 0>::new(()).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    /// ev.add_timer(Duration::from_millis(1), 0, done).unwrap();
    /// ev.run().unwrap();
    /// ```
    pub fn run(&mut self) -> Result<()> {
        if self.selector.dispatching() {
            return Err(Error::InDispatch);
        }
        // Cleared once: a turn that ends with it set ends the run, so every later turn of the
        // run starts with it clear, as `run_once` would leave it.
        self.stopped = false;
        loop {
            self.turn(None)?;
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
        self.turn(timeout)?;
        Ok(self.dispatched.wrapping_sub(start))
    }

    /// One turn, inlined into [`run`](Self::run) and [`run_once`](Self::run_once), which have
    /// checked that no turn is under way. Its hot path is a wait, the batch and one test each of
    /// the timers and the stop flag; armed timers and signals left by a cut-short turn take
    /// [`turn_slow`](Self::turn_slow).
    // Inlined into `run`'s loop on purpose: the hot path's instruction count is gated in CI
    // (bench/callgrind.sh --gate-loop), and a call here costs it.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn turn(&mut self, timeout: Option<Duration>) -> Result<()> {
        #[cfg(feature = "signal")]
        let cold = !self.timers.is_empty() || self.signals.pending();
        #[cfg(not(feature = "signal"))]
        let cold = !self.timers.is_empty();
        if cold {
            self.turn_slow(timeout)?;
        } else {
            self.wait_on_clock(timeout)?;
            self.dispatch_batch(false);
        }
        Ok(())
    }

    /// [`turn`](Self::turn) with timers armed or signals waiting: the wait is shortened to the
    /// next deadline, and made a poll when signals read by an earlier turn were not dispatched
    /// (a handler panicked), which then go first.
    #[cold]
    #[inline(never)]
    fn turn_slow(&mut self, timeout: Option<Duration>) -> Result<()> {
        #[cfg(feature = "signal")]
        let timeout = if self.signals.pending() {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        self.wait(timeout)?;
        self.dispatch_batch(true);
        Ok(())
    }

    /// Dispatches what the wait just returned (signals left undispatched first, when
    /// `signals_first`), then the due timers.
    // Inlined into `run`'s loop on purpose: the hot path's instruction count is gated in CI
    // (bench/callgrind.sh --gate-loop), and a call here costs it.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn dispatch_batch(&mut self, signals_first: bool) {
        let mut turn = Turn::begin(self);
        #[cfg(feature = "signal")]
        if signals_first {
            turn.dispatch_signals();
        }
        #[cfg(not(feature = "signal"))]
        let _ = signals_first;
        // Each entry is read from the backend's buffer and checked against the live table as
        // it is dispatched (O(1)), so handlers may change registrations between entries.
        while let Some((key, ready)) = turn.selector.next_event() {
            turn.dispatch(key.fd(), ready, key.data());
        }
        // Ended here, where the loop above has just seen the batch empty, so ending it is one
        // store; timers get a dispatch of their own.
        drop(turn);
        if !self.timers.is_empty() {
            self.fire_due();
        }
    }

    /// Fires the due timers, unless a handler stopped the loop, in a dispatch of their own (a
    /// timer's handler cannot start a turn).
    #[cold]
    #[inline(never)]
    fn fire_due(&mut self) {
        if self.stopped {
            return;
        }
        self.selector.set_dispatching(true);
        Turn(self).fire_timers();
    }

    /// Runs the handler of one ready registration. Only the user's handlers count here; the
    /// wake and signal handlers that the loop's own fds lead to count as they run.
    #[inline]
    fn dispatch(&mut self, fd: RawFd, ready: Ready, entry: Entry<B, C, N, T, K>) {
        match entry {
            Entry::User { handler, data } => {
                self.dispatched = self.dispatched.wrapping_add(1);
                handler(self, IoEvent { fd, ready, data });
            }
            Entry::Own(Own::Waker) => self.on_wake(),
            #[cfg(feature = "signal")]
            Entry::Own(Own::Signals) => self.on_signals(),
        }
    }
}

/// One turn's dispatch: the selector refuses waits while it lives, and takes that back when it
/// is dropped, at the end of the turn or while a handler's panic unwinds through it (so the
/// next turn, after a `catch_unwind`, can hand out the rest of the batch).
struct Turn<'a, B: Backend, C, const N: usize, const T: usize, K: Clock>(
    &'a mut EventLoop<B, C, N, T, K>,
);

impl<'a, B: Backend, C, const N: usize, const T: usize, K: Clock> Turn<'a, B, C, N, T, K> {
    /// Guards the dispatch that a successful [`Selector::wait`] has started.
    #[inline]
    fn begin(ev: &'a mut EventLoop<B, C, N, T, K>) -> Self {
        Turn(ev)
    }
}

impl<B: Backend, C, const N: usize, const T: usize, K: Clock> Drop for Turn<'_, B, C, N, T, K> {
    #[inline]
    fn drop(&mut self) {
        self.0.selector.set_dispatching(false);
    }
}

impl<B: Backend, C, const N: usize, const T: usize, K: Clock> Deref for Turn<'_, B, C, N, T, K> {
    type Target = EventLoop<B, C, N, T, K>;
    #[inline]
    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl<B: Backend, C, const N: usize, const T: usize, K: Clock> DerefMut for Turn<'_, B, C, N, T, K> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0
    }
}

impl<B: Backend, C: Default, const N: usize, const T: usize, K: Clock> Default
    for EventLoop<B, C, N, T, K>
{
    fn default() -> Self {
        Self::new(C::default())
    }
}

impl<B: Backend, C: core::fmt::Debug, const N: usize, const T: usize, K: Clock> core::fmt::Debug
    for EventLoop<B, C, N, T, K>
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
    use super::event::TimerEvent;
    use super::DefaultEventLoop;
    use core::time::Duration;

    type Loop = DefaultEventLoop<u32, 4, 1>;

    fn tick(ev: &mut Loop, _t: TimerEvent) {
        *ev.context_mut() += 1;
    }

    /// The count of handlers run wraps instead of overflowing (a panic in an overflow-checked
    /// build after 2^32 events on a 32-bit target): forced to its end, a turn still counts 1.
    #[test]
    fn handler_count_wraps_without_overflow() {
        let mut ev = Loop::new(0);
        ev.dispatched = usize::MAX;
        ev.add_timer(Duration::ZERO, 0, tick).unwrap();
        assert_eq!(ev.run_once(Some(Duration::ZERO)), Ok(1));
        assert_eq!((ev.dispatched, *ev.context_mut()), (0, 1));
    }
}
