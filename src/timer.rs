//! [`Timers`]: a fixed-capacity timer table on the monotonic clock, `const fn new`, no syscalls.
//!
//! Two arrays of `T` entries:
//! - `slots`: the timers, at stable slot numbers in a [`Slots`] table. A slot's number and
//!   generation form the [`TimerId`]; the generation moves on each time the slot is freed (the
//!   timer fired once, was cancelled, or its next deadline would lie past [`Instant::MAX`]), so
//!   an old id never names the timer that later reuses the slot.
//! - `heap`: slot numbers, the first `len` of them a binary min-heap of the armed slots ordered
//!   by deadline (ties in the order the deadlines were set). Each armed slot keeps its heap
//!   position in its slot's link, the bits of the tag below the generation; the position is
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
//! Counters never wrap in a way that matters: a slot's generation has 64 − ⌈log2 T⌉ bits (see
//! [`TimerId`]); the sequence that orders equal deadlines is a `u64` compared with wrapping
//! arithmetic, exact while two equal deadlines were set fewer than 2^63 arms apart (292 years
//! at one arm per nanosecond); deadlines are checked, never wrapped.
//!
//! Size: `T × 44 + 16` bytes for an even `T` with 8 bytes of data (a fn pointer) on 64-bit
//! targets (measured on `x86_64`), unchanged by the 64-bit generation and sequence: the generation
//! shares its word with the heap position, and the free list lives in the free slots' links.
//! For an odd `T` it is `T × 44 + 20`, 8 bytes more than before the shared slot table: that
//! table's fixed part is two `u32`s (the free list's head and the count), where the heap's tail
//! held the free list before, and an odd heap array leaves 4 bytes short of the `u64` alignment.
//! By layout about the same on 32-bit ARM, up from `T × 36 + 16` with 32-bit counters (a `u64`
//! is 8-byte aligned there, so the 4-byte pointer is padded).

use crate::error::{Error, Result};
use crate::slots::{Occupant, Slots};
use crate::time::{duration_nanos, Instant};
use core::time::Duration;

/// Names one armed timer; it goes stale when the timer leaves the table: a one-shot timer
/// fired, the timer was cancelled, or a periodic timer's next deadline would lie past
/// [`Instant::MAX`].
///
/// A stale id is refused with [`Error::NotRegistered`]: it never cancels a timer added later
/// in the same slot. The id packs the slot number (⌈log2 T⌉ bits) and the slot's generation
/// (the other 64 − ⌈log2 T⌉ bits) into 8 bytes. The generation moves on each time the slot is
/// freed and is never retired, so a stale id could name a later timer only after its slot was
/// freed 2^(64 − ⌈log2 T⌉) times: 2^60 for `T = 16`, 2^52 for `T = 4096` (over 140 years at
/// a million timers a second, all through one slot).
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
pub struct TimerId(u64);

/// A timer taken from the table by [`Timers::expire`].
///
/// # Examples
///
/// ```
/// use picosel::{Instant, Timers};
/// let mut timers = Timers::<&str, 2>::new();
/// timers.add(Instant::from_nanos(5), None, "once").unwrap();
/// let e = timers.expire(Instant::from_nanos(7)).unwrap();
/// assert_eq!((e.data, e.deadline, e.missed), ("once", Instant::from_nanos(5), 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired<D> {
    /// The timer's id: still armed for a periodic timer, stale for a one-shot timer and for a
    /// periodic one whose next deadline would lie past [`Instant::MAX`] (this was its last
    /// firing; [`Timers::contains`] tells which).
    pub id: TimerId,
    /// What was stored with the timer.
    pub data: D,
    /// The deadline that was reached (never later than the `now` given to `expire`).
    pub deadline: Instant,
    /// Whole periods that passed after `deadline` without firing, skipped (periodic only);
    /// saturates at `u32::MAX`.
    pub missed: u32,
}

#[derive(Debug, Clone, Copy)]
struct Timer<D> {
    deadline: u64,
    /// Nanoseconds; 0 for a one-shot timer.
    period: u64,
    /// Order among equal deadlines: the order they were set in.
    seq: u64,
    /// `Some` exactly while armed. The `Option` wraps the data, not the whole timer, so that a
    /// small data type without a spare bit pattern (a `u32`) keeps its flag in the timer's
    /// padding: an `Option<Timer<u32>>` would cost 8 bytes more per timer.
    data: Option<D>,
}

impl<D: Copy> Occupant for Timer<D> {
    const VACANT: Self = Timer {
        deadline: 0,
        period: 0,
        seq: 0,
        data: None,
    };
    fn is_vacant(&self) -> bool {
        self.data.is_none()
    }
}

/// A table of at most `T` timers carrying a value `D` each, the timer's data (the event loop
/// stores the handler and the user's data there).
///
/// Time is passed in ([`Instant`]), never read here, so the table is pure and testable; the
/// event loop reads the clock only when a timer is armed.
///
/// A binary min-heap of slot numbers, each armed slot knowing its heap position:
/// [`add`](Self::add), [`cancel`](Self::cancel) and [`expire`](Self::expire) are O(log T);
/// [`next_deadline`](Self::next_deadline), [`contains`](Self::contains) and
/// [`deadline`](Self::deadline) O(1). Equal deadlines fire in the order they were set. A
/// [`TimerId`] carries its slot's generation, which moves on when the slot is freed, so a stale
/// id never cancels a later timer (the bound is on [`TimerId`]). Periodic timers stay on their
/// grid (next deadline = previous deadline + period) and count, rather than fire, the periods a
/// late caller missed; one whose next deadline would lie past [`Instant::MAX`] fires that last
/// time and is disarmed, so `expire` loops always end.
///
/// Size: `T × 44 + 16` bytes for an even `T` (`+ 20` for an odd one) with 8 bytes of data (a fn
/// pointer) on 64-bit targets, and by layout about the same on 32-bit ARM.
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
///     fired.push(e.data);
/// }
/// assert_eq!(fired, ['a', 'b']); // deadline order; 'c' is not due yet
/// ```
#[derive(Debug, Clone)]
pub struct Timers<D, const T: usize> {
    /// The timers; an armed slot's link is its heap position.
    slots: Slots<Timer<D>, T>,
    /// Armed slots as a heap in `heap[..len]`, where `len` is the slot table's.
    heap: [u32; T],
    seq: u64,
}

impl<D: Copy, const T: usize> Timers<D, T> {
    /// An empty table. `T` may be 0 (every [`add`](Self::add) is then [`Error::Full`]).
    ///
    /// ```
    /// use picosel::Timers;
    /// static EMPTY: Timers<fn(), 8> = Timers::new();
    /// assert!(EMPTY.is_empty());
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        Timers {
            // Asserts `T < u32::MAX`, so slot numbers and heap positions fit a `u32`.
            slots: Slots::new(),
            heap: [0; T],
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
        self.slots.len()
    }

    /// Whether no timer is armed.
    ///
    /// ```
    /// assert!(picosel::Timers::<(), 3>::new().is_empty());
    /// ```
    pub const fn is_empty(&self) -> bool {
        self.slots.len() == 0
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
    pub fn add(&mut self, deadline: Instant, period: Option<Duration>, data: D) -> Result<TimerId> {
        let period = match period {
            Some(p) if p.is_zero() => return Err(Error::InvalidPeriod),
            Some(p) => duration_nanos(p),
            None => 0,
        };
        let timer = Timer {
            deadline: deadline.as_nanos(),
            period,
            seq: self.seq,
            data: Some(data),
        };
        let id = self.slots.insert(timer).map_err(|_| Error::Full)?;
        self.seq = self.seq.wrapping_add(1);
        let slot = Slots::<Timer<D>, T>::slot_of(id);
        // The new last heap entry.
        let pos = self.len32() - 1;
        self.heap[pos as usize] = slot;
        self.sift_up(pos);
        Ok(TimerId(id))
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
    pub fn cancel(&mut self, id: TimerId) -> Result<D> {
        let (slot, pos) = self.armed(id).ok_or(Error::NotRegistered)?;
        let timer = self.slots.remove(slot);
        self.remove_at(pos);
        timer.and_then(|t| t.data).ok_or(Error::NotRegistered)
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
        self.slots
            .get(id.0)
            .map(|t| Instant::from_nanos(t.deadline))
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
        if self.is_empty() {
            return None;
        }
        self.slots
            .value(self.heap[0])
            .map(|t| Instant::from_nanos(t.deadline))
    }

    /// Takes the earliest timer if its deadline is at or before `now`. O(log T).
    ///
    /// A one-shot timer leaves the table (its id goes stale). A periodic timer stays armed
    /// under the same id with its next deadline `deadline + (missed + 1) × period`, the first
    /// one after `now`: lateness never accumulates, and periods missed entirely are counted,
    /// not fired. When that next deadline would lie past [`Instant::MAX`] (a `u64` of
    /// nanoseconds), the timer fires this last time and leaves the table like a one-shot one:
    /// it could never come due again without firing on every call.
    ///
    /// Call it in a loop until `None` to fire everything due; each periodic timer comes out at
    /// most once per `now`, so the loop ends, even at `now = Instant::MAX`.
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
    ///
    /// // At the end of time the next tick cannot be represented: one last firing.
    /// assert!(timers.expire(Instant::MAX).is_some());
    /// assert!(!timers.contains(id));
    /// ```
    pub fn expire(&mut self, now: Instant) -> Option<Expired<D>> {
        if self.is_empty() {
            return None;
        }
        let slot = self.heap[0];
        let s = *self.slots.at(slot)?;
        let data = s.data?;
        // `None` while not due.
        let late = now.as_nanos().checked_sub(s.deadline)?;
        let id = TimerId(self.slots.id(slot)?);
        let mut missed = 0;
        // A period of 0 marks a one-shot timer (`checked_div` gives `None`).
        let next = late.checked_div(s.period).and_then(|skipped| {
            missed = u32::try_from(skipped).unwrap_or(u32::MAX);
            // deadline + (skipped + 1) × period: the first grid point after `now`, or `None`
            // where it exceeds u64 nanoseconds.
            skipped
                .checked_add(1)
                .and_then(|k| k.checked_mul(s.period))
                .and_then(|step| s.deadline.checked_add(step))
        });
        if let Some(next) = next {
            let seq = self.next_seq();
            if let Some(t) = self.slots.at_mut(slot) {
                t.deadline = next;
                t.seq = seq;
            }
            self.sift_down(0);
        } else {
            self.slots.remove(slot);
            self.remove_at(0);
        }
        Some(Expired {
            id,
            data,
            deadline: Instant::from_nanos(s.deadline),
            missed,
        })
    }

    /// The slot and heap position of an armed timer named by a live id.
    fn armed(&self, id: TimerId) -> Option<(u32, u32)> {
        self.slots.get(id.0)?;
        let slot = Slots::<Timer<D>, T>::slot_of(id.0);
        Some((slot, self.slots.link(slot)?))
    }

    /// The number of armed timers, which is the heap's length: below `T < u32::MAX`.
    #[allow(clippy::cast_possible_truncation)]
    fn len32(&self) -> u32 {
        self.slots.len() as u32
    }

    fn next_seq(&mut self) -> u64 {
        let s = self.seq;
        self.seq = s.wrapping_add(1);
        s
    }

    /// Removes heap entry `pos`, whose slot was just freed (so the slot table's `len` counts
    /// the heap without it): the last entry fills the hole and moves up or down.
    fn remove_at(&mut self, pos: u32) {
        let last = self.len32();
        if pos != last {
            let moved = self.heap[last as usize];
            self.place(pos, moved);
            self.sift_up(pos);
            if let Some(now_at) = self.slots.link(moved) {
                self.sift_down(now_at);
            }
        }
    }

    fn place(&mut self, pos: u32, slot: u32) {
        self.heap[pos as usize] = slot;
        self.slots.set_link(slot, pos);
    }

    /// Heap order: earlier deadline first, then earlier-set first. The sequence comparison
    /// wraps, which is exact while equal deadlines were set fewer than 2^63 arms apart.
    fn before(&self, a: u32, b: u32) -> bool {
        // Heap entries are armed: no test of that is needed.
        let (Some(a), Some(b)) = (self.slots.value(a), self.slots.value(b)) else {
            return false;
        };
        a.deadline < b.deadline
            || (a.deadline == b.deadline && a.seq.wrapping_sub(b.seq).cast_signed() < 0)
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
            let len = self.len32();
            if left >= u64::from(len) {
                break;
            }
            // Below len <= T < u32::MAX, so `left + 1` fits too.
            #[allow(clippy::cast_possible_truncation)]
            let left = left as u32;
            let right = left + 1;
            let child = if right < len
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

impl<D: Copy, const T: usize> Default for Timers<D, T> {
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
        assert_eq!(t.expire(at(10)).map(|e| e.data), Some(1));
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
        let order: Vec<u32, 8> = core::iter::from_fn(|| t.expire(at(5)).map(|e| e.data)).collect();
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
        // A deadline at the end of time: its next one cannot be represented, so it fires
        // once more and is disarmed.
        let mut t = Timers::<(), 1>::new();
        let id = t
            .add(Instant::MAX, Some(Duration::from_secs(1)), ())
            .unwrap();
        assert!(t.expire(Instant::MAX).is_some());
        assert_eq!(t.deadline(id), None);
        assert!(t.is_empty());
        // The largest possible lateness with the smallest period: u64::MAX periods skipped,
        // counted as u32::MAX, and the next tick (2^64 ns) is past the end of time.
        let mut t = Timers::<(), 1>::new();
        let id = t.add(at(0), Some(Duration::from_nanos(1)), ()).unwrap();
        let e = t.expire(Instant::MAX).unwrap();
        assert_eq!(e.missed, u32::MAX);
        assert_eq!(t.deadline(id), None);
    }

    /// Regression: a periodic timer's next deadline saturated at `Instant::MAX`, so
    /// `expire(Instant::MAX)` returned the same timer forever and the documented
    /// `while let Some(e) = timers.expire(now)` loop never ended.
    #[test]
    fn expire_loop_at_instant_max_ends_with_each_periodic_timer_fired_once() {
        let periods = [1, 2, 1_000, 1_000_000_007, u64::MAX / 3, u64::MAX];
        let deadlines = [0, 1, u64::MAX / 2, u64::MAX - 1_000, u64::MAX - 1, u64::MAX];
        let mut t = Timers::<(usize, usize), 40>::new();
        let mut ids: Vec<TimerId, 40> = Vec::new();
        for (i, &d) in deadlines.iter().enumerate() {
            for (j, &p) in periods.iter().enumerate() {
                let id = t.add(at(d), Some(Duration::from_nanos(p)), (i, j)).unwrap();
                ids.push(id).unwrap();
            }
        }
        let oneshot = t.add(Instant::MAX, None, (99, 99)).unwrap();
        let mut fired = [[0u32; 6]; 6];
        let mut calls = 0;
        while let Some(e) = t.expire(Instant::MAX) {
            calls += 1;
            assert!(calls <= 37, "expire(Instant::MAX) keeps returning timers");
            assert!(
                !t.contains(e.id),
                "a timer fired at the end of time stays armed"
            );
            if e.data != (99, 99) {
                fired[e.data.0][e.data.1] += 1;
            }
        }
        assert_eq!(calls, 37);
        assert_eq!(fired, [[1; 6]; 6]);
        assert!(t.is_empty() && !t.contains(oneshot));
        assert!(ids
            .iter()
            .all(|&id| t.cancel(id) == Err(Error::NotRegistered)));
    }

    /// A deadline near `Instant::MAX` stays on its grid while the grid is representable, then
    /// fires one last time.
    #[test]
    fn periodic_timer_near_instant_max_fires_until_its_grid_ends() {
        let mut t = Timers::<(), 1>::new();
        let id = t
            .add(at(u64::MAX - 10), Some(Duration::from_nanos(4)), ())
            .unwrap();
        let e = t.expire(at(u64::MAX - 10)).unwrap();
        assert_eq!((e.deadline, e.missed), (at(u64::MAX - 10), 0));
        assert_eq!(t.deadline(id), Some(at(u64::MAX - 6)));
        let e = t.expire(at(u64::MAX - 3)).unwrap();
        assert_eq!((e.deadline, e.missed), (at(u64::MAX - 6), 0));
        assert_eq!(t.deadline(id), Some(at(u64::MAX - 2)));
        assert!(t.expire(at(u64::MAX - 3)).is_none());
        // MAX - 2 + 4 is past the end: the last firing.
        let e = t.expire(Instant::MAX).unwrap();
        assert_eq!((e.id, e.deadline, e.missed), (id, at(u64::MAX - 2), 0));
        assert!(t.expire(Instant::MAX).is_none());
        assert!(!t.contains(id));
        // A grid that ends exactly at MAX keeps MAX as its last deadline.
        let mut t = Timers::<(), 1>::new();
        let id = t
            .add(at(u64::MAX - 8), Some(Duration::from_nanos(4)), ())
            .unwrap();
        assert_eq!(t.expire(at(u64::MAX - 5)).map(|e| e.missed), Some(0));
        assert_eq!(t.deadline(id), Some(at(u64::MAX - 4)));
        assert_eq!(t.expire(at(u64::MAX - 1)).map(|e| e.missed), Some(0));
        assert_eq!(t.deadline(id), Some(Instant::MAX));
        assert_eq!(
            t.expire(Instant::MAX).map(|e| e.deadline),
            Some(Instant::MAX)
        );
        assert!(t.expire(Instant::MAX).is_none() && t.is_empty());
    }

    /// Regression: the generation was a `u32`, so after 2^32 frees of one slot an old id
    /// named (and could cancel) the timer then in the slot. Forced: the slot's generation is
    /// set where a 32-bit one wraps.
    #[test]
    fn stale_id_does_not_cancel_a_later_timer_after_2_pow_32_reuses() {
        let mut t = Timers::<u32, 4>::new();
        let old = t.add(at(10), None, 1).unwrap();
        assert_eq!(t.cancel(old), Ok(1));
        let slot = Slots::<Timer<u32>, 4>::slot_of(old.0);
        // The generation the slot has after 2^32 - 1 more frees: one more wraps a u32.
        t.slots.set_generation(slot, u64::from(u32::MAX));
        let mid = t.add(at(20), None, 2).unwrap();
        assert_eq!(t.cancel(mid), Ok(2));
        let new = t.add(at(30), None, 3).unwrap();
        assert_eq!(Slots::<Timer<u32>, 4>::slot_of(new.0), slot, "same slot");
        assert_ne!(new, old);
        assert_eq!(t.cancel(old), Err(Error::NotRegistered));
        assert_eq!(t.cancel(mid), Err(Error::NotRegistered));
        assert!(t.contains(new));
        assert_eq!(t.deadline(new), Some(at(30)));
        assert_eq!(t.cancel(new), Ok(3));
    }

    /// The bound stated on `TimerId`: a slot's generation has 64 - ceil(log2 T) bits and wraps
    /// only after that many frees, without disturbing the slot's heap position.
    #[test]
    fn generation_wraps_only_after_2_pow_64_minus_slot_bits_frees() {
        assert_eq!(64 - Slots::<Timer<u8>, 4096>::BITS, 52);
        let mut t = Timers::<u8, 4096>::new();
        let a = t.add(at(5), None, 0).unwrap(); // slot 0, generation 0
        let b = t.add(at(5), None, 1).unwrap(); // slot 1
        assert_eq!(t.cancel(a), Ok(0));
        // The last generation before the wrap: 2^52 - 1.
        t.slots.set_generation(0, (1 << 52) - 1);
        let last = t.add(at(7), None, 2).unwrap();
        assert_eq!(last.0, !4095, "slot 0 at generation 2^52 - 1");
        assert!(t.contains(b) && t.contains(last));
        assert_eq!(t.cancel(last), Ok(2));
        // One more free wraps it to 0: only now could `a` name a timer again.
        let wrapped = t.add(at(9), None, 3).unwrap();
        assert_eq!(wrapped, a);
        assert_eq!(t.next_deadline(), Some(at(5)));
        assert_eq!(t.expire(at(9)).map(|e| e.data), Some(1));
        assert_eq!(t.expire(at(9)).map(|e| e.data), Some(3));
        // T = 1 has no slot bits: the whole id is the generation.
        let mut one = Timers::<(), 1>::new();
        let first = one.add(at(0), None, ()).unwrap();
        one.cancel(first).unwrap();
        one.slots.set_generation(0, u64::MAX);
        let top = one.add(at(0), None, ()).unwrap();
        assert_eq!(top.0, u64::MAX);
        one.cancel(top).unwrap();
        assert_eq!(one.add(at(0), None, ()), Ok(first));
    }

    /// Regression: the sequence ordering equal deadlines was a `u32` compared with wrapping
    /// arithmetic, so two equal deadlines set 2^31 or more arms apart fired in the wrong order.
    /// Forced: the counter jumps 2^31 + 1 arms between the two.
    #[test]
    fn equal_deadlines_keep_their_order_when_set_2_pow_31_arms_apart() {
        let mut t = Timers::<char, 2>::new();
        t.add(at(50), None, 'a').unwrap();
        t.seq = t.seq.wrapping_add((1 << 31) + 1);
        t.add(at(50), None, 'b').unwrap();
        assert_eq!(t.expire(at(50)).map(|e| e.data), Some('a'));
        assert_eq!(t.expire(at(50)).map(|e| e.data), Some('b'));
    }

    /// The 64-bit sequence itself wraps (after 2^64 arms) without breaking the order.
    #[test]
    fn equal_deadlines_keep_their_order_across_the_sequence_wrap() {
        let mut t = Timers::<u32, 8>::new();
        t.seq = u64::MAX - 3;
        for i in 0..8 {
            t.add(at(5), None, i).unwrap();
        }
        assert_eq!(t.seq, 4);
        let order: Vec<u32, 8> = core::iter::from_fn(|| t.expire(at(5)).map(|e| e.data)).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5, 6, 7]);
        // A periodic timer re-armed across the wrap goes behind an equal deadline set before.
        let mut t = Timers::<char, 2>::new();
        t.seq = u64::MAX;
        t.add(at(10), Some(Duration::from_nanos(10)), 'p').unwrap(); // seq MAX, next at 20
        t.add(at(20), None, 'o').unwrap(); // seq 0
        assert_eq!(t.expire(at(10)).map(|e| e.data), Some('p')); // re-armed: seq 1
        assert_eq!(t.expire(at(20)).map(|e| e.data), Some('o'));
        assert_eq!(t.expire(at(20)).map(|e| e.data), Some('p'));
    }

    /// Counters and lengths at their edges: a full table of the largest handled lateness, a
    /// saturated `missed`, lengths back to zero.
    #[test]
    fn counters_at_their_edges_do_not_overflow() {
        let mut t = Timers::<u8, 3>::new();
        t.seq = u64::MAX;
        let a = t.add(at(0), Some(Duration::MAX), 0).unwrap();
        let b = t
            .add(at(0), Some(Duration::from_nanos(u64::MAX)), 1)
            .unwrap();
        let c = t.add(at(1), Some(Duration::from_nanos(2)), 2).unwrap();
        assert_eq!(t.add(at(0), None, 3), Err(Error::Full));
        assert_eq!(t.len(), 3);
        // Duration::MAX is clamped to u64::MAX ns; 0 + 1 × that = MAX: still representable.
        let e = t.expire(at(u64::MAX - 1)).unwrap();
        assert_eq!((e.data, e.missed), (0, 0));
        assert_eq!(t.deadline(a), Some(Instant::MAX));
        let e = t.expire(at(u64::MAX - 1)).unwrap();
        assert_eq!((e.data, e.missed), (1, 0));
        assert_eq!(t.deadline(b), Some(Instant::MAX));
        // (MAX - 2) / 2 periods missed: saturated; next grid point MAX, representable.
        let e = t.expire(at(u64::MAX - 1)).unwrap();
        assert_eq!((e.data, e.missed), (2, u32::MAX));
        assert_eq!(t.deadline(c), Some(Instant::MAX));
        assert!(t.expire(at(u64::MAX - 1)).is_none());
        for _ in 0..3 {
            assert!(t.expire(Instant::MAX).is_some());
        }
        assert!(t.expire(Instant::MAX).is_none());
        assert_eq!(t.len(), 0);
        assert!(t.next_deadline().is_none());
    }

    #[test]
    fn size_per_timer_is_unchanged_by_the_wider_counters() {
        if cfg!(target_pointer_width = "64") {
            assert_eq!(core::mem::size_of::<Timers<fn(), 16>>(), 16 * 44 + 16);
            // Data with no spare bit pattern: the armed flag still fits the timer's padding.
            assert_eq!(core::mem::size_of::<Timers<u32, 16>>(), 16 * 44 + 16);
            assert_eq!(core::mem::size_of::<Timers<fn(), 3>>(), 3 * 44 + 20);
        }
        assert_eq!(core::mem::size_of::<TimerId>(), 8);
    }
}
