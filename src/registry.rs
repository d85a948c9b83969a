//! The fixed-capacity registration table: no syscalls, `const fn new`.
//!
//! Two arrays of `N` entries:
//! - `slots`: the registrations, at stable slot numbers in a [`Slots`] table. A slot's number and
//!   generation form the [`Token`] the backend hands back with each event, so dispatch finds its key in O(1) without
//!   hashing, and a token whose generation no longer matches (the fd was unregistered, or closed
//!   and registered again, during a batch) is recognised as stale.
//! - `index`: fd → slot. Up to [`SCAN_MAX`] registrations it is a plain array by slot (the fd
//!   plus one, 0 when the slot is free), searched front to back: at that size a scan of at most
//!   32 words is as quick as hashing, and it is a few instructions where the hash table's
//!   insertion and removal are a few hundred bytes of code, which a firmware daemon's image
//!   carries. The choice is made by `N` at compile time, so only one of the two is built.
//!   Above `SCAN_MAX` it is an open-addressing hash table: linear probing with Robin Hood
//!   insertion (an entry that has probed further takes the bucket), so each probe run is
//!   ordered by distance from home; a lookup stops at the first entry nearer its home than the
//!   key would be, and a removal shifts back only until the next entry that sits in its home
//!   bucket (no tombstones). The hash is `fd % N`: the kernel hands out the lowest free fd
//!   number (POSIX `open`/`socket`), so registered fds are nearly contiguous, land in their
//!   own buckets, and lookup, insert and remove are O(1) in practice; O(N) at worst.
//!
//! Both layouts take the same `4 × N` bytes.

use crate::key::SelectorKey;
use crate::slots::{Occupant, Slots};
use crate::token::Token;
use rustix::fd::RawFd;

/// A registration as its slot holds it.
#[derive(Debug, Clone, Copy)]
struct Registration<D> {
    /// `None` exactly in a free slot.
    key: Option<SelectorKey<D>>,
    /// A oneshot registration has been reported since it was last armed.
    fired: bool,
    /// The selector's wait count when the registration was last armed by `modify`.
    armed_in: u64,
}

impl<D: Copy> Occupant for Registration<D> {
    const VACANT: Self = Registration {
        key: None,
        fired: false,
        armed_in: 0,
    };
    fn is_vacant(&self) -> bool {
        self.key.is_none()
    }
}

/// See the module docs.
/// The largest capacity whose fd index is scanned rather than hashed.
pub(crate) const SCAN_MAX: usize = 32;

#[derive(Debug)]
pub(crate) struct Registry<D, const N: usize> {
    /// The registrations. Each slot's link stays its own number, so a slot's tag is its
    /// registration's token and checking an event's token is one comparison of generations.
    slots: Slots<Registration<D>, N>,
    /// Bucket → slot + 1; 0 is an empty bucket.
    index: [u32; N],
}

impl<D: Copy, const N: usize> Registry<D, N> {
    pub(crate) const fn new() -> Self {
        const {
            assert!(
                N > 0 && N < u32::MAX as usize,
                "capacity must be in 1..u32::MAX"
            );
        };
        Registry {
            slots: Slots::new(),
            index: [0; N],
        }
    }

    pub(crate) const fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether `index` is the array scanned by slot (see the module docs); a constant.
    const SCANNED: bool = N <= SCAN_MAX;

    /// The scanned index's word for `fd`: never 0, the free slot's word, for an fd that can
    /// be registered (`fd >= 0`, which every caller has checked or tests below).
    const fn scan_word(fd: RawFd) -> u32 {
        fd.cast_unsigned().wrapping_add(1)
    }

    fn home(fd: RawFd) -> usize {
        (fd.cast_unsigned() as usize) % N
    }

    const fn next(b: usize) -> usize {
        if b + 1 == N {
            0
        } else {
            b + 1
        }
    }

    /// The key in bucket `b` (non-empty).
    #[inline]
    fn key_in(&self, b: usize) -> Option<&SelectorKey<D>> {
        self.get(self.index[b].wrapping_sub(1))
    }

    /// How far the entry in bucket `b` (non-empty) sits from its home bucket.
    fn distance(&self, b: usize) -> usize {
        let home = match self.key_in(b) {
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
            // Robin Hood order: past an entry nearer its home than `fd` would be, `fd` is not.
            if self.index[b] == 0 || self.distance(b) < dist {
                return None;
            }
            if matches!(self.key_in(b), Some(k) if k.fd == fd) {
                return Some(b);
            }
            b = Self::next(b);
        }
        None
    }

    /// The slot of a registered fd. O(1) expected.
    #[inline]
    pub(crate) fn lookup(&self, fd: RawFd) -> Option<u32> {
        if Self::SCANNED {
            if fd < 0 {
                return None;
            }
            let word = Self::scan_word(fd);
            // At most SCAN_MAX (32) entries, so the position fits a u32.
            #[allow(clippy::cast_possible_truncation)]
            return self.index.iter().position(|&w| w == word).map(|s| s as u32);
        }
        self.bucket_of(fd).map(|b| self.index[b] - 1)
    }

    /// The key in `slot`, whatever the generation. O(1).
    #[inline]
    pub(crate) fn get(&self, slot: u32) -> Option<&SelectorKey<D>> {
        self.slots.at(slot)?.key.as_ref()
    }

    /// The token of a registered slot (from [`lookup`](Self::lookup)).
    pub(crate) fn token(&self, slot: u32) -> Token<N> {
        // A slot that is not registered has no token; generation 0 stands in, and `lookup`
        // never gives such a slot.
        self.slots
            .id(slot)
            .map_or(Token::new(slot, 0), Token::from_u64)
    }

    /// The key behind `token`, if it is still the same registration. O(1): on every event.
    #[inline]
    pub(crate) fn live(&self, token: Token<N>) -> Option<&SelectorKey<D>> {
        self.slots.get(token.to_u64())?.key.as_ref()
    }

    /// The token the next [`insert`](Self::insert) will use, or `None` when full.
    #[inline]
    pub(crate) fn vacant(&self) -> Option<Token<N>> {
        self.slots.vacant().map(Token::from_u64)
    }

    /// Inserts a key for an fd that is not registered, at the slot [`vacant`](Self::vacant)
    /// named, armed in batch `armed_in` (see [`set_armed`](Self::set_armed)). Returns `None`
    /// (and changes nothing) when full.
    #[inline]
    pub(crate) fn insert(&mut self, key: SelectorKey<D>, armed_in: u64) -> Option<Token<N>> {
        // The selector refuses a negative fd before it gets here; -1 would be the scanned
        // index's free word.
        if key.fd < 0 {
            return None;
        }
        let token = Token::<N>::from_u64(
            self.slots
                .insert(Registration {
                    key: Some(key),
                    fired: false,
                    armed_in,
                })
                .ok()?,
        );
        if Self::SCANNED {
            if let Some(w) = self.index.get_mut(token.slot() as usize) {
                *w = Self::scan_word(key.fd);
            }
            return Some(token);
        }
        // Robin Hood insertion: the entry carried along swaps with any that sits nearer its
        // home; there is an empty bucket since fewer than N were registered before.
        let mut carried = token.slot() + 1;
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
        Some(token)
    }

    /// Whether the oneshot registration in `slot` was reported since it was last armed.
    pub(crate) fn fired(&self, slot: u32) -> bool {
        self.slots.at(slot).is_some_and(|r| r.fired)
    }

    /// The wait count at which the registration in `slot` was last armed by `modify`.
    pub(crate) fn armed_in(&self, slot: u32) -> u64 {
        self.slots.at(slot).map_or(0, |r| r.armed_in)
    }

    /// Records that the registration in `slot` was reported.
    pub(crate) fn set_fired(&mut self, slot: u32) {
        if let Some(r) = self.slots.at_mut(slot) {
            r.fired = true;
        }
    }

    /// Records that the registration in `slot` was armed again during wait number `batch`.
    pub(crate) fn set_armed(&mut self, slot: u32, batch: u64) {
        if let Some(r) = self.slots.at_mut(slot) {
            r.fired = false;
            r.armed_in = batch;
        }
    }

    /// Replaces the key in a live slot (same fd).
    #[inline]
    pub(crate) fn update(&mut self, slot: u32, key: SelectorKey<D>) {
        if let Some(k) = self.slots.at_mut(slot).and_then(|r| r.key.as_mut()) {
            debug_assert_eq!(k.fd, key.fd);
            *k = key;
        }
    }

    /// Removes `fd`'s registration and retires its generation.
    #[inline]
    pub(crate) fn remove(&mut self, fd: RawFd) -> Option<SelectorKey<D>> {
        if Self::SCANNED {
            let slot = self.lookup(fd)?;
            if let Some(w) = self.index.get_mut(slot as usize) {
                *w = 0;
            }
            return self.slots.remove(slot)?.key;
        }
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
        self.slots.remove(slot)?.key
    }

    /// The live keys with their tokens, in slot order. O(N).
    pub(crate) fn iter_tokens(&self) -> impl Iterator<Item = (Token<N>, &SelectorKey<D>)> {
        self.slots
            .iter()
            .filter_map(|(id, r)| Some((Token::from_u64(id), r.key.as_ref()?)))
    }

    /// The live keys, in slot order. O(N).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &SelectorKey<D>> {
        self.slots.iter().filter_map(|(_, r)| r.key.as_ref())
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
        let t = r.insert(key(3, 30), 0).unwrap();
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
            r.insert(key(fd, fd as u32), 0).unwrap();
        }
        assert!(r.vacant().is_none());
        assert!(r.insert(key(9, 9), 0).is_none());
        assert_eq!(r.len(), 3);
        assert_eq!(r.lookup(9), None);
        for fd in 0..3 {
            assert!(r.lookup(fd).is_some());
        }
    }

    #[test]
    fn reused_slot_gets_new_generation() {
        let mut r = Registry::<u32, 2>::new();
        let a = r.insert(key(5, 1), 0).unwrap();
        r.remove(5);
        let b = r.insert(key(5, 2), 0).unwrap();
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
        let first = r.insert(key(3, 1), 0).unwrap();
        r.remove(3);
        r.slots.set_generation(first.slot(), u64::from(u32::MAX));
        r.insert(key(3, 2), 0).unwrap();
        r.remove(3);
        let later = r.insert(key(3, 3), 0).unwrap();
        assert_eq!(later.generation(), 1 << 32);
        assert!(r.live(first).is_none(), "a stale token is live again");
        assert_eq!(r.live(later).unwrap().data, 3);
        r.remove(3);
        r.slots
            .set_generation(first.slot(), Token::<4>::MAX_GENERATION);
        let last = r.insert(key(3, 4), 0).unwrap();
        r.remove(3);
        let wrapped = r.insert(key(3, 5), 0).unwrap();
        assert_eq!(
            (last.generation(), wrapped.generation()),
            (Token::<4>::MAX_GENERATION, 0)
        );
    }

    /// The slot table keeps the free list in its free slots' links, and whether a slot is taken
    /// in the key's `Option` (`None` in a free slot): a registration costs the same 44 bytes
    /// (40 + 4 of index) on 64-bit targets as when the registry kept a `next_free` per slot.
    #[test]
    fn size_per_registration() {
        if cfg!(target_pointer_width = "64") {
            assert_eq!(core::mem::size_of::<Registry<usize, 16>>(), 16 * 44 + 8);
        }
    }

    /// Random operations against a plain model, with colliding fds (many ≡ mod N), on both
    /// index layouts: scanned (N ≤ SCAN_MAX) and hashed.
    #[test]
    fn matches_model_under_random_ops() {
        const {
            assert!(Registry::<u32, 8>::SCANNED && Registry::<u32, SCAN_MAX>::SCANNED);
            assert!(!Registry::<u32, { SCAN_MAX + 1 }>::SCANNED);
        };
        against_model::<8>(0x9E37_79B9_7F4A_7C15);
        against_model::<SCAN_MAX>(0x2545_F491_4F6C_DD1D);
        against_model::<{ SCAN_MAX + 1 }>(0x9E37_79B9_7F4A_7C15);
        against_model::<40>(0x0123_4567_89AB_CDEF);
    }

    fn against_model<const N: usize>(mut seed: u64) {
        const FDS: usize = 96;
        let mut r = Registry::<u32, N>::new();
        let mut model: [Option<u32>; FDS] = [None; FDS];
        for step in 0..20_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let fd = (seed % FDS as u64) as RawFd;
            if seed & 0x100 == 0 {
                let count = model.iter().filter(|m| m.is_some()).count();
                let res = if r.lookup(fd).is_some() {
                    None
                } else {
                    r.insert(key(fd, step), 0)
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
                assert_eq!(live, *m, "N {N}, fd {f} at step {step}");
            }
            assert_eq!(r.iter().count(), r.len());
        }
    }

    /// Negative fds are never found and never inserted, in either layout (-1 would be the
    /// scanned index's free word).
    #[test]
    fn negative_fds_are_refused() {
        let mut small = Registry::<u32, 4>::new();
        let mut large = Registry::<u32, 64>::new();
        assert!(small.insert(key(-1, 1), 0).is_none() && large.insert(key(-1, 1), 0).is_none());
        assert_eq!((small.len(), large.len()), (0, 0));
        assert_eq!((small.lookup(-1), large.lookup(-1)), (None, None));
        assert!(small.remove(-1).is_none() && large.remove(-1).is_none());
    }
}
