//! The test's handle on a loop over the simulated backend (feature `sim`):
//! [`EventLoop::sim`] and [`EventLoop::sim_mut`].

use super::EventLoop;
use crate::backend::sim::{Sim, SimPoller};
use crate::clock::Clock;

impl<C, const N: usize, const T: usize, K: Clock> EventLoop<Sim, C, N, T, K> {
    /// The simulation: what is registered, with which interest and mode (the loop's own fds
    /// included).
    ///
    /// ```
    /// use picosel::{Interest, IoEvent, Mode, SimEventLoop};
    /// # fn h(_: &mut SimEventLoop<(), 4, 0>, _: IoEvent) {}
    /// let mut ev = SimEventLoop::<(), 4, 0>::new(());
    /// ev.register_mode(5, Interest::READ, Mode::Edge, 0, h).unwrap();
    /// assert_eq!(ev.sim().registration(5), Some((Interest::READ, Mode::Edge)));
    /// ```
    pub fn sim(&self) -> &SimPoller<N> {
        self.selector.sim()
    }

    /// The simulation, for the test (or a handler) to make registrations ready and calls
    /// fail; see [`SimPoller`].
    ///
    /// ```
    /// use picosel::{Errno, Error, Interest, IoEvent, SimEventLoop};
    /// # fn h(_: &mut SimEventLoop<(), 4, 0>, _: IoEvent) {}
    /// let mut ev = SimEventLoop::<(), 4, 0>::new(());
    /// ev.sim_mut().fail_next_add(Errno::PERM);
    /// assert_eq!(ev.register(5, Interest::READ, 0, h), Err(Error::Os(Errno::PERM)));
    /// ```
    pub fn sim_mut(&mut self) -> &mut SimPoller<N> {
        self.selector.sim_mut()
    }
}
