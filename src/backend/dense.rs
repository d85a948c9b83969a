//! A dense array of watched entries with O(1) add and remove by slot, shared by the poll and
//! select backends (smol-rs/polling's layout: a packed array handed straight to the kernel,
//! plus slot → position, fixed after each `swap_remove`).

use super::Token;
use crate::{Error, Mode, Ready, Result};
use rustix::fd::RawFd;

const ABSENT: u32 = 0;

/// What poll and select check before they store an entry, since nothing stops safe code from
/// calling a [`Poller`](super::Poller) directly: a negative `fd` is [`Error::InvalidFd`], a
/// `token` whose slot is not below `N` names no entry ([`Error::NotRegistered`]), edge mode is
/// [`Error::Unsupported`] (both are level-triggered only). Returns the slot as an index.
pub(crate) fn check_entry<const N: usize>(fd: RawFd, token: Token<N>, mode: Mode) -> Result<usize> {
    if fd < 0 {
        return Err(Error::InvalidFd);
    }
    if mode == Mode::Edge {
        return Err(Error::Unsupported);
    }
    checked_slot(token)
}

/// `token`'s slot as an index, or [`Error::NotRegistered`] when it is not below `N` (a token
/// packs its slot in ⌈log₂ N⌉ bits, so for an `N` that is not a power of two it can be).
pub(crate) fn checked_slot<const N: usize>(token: Token<N>) -> Result<usize> {
    let slot = token.slot() as usize;
    if slot < N {
        Ok(slot)
    } else {
        Err(Error::NotRegistered)
    }
}

/// Entry `i` of a wait's events. Past the end (only a direct caller asks): no readiness, which
/// the core would skip, rather than a panic.
pub(crate) fn event_at<const N: usize>(
    events: &[(Token<N>, Ready)],
    i: usize,
) -> (Token<N>, Ready) {
    events
        .get(i)
        .copied()
        .unwrap_or((Token::from_u64(u64::MAX), Ready::empty()))
}

#[derive(Debug)]
pub(crate) struct Dense<T, const N: usize> {
    /// The watched entries, packed; what poll(2) gets.
    pub(crate) items: heapless::Vec<T, N>,
    /// Parallel to `items`.
    pub(crate) tokens: heapless::Vec<Token<N>, N>,
    /// Slot → position + 1 in `items`; `ABSENT` when the slot is not armed.
    pos: [u32; N],
}

impl<T, const N: usize> Dense<T, N> {
    pub(crate) const EMPTY: Self = {
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

    pub(crate) fn position(&self, slot: u32) -> Option<usize> {
        match self.pos.get(slot as usize) {
            Some(&p) if p != ABSENT => Some((p - 1) as usize),
            _ => None,
        }
    }

    /// Adds or replaces the entry for `token`'s slot.
    pub(crate) fn set(&mut self, token: Token<N>, item: T) {
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
            // `len <= N < u32::MAX`: no truncation.
            self.pos[slot] = self.items.len() as u32;
        }
    }

    /// Removes the entry at position `p`; the last entry moves into its place.
    pub(crate) fn remove_at(&mut self, p: usize) {
        if p >= self.items.len() {
            return;
        }
        let slot = self.tokens[p].slot() as usize;
        self.items.swap_remove(p);
        self.tokens.swap_remove(p);
        self.pos[slot] = ABSENT;
        if let Some(moved) = self.tokens.get(p) {
            // `p < len <= N < u32::MAX`: neither truncates nor overflows.
            self.pos[moved.slot() as usize] = p as u32 + 1;
        }
    }

    /// Removes `slot`'s entry if it has one.
    pub(crate) fn remove(&mut self, slot: u32) {
        if let Some(p) = self.position(slot) {
            self.remove_at(p);
        }
    }

    /// Appends `(token, readiness)` to `out` for each entry whose `ready` is not empty, and
    /// disarms (removes) those for which `disarm` says so: the emulated oneshot mode of poll
    /// and select, and a closed fd, reported once. O(entries).
    pub(crate) fn collect_ready(
        &mut self,
        out: &mut heapless::Vec<(Token<N>, Ready), N>,
        mut ready: impl FnMut(&T) -> Ready,
        disarm: impl Fn(&T, Token<N>) -> bool,
    ) {
        let mut i = 0;
        while i < self.items.len() {
            let r = ready(&self.items[i]);
            if r.is_empty() {
                i += 1;
                continue;
            }
            let token = self.tokens[i];
            // Cannot be full: at most one event per entry, at most N entries.
            let _ = out.push((token, r));
            if disarm(&self.items[i], token) {
                // Disarm; the last entry moves to `i` and is looked at next.
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
    }

    pub(crate) fn clear(&mut self) {
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
