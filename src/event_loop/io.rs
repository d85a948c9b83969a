//! The user's fd registrations: [`EventLoop::register`], `modify`, `set_handler`,
//! `unregister` and `is_registered`. The loop's own fds (waker, signalfd) are not the user's:
//! these calls answer for them as for an fd never registered.

// `fd` by value, as Python takes any fd-like object and as the selector does: `Source` is
// implemented for `RawFd`, `BorrowedFd` and `&T: AsFd`, all `Copy` and a word wide.
#![allow(clippy::needless_pass_by_value)]

use super::{Entry, EventLoop, IoHandler};
use crate::backend::Backend;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::interest::{Interest, Mode};
use crate::key::{SelectorKey, Source};
use rustix::fd::{AsFd, AsRawFd, RawFd};

impl<B: Backend, C, const N: usize, const T: usize, K: Clock> EventLoop<B, C, N, T, K> {
    /// Registers `fd` for `interest` (level-triggered), to be handled by `handler`, which is
    /// told `data`. O(1) expected; one `epoll_ctl` on epoll.
    ///
    /// # Errors
    /// As [`Selector::register`](crate::Selector::register): `InvalidInterest`, `InvalidFd`,
    /// `AlreadyRegistered`, `Full` (`N` counts the waker and signalfd too), `FdOutOfRange`
    /// (select), or the kernel's refusal. Nothing is registered on error.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Interest, IoEvent};
    /// use std::time::Duration;
    ///
    /// fn writable(ev: &mut DefaultEventLoop<usize, 4, 0>, io: IoEvent) {
    ///     *ev.context_mut() = io.data;
    ///     ev.unregister(io.fd).unwrap();
    /// }
    /// let (_r, w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = DefaultEventLoop::<usize, 4, 0>::new(0);
    /// ev.register(&w, Interest::WRITE, 42, writable).unwrap();
    /// assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    /// assert_eq!(*ev.context_mut(), 42);
    /// ```
    pub fn register<F: Source>(
        &mut self,
        fd: F,
        interest: Interest,
        data: usize,
        handler: IoHandler<Self>,
    ) -> Result<()> {
        self.register_mode(fd, interest, Mode::Level, data, handler)
    }

    /// Registers an fd that the context owns, picked from it by `pick`: the form for a socket
    /// kept in the context, which `ev.register(&ev.context().sock, ..)` cannot borrow (the
    /// loop is borrowed mutably for the call). The fd is read while the context is borrowed,
    /// and stays open because the context keeps it. See [`register`](Self::register).
    ///
    /// # Errors
    /// As [`register`](Self::register).
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Interest, IoEvent};
    /// use std::net::UdpSocket;
    ///
    /// struct Ctx {
    ///     udp: UdpSocket,
    /// }
    /// type Loop = DefaultEventLoop<Ctx, 4, 0>;
    ///
    /// fn on_datagram(ev: &mut Loop, _io: IoEvent) {
    ///     let mut buf = [0u8; 512];
    ///     let _ = ev.context().udp.recv(&mut buf);
    /// }
    ///
    /// let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// udp.set_nonblocking(true).unwrap();
    /// let mut ev = Loop::new(Ctx { udp });
    /// ev.register_with(|c| &c.udp, Interest::READ, 0, on_datagram)
    ///     .unwrap();
    /// assert!(ev.is_registered(&ev.context().udp));
    /// ```
    pub fn register_with<S: AsFd + ?Sized>(
        &mut self,
        pick: impl FnOnce(&C) -> &S,
        interest: Interest,
        data: usize,
        handler: IoHandler<Self>,
    ) -> Result<()> {
        let fd = pick(&self.context).as_fd().as_raw_fd();
        self.register(fd, interest, data, handler)
    }

    /// Registers `fd` with an explicit [`Mode`]; see [`register`](Self::register).
    ///
    /// # Errors
    /// As [`register`](Self::register), and [`Error::Unsupported`] for a mode the backend
    /// cannot do (edge on poll and select).
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Interest, IoEvent, Mode};
    /// # fn h(_: &mut DefaultEventLoop<(), 4, 0>, _: IoEvent) {}
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.register_mode(&r, Interest::READ, Mode::Edge, 0, h).unwrap();
    /// ```
    pub fn register_mode<F: Source>(
        &mut self,
        fd: F,
        interest: Interest,
        mode: Mode,
        data: usize,
        handler: IoHandler<Self>,
    ) -> Result<()> {
        let entry = Entry::User { handler, data };
        self.selector
            .register_mode(fd, interest, mode, entry)
            .map(drop)
    }

    /// Changes `fd`'s interest, keeping its mode, handler and data; re-arms a oneshot
    /// registration. No syscall if nothing changes (level or edge mode). O(1) expected.
    ///
    /// # Errors
    /// [`Error::NotRegistered`], [`Error::InvalidInterest`], or the kernel's refusal; the
    /// registration is unchanged on error.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Interest, IoEvent};
    /// # fn h(_: &mut DefaultEventLoop<(), 4, 0>, _: IoEvent) {}
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.register(&a, Interest::READ, 0, h).unwrap();
    /// ev.modify(&a, Interest::READ | Interest::WRITE).unwrap(); // now also wait to write
    /// ```
    pub fn modify<F: Source>(&mut self, fd: F, interest: Interest) -> Result<()> {
        let fd = fd.raw_fd();
        let key = self.user_key(fd)?;
        self.selector.modify(fd, interest, key.data()).map(drop)
    }

    /// Changes `fd`'s interest and mode, keeping its handler and data; see
    /// [`modify`](Self::modify).
    ///
    /// # Errors
    /// As [`modify`](Self::modify), and [`Error::Unsupported`] for a mode the backend cannot do.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Interest, IoEvent, Mode};
    /// # fn h(_: &mut DefaultEventLoop<(), 4, 0>, _: IoEvent) {}
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.register(&r, Interest::READ, 0, h).unwrap();
    /// ev.modify_mode(&r, Interest::READ, Mode::Oneshot).unwrap();
    /// ```
    pub fn modify_mode<F: Source>(&mut self, fd: F, interest: Interest, mode: Mode) -> Result<()> {
        let fd = fd.raw_fd();
        let key = self.user_key(fd)?;
        self.selector
            .modify_mode(fd, interest, mode, key.data())
            .map(drop)
    }

    /// Replaces `fd`'s handler and data, keeping its interest. No syscall, except that a
    /// oneshot registration is re-armed (as by every modify). An event of the current batch
    /// not yet dispatched goes to the new handler.
    ///
    /// # Errors
    /// [`Error::NotRegistered`].
    ///
    /// # Examples
    ///
    /// A connection that moves from a handshake handler to a data handler:
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Interest, IoEvent};
    /// use std::time::Duration;
    /// type Loop = DefaultEventLoop<Vec<&'static str>, 4, 0>;
    ///
    /// fn handshake(ev: &mut Loop, io: IoEvent) {
    ///     ev.context_mut().push("handshake");
    ///     ev.set_handler(io.fd, io.data, serve).unwrap();
    /// }
    /// fn serve(ev: &mut Loop, io: IoEvent) {
    ///     ev.context_mut().push("serve");
    ///     ev.unregister(io.fd).unwrap();
    /// }
    /// # let (_r, w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = Loop::new(Vec::new());
    /// ev.register(&w, Interest::WRITE, 0, handshake).unwrap();
    /// ev.run_once(Some(Duration::ZERO)).unwrap();
    /// ev.run_once(Some(Duration::ZERO)).unwrap();
    /// assert_eq!(*ev.context_mut(), ["handshake", "serve"]);
    /// ```
    pub fn set_handler<F: Source>(
        &mut self,
        fd: F,
        data: usize,
        handler: IoHandler<Self>,
    ) -> Result<()> {
        let fd = fd.raw_fd();
        let key = self.user_key(fd)?;
        let entry = Entry::User { handler, data };
        self.selector.modify(fd, key.interest(), entry).map(drop)
    }

    /// Unregisters `fd`. An event for it still queued in the current batch is not delivered.
    /// Succeeds if `fd` was closed (or closed and its number reused) while registered. O(1)
    /// expected.
    ///
    /// # Errors
    /// [`Error::NotRegistered`] for an fd the user did not register.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Error, Interest, IoEvent};
    /// # fn h(_: &mut DefaultEventLoop<(), 4, 0>, _: IoEvent) {}
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.register(&r, Interest::READ, 0, h).unwrap();
    /// ev.unregister(&r).unwrap();
    /// assert_eq!(ev.unregister(&r), Err(Error::NotRegistered));
    /// ```
    pub fn unregister<F: Source>(&mut self, fd: F) -> Result<()> {
        let fd = fd.raw_fd();
        self.user_key(fd)?;
        self.selector.unregister(fd).map(drop)
    }

    /// Whether the user registered `fd`.
    ///
    /// ```
    /// # use picosel::{DefaultEventLoop, Interest, IoEvent};
    /// # fn h(_: &mut DefaultEventLoop<(), 4, 0>, _: IoEvent) {}
    /// # let (r, w) = rustix::pipe::pipe().unwrap();
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// ev.register(&r, Interest::READ, 0, h).unwrap();
    /// assert!(ev.is_registered(&r) && !ev.is_registered(&w));
    /// ```
    pub fn is_registered<F: Source>(&self, fd: F) -> bool {
        self.user_key(fd.raw_fd()).is_ok()
    }

    /// The key of a registration of the user's: one of the loop's own fds is not registered as
    /// far as the user can tell.
    fn user_key(&self, fd: RawFd) -> Result<SelectorKey<Entry<B, C, N, T, K>>> {
        let key = self.selector.get_key(fd)?;
        if matches!(key.data(), Entry::User { .. }) {
            Ok(key)
        } else {
            Err(Error::NotRegistered)
        }
    }
}
