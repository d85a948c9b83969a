//! picosel's [`Error`] as a [`std::io::Error`]: [`io_error`] and the `.io()` of
//! [`IoResultExt`].

use picosel::Error;
use std::io::{self, ErrorKind};

/// `err` as a [`std::io::Error`]: an OS error keeps its errno
/// ([`raw_os_error`](io::Error::raw_os_error), no allocation); the others keep their message
/// under the nearest [`ErrorKind`], boxed (an allocation).
///
/// | picosel | `ErrorKind` |
/// |---|---|
/// | `Os(errno)` | the errno's, by `from_raw_os_error` |
/// | `InvalidInterest`, `InvalidFd`, `FdOutOfRange`, `InvalidPeriod`, `ReservedSignal`, `InvalidTime` | `InvalidInput` |
/// | `AlreadyRegistered` | `AlreadyExists` |
/// | `NotRegistered` | `NotFound` |
/// | `Unsupported` | `Unsupported` |
/// | `InDispatch` | `ResourceBusy` |
/// | `Deadlock` | `WouldBlock` |
/// | `Full` | `OutOfMemory` |
///
/// # Examples
///
/// ```
/// use picosel::{Errno, Error};
/// use picosel_std::io_error;
/// use std::io::ErrorKind;
///
/// let e = io_error(Error::InvalidFd);
/// assert_eq!(e.kind(), ErrorKind::InvalidInput);
/// assert_eq!(e.to_string(), "file descriptor is negative");
/// assert_eq!(io_error(Error::Os(Errno::BADF)).raw_os_error(), Some(Errno::BADF.raw_os_error()));
/// ```
#[must_use]
pub fn io_error(err: Error) -> io::Error {
    let kind = match err {
        Error::Os(errno) => return io::Error::from_raw_os_error(errno.raw_os_error()),
        Error::InvalidInterest
        | Error::InvalidFd
        | Error::FdOutOfRange
        | Error::InvalidPeriod
        | Error::ReservedSignal
        | Error::InvalidTime => ErrorKind::InvalidInput,
        Error::AlreadyRegistered => ErrorKind::AlreadyExists,
        Error::NotRegistered => ErrorKind::NotFound,
        Error::Unsupported => ErrorKind::Unsupported,
        Error::InDispatch => ErrorKind::ResourceBusy,
        Error::Deadlock => ErrorKind::WouldBlock,
        Error::Full => ErrorKind::OutOfMemory,
        // `Error` is non_exhaustive: a variant added later keeps its message.
        _ => ErrorKind::Other,
    };
    io::Error::new(kind, err)
}

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for picosel::Result<T> {}
}

/// `.io()`: a [`picosel::Result`] as a [`std::io::Result`], by [`io_error`], for `?` in a
/// function that returns `std::io::Result`.
///
/// Sealed: implemented for [`picosel::Result`] only.
///
/// # Examples
///
/// ```
/// use picosel::{DefaultSelector, Interest};
/// use picosel_std::IoResultExt as _;
///
/// fn watch(sel: &mut DefaultSelector<(), 4>) -> std::io::Result<()> {
///     sel.register(-1, Interest::READ, ()).io()?;
///     Ok(())
/// }
/// let e = watch(&mut DefaultSelector::new()).unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
/// ```
pub trait IoResultExt<T>: sealed::Sealed {
    /// The value, or the error as a [`std::io::Error`] by [`io_error`].
    ///
    /// # Errors
    /// The picosel error, converted.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{Error, Errno};
    /// use picosel_std::IoResultExt as _;
    ///
    /// let r: picosel::Result<u8> = Err(Error::Os(Errno::AGAIN));
    /// assert_eq!(r.io().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// assert_eq!(Ok::<u8, Error>(7).io().unwrap(), 7);
    /// ```
    fn io(self) -> io::Result<T>;
}

impl<T> IoResultExt<T> for picosel::Result<T> {
    fn io(self) -> io::Result<T> {
        self.map_err(io_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picosel::Errno;

    /// Every variant keeps its message under the kind the table in `io_error`'s docs gives; an
    /// OS error is its errno and nothing else (no box: `get_ref` is `None`).
    #[test]
    fn every_error_maps_to_its_kind_and_keeps_its_message() {
        use Error::{
            AlreadyRegistered, Deadlock, FdOutOfRange, Full, InDispatch, InvalidFd,
            InvalidInterest, InvalidPeriod, InvalidTime, NotRegistered, ReservedSignal,
            Unsupported,
        };
        use ErrorKind as K;
        let invalid = [
            InvalidInterest,
            InvalidFd,
            FdOutOfRange,
            InvalidPeriod,
            InvalidTime,
        ];
        let invalid = invalid.into_iter().chain([ReservedSignal]);
        let others = [
            AlreadyRegistered,
            NotRegistered,
            Unsupported,
            InDispatch,
            Deadlock,
            Full,
        ];
        let kinds = [
            K::AlreadyExists,
            K::NotFound,
            K::Unsupported,
            K::ResourceBusy,
        ];
        let kinds = kinds.into_iter().chain([K::WouldBlock, K::OutOfMemory]);
        let table = invalid
            .map(|e| (e, K::InvalidInput))
            .chain(others.into_iter().zip(kinds));
        let mut seen = 0;
        for (err, kind) in table {
            seen += 1;
            let io = io_error(err);
            assert_eq!(io.kind(), kind, "{err:?}");
            assert_eq!(io.to_string(), err.to_string());
            assert_eq!(io.raw_os_error(), None, "{err:?}");
            let inner = io.get_ref().and_then(|e| e.downcast_ref::<Error>());
            assert_eq!(inner, Some(&err));
        }
        assert_eq!(seen, 12, "every variant but Os");
        for errno in [Errno::BADF, Errno::AGAIN, Errno::NOSPC, Errno::INTR] {
            let io = io_error(Error::Os(errno));
            assert_eq!(io.raw_os_error(), Some(errno.raw_os_error()));
            assert!(io.get_ref().is_none(), "{errno:?} is a plain code");
            assert_eq!(
                Err::<(), _>(Error::Os(errno)).io().unwrap_err().kind(),
                io.kind()
            );
        }
        assert_eq!(Ok::<_, Error>(5).io().unwrap(), 5);
    }
}
