//! poll(2) through rustix: no fd-number limit, O(registered) per wait.
//!
//! The `pollfd` array is kept dense (see `dense.rs`), so each wait hands the kernel exactly
//! the armed entries. Edge mode is refused: poll(2) is level-triggered only. Oneshot is
//! emulated: a oneshot entry that is reported is taken out of the array until `modify`
//! re-arms it (setting its events to 0 would not do: poll(2) always reports POLLHUP, POLLERR
//! and POLLNVAL, so a hung-up fd would wake every wait).

use super::dense::Dense;
use super::{borrow_fd, check_open, os, Backend, Poller, Token};
use crate::{Interest, Mode, Ready, Result};
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
#[derive(Debug)]
pub struct PollPoller<const N: usize> {
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

    fn modify(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        check_open(fd)?;
        let slot = token.slot() as usize;
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
        self.fds.remove(token.slot());
        Ok(())
    }

    fn wait(&mut self, timeout_ms: Option<i32>) -> Result<usize> {
        self.ready.clear();
        let timeout = super::timespec(timeout_ms);
        let n = os(rustix::event::poll(&mut self.fds.items, timeout.as_ref()))?;
        if n == 0 {
            return Ok(0);
        }
        let oneshot = &self.oneshot;
        self.fds.collect_ready(
            &mut self.ready,
            |fd| ready(fd.revents()),
            |_, token| oneshot.get(token.slot() as usize) == Some(&true),
        );
        Ok(self.ready.len())
    }

    fn event(&self, i: usize) -> (Token<N>, Ready) {
        self.ready[i]
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
