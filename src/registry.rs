//! The fixed-capacity registration table: no syscalls, `const fn new`.
//!
//! Two arrays of `N` entries:
//! - `slots`: the registrations, at stable slot numbers. A slot's number and generation form the
//!   [`Token`] the backend hands back with each event, so dispatch finds its key in O(1) without
//!   hashing, and a token whose generation no longer matches (the fd was unregistered, or closed
//!   and registered again, during a batch) is recognised as stale.
//! - `index`: an open-addressing hash table fd → slot: linear probing with Robin Hood
//!   insertion (an entry that has probed further takes the bucket), so each probe run is
//!   ordered by distance from home; a lookup stops at the first entry nearer its home than the
//!   key would be, and a removal shifts back only until the next entry that sits in its home
//!   bucket (no tombstones). The hash is `fd % N`: the kernel hands out the lowest free fd
//!   number (POSIX `open`/`socket`), so registered fds are nearly contiguous, land in their
//!   own buckets, and lookup, insert and remove are O(1) in practice; O(N) at worst.

use crate::token::Token;
use crate::SelectorKey;
use rustix::fd::RawFd;

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Slot<D, const N: usize> {
    /// The slot's number and current generation, kept whole so that checking an event's token
    /// is one comparison. The generation wraps at [`Token::MAX_GENERATION`]; see `token.rs`
    /// for the bound.
    token: Token<N>,
    next_free: u32,
    /// A oneshot registration has been reported since it was last armed.
    fired: bool,
    /// The selector's wait count when the registration was last armed by `modify`.
    armed_in: u64,
    key: Option<SelectorKey<D>>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Registry<D, const N: usize> {
    slots: [Slot<D, N>; N],
    /// Bucket → slot + 1; 0 is an empty bucket.
    index: [u32; N],
    len: usize,
    /// Slots below this have been used at least once.
    high: u32,
    free_head: u32,
}

impl<D: Copy, const N: usize> Registry<D, N> {
    pub(crate) const fn new() -> Self {
        const {
            assert!(
                N > 0 && N < u32::MAX as usize,
                "capacity must be in 1..u32::MAX"
            )
        };
        let mut slots = [const {
            Slot {
                token: Token::from_u64(0),
                next_free: NONE,
                fired: false,
                armed_in: 0,
                key: None,
            }
        }; N];
        let mut i = 0;
        while i < N {
            // `i < N < u32::MAX`.
            slots[i].token = Token::new(i as u32, 0);
            i += 1;
        }
        Registry {
            slots,
            index: [0; N],
            len: 0,
            high: 0,
            free_head: NONE,
        }
    }

    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    fn home(fd: RawFd) -> usize {
        (fd as u32 as usize) % N
    }

    const fn next(b: usize) -> usize {
        if b + 1 == N {
            0
        } else {
            b + 1
        }
    }

    /// How far the entry in bucket `b` (non-empty) sits from its home bucket.
    fn distance(&self, b: usize) -> usize {
        let home = match self.slots[(self.index[b] - 1) as usize].key {
            Some(k) => Self::home(k.fd),
            None => b,
        };
        (b + N - home) % N
    }

    /// The bucket that holds `fd`, if registered.
    #[inline]
    fn bucket_of(&self, fd: RawFd) -> Option<usize> {
        let mut b = Self::home(fd);
        for dist in 0..N {
            let s = self.index[b];
            // Robin Hood order: past an entry nearer its home than `fd` would be, `fd` is not.
            if s == 0 || self.distance(b) < dist {
                return None;
            }
            if matches!(&self.slots[(s - 1) as usize].key, Some(k) if k.fd == fd) {
                return Some(b);
            }
            b = Self::next(b);
        }
        None
    }

    /// The slot of a registered fd. O(1) expected.
    #[inline]
    pub(crate) fn lookup(&self, fd: RawFd) -> Option<u32> {
        self.bucket_of(fd).map(|b| self.index[b] - 1)
    }

    pub(crate) fn get(&self, slot: u32) -> Option<&SelectorKey<D>> {
        self.slots.get(slot as usize)?.key.as_ref()
    }

    pub(crate) fn token(&self, slot: u32) -> Token<N> {
        self.slots[slot as usize].token
    }

    /// The key behind `token`, if it is still the same registration. O(1): on every event.
    #[inline]
    pub(crate) fn live(&self, token: Token<N>) -> Option<&SelectorKey<D>> {
        let slot = self.slots.get(token.slot() as usize)?;
        if slot.token == token {
            slot.key.as_ref()
        } else {
            None
        }
    }

    /// The token the next [`insert`](Self::insert) will use, or `None` when full.
    #[inline]
    pub(crate) fn vacant(&self) -> Option<Token<N>> {
        if self.len == N {
            None
        } else if self.free_head != NONE {
            Some(self.token(self.free_head))
        } else {
            Some(self.token(self.high))
        }
    }

    /// Inserts a key for an fd that is not registered, at the slot [`vacant`](Self::vacant)
    /// named. Returns `None` (and changes nothing) when full.
    #[inline]
    pub(crate) fn insert(&mut self, key: SelectorKey<D>) -> Option<Token<N>> {
        let token = self.vacant()?;
        let slot = token.slot();
        if slot == self.free_head {
            self.free_head = self.slots[slot as usize].next_free;
        } else {
            self.high += 1;
        }
        let s = &mut self.slots[slot as usize];
        s.key = Some(key);
        s.next_free = NONE;
        s.fired = false;
        // Robin Hood insertion: the entry carried along swaps with any that sits nearer its
        // home; there is an empty bucket since `len < N`.
        let mut carried = slot + 1;
        let mut dist = 0;
        let mut b = Self::home(key.fd);
        for _ in 0..N {
            if self.index[b] == 0 {
                self.index[b] = carried;
                break;
            }
            let d = self.distance(b);
            if d < dist {
                core::mem::swap(&mut self.index[b], &mut carried);
                dist = d;
            }
            b = Self::next(b);
            dist += 1;
        }
        self.len += 1;
        Some(token)
    }

    /// Whether the oneshot registration in `slot` was reported since it was last armed.
    pub(crate) fn fired(&self, slot: u32) -> bool {
        self.slots.get(slot as usize).is_some_and(|s| s.fired)
    }

    /// The wait count at which the registration in `slot` was last armed by `modify`.
    pub(crate) fn armed_in(&self, slot: u32) -> u64 {
        self.slots.get(slot as usize).map_or(0, |s| s.armed_in)
    }

    /// Records that the registration in `slot` was reported.
    pub(crate) fn set_fired(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.fired = true;
        }
    }

    /// Records that the registration in `slot` was armed again during wait number `batch`.
    pub(crate) fn set_armed(&mut self, slot: u32, batch: u64) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.fired = false;
            s.armed_in = batch;
        }
    }

    /// Replaces the key in a live slot (same fd).
    #[inline]
    pub(crate) fn update(&mut self, slot: u32, key: SelectorKey<D>) {
        if let Some(k) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.key.as_mut())
        {
            debug_assert_eq!(k.fd, key.fd);
            *k = key;
        }
    }

    /// Removes `fd`'s registration and retires its generation.
    #[inline]
    pub(crate) fn remove(&mut self, fd: RawFd) -> Option<SelectorKey<D>> {
        let bucket = self.bucket_of(fd)?;
        let slot = self.index[bucket] - 1;
        // Backward-shift deletion: pull the rest of the probe run back one bucket, up to an
        // empty bucket or an entry already in its home bucket.
        let mut hole = bucket;
        let mut j = Self::next(bucket);
        while j != bucket && self.index[j] != 0 && self.distance(j) > 0 {
            self.index[hole] = self.index[j];
            hole = j;
            j = Self::next(j);
        }
        self.index[hole] = 0;

        let s = &mut self.slots[slot as usize];
        let key = s.key.take();
        s.token = Token::new(slot, Token::<N>::next_generation(s.token.generation()));
        s.next_free = self.free_head;
        self.free_head = slot;
        self.len -= 1;
        key
    }

    /// The live keys with their tokens, in slot order. O(N) over the slots ever used.
    pub(crate) fn iter_tokens(&self) -> impl Iterator<Item = (Token<N>, &SelectorKey<D>)> {
        self.slots
            .iter()
            .take(self.high as usize)
            .filter_map(|s| Some((s.token, s.key.as_ref()?)))
    }

    /// The live keys, in slot order. O(N) over the slots ever used.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &SelectorKey<D>> {
        self.slots
            .iter()
            .take(self.high as usize)
            .filter_map(|s| s.key.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interest::{Interest, Mode};

    fn key(fd: RawFd, data: u32) -> SelectorKey<u32> {
        SelectorKey {
            fd,
            interest: Interest::READ,
            mode: Mode::Level,
            data,
        }
    }

    #[test]
    fn insert_lookup_remove() {
        let mut r = Registry::<u32, 4>::new();
        let t = r.insert(key(3, 30)).unwrap();
        assert_eq!(r.lookup(3), Some(t.slot()));
        assert_eq!(r.live(t).unwrap().data, 30);
        assert_eq!(r.remove(3).unwrap().data, 30);
        assert!(r.live(t).is_none(), "old token must be stale");
        assert_eq!(r.lookup(3), None);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn full_changes_nothing() {
        let mut r = Registry::<u32, 3>::new();
        for fd in 0..3 {
            r.insert(key(fd, fd as u32)).unwrap();
        }
        assert!(r.vacant().is_none());
        assert!(r.insert(key(9, 9)).is_none());
        assert_eq!(r.len(), 3);
        assert_eq!(r.lookup(9), None);
        for fd in 0..3 {
            assert!(r.lookup(fd).is_some());
        }
    }

    #[test]
    fn reused_slot_gets_new_generation() {
        let mut r = Registry::<u32, 2>::new();
        let a = r.insert(key(5, 1)).unwrap();
        r.remove(5);
        let b = r.insert(key(5, 2)).unwrap();
        assert_eq!(a.slot(), b.slot());
        assert_ne!(a, b);
        assert!(r.live(a).is_none());
        assert_eq!(r.live(b).unwrap().data, 2);
    }

    /// A slot reused 2^32 times (the generation forced there) does not give back its first
    /// token, which a 32-bit generation did; at the end of its range the generation wraps to
    /// 0 without a panic.
    #[test]
    fn generations_wrap_past_2_pow_32() {
        let mut r = Registry::<u32, 4>::new();
        let first = r.insert(key(3, 1)).unwrap();
        r.remove(3);
        r.slots[first.slot() as usize].token = Token::new(first.slot(), u64::from(u32::MAX));
        r.insert(key(3, 2)).unwrap();
        r.remove(3);
        let later = r.insert(key(3, 3)).unwrap();
        assert_eq!(later.generation(), 1 << 32);
        assert!(r.live(first).is_none(), "a stale token is live again");
        assert_eq!(r.live(later).unwrap().data, 3);
        r.remove(3);
        r.slots[first.slot() as usize].token = Token::new(first.slot(), Token::<4>::MAX_GENERATION);
        let last = r.insert(key(3, 4)).unwrap();
        r.remove(3);
        let wrapped = r.insert(key(3, 5)).unwrap();
        assert_eq!(
            (last.generation(), wrapped.generation()),
            (Token::<4>::MAX_GENERATION, 0)
        );
    }

    /// Random operations against a plain model, with colliding fds (all ≡ mod N).
    #[test]
    fn matches_model_under_random_ops() {
        const N: usize = 8;
        let mut r = Registry::<u32, N>::new();
        let mut model: [Option<u32>; 64] = [None; 64];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for step in 0..20_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let fd = (seed % 64) as RawFd;
            if seed & 0x100 == 0 {
                let count = model.iter().filter(|m| m.is_some()).count();
                let res = if r.lookup(fd).is_some() {
                    None
                } else {
                    r.insert(key(fd, step))
                };
                if model[fd as usize].is_none() && count < N {
                    assert!(res.is_some());
                    model[fd as usize] = Some(step);
                } else {
                    assert!(res.is_none());
                }
            } else {
                let got = r.remove(fd).map(|k| k.data);
                assert_eq!(got, model[fd as usize].take());
            }
            for (f, m) in model.iter().enumerate() {
                let live = r.lookup(f as RawFd).and_then(|s| r.get(s)).map(|k| k.data);
                assert_eq!(live, *m, "fd {f} at step {step}");
            }
            assert_eq!(r.iter().count(), r.len());
        }
    }
}
