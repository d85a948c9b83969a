//! The poll-like backends, [`Poll`](super::Poll) and [`Select`](super::Select), as one
//! implementation, as `CPython`'s `_PollLikeSelector` serves both: a table of the armed entries
//! that every wait hands to the kernel whole, the ready events of the last wait, oneshot
//! emulated by disarming, and a closed fd reported once then disarmed. They differ only in their
//! [`Mechanism`]: what an entry holds, and the syscall that waits.
//!
//! The table is dense, smol-rs/polling's layout: a packed array (what poll(2) gets as is) plus
//! slot → position, fixed after each `swap_remove`, so adding and removing are O(1).

use super::{check_open, Poller, Token};
use crate::error::{Error, Result};
use crate::interest::{Interest, Mode, Ready};
use core::time::Duration;
use rustix::fd::RawFd;

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::backend::Poll {}
    impl Sealed for crate::backend::Select {}
}

/// The part of a poll-like backend that is its own: the entry it keeps per armed fd and the
/// syscall that waits. Implemented by [`Poll`](super::Poll) and [`Select`](super::Select) only;
/// everything else is [`PollLike`]'s.
pub trait Mechanism: sealed::Sealed + Sized {
    /// What the table holds for an armed fd.
    type Entry: core::fmt::Debug;

    /// The entry for `fd` (`>= 0`) watched for `interest`, or the mechanism's refusal
    /// ([`Error::FdOutOfRange`] on select).
    ///
    /// # Errors
    /// As above.
    fn entry(fd: RawFd, interest: Interest) -> Result<Self::Entry>;

    /// Waits for readiness of the armed entries, for at most `timeout`, and records what is
    /// ready with [`PollLike`]'s collector.
    ///
    /// # Errors
    /// The kernel's refusal; `Errno::INTR` when a signal interrupted the wait.
    fn wait<const N: usize>(
        poller: &mut PollLike<Self, N>,
        timeout: Option<Duration>,
    ) -> Result<()>;
}

/// The state of a selector on a poll-like backend, [`Poll`](super::Poll) or
/// [`Select`](super::Select) (`M`): the armed entries, which registrations are oneshot, and the
/// last wait's events.
///
/// Edge mode is refused: poll(2) and select(2) are level-triggered only. Oneshot is emulated: a
/// oneshot entry that is reported is taken out of the table until `modify` re-arms it (a zero
/// interest would not do: poll(2) always reports POLLHUP, POLLERR and POLLNVAL, so a hung-up fd
/// would wake every wait). A closed fd is reported once, as [`Ready::ERROR`], and taken out the
/// same way (see the [module docs](super) of `backend`).
#[derive(Debug)]
pub struct PollLike<M: Mechanism, const N: usize> {
    table: Dense<M::Entry, N>,
    /// By slot: the registration is oneshot, so it is disarmed once reported.
    oneshot: [bool; N],
    ready: heapless::Vec<(Token<N>, Ready), N>,
}

impl<M: Mechanism, const N: usize> PollLike<M, N> {
    /// The armed entries, in the order the kernel gets them.
    pub(crate) fn entries(&self) -> &[M::Entry] {
        &self.table.items
    }

    /// The armed entries, for a syscall that writes its results into them (poll(2)).
    pub(crate) fn entries_mut(&mut self) -> &mut [M::Entry] {
        &mut self.table.items
    }

    /// Whether this wait has reported anything yet.
    pub(crate) fn reported(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Records each entry for which `ready` is not empty, and disarms it when it is oneshot or
    /// `closed` says its fd is not open. O(entries).
    pub(crate) fn collect(
        &mut self,
        mut ready: impl FnMut(&M::Entry) -> Ready,
        closed: impl Fn(&M::Entry) -> bool,
    ) {
        let oneshot = &self.oneshot;
        let table = &mut self.table;
        let mut i = 0;
        while i < table.items.len() {
            let r = ready(&table.items[i]);
            if r.is_empty() {
                i += 1;
                continue;
            }
            let token = table.tokens[i];
            // Cannot be full: at most one event per entry, at most N entries.
            let _ = self.ready.push((token, r));
            if closed(&table.items[i]) || oneshot.get(token.slot() as usize) == Some(&true) {
                // Disarm; the last entry moves to `i` and is looked at next.
                table.remove_at(i);
            } else {
                i += 1;
            }
        }
    }
}

/// `token`'s slot as an index, or [`Error::NotRegistered`] when it is not below `N` (a token
/// packs its slot in ⌈log₂ N⌉ bits, so for an `N` that is not a power of two it can be): only a
/// direct caller passes one.
fn checked_slot<const N: usize>(token: Token<N>) -> Result<usize> {
    let slot = token.slot() as usize;
    if slot < N {
        Ok(slot)
    } else {
        Err(Error::NotRegistered)
    }
}

impl<M: Mechanism, const N: usize> Poller<N> for PollLike<M, N> {
    const CLOSED: Self = PollLike {
        table: Dense::EMPTY,
        oneshot: [false; N],
        ready: heapless::Vec::new(),
    };

    /// Only the table's entries are reported (a deleted one is out of it), with what the kernel
    /// says of the interest they hand it, hang-up and error; a closed fd as ERROR.
    const REPORTS_ONLY_REGISTERED: bool = true;

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
    ///
    /// Checks what the core already does, since nothing stops safe code from calling a poller
    /// directly: a negative `fd` is [`Error::InvalidFd`], edge mode [`Error::Unsupported`], a
    /// slot not below `N` [`Error::NotRegistered`]. Then the mechanism's own limit, then that
    /// the fd is open (`EBADF` otherwise, as epoll answers).
    fn modify(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        if fd < 0 {
            return Err(Error::InvalidFd);
        }
        if !Self::supports(mode) {
            return Err(Error::Unsupported);
        }
        let slot = checked_slot(token)?;
        let entry = M::entry(fd, interest)?;
        check_open(fd)?;
        self.table.set(token, entry);
        if let Some(o) = self.oneshot.get_mut(slot) {
            *o = mode == Mode::Oneshot;
        }
        Ok(())
    }

    fn delete(&mut self, _fd: RawFd, token: Token<N>) -> Result<()> {
        // A disarmed entry is not in the table; deleting it succeeds all the same.
        checked_slot(token)?;
        self.table.remove(token.slot());
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<usize> {
        self.ready.clear();
        M::wait(self, timeout)?;
        Ok(self.ready.len())
    }

    /// Past the end (only a direct caller asks): no readiness, which the core would skip,
    /// rather than a panic.
    #[inline]
    fn event(&self, i: usize) -> (Token<N>, Ready) {
        self.ready
            .get(i)
            .copied()
            .unwrap_or((Token::from_u64(u64::MAX), Ready::empty()))
    }

    fn close(&mut self) {
        self.table.clear();
        self.ready.clear();
    }
}

const ABSENT: u32 = 0;

#[derive(Debug)]
struct Dense<T, const N: usize> {
    /// The armed entries, packed.
    items: heapless::Vec<T, N>,
    /// Parallel to `items`.
    tokens: heapless::Vec<Token<N>, N>,
    /// Slot → position + 1 in `items`; `ABSENT` when the slot is not armed.
    pos: [u32; N],
}

impl<T, const N: usize> Dense<T, N> {
    const EMPTY: Self = {
        // Positions + 1 are kept as `u32`: with `N < u32::MAX` the largest, `N`, fits, on
        // 32-bit targets too. (The registry asks the same of `N`; the pollers can be built
        // without one.)
        assert!(N < u32::MAX as usize, "capacity must be below u32::MAX");
        Dense {
            items: heapless::Vec::new(),
            tokens: heapless::Vec::new(),
            pos: [ABSENT; N],
        }
    };

    fn position(&self, slot: u32) -> Option<usize> {
        match self.pos.get(slot as usize) {
            Some(&p) if p != ABSENT => Some((p - 1) as usize),
            _ => None,
        }
    }

    /// Adds or replaces the entry for `token`'s slot.
    fn set(&mut self, token: Token<N>, item: T) {
        if let Some(p) = self.position(token.slot()) {
            self.items[p] = item;
            self.tokens[p] = token;
            return;
        }
        let slot = token.slot() as usize;
        if slot >= N {
            return;
        }
        // Cannot fail: at most one entry per slot, and there are N slots.
        if self.items.push(item).is_ok() && self.tokens.push(token).is_ok() {
            // `len <= N < u32::MAX` (asserted in `EMPTY`): no truncation.
            #[allow(clippy::cast_possible_truncation)]
            let p = self.items.len() as u32;
            self.pos[slot] = p;
        }
    }

    /// Removes the entry at position `p`; the last entry moves into its place.
    fn remove_at(&mut self, p: usize) {
        if p >= self.items.len() {
            return;
        }
        let slot = self.tokens[p].slot() as usize;
        self.items.swap_remove(p);
        self.tokens.swap_remove(p);
        self.pos[slot] = ABSENT;
        if let Some(moved) = self.tokens.get(p) {
            // `p < len <= N < u32::MAX` (asserted in `EMPTY`): neither truncates nor overflows.
            #[allow(clippy::cast_possible_truncation)]
            let p = p as u32;
            self.pos[moved.slot() as usize] = p + 1;
        }
    }

    /// Removes `slot`'s entry if it has one.
    fn remove(&mut self, slot: u32) {
        if let Some(p) = self.position(slot) {
            self.remove_at(p);
        }
    }

    fn clear(&mut self) {
        while !self.items.is_empty() {
            self.remove_at(self.items.len() - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_remove_fixes_moved_position() {
        let mut d = Dense::<u8, 4>::EMPTY;
        for s in 0..4 {
            d.set(Token::new(s, 0), s as u8);
        }
        d.remove(1);
        assert_eq!(d.items.len(), 3);
        let p3 = d.position(3).unwrap();
        assert_eq!(d.items[p3], 3);
        assert_eq!(d.position(1), None);
        d.set(Token::new(1, 1), 11);
        assert_eq!(d.items[d.position(1).unwrap()], 11);
        d.set(Token::new(3, 0), 33);
        assert_eq!(d.items.len(), 4);
        assert_eq!(d.items[d.position(3).unwrap()], 33);
        d.clear();
        assert!(d.items.is_empty() && (0..4).all(|s| d.position(s).is_none()));
    }
}
