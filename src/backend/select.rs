//! select(2) through rustix: the portable fallback.
//!
//! glibc's `fd_set` holds `FD_SETSIZE` = 1024 bits, and that is the limit this backend keeps:
//! an fd >= 1024 is refused at register time with [`Error::FdOutOfRange`], never written past
//! the set. The sets are rebuilt on the stack for each wait (3 × 128 bytes), so a wait is
//! O(registered + FD_SETSIZE). Edge mode is refused; oneshot is emulated as on poll.
//!
//! A registered fd that was closed makes select(2) fail with `EBADF` for the whole call; the
//! backend then finds the closed fds (`fcntl(F_GETFD)`) and reports each as [`Ready::ERROR`],
//! as poll reports `POLLNVAL`.

use super::dense::Dense;
use super::{borrow_fd, check_open, os, Backend, Poller, Token};
use crate::{Error, Interest, Mode, Ready, Result};
use core::mem::size_of;
use rustix::event::{fd_set_insert, FdSetElement, FdSetIter};
use rustix::fd::RawFd;
use rustix::io::Errno;

/// `FD_SETSIZE` on Linux: the number of bits in glibc's and musl's `fd_set`.
pub const FD_SETSIZE: usize = 1024;

/// Elements of one set: `c_ulong` is 64 bits on aarch64 and x86_64, 32 on armv7.
const SET_LEN: usize = FD_SETSIZE / (size_of::<FdSetElement>() * 8);

/// The select backend.
///
/// # Examples
///
/// ```
/// use picosel::{SelectSelector, Error, Interest};
/// let mut sel = SelectSelector::<(), 8>::new();
/// // Numbers at or above FD_SETSIZE cannot be put in an fd_set.
/// assert_eq!(sel.register(4096, Interest::READ, ()), Err(Error::FdOutOfRange));
/// ```
///
/// # References
/// - [select(2)](https://man7.org/linux/man-pages/man2/select.2.html)
#[doc(alias = "select")]
#[doc(alias = "pselect6")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Select;

impl Backend for Select {
    const NAME: &'static str = "select";
    type Poller<const N: usize> = SelectPoller<N>;
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    fd: RawFd,
    interest: Interest,
    oneshot: bool,
}

/// The state of one select selector: the armed entries and the last wait's events.
#[derive(Debug)]
pub struct SelectPoller<const N: usize> {
    entries: Dense<Entry, N>,
    ready: heapless::Vec<(Token<N>, Ready), N>,
}

#[allow(unsafe_code)]
fn select(
    nfds: RawFd,
    sets: &mut [[FdSetElement; SET_LEN]; 3],
    timeout: Option<&rustix::event::Timespec>,
) -> rustix::io::Result<i32> {
    let [r, w, e] = sets;
    // SAFETY: each set holds FD_SETSIZE bits and `nfds <= FD_SETSIZE` (fds >= FD_SETSIZE are
    // refused in `add`), so the kernel reads and writes only inside the three arrays. rustix
    // asks that every fd in the sets be open; one that the caller closed makes the kernel
    // return EBADF without touching anything, which `wait` handles.
    unsafe { rustix::event::select(nfds, Some(r), Some(w), Some(e), timeout) }
}

impl<const N: usize> SelectPoller<N> {
    /// After EBADF: report every registered fd that is no longer open as ERROR.
    fn report_closed(&mut self) -> usize {
        self.entries.collect_ready(
            &mut self.ready,
            |e| {
                if rustix::io::fcntl_getfd(borrow_fd(e.fd)) == Err(Errno::BADF) {
                    Ready::ERROR
                } else {
                    Ready::empty()
                }
            },
            |e, _| e.oneshot,
        );
        self.ready.len()
    }
}

impl<const N: usize> Poller<N> for SelectPoller<N> {
    const CLOSED: Self = SelectPoller {
        entries: Dense::EMPTY,
        ready: heapless::Vec::new(),
    };

    fn supports(mode: Mode) -> bool {
        mode != Mode::Edge
    }

    fn open(&mut self) -> Result<()> {
        Ok(())
    }

    fn add(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        if fd as usize >= FD_SETSIZE {
            return Err(Error::FdOutOfRange);
        }
        self.modify(fd, token, interest, mode)
    }

    fn modify(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        check_open(fd)?;
        let entry = Entry {
            fd,
            interest,
            oneshot: mode == Mode::Oneshot,
        };
        self.entries.set(token, entry);
        Ok(())
    }

    fn delete(&mut self, _fd: RawFd, token: Token<N>) -> Result<()> {
        self.entries.remove(token.slot());
        Ok(())
    }

    fn wait(&mut self, timeout_ms: Option<i32>) -> Result<usize> {
        self.ready.clear();
        let mut sets = [[FdSetElement::default(); SET_LEN]; 3];
        let mut nfds = 0;
        for e in &self.entries.items {
            for (bit, set) in [Interest::READ, Interest::WRITE, Interest::PRIORITY]
                .into_iter()
                .zip(sets.iter_mut())
            {
                if e.interest.contains(bit) {
                    fd_set_insert(set, e.fd);
                }
            }
            nfds = nfds.max(e.fd + 1);
        }
        let timeout = super::timespec(timeout_ms);
        match select(nfds, &mut sets, timeout.as_ref()) {
            Ok(0) => return Ok(0),
            Ok(_) => {}
            Err(Errno::BADF) => {
                let n = self.report_closed();
                return if n == 0 {
                    Err(Error::Os(Errno::BADF))
                } else {
                    Ok(n)
                };
            }
            Err(e) => return os(Err(e)),
        }
        // Readiness per fd number, gathered from the three sets.
        let mut seen = [0u8; FD_SETSIZE];
        for (bit, set) in [Ready::READ, Ready::WRITE, Ready::PRIORITY]
            .into_iter()
            .zip(sets.iter())
        {
            for fd in FdSetIter::new(set) {
                if let Some(s) = seen.get_mut(fd as usize) {
                    *s |= bit.bits();
                }
            }
        }
        self.entries.collect_ready(
            &mut self.ready,
            |e| Ready::from_bits_truncate(seen[e.fd as usize]),
            |e, _| e.oneshot,
        );
        Ok(self.ready.len())
    }

    fn event(&self, i: usize) -> (Token<N>, Ready) {
        self.ready[i]
    }

    fn close(&mut self) {
        self.entries.clear();
        self.ready.clear();
    }
}
