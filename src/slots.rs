//! [`Slots`]: numbered slots, each with a generation, and a free list — the table under the
//! registry ([`Token`](crate::token::Token)) and the timers ([`TimerId`](crate::timer::TimerId)).
//!
//! An id packs a slot number and that slot's generation into 64 bits: the slot takes the low
//! ⌈log₂ N⌉ bits ([`slot_bits`]), the generation the rest. Each entry keeps one such word, its
//! *tag*: the generation above, and below it a *link* of ⌈log₂ N⌉ bits whose meaning depends on
//! the slot's state:
//! - free, after it was occupied: the next slot freed before it and still free, or the slot's
//!   own number at the end of that list, so the free list costs no word per slot. Slots never
//!   used are not in the list: they are the ones from the count of occupied slots on, handed
//!   out in order once the list is empty (then every slot below the count is occupied), so a
//!   new table is the same word in every entry, written in place;
//! - occupied: the owner's. [`insert`](Slots::insert) sets it to the slot's own number, so the
//!   tag *is* the id (the registry leaves it so); the timers keep the slot's heap position there
//!   ([`set_link`](Slots::set_link)), which is how their ids and positions share one word.
//!
//! A slot's generation moves on each time it is freed and wraps after 2^(64 − ⌈log₂ N⌉) frees
//! (2^58 for N = 64, 2^52 for N = 4096, 2^32 at the largest N): only then could an id kept from
//! an old occupant name a new one. Wrapping, not retiring, keeps every slot usable.
//!
//! Whether a slot is occupied is read from its value ([`Occupant`]), not from a flag of the
//! table's own: the `Option` around the registration's key or the timer's data tells, in bit
//! patterns or padding the value has anyway, so the table adds no byte per slot to what the
//! owners kept before it. Its fixed part is two `u32`s: the
//! head of the free list and the count.
//!
//! | operation | cost |
//! |---|---|
//! | [`insert`](Slots::insert), [`remove`](Slots::remove), [`get`](Slots::get), [`at`](Slots::at), [`vacant`](Slots::vacant) | O(1) |
//! | [`iter`](Slots::iter) | O(N) |

/// The bits of an id that hold the slot number, for a table of `n` slots: ⌈log₂ n⌉ (0 for
/// `n <= 1`). The generation has the other 64 − ⌈log₂ n⌉.
pub(crate) const fn slot_bits(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

/// A value a slot can hold, which tells whether the slot is occupied.
pub(crate) trait Occupant: Copy {
    /// What a free slot holds.
    const VACANT: Self;
    /// Whether this is a free slot's value.
    fn is_vacant(&self) -> bool;
}

impl<T: Copy> Occupant for Option<T> {
    const VACANT: Self = None;
    fn is_vacant(&self) -> bool {
        self.is_none()
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry<V> {
    /// `generation << slot_bits(N) | link` (see the module docs).
    tag: u64,
    value: V,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Slots<V, const N: usize> {
    entries: [Entry<V>; N],
    /// One more than the last freed slot still free (at most `N < u32::MAX`), or 0 when there
    /// is none: then every slot below `len` is occupied and every one from `len` on was never
    /// used, and `len` is the next free. A new table is zero bits but for its values.
    free: u32,
    len: u32,
}

impl<V: Occupant, const N: usize> Slots<V, N> {
    /// Bits of the slot number in an id (and of the link in a tag).
    pub(crate) const BITS: u32 = slot_bits(N);
    /// The slot-number (or link) bits of an id or a tag.
    pub(crate) const LOW: u64 = !(u64::MAX << Self::BITS);
    /// One step of the generation in a tag.
    const GENERATION_ONE: u64 = 1 << Self::BITS;

    /// An empty table, every slot at generation 0; slots are handed out in order 0, 1, … until
    /// the first is freed. `N` may be 0 (every insert is then refused).
    pub(crate) const fn new() -> Self {
        const {
            assert!(
                N < u32::MAX as usize,
                "slot capacity must be below u32::MAX"
            );
        };
        Self::EMPTY
    }

    /// A new table: every entry alike, with no free list threaded through them, so that a value
    /// that is zero bits (the registry's) makes the whole table zero bits, which is cleared in
    /// place rather than built in a copy and copied over (a `memcpy` that a firmware image
    /// would carry for this alone).
    const EMPTY: Self = Slots {
        entries: [Entry {
            tag: 0,
            value: V::VACANT,
        }; N],
        free: 0,
        len: 0,
    };

    /// The number of occupied slots.
    pub(crate) const fn len(&self) -> usize {
        self.len as usize
    }

    /// The slot number in an id (`< N` for an id of this table; any `u64` is accepted).
    #[inline]
    pub(crate) const fn slot_of(id: u64) -> u32 {
        // At most 32 bits, since N < u32::MAX.
        #[allow(clippy::cast_possible_truncation)]
        let slot = (id & Self::LOW) as u32;
        slot
    }

    /// The id that names `tag`'s slot (number `slot`) at its current generation.
    #[inline]
    const fn id_of(tag: u64, slot: u32) -> u64 {
        (tag & !Self::LOW) | slot as u64
    }

    /// The id the next [`insert`](Self::insert) will return, or `None` when full.
    #[inline]
    pub(crate) fn vacant(&self) -> Option<u64> {
        let slot = self.next_free();
        // `len == N` is out of range: a full table has no entry there.
        let e = self.entries.get(slot as usize)?;
        Some(Self::id_of(e.tag, slot))
    }

    /// The slot the next insert takes: the last freed, or else the first never used.
    #[inline]
    fn next_free(&self) -> u32 {
        if self.free == 0 {
            self.len
        } else {
            self.free - 1
        }
    }

    /// Puts `value` in the first free slot and returns its id, the one [`vacant`](Self::vacant)
    /// named; the slot's link is its own number. Hands `value` back, changing nothing, when the
    /// table is full or `value` is vacant (it could not be told from a free slot).
    #[inline]
    pub(crate) fn insert(&mut self, value: V) -> Result<u64, V> {
        let slot = self.next_free();
        let Some(e) = self.entries.get_mut(slot as usize) else {
            return Err(value);
        };
        if value.is_vacant() {
            return Err(value);
        }
        if self.free != 0 {
            let next = Self::slot_of(e.tag);
            // `next < N < u32::MAX`: no overflow.
            self.free = if next == slot { 0 } else { next + 1 };
        }
        e.tag = Self::id_of(e.tag, slot);
        e.value = value;
        self.len += 1;
        Ok(e.tag)
    }

    /// The value named by `id`, if its slot is occupied at `id`'s generation.
    #[inline]
    pub(crate) fn get(&self, id: u64) -> Option<&V> {
        let e = self.entries.get(Self::slot_of(id) as usize)?;
        // The slot bits select the entry; the generation bits must match.
        if (e.tag ^ id) & !Self::LOW == 0 && !e.value.is_vacant() {
            Some(&e.value)
        } else {
            None
        }
    }

    /// The value in slot `slot`, if occupied (whatever its generation).
    #[inline]
    pub(crate) fn at(&self, slot: u32) -> Option<&V> {
        self.entries
            .get(slot as usize)
            .map(|e| &e.value)
            .filter(|v| !v.is_vacant())
    }

    /// The value in slot `slot`, occupied or not ([`Occupant::VACANT`] if free): for an owner
    /// that knows the slot is occupied (the timers' heap holds only armed slots) and so needs no
    /// test of it.
    #[inline]
    pub(crate) fn value(&self, slot: u32) -> Option<&V> {
        self.entries.get(slot as usize).map(|e| &e.value)
    }

    /// The value in slot `slot`, if occupied, to change in place.
    #[inline]
    pub(crate) fn at_mut(&mut self, slot: u32) -> Option<&mut V> {
        self.entries
            .get_mut(slot as usize)
            .map(|e| &mut e.value)
            .filter(|v| !v.is_vacant())
    }

    /// The current id of an occupied slot.
    #[inline]
    pub(crate) fn id(&self, slot: u32) -> Option<u64> {
        let e = self.entries.get(slot as usize)?;
        (!e.value.is_vacant()).then_some(Self::id_of(e.tag, slot))
    }

    /// The owner's link of an occupied slot (its own number unless [`set_link`](Self::set_link)
    /// changed it).
    #[inline]
    pub(crate) fn link(&self, slot: u32) -> Option<u32> {
        let e = self.entries.get(slot as usize)?;
        (!e.value.is_vacant()).then_some(Self::slot_of(e.tag))
    }

    /// Sets the link of an occupied slot to `link` (taken modulo 2^[`BITS`](Self::BITS), which
    /// holds any number below `N`); a free slot's link is the free list's, so it is left alone.
    #[inline]
    pub(crate) fn set_link(&mut self, slot: u32, link: u32) {
        if let Some(e) = self.entries.get_mut(slot as usize) {
            if !e.value.is_vacant() {
                e.tag = (e.tag & !Self::LOW) | (u64::from(link) & Self::LOW);
            }
        }
    }

    /// Frees an occupied slot and returns its value; its generation moves on, so every id of it
    /// so far is stale, and it is the next slot [`insert`](Self::insert) uses. `None`, changing
    /// nothing, for a free slot or one out of range.
    #[inline]
    pub(crate) fn remove(&mut self, slot: u32) -> Option<V> {
        let e = self.entries.get_mut(slot as usize)?;
        if e.value.is_vacant() {
            return None;
        }
        let value = core::mem::replace(&mut e.value, V::VACANT);
        let next = if self.free == 0 { slot } else { self.free - 1 };
        // Adds one to the generation bits (cleared below the link first), wrapping to 0 after
        // 2^(64 − BITS) frees.
        e.tag = (e.tag & !Self::LOW).wrapping_add(Self::GENERATION_ONE) | u64::from(next);
        // `slot < N < u32::MAX`: no overflow.
        self.free = slot + 1;
        self.len -= 1;
        Some(value)
    }

    /// The occupied slots' ids and values, in slot order. O(N).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        (0u32..)
            .zip(&self.entries)
            .filter(|(_, e)| !e.value.is_vacant())
            .map(|(slot, e)| (Self::id_of(e.tag, slot), &e.value))
    }

    /// Sets a slot's generation, as if it had been freed that many times: the wrap tests.
    #[cfg(test)]
    pub(crate) fn set_generation(&mut self, slot: u32, generation: u64) {
        let e = &mut self.entries[slot as usize];
        e.tag = (e.tag & Self::LOW) | (generation << Self::BITS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapless::Vec;

    type Table<const N: usize> = Slots<Option<u32>, N>;

    #[test]
    fn slot_bits_are_the_ceiling_of_log2() {
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 16, 17, 4096, 4097].map(slot_bits),
            [0, 0, 1, 2, 2, 3, 4, 5, 12, 13]
        );
        assert_eq!(Table::<4096>::LOW, 4095);
        assert_eq!(Table::<1>::LOW, 0);
    }

    #[test]
    fn insert_get_remove_and_stale_ids() {
        let mut t = Table::<4>::new();
        assert_eq!(t.vacant(), Some(0));
        let a = t.insert(Some(10)).unwrap();
        assert_eq!((Table::<4>::slot_of(a), a >> 2), (0, 0));
        assert_eq!(t.get(a), Some(&Some(10)));
        assert_eq!(t.at(0), Some(&Some(10)));
        assert_eq!(t.id(0), Some(a));
        assert_eq!(t.remove(0), Some(Some(10)));
        assert_eq!(t.remove(0), None, "a free slot is not freed twice");
        assert_eq!((t.get(a), t.at(0), t.id(0), t.len()), (None, None, None, 0));
        // The freed slot comes back first, one generation on.
        let b = t.insert(Some(20)).unwrap();
        assert_eq!((Table::<4>::slot_of(b), b >> 2), (0, 1));
        assert_eq!((t.get(a), t.get(b)), (None, Some(&Some(20))));
        // Ids out of range, vacant values and links of free slots change nothing.
        assert_eq!(t.get(u64::MAX), None);
        assert_eq!((t.at(9), t.value(9)), (None, None));
        assert_eq!(t.value(3), Some(&None));
        assert_eq!(t.insert(None), Err(None));
        t.set_link(3, 1);
        assert_eq!(t.insert(Some(30)), Ok(1));
        assert_eq!(t.insert(Some(40)), Ok(2));
        assert_eq!(t.insert(Some(50)), Ok(3));
    }

    #[test]
    fn full_table_hands_the_value_back() {
        let mut t = Table::<2>::new();
        t.insert(Some(1)).unwrap();
        t.insert(Some(2)).unwrap();
        assert_eq!(t.vacant(), None);
        assert_eq!(t.insert(Some(3)), Err(Some(3)));
        assert_eq!(t.len(), 2);
        let mut z = Table::<0>::new();
        assert_eq!((z.vacant(), z.insert(Some(1))), (None, Err(Some(1))));
        assert_eq!(z.remove(0), None);
    }

    #[test]
    fn links_belong_to_the_owner_while_occupied() {
        let mut t = Table::<8>::new();
        let a = t.insert(Some(1)).unwrap();
        assert_eq!(t.link(0), Some(0));
        t.set_link(0, 5);
        assert_eq!(t.link(0), Some(5));
        assert_eq!(t.get(a), Some(&Some(1)), "the link is not part of the id");
        assert_eq!(t.id(0), Some(a));
        assert_eq!(t.iter().collect::<Vec<_, 8>>(), [(a, &Some(1))]);
        t.remove(0);
        assert_eq!(t.link(0), None);
    }

    /// At the end of its range the generation wraps to 0 without a panic, and only then does an
    /// id of the first occupant name a later one. With one slot the whole id is the generation.
    #[test]
    fn generations_wrap_after_2_pow_64_minus_slot_bits_frees() {
        let mut t = Table::<4096>::new();
        let first = t.insert(Some(1)).unwrap();
        t.remove(0);
        t.set_generation(0, u64::from(u32::MAX));
        t.insert(Some(2)).unwrap();
        t.remove(0);
        let past_32 = t.insert(Some(3)).unwrap();
        assert_eq!(past_32 >> 12, 1 << 32);
        assert_eq!(
            t.get(first),
            None,
            "a 32-bit generation would have wrapped here"
        );
        t.remove(0);
        t.set_generation(0, (1 << 52) - 1);
        let last = t.insert(Some(4)).unwrap();
        assert_eq!(last, !4095);
        t.remove(0);
        assert_eq!(t.insert(Some(5)), Ok(first));

        let mut one = Table::<1>::new();
        let first = one.insert(Some(1)).unwrap();
        one.remove(0);
        one.set_generation(0, u64::MAX);
        assert_eq!(one.insert(Some(2)), Ok(u64::MAX));
        one.remove(0);
        assert_eq!(one.insert(Some(3)), Ok(first));
    }

    const M: usize = 5;

    /// The model: per slot its value, generation and link; free slots reused last-freed first,
    /// then in slot order.
    #[derive(Default)]
    struct Model {
        value: [Option<u32>; M],
        generation: [u64; M],
        link: [u32; M],
        freed: Vec<u32, M>,
        never_used: u32,
        issued: Vec<u64, OPS>,
    }

    /// Operations per run of the model test.
    const OPS: usize = 4000;

    /// xorshift64 (Marsaglia, "Xorshift RNGs", 2003): a fixed, reproducible stream of
    /// operations, no crate needed.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Random inserts, removes and links against the model, a few thousand from each of a few
    /// seeds; every id ever issued is live exactly while its occupant is. Slots 5 (one past
    /// the end) and links up to 4 are in the draw, as out-of-range and in-range inputs.
    #[test]
    fn matches_a_plain_model() {
        for seed in [1, 0x9E37_79B9_7F4A_7C15, 0xDEAD_BEEF] {
            run_model(seed, OPS);
        }
    }

    // A test's arithmetic on small numbers: slots below 8, draws cut on purpose.
    #[allow(clippy::cast_possible_truncation)]
    fn run_model(seed: u64, ops: usize) {
        let mut state = seed;
        let mut t = Table::<M>::new();
        let mut m = Model::default();
        let id = |slot: u32, g: u64| (g << 3) | u64::from(slot);
        // The draw must reach a full table and stale ids, or the run proves little.
        let (mut refused, mut stale) = (0, 0);
        for _ in 0..ops {
            let r = xorshift(&mut state);
            // Thirds: insert, remove, link (as proptest's `prop_oneof!` drew them).
            match r % 3 {
                0 => {
                    let v = (r >> 8) as u32;
                    let next = m
                        .freed
                        .last()
                        .copied()
                        .or((m.never_used < M as u32).then_some(m.never_used));
                    assert_eq!(t.vacant(), next.map(|s| id(s, m.generation[s as usize])));
                    let got = t.insert(Some(v));
                    match next {
                        Some(s) => {
                            if m.freed.pop().is_none() {
                                m.never_used += 1;
                            }
                            m.value[s as usize] = Some(v);
                            m.link[s as usize] = s;
                            let i = id(s, m.generation[s as usize]);
                            m.issued.push(i).unwrap();
                            assert_eq!(got, Ok(i));
                        }
                        None => {
                            assert_eq!(got, Err(Some(v)));
                            refused += 1;
                        }
                    }
                }
                1 => {
                    let s = ((r >> 8) % 6) as u32;
                    let want = m.value.get(s as usize).copied().flatten();
                    assert_eq!(t.remove(s), want.map(Some));
                    if want.is_some() {
                        m.value[s as usize] = None;
                        m.generation[s as usize] += 1;
                        m.freed.push(s).unwrap();
                    }
                }
                _ => {
                    let (s, l) = (((r >> 8) % 6) as u32, ((r >> 16) % 5) as u32);
                    t.set_link(s, l);
                    if m.value.get(s as usize).is_some_and(Option::is_some) {
                        m.link[s as usize] = l;
                    }
                }
            }
            let live = m.value.iter().filter(|v| v.is_some()).count();
            assert_eq!(t.len(), live);
            assert_eq!(t.vacant().is_none(), live == M);
            for s in 0..M as u32 {
                let v = m.value[s as usize];
                assert_eq!(t.at(s).copied(), v.map(Some));
                assert_eq!(t.link(s), v.map(|_| m.link[s as usize]));
            }
            for &i in &m.issued {
                let s = (i & 7) as usize;
                let current = m.value[s].is_some() && i >> 3 == m.generation[s];
                stale += usize::from(!current);
                let want = current.then_some(m.value[s]).flatten().map(Some);
                assert_eq!(t.get(i).copied(), want);
            }
            assert_eq!(t.iter().count(), live);
        }
        assert!(
            refused > 0 && stale > 0,
            "seed {seed:#x}: {refused} full, {stale} stale"
        );
    }
}
