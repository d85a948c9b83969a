//! Signals: [`EventLoop::add_signal`] over the loop's signal table (the signalfd, its mask,
//! the handlers and the signals read but not dispatched, in `crate::signal`), and running their
//! handlers when the signalfd is readable or a turn left some undispatched.

use super::{Entry, EventLoop, Own, SignalHandler};
use crate::backend::Backend;
use crate::clock::Clock;
use crate::error::Result;
use crate::interest::Interest;
use crate::signal::Signal;

impl<B: Backend, C, const N: usize, const T: usize, K: Clock> EventLoop<B, C, N, T, K> {
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
    /// `picosel_std::CommandSignalsExt::unblock_signals` (or call
    /// [`unblock_signals_for_exec`](crate::unblock_signals_for_exec) in the child before exec)
    /// so that SIGTERM stops them.
    ///
    /// # Errors
    /// [`Error::Unsupported`](crate::Error::Unsupported) for SIGKILL and SIGSTOP;
    /// [`Error::ReservedSignal`](crate::Error::ReservedSignal) for the signals the C library
    /// keeps (32 up to `SIGRTMIN() - 1`); [`Error::Full`](crate::Error::Full) if the signalfd
    /// does not fit in `N`; the kernel's refusal. On error the mask is as before.
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
    #[doc(alias = "signalfd")]
    pub fn add_signal(&mut self, signal: Signal, handler: SignalHandler<Self>) -> Result<()> {
        let selector = &mut self.selector;
        self.signals.add(signal, handler, |fd| {
            selector
                .register(fd, Interest::READ, Entry::Own(Own::Signals))
                .map(drop)
        })
    }

    /// The signalfd is readable: reads it (unless signals read earlier still wait) and runs
    /// the handlers.
    pub(super) fn on_signals(&mut self) {
        self.signals.read();
        self.dispatch_signals();
    }

    /// Runs the handlers of the signals read and not dispatched yet, each taken before its
    /// handler runs (a handler that panics does not get it again; the others still come).
    pub(super) fn dispatch_signals(&mut self) {
        while let Some((handler, sig)) = self.signals.take() {
            self.dispatched = self.dispatched.wrapping_add(1);
            handler(self, sig);
        }
    }
}
