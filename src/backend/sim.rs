//! [`Sim`]: a simulated backend for tests (feature `sim`). No syscall, no kernel object, no
//! heap: the test decides what is ready and which calls fail, and reads back what is watched.
//!
//! A registration's fd is only a number here: nothing checks that it is open, so a test can
//! register `7` without making a pipe. Each registration keeps the readiness the test gave it
//! with [`SimPoller::set_ready`] until [`SimPoller::clear_ready`] takes it back (a level, as a
//! pipe with unread data stays readable), and a wait reports what the kernel would:
//!
//! - [`Mode::Level`]: on every wait while ready;
//! - [`Mode::Edge`]: once per `set_ready` (new data) and once after `add` or `modify` if ready,
//!   as epoll re-checks readiness on `EPOLL_CTL_ADD`/`EPOLL_CTL_MOD`;
//! - [`Mode::Oneshot`]: once, then disarmed until `modify`.
//!
//! Reports carry the ready bits within the registration's interest plus [`Ready::HUP`] and
//! [`Ready::ERROR`], in slot order, so the same script gives the same events in the same order
//! on every run. A wait that finds nothing returns at once; without a timeout it fails with
//! [`Error::Deadlock`], since nothing can become ready while the loop waits: the test's
//! deadlock. So the backend belongs with a [`VirtualClock`](crate::VirtualClock), as in
//! [`SimEventLoop`](crate::SimEventLoop): on the real clock, a loop with a timer armed would
//! poll without pause until the deadline.
//!
//! The test reaches the poller through [`SimEventLoop::sim_mut`](crate::EventLoop::sim_mut)
//! (or [`Selector::sim_mut`](crate::Selector::sim_mut)); the loop's own fds (waker, signalfd)
//! are real kernel objects that the simulation never reports ready.

use super::{Poller, Token};
use crate::error::{Errno, Error, Result};
use crate::interest::{Interest, Mode, Ready};
use crate::selector::Selector;
use core::time::Duration;
use rustix::fd::RawFd;

backend! {
    /// The simulated backend (feature `sim`); see the [module docs](self).
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{Sim, Interest, Ready, Selector};
    /// let mut sel = Selector::<Sim, &str, 4>::new();
    /// sel.register(3, Interest::READ, "sensor").unwrap();
    /// sel.sim_mut().set_ready(3, Ready::READ).unwrap();
    /// let mut events = sel.select(None).unwrap();
    /// let (key, ready) = events.next().unwrap();
    /// assert_eq!((key.data(), ready), ("sensor", Ready::READ));
    /// ```
    Sim, "sim", SimPoller
}

/// What the simulation keeps for one registration.
#[derive(Debug, Clone, Copy)]
struct Reg<const N: usize> {
    fd: RawFd,
    token: Token<N>,
    interest: Interest,
    mode: Mode,
    /// What the test made ready.
    ready: Ready,
    /// The part of `ready` that the next report takes back ([`SimPoller::set_ready_once`]).
    once: Ready,
    /// Reported by the next wait if ready: always for level mode; for edge mode, since the
    /// last `set_ready`, `add` or `modify`; for oneshot, until reported once.
    armed: bool,
}

impl<const N: usize> Reg<N> {
    /// What a wait reports now: the ready bits within the interest, plus hang-up and error.
    fn report(&self) -> Ready {
        let bits = Ready::from_bits_retain(self.interest.bits()) | Ready::HUP | Ready::ERROR;
        if self.armed {
            self.ready & bits
        } else {
            Ready::empty()
        }
    }
}

/// The state of one selector on the simulated backend: its registrations by slot, the last
/// wait's events, and the failures the test asked for; inline, no heap.
///
/// # Examples
///
/// ```
/// use picosel::{Sim, Errno, Error, Interest, Mode, Selector};
/// let mut sel = Selector::<Sim, (), 4>::new();
/// sel.sim_mut().fail_next_add(Errno::MFILE);
/// assert_eq!(sel.register(5, Interest::READ, ()), Err(Error::Os(Errno::MFILE)));
/// sel.register_mode(5, Interest::READ | Interest::WRITE, Mode::Edge, ()).unwrap();
/// assert_eq!(
///     sel.sim().registration(5),
///     Some((Interest::READ | Interest::WRITE, Mode::Edge))
/// );
/// ```
#[derive(Debug)]
pub struct SimPoller<const N: usize> {
    regs: [Option<Reg<N>>; N],
    /// The last wait's events: `events[..len]`.
    events: [(Token<N>, Ready); N],
    len: usize,
    open: bool,
    fail_open: Option<Errno>,
    fail_add: Option<Errno>,
    fail_modify: Option<Errno>,
    fail_wait: Option<Errno>,
    waits: u64,
    last_timeout: Option<Duration>,
}

impl<const N: usize> SimPoller<N> {
    /// The registration of `fd`.
    fn find(&mut self, fd: RawFd) -> Result<&mut Reg<N>> {
        self.regs
            .iter_mut()
            .flatten()
            .find(|r| r.fd == fd)
            .ok_or(Error::NotRegistered)
    }

    /// The registration in `token`'s slot, if it is the one with `fd`.
    fn slot(&mut self, fd: RawFd, token: Token<N>) -> Result<&mut Reg<N>> {
        if fd < 0 {
            return Err(Error::InvalidFd);
        }
        match self.regs.get_mut(token.slot() as usize) {
            Some(Some(r)) if r.fd == fd => Ok(r),
            _ => Err(Error::NotRegistered),
        }
    }

    /// Makes `fd`'s registration ready for `ready` (added to what it was): READ or WRITE for
    /// data or room, HUP for a hang-up, ERROR for an error. An edge-triggered registration is
    /// reported again, as for new data.
    ///
    /// # Errors
    /// [`Error::NotRegistered`]: `fd` is not registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{Sim, Interest, Ready, Selector};
    /// let mut sel = Selector::<Sim, (), 4>::new();
    /// sel.register(3, Interest::WRITE, ()).unwrap();
    /// sel.sim_mut().set_ready(3, Ready::HUP).unwrap();
    /// let (_, ready) = sel.select(None).unwrap().next().unwrap();
    /// assert_eq!(ready, Ready::WRITE | Ready::HUP); // as CPython reports a hang-up
    /// ```
    pub fn set_ready(&mut self, fd: RawFd, ready: Ready) -> Result<()> {
        self.raise(fd, ready, false)
    }

    /// Makes `fd`'s registration ready for `ready` until a wait reports it: data that the
    /// handler then reads whole, so it is reported once, whatever the mode.
    ///
    /// # Errors
    /// [`Error::NotRegistered`]: `fd` is not registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{Sim, Interest, Ready, Selector};
    /// let mut sel = Selector::<Sim, (), 4>::new();
    /// sel.register(3, Interest::READ, ()).unwrap();
    /// sel.sim_mut().set_ready_once(3, Ready::READ).unwrap();
    /// assert_eq!(sel.select(None).unwrap().count(), 1);
    /// assert_eq!(sel.sim().ready(3), Some(Ready::empty()));
    /// ```
    pub fn set_ready_once(&mut self, fd: RawFd, ready: Ready) -> Result<()> {
        self.raise(fd, ready, true)
    }

    /// Adds `ready` to `fd`'s readiness, until reported (`once`, for bits not ready already)
    /// or until cleared; an edge-triggered registration gets a new edge.
    fn raise(&mut self, fd: RawFd, ready: Ready, once: bool) -> Result<()> {
        let r = self.find(fd)?;
        if once {
            r.once |= ready & !r.ready;
        } else {
            r.once &= !ready;
        }
        r.ready |= ready;
        if r.mode == Mode::Edge {
            r.armed = true;
        }
        Ok(())
    }

    /// Takes `ready` back from `fd`'s registration (the data was read, the buffer filled).
    ///
    /// # Errors
    /// [`Error::NotRegistered`]: `fd` is not registered.
    ///
    /// ```
    /// use picosel::{Sim, Error, Interest, Ready, Selector};
    /// let mut sel = Selector::<Sim, (), 4>::new();
    /// sel.register(3, Interest::READ, ()).unwrap();
    /// sel.sim_mut().set_ready(3, Ready::READ).unwrap();
    /// sel.sim_mut().clear_ready(3, Ready::READ).unwrap();
    /// assert_eq!(sel.sim().ready(3), Some(Ready::empty()));
    /// assert_eq!(sel.sim_mut().clear_ready(4, Ready::READ), Err(Error::NotRegistered));
    /// ```
    pub fn clear_ready(&mut self, fd: RawFd, ready: Ready) -> Result<()> {
        let r = self.find(fd)?;
        r.ready &= !ready;
        r.once &= !ready;
        Ok(())
    }

    /// What `fd`'s registration was made ready for, or `None` if `fd` is not registered.
    ///
    /// ```
    /// use picosel::{Sim, Selector};
    /// assert_eq!(Selector::<Sim, (), 4>::new().sim().ready(3), None);
    /// ```
    #[must_use]
    pub fn ready(&self, fd: RawFd) -> Option<Ready> {
        self.regs
            .iter()
            .flatten()
            .find(|r| r.fd == fd)
            .map(|r| r.ready)
    }

    /// Makes the next wait fail with `errno` (`EINTR`: a signal interrupted it, which the
    /// selector turns into a wait with no events).
    ///
    /// ```
    /// use picosel::{Sim, Errno, Selector};
    /// let mut sel = Selector::<Sim, (), 4>::new();
    /// sel.sim_mut().fail_next_wait(Errno::INTR);
    /// assert_eq!(sel.select(None).unwrap().count(), 0); // no events, no deadlock
    /// ```
    pub fn fail_next_wait(&mut self, errno: Errno) {
        self.fail_wait = Some(errno);
    }

    /// Makes the next registration fail with `errno` (`EMFILE`, `ENOMEM`, `EPERM`, ...), as
    /// `epoll_ctl(EPOLL_CTL_ADD)` can.
    ///
    /// ```
    /// use picosel::{Sim, Errno, Error, Interest, Selector};
    /// let mut sel = Selector::<Sim, (), 4>::new();
    /// sel.sim_mut().fail_next_add(Errno::NOMEM);
    /// assert_eq!(sel.register(3, Interest::READ, ()), Err(Error::Os(Errno::NOMEM)));
    /// assert!(sel.is_empty());
    /// ```
    pub fn fail_next_add(&mut self, errno: Errno) {
        self.fail_add = Some(errno);
    }

    /// Makes the next change of a registration fail with `errno`, as
    /// `epoll_ctl(EPOLL_CTL_MOD)` can.
    ///
    /// ```
    /// use picosel::{Sim, Errno, Error, Interest, Selector};
    /// let mut sel = Selector::<Sim, (), 4>::new();
    /// sel.register(3, Interest::READ, ()).unwrap();
    /// sel.sim_mut().fail_next_modify(Errno::PERM);
    /// assert_eq!(sel.modify(3, Interest::WRITE, ()).map(drop), Err(Error::Os(Errno::PERM)));
    /// assert_eq!(sel.get_key(3).unwrap().interest(), Interest::READ);
    /// ```
    pub fn fail_next_modify(&mut self, errno: Errno) {
        self.fail_modify = Some(errno);
    }

    /// Makes the next creation of the kernel object fail with `errno`, as `epoll_create1`
    /// can (`EMFILE`).
    ///
    /// ```
    /// use picosel::{Sim, Errno, Error, Interest, Selector};
    /// let mut sel = Selector::<Sim, (), 4>::new();
    /// sel.sim_mut().fail_next_open(Errno::MFILE);
    /// assert_eq!(sel.register(3, Interest::READ, ()), Err(Error::Os(Errno::MFILE)));
    /// sel.register(3, Interest::READ, ()).unwrap();
    /// ```
    pub fn fail_next_open(&mut self, errno: Errno) {
        self.fail_open = Some(errno);
    }

    /// The interest and mode `fd` is watched for, or `None`.
    ///
    /// ```
    /// use picosel::{Sim, Interest, Mode, Selector};
    /// let mut sel = Selector::<Sim, (), 4>::new();
    /// sel.register(3, Interest::READ, ()).unwrap();
    /// assert_eq!(sel.sim().registration(3), Some((Interest::READ, Mode::Level)));
    /// assert_eq!(sel.sim().registration(4), None);
    /// ```
    #[must_use]
    pub fn registration(&self, fd: RawFd) -> Option<(Interest, Mode)> {
        self.regs
            .iter()
            .flatten()
            .find(|r| r.fd == fd)
            .map(|r| (r.interest, r.mode))
    }

    /// Every watched fd with its interest and mode, in slot order.
    ///
    /// ```
    /// use picosel::{Sim, Interest, Mode, Selector};
    /// let mut sel = Selector::<Sim, (), 4>::new();
    /// sel.register(3, Interest::READ, ()).unwrap();
    /// sel.register_mode(9, Interest::WRITE, Mode::Oneshot, ()).unwrap();
    /// let all: Vec<_> = sel.sim().registrations().collect();
    /// assert_eq!(all, [(3, Interest::READ, Mode::Level), (9, Interest::WRITE, Mode::Oneshot)]);
    /// ```
    pub fn registrations(&self) -> impl Iterator<Item = (RawFd, Interest, Mode)> + '_ {
        self.regs
            .iter()
            .flatten()
            .map(|r| (r.fd, r.interest, r.mode))
    }

    /// How many waits were made (failed ones included).
    ///
    /// ```
    /// use picosel::{Sim, Selector};
    /// let mut sel = Selector::<Sim, (), 4>::new();
    /// sel.select(Some(std::time::Duration::ZERO)).unwrap();
    /// assert_eq!(sel.sim().waits(), 1);
    /// ```
    #[must_use]
    pub const fn waits(&self) -> u64 {
        self.waits
    }

    /// The timeout the last wait was given (`None`: without limit). A loop on a virtual clock
    /// only ever polls while a deadline is pending: `Some(Duration::ZERO)`.
    ///
    /// ```
    /// use picosel::{Sim, Selector};
    /// use std::time::Duration;
    /// let mut sel = Selector::<Sim, (), 4>::new();
    /// sel.select(Some(Duration::from_millis(3))).unwrap();
    /// assert_eq!(sel.sim().last_timeout(), Some(Duration::from_millis(3)));
    /// ```
    #[must_use]
    pub const fn last_timeout(&self) -> Option<Duration> {
        self.last_timeout
    }
}

impl<const N: usize> Poller<N> for SimPoller<N> {
    const CLOSED: Self = SimPoller {
        regs: [None; N],
        events: [(Token::new(0, 0), Ready::empty()); N],
        len: 0,
        open: false,
        fail_open: None,
        fail_add: None,
        fail_modify: None,
        fail_wait: None,
        waits: 0,
        last_timeout: None,
    };

    // Only added registrations, at most one event each, within interest plus HUP and ERROR.
    const REPORTS_ONLY_REGISTERED: bool = true;

    fn supports(_mode: Mode) -> bool {
        true
    }

    fn open(&mut self) -> Result<()> {
        if self.open {
            return Ok(());
        }
        if let Some(e) = self.fail_open.take() {
            return Err(Error::Os(e));
        }
        self.open = true;
        Ok(())
    }

    fn add(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        if fd < 0 {
            return Err(Error::InvalidFd);
        }
        let free = match self.regs.get_mut(token.slot() as usize) {
            Some(free @ None) => free,
            Some(Some(_)) => return Err(Error::AlreadyRegistered),
            None => return Err(Error::NotRegistered),
        };
        if let Some(e) = self.fail_add.take() {
            return Err(Error::Os(e));
        }
        *free = Some(Reg {
            fd,
            token,
            interest,
            mode,
            ready: Ready::empty(),
            once: Ready::empty(),
            armed: true,
        });
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        self.slot(fd, token)?;
        if let Some(e) = self.fail_modify.take() {
            return Err(Error::Os(e));
        }
        let r = self.slot(fd, token)?;
        r.token = token;
        r.interest = interest;
        r.mode = mode;
        r.armed = true;
        Ok(())
    }

    fn delete(&mut self, fd: RawFd, token: Token<N>) -> Result<()> {
        self.slot(fd, token)?;
        if let Some(r) = self.regs.get_mut(token.slot() as usize) {
            *r = None;
        }
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<usize> {
        self.waits = self.waits.wrapping_add(1);
        self.last_timeout = timeout;
        if let Some(e) = self.fail_wait.take() {
            return Err(Error::Os(e));
        }
        let mut len = 0;
        for r in self.regs.iter_mut().flatten() {
            let ready = r.report();
            if ready.is_empty() {
                continue;
            }
            if r.mode != Mode::Level {
                r.armed = false;
            }
            let taken = r.once & ready;
            r.ready &= !taken;
            r.once &= !taken;
            if let Some(slot) = self.events.get_mut(len) {
                *slot = (r.token, ready);
                len += 1;
            }
        }
        self.len = len;
        if len == 0 && timeout.is_none() {
            return Err(Error::Deadlock);
        }
        Ok(len)
    }

    fn event(&self, i: usize) -> (Token<N>, Ready) {
        match self.events.get(i) {
            Some(&e) if i < self.len => e,
            _ => (Token::new(0, 0), Ready::empty()),
        }
    }

    fn close(&mut self) {
        *self = Self::CLOSED;
    }
}

/// The test's handle on a selector over the simulated backend.
impl<D: Copy, const N: usize> Selector<Sim, D, N> {
    /// The simulation: what is registered, with which interest and mode.
    ///
    /// ```
    /// use picosel::{Sim, Selector};
    /// assert_eq!(Selector::<Sim, (), 4>::new().sim().registrations().count(), 0);
    /// ```
    pub fn sim(&self) -> &SimPoller<N> {
        self.poller()
    }

    /// The simulation, to make registrations ready and calls fail.
    ///
    /// ```
    /// use picosel::{Sim, Errno, Selector};
    /// let mut sel = Selector::<Sim, (), 4>::new();
    /// sel.sim_mut().fail_next_wait(Errno::INTR);
    /// ```
    pub fn sim_mut(&mut self) -> &mut SimPoller<N> {
        self.poller_mut()
    }
}
