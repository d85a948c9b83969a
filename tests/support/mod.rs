//! What the test suites share: small fd helpers, a backend that counts registration calls, the
//! per-backend test macro, a reproducible PRNG, and (submodule `examples`) the harness that runs
//! the example binaries. The larger pieces a few suites need (the fake backend with its models,
//! the timer model, the counting allocator) sit beside this file and are included by `#[path]`,
//! so other test binaries do not compile them. This is `tests/support/mod.rs`, so cargo does
//! not build it as a test of its own.

// Each test file uses a different part of this module.
#![allow(dead_code)]

pub mod examples;

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
pub struct CountingCalls<B>(PhantomData<B>);

impl<B: Backend> Backend for CountingCalls<B> {
    const NAME: &'static str = B::NAME;
    type Poller<const N: usize> = CountingPoller<B::Poller<N>>;
}

/// The poller of [`CountingCalls`].
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

/// Read and write timeout of every client socket: only a hung server reaches it.
pub const IO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// A loopback client with [`IO_TIMEOUT`] on reads and writes.
pub fn connect(addr: std::net::SocketAddr) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// xorshift64*: payloads and sizes that differ per client, reproducible from the seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() >> 32) as u8).collect()
    }

    /// `min` to `min + span - 1` random bytes.
    pub fn payload(&mut self, min: usize, span: u64) -> Vec<u8> {
        let len = min + self.below(span) as usize;
        self.bytes(len)
    }
}
