//! select(2) through rustix: the portable fallback.
//!
//! glibc's `fd_set` holds `FD_SETSIZE` = 1024 bits, and that is the limit this backend keeps:
//! an fd >= 1024 is refused by `add` and `modify` with [`Error::FdOutOfRange`], never written
//! past the set. The sets are rebuilt on the stack for each wait (3 × 128 bytes), so a wait is
//! O(registered + FD_SETSIZE). Edge mode is refused; oneshot is emulated as on poll.
//!
//! # A registered fd closed without `unregister`
//!
//! select(2) watches numbers and fails with `EBADF` for the whole call when one in its sets is
//! not open (select(2), ERRORS), so it cannot say what else is ready. On that error, and only
//! then, the backend asks `fcntl(F_GETFD)` about each entry, reports each closed one once as
//! [`Ready::ERROR`] and takes it out of the sets as it does a fired oneshot entry, then runs
//! select(2) again with a zero timeout over the rest and reports what is ready there in the
//! same wait. Later waits block as usual. A `modify` that reaches the backend (the selector
//! makes none for a change of data alone) puts the entry back if `fcntl` finds the number
//! open; `unregister` forgets it.
//!
//! Its limit: the kernel gives a closed number to the next file opened. If that happens before
//! a wait has seen the number closed, select(2) watches the new file under the registration
//! instead: the registration is reported with the new file's readiness, and its handler runs
//! for it, until the registration is unregistered (registering the new file fails with
//! `AlreadyRegistered` until then). `modify` cannot tell either (`fcntl` finds the number open)
//! and goes on watching the new file. A file that takes the number after a wait reported it
//! closed is not watched, unless a `modify` re-arms the registration. Telling the two files
//! apart would cost an `fstat` per entry on every wait; unregistering before closing avoids it.

use super::dense::{check_entry, checked_slot, event_at, Dense};
use super::{borrow_fd, check_open, os, Backend, Poller, Token};
use crate::{Error, Interest, Mode, Ready, Result};
use core::mem::size_of;
use core::time::Duration;
use rustix::event::{fd_set_insert, FdSetElement, FdSetIter, Timespec};
use rustix::fd::RawFd;
use rustix::io::Errno;

/// `FD_SETSIZE` on Linux: the number of bits in glibc's and musl's `fd_set`.
///
/// ```
/// assert_eq!(picosel::backend::select::FD_SETSIZE, 1024);
/// ```
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
///
/// # Examples
///
/// Safe code may drive a poller directly; what the selector would refuse is an error here too,
/// and no number outside `0..FD_SETSIZE` ever reaches an `fd_set`.
///
/// ```
/// use picosel::backend::{select::SelectPoller, Poller, Token};
/// use picosel::{Error, Interest, Mode};
/// let mut p = SelectPoller::<4>::CLOSED;
/// let token = Token::<4>::new(0, 0);
/// assert_eq!(p.modify(1500, token, Interest::READ, Mode::Level), Err(Error::FdOutOfRange));
/// assert_eq!(p.add(-1, token, Interest::READ, Mode::Level), Err(Error::InvalidFd));
/// assert_eq!(p.wait(Some(std::time::Duration::ZERO)), Ok(0));
/// ```
#[derive(Debug)]
pub struct SelectPoller<const N: usize> {
    entries: Dense<Entry, N>,
    ready: heapless::Vec<(Token<N>, Ready), N>,
}

type Sets = [[FdSetElement; SET_LEN]; 3];

/// select(2) over the read, write and except sets, for the numbers below `nfds`.
#[allow(unsafe_code)]
fn select(nfds: RawFd, sets: &mut Sets, timeout: Option<&Timespec>) -> rustix::io::Result<i32> {
    // Checked here rather than trusted from the callers: the kernel reads and writes `nfds`
    // bits of each set.
    if !(0..=FD_SETSIZE as RawFd).contains(&nfds) {
        return Err(Errno::INVAL);
    }
    let [r, w, e] = sets;
    // SAFETY: each set holds FD_SETSIZE bits and `0 <= nfds <= FD_SETSIZE` (checked above), so
    // the kernel reads and writes only inside the three arrays. rustix asks that every fd in
    // the sets be open, which the caller may have made false by closing one; the kernel checks
    // each number against the fd table and fails with EBADF before it polls any (a number
    // taken by another file is that file's, see the module docs), and no memory is reached
    // through a number.
    unsafe { rustix::event::select(nfds, Some(r), Some(w), Some(e), timeout) }
}

/// A set's bit for `interest`, in the order of [`Sets`].
const KINDS: [(Interest, Ready); 3] = [
    (Interest::READ, Ready::READ),
    (Interest::WRITE, Ready::WRITE),
    (Interest::PRIORITY, Ready::PRIORITY),
];

impl<const N: usize> SelectPoller<N> {
    /// Fills the sets from the armed entries; returns `nfds`.
    fn fill(&self, sets: &mut Sets) -> RawFd {
        let mut nfds = 0;
        for e in &self.entries.items {
            // Every stored fd is in 0..FD_SETSIZE (`modify`), so neither the insert nor the
            // `+ 1` can go out of range.
            for ((want, _), set) in KINDS.iter().zip(sets.iter_mut()) {
                if e.interest.contains(*want) {
                    fd_set_insert(set, e.fd);
                }
            }
            nfds = nfds.max(e.fd + 1);
        }
        nfds
    }

    /// After a select(2) that reported `sets`: appends the ready entries.
    fn collect(&mut self, sets: &Sets) {
        // Readiness per fd number, gathered from the three sets.
        let mut seen = [0u8; FD_SETSIZE];
        for ((_, bit), set) in KINDS.iter().zip(sets.iter()) {
            for fd in FdSetIter::new(set) {
                if let Some(s) = seen.get_mut(fd as usize) {
                    *s |= bit.bits();
                }
            }
        }
        self.entries.collect_ready(
            &mut self.ready,
            |e| Ready::from_bits_truncate(seen.get(e.fd as usize).copied().unwrap_or(0)),
            |e, _| e.oneshot,
        );
    }

    /// After EBADF: appends each entry whose fd is no longer open, as ERROR, and disarms it.
    /// One `fcntl` per entry, on this error path only. Returns how many it found.
    fn disarm_closed(&mut self) -> usize {
        let before = self.ready.len();
        self.entries.collect_ready(
            &mut self.ready,
            |e| {
                if rustix::io::fcntl_getfd(borrow_fd(e.fd)) == Err(Errno::BADF) {
                    Ready::ERROR
                } else {
                    Ready::empty()
                }
            },
            |_, _| true,
        );
        self.ready.len() - before
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
        self.modify(fd, token, interest, mode)
    }

    /// Also re-arms an entry disarmed after a oneshot report or a report of its fd closed.
    fn modify(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        check_entry(fd, token, mode)?;
        // `fd >= 0` now. Checked here, where the fd is stored, since `wait` writes its bit
        // into sets of FD_SETSIZE bits.
        if fd as usize >= FD_SETSIZE {
            return Err(Error::FdOutOfRange);
        }
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
        // A disarmed entry is not in the sets; deleting it succeeds all the same.
        checked_slot(token)?;
        self.entries.remove(token.slot());
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<usize> {
        self.ready.clear();
        let mut timeout = super::timespec(timeout);
        // EBADF with no entry found closed: a number closed and taken again by another
        // thread between the two calls. Waiting once more is right; a second time, give up.
        let mut retried = false;
        // Each turn but one disarms an entry, so this ends within N + 2 turns.
        loop {
            let mut sets = [[FdSetElement::default(); SET_LEN]; 3];
            let nfds = self.fill(&mut sets);
            match select(nfds, &mut sets, timeout.as_ref()) {
                Ok(0) => return Ok(self.ready.len()),
                Ok(_) => {
                    self.collect(&sets);
                    return Ok(self.ready.len());
                }
                Err(Errno::BADF) => {
                    if self.disarm_closed() == 0 {
                        if retried {
                            return if self.ready.is_empty() {
                                Err(Error::Os(Errno::BADF))
                            } else {
                                Ok(self.ready.len())
                            };
                        }
                        retried = true;
                    }
                    // Something to report: only look at the rest, without waiting.
                    if !self.ready.is_empty() {
                        timeout = Some(Timespec {
                            tv_sec: 0,
                            tv_nsec: 0,
                        });
                    }
                }
                // Closed entries found already are disarmed: report them, not the error.
                Err(e) if self.ready.is_empty() => return os(Err(e)),
                Err(_) => return Ok(self.ready.len()),
            }
        }
    }

    fn event(&self, i: usize) -> (Token<N>, Ready) {
        event_at(&self.ready, i)
    }

    fn close(&mut self) {
        self.entries.clear();
        self.ready.clear();
    }
}
