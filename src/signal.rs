//! Signals as events: [`Signal`], [`SignalEvent`], [`block_signals`], and the signalfd(2)
//! behind [`EventLoop::add_signal`](crate::EventLoop::add_signal).
//!
//! # How a signal reaches a handler
//!
//! A signal is *blocked* (so the kernel neither runs a handler nor applies the default
//! action, which for SIGTERM and SIGINT is to kill the process) and stays pending; a
//! signalfd(2) whose mask names it becomes readable; the event loop watches that fd like any
//! other and reads one `signalfd_siginfo` per pending signal. The handler therefore runs in
//! the loop's thread, at a point where it may do anything: no async-signal-safety rules, no
//! self-pipe, no global state.
//!
//! # Block before threads start
//!
//! The signal mask is per thread and inherited by threads created afterwards. A process-wide
//! signal (`kill`, systemd's SIGTERM, Ctrl-C's SIGINT) goes to *any* thread that does not
//! block it. [`EventLoop::add_signal`](crate::EventLoop::add_signal) blocks the signal in the
//! calling thread only, so in a program with several threads call [`block_signals`] in `main`
//! **before spawning any thread**; otherwise another thread takes the signal and its default
//! action runs (SIGTERM: the process dies without the loop seeing it). A single-threaded
//! daemon needs nothing more than `add_signal`.
//!
//! Signals stay blocked after the loop is dropped: unblocking would let a pending SIGTERM kill
//! the process at that moment.
//!
//! # Why the `libc` crate
//!
//! rustix has no signalfd wrapper, and its signal-mask call (`rustix::runtime`) is for
//! implementing a libc, not for use beside one: glibc and musl reserve signals 32–34 for their
//! thread machinery and filter them out of masks set through `pthread_sigmask`, which a raw
//! `rt_sigprocmask` would not. The smallest sound route is therefore the C library's own
//! `pthread_sigmask`, `sigemptyset`/`sigaddset` and `signalfd` through the `libc` crate's
//! declarations (no code of its own, `default-features = false`, already in every std
//! program's dependency graph), behind the `signal` cargo feature (on by default). A raw
//! syscall wrapper would have needed per-architecture `asm!` and its own `sigset_t` layout for
//! the same three calls. The `unsafe` is confined to four small functions below, each with its
//! invariant; reading the siginfo records needs none (they are parsed from bytes).
//!
//! # References
//! - [signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html)
//! - [pthread_sigmask(3)](https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html)
//! - [signal(7)](https://man7.org/linux/man-pages/man7/signal.7.html), "Signal mask and pending
//!   signals"

use crate::{Errno, Error, Result};
use core::mem::{offset_of, size_of, MaybeUninit};
use rustix::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A signal number, 1 to 64 (Linux's `_NSIG - 1` on x86, ARM and RISC-V).
///
/// # Examples
///
/// ```
/// use picosel::Signal;
/// assert_eq!(Signal::from_raw(Signal::TERM.as_raw()), Some(Signal::TERM));
/// assert_eq!(Signal::from_raw(0), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

impl Signal {
    /// `SIGHUP`: by daemon convention, reload the configuration.
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// `SIGINT`: Ctrl-C.
    pub const INT: Signal = Signal(libc::SIGINT);
    /// `SIGQUIT`.
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// `SIGKILL`: cannot be blocked or caught; [`add_signal`] refuses it.
    ///
    /// [`add_signal`]: crate::EventLoop::add_signal
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// `SIGUSR1`.
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// `SIGUSR2`.
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    /// `SIGPIPE`: a write to a closed pipe or socket. Rust's std already ignores it.
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    /// `SIGALRM`.
    pub const ALRM: Signal = Signal(libc::SIGALRM);
    /// `SIGTERM`: the polite stop request (systemd, `kill`).
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// `SIGCHLD`: a child process stopped or exited.
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    /// `SIGSTOP`: cannot be blocked or caught; [`add_signal`] refuses it.
    ///
    /// [`add_signal`]: crate::EventLoop::add_signal
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    /// `SIGWINCH`: the terminal was resized.
    pub const WINCH: Signal = Signal(libc::SIGWINCH);

    /// The signal with number `signo`, if it is in 1..=64.
    ///
    /// ```
    /// use picosel::Signal;
    /// assert_eq!(Signal::from_raw(15), Some(Signal::TERM)); // on Linux
    /// assert_eq!(Signal::from_raw(65), None);
    /// ```
    pub const fn from_raw(signo: i32) -> Option<Signal> {
        if signo >= 1 && signo <= 64 {
            Some(Signal(signo))
        } else {
            None
        }
    }

    /// The signal number.
    ///
    /// ```
    /// assert_eq!(picosel::Signal::INT.as_raw(), 2);
    /// ```
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// Whether the kernel lets this signal be blocked (all but SIGKILL and SIGSTOP).
    ///
    /// ```
    /// use picosel::Signal;
    /// assert!(Signal::TERM.can_block());
    /// assert!(!Signal::KILL.can_block());
    /// ```
    pub const fn can_block(self) -> bool {
        self.0 != libc::SIGKILL && self.0 != libc::SIGSTOP
    }

    /// Index 0..64 into a per-signal table.
    pub(crate) const fn index(self) -> usize {
        (self.0 - 1) as usize
    }

    const fn bit(self) -> u64 {
        1 << (self.0 - 1)
    }
}

/// One delivered signal, from the `signalfd_siginfo` the kernel wrote.
///
/// # Examples
///
/// ```
/// use picosel::{DefaultEventLoop, Signal, SignalEvent};
///
/// fn on_signal(ev: &mut DefaultEventLoop<u32, 4, 0>, sig: SignalEvent) {
///     if sig.signal == Signal::HUP {
///         *ev.context() += 1; // reload
///     }
/// }
/// # let _ = on_signal;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalEvent {
    /// Which signal.
    pub signal: Signal,
    /// The sender's process id (`ssi_pid`; 0 for a signal sent by the kernel).
    pub pid: u32,
    /// The sender's real user id (`ssi_uid`).
    pub uid: u32,
}

/// Blocks `signals` in the calling thread (`pthread_sigmask(SIG_BLOCK)`), adding to the
/// signals already blocked.
///
/// Call it in `main` before any thread is spawned, with every signal the event loop will
/// handle. The mask is per thread and inherited by threads created afterwards, and a signal
/// sent to the process (`kill`, systemd's SIGTERM, Ctrl-C's SIGINT) goes to any thread that
/// does not block it: a thread started before this call would take the signal with its
/// default action (for SIGTERM: the process dies without the loop seeing it). A
/// single-threaded daemon needs only [`EventLoop::add_signal`](crate::EventLoop::add_signal),
/// which blocks the signal in the calling thread. Idempotent.
///
/// # Errors
/// [`Error::Unsupported`] for SIGKILL or SIGSTOP, which cannot be blocked; nothing is changed.
/// [`Error::Os`] if the C library refuses.
///
/// # Examples
///
/// ```
/// use picosel::{block_signals, Signal};
///
/// // First thing in main, before std::thread::spawn:
/// block_signals(&[Signal::TERM, Signal::INT, Signal::HUP]).unwrap();
/// ```
///
/// # References
/// - [pthread_sigmask(3)](https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html)
#[doc(alias = "pthread_sigmask")]
#[doc(alias = "sigprocmask")]
pub fn block_signals(signals: &[Signal]) -> Result<()> {
    let mut mask = 0;
    for s in signals {
        if !s.can_block() {
            return Err(Error::Unsupported);
        }
        mask |= s.bit();
    }
    sigmask(libc::SIG_BLOCK, mask).map(drop)
}

/// Blocks one signal in this thread; returns whether it was blocked already.
pub(crate) fn block_one(signal: Signal) -> Result<bool> {
    let old = sigmask(libc::SIG_BLOCK, signal.bit())?;
    Ok(old & signal.bit() != 0)
}

/// Unblocks one signal in this thread (rollback of a failed `add_signal`).
pub(crate) fn unblock_one(signal: Signal) {
    // Cannot fail for a valid `how` and a set built by `sigset`.
    let _ = sigmask(libc::SIG_UNBLOCK, signal.bit());
}

/// The C library's `sigset_t` holding the signals of `mask` (bit `n - 1` for signal `n`).
#[allow(unsafe_code)]
fn sigset(mask: u64) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `sigemptyset` initialises the whole set through a valid pointer to writable
    // memory of the right type; it cannot fail for a non-null pointer.
    unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    // SAFETY: initialised by `sigemptyset` just above.
    let mut set = unsafe { set.assume_init() };
    for signo in 1..=64 {
        if mask & (1 << (signo - 1)) != 0 {
            // SAFETY: `set` is an initialised sigset_t; an out-of-range or reserved number only
            // makes sigaddset return EINVAL, which leaves the set unchanged.
            unsafe { libc::sigaddset(&mut set, signo) };
        }
    }
    set
}

/// Whether signal `signo` is in `set`.
#[allow(unsafe_code)]
fn is_member(set: &libc::sigset_t, signo: i32) -> bool {
    // SAFETY: `set` is a reference to an initialised sigset_t.
    unsafe { libc::sigismember(set, signo) == 1 }
}

/// `pthread_sigmask(how, mask)`; returns the previous mask.
#[allow(unsafe_code)]
fn sigmask(how: i32, mask: u64) -> Result<u64> {
    let set = sigset(mask);
    let mut old = sigset(0);
    // SAFETY: both pointers are to initialised sigset_t values that outlive the call;
    // pthread_sigmask only reads `set` and writes `old`.
    let rc = unsafe { libc::pthread_sigmask(how, &set, &mut old) };
    if rc != 0 {
        // pthread_sigmask returns the error number instead of setting errno.
        return Err(Error::Os(Errno::from_raw_os_error(rc)));
    }
    let mut bits = 0;
    for signo in 1..=64 {
        if is_member(&old, signo) {
            bits |= 1 << (signo - 1);
        }
    }
    Ok(bits)
}

/// Creates a signalfd for `mask`, or changes the mask of an existing one.
#[allow(unsafe_code)]
fn signalfd(fd: Option<RawFd>, mask: u64) -> Result<Option<OwnedFd>> {
    let set = sigset(mask);
    // SAFETY: `set` is an initialised sigset_t that outlives the call. With an existing fd the
    // kernel checks it is a signalfd (EINVAL otherwise) and only replaces its mask.
    let rc = unsafe {
        libc::signalfd(
            fd.unwrap_or(-1),
            &set,
            libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
        )
    };
    if rc < 0 {
        return Err(Error::Os(Errno::from_raw_os_error(errno())));
    }
    if fd.is_some() {
        return Ok(None);
    }
    // SAFETY: `rc` is a new fd just returned by signalfd, owned by nothing else.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(rc) }))
}

/// errno after a failed C call.
#[allow(unsafe_code)]
fn errno() -> i32 {
    // SAFETY: `__errno_location` returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// The signals the loop handles and its signalfd. No syscall until the first signal is added.
#[derive(Debug)]
pub(crate) struct SignalFd {
    fd: Option<OwnedFd>,
    mask: u64,
}

/// Records read per readiness: the fd is level-triggered, so more pending ones come next wait.
const BATCH: usize = 4;
const RECORD: usize = size_of::<libc::signalfd_siginfo>();

impl SignalFd {
    pub(crate) const CLOSED: SignalFd = SignalFd { fd: None, mask: 0 };

    pub(crate) fn contains(&self, signal: Signal) -> bool {
        self.mask & signal.bit() != 0
    }

    pub(crate) fn raw_fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(|f| f.as_raw_fd())
    }

    /// Opens the signalfd for `signal` (the caller registers it and then calls
    /// [`opened`](Self::opened)), or adds `signal` to the open one.
    pub(crate) fn open_or_add(&mut self, signal: Signal) -> Result<Option<OwnedFd>> {
        let mask = self.mask | signal.bit();
        let new = signalfd(self.raw_fd(), mask)?;
        if new.is_none() {
            self.mask = mask;
        }
        Ok(new)
    }

    /// Adopts a signalfd made by [`open_or_add`](Self::open_or_add) for `signal`.
    pub(crate) fn opened(&mut self, fd: OwnedFd, signal: Signal) {
        self.fd = Some(fd);
        self.mask |= signal.bit();
    }

    /// Reads the pending signals (up to a small batch) into `out`; returns how many.
    pub(crate) fn read(&self, out: &mut [SignalEvent; BATCH]) -> usize {
        let Some(fd) = &self.fd else { return 0 };
        let mut buf = [0u8; RECORD * BATCH];
        // Nonblocking: EAGAIN when another reader got there first, EINTR never blocks long.
        let n = match rustix::io::read(fd, &mut buf) {
            Ok(n) => n,
            Err(_) => return 0,
        };
        let mut count = 0;
        for record in buf[..n.min(buf.len())].chunks_exact(RECORD) {
            let field = |at: usize| {
                let mut b = [0u8; 4];
                b.copy_from_slice(&record[at..at + 4]);
                u32::from_ne_bytes(b)
            };
            let signo = field(offset_of!(libc::signalfd_siginfo, ssi_signo));
            let Some(signal) = i32::try_from(signo).ok().and_then(Signal::from_raw) else {
                continue;
            };
            if let Some(slot) = out.get_mut(count) {
                *slot = SignalEvent {
                    signal,
                    pid: field(offset_of!(libc::signalfd_siginfo, ssi_pid)),
                    uid: field(offset_of!(libc::signalfd_siginfo, ssi_uid)),
                };
                count += 1;
            }
        }
        count
    }
}

/// An empty record buffer for [`SignalFd::read`].
pub(crate) const NO_SIGNALS: [SignalEvent; BATCH] = [SignalEvent {
    signal: Signal::HUP,
    pid: 0,
    uid: 0,
}; BATCH];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigset_round_trips_through_the_c_library() {
        let mask = Signal::TERM.bit() | Signal::USR2.bit() | Signal::CHLD.bit();
        let set = sigset(mask);
        for signo in 1..=31 {
            assert_eq!(is_member(&set, signo), mask & (1 << (signo - 1)) != 0);
        }
    }

    #[test]
    fn kill_and_stop_are_refused() {
        assert_eq!(block_signals(&[Signal::KILL]), Err(Error::Unsupported));
        assert_eq!(block_signals(&[Signal::STOP]), Err(Error::Unsupported));
    }

    #[test]
    fn indexes_cover_1_to_64() {
        assert_eq!(Signal::from_raw(1).map(Signal::index), Some(0));
        assert_eq!(Signal::from_raw(64).map(Signal::index), Some(63));
        assert_eq!(Signal::from_raw(64).map(Signal::bit), Some(1 << 63));
    }
}
