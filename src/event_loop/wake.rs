//! The waker: [`EventLoop::waker`] over the loop's eventfd (kept with its handler in
//! `crate::waker`), and running the wake handler when the eventfd is readable.

use super::{Entry, EventLoop, Own, WakeHandler};
use crate::backend::Backend;
use crate::clock::Clock;
use crate::error::Result;
use crate::interest::Interest;
use crate::waker::Waker;

impl<B: Backend, C, const N: usize, const T: usize, K: Clock> EventLoop<B, C, N, T, K> {
    /// A [`Waker`] for this loop; `handler` runs once per dispatch after any number of wakes.
    /// The first call creates the loop's eventfd and registers it (one of the `N`); later
    /// calls return another waker and replace the handler.
    ///
    /// To stop the loop from another thread, call [`stop`](Self::stop) in the wake handler.
    ///
    /// # Errors
    /// [`Error::Full`](crate::Error::Full) if the eventfd does not fit in `N`; the kernel's
    /// refusal.
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
    pub fn waker(&mut self, handler: WakeHandler<Self>) -> Result<Waker> {
        let selector = &mut self.selector;
        self.wake.waker(handler, |fd| {
            selector
                .register(fd, Interest::READ, Entry::Own(Own::Waker))
                .map(drop)
        })
    }

    /// The eventfd is readable: resets it and runs the wake handler once, however many wakes.
    pub(super) fn on_wake(&mut self) {
        if let Some(handler) = self.wake.drain() {
            self.dispatched = self.dispatched.wrapping_add(1);
            handler(self);
        }
    }
}
