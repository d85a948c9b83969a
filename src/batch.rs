//! [`Batch`]: the cursor over the events of the last wait, shared by [`Events`] and the event
//! loop, so both hand out each event of a wait once, in the kernel's order, and agree on when a
//! new wait may start.
//!
//! A wait fills the backend's buffer; the cursor then walks it. Two rules keep edge-triggered
//! and oneshot events from being lost (the kernel reports them once):
//! - while a batch is being dispatched (from the wait that filled it until an [`Events`] is
//!   dropped or the loop ends its turn), a new wait is refused: it would overwrite the buffer
//!   under the cursor (the selector keeps that flag with the others its wait tests);
//! - the rest of a batch that was not walked to its end (an [`Events`] dropped early, a
//!   handler that panicked) is handed out by the next wait, before it blocks.
//!
//! [`Events`]: crate::Events

/// See the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batch {
    /// Counts waits. 64 bits: at a million waits a second it wraps after 584,000 years, so a
    /// registration's "armed during wait k" mark is never mistaken for a later wait's.
    count: u64,
    /// Entries in the backend's buffer from the last wait.
    len: usize,
    /// The next entry to hand out.
    next: usize,
}

impl Batch {
    pub(crate) const EMPTY: Batch = Batch {
        count: 0,
        len: 0,
        next: 0,
    };

    /// The number of the last wait.
    #[inline]
    pub(crate) const fn count(&self) -> u64 {
        self.count
    }

    /// A wait filled `len` entries of the backend's buffer: a new batch, with the next number.
    /// (A failed wait leaves the old batch, which then has nothing left to hand out: waits
    /// start only when its rest is empty.)
    #[inline]
    pub(crate) fn filled(&mut self, len: usize) {
        self.count = self.count.wrapping_add(1);
        self.len = len;
        self.next = 0;
    }

    /// Entries not handed out yet: `next..len`.
    #[inline]
    pub(crate) fn rest(&self) -> core::ops::Range<usize> {
        self.next..self.len
    }

    /// Whether entries are left that were not handed out (stale ones included).
    #[inline]
    pub(crate) const fn has_rest(&self) -> bool {
        self.next < self.len
    }

    /// The index of the next entry, advancing past it first, so a handler that panics on it
    /// does not get it again.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<usize> {
        if self.next < self.len {
            self.next += 1;
            Some(self.next - 1)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Batch;

    #[test]
    fn hands_out_each_entry_once_and_keeps_the_rest() {
        let mut b = Batch::EMPTY;
        b.filled(3);
        assert_eq!(b.take(), Some(0));
        assert_eq!(b.rest(), 1..3);
        assert!(b.has_rest());
        assert_eq!((b.take(), b.take(), b.take()), (Some(1), Some(2), None));
        assert!(b.rest().is_empty() && !b.has_rest());
        b.filled(0);
        assert_eq!((b.count(), b.take()), (2, None));
    }

    /// The wait counter is 64 bits: forced to its end, it wraps without a panic in an
    /// overflow-checked build.
    #[test]
    fn wait_counter_wraps_without_overflow() {
        let mut b = Batch::EMPTY;
        b.count = u64::MAX;
        b.filled(0);
        assert_eq!(b.count(), 0);
    }
}
