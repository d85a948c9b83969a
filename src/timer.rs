//! [`Timers`]: a fixed-capacity timer table on the monotonic clock, `const fn new`, no syscalls.
//!
//! Two arrays of `T` entries:
//! - `slots`: the timers, at stable slot numbers. A slot's number and generation form the
//!   [`TimerId`]; the generation moves on each time the slot is freed (the timer fired once,
//!   or was cancelled), so an old id never names the timer that later reuses the slot.
//! - `heap`: a binary min-heap of slot numbers ordered by deadline (ties in the order the
//!   deadlines were set), with each armed slot remembering its heap position. That index is
//!   what makes cancel O(log T) instead of a scan.
//!
//! | operation | cost |
//! |---|---|
//! | [`add`](Timers::add), [`cancel`](Timers::cancel), [`expire`](Timers::expire) | O(log T) |
//! | [`next_deadline`](Timers::next_deadline), [`contains`](Timers::contains), [`deadline`](Timers::deadline) | O(1) |
//!
//! Periodic timers do not drift: the next deadline is the previous *deadline* plus the
//! period, never "now" plus the period, so a late wake-up does not push every later tick back.
//! When a wake-up is so late that whole periods passed, those periods are skipped and counted
//! in [`Expired::missed`] rather than fired in a burst.
//!
//! Size: `T × 44 + 16` bytes with a fn-pointer handler on 64-bit targets (measured on x86_64;
//! by layout, about `T × 36 + 16` on 32-bit ARM, where the pointer is 4 bytes).

use crate::time::duration_nanos;
use crate::{Error, Instant, Result};
use core::time::Duration;

const NONE: u32 = u32::MAX;

/// Names one armed timer; it goes stale when the timer fires (one-shot) or is cancelled.
///
/// A stale id is refused with [`Error::NotRegistered`]: it can never cancel a timer added
/// later in the same slot.
///
/// # Examples
///
/// ```
/// use picosel::{Error, Instant, Timers};
/// let mut timers = Timers::<(), 1>::new();
/// let old = timers.add(Instant::from_nanos(10), None, ()).unwrap();
/// timers.cancel(old).unwrap();
/// let new = timers.add(Instant::from_nanos(20), None, ()).unwrap();
/// assert_ne!(old, new);
/// assert_eq!(timers.cancel(old), Err(Error::NotRegistered));
/// assert!(timers.contains(new));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    slot: u32,
    generation: u32,
}

/// A timer taken from the table by [`Timers::expire`].
///
/// # Examples
///
/// ```
/// use picosel::{Instant, Timers};
/// let mut timers = Timers::<&str, 2>::new();
/// timers.add(Instant::from_nanos(5), None, "once").unwrap();
/// let e = timers.expire(Instant::from_nanos(7)).unwrap();
/// assert_eq!((e.handler, e.deadline, e.missed), ("once", Instant::from_nanos(5), 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired<H> {
    /// The timer's id: stale now for a one-shot timer, still armed for a periodic one.
    pub id: TimerId,
    /// What was stored with the timer.
    pub handler: H,
    /// The deadline that was reached (never later than the `now` given to `expire`).
    pub deadline: Instant,
    /// Whole periods that passed after `deadline` without firing, skipped (periodic only).
    pub missed: u32,
}

#[derive(Debug, Clone, Copy)]
struct Slot<H> {
    deadline: u64,
    /// Nanoseconds; 0 for a one-shot timer.
    period: u64,
    /// Order among equal deadlines: the order they were set in.
    seq: u32,
    generation: u32,
    /// Heap position while armed; next free slot while free.
    link: u32,
    /// `Some` exactly while armed.
    handler: Option<H>,
}

/// A table of at most `T` timers carrying a `H` each (the event loop stores a handler).
///
/// Time is passed in ([`Instant`]), never read here, so the table is pure and testable; the
/// event loop reads the clock only when a timer is armed.
///
/// A binary min-heap of slot numbers, each armed slot knowing its heap position:
/// [`add`](Self::add), [`cancel`](Self::cancel) and [`expire`](Self::expire) are O(log T);
/// [`next_deadline`](Self::next_deadline), [`contains`](Self::contains) and
/// [`deadline`](Self::deadline) O(1). Equal deadlines fire in the order they were set. A
/// [`TimerId`] carries its slot's generation, which moves on when the slot is freed, so a stale
/// id never cancels a later timer. Periodic timers stay on their grid (next deadline = previous
/// deadline + period) and count, rather than fire, the periods a late caller missed.
///
/// Size: `T × 44 + 16` bytes with a fn-pointer handler on 64-bit targets.
///
/// # Examples
///
/// ```
/// use picosel::{Instant, Timers};
/// use std::time::Duration;
///
/// let t0 = Instant::from_nanos(0);
/// let mut timers = Timers::<char, 4>::new();
/// timers.add(t0 + Duration::from_millis(30), None, 'c').unwrap();
/// timers.add(t0 + Duration::from_millis(10), None, 'a').unwrap();
/// timers.add(t0 + Duration::from_millis(20), None, 'b').unwrap();
/// assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(10)));
///
/// let now = t0 + Duration::from_millis(25);
/// let mut fired = Vec::new();
/// while let Some(e) = timers.expire(now) {
///     fired.push(e.handler);
/// }
/// assert_eq!(fired, ['a', 'b']); // deadline order; 'c' is not due yet
/// ```
#[derive(Debug, Clone)]
pub struct Timers<H, const T: usize> {
    slots: [Slot<H>; T],
    heap: [u32; T],
    len: u32,
    /// Slots below this have been used at least once.
    high: u32,
    free_head: u32,
    seq: u32,
}

impl<H: Copy, const T: usize> Timers<H, T> {
    /// An empty table. `T` may be 0 (every [`add`](Self::add) is then [`Error::Full`]).
    ///
    /// ```
    /// use picosel::Timers;
    /// static EMPTY: Timers<fn(), 8> = Timers::new();
    /// assert!(EMPTY.is_empty());
    /// ```
    pub const fn new() -> Self {
        const { assert!(T < NONE as usize, "timer capacity must be below u32::MAX") };
        Timers {
            slots: [const {
                Slot {
                    deadline: 0,
                    period: 0,
                    seq: 0,
                    generation: 0,
                    link: NONE,
                    handler: None,
                }
            }; T],
            heap: [0; T],
            len: 0,
            high: 0,
            free_head: NONE,
            seq: 0,
        }
    }

    /// The maximum number of armed timers, `T`.
    ///
    /// ```
    /// assert_eq!(picosel::Timers::<(), 3>::new().capacity(), 3);
    /// ```
    pub const fn capacity(&self) -> usize {
        T
    }

    /// The number of armed timers.
    ///
    /// ```
    /// # use picosel::{Instant, Timers};
    /// let mut timers = Timers::<(), 3>::new();
    /// timers.add(Instant::ZERO, None, ()).unwrap();
    /// assert_eq!(timers.len(), 1);
    /// ```
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no timer is armed.
    ///
    /// ```
    /// assert!(picosel::Timers::<(), 3>::new().is_empty());
    /// ```
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Arms a timer at `deadline`, repeating every `period` if given. O(log T).
    ///
    /// # Errors
    /// - [`Error::Full`]: `T` timers are armed; nothing changed.
    /// - [`Error::InvalidPeriod`]: a zero period (it would fire on every wake-up, forever).
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{Error, Instant, Timers};
    /// use std::time::Duration;
    /// let mut timers = Timers::<(), 1>::new();
    /// timers.add(Instant::ZERO, Some(Duration::from_millis(2)), ()).unwrap();
    /// assert_eq!(timers.add(Instant::ZERO, None, ()), Err(Error::Full));
    /// ```
    pub fn add(
        &mut self,
        deadline: Instant,
        period: Option<Duration>,
        handler: H,
    ) -> Result<TimerId> {
        let period = match period {
            Some(p) if p.is_zero() => return Err(Error::InvalidPeriod),
            Some(p) => duration_nanos(p),
            None => 0,
        };
        if self.len as usize >= T {
            return Err(Error::Full);
        }
        let slot = if self.free_head != NONE {
            let s = self.free_head;
            self.free_head = self.slots[s as usize].link;
            s
        } else {
            self.high += 1;
            self.high - 1
        };
        let seq = self.next_seq();
        let pos = self.len;
        let s = &mut self.slots[slot as usize];
        s.deadline = deadline.as_nanos();
        s.period = period;
        s.seq = seq;
        s.handler = Some(handler);
        s.link = pos;
        let id = TimerId {
            slot,
            generation: s.generation,
        };
        self.heap[pos as usize] = slot;
        self.len += 1;
        self.sift_up(pos);
        Ok(id)
    }

    /// Disarms a timer and returns what it carried. O(log T).
    ///
    /// # Errors
    /// [`Error::NotRegistered`] for a timer that already fired (one-shot), was cancelled, or
    /// whose id is stale.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{Error, Instant, Timers};
    /// let mut timers = Timers::<u8, 2>::new();
    /// let id = timers.add(Instant::ZERO, None, 7).unwrap();
    /// assert_eq!(timers.cancel(id), Ok(7));
    /// assert_eq!(timers.cancel(id), Err(Error::NotRegistered));
    /// ```
    pub fn cancel(&mut self, id: TimerId) -> Result<H> {
        let pos = self.armed(id).ok_or(Error::NotRegistered)?;
        let handler = self.free(id.slot);
        self.remove_at(pos);
        handler.ok_or(Error::NotRegistered)
    }

    /// Whether `id` names an armed timer. O(1).
    ///
    /// ```
    /// # use picosel::{Instant, Timers};
    /// let mut timers = Timers::<(), 2>::new();
    /// let id = timers.add(Instant::ZERO, None, ()).unwrap();
    /// assert!(timers.contains(id));
    /// timers.expire(Instant::ZERO).unwrap();
    /// assert!(!timers.contains(id)); // a one-shot timer is gone once fired
    /// ```
    pub fn contains(&self, id: TimerId) -> bool {
        self.armed(id).is_some()
    }

    /// The next deadline of an armed timer. O(1).
    ///
    /// ```
    /// use picosel::{Instant, Timers};
    /// use std::time::Duration;
    /// let mut timers = Timers::<(), 2>::new();
    /// let id = timers.add(Instant::from_nanos(10), Some(Duration::from_nanos(10)), ()).unwrap();
    /// timers.expire(Instant::from_nanos(12)).unwrap();
    /// assert_eq!(timers.deadline(id), Some(Instant::from_nanos(20)));
    /// ```
    pub fn deadline(&self, id: TimerId) -> Option<Instant> {
        self.armed(id)?;
        self.slots
            .get(id.slot as usize)
            .map(|s| Instant::from_nanos(s.deadline))
    }

    /// The earliest deadline, or `None` when no timer is armed. O(1).
    ///
    /// ```
    /// use picosel::{Instant, Timers};
    /// let mut timers = Timers::<(), 2>::new();
    /// assert_eq!(timers.next_deadline(), None);
    /// timers.add(Instant::from_nanos(9), None, ()).unwrap();
    /// assert_eq!(timers.next_deadline(), Some(Instant::from_nanos(9)));
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.len == 0 {
            return None;
        }
        Some(Instant::from_nanos(
            self.slots[self.heap[0] as usize].deadline,
        ))
    }

    /// Takes the earliest timer if its deadline is at or before `now`. O(log T).
    ///
    /// A one-shot timer leaves the table (its id goes stale). A periodic timer stays armed
    /// under the same id with its next deadline `deadline + (missed + 1) × period`, the first
    /// one after `now`: lateness never accumulates, and periods missed entirely are counted,
    /// not fired.
    ///
    /// Call it in a loop until `None` to fire everything due; each periodic timer comes out at
    /// most once per `now`.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{Instant, Timers};
    /// use std::time::Duration;
    /// let ms = Duration::from_millis(1);
    /// let mut timers = Timers::<(), 1>::new();
    /// let id = timers.add(Instant::ZERO + 10 * ms, Some(10 * ms), ()).unwrap();
    /// assert!(timers.expire(Instant::ZERO + 9 * ms).is_none()); // never early
    ///
    /// // Woken 35 ms late: the 10 ms tick fires, the 20 and 30 ms ticks are skipped.
    /// let e = timers.expire(Instant::ZERO + 45 * ms).unwrap();
    /// assert_eq!((e.deadline, e.missed), (Instant::ZERO + 10 * ms, 3));
    /// assert_eq!(timers.deadline(id), Some(Instant::ZERO + 50 * ms)); // still on the grid
    /// assert!(timers.expire(Instant::ZERO + 45 * ms).is_none());
    /// ```
    pub fn expire(&mut self, now: Instant) -> Option<Expired<H>> {
        if self.len == 0 {
            return None;
        }
        let slot = self.heap[0];
        let s = self.slots[slot as usize];
        let handler = s.handler?;
        if s.deadline > now.as_nanos() {
            return None;
        }
        let id = TimerId {
            slot,
            generation: s.generation,
        };
        let mut missed = 0;
        // A period of 0 marks a one-shot timer.
        match (now.as_nanos() - s.deadline).checked_div(s.period) {
            None => {
                self.free(slot);
                self.remove_at(0);
            }
            Some(skipped) => {
                missed = u32::try_from(skipped).unwrap_or(u32::MAX);
                // deadline + (skipped + 1) * period > now; saturates at Instant::MAX, never
                // wraps (u64 * u64 fits in u128).
                let step = (u128::from(skipped) + 1) * u128::from(s.period);
                let next = u128::from(s.deadline) + step;
                let seq = self.next_seq();
                let e = &mut self.slots[slot as usize];
                e.deadline = u64::try_from(next).unwrap_or(u64::MAX);
                e.seq = seq;
                self.sift_down(0);
            }
        }
        Some(Expired {
            id,
            handler,
            deadline: Instant::from_nanos(s.deadline),
            missed,
        })
    }

    /// The heap position of an armed timer named by a live id.
    fn armed(&self, id: TimerId) -> Option<u32> {
        let s = self.slots.get(id.slot as usize)?;
        if s.generation == id.generation && s.handler.is_some() {
            Some(s.link)
        } else {
            None
        }
    }

    fn next_seq(&mut self) -> u32 {
        let s = self.seq;
        self.seq = s.wrapping_add(1);
        s
    }

    /// Frees an armed slot (retiring its generation); the caller then removes it from the heap.
    fn free(&mut self, slot: u32) -> Option<H> {
        let s = &mut self.slots[slot as usize];
        let handler = s.handler.take();
        s.generation = s.generation.wrapping_add(1);
        s.link = self.free_head;
        self.free_head = slot;
        handler
    }

    /// Removes heap entry `pos`: the last entry fills the hole and moves up or down.
    fn remove_at(&mut self, pos: u32) {
        self.len -= 1;
        let last = self.len;
        if pos != last {
            let moved = self.heap[last as usize];
            self.place(pos, moved);
            self.sift_up(pos);
            let now_at = self.slots[moved as usize].link;
            self.sift_down(now_at);
        }
    }

    fn place(&mut self, pos: u32, slot: u32) {
        self.heap[pos as usize] = slot;
        self.slots[slot as usize].link = pos;
    }

    /// Heap order: earlier deadline first, then earlier-set first. The sequence comparison
    /// wraps, which is exact while equal deadlines were set fewer than 2^31 adds apart.
    fn before(&self, a: u32, b: u32) -> bool {
        let (a, b) = (&self.slots[a as usize], &self.slots[b as usize]);
        a.deadline < b.deadline
            || (a.deadline == b.deadline && (a.seq.wrapping_sub(b.seq) as i32) < 0)
    }

    fn sift_up(&mut self, mut pos: u32) {
        let slot = self.heap[pos as usize];
        while pos > 0 {
            let parent = (pos - 1) / 2;
            let p = self.heap[parent as usize];
            if !self.before(slot, p) {
                break;
            }
            self.place(pos, p);
            pos = parent;
        }
        self.place(pos, slot);
    }

    fn sift_down(&mut self, mut pos: u32) {
        let slot = self.heap[pos as usize];
        loop {
            let left = 2 * u64::from(pos) + 1;
            if left >= u64::from(self.len) {
                break;
            }
            let left = left as u32;
            let right = left + 1;
            let child = if right < self.len
                && self.before(self.heap[right as usize], self.heap[left as usize])
            {
                right
            } else {
                left
            };
            let c = self.heap[child as usize];
            if !self.before(c, slot) {
                break;
            }
            self.place(pos, c);
            pos = child;
        }
        self.place(pos, slot);
    }
}

impl<H: Copy, const T: usize> Default for Timers<H, T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapless::Vec;

    fn at(n: u64) -> Instant {
        Instant::from_nanos(n)
    }

    #[test]
    fn stale_id_cannot_cancel_the_timer_reusing_its_slot() {
        let mut t = Timers::<u32, 1>::new();
        let a = t.add(at(10), None, 1).unwrap();
        assert_eq!(t.expire(at(10)).map(|e| e.handler), Some(1));
        let b = t.add(at(20), None, 2).unwrap();
        assert_eq!(t.cancel(a), Err(Error::NotRegistered));
        assert!(t.contains(b));
        assert_eq!(t.cancel(b), Ok(2));
    }

    #[test]
    fn full_and_zero_period_are_refused_without_change() {
        let mut t = Timers::<(), 2>::new();
        t.add(at(1), None, ()).unwrap();
        assert_eq!(
            t.add(at(1), Some(Duration::ZERO), ()),
            Err(Error::InvalidPeriod)
        );
        t.add(at(2), None, ()).unwrap();
        assert_eq!(t.add(at(3), None, ()), Err(Error::Full));
        assert_eq!(t.len(), 2);
        let mut z = Timers::<(), 0>::new();
        assert_eq!(z.add(at(0), None, ()), Err(Error::Full));
        assert!(z.expire(Instant::MAX).is_none());
    }

    #[test]
    fn equal_deadlines_fire_in_the_order_they_were_set() {
        let mut t = Timers::<u32, 8>::new();
        for i in 0..8 {
            t.add(at(5), None, i).unwrap();
        }
        let order: Vec<u32, 8> =
            core::iter::from_fn(|| t.expire(at(5)).map(|e| e.handler)).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn periodic_stays_on_its_grid_and_counts_missed_periods() {
        let mut t = Timers::<(), 1>::new();
        let id = t.add(at(100), Some(Duration::from_nanos(100)), ()).unwrap();
        let e = t.expire(at(150)).unwrap();
        assert_eq!((e.deadline, e.missed), (at(100), 0));
        assert_eq!(t.deadline(id), Some(at(200)));
        let e = t.expire(at(499)).unwrap();
        assert_eq!((e.deadline, e.missed), (at(200), 2));
        assert_eq!(t.deadline(id), Some(at(500)));
        // A deadline near the end of time saturates instead of wrapping.
        let mut t = Timers::<(), 1>::new();
        let id = t
            .add(Instant::MAX, Some(Duration::from_secs(1)), ())
            .unwrap();
        assert!(t.expire(Instant::MAX).is_some());
        assert_eq!(t.deadline(id), Some(Instant::MAX));
        // The largest possible lateness with the smallest period: u64::MAX periods skipped.
        let mut t = Timers::<(), 1>::new();
        let id = t.add(at(0), Some(Duration::from_nanos(1)), ()).unwrap();
        let e = t.expire(Instant::MAX).unwrap();
        assert_eq!(e.missed, u32::MAX);
        assert_eq!(t.deadline(id), Some(Instant::MAX));
    }

    /// Keeps a bounded sample of dead ids.
    fn remember(dead: &mut Vec<TimerId, 64>, id: TimerId) {
        if dead.is_full() {
            dead.swap_remove(0);
        }
        let _ = dead.push(id);
    }

    /// Random operations against a plain list, checking firing order, staleness and the
    /// periodic arithmetic.
    #[test]
    fn matches_model_under_random_ops() {
        const T: usize = 16;
        #[derive(Clone, Copy, Debug)]
        struct M {
            id: TimerId,
            deadline: u64,
            period: u64,
            seq: u64,
            tag: u32,
        }
        let mut t = Timers::<u32, T>::new();
        let mut model: Vec<M, T> = Vec::new();
        let mut dead: Vec<TimerId, 64> = Vec::new();
        let mut now = 0u64;
        let mut seq = 0u64;
        let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for step in 0..50_000u32 {
            let r = next();
            match r % 8 {
                0..=2 => {
                    let deadline = now + next() % 200;
                    let period = if r & 0x100 != 0 { 1 + next() % 50 } else { 0 };
                    let p = (period != 0).then(|| Duration::from_nanos(period));
                    let res = t.add(at(deadline), p, step);
                    if model.len() == T {
                        assert_eq!(res, Err(Error::Full));
                    } else {
                        let id = res.unwrap();
                        seq += 1;
                        model
                            .push(M {
                                id,
                                deadline,
                                period,
                                seq,
                                tag: step,
                            })
                            .unwrap();
                    }
                }
                3 => {
                    if !model.is_empty() {
                        let i = (next() % model.len() as u64) as usize;
                        let m = model.swap_remove(i);
                        assert_eq!(t.cancel(m.id), Ok(m.tag));
                        remember(&mut dead, m.id);
                    }
                }
                4 => {
                    if !dead.is_empty() {
                        let id = dead[(next() % dead.len() as u64) as usize];
                        assert_eq!(t.cancel(id), Err(Error::NotRegistered));
                        assert!(!t.contains(id));
                    }
                }
                _ => {
                    now += next() % 120;
                    loop {
                        let due = model
                            .iter()
                            .enumerate()
                            .filter(|(_, m)| m.deadline <= now)
                            .min_by_key(|(_, m)| (m.deadline, m.seq))
                            .map(|(i, _)| i);
                        let got = t.expire(at(now));
                        let Some(i) = due else {
                            assert!(got.is_none(), "step {step}");
                            break;
                        };
                        let e = got.unwrap();
                        let m = model[i];
                        assert_eq!((e.id, e.handler, e.deadline), (m.id, m.tag, at(m.deadline)));
                        if m.period == 0 {
                            assert_eq!(e.missed, 0);
                            model.swap_remove(i);
                            remember(&mut dead, m.id);
                        } else {
                            // Walk the grid: every tick at or before `now` after the one
                            // that fires is missed.
                            let mut next = m.deadline + m.period;
                            let mut k = 0;
                            while next <= now {
                                next += m.period;
                                k += 1;
                            }
                            assert_eq!(e.missed, k);
                            seq += 1;
                            model[i].deadline = next;
                            model[i].seq = seq;
                            assert!(model[i].deadline > now);
                        }
                    }
                }
            }
            assert_eq!(t.len(), model.len());
            let earliest = model.iter().map(|m| m.deadline).min().map(at);
            assert_eq!(t.next_deadline(), earliest);
            for m in &model {
                assert_eq!(t.deadline(m.id), Some(at(m.deadline)));
            }
        }
    }
}
