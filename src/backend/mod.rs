//! The backends behind one small trait: [`Epoll`], [`Poll`] and [`Select`].
//!
//! A backend is a marker type that names its per-selector state, [`Backend::Poller`], sized by
//! the selector's capacity `N`. Backends are thin: they translate [`Interest`] and [`Mode`] to
//! their flags, make the syscalls and report raw readiness. Validation, the fd table,
//! rollback, masking to the registered interest, EINTR and stale-event filtering live once, in
//! [`Selector`](crate::Selector).
//!
//! # The contract of a [`Poller`]
//!
//! - The core calls [`add`](Poller::add), [`modify`](Poller::modify) and
//!   [`delete`](Poller::delete) only with `fd >= 0`, an interest that is non-empty and within
//!   [`Interest::all`], a mode for which [`supports`](Poller::supports) is true, and a
//!   [`Token`] whose slot is `< N`. `add` is called only for a slot that is not added, `modify`
//!   and `delete` only for one that is.
//! - A failing call changes nothing in the poller.
//! - `add` may refuse an fd the mechanism cannot watch ([`Error::FdOutOfRange`]). `add` and
//!   `modify` refuse a closed fd with `EBADF` on every backend (poll and select ask
//!   `fcntl(F_GETFD)`, since their registration is not a syscall).
//! - [`wait`](Poller::wait) blocks for at most `timeout` (`None`: without limit), which the
//!   core passes in whole milliseconds and at most `i32::MAX` of them (longer waits are made of
//!   several), fills the poller's own fixed buffer and returns how many events it holds; an
//!   interrupted wait returns `Err(Error::Os(Errno::INTR))`, which the core turns into no events.
//!   [`event`](Poller::event) then reads entry `i < n` of that buffer; the buffer stays valid
//!   until the next `wait`, whatever `add`/`modify`/`delete` happen in between.
//! - Raw readiness uses [`Ready`]'s bits: READ/WRITE/PRIORITY as the kernel said, HUP for a
//!   hang-up, ERROR for an error or an fd that is no longer open (POLLNVAL, select's EBADF).
//! - An [`Oneshot`](Mode::Oneshot) registration is reported at most once, until `modify` re-arms
//!   it; a backend without native support disarms it itself after reporting it.
//! - A registration whose fd is no longer open is reported at most once, with
//!   [`Ready::ERROR`], then left out of the waits until `modify` re-arms it or `delete` removes
//!   it (epoll reports nothing: the kernel dropped the file with its last descriptor).
//! - Direct calls with inputs the core never passes (a negative fd, a slot `>= N`, an entry past
//!   the buffer) return an error or an empty event, never a panic.
//! - [`close`](Poller::close) releases the kernel object; the poller can be opened again.
//!
//! # Fds are borrowed by number
//!
//! The selector never owns the fds it watches (as in Python and mio): the caller keeps them and
//! should unregister before closing. A registered fd that is closed anyway does no harm: no
//! wait fails or returns early because of it, the other registrations are reported as usual,
//! and `unregister` of it succeeds. What each backend sees:
//!
//! - epoll watches open files, not numbers: closing the last fd of a file drops it from the
//!   interest list, so nothing is reported (epoll(7), Q6). If a duplicate keeps the file open,
//!   it stays there after `unregister`; the selector then replaces its epoll instance on the
//!   first orphaned report (see [`Poller::rebuild`]).
//! - poll and select watch numbers. poll(2) answers `POLLNVAL` for a closed number and select(2)
//!   fails with `EBADF` for the whole call; the backend reports the registration once, as
//!   [`Ready::ERROR`], and then leaves it out of what it hands the kernel until a `modify`
//!   that reaches the backend re-arms it (after checking that the fd is open) or `unregister`
//!   removes it. Without that, every wait would return at once.
//! - A number closed and then taken by another file before poll or select saw it closed is
//!   watched in its place: its readiness reaches the registration's handler until the
//!   registration is unregistered. Telling the files apart would cost an `fstat` per entry per
//!   wait; see [`poll`] and [`select`].
//!
//! The one `unsafe` operation this needs, making a [`BorrowedFd`] from a number, lives in one
//! private function, `borrow_fd`, whose comment says why a closed or reused number is harmless.

use crate::{Error, Interest, Mode, Ready, Result};
use core::time::Duration;
use rustix::fd::{BorrowedFd, RawFd};

mod dense;
pub mod epoll;
pub mod poll;
pub mod select;

pub use epoll::Epoll;
pub use poll::Poll;
pub use select::Select;

pub use crate::token::Token;

/// A backend: a marker type naming its per-selector state.
///
/// # Examples
///
/// ```
/// use picosel::backend::{Backend, Epoll, Poll, Select};
/// assert_eq!(Epoll::NAME, "epoll");
/// assert_eq!(Poll::NAME, "poll");
/// assert_eq!(Select::NAME, "select");
/// ```
pub trait Backend {
    /// The mechanism's name, as in Python's selector class names.
    const NAME: &'static str;
    /// The state of one selector of capacity `N`.
    type Poller<const N: usize>: Poller<N>;
}

/// The per-selector state of a backend; see the [module docs](self) for the contract.
pub trait Poller<const N: usize> {
    /// A closed poller: no syscall made yet, so a selector can be built in a `const` or `static`.
    const CLOSED: Self;

    /// Whether the backend can do `mode`.
    fn supports(mode: Mode) -> bool;

    /// Creates the kernel object if it is not open yet. Idempotent.
    ///
    /// # Errors
    /// The kernel's refusal (for example `EMFILE`).
    fn open(&mut self) -> Result<()>;

    /// Starts watching `fd`; events for it carry `token`.
    ///
    /// # Errors
    /// The kernel's refusal, or [`Error::FdOutOfRange`].
    fn add(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()>;

    /// Changes what `fd` is watched for (and re-arms a oneshot registration).
    ///
    /// # Errors
    /// The kernel's refusal.
    fn modify(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()>;

    /// Stops watching `fd`.
    ///
    /// # Errors
    /// The kernel's refusal; the core ignores `EBADF` and `ENOENT` (the fd was closed).
    fn delete(&mut self, fd: RawFd, token: Token<N>) -> Result<()>;

    /// Waits for readiness; returns the number of events now in the buffer.
    ///
    /// # Errors
    /// The kernel's refusal; `Errno::INTR` when a signal interrupted the wait.
    fn wait(&mut self, timeout: Option<Duration>) -> Result<usize>;

    /// Entry `i` of the last wait's buffer: the token and the raw readiness.
    fn event(&self, i: usize) -> (Token<N>, Ready);

    /// Releases the kernel object.
    fn close(&mut self);

    /// Replaces the kernel object with a fresh one that watches exactly `live`.
    ///
    /// The core calls this when a wait reported a registration that had been removed before
    /// the wait began: on epoll, an fd closed while a duplicate of it (`dup`, `fork`) keeps
    /// its open file alive stays in the interest list, since epoll watches open files and
    /// `EPOLL_CTL_DEL` needs the closed number (epoll(7), Q6). Nothing but a new epoll
    /// instance removes it; without one, a level-triggered wait would return at once forever.
    /// Backends whose registrations are not kept by the kernel have nothing to do (the
    /// default). Oneshot registrations come back armed; the core skips the report of one
    /// that already fired until `modify` re-arms it. A registration whose fd the old object
    /// had already dropped (closed) is left out: its number may now name another file.
    ///
    /// # Errors
    /// The kernel's refusal to create the new object; the old one is then kept.
    fn rebuild<I: Iterator<Item = (RawFd, Token<N>, Interest, Mode)>>(
        &mut self,
        live: I,
    ) -> Result<()> {
        let _ = live;
        Ok(())
    }
}

/// A number no fd can have, so the kernel answers `EBADF` for it: every fd is below
/// `RLIMIT_NOFILE` when it is made (getrlimit(2)), which cannot be raised past `fs.nr_open`
/// (proc_sys_fs(5)), which the kernel caps at `INT_MAX & -BITS_PER_LONG` or lower
/// (`sysctl_nr_open_max`, fs/file.c).
const NEVER_OPEN: RawFd = RawFd::MAX;

/// Makes a [`BorrowedFd`] of a number the caller gave, to hand to a syscall that looks the
/// number up in the fd table itself: epoll_ctl(2), poll(2) or `fcntl(F_GETFD)`.
///
/// The borrow does not keep the fd open, and nothing can: the caller may close the fd while a
/// syscall runs or, on poll, while its `pollfd` array holds the borrow for the life of the
/// registration, and another file may then take the number. That is harmless because a borrow
/// made here reaches the kernel only as a number, resolved in the fd table when the syscall
/// runs: a closed number gives `EBADF` or `POLLNVAL`, a reused one names the file that holds it
/// now (what the [module docs](self) describe); no memory is reached through it, and no read,
/// write or close is made with it. A negative number becomes [`NEVER_OPEN`], so the kernel
/// answers `EBADF` and no borrow of -1, the one value a `BorrowedFd` cannot hold, is made.
#[allow(unsafe_code)]
#[inline]
pub(crate) fn borrow_fd<'a>(fd: RawFd) -> BorrowedFd<'a> {
    let fd = if fd < 0 { NEVER_OPEN } else { fd };
    // SAFETY: `fd >= 0`, so it is not -1, the one value `BorrowedFd` may not hold. Its other
    // requirement, that the fd stay open while borrowed, cannot be promised for a borrowed
    // number (see above), and nothing relies on it: the borrow only reaches syscalls that check
    // the number in the kernel.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Asks the kernel whether `fd` is open (`fcntl(F_GETFD)`), for the backends whose
/// registration is not a syscall: poll and select would otherwise accept a closed fd that epoll
/// refuses with `EBADF`, and every backend should refuse the same inputs.
pub(crate) fn check_open(fd: RawFd) -> Result<()> {
    os(rustix::io::fcntl_getfd(borrow_fd(fd))).map(drop)
}

/// Converts a rustix result, keeping the errno.
#[inline]
pub(crate) fn os<T>(r: rustix::io::Result<T>) -> Result<T> {
    r.map_err(Error::Os)
}

pub(crate) use crate::timeout::timespec;
