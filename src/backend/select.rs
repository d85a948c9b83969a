//! select(2) through rustix: the portable fallback.
//!
//! glibc's `fd_set` holds `FD_SETSIZE` = 1024 bits, and that is the limit this backend keeps:
//! an fd >= 1024 is refused by `add` and `modify` with [`Error::FdOutOfRange`], never written
//! past the set. The sets are rebuilt on the stack for each wait (3 × 128 bytes), so a wait is
//! O(registered + `FD_SETSIZE`). Edge mode, oneshot and closed fds are [`PollLike`]'s, as on poll.
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

use super::{borrow_fd, os, Mechanism, PollLike};
use crate::error::{Error, Result};
use crate::interest::{Interest, Ready};
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

/// [`FD_SETSIZE`] as an fd number, for comparisons with one.
// 1024 fits in an `i32` on every target.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
const FD_SETSIZE_FD: RawFd = FD_SETSIZE as RawFd;

/// Elements of one set: `c_ulong` is 64 bits on aarch64 and `x86_64`, 32 on armv7.
const SET_LEN: usize = FD_SETSIZE / (size_of::<FdSetElement>() * 8);

backend! {
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
    Select, "select", SelectPoller
}

/// What select keeps per armed fd: the number (in `0..FD_SETSIZE`) and the sets it goes in.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    fd: RawFd,
    interest: Interest,
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
pub type SelectPoller<const N: usize> = PollLike<Select, N>;

type Sets = [[FdSetElement; SET_LEN]; 3];

/// select(2) over the read, write and except sets, for the numbers below `nfds`.
#[allow(unsafe_code)]
fn select(nfds: RawFd, sets: &mut Sets, timeout: Option<&Timespec>) -> rustix::io::Result<i32> {
    // Checked here rather than trusted from the callers: the kernel reads and writes `nfds`
    // bits of each set.
    if !(0..=FD_SETSIZE_FD).contains(&nfds) {
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

/// Fills the sets from the armed entries; returns `nfds`.
fn fill(entries: &[Entry], sets: &mut Sets) -> RawFd {
    let mut nfds = 0;
    for e in entries {
        // Every stored fd is in 0..FD_SETSIZE (`Select::entry`), so neither the insert nor the
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

/// After a select(2) that reported `sets`: records the ready entries.
fn collect<const N: usize>(p: &mut SelectPoller<N>, sets: &Sets) {
    // Readiness per fd number, gathered from the three sets.
    let mut seen = [0u8; FD_SETSIZE];
    for ((_, bit), set) in KINDS.iter().zip(sets.iter()) {
        for fd in FdSetIter::new(set) {
            if let Some(s) = usize::try_from(fd).ok().and_then(|i| seen.get_mut(i)) {
                *s |= bit.bits();
            }
        }
    }
    p.collect(
        |e| {
            let bits = usize::try_from(e.fd).ok().and_then(|i| seen.get(i));
            Ready::from_bits_truncate(bits.copied().unwrap_or(0))
        },
        |_| false,
    );
}

/// After EBADF: records each entry whose fd is no longer open, as ERROR, and disarms it. One
/// `fcntl` per entry, on this error path only. Returns whether it found any.
fn disarm_closed<const N: usize>(p: &mut SelectPoller<N>) -> bool {
    let mut found = false;
    p.collect(
        |e| {
            if rustix::io::fcntl_getfd(borrow_fd(e.fd)) == Err(Errno::BADF) {
                found = true;
                Ready::ERROR
            } else {
                Ready::empty()
            }
        },
        |_| true,
    );
    found
}

impl Mechanism for Select {
    type Entry = Entry;

    /// Refuses an fd that does not fit in an `fd_set`: `wait` writes its bit into sets of
    /// `FD_SETSIZE` bits.
    fn entry(fd: RawFd, interest: Interest) -> Result<Entry> {
        if !(0..FD_SETSIZE_FD).contains(&fd) {
            return Err(Error::FdOutOfRange);
        }
        Ok(Entry { fd, interest })
    }

    fn wait<const N: usize>(p: &mut SelectPoller<N>, timeout: Option<Duration>) -> Result<()> {
        let mut timeout = super::timespec(timeout);
        // EBADF with no entry found closed: a number closed and taken again by another
        // thread between the two calls. Waiting once more is right; a second time, give up.
        let mut retried = false;
        // Each turn but one disarms an entry, so this ends within N + 2 turns.
        loop {
            let mut sets = [[FdSetElement::default(); SET_LEN]; 3];
            let nfds = fill(p.entries(), &mut sets);
            match select(nfds, &mut sets, timeout.as_ref()) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    collect(p, &sets);
                    return Ok(());
                }
                Err(Errno::BADF) => {
                    if !disarm_closed(p) {
                        if retried {
                            return if p.reported() {
                                Ok(())
                            } else {
                                Err(Error::Os(Errno::BADF))
                            };
                        }
                        retried = true;
                    }
                    // Something to report: only look at the rest, without waiting.
                    if p.reported() {
                        timeout = Some(Timespec {
                            tv_sec: 0,
                            tv_nsec: 0,
                        });
                    }
                }
                // Closed entries found already are disarmed: report them, not the error.
                Err(_) if p.reported() => return Ok(()),
                Err(e) => return os(Err(e)),
            }
        }
    }
}
