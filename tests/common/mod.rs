//! Helpers shared by the selector test suites.
#![allow(dead_code)]

use picosel::backend::{Backend, Poller, Token};
use picosel::{Interest, Mode, Ready, Result};
use rustix::fd::{OwnedFd, RawFd};
use std::cell::Cell;
use std::marker::PhantomData;

thread_local! {
    /// Calls into the wrapped backend that reach the kernel's interest list (add, modify,
    /// delete), on this thread.
    pub static CTL_CALLS: Cell<usize> = const { Cell::new(0) };
}

/// A backend that counts registration calls into the backend it wraps.
pub struct Counting<B>(PhantomData<B>);

impl<B: Backend> Backend for Counting<B> {
    const NAME: &'static str = B::NAME;
    type Poller<const N: usize> = CountingPoller<B::Poller<N>>;
}

/// The poller of [`Counting`].
pub struct CountingPoller<P>(P);

fn count() {
    CTL_CALLS.with(|c| c.set(c.get() + 1));
}

impl<const N: usize, P: Poller<N>> Poller<N> for CountingPoller<P> {
    const CLOSED: Self = CountingPoller(P::CLOSED);
    fn supports(mode: Mode) -> bool {
        P::supports(mode)
    }
    fn open(&mut self) -> Result<()> {
        self.0.open()
    }
    fn add(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        count();
        self.0.add(fd, token, interest, mode)
    }
    fn modify(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        count();
        self.0.modify(fd, token, interest, mode)
    }
    fn delete(&mut self, fd: RawFd, token: Token<N>) -> Result<()> {
        count();
        self.0.delete(fd, token)
    }
    fn wait(&mut self, timeout: Option<std::time::Duration>) -> Result<usize> {
        self.0.wait(timeout)
    }
    fn event(&self, i: usize) -> (Token<N>, Ready) {
        self.0.event(i)
    }
    fn close(&mut self) {
        self.0.close()
    }
    fn rebuild<I: Iterator<Item = (RawFd, Token<N>, Interest, Mode)>>(
        &mut self,
        live: I,
    ) -> Result<()> {
        self.0.rebuild(live)
    }
}

pub fn ctl_calls() -> usize {
    CTL_CALLS.with(|c| c.get())
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK)
        .expect("pipe")
}

/// A connected non-blocking Unix stream socketpair.
pub fn socketpair() -> (OwnedFd, OwnedFd) {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .expect("socketpair")
}

/// Raises the soft fd limit to the hard limit (tests with thousands of fds).
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = lim.maximum;
    let _ = setrlimit(Resource::Nofile, lim);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The number of fds open in this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Runs each generic check `name::<B>()` as a test per backend: `epoll::name`, `poll::name`,
/// `select::name`.
#[macro_export]
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod epoll {
            $(#[test] fn $name() { super::$name::<picosel::Epoll>() })*
        }
        mod poll {
            $(#[test] fn $name() { super::$name::<picosel::Poll>() })*
        }
        mod select {
            $(#[test] fn $name() { super::$name::<picosel::Select>() })*
        }
    };
}
