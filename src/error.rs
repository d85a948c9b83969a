//! The one error type of picosel.
//!
//! Every failing call leaves the selector (and the event loop) exactly as it was before the
//! call: nothing registered, nothing removed, no timer armed. OS errors keep rustix's
//! [`Errno`] rather than re-listing errnos.

use core::fmt;

pub use rustix::io::Errno;

/// What went wrong.
///
/// # Examples
///
/// ```
/// use picosel::{DefaultSelector, Error, Interest};
///
/// let mut sel = DefaultSelector::<(), 4>::new();
/// // A negative fd can never be registered.
/// assert_eq!(sel.register(-1, Interest::READ, ()), Err(Error::InvalidFd));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The interest was empty or held bits outside [`Interest::all`](crate::Interest::all).
    InvalidInterest,
    /// The fd was negative.
    InvalidFd,
    /// The fd is already registered; the first registration is untouched.
    AlreadyRegistered,
    /// The fd (or timer, or signal) is not registered.
    NotRegistered,
    /// The fixed-capacity table is full; nothing was changed.
    Full,
    /// The fd is too large for the backend (select: `fd >= FD_SETSIZE`, 1024).
    FdOutOfRange,
    /// The backend cannot do what was asked (for example edge-triggered mode on poll), the
    /// signal cannot be caught (SIGKILL, SIGSTOP), or the kernel is too old for the call
    /// (`ChildWatch` before Linux 5.4).
    Unsupported,
    /// A periodic timer's period is zero: it would fire on every wake-up, forever.
    InvalidPeriod,
    /// A wait was started while a batch of events was being dispatched: a handler called
    /// `run_once`, or `select` was called on the selector that [`Events`](crate::Events)
    /// lends out. Nothing was changed; the rest of the batch is still delivered.
    InDispatch,
    /// The C library keeps this signal for itself (32 up to `SIGRTMIN() - 1`: its thread
    /// cancellation and set-id broadcast); blocking or watching it would break the library.
    ReservedSignal,
    /// A time of day or an offset from UTC that no clock shows: hour 24, minute 60, an
    /// offset of a day or more.
    InvalidTime,
    /// A loop on a virtual clock has nothing left to do: nothing is ready, no timer is armed
    /// (or the clock may not move by itself), and nothing can become ready without the test
    /// acting: the test's deadlock, returned instead of waiting forever. Nothing was changed.
    Deadlock,
    /// The kernel refused: the errno it returned.
    Os(Errno),
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Self {
        Error::Os(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInterest => f.write_str("interest is empty or has unknown bits"),
            Error::InvalidFd => f.write_str("file descriptor is negative"),
            Error::AlreadyRegistered => f.write_str("file descriptor is already registered"),
            Error::NotRegistered => f.write_str("not registered"),
            Error::Full => f.write_str("table is full"),
            Error::FdOutOfRange => {
                f.write_str("file descriptor is out of range for this backend (FD_SETSIZE)")
            }
            Error::Unsupported => f.write_str("operation not supported"),
            Error::InvalidPeriod => f.write_str("timer period is zero"),
            Error::InDispatch => {
                f.write_str("a wait cannot start while a batch of events is being dispatched")
            }
            Error::ReservedSignal => f.write_str("signal is reserved by the C library"),
            Error::InvalidTime => f.write_str("time of day or UTC offset is out of range"),
            Error::Deadlock => f.write_str(
                "nothing is ready and no timer is armed: a virtual-time loop would wait forever",
            ),
            Error::Os(e) => write!(f, "os error: {e}"),
        }
    }
}

impl core::error::Error for Error {}

/// `Result` with picosel's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
