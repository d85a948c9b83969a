//! [`SelectorKey`]: what a registration holds, and [`Source`]: what can be registered.

use crate::interest::{Interest, Mode};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// One registration: the fd, what it waits for, how, and the caller's data — Python's
/// `SelectorKey(fileobj, fd, events, data)` without the file object (the selector borrows fds
/// by number, see [`Selector`](crate::Selector)).
///
/// # Examples
///
/// ```
/// use picosel::{DefaultSelector, Interest, Mode};
/// # let (r, _w) = rustix::pipe::pipe().unwrap();
/// # use rustix::fd::AsRawFd;
/// let mut sel = DefaultSelector::<u32, 4>::new();
/// let key = sel.register(&r, Interest::READ, 7).unwrap();
/// assert_eq!(key.fd(), r.as_raw_fd());
/// assert_eq!(key.interest(), Interest::READ);
/// assert_eq!(key.mode(), Mode::Level);
/// assert_eq!(key.data(), 7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectorKey<D> {
    pub(crate) fd: RawFd,
    pub(crate) interest: Interest,
    pub(crate) mode: Mode,
    pub(crate) data: D,
}

impl<D: Copy> SelectorKey<D> {
    /// The registered fd number.
    ///
    /// ```
    /// # use picosel::{DefaultSelector, Interest};
    /// # let mut sel = DefaultSelector::<(), 4>::new();
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// # use rustix::fd::AsRawFd;
    /// assert_eq!(sel.register(&r, Interest::READ, ()).unwrap().fd(), r.as_raw_fd());
    /// ```
    pub const fn fd(&self) -> RawFd {
        self.fd
    }

    /// The registered interest (Python's `key.events`).
    ///
    /// ```
    /// # use picosel::{DefaultSelector, Interest};
    /// # let mut sel = DefaultSelector::<(), 4>::new();
    /// # let (_r, w) = rustix::pipe::pipe().unwrap();
    /// assert_eq!(sel.register(&w, Interest::WRITE, ()).unwrap().interest(), Interest::WRITE);
    /// ```
    pub const fn interest(&self) -> Interest {
        self.interest
    }

    /// The registered mode.
    ///
    /// ```
    /// # use picosel::{DefaultSelector, Interest, Mode};
    /// # let mut sel = DefaultSelector::<(), 4>::new();
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let key = sel.register_mode(&r, Interest::READ, Mode::Edge, ()).unwrap();
    /// assert_eq!(key.mode(), Mode::Edge);
    /// ```
    pub const fn mode(&self) -> Mode {
        self.mode
    }

    /// The caller's data (Python's `key.data`), for example a callback.
    ///
    /// ```
    /// # use picosel::{DefaultSelector, Interest};
    /// # let mut sel = DefaultSelector::<&'static str, 4>::new();
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// assert_eq!(sel.register(&r, Interest::READ, "pipe").unwrap().data(), "pipe");
    /// ```
    pub fn data(&self) -> D {
        self.data
    }
}

/// Anything that names an fd: a raw fd number (as Python accepts), a [`BorrowedFd`], or a
/// reference to anything that implements rustix's `AsFd` — with the `std` feature that is
/// std's own trait, so `&TcpStream`, `&UnixStream`, `&Stdin` and `&OwnedFd` all work.
///
/// The selector keeps only the number; it never takes ownership or closes the fd.
///
/// # Examples
///
/// ```
/// use picosel::Source;
/// # let (r, _w) = rustix::pipe::pipe().unwrap();
/// # use rustix::fd::AsRawFd;
/// assert_eq!(Source::raw_fd(&&r), r.as_raw_fd());
/// assert_eq!(Source::raw_fd(&0), 0); // stdin by number
/// ```
pub trait Source {
    /// The fd number.
    fn raw_fd(&self) -> RawFd;
}

impl Source for RawFd {
    fn raw_fd(&self) -> RawFd {
        *self
    }
}

impl Source for BorrowedFd<'_> {
    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

impl<T: AsFd + ?Sized> Source for &T {
    fn raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}
