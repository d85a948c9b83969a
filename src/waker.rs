//! [`Waker`]: wakes an event loop from another thread, through an eventfd(2); and the loop's
//! side of it, the eventfd and the wake handler.
//!
//! The loop registers an eventfd for READ. [`Waker::wake`] adds 1 to the eventfd's counter,
//! which makes it readable; the loop reads the counter once (a read returns the sum and
//! resets it to zero, `EFD_SEMAPHORE` not set) and runs the wake handler once. So any number
//! of wakes before the loop gets to run coalesce into one dispatch, and a wake that arrives
//! while the handler runs is never lost: it makes the counter non-zero again.
//!
//! Each `Waker` owns its own duplicate of the eventfd (`F_DUPFD_CLOEXEC`), not the loop's fd
//! number. Writing through a number the waker does not own could, after the loop closed its
//! fd and the process reused the number, write 8 bytes into an unrelated file or socket; with
//! its own fd a waker that outlives its loop writes to an eventfd nobody reads, harmlessly.
//!
//! # References
//! - [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html)

use crate::error::{Error, Result};
use rustix::event::{eventfd, EventfdFlags};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;

/// A handle that wakes an [`EventLoop`](crate::EventLoop) blocked in its wait, from any thread.
///
/// Each waker owns its own duplicate of the loop's eventfd, so a waker that outlives its loop
/// writes harmlessly to an eventfd nobody reads, never to whatever file reused the loop's fd
/// number. Wakes add to the eventfd's counter; the loop reads it once per dispatch, so many
/// wakes coalesce into one call of the wake handler.
///
/// `Send + Sync`: share it by reference (for example in an `Arc` or a `static`), or make more
/// with [`try_clone`](Self::try_clone). It is not `Clone` because a copy costs an fd (`dup`),
/// which can fail. Get one from [`EventLoop::waker`](crate::EventLoop::waker).
///
/// # Examples
///
/// ```
/// use picosel::DefaultEventLoop;
/// use std::time::Duration;
///
/// fn on_wake(ev: &mut DefaultEventLoop<u32, 4, 0>) {
///     *ev.context_mut() += 1;
///     ev.stop();
/// }
///
/// let mut ev = DefaultEventLoop::<u32, 4, 0>::new(0);
/// let waker = ev.waker(on_wake).unwrap();
/// let t = std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(20));
///     waker.wake().unwrap();
/// });
/// ev.run().unwrap(); // blocks with no timeout until the wake
/// assert_eq!(*ev.context_mut(), 1);
/// t.join().unwrap();
/// ```
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// A waker writing to (a duplicate of) the loop's eventfd.
    pub(crate) fn new(eventfd: &OwnedFd) -> Result<Waker> {
        let fd = rustix::io::fcntl_dupfd_cloexec(eventfd, 0).map_err(Error::Os)?;
        Ok(Waker { fd })
    }

    /// Wakes the loop: its wake handler runs once at its next dispatch, however many times
    /// `wake` was called before. Never blocks; one `write` of 8 bytes.
    ///
    /// # Errors
    /// The kernel's refusal of the write, which does not happen on a valid eventfd. A counter
    /// already at its maximum (`EAGAIN`) means a wake is pending, so that is `Ok`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use picosel::DefaultEventLoop;
    /// # use std::time::Duration;
    /// fn on_wake(ev: &mut DefaultEventLoop<u32, 4, 0>) {
    ///     *ev.context_mut() += 1;
    /// }
    /// let mut ev = DefaultEventLoop::<u32, 4, 0>::new(0);
    /// let waker = ev.waker(on_wake).unwrap();
    /// for _ in 0..10 {
    ///     waker.wake().unwrap();
    /// }
    /// assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1); // coalesced
    /// assert_eq!(*ev.context_mut(), 1);
    /// ```
    #[doc(alias = "eventfd_write")]
    pub fn wake(&self) -> Result<()> {
        loop {
            return match rustix::io::write(&self.fd, &1u64.to_ne_bytes()) {
                Ok(_) | Err(Errno::AGAIN) => Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => Err(Error::Os(e)),
            };
        }
    }

    /// Another waker for the same loop (a new `dup` of the eventfd).
    ///
    /// # Errors
    /// The kernel's refusal (`EMFILE`: out of fds).
    ///
    /// # Examples
    ///
    /// ```
    /// # use picosel::DefaultEventLoop;
    /// # fn on_wake(_: &mut DefaultEventLoop<(), 4, 0>) {}
    /// let mut ev = DefaultEventLoop::<(), 4, 0>::new(());
    /// let a = ev.waker(on_wake).unwrap();
    /// let b = a.try_clone().unwrap();
    /// b.wake().unwrap();
    /// ```
    pub fn try_clone(&self) -> Result<Waker> {
        Waker::new(&self.fd)
    }
}

/// A new nonblocking eventfd for a loop.
fn open() -> Result<OwnedFd> {
    eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(Error::Os)
}

/// Resets the counter; nothing to do if it is already zero (`EAGAIN`).
fn drain(fd: impl AsFd) {
    let mut buf = [0u8; 8];
    let _ = rustix::io::read(fd, &mut buf);
}

/// The event loop's eventfd and its wake handler, generic over the handler type as
/// [`Timers`](crate::Timers) is. No syscall until the first waker.
pub(crate) struct WakeFd<H> {
    fd: Option<OwnedFd>,
    handler: Option<H>,
}

impl<H: Copy> WakeFd<H> {
    /// No eventfd, no handler.
    pub(crate) const fn new() -> Self {
        WakeFd {
            fd: None,
            handler: None,
        }
    }

    /// Whether the eventfd is open, which is whether the loop registered it.
    pub(crate) fn is_open(&self) -> bool {
        self.fd.is_some()
    }

    /// A waker whose wakes run `handler`, which replaces the last one. The first call opens the
    /// eventfd and has `register` put it in the loop's selector; on error nothing changes (a
    /// new fd is closed, the handler is kept).
    pub(crate) fn waker(
        &mut self,
        handler: H,
        register: impl FnOnce(&OwnedFd) -> Result<()>,
    ) -> Result<Waker> {
        let waker = if let Some(fd) = &self.fd {
            Waker::new(fd)?
        } else {
            let fd = open()?;
            let waker = Waker::new(&fd)?;
            register(&fd)?;
            self.fd = Some(fd);
            waker
        };
        self.handler = Some(handler);
        Ok(waker)
    }

    /// Resets the counter, however many wakes it holds, and returns the handler to run once.
    pub(crate) fn drain(&self) -> Option<H> {
        if let Some(fd) = &self.fd {
            drain(fd);
        }
        self.handler
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Overflow audit: the eventfd counter stops at 2^64 - 2 (eventfd(2)) and the kernel, not
    /// picosel, does the adding, so no count here can overflow. At that maximum a write fails
    /// with `EAGAIN`, which means a wake is pending: `wake` is `Ok`, and one drain resets it.
    #[test]
    fn wake_with_the_counter_at_its_maximum_is_ok() {
        let fd = open().unwrap();
        let waker = Waker::new(&fd).unwrap();
        let max = u64::MAX - 1;
        rustix::io::write(&fd, &max.to_ne_bytes()).unwrap();
        assert_eq!(
            rustix::io::write(&fd, &1u64.to_ne_bytes()),
            Err(Errno::AGAIN)
        );
        for _ in 0..3 {
            assert_eq!(waker.wake(), Ok(()));
        }
        let mut buf = [0u8; 8];
        assert_eq!(rustix::io::read(&fd, &mut buf), Ok(8));
        assert_eq!(u64::from_ne_bytes(buf), max);
        waker.wake().unwrap();
        drain(&fd);
        assert_eq!(rustix::io::read(&fd, &mut buf), Err(Errno::AGAIN));
    }

    /// The loop's side: a refused registration leaves no eventfd and no handler; the eventfd is
    /// registered once, and a drain hands out the latest handler.
    #[test]
    fn wake_fd_registers_once_and_transactionally() {
        let mut wake = WakeFd::<char>::new();
        assert_eq!(
            wake.waker('a', |_| Err(Error::Full)).err(),
            Some(Error::Full)
        );
        assert!(!wake.is_open() && wake.drain().is_none());
        let waker = wake.waker('b', |_| Ok(())).unwrap();
        let _more = wake
            .waker('c', |_| unreachable!("registered once"))
            .unwrap();
        assert!(wake.is_open());
        waker.wake().unwrap();
        assert_eq!(wake.drain(), Some('c'));
    }
}
