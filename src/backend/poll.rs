//! poll(2) through rustix: no fd-number limit, O(registered) per wait.
//!
//! The table of [`PollLike`] holds the `pollfd` array itself, dense, so each wait hands the
//! kernel exactly the armed entries; edge mode, oneshot and closed fds are [`PollLike`]'s.
//!
//! # A registered fd closed without `unregister`
//!
//! poll(2) watches numbers and answers `POLLNVAL` for one that is not open, on every call. The
//! backend reports that once, as [`Ready::ERROR`](crate::Ready::ERROR), and takes the entry out of the array as it
//! does a fired oneshot one, so later waits block as usual and the other entries are reported
//! as usual. A `modify` that reaches the backend (the selector makes none for a change of data
//! alone) puts it back if `fcntl(F_GETFD)` finds the number open; `unregister` forgets it.
//!
//! Its limit: the kernel gives a closed number to the next file opened. If that happens before
//! a wait has seen the number closed, poll(2) watches the new file under the registration
//! instead: the registration is reported with the new file's readiness, and its handler runs
//! for it, until the registration is unregistered (registering the new file fails with
//! `AlreadyRegistered` until then). `modify` cannot tell either (`fcntl` finds the number open)
//! and goes on watching the new file. A file that takes the number after a wait reported it
//! closed is not watched, unless a `modify` re-arms the registration. Telling the two files
//! apart would cost an `fstat` per entry on every wait; unregistering before closing avoids it.

use super::{borrow_fd, os, ready_of, request_bits, Mechanism, PollLike};
use crate::error::Result;
use crate::interest::Interest;
use core::time::Duration;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::RawFd;

backend! {
    /// The poll backend.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{PollSelector, Interest};
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut sel = PollSelector::<(), 8>::new();
    /// sel.register(&r, Interest::READ, ()).unwrap();
    /// ```
    ///
    /// # References
    /// - [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)
    #[doc(alias = "poll")]
    #[doc(alias = "ppoll")]
    Poll, "poll", PollPoller
}

/// The state of one poll selector: the dense `pollfd` array and the last wait's events.
///
/// # Examples
///
/// Safe code may drive a poller directly; what the selector would refuse is an error here too.
///
/// ```
/// use picosel::backend::{poll::PollPoller, Poller, Token};
/// use picosel::{Error, Interest, Mode};
/// let mut p = PollPoller::<4>::CLOSED;
/// let token = Token::<4>::new(0, 0);
/// assert_eq!(p.add(-1, token, Interest::READ, Mode::Level), Err(Error::InvalidFd));
/// assert_eq!(p.wait(Some(std::time::Duration::ZERO)), Ok(0));
/// ```
pub type PollPoller<const N: usize> = PollLike<Poll, N>;

impl Mechanism for Poll {
    /// The fd is borrowed for as long as it is registered, longer than the caller promises
    /// to keep it open: `'static` is not true of it, and need not be, since the array only
    /// ever goes to poll(2), which looks each number up itself (see `borrow_fd`).
    type Entry = PollFd<'static>;

    // `PollFlags`' bits are a `c_short` on Android and a `u16` elsewhere: cast with `as`.
    #[allow(clippy::unnecessary_cast)]
    fn entry(fd: RawFd, interest: Interest) -> Result<PollFd<'static>> {
        let events = PollFlags::from_bits_retain(request_bits(interest) as _);
        Ok(PollFd::from_borrowed_fd(borrow_fd(fd), events))
    }

    #[allow(clippy::unnecessary_cast)] // as in `entry`
    fn wait<const N: usize>(p: &mut PollPoller<N>, timeout: Option<Duration>) -> Result<()> {
        let timeout = super::timespec(timeout);
        if os(rustix::event::poll(p.entries_mut(), timeout.as_ref()))? > 0 {
            // POLLNVAL: closed, and poll(2) would say so on every call; report it once.
            p.collect(
                |fd| ready_of(u32::from(fd.revents().bits() as u16)),
                |fd| fd.revents().contains(PollFlags::NVAL),
            );
        }
        Ok(())
    }
}
