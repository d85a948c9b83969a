//! What both echo daemons share: arguments, the listening socket and the per-connection echo
//! buffer. Included by path into each binary, as `start.rs` (entry, exit and panic handler) is.
//!
//! Nothing here allocates and nothing indexes without a check: a panic would abort the daemon.

use core::ffi::{c_char, c_int};
use core::net::{Ipv4Addr, SocketAddrV4};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

/// The most connections served at once; one more is accepted and closed at once.
pub const MAX_CONNS: usize = 16;
/// Bytes read from a connection before they are echoed back.
const BUF: usize = 512;
/// Reads and writes per readiness report, so one busy peer cannot starve the others: with
/// level-triggered readiness, whatever is left is reported again by the next wait.
const ROUNDS: u32 = 8;

/// Exit codes.
pub const EXIT_USAGE: c_int = 2;
pub const EXIT_OS: c_int = 1;

/// The address from `argv[1]`: `IP:PORT`, or a bare `PORT` on 127.0.0.1; 127.0.0.1:7878 when
/// absent. Port 0 asks the kernel for a free port (printed in the `listening on` line).
pub fn address(argc: c_int, argv: *const *const c_char) -> Option<SocketAddrV4> {
    let default = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7878);
    if argc < 2 || argv.is_null() {
        return Some(default);
    }
    // SAFETY: `_start` (start.rs) passes the kernel's `argc` valid pointers in `argv` (and
    // argc >= 2 here), each to a NUL-terminated string that lives as long as the process.
    #[allow(unsafe_code)]
    let p = unsafe { *argv.add(1) }.cast::<u8>();
    if p.is_null() {
        return Some(default);
    }
    // The longest address, `255.255.255.255:65535`, has 21 bytes: scan at most one more for
    // its NUL, by hand, since CStr::from_ptr would call the C library's strlen.
    let mut arg = [0u8; 22];
    let mut len = 0;
    loop {
        // SAFETY: every byte up to and including the string's NUL is readable, and the scan
        // stops at the NUL.
        #[allow(unsafe_code)]
        let b = unsafe { *p.add(len) };
        if b == 0 {
            return parse(arg.get(..len)?);
        }
        *arg.get_mut(len)? = b; // `None`: too long to be an address
        len += 1;
    }
}

fn parse(arg: &[u8]) -> Option<SocketAddrV4> {
    let (ip, port) = match arg.iter().rposition(|&b| b == b':') {
        Some(colon) => (arg.get(..colon)?, arg.get(colon + 1..)?),
        None => (&b"127.0.0.1"[..], arg),
    };
    let mut octets = [0u8; 4];
    let mut parts = ip.split(|&b| b == b'.');
    for o in &mut octets {
        *o = u8::try_from(number(parts.next()?)?).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    let port = u16::try_from(number(port)?).ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::from(octets), port))
}

/// A decimal number of 1 to 5 digits.
fn number(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 5 {
        return None;
    }
    s.iter().try_fold(0u32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// A non-blocking listening TCP socket on `addr`.
pub fn listen(addr: &SocketAddrV4) -> rustix::io::Result<OwnedFd> {
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let fd = net::socket_with(AddressFamily::INET, SocketType::STREAM, flags, None)?;
    net::sockopt::set_socket_reuseaddr(&fd, true)?;
    net::bind(&fd, addr)?;
    net::listen(&fd, 64)?;
    Ok(fd)
}

/// Accepts one pending connection, non-blocking; `None` when there is none (or it failed:
/// a connection reset before accept is the peer's problem, not the daemon's).
pub fn accept(listener: &OwnedFd) -> Option<OwnedFd> {
    net::accept_with(listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC).ok()
}

/// Writes `listening on IP:PORT` to stdout, with the port the kernel chose for port 0.
pub fn announce(listener: &OwnedFd) {
    let Some(addr) = net::getsockname(listener)
        .ok()
        .and_then(|a| SocketAddrV4::try_from(a).ok())
    else {
        return;
    };
    let mut line = [0u8; 40];
    let mut w = Writer {
        buf: &mut line,
        len: 0,
    };
    w.put(b"listening on ");
    for (i, o) in addr.ip().octets().into_iter().enumerate() {
        if i > 0 {
            w.put(b".");
        }
        w.num(o.into());
    }
    w.put(b":");
    w.num(addr.port().into());
    w.put(b"\n");
    let len = w.len;
    // SAFETY: fd 1 is the stdout the process was started with, never closed by the daemon; the borrow
    // lasts for this one write. A closed stdout makes write fail with EBADF, ignored here.
    #[allow(unsafe_code)]
    let stdout = unsafe { rustix::fd::BorrowedFd::borrow_raw(1) };
    let _ = rustix::io::write(stdout, line.get(..len).unwrap_or_default());
}

struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, s: &[u8]) {
        for &b in s {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }

    fn num(&mut self, mut n: u32) {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        let tail = digits.get(i..).unwrap_or_default();
        self.put(tail);
    }
}

/// What a connection waits for next.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Its buffer is empty: wait until the peer sends.
    Read,
    /// Part of its buffer is not yet sent: the peer is slow to read, so stop reading from it
    /// (backpressure) and wait until the socket is writable.
    Write,
    /// End of file or an error: close it.
    Close,
}

/// One connection and the bytes read from it but not yet echoed.
pub struct Conn {
    pub fd: OwnedFd,
    pub want: Want,
    buf: [u8; BUF],
    start: usize,
    end: usize,
}

impl Conn {
    pub fn new(fd: OwnedFd) -> Self {
        Conn {
            fd,
            want: Want::Read,
            buf: [0; BUF],
            start: 0,
            end: 0,
        }
    }

    /// Moves bytes: sends what is pending, then reads and echoes, until the socket would block
    /// or `ROUNDS` is used up. Returns (and records) what to wait for next.
    pub fn pump(&mut self) -> Want {
        let mut rounds = 0;
        self.want = loop {
            if rounds == ROUNDS {
                break if self.start < self.end {
                    Want::Write
                } else {
                    Want::Read
                };
            }
            rounds += 1;
            if self.start < self.end {
                let pending = self.buf.get(self.start..self.end).unwrap_or_default();
                // MSG_NOSIGNAL: a peer that has gone away gives EPIPE here instead of SIGPIPE,
                // whose default action would kill the daemon.
                match net::send(self.fd.as_fd(), pending, SendFlags::NOSIGNAL) {
                    Ok(n) => self.start += n,
                    Err(Errno::AGAIN) => break Want::Write,
                    Err(Errno::INTR) => {}
                    Err(_) => break Want::Close,
                }
                continue;
            }
            match net::recv(self.fd.as_fd(), &mut self.buf[..], RecvFlags::empty()) {
                Ok((0, _)) => break Want::Close,
                Ok((n, _)) => (self.start, self.end) = (0, n),
                Err(Errno::AGAIN) => break Want::Read,
                Err(Errno::INTR) => {}
                Err(_) => break Want::Close,
            }
        };
        self.want
    }
}
