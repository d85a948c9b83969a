//! [`Selector`]: Python's `selectors` semantics over any [`Backend`], in fixed memory.

use crate::backend::{Backend, Epoll, Poll, Poller, Select};
use crate::batch::Batch;
use crate::registry::Registry;
use crate::timeout::{next_chunk, round_up_ms};
use crate::{Error, Interest, Mode, Ready, Result, SelectorKey, Source};
use core::time::Duration;
use rustix::fd::RawFd;
use rustix::io::Errno;

/// An I/O selector of capacity `N` over backend `B`, with user data `D` in each key.
///
/// The part of Python's `selectors` that does the work: [`register`](Self::register),
/// [`unregister`](Self::unregister), [`modify`](Self::modify), [`select`](Self::select),
/// [`get_key`](Self::get_key), [`keys`](Self::keys) and [`close`](Self::close) (or drop).
/// All memory is inside the value: nothing is allocated, ever.
///
/// Every failing call leaves the selector exactly as it was. The selector borrows fds by
/// number and never closes them; see [`backend`](crate::backend) for what happens when a
/// registered fd is closed anyway.
///
/// `new` is a `const fn` that makes no syscall (the kernel object is created on first use),
/// so a large selector can live in a `static` instead of on a small thread stack:
///
/// ```
/// use picosel::DefaultSelector;
/// use std::sync::Mutex;
///
/// static SEL: Mutex<DefaultSelector<u32, 1024>> = Mutex::new(DefaultSelector::new());
/// assert_eq!(SEL.lock().unwrap().capacity(), 1024);
/// ```
///
/// # Size
/// About `N × (24 + size_of::<D>())` bytes for the table and fd index, plus the backend's
/// buffer: `N × 12` bytes for epoll on x86_64 (`N × 16` on ARM), `N × 32` for poll and select.
/// The README lists measured `size_of` values.
pub struct Selector<B: Backend, D, const N: usize> {
    poller: B::Poller<N>,
    registry: Registry<D, N>,
    /// The cursor over the last wait's events.
    batch: Batch,
    /// An unregister found its fd already closed. On epoll the fd's open file may outlive it
    /// in the interest list (a duplicate keeps it open) and report under a dead token; while
    /// this is set, each wait looks for such reports. See [`Poller::rebuild`].
    orphans_possible: bool,
    /// A wait saw an orphan: the next wait first rebuilds the backend.
    rebuild_due: bool,
}

/// A selector on epoll, the default on Linux.
pub type EpollSelector<D, const N: usize> = Selector<Epoll, D, N>;
/// A selector on poll(2).
pub type PollSelector<D, const N: usize> = Selector<Poll, D, N>;
/// A selector on select(2); fds must be below 1024.
pub type SelectSelector<D, const N: usize> = Selector<Select, D, N>;
/// The best selector for this platform: epoll on Linux (Python's `DefaultSelector`).
pub type DefaultSelector<D, const N: usize> = EpollSelector<D, N>;

impl<B: Backend, D: Copy, const N: usize> Selector<B, D, N> {
    /// An empty selector. No syscall is made until the first registration or wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::DefaultSelector;
    /// let sel = DefaultSelector::<(), 16>::new();
    /// assert!(sel.is_empty());
    /// ```
    pub const fn new() -> Self {
        Selector {
            poller: <B::Poller<N> as Poller<N>>::CLOSED,
            registry: Registry::new(),
            batch: Batch::EMPTY,
            orphans_possible: false,
            rebuild_due: false,
        }
    }

    /// The backend's name: `"epoll"`, `"poll"` or `"select"`.
    ///
    /// ```
    /// assert_eq!(picosel::PollSelector::<(), 1>::new().backend_name(), "poll");
    /// ```
    pub const fn backend_name(&self) -> &'static str {
        B::NAME
    }

    /// The maximum number of registrations, `N`.
    ///
    /// ```
    /// assert_eq!(picosel::DefaultSelector::<(), 32>::new().capacity(), 32);
    /// ```
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The number of registrations.
    ///
    /// ```
    /// # use picosel::{DefaultSelector, Interest};
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut sel = DefaultSelector::<(), 4>::new();
    /// sel.register(&r, Interest::READ, ()).unwrap();
    /// assert_eq!(sel.len(), 1);
    /// ```
    pub const fn len(&self) -> usize {
        self.registry.len()
    }

    /// Whether nothing is registered.
    ///
    /// ```
    /// assert!(picosel::DefaultSelector::<(), 4>::new().is_empty());
    /// ```
    pub const fn is_empty(&self) -> bool {
        self.registry.len() == 0
    }

    /// Registers `fd` for `interest` in level mode, with `data` kept in its key.
    ///
    /// O(1) expected (one `epoll_ctl` on epoll; no syscall on poll and select).
    ///
    /// # Errors
    /// - [`Error::InvalidInterest`]: `interest` is empty or has unknown bits.
    /// - [`Error::InvalidFd`]: `fd` is negative.
    /// - [`Error::AlreadyRegistered`]: `fd` is registered; that registration is untouched.
    /// - [`Error::Full`]: `N` fds are registered.
    /// - [`Error::FdOutOfRange`]: select and `fd >= 1024`.
    /// - [`Error::Os`]: the kernel refused (epoll and a regular file: `EPERM`; a closed fd:
    ///   `EBADF`). Nothing is left registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultSelector, Error, Interest};
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut sel = DefaultSelector::<&str, 4>::new();
    /// let key = sel.register(&r, Interest::READ, "reader").unwrap();
    /// assert_eq!(key.data(), "reader");
    /// assert_eq!(sel.register(&r, Interest::READ, "again"), Err(Error::AlreadyRegistered));
    /// ```
    #[doc(alias = "epoll_ctl")]
    pub fn register<F: Source>(
        &mut self,
        fd: F,
        interest: Interest,
        data: D,
    ) -> Result<SelectorKey<D>> {
        self.register_mode(fd, interest, Mode::Level, data)
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
    /// use picosel::{Error, Interest, Mode, PollSelector};
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut sel = PollSelector::<(), 4>::new();
    /// assert_eq!(sel.register_mode(&r, Interest::READ, Mode::Edge, ()), Err(Error::Unsupported));
    /// assert!(sel.register_mode(&r, Interest::READ, Mode::Oneshot, ()).is_ok());
    /// ```
    pub fn register_mode<F: Source>(
        &mut self,
        fd: F,
        interest: Interest,
        mode: Mode,
        data: D,
    ) -> Result<SelectorKey<D>> {
        let fd = fd.raw_fd();
        Self::check(fd, interest, mode)?;
        if self.registry.lookup(fd).is_some() {
            return Err(Error::AlreadyRegistered);
        }
        let token = self.registry.vacant().ok_or(Error::Full)?;
        self.poller.open()?;
        self.poller.add(fd, token, interest, mode)?;
        let key = SelectorKey {
            fd,
            interest,
            mode,
            data,
        };
        // Cannot fail: `vacant` found room and nothing changed since.
        if let Some(token) = self.registry.insert(key) {
            self.registry.set_armed(token.slot(), self.batch.count());
        }
        Ok(key)
    }

    fn check(fd: RawFd, interest: Interest, mode: Mode) -> Result<()> {
        if interest.is_empty() || !Interest::all().contains(interest) {
            return Err(Error::InvalidInterest);
        }
        if fd < 0 {
            return Err(Error::InvalidFd);
        }
        if !<B::Poller<N> as Poller<N>>::supports(mode) {
            return Err(Error::Unsupported);
        }
        Ok(())
    }

    /// Unregisters `fd` and returns its key.
    ///
    /// Succeeds when `fd` was closed (or closed and its number reused) while registered: the
    /// kernel's `EBADF` / `ENOENT` mean it is no longer watched, and the new file behind the
    /// number is not touched. O(1) expected.
    ///
    /// # Errors
    /// [`Error::NotRegistered`] for an fd that is not registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultSelector, Error, Interest};
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut sel = DefaultSelector::<u8, 4>::new();
    /// sel.register(&r, Interest::READ, 1).unwrap();
    /// assert_eq!(sel.unregister(&r).unwrap().data(), 1);
    /// assert_eq!(sel.unregister(&r), Err(Error::NotRegistered));
    /// ```
    pub fn unregister<F: Source>(&mut self, fd: F) -> Result<SelectorKey<D>> {
        let fd = fd.raw_fd();
        let slot = self.registry.lookup(fd).ok_or(Error::NotRegistered)?;
        match self.poller.delete(fd, self.registry.token(slot)) {
            Ok(()) => {}
            // The fd was closed (or its number reused): the kernel no longer knows it by this
            // number, so it is not watched under it any more.
            Err(Error::Os(Errno::BADF)) | Err(Error::Os(Errno::NOENT)) => {
                self.orphans_possible = true;
            }
            Err(e) => return Err(e),
        }
        self.registry.remove(fd).ok_or(Error::NotRegistered)
    }

    /// Changes `fd`'s interest and data, keeping its mode; re-arms a oneshot registration.
    ///
    /// A change of data alone makes no syscall. O(1) expected.
    ///
    /// # Errors
    /// [`Error::NotRegistered`], [`Error::InvalidInterest`], or the kernel's refusal; on any
    /// error the registration is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultSelector, Interest};
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut sel = DefaultSelector::<u8, 4>::new();
    /// sel.register(&r, Interest::READ, 1).unwrap();
    /// let key = sel.modify(&r, Interest::READ | Interest::PRIORITY, 2).unwrap();
    /// assert_eq!(sel.get_key(&r), Ok(key));
    /// ```
    pub fn modify<F: Source>(
        &mut self,
        fd: F,
        interest: Interest,
        data: D,
    ) -> Result<SelectorKey<D>> {
        let fd = fd.raw_fd();
        let slot = self.registry.lookup(fd).ok_or(Error::NotRegistered)?;
        let mode = self.registry.get(slot).ok_or(Error::NotRegistered)?.mode;
        self.modify_slot(fd, slot, interest, mode, data)
    }

    /// Changes `fd`'s interest, mode and data; see [`modify`](Self::modify).
    ///
    /// # Errors
    /// As [`modify`](Self::modify), and [`Error::Unsupported`] for a mode the backend cannot do.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultSelector, Interest, Mode};
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut sel = DefaultSelector::<(), 4>::new();
    /// sel.register(&r, Interest::READ, ()).unwrap();
    /// let key = sel.modify_mode(&r, Interest::READ, Mode::Edge, ()).unwrap();
    /// assert_eq!(key.mode(), Mode::Edge);
    /// ```
    pub fn modify_mode<F: Source>(
        &mut self,
        fd: F,
        interest: Interest,
        mode: Mode,
        data: D,
    ) -> Result<SelectorKey<D>> {
        let fd = fd.raw_fd();
        let slot = self.registry.lookup(fd).ok_or(Error::NotRegistered)?;
        self.modify_slot(fd, slot, interest, mode, data)
    }

    fn modify_slot(
        &mut self,
        fd: RawFd,
        slot: u32,
        interest: Interest,
        mode: Mode,
        data: D,
    ) -> Result<SelectorKey<D>> {
        Self::check(fd, interest, mode)?;
        let old = *self.registry.get(slot).ok_or(Error::NotRegistered)?;
        // A oneshot registration is re-armed by every modify, so it always reaches the kernel.
        if old.interest != interest || old.mode != mode || mode == Mode::Oneshot {
            self.poller
                .modify(fd, self.registry.token(slot), interest, mode)?;
        }
        let key = SelectorKey {
            fd,
            interest,
            mode,
            data,
        };
        self.registry.update(slot, key);
        // Every modify re-arms (a oneshot one reaches the kernel above).
        self.registry.set_armed(slot, self.batch.count());
        Ok(key)
    }

    /// The key of a registered fd.
    ///
    /// # Errors
    /// [`Error::NotRegistered`].
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultSelector, Error, Interest};
    /// # let (r, w) = rustix::pipe::pipe().unwrap();
    /// let mut sel = DefaultSelector::<(), 4>::new();
    /// sel.register(&r, Interest::READ, ()).unwrap();
    /// assert!(sel.get_key(&r).is_ok());
    /// assert_eq!(sel.get_key(&w), Err(Error::NotRegistered));
    /// ```
    pub fn get_key<F: Source>(&self, fd: F) -> Result<SelectorKey<D>> {
        self.registry
            .lookup(fd.raw_fd())
            .and_then(|s| self.registry.get(s))
            .copied()
            .ok_or(Error::NotRegistered)
    }

    /// The registrations (Python's `get_map().values()`), O(N).
    ///
    /// ```
    /// use picosel::{DefaultSelector, Interest};
    /// # let (r, w) = rustix::pipe::pipe().unwrap();
    /// let mut sel = DefaultSelector::<(), 4>::new();
    /// sel.register(&r, Interest::READ, ()).unwrap();
    /// sel.register(&w, Interest::WRITE, ()).unwrap();
    /// assert_eq!(sel.keys().count(), 2);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &SelectorKey<D>> + '_ {
        self.registry.iter()
    }

    /// Waits until a registered fd is ready or `timeout` passes, and returns the ready
    /// registrations as `(key, ready)` pairs.
    ///
    /// `None` blocks until an event; `Some(Duration::ZERO)` polls once; a positive timeout
    /// waits at least that long, rounded up to whole milliseconds (a wait longer than the
    /// kernel's `int` of milliseconds, 24.8 days, is made of several). A signal that
    /// interrupts the wait (EINTR) gives no events, not an error.
    ///
    /// The returned [`Events`] is filled from the backend's fixed buffer; nothing is copied or
    /// allocated. Each pair is checked against the live table as it is taken, so a handler may
    /// change the selector between pairs through [`Events::selector`]: an fd it unregisters
    /// (or closes and registers again under the same number) gets no stale event from this
    /// batch. On epoll, each pair costs O(1) whatever the number of registrations.
    ///
    /// An [`Events`] dropped before its end leaves the rest of its batch to the next `select`,
    /// which hands it out without waiting: an edge-triggered or oneshot event, which the kernel
    /// reports once, is never lost.
    ///
    /// # Errors
    /// The kernel's refusal of the wait. [`Error::InDispatch`] for a wait on the selector an
    /// [`Events`] lends out: it would overwrite the batch being read.
    ///
    /// # Examples
    ///
    /// The seed's pattern: a callback as each key's data, and an accept callback that
    /// registers a read callback for the new connection.
    ///
    /// ```
    /// use picosel::{DefaultSelector, Interest, Ready};
    /// use std::io::{Read, Write};
    /// use std::net::{TcpListener, TcpStream};
    /// use std::os::fd::{AsRawFd, FromRawFd, RawFd};
    /// use std::time::Duration;
    ///
    /// #[derive(Clone, Copy)]
    /// struct Callback(fn(&mut Sel, RawFd, Ready));
    /// type Sel = DefaultSelector<Callback, 16>;
    ///
    /// fn accept(sel: &mut Sel, fd: RawFd, _mask: Ready) {
    ///     // Borrow the listener for a moment; the caller owns it.
    ///     let sock = std::mem::ManuallyDrop::new(unsafe { TcpListener::from_raw_fd(fd) });
    ///     let (conn, _addr) = sock.accept().unwrap();
    ///     conn.set_nonblocking(true).unwrap();
    ///     sel.register(&conn, Interest::READ, Callback(read)).unwrap();
    ///     std::mem::forget(conn); // the read callback owns it now
    /// }
    ///
    /// fn read(sel: &mut Sel, fd: RawFd, _mask: Ready) {
    ///     let mut conn = unsafe { TcpStream::from_raw_fd(fd) };
    ///     let mut buf = [0; 1024];
    ///     match conn.read(&mut buf) {
    ///         Ok(n) if n > 0 => {
    ///             conn.write_all(&buf[..n]).unwrap();
    ///             std::mem::forget(conn); // keep it open
    ///         }
    ///         _ => {
    ///             sel.unregister(fd).unwrap(); // then `conn` drops and closes
    ///         }
    ///     }
    /// }
    ///
    /// let sock = TcpListener::bind("127.0.0.1:0").unwrap();
    /// sock.set_nonblocking(true).unwrap();
    /// let mut sel = Sel::new();
    /// sel.register(&sock, Interest::READ, Callback(accept)).unwrap();
    ///
    /// let mut client = TcpStream::connect(sock.local_addr().unwrap()).unwrap();
    /// client.write_all(b"hello").unwrap();
    /// let mut reply = [0; 5];
    /// client.set_nonblocking(true).unwrap();
    /// while client.read(&mut reply).is_err() {
    ///     let mut events = sel.select(Some(Duration::from_millis(100))).unwrap();
    ///     while let Some((key, mask)) = events.next() {
    ///         let callback = key.data();
    ///         (callback.0)(events.selector(), key.fd(), mask);
    ///     }
    /// }
    /// assert_eq!(&reply, b"hello");
    /// ```
    #[doc(alias = "epoll_wait")]
    #[doc(alias = "poll")]
    pub fn select(&mut self, timeout: Option<Duration>) -> Result<Events<'_, B, D, N>> {
        self.wait(timeout)?;
        self.batch.set_dispatching(true);
        Ok(Events { sel: self })
    }

    /// Waits as [`select`](Self::select) does, for callers that need `&mut self` between
    /// events (the event loop), which then take them with [`next_event`](Self::next_event).
    ///
    /// Refused with [`Error::InDispatch`] while a batch is being dispatched. If the last
    /// batch still holds events not handed out (an `Events` dropped early, a handler that
    /// panicked), makes no syscall: those come first.
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> Result<()> {
        if self.batch.dispatching() {
            return Err(Error::InDispatch);
        }
        if self.has_rest() {
            return Ok(());
        }
        self.poller.open()?;
        self.batch.begin();
        if self.rebuild_due {
            let live = self
                .registry
                .iter_tokens()
                .map(|(t, k)| (k.fd, t, k.interest, k.mode));
            if self.poller.rebuild(live).is_ok() {
                self.rebuild_due = false;
                self.orphans_possible = false;
            }
        }
        let mut left = timeout.map(round_up_ms);
        let n = loop {
            let (chunk, after) = next_chunk(left);
            match self.poller.wait(chunk) {
                // A timed-out chunk of a longer wait: wait for the rest.
                Ok(0) if !after.is_zero() => left = Some(after),
                Ok(n) => break n,
                Err(Error::Os(Errno::INTR)) => break 0,
                Err(e) => return Err(e),
            }
        };
        self.batch.filled(n);
        if self.orphans_possible {
            // Nothing has changed since the wait began, so an event whose token is not live
            // belongs to a registration removed before it: an orphaned open file.
            self.rebuild_due = (0..n).any(|i| self.registry.live(self.poller.event(i).0).is_none());
        }
        Ok(())
    }

    /// Whether the last batch still holds an event to hand out; skips stale entries before it.
    fn has_rest(&mut self) -> bool {
        for i in self.batch.rest() {
            if self.peek(i).is_some() {
                return true;
            }
            let _ = self.batch.take();
        }
        false
    }

    /// Entry `i` of the last wait, checked against the live table without taking it: `None`
    /// when its registration was removed or replaced since the wait (a stale event), when
    /// nothing of it is left after masking to the current interest, or when it is a oneshot
    /// registration's second report of one arming. O(1).
    #[inline]
    fn peek(&self, i: usize) -> Option<(u32, SelectorKey<D>, Ready)> {
        if i >= self.batch.len() {
            return None;
        }
        let (token, raw) = self.poller.event(i);
        let key = *self.registry.live(token)?;
        let ready = Ready::masked(raw, key.interest);
        // Reported once per arming: a rebuilt epoll instance re-adds the registration armed,
        // and the kernel may report it again before `modify` re-arms it.
        if ready.is_empty() || (key.mode == Mode::Oneshot && self.registry.fired(token.slot())) {
            return None;
        }
        Some((token.slot(), key, ready))
    }

    /// The next event of the batch, checked against the live table as it is taken. O(1) per
    /// entry.
    #[inline]
    pub(crate) fn next_event(&mut self) -> Option<(SelectorKey<D>, Ready)> {
        while let Some(i) = self.batch.take() {
            let Some((slot, key, ready)) = self.peek(i) else {
                continue;
            };
            // An event taken before a `modify` of this batch re-armed the registration was
            // spent on the old arming; the new one has not fired yet.
            if key.mode == Mode::Oneshot && self.registry.armed_in(slot) != self.batch.count() {
                self.registry.set_fired(slot);
            }
            return Some((key, ready));
        }
        None
    }

    /// Whether a batch is being dispatched (waits are refused).
    #[inline]
    pub(crate) const fn dispatching(&self) -> bool {
        self.batch.dispatching()
    }

    /// Marks the start and the end of a dispatch by the event loop.
    #[inline]
    pub(crate) fn set_dispatching(&mut self, on: bool) {
        self.batch.set_dispatching(on);
    }

    /// Closes the backend's kernel object and forgets every registration (as Python's
    /// `close`). Dropping the selector does the same.
    ///
    /// ```
    /// use picosel::{DefaultSelector, Interest};
    /// # let (r, _w) = rustix::pipe::pipe().unwrap();
    /// let mut sel = DefaultSelector::<(), 4>::new();
    /// sel.register(&r, Interest::READ, ()).unwrap();
    /// sel.close();
    /// ```
    pub fn close(mut self) {
        self.poller.close();
    }
}

impl<B: Backend, D: Copy, const N: usize> Default for Selector<B, D, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend, D: Copy + core::fmt::Debug, const N: usize> core::fmt::Debug
    for Selector<B, D, N>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Selector")
            .field("backend", &B::NAME)
            .field("capacity", &N)
            .field("len", &self.registry.len())
            .finish_non_exhaustive()
    }
}

/// The ready registrations of one [`Selector::select`]: an iterator of `(key, ready)` pairs.
///
/// It holds the selector mutably; [`selector`](Self::selector) lends it out between pairs so a
/// callback can register, modify and unregister (use `while let Some(..) = events.next()`).
/// Each pair is checked against the live table when taken: a pair whose registration was
/// removed or replaced since the wait is skipped, and readiness is masked to the current
/// interest.
///
/// # Examples
///
/// ```
/// use picosel::{DefaultSelector, Interest, Ready};
/// use std::time::Duration;
/// # let (r, w) = rustix::pipe::pipe().unwrap();
/// let mut sel = DefaultSelector::<(), 4>::new();
/// sel.register(&w, Interest::WRITE, ()).unwrap();
/// let events = sel.select(Some(Duration::ZERO)).unwrap();
/// let ready: Vec<Ready> = events.map(|(_key, ready)| ready).collect();
/// assert_eq!(ready, [Ready::WRITE]);
/// ```
pub struct Events<'a, B: Backend, D, const N: usize> {
    sel: &'a mut Selector<B, D, N>,
}

impl<B: Backend, D: Copy, const N: usize> Events<'_, B, D, N> {
    /// The selector, to change registrations between pairs. A wait on it is refused with
    /// [`Error::InDispatch`] while this batch is alive: it would overwrite the batch.
    ///
    /// ```
    /// use picosel::{DefaultSelector, Error, Interest};
    /// use std::time::Duration;
    /// # let (r, w) = rustix::pipe::pipe().unwrap();
    /// let mut sel = DefaultSelector::<(), 4>::new();
    /// sel.register(&w, Interest::WRITE, ()).unwrap();
    /// let mut events = sel.select(Some(Duration::ZERO)).unwrap();
    /// while let Some((key, _)) = events.next() {
    ///     assert_eq!(events.selector().select(None).err(), Some(Error::InDispatch));
    ///     events.selector().unregister(key.fd()).unwrap();
    /// }
    /// drop(events);
    /// assert!(sel.is_empty());
    /// ```
    pub fn selector(&mut self) -> &mut Selector<B, D, N> {
        self.sel
    }
}

impl<B: Backend, D: Copy, const N: usize> Iterator for Events<'_, B, D, N> {
    type Item = (SelectorKey<D>, Ready);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.sel.next_event()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.sel.batch.rest().len()))
    }
}

/// Ends the dispatch: the selector may wait again, and hands out first what this batch did
/// not (so an edge-triggered or oneshot event is not lost when a batch is dropped early).
/// Forgetting an `Events` (`mem::forget`) leaves the selector refusing waits, as a forgotten
/// `MutexGuard` leaves its mutex locked.
impl<B: Backend, D, const N: usize> Drop for Events<'_, B, D, N> {
    fn drop(&mut self) {
        self.sel.batch.set_dispatching(false);
    }
}
