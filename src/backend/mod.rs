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
//!   hang-up, ERROR for an error or an fd that is no longer open (POLLNVAL, select's EBADF),
//!   `READ_CLOSED` for a peer that shut down its writing side (`EPOLLRDHUP`, `POLLRDHUP`), which
//!   a backend reports only to a registration with READ, and together with READ.
//! - Any token and any readiness a wait reports are checked by the core against the live table
//!   and masked to the registered interest, unless the poller declares
//!   [`REPORTS_ONLY_REGISTERED`](Poller::REPORTS_ONLY_REGISTERED) (epoll, poll and select do).
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

use crate::error::{Error, Result};
use crate::interest::{Interest, Mode, Ready};
use core::time::Duration;
use rustix::event::epoll::EventFlags;
use rustix::event::PollFlags;
use rustix::fd::{BorrowedFd, RawFd};

/// A backend's marker type and its [`Backend`] impl: `$name`, whose selectors keep a
/// `$poller<N>` and which Python would call `$py`.
macro_rules! backend {
    ($(#[$doc:meta])* $name:ident, $py:literal, $poller:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name;

        impl $crate::backend::Backend for $name {
            const NAME: &'static str = $py;
            type Poller<const N: usize> = $poller<N>;
        }
    };
}

mod dense;
pub mod epoll;
pub mod poll;
pub mod select;
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim;

pub use dense::{Mechanism, PollLike};
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

    /// Whether every wait reports at most `N` events, and only registrations that are added and
    /// not deleted (epoll's orphaned open files aside: the core learns of them from `delete`'s
    /// `EBADF`/`ENOENT`), each with readiness that is not empty and is within its registered
    /// interest, plus HUP and ERROR, and `READ_CLOSED` with READ only when READ is registered (the
    /// kernel reports `EPOLLRDHUP` / `POLLRDHUP` only when asked, and picosel asks with READ
    /// only). epoll(7), poll(2) and select(2) report nothing else, so
    /// their pollers say so. The core then skips its own checks of each event's generation and
    /// interest for a batch in which no registration changed since the wait. `false` (the
    /// default): every event is checked.
    const REPORTS_ONLY_REGISTERED: bool = false;

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
/// (`proc_sys_fs(5)`), which the kernel caps at `INT_MAX & -BITS_PER_LONG` or lower
/// (`sysctl_nr_open_max`, fs/file.c).
const NEVER_OPEN: RawFd = RawFd::MAX;

/// Makes a [`BorrowedFd`] of a number the caller gave, to hand to a syscall that looks the
/// number up in the fd table itself: `epoll_ctl(2)`, poll(2) or `fcntl(F_GETFD)`.
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

// epoll(7) gives its flags poll(2)'s values (`EPOLLIN == POLLIN`, ...), so one translation
// serves epoll, poll and select; the table below indexes the low six bits.
const _: () = assert!(
    EventFlags::IN.bits() == PollFlags::IN.bits() as u32
        && EventFlags::PRI.bits() == PollFlags::PRI.bits() as u32
        && EventFlags::OUT.bits() == PollFlags::OUT.bits() as u32
        && EventFlags::ERR.bits() == PollFlags::ERR.bits() as u32
        && EventFlags::HUP.bits() == PollFlags::HUP.bits() as u32
        && PollFlags::IN
            .union(PollFlags::PRI)
            .union(PollFlags::OUT)
            .union(PollFlags::ERR)
            .union(PollFlags::HUP)
            .union(PollFlags::NVAL)
            .bits() as u32
            <= KERNEL_LOW
);

/// The kernel's readiness flags (poll(2)'s; epoll's are the same) and the [`Ready`] bit each
/// stands for. The first three are also what a registration asks for.
const KERNEL: [(PollFlags, Ready); 5] = [
    (PollFlags::IN, Ready::READ),
    (PollFlags::OUT, Ready::WRITE),
    (PollFlags::PRI, Ready::PRIORITY),
    (PollFlags::HUP, Ready::HUP),
    // POLLNVAL: the fd is not open.
    (PollFlags::ERR.union(PollFlags::NVAL), Ready::ERROR),
];

/// The kernel's flag for [`Ready::READ_CLOSED`]: `POLLRDHUP`, `EPOLLRDHUP` (both 0x2000), set
/// when a stream socket's peer shut down its writing side (`tcp_poll` and `unix_poll` in the
/// kernel set it together with `POLLIN`). Asked for with every READ interest: epoll(7) and
/// poll(2) report it only when asked, and a file that has no such state (a pipe, a tty, an
/// eventfd) never sets it.
// `PollFlags`' bits are a `c_short` on Android and a `u16` elsewhere: cast with `as`.
#[allow(clippy::unnecessary_cast)]
const RDHUP: u16 = PollFlags::RDHUP.bits() as u16;

// `ready_of` finds RDHUP, which is outside the low byte its table indexes, on READ_CLOSED's
// bit once shifted down by 8.
const _: () = assert!(
    RDHUP as u32 == EventFlags::RDHUP.bits() && RDHUP >> 8 == Ready::READ_CLOSED.bits() as u16
);

/// The kernel's request bits for `interest`: `POLLIN | POLLRDHUP`, `POLLOUT`, `POLLPRI`
/// (epoll's are the same). `Interest` shares its bits with `Ready`'s first three. A lookup in
/// [`REQUEST`], built at compile time by [`request_rule`]: the loop, done at run time, was
/// about a hundred bytes of code.
#[inline]
pub(crate) const fn request_bits(interest: Interest) -> u16 {
    REQUEST[(interest.bits() & Interest::all().bits()) as usize]
}

/// The rule behind [`request_bits`].
// `PollFlags`' bits are a `c_short` on Android and a `u16` elsewhere: cast with `as`.
#[allow(clippy::unnecessary_cast)]
const fn request_rule(interest: Interest) -> u16 {
    let mut f = 0;
    let mut i = 0;
    while i < 3 {
        if interest.bits() & KERNEL[i].1.bits() != 0 {
            f |= KERNEL[i].0.bits() as u16;
        }
        i += 1;
    }
    if interest.contains(Interest::READ) {
        f |= RDHUP;
    }
    f
}

/// [`request_rule`] for every interest, indexed by its bits.
// `i <= Interest::all().bits()`, a `u8`.
#[allow(clippy::cast_possible_truncation)]
const REQUEST: [u16; Interest::all().bits() as usize + 1] = {
    let mut table = [0; Interest::all().bits() as usize + 1];
    let mut i = 0;
    while i < table.len() {
        table[i] = request_rule(Interest::from_bits_truncate(i as u8));
        i += 1;
    }
    table
};

/// What the kernel reported (poll(2)'s `revents` or epoll's flags) as raw [`Ready`]. A lookup
/// in a table built at compile time, since every event of every wait goes through it; indexed
/// by the low six bits, which hold every flag it translates (the mask costs what the low
/// byte's zero-extension did, and the table is 64 bytes rather than 256). `RDHUP`, the one
/// flag above them that picosel asks for, is moved onto `READ_CLOSED`'s bit with a shift and
/// a mask beside it.
// The byte above the low one, cut off on purpose.
#[allow(clippy::cast_possible_truncation)]
#[inline]
pub(crate) const fn ready_of(bits: u32) -> Ready {
    let closed = (bits >> 8) as u8 & Ready::READ_CLOSED.bits();
    Ready::from_bits_retain(READY_OF[(bits & KERNEL_LOW) as usize].bits() | closed)
}

/// The bits [`READY_OF`] is indexed by: `POLLIN` up to `POLLNVAL` (0x20).
const KERNEL_LOW: u32 = 0x3f;

// `as` for `PollFlags`' bits as in `request_bits`; `bits < 64` fits in a `u16`.
#[allow(clippy::unnecessary_cast, clippy::cast_possible_truncation)]
const READY_OF: [Ready; KERNEL_LOW as usize + 1] = {
    let mut table = [Ready::empty(); KERNEL_LOW as usize + 1];
    let mut bits = 0;
    while bits < table.len() {
        let f = PollFlags::from_bits_truncate(bits as u16 as _);
        let mut i = 0;
        while i < KERNEL.len() {
            if f.intersects(KERNEL[i].0) {
                table[bits] = table[bits].union(KERNEL[i].1);
            }
            i += 1;
        }
        bits += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // `PollFlags`' bits are a `c_short` under rustix's libc backend (Miri, Android).
    #[allow(clippy::unnecessary_cast)]
    fn kernel_bits_round_trip() {
        let all = u32::from(request_bits(Interest::all()));
        let nval = u32::from(PollFlags::NVAL.bits() as u16);
        let rdhup = u32::from(PollFlags::RDHUP.bits() as u16);
        for (bits, want) in [
            // READ asks for RDHUP too, which comes back as READ_CLOSED.
            (all, Ready::all().difference(Ready::HUP | Ready::ERROR)),
            (u32::from(request_bits(Interest::WRITE)), Ready::WRITE),
            (
                (EventFlags::HUP | EventFlags::ERR).bits(),
                Ready::HUP | Ready::ERROR,
            ),
            (nval, Ready::ERROR),
            // EPOLLRDHUP / POLLRDHUP, above the low byte, is READ_CLOSED.
            (
                (EventFlags::IN | EventFlags::RDHUP).bits(),
                Ready::READ | Ready::READ_CLOSED,
            ),
            (rdhup, Ready::READ_CLOSED),
        ] {
            assert_eq!(ready_of(bits), want, "{bits:#x}");
        }
        assert_eq!(
            u32::from(request_bits(Interest::READ)),
            (EventFlags::IN | EventFlags::RDHUP).bits()
        );
        // Every interest asks for the union of its bits' requests, from the table as from
        // the rule.
        for i in 0..=Interest::all().bits() {
            let interest = Interest::from_bits_truncate(i);
            let mut want = 0;
            for (bit, request) in [
                (Interest::READ, (EventFlags::IN | EventFlags::RDHUP).bits()),
                (Interest::WRITE, EventFlags::OUT.bits()),
                (Interest::PRIORITY, EventFlags::PRI.bits()),
            ] {
                if interest.contains(bit) {
                    want |= request;
                }
            }
            assert_eq!(u32::from(request_bits(interest)), want, "{interest:?}");
            assert_eq!(request_bits(interest), request_rule(interest));
        }
        // Bits picosel never asks for (EPOLLET, EPOLLRDNORM, ...) change nothing.
        assert_eq!(
            ready_of((EventFlags::IN | EventFlags::RDNORM | EventFlags::ET).bits()),
            Ready::READ
        );
    }
}
