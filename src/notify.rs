//! [`Notifier`]: the service manager's notification protocol (`sd_notify`) without
//! libsystemd — `READY=1`, `STATUS=…`, `STOPPING=1` and the `WATCHDOG=1` keep-alive, each one
//! datagram to the notify socket.
//!
//! The protocol is small enough to speak directly (`sd_notify(3)`, "Notes"): the service manager
//! passes the address of a Unix datagram socket in `$NOTIFY_SOCKET` (a path, or an abstract
//! name written with a leading `@`), and the service sends it newline-separated `KEY=VALUE`
//! assignments, one datagram each time. With `WatchdogSec=` set, the manager also passes
//! `$WATCHDOG_USEC` and expects `WATCHDOG=1` at least that often, or it kills the service.
//!
//! The core takes the address and the interval as values, so it is `no_std` and makes no
//! allocation: the address is kept in a `sockaddr_un`, `STATUS=` is formatted into a fixed
//! buffer on the stack, and each notification is one `sendto`. `Notifier::from_env`, which
//! reads the environment through `std::env`, is in the companion crate `picosel-std`
//! (`NotifierEnvExt`): picosel itself never links std.

use crate::error::{Error, Result};
use core::fmt::{self, Write as _};
use core::time::Duration;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SendFlags, SocketAddrUnix, SocketFlags, SocketType};

/// The longest path a `sockaddr_un` holds: its `sun_path` is 108 bytes on Linux, and a path
/// may fill it without a terminating NUL. An abstract name takes one of them for its leading
/// NUL.
const SUN_PATH_LEN: usize = 108;

/// The `STATUS=` datagram's buffer on the stack: the prefix and the text.
const STATUS_BUF: usize = 256;
const STATUS_PREFIX: &[u8] = b"STATUS=";

/// A connection to the service manager (systemd, or anything that speaks its notification
/// protocol): tells it when the service is ready, what it is doing, that it is stopping, and
/// that it is alive (the `WATCHDOG=1` keep-alive).
///
/// A notifier is either *enabled* (it holds a datagram socket and the manager's address; each
/// call is one `sendto`) or *disabled* (no manager asked for notifications: every call does
/// nothing and succeeds). So a daemon notifies unconditionally, and runs the same with or
/// without a service manager.
///
/// # With the event loop
///
/// Keep the notifier in the loop's context, and send `WATCHDOG=1` from a periodic timer of the
/// loop, at [`watchdog_period`](Self::watchdog_period) (half the manager's interval, as
/// `sd_watchdog_enabled(3)` advises). Three lines in `main`: make it, arm the keep-alive, say
/// `READY=1`; and `STOPPING=1` when SIGTERM comes:
///
#[cfg_attr(all(feature = "std", feature = "signal"), doc = "```no_run")]
#[cfg_attr(not(all(feature = "std", feature = "signal")), doc = "```ignore")]
/// use picosel::{block_signals, DefaultEventLoop, Notifier, Signal, SignalEvent, TimerEvent};
/// use picosel_std::NotifierEnvExt as _; // Notifier::from_env(), which needs std
///
/// struct Daemon {
///     notifier: Notifier,
///     // ... the daemon's own state
/// }
/// type Loop = DefaultEventLoop<Daemon, 4, 1>;
///
/// fn on_watchdog(ev: &mut Loop, _t: TimerEvent) {
///     let _ = ev.context().notifier.watchdog(); // a missed keep-alive is the manager's to judge
/// }
///
/// fn on_term(ev: &mut Loop, _sig: SignalEvent) {
///     let _ = ev.context().notifier.stopping();
///     ev.stop();
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     block_signals(&[Signal::TERM])?;
///     let mut ev = Loop::new(Daemon {
///         notifier: Notifier::from_env()?, // disabled when $NOTIFY_SOCKET is unset
///     });
///     if let Some(period) = ev.context().notifier.watchdog_period() {
///         ev.add_periodic(period, 0, on_watchdog)?;
///     }
///     ev.add_signal(Signal::TERM, on_term)?;
///     // ... register the daemon's fds and timers, then:
///     ev.context().notifier.ready()?;
///     ev.run()?;
///     Ok(())
/// }
/// ```
///
/// The keep-alive then means what the manager wants it to mean: the loop turns. A handler that
/// never returns stops the timer, the keep-alives stop, and the manager restarts the service
/// (`Restart=on-watchdog`). A keep-alive sent from a thread of its own would go on while the
/// loop is stuck. The handler is the daemon's own (rather than one the library arms for it) so
/// that it can check more before it answers (a worker's progress, a queue's age): systemd's
/// advice is to send `WATCHDOG=1` only when the service is known to be well.
///
/// # Cost
///
/// 136 bytes on `x86_64` (the `sockaddr_un`, the fd, the interval); one socket per
/// notifier, made once by [`new`](Self::new) and kept (so a daemon out of file descriptors still
/// reaches its manager); one `sendto` per notification, which never blocks: a manager that does
/// not read its socket gets [`Error::Os`]`(`[`Errno::AGAIN`]`)` rather than a stuck loop.
///
/// # References
/// - [sd_notify(3)](https://www.freedesktop.org/software/systemd/man/latest/sd_notify.html)
/// - [sd_watchdog_enabled(3)](https://www.freedesktop.org/software/systemd/man/latest/sd_watchdog_enabled.html)
/// - [systemd.service(5)](https://www.freedesktop.org/software/systemd/man/latest/systemd.service.html),
///   `Type=notify`, `WatchdogSec=`, `NotifyAccess=`
#[doc(alias = "sd_notify")]
#[derive(Debug, Default)]
pub struct Notifier {
    /// The socket and the manager's address; `None` when disabled.
    target: Option<(OwnedFd, SocketAddrUnix)>,
    /// The manager's watchdog interval (`$WATCHDOG_USEC`), when it asked for keep-alives.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The most bytes of text a [`status`](Self::status) keeps; longer text is cut at a
    /// character boundary.
    ///
    /// ```
    /// assert_eq!(picosel::Notifier::STATUS_MAX, 249);
    /// ```
    pub const STATUS_MAX: usize = STATUS_BUF - STATUS_PREFIX.len();

    /// A notifier that sends nothing: every notification succeeds and does nothing. What
    /// `picosel-std`'s `Notifier::from_env()` gives when `$NOTIFY_SOCKET` is unset. No syscall.
    ///
    /// ```
    /// let n = picosel::Notifier::disabled();
    /// assert!(!n.is_enabled());
    /// assert_eq!(n.ready(), Ok(()));
    /// assert_eq!(n.watchdog_period(), None);
    /// ```
    #[must_use]
    pub const fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    /// A notifier for the manager at `address`, as `$NOTIFY_SOCKET` writes it: a path
    /// (`/run/systemd/notify`) or an abstract name with a leading `@` (`@/org/freedesktop/…`),
    /// and the manager's watchdog interval (`$WATCHDOG_USEC`), if it asked for keep-alives.
    /// Makes the socket (`socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC)`); sends nothing.
    ///
    /// # Errors
    /// - [`Error::Os`]`(`[`Errno::AFNOSUPPORT`]`)`: the address is neither a path starting with
    ///   `/` nor an abstract name starting with `@` (an empty or relative one, or systemd's
    ///   `vsock:` form, which this does not speak); libsystemd says the same.
    /// - [`Error::Os`]`(`[`Errno::NAMETOOLONG`]`)`: it does not fit a `sockaddr_un`: a path
    ///   longer than 108 bytes, an abstract name longer than 107 after the `@`.
    /// - [`Error::Os`]`(`[`Errno::INVAL`]`)`: a path with a NUL byte in it.
    /// - [`Error::InvalidPeriod`]: a zero watchdog interval, which no keep-alive could meet.
    /// - [`Error::Os`]: the kernel refused the socket (`EMFILE`, …).
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{Errno, Error, Notifier};
    /// use std::os::unix::net::UnixDatagram;
    /// use std::time::Duration;
    ///
    /// let dir = std::env::temp_dir().join(format!("picosel-doc-new-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("notify");
    /// let manager = UnixDatagram::bind(&path).unwrap();
    ///
    /// let n = Notifier::new(path.to_str().unwrap().as_bytes(), Some(Duration::from_secs(30)))
    ///     .unwrap();
    /// n.ready().unwrap();
    /// let mut buf = [0u8; 64];
    /// let len = manager.recv(&mut buf).unwrap();
    /// assert_eq!(&buf[..len], b"READY=1");
    ///
    /// assert_eq!(Notifier::new(b"notify", None).unwrap_err(), Error::Os(Errno::AFNOSUPPORT));
    /// let long = [b'/'; 109];
    /// assert_eq!(Notifier::new(&long, None).unwrap_err(), Error::Os(Errno::NAMETOOLONG));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn new(address: &[u8], watchdog: Option<Duration>) -> Result<Notifier> {
        if watchdog == Some(Duration::ZERO) {
            return Err(Error::InvalidPeriod);
        }
        let addr = parse_address(address)?;
        let socket = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            None,
        )?;
        Ok(Notifier {
            target: Some((socket, addr)),
            watchdog,
        })
    }

    /// A notifier from the values of the service manager's environment variables, as raw bytes
    /// (`None` for one that is unset), and this process's id. `Notifier::from_env()` (in
    /// `picosel-std`, since it reads them through `std::env`) calls this; a program without
    /// std finds its environment another way and calls it too.
    ///
    /// - `notify_socket` (`$NOTIFY_SOCKET`) unset or empty: disabled, and the other two are not
    ///   looked at. Otherwise the address, as for [`new`](Self::new).
    /// - `watchdog_usec` (`$WATCHDOG_USEC`): the watchdog interval in microseconds, a decimal
    ///   number; unset: no keep-alives asked for.
    /// - `watchdog_pid` (`$WATCHDOG_PID`): when set to another process's id, the keep-alives
    ///   are that process's job (the variables were inherited, say by a helper the service
    ///   started), and this notifier has no watchdog interval.
    ///
    /// # Errors
    /// Those of [`new`](Self::new); [`Error::Os`]`(`[`Errno::INVAL`]`)` when `watchdog_usec`
    /// or `watchdog_pid` is set but not a decimal number (libsystemd's answer too).
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{Errno, Error, Notifier};
    /// use std::time::Duration;
    ///
    /// let me = std::process::id();
    /// // Nothing set: disabled, whatever the watchdog variables say.
    /// assert!(!Notifier::from_vars(None, Some(b"junk"), None, me).unwrap().is_enabled());
    ///
    /// let n = Notifier::from_vars(Some(b"@picosel-doc"), Some(b"2000000"), None, me).unwrap();
    /// assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(2)));
    /// // WATCHDOG_PID names another process: the keep-alives are not ours to send.
    /// let n = Notifier::from_vars(Some(b"@picosel-doc"), Some(b"2000000"), Some(b"1"), me)
    ///     .unwrap();
    /// assert!(n.is_enabled());
    /// assert_eq!(n.watchdog_interval(), None);
    ///
    /// let bad = Notifier::from_vars(Some(b"@picosel-doc"), Some(b"2s"), None, me);
    /// assert_eq!(bad.unwrap_err(), Error::Os(Errno::INVAL));
    /// ```
    pub fn from_vars(
        notify_socket: Option<&[u8]>,
        watchdog_usec: Option<&[u8]>,
        watchdog_pid: Option<&[u8]>,
        pid: u32,
    ) -> Result<Notifier> {
        let Some(address) = notify_socket.filter(|a| !a.is_empty()) else {
            return Ok(Notifier::disabled());
        };
        let mut watchdog = match watchdog_usec {
            None => None,
            Some(usec) => Some(Duration::from_micros(parse_decimal(usec)?)),
        };
        if let Some(owner) = watchdog_pid {
            if parse_decimal(owner)? != u64::from(pid) {
                watchdog = None;
            }
        }
        Notifier::new(address, watchdog)
    }

    /// Whether a service manager listens: notifications are sent.
    ///
    /// ```
    /// let n = picosel::Notifier::new(b"@picosel-doc-enabled", None).unwrap();
    /// assert!(n.is_enabled());
    /// assert!(!picosel::Notifier::disabled().is_enabled());
    /// ```
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// The manager's watchdog interval: it kills the service when no `WATCHDOG=1` came for that
    /// long. `None` when it asked for no keep-alives (or the notifier is disabled).
    ///
    /// ```
    /// use std::time::Duration;
    /// let n = picosel::Notifier::new(b"@picosel-doc", Some(Duration::from_secs(10))).unwrap();
    /// assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(10)));
    /// ```
    #[must_use]
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.is_enabled())
    }

    /// How often to send [`watchdog`](Self::watchdog): half the manager's interval, so one
    /// late turn of the loop does not cost the service its life. `None` when no keep-alives
    /// are asked for: arm no timer then.
    ///
    /// ```
    /// use std::time::Duration;
    /// let n = picosel::Notifier::new(b"@picosel-doc", Some(Duration::from_millis(200))).unwrap();
    /// assert_eq!(n.watchdog_period(), Some(Duration::from_millis(100)));
    /// assert_eq!(picosel::Notifier::disabled().watchdog_period(), None);
    /// ```
    #[must_use]
    pub fn watchdog_period(&self) -> Option<Duration> {
        let interval = self.watchdog_interval()?;
        let half = interval / 2;
        // Half of 1 ns is zero, which no periodic timer takes: keep the whole interval then.
        Some(if half.is_zero() { interval } else { half })
    }

    /// `READY=1`: start-up is done (the manager's `Type=notify` start job completes, units
    /// ordered after this one start). Send it once everything is registered, just before
    /// the loop runs; and again after a reload (see [`send`](Self::send)).
    ///
    /// # Errors
    /// [`Error::Os`]: the `sendto` failed (`ENOENT` or `ECONNREFUSED`: nobody listens at the
    /// address; `EAGAIN`: the manager's queue is full). A disabled notifier never fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # use picosel::Notifier;
    /// let notifier = Notifier::disabled(); // picosel-std's Notifier::from_env()? in a daemon
    /// notifier.ready().unwrap();
    /// ```
    pub fn ready(&self) -> Result<()> {
        self.send("READY=1")
    }

    /// `STOPPING=1`: the service is shutting down (send it when SIGTERM arrives, before the
    /// cleanup), so the manager shows "deactivating" rather than a hang.
    ///
    /// # Errors
    /// As for [`ready`](Self::ready).
    ///
    /// # Examples
    ///
    #[cfg_attr(feature = "signal", doc = "```")]
    #[cfg_attr(not(feature = "signal"), doc = "```ignore")]
    /// use picosel::{DefaultEventLoop, Notifier, SignalEvent};
    /// type Loop = DefaultEventLoop<Notifier, 2, 0>;
    ///
    /// fn on_term(ev: &mut Loop, _sig: SignalEvent) {
    ///     let _ = ev.context().stopping();
    ///     ev.stop();
    /// }
    /// # let _ = on_term;
    /// ```
    pub fn stopping(&self) -> Result<()> {
        self.send("STOPPING=1")
    }

    /// `WATCHDOG=1`: the keep-alive. Send it every
    /// [`watchdog_period`](Self::watchdog_period) from a timer of the loop (see
    /// [`Notifier`]); a manager that asked for none ignores it.
    ///
    /// # Errors
    /// As for [`ready`](Self::ready).
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{DefaultEventLoop, Notifier, TimerEvent};
    /// type Loop = DefaultEventLoop<Notifier, 2, 1>;
    ///
    /// fn on_watchdog(ev: &mut Loop, _t: TimerEvent) {
    ///     let _ = ev.context().watchdog();
    /// }
    /// let mut ev = Loop::new(Notifier::disabled());
    /// if let Some(period) = ev.context().watchdog_period() {
    ///     ev.add_periodic(period, 0, on_watchdog).unwrap();
    /// }
    /// assert_eq!(ev.timer_count(), 0); // no manager, no keep-alives
    /// ```
    pub fn watchdog(&self) -> Result<()> {
        self.send("WATCHDOG=1")
    }

    /// `STATUS=…`: one line for the manager to show (`systemctl status`), formatted into a
    /// fixed buffer on the stack: nothing is allocated. Takes anything that displays: a `&str`,
    /// or `format_args!("{n} clients")`.
    ///
    /// The text is kept to one assignment: a newline or NUL in it becomes a space (a newline
    /// would start another assignment, a NUL makes systemd drop the datagram), and text past
    /// [`STATUS_MAX`](Self::STATUS_MAX) bytes is cut at a character boundary.
    ///
    /// # Errors
    /// As for [`ready`](Self::ready).
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::Notifier;
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::UnixDatagram;
    ///
    /// let name = format!("picosel-doc-status-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
    /// let manager = UnixDatagram::bind_addr(&addr).unwrap();
    /// let n = Notifier::new(format!("@{name}").as_bytes(), None).unwrap();
    ///
    /// let clients = 3;
    /// n.status(format_args!("{clients} clients")).unwrap();
    /// n.status("line one\nREADY=1").unwrap();
    ///
    /// let mut buf = [0u8; 300];
    /// let len = manager.recv(&mut buf).unwrap();
    /// assert_eq!(&buf[..len], b"STATUS=3 clients");
    /// let len = manager.recv(&mut buf).unwrap();
    /// assert_eq!(&buf[..len], b"STATUS=line one READY=1"); // one assignment, not two
    /// ```
    pub fn status(&self, text: impl fmt::Display) -> Result<()> {
        let Some((socket, addr)) = &self.target else {
            return Ok(());
        };
        let mut line = Line {
            buf: [0; STATUS_BUF],
            len: STATUS_PREFIX.len(),
            full: false,
        };
        line.buf[..STATUS_PREFIX.len()].copy_from_slice(STATUS_PREFIX);
        // `Line` never fails; a `Display` impl that does leaves what it wrote so far.
        let _ = write!(line, "{text}");
        send_to(socket.as_fd(), addr, line.as_bytes())
    }

    /// Sends `state` as it is, one datagram: any of `sd_notify(3)`'s assignments, newline
    /// separated, for what the methods above do not cover: `RELOADING=1` (with
    /// `MONOTONIC_USEC=`) around a reload, `EXTEND_TIMEOUT_USEC=…` during a long start-up,
    /// `WATCHDOG=trigger`, `ERRNO=…`.
    ///
    /// # Errors
    /// As for [`ready`](Self::ready).
    ///
    /// # Examples
    ///
    /// ```
    /// # use picosel::Notifier;
    /// let notifier = Notifier::disabled();
    /// // Ask for 10 s more to start up.
    /// notifier.send("EXTEND_TIMEOUT_USEC=10000000").unwrap();
    /// ```
    pub fn send(&self, state: &str) -> Result<()> {
        match &self.target {
            Some((socket, addr)) => send_to(socket.as_fd(), addr, state.as_bytes()),
            None => Ok(()),
        }
    }
}

/// One datagram to the manager. `MSG_DONTWAIT`: a manager that does not read its queue must
/// not stop the loop (`EAGAIN` instead). `MSG_NOSIGNAL` as `sd_notify` does (a datagram socket
/// raises no SIGPIPE, but it costs nothing to be sure).
fn send_to(socket: BorrowedFd<'_>, addr: &SocketAddrUnix, msg: &[u8]) -> Result<()> {
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    loop {
        match rustix::net::sendto(socket, msg, flags, addr) {
            Err(Errno::INTR) => {}
            Err(e) => return Err(Error::Os(e)),
            // A datagram goes whole or not at all.
            Ok(_) => return Ok(()),
        }
    }
}

/// `$NOTIFY_SOCKET`'s two forms, as systemd writes them, into a `sockaddr_un`.
fn parse_address(address: &[u8]) -> Result<SocketAddrUnix> {
    match address.split_first() {
        Some((b'@', name)) => {
            if name.len() >= SUN_PATH_LEN {
                return Err(Error::Os(Errno::NAMETOOLONG));
            }
            Ok(SocketAddrUnix::new_abstract_name(name)?)
        }
        Some((b'/', _)) => {
            if address.len() > SUN_PATH_LEN {
                return Err(Error::Os(Errno::NAMETOOLONG));
            }
            // Short enough for rustix to add the NUL in a buffer on the stack; a NUL inside is
            // its `EINVAL`.
            Ok(SocketAddrUnix::new(address)?)
        }
        _ => Err(Error::Os(Errno::AFNOSUPPORT)),
    }
}

/// A decimal number as systemd writes it: digits only, no sign or space, within `u64`.
fn parse_decimal(text: &[u8]) -> Result<u64> {
    if text.is_empty() {
        return Err(Error::Os(Errno::INVAL));
    }
    text.iter().try_fold(0u64, |n, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return Err(Error::Os(Errno::INVAL));
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(digit)))
            .ok_or(Error::Os(Errno::INVAL))
    })
}

/// The `STATUS=` datagram being formatted: a fixed buffer that keeps what fits, whole
/// characters only, with newlines and NULs made spaces.
struct Line {
    buf: [u8; STATUS_BUF],
    len: usize,
    full: bool,
}

impl Line {
    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&self.buf)
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let c = if c == '\n' || c == '\0' { ' ' } else { c };
            let mut utf8 = [0u8; 4];
            let bytes = c.encode_utf8(&mut utf8).as_bytes();
            let end = self.len.saturating_add(bytes.len());
            // Once a character did not fit, keep nothing after it (a shorter one could).
            match self.buf.get_mut(self.len..end) {
                Some(room) if !self.full => room.copy_from_slice(bytes),
                _ => {
                    self.full = true;
                    return Ok(());
                }
            }
            self.len = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_address, parse_decimal, Line, STATUS_BUF, STATUS_PREFIX};
    use crate::error::Error;
    use core::fmt::Write;
    use rustix::io::Errno;

    #[test]
    fn decimal_numbers_are_digits_within_u64() {
        assert_eq!(parse_decimal(b"0"), Ok(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [
            &b""[..],
            b"18446744073709551616",
            b"+1",
            b" 1",
            b"1 ",
            b"-1",
            b"1e6",
        ] {
            assert_eq!(parse_decimal(bad), Err(Error::Os(Errno::INVAL)), "{bad:?}");
        }
    }

    #[test]
    fn address_lengths_are_those_of_sockaddr_un() {
        let mut path = [b'a'; 109];
        path[0] = b'/';
        assert!(parse_address(&path[..108]).is_ok());
        assert_eq!(
            parse_address(&path).err(),
            Some(Error::Os(Errno::NAMETOOLONG))
        );
        let mut name = [b'n'; 109];
        name[0] = b'@';
        assert!(parse_address(&name[..108]).is_ok());
        assert_eq!(
            parse_address(&name).err(),
            Some(Error::Os(Errno::NAMETOOLONG))
        );
        for bad in [&b""[..], b"relative", b"vsock:2:1234"] {
            assert_eq!(
                parse_address(bad).err(),
                Some(Error::Os(Errno::AFNOSUPPORT))
            );
        }
        assert_eq!(parse_address(b"/a\0b").err(), Some(Error::Os(Errno::INVAL)));
    }

    #[test]
    fn status_line_is_cut_at_a_character_boundary() {
        let mut line = Line {
            buf: [0; STATUS_BUF],
            len: STATUS_PREFIX.len(),
            full: false,
        };
        // 248 ASCII bytes leave one: a two-byte character does not fit, and nothing after it
        // is kept.
        let text = [b'x'; STATUS_BUF - STATUS_PREFIX.len() - 1];
        let _ = line.write_str(core::str::from_utf8(&text).unwrap());
        let _ = line.write_str("é.");
        assert_eq!(line.len, STATUS_BUF - 1);
        assert!(core::str::from_utf8(line.as_bytes()).is_ok());
    }
}
