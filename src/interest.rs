//! What a registration waits for ([`Interest`], [`Mode`]) and what a wait reports ([`Ready`]).

use bitflags::bitflags;

bitflags! {
    /// The readiness a registration asks for, as Python's `EVENT_READ` / `EVENT_WRITE`, plus
    /// `PRIORITY` (urgent data: `EPOLLPRI` / `POLLPRI` / select's except set).
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::Interest;
    ///
    /// let i = Interest::READ | Interest::WRITE;
    /// assert!(i.contains(Interest::READ));
    /// assert!(Interest::from_bits(0x80).is_none()); // unknown bits are refused
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Interest: u8 {
        /// Readable: data, a pending connection, end of file or an error to read.
        const READ = 1;
        /// Writable: room in the send buffer, or an error to see.
        const WRITE = 2;
        /// Urgent data: TCP out-of-band data, a sysfs GPIO `value` edge (`POLLPRI`).
        const PRIORITY = 4;
    }
}

bitflags! {
    /// The readiness a wait reports for one registration.
    ///
    /// `READ`, `WRITE` and `PRIORITY` are only ever reported when registered. As in Python,
    /// a hang-up or an error is folded into the registered `READ` and/or `WRITE`, so the
    /// handler runs and sees the EOF or the error on its next read or write; unlike Python,
    /// it is also shown as the distinct `HUP` / `ERROR` bit.
    ///
    /// `READ_CLOSED` (mio's `is_read_closed`) says the peer will send nothing more: a stream
    /// socket's peer shut down its writing side (`shutdown(SHUT_WR)` or `close`), or the fd hung
    /// up. It is only reported to a registration with `READ`, and always with `READ`, since the
    /// data before the end can still be read. Python's selectors have no such flag; picosel asks
    /// for it with every `READ` interest, so nothing needs to be requested:
    ///
    /// | | epoll | poll | select |
    /// |---|---|---|---|
    /// | peer's half-close | `READ` + `READ_CLOSED` (`EPOLLRDHUP`) | `READ` + `READ_CLOSED` (`POLLRDHUP`) | `READ` only |
    /// | hang-up | `READ` + `HUP` + `READ_CLOSED` | `READ` + `HUP` + `READ_CLOSED` | `READ` only |
    ///
    /// select(2) has no such set: there the end shows as `READ` and a read that returns 0 bytes,
    /// as it does on every backend once the data before it is read.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{Interest, Ready};
    ///
    /// let r = Ready::READ | Ready::HUP;
    /// assert!(r.is_readable() && r.is_hup() && !r.is_writable());
    /// assert_eq!(r.interest(), Interest::READ);
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Ready: u8 {
        // The interest's own bits: `interest` and `masked` rely on it.
        /// Readable (or hung up / in error, when READ was registered).
        const READ = Interest::READ.bits();
        /// Writable (or in error, when WRITE was registered).
        const WRITE = Interest::WRITE.bits();
        /// Urgent data is waiting.
        const PRIORITY = Interest::PRIORITY.bits();
        /// The peer hung up (`EPOLLHUP` / `POLLHUP`).
        const HUP = 8;
        /// An error is pending on the fd, or the fd is no longer open (`EPOLLERR` /
        /// `POLLERR` / `POLLNVAL`, select's `EBADF`).
        const ERROR = 16;
        /// The peer will send nothing more (`EPOLLRDHUP` / `POLLRDHUP`, or a hang-up); with
        /// `READ` registered only. Never on select.
        const READ_CLOSED = 32;
    }
}

impl Ready {
    /// `READ` is set.
    ///
    /// ```
    /// assert!(picosel::Ready::READ.is_readable());
    /// ```
    #[must_use]
    pub const fn is_readable(self) -> bool {
        self.contains(Ready::READ)
    }

    /// `WRITE` is set.
    ///
    /// ```
    /// assert!(picosel::Ready::WRITE.is_writable());
    /// ```
    #[must_use]
    pub const fn is_writable(self) -> bool {
        self.contains(Ready::WRITE)
    }

    /// `PRIORITY` is set.
    ///
    /// ```
    /// assert!(picosel::Ready::PRIORITY.is_priority());
    /// ```
    #[must_use]
    pub const fn is_priority(self) -> bool {
        self.contains(Ready::PRIORITY)
    }

    /// `HUP` is set.
    ///
    /// ```
    /// assert!(picosel::Ready::HUP.is_hup());
    /// ```
    #[must_use]
    pub const fn is_hup(self) -> bool {
        self.contains(Ready::HUP)
    }

    /// `ERROR` is set.
    ///
    /// ```
    /// assert!(picosel::Ready::ERROR.is_error());
    /// ```
    #[must_use]
    pub const fn is_error(self) -> bool {
        self.contains(Ready::ERROR)
    }

    /// `READ_CLOSED` is set: the peer will send nothing more, so once the data already
    /// received is read, a read returns 0 bytes (end of file). Reported on epoll and poll to
    /// registrations with `READ`; select(2) cannot tell, and shows the end as `READ` alone.
    ///
    /// ```
    /// use picosel::Ready;
    /// // A TCP peer's `shutdown(SHUT_WR)` on epoll or poll: readable, and closed for reading.
    /// let r = Ready::READ | Ready::READ_CLOSED;
    /// assert!(r.is_read_closed() && r.is_readable() && !r.is_hup());
    /// ```
    #[must_use]
    pub const fn is_read_closed(self) -> bool {
        self.contains(Ready::READ_CLOSED)
    }

    /// The `READ` / `WRITE` / `PRIORITY` part, as an [`Interest`].
    ///
    /// ```
    /// use picosel::{Interest, Ready};
    /// assert_eq!((Ready::WRITE | Ready::ERROR).interest(), Interest::WRITE);
    /// ```
    #[must_use]
    pub const fn interest(self) -> Interest {
        Interest::from_bits_truncate(self.bits())
    }

    /// Builds the reported readiness from what the kernel said, masked to what was registered.
    ///
    /// `raw` holds READ/WRITE/PRIORITY as seen by the backend plus HUP, ERROR and `READ_CLOSED`. A
    /// hang-up or an error folds into every registered READ and WRITE (`CPython`'s rule:
    /// `EPOLLHUP`/`EPOLLERR` are neither `EPOLLIN` nor `EPOLLOUT`, so they count as both), and
    /// into PRIORITY when that is all that was registered, so the handler always runs and meets
    /// the EOF or the `EPIPE` itself; both stay visible as their own bits. `READ_CLOSED` belongs to
    /// READ: it is kept, and a hang-up adds it, only where READ is registered, and it comes
    /// with READ (the end of the stream is read as a 0-byte read).
    ///
    /// A few register operations with no table behind them: an event comes here only when
    /// it must be checked (a hang-up or error, or a registration changed since the wait), and
    /// a 512-entry table cost half a kilobyte of every binary.
    #[inline]
    pub(crate) const fn masked(raw: Ready, interest: Interest) -> Ready {
        const FAULT: u8 = Ready::HUP.bits() | Ready::ERROR.bits();
        const CLOSED: u8 = Ready::HUP.bits() | Ready::READ_CLOSED.bits();
        const READ: u8 = Ready::READ.bits();
        let (r, i) = (raw.bits(), interest.bits());
        let mut bits = r & i;
        if r & FAULT != 0 {
            let rw = i & (READ | Ready::WRITE.bits());
            bits |= (r & FAULT) | if rw != 0 { rw } else { i };
        }
        if i & READ != 0 && r & CLOSED != 0 {
            bits |= READ | Ready::READ_CLOSED.bits();
        }
        Ready::from_bits_truncate(bits)
    }
}

/// When a registration is reported.
///
/// | mode | epoll | poll | select |
/// |---|---|---|---|
/// | [`Level`](Mode::Level) | native | native | native |
/// | [`Edge`](Mode::Edge) | `EPOLLET` | refused: [`Error::Unsupported`](crate::Error::Unsupported) | refused |
/// | [`Oneshot`](Mode::Oneshot) | `EPOLLONESHOT` | emulated | emulated |
///
/// # Examples
///
/// ```
/// use picosel::{DefaultSelector, Interest, Mode};
/// # let (r, _w) = rustix::pipe::pipe().unwrap();
/// let mut sel = DefaultSelector::<(), 4>::new();
/// sel.register_mode(&r, Interest::READ, Mode::Oneshot, ()).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
// Discriminants from 1, so that 0 is the niche of `Option<SelectorKey>`: a free slot of the
// registry is then all zero bits, and a new selector's table is cleared in place (a memset)
// rather than built in a copy.
#[repr(u8)]
pub enum Mode {
    /// Reported on every wait while ready (the default, as in Python).
    #[default]
    Level = 1,
    /// Reported once per change of state (new data); epoll only.
    Edge = 2,
    /// Reported once, then disabled until re-armed with `modify`.
    Oneshot = 3,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write as _;

    #[test]
    fn masked_drops_unregistered_bits() {
        let raw = Ready::READ | Ready::WRITE | Ready::PRIORITY;
        assert_eq!(Ready::masked(raw, Interest::WRITE), Ready::WRITE);
        assert_eq!(Ready::masked(raw, Interest::READ), Ready::READ);
    }

    /// CPython reports a hang-up on a WRITE-only registration as `EVENT_WRITE`; so does
    /// picosel, and the HUP bit stays visible.
    #[test]
    fn hup_on_write_only_registration_reports_write() {
        assert_eq!(
            Ready::masked(Ready::HUP, Interest::WRITE),
            Ready::WRITE | Ready::HUP
        );
        assert_eq!(
            Ready::masked(Ready::HUP, Interest::READ | Interest::WRITE),
            Ready::READ | Ready::WRITE | Ready::HUP | Ready::READ_CLOSED
        );
        assert_eq!(
            Ready::masked(Ready::HUP, Interest::READ | Interest::PRIORITY),
            Ready::READ | Ready::HUP | Ready::READ_CLOSED
        );
        assert_eq!(
            Ready::masked(Ready::HUP, Interest::PRIORITY),
            Ready::PRIORITY | Ready::HUP
        );
    }

    #[test]
    fn error_folds_into_every_registered_interest() {
        assert_eq!(
            Ready::masked(
                Ready::ERROR,
                Interest::READ | Interest::WRITE | Interest::PRIORITY
            ),
            Ready::READ | Ready::WRITE | Ready::ERROR
        );
        assert_eq!(
            Ready::masked(Ready::ERROR, Interest::PRIORITY),
            Ready::PRIORITY | Ready::ERROR
        );
        assert_eq!(
            Ready::masked(Ready::ERROR | Ready::HUP, Interest::WRITE),
            Ready::WRITE | Ready::ERROR | Ready::HUP
        );
    }

    /// READ_CLOSED is READ's: shown, with READ, only where READ is registered; a hang-up is
    /// one too.
    #[test]
    fn read_closed_only_with_read() {
        let closed = Ready::READ | Ready::READ_CLOSED;
        assert_eq!(Ready::masked(closed, Interest::READ), closed);
        assert_eq!(Ready::masked(closed, Interest::WRITE), Ready::empty());
        assert_eq!(
            Ready::masked(closed | Ready::WRITE, Interest::WRITE),
            Ready::WRITE
        );
        assert_eq!(Ready::masked(Ready::READ_CLOSED, Interest::READ), closed);
        assert_eq!(
            Ready::masked(Ready::HUP, Interest::READ),
            closed | Ready::HUP
        );
        assert_eq!(
            Ready::masked(Ready::HUP, Interest::WRITE),
            Ready::WRITE | Ready::HUP
        );
    }

    /// For every readiness and interest: the registered bits the kernel reported are kept and
    /// no other READ/WRITE/PRIORITY bit appears unless a hang-up or an error folds in; a
    /// hang-up or error always reports something registered; `READ_CLOSED` comes only with a
    /// READ interest, and always with READ.
    #[test]
    fn masked_holds_its_rules_for_every_input() {
        let fault = Ready::HUP | Ready::ERROR;
        let rw = Ready::READ | Ready::WRITE | Ready::PRIORITY;
        for i in 0..=Interest::all().bits() {
            for r in 0..=Ready::all().bits() {
                let (raw, interest) = (
                    Ready::from_bits_truncate(r),
                    Interest::from_bits_truncate(i),
                );
                let got = Ready::masked(raw, interest);
                let registered = Ready::from_bits_truncate(interest.bits());
                let mut case = heapless::String::<512>::new();
                write!(case, "raw {raw:?}, interest {interest:?}: {got:?}").unwrap();
                assert!(got.contains(raw & registered), "{case}");
                assert_eq!(got & fault, raw & fault, "{case}");
                if !raw.intersects(fault) {
                    let closed = raw.contains(Ready::READ_CLOSED);
                    let extra = if interest.contains(Interest::READ) && closed {
                        Ready::READ
                    } else {
                        Ready::empty()
                    };
                    assert_eq!(got & rw, (raw & registered) | extra, "{case}");
                } else if !interest.is_empty() {
                    assert!(got.intersects(registered), "{case}");
                }
                assert_eq!(
                    got.contains(Ready::READ_CLOSED),
                    interest.contains(Interest::READ)
                        && raw.intersects(Ready::HUP | Ready::READ_CLOSED),
                    "{case}"
                );
                if got.contains(Ready::READ_CLOSED) {
                    assert!(got.contains(Ready::READ), "{case}");
                }
            }
        }
    }

    #[test]
    fn interest_bits_match_ready_bits() {
        // `Ready::interest` and `masked` rely on the shared low bits.
        assert_eq!(Interest::READ.bits(), Ready::READ.bits());
        assert_eq!(Interest::WRITE.bits(), Ready::WRITE.bits());
        assert_eq!(Interest::PRIORITY.bits(), Ready::PRIORITY.bits());
    }
}
