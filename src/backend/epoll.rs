//! epoll(7) through rustix: the default backend on Linux.
//!
//! O(1) per ready event whatever the number of idle registrations: the kernel keeps the
//! interest list, and each event carries the registration's [`Token`] in `epoll_event.data`,
//! so no table is scanned. Level, edge (`EPOLLET`) and oneshot (`EPOLLONESHOT`) are native.

use super::{borrow_fd, os, ready_of, request_bits, Poller, Token};
use crate::error::{Error, Result};
use crate::interest::{Interest, Mode, Ready};
use core::time::Duration;
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::fd::{AsRawFd, OwnedFd, RawFd};

backend! {
    /// The epoll backend.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{backend::Epoll, Interest, Selector};
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut sel = Selector::<Epoll, (), 8>::new();
    /// sel.register(&r, Interest::READ, ()).unwrap();
    /// ```
    ///
    /// # References
    /// - [epoll(7)](https://man7.org/linux/man-pages/man7/epoll.7.html)
    #[doc(alias = "epoll_wait")]
    #[doc(alias = "epoll_ctl")]
    Epoll, "epoll", EpollPoller
}

/// The state of one epoll selector: the epoll fd and a buffer of `N` events.
///
/// `N` events suffice: the kernel reports each registration at most once per `epoll_wait`, and
/// at most `N` are registered.
pub struct EpollPoller<const N: usize> {
    epfd: Option<OwnedFd>,
    events: [Event; N],
}

impl<const N: usize> core::fmt::Debug for EpollPoller<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EpollPoller")
            .field("epfd", &self.epfd)
            .finish_non_exhaustive()
    }
}

// SAFETY: `epoll_event.data` is a union that may hold a pointer, which makes rustix's `Event`
// `!Send`; this poller only ever stores a `Token` as a `u64` in it and never a pointer, so the
// buffer is plain integers and the epoll fd is an `OwnedFd`, both safe to move across threads.
#[allow(unsafe_code)]
unsafe impl<const N: usize> Send for EpollPoller<N> {}

const NO_EVENT: Event = Event {
    flags: EventFlags::empty(),
    data: EventData::new_u64(0),
};

#[inline]
fn flags(interest: Interest, mode: Mode) -> EventFlags {
    let f = EventFlags::from_bits_retain(u32::from(request_bits(interest)));
    match mode {
        Mode::Level => f,
        Mode::Edge => f | EventFlags::ET,
        Mode::Oneshot => f | EventFlags::ONESHOT,
    }
}

impl<const N: usize> EpollPoller<N> {
    fn epfd(&self) -> Result<&OwnedFd> {
        // The core opens the poller before any call that needs it; EBADF if it did not.
        self.epfd.as_ref().ok_or(Error::Os(rustix::io::Errno::BADF))
    }

    /// The epoll fd, for an operation on a registered `fd`. A registered fd the caller closed
    /// may have had its number taken by this epoll fd (a rebuild creates it anew, and the
    /// kernel hands out the lowest free number): that registration is not in this instance,
    /// so it answers ENOENT, as for any closed-and-reused number, rather than the EINVAL epoll
    /// gives for an operation on itself.
    fn epfd_for(&self, fd: RawFd) -> Result<&OwnedFd> {
        let epfd = self.epfd()?;
        if epfd.as_raw_fd() == fd {
            return Err(Error::Os(rustix::io::Errno::NOENT));
        }
        Ok(epfd)
    }
}

impl<const N: usize> Poller<N> for EpollPoller<N> {
    const CLOSED: Self = EpollPoller {
        epfd: None,
        events: [NO_EVENT; N],
    };

    /// The kernel reports a watched file's registered events, hang-up and error only.
    const REPORTS_ONLY_REGISTERED: bool = true;

    fn supports(_mode: Mode) -> bool {
        true
    }

    // Always inlined, as `wait` and `event` are: a few instructions each, called from one or
    // two places per selector, where a call's set-up and the `Result` passed back cost more
    // code than the body (measured on the firmware daemon's image, docs/raspberry-pi.md).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn open(&mut self) -> Result<()> {
        if self.epfd.is_none() {
            self.epfd = Some(os(epoll::create(CreateFlags::CLOEXEC))?);
        }
        Ok(())
    }

    fn add(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        // The core refuses negative fds first; a direct caller gets the same answer.
        if fd < 0 {
            return Err(Error::InvalidFd);
        }
        os(epoll::add(
            self.epfd()?,
            borrow_fd(fd),
            EventData::new_u64(token.to_u64()),
            flags(interest, mode),
        ))
    }

    fn modify(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        if fd < 0 {
            return Err(Error::InvalidFd);
        }
        os(epoll::modify(
            self.epfd_for(fd)?,
            borrow_fd(fd),
            EventData::new_u64(token.to_u64()),
            flags(interest, mode),
        ))
    }

    fn delete(&mut self, fd: RawFd, _token: Token<N>) -> Result<()> {
        os(epoll::delete(self.epfd_for(fd)?, borrow_fd(fd)))
    }

    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn wait(&mut self, timeout: Option<Duration>) -> Result<usize> {
        let timeout = super::timespec(timeout);
        // No test of its own on the hot path (the core opens the poller first): an open fd is
        // never negative, so the mask keeps it as it is, and turns a closed poller's -1 into
        // `i32::MAX`, a number the kernel answers EBADF for (see `NEVER_OPEN`).
        let epfd = borrow_fd(self.epfd.as_ref().map_or(-1, AsRawFd::as_raw_fd) & RawFd::MAX);
        os(epoll::wait(epfd, &mut self.events[..], timeout.as_ref()))
    }

    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn event(&self, i: usize) -> (Token<N>, Ready) {
        // Past the buffer (a direct caller's mistake): no readiness, which reports nothing.
        let e = self.events.get(i).copied().unwrap_or(NO_EVENT);
        let (flags, data) = (e.flags, e.data);
        (Token::from_u64(data.u64()), ready_of(flags.bits()))
    }

    fn close(&mut self) {
        self.epfd = None;
    }

    fn rebuild<I: Iterator<Item = (RawFd, Token<N>, Interest, Mode)>>(
        &mut self,
        live: I,
    ) -> Result<()> {
        // A new instance through `open`, the old one kept until the end (or put back).
        let old = self.epfd.take();
        if let Err(e) = self.open() {
            self.epfd = old;
            return Err(e);
        }
        let fresh = self.epfd()?;
        for (fd, token, interest, mode) in live {
            let data = EventData::new_u64(token.to_u64());
            // Ask the old instance first: it dropped the registration of an fd the caller
            // closed (epoll removes a file once its last descriptor is closed), and the number
            // may now name another file. `EPOLL_CTL_MOD` answers ENOENT for such a number (or
            // EBADF when it is not open): re-adding by number would revive the dead
            // registration on that file and hand its readiness to the old handler. Such a
            // registration stays out, reported as nothing, as epoll does for a closed file;
            // its unregister succeeds as usual.
            if let Some(old) = &old {
                if old.as_raw_fd() == fd {
                    continue;
                }
                if let Err(rustix::io::Errno::NOENT | rustix::io::Errno::BADF) =
                    epoll::modify(old, borrow_fd(fd), data, flags(interest, mode))
                {
                    continue;
                }
            }
            // A failure here (the fd closed since) leaves it out the same way.
            let _ = epoll::add(fresh, borrow_fd(fd), data, flags(interest, mode));
        }
        // Dropping the old instance takes the orphaned open files out of its interest list.
        drop(old);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_reach_the_kernel() {
        assert_eq!(
            flags(Interest::all(), Mode::Level),
            EventFlags::IN | EventFlags::RDHUP | EventFlags::OUT | EventFlags::PRI
        );
        assert_eq!(
            flags(Interest::READ, Mode::Edge),
            EventFlags::IN | EventFlags::RDHUP | EventFlags::ET
        );
        assert_eq!(
            flags(Interest::WRITE, Mode::Oneshot),
            EventFlags::OUT | EventFlags::ONESHOT
        );
    }
}
