//! poll(2) through rustix: no fd-number limit, O(registered) per wait.
//!
//! The `pollfd` array is kept dense (see `dense.rs`), so each wait hands the kernel exactly
//! the armed entries. Edge mode is refused: poll(2) is level-triggered only. Oneshot is
//! emulated: a oneshot entry that is reported is taken out of the array until `modify`
//! re-arms it (setting its events to 0 would not do: poll(2) always reports POLLHUP, POLLERR
//! and POLLNVAL, so a hung-up fd would wake every wait).
//!
//! # A registered fd closed without `unregister`
//!
//! poll(2) watches numbers and answers `POLLNVAL` for one that is not open, on every call. The
//! backend reports that once, as [`Ready::ERROR`], and takes the entry out of the array as it
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

use super::dense::{check_entry, checked_slot, event_at, Dense};
use super::{borrow_fd, check_open, os, Backend, Poller, Token};
use crate::{Interest, Mode, Ready, Result};
use core::time::Duration;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::RawFd;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll;

impl Backend for Poll {
    const NAME: &'static str = "poll";
    type Poller<const N: usize> = PollPoller<N>;
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
#[derive(Debug)]
pub struct PollPoller<const N: usize> {
    /// The fds are borrowed for as long as they are registered, longer than the caller
    /// promises to keep them open: `'static` is not true of them, and need not be, since the
    /// array only ever goes to poll(2), which looks each number up itself (see `borrow_fd`).
    fds: Dense<PollFd<'static>, N>,
    oneshot: [bool; N],
    ready: heapless::Vec<(Token<N>, Ready), N>,
}

#[inline]
fn flags(interest: Interest) -> PollFlags {
    let mut f = PollFlags::empty();
    if interest.contains(Interest::READ) {
        f |= PollFlags::IN;
    }
    if interest.contains(Interest::WRITE) {
        f |= PollFlags::OUT;
    }
    if interest.contains(Interest::PRIORITY) {
        f |= PollFlags::PRI;
    }
    f
}

#[inline]
fn ready(f: PollFlags) -> Ready {
    let mut r = Ready::empty();
    if f.contains(PollFlags::IN) {
        r |= Ready::READ;
    }
    if f.contains(PollFlags::OUT) {
        r |= Ready::WRITE;
    }
    if f.contains(PollFlags::PRI) {
        r |= Ready::PRIORITY;
    }
    if f.contains(PollFlags::HUP) {
        r |= Ready::HUP;
    }
    // POLLNVAL: the fd is not open (closed while registered).
    if f.intersects(PollFlags::ERR | PollFlags::NVAL) {
        r |= Ready::ERROR;
    }
    r
}

impl<const N: usize> Poller<N> for PollPoller<N> {
    const CLOSED: Self = PollPoller {
        fds: Dense::EMPTY,
        oneshot: [false; N],
        ready: heapless::Vec::new(),
    };

    fn supports(mode: Mode) -> bool {
        mode != Mode::Edge
    }

    fn open(&mut self) -> Result<()> {
        Ok(())
    }

    fn add(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        self.modify(fd, token, interest, mode)
    }

    /// Also re-arms an entry disarmed after a oneshot report or a report of its fd closed.
    fn modify(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        let slot = check_entry(fd, token, mode)?;
        check_open(fd)?;
        self.fds.set(
            token,
            PollFd::from_borrowed_fd(borrow_fd(fd), flags(interest)),
        );
        if let Some(o) = self.oneshot.get_mut(slot) {
            *o = mode == Mode::Oneshot;
        }
        Ok(())
    }

    fn delete(&mut self, _fd: RawFd, token: Token<N>) -> Result<()> {
        // A disarmed entry is not in the array; deleting it succeeds all the same.
        checked_slot(token)?;
        self.fds.remove(token.slot());
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<usize> {
        self.ready.clear();
        let timeout = super::timespec(timeout);
        let n = os(rustix::event::poll(&mut self.fds.items, timeout.as_ref()))?;
        if n == 0 {
            return Ok(0);
        }
        let oneshot = &self.oneshot;
        self.fds.collect_ready(
            &mut self.ready,
            |fd| ready(fd.revents()),
            // POLLNVAL: closed, and poll(2) would say so on every call; report it once.
            |fd, token| {
                fd.revents().contains(PollFlags::NVAL)
                    || oneshot.get(token.slot() as usize) == Some(&true)
            },
        );
        Ok(self.ready.len())
    }

    fn event(&self, i: usize) -> (Token<N>, Ready) {
        event_at(&self.ready, i)
    }

    fn close(&mut self) {
        self.fds.clear();
        self.ready.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_mapping() {
        assert_eq!(
            ready(flags(Interest::all())),
            Ready::READ | Ready::WRITE | Ready::PRIORITY
        );
        assert_eq!(ready(PollFlags::NVAL), Ready::ERROR);
        assert_eq!(
            ready(PollFlags::HUP | PollFlags::ERR),
            Ready::HUP | Ready::ERROR
        );
    }
}
