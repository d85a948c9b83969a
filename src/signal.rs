//! Signals as events: [`Signal`], [`SignalEvent`], [`block_signals`], and the event loop's
//! signal table: the signalfd(2) behind [`EventLoop::add_signal`](crate::EventLoop::add_signal),
//! its mask, the handlers and the signals read but not yet dispatched.
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
//! # Children
//!
//! The mask survives fork(2) and execve(2) (signal(7)), and `std::process::Command` passes it
//! on unchanged (it stopped emptying it in 2022, rust-lang/rust#101077), so a helper would
//! start with SIGTERM and SIGINT blocked and outlive `kill -TERM`.
//! [`unblock_signals_for_exec`], run in the child before exec, unblocks the signals picosel
//! blocked (the companion crate `picosel-std` runs it for `std::process::Command`:
//! `CommandSignalsExt::unblock_signals`). Which those are is kept in a process-wide atomic
//! mask, because the child may be spawned from any thread.
//!
//! # Signals the C library keeps
//!
//! glibc uses 32 and 33 for thread cancellation and set-id broadcast (its `SIGRTMIN()` is 34);
//! musl uses 32 to 34 (`SIGRTMIN()` 35). Both refuse them in sigaddset(3), and glibc's
//! `pthread_sigmask` takes them out of any new mask, so blocking one silently does nothing and
//! a signalfd never sees it. picosel refuses `32 <= signo < SIGRTMIN()`, asked of the C library
//! at run time, with [`Error::ReservedSignal`].
//!
//! # Why the `libc` crate
//!
//! rustix has no signalfd wrapper, and its signal-mask call (`rustix::runtime`) is for
//! implementing a libc, not for use beside one: the C library keeps the signals from 32 up to
//! its `SIGRTMIN()` for its thread machinery (32 and 33 on glibc, 32 to 34 on musl) and keeps
//! them out of masks set through its own calls, which a raw `rt_sigprocmask` would not. The
//! smallest sound route is therefore the C library's own
//! `pthread_sigmask`, `sigemptyset`/`sigaddset` and `signalfd` through the `libc` crate's
//! declarations (no code of its own, `default-features = false`, already in every std
//! program's dependency graph), behind the `signal` cargo feature (on by default). A raw
//! syscall wrapper would have needed per-architecture `asm!` and its own `sigset_t` layout for
//! the same three calls. The `unsafe` is confined to small functions below, each with its
//! invariant; reading the siginfo
//! records needs none (they are parsed from bytes).
//!
//! # References
//! - [signalfd(2)](https://man7.org/linux/man-pages/man2/signalfd.2.html)
//! - [pthread_sigmask(3)](https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html)
//! - [signal(7)](https://man7.org/linux/man-pages/man7/signal.7.html), "Signal mask and pending
//!   signals"

use crate::error::{Error, Result};
use core::mem::{offset_of, size_of, MaybeUninit};
use core::sync::atomic::{AtomicU32, Ordering};
use rustix::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use rustix::io::Errno;

/// Linux's signals by architecture: MIPS has 128 (arch/mips/include/uapi/asm/signal.h:
/// `_NSIG` 128), every other architecture 64.
#[cfg(any(
    target_arch = "mips",
    target_arch = "mips32r6",
    target_arch = "mips64",
    target_arch = "mips64r6"
))]
mod nsig {
    /// The highest signal number, `_NSIG - 1`.
    pub(super) const MAX: i32 = 127;
    /// A set of signals, bit `n - 1` for signal `n`.
    pub(super) type Mask = u128;
}
/// As above, for the architectures with 64 signals.
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips32r6",
    target_arch = "mips64",
    target_arch = "mips64r6"
)))]
mod nsig {
    /// The highest signal number, `_NSIG - 1`.
    pub(super) const MAX: i32 = 64;
    /// A set of signals, bit `n - 1` for signal `n`.
    pub(super) type Mask = u64;
}
use nsig::{Mask, MAX};

/// How many signals there are: the length of a per-signal table.
// `MAX` is a positive constant.
#[allow(clippy::cast_sign_loss)]
const COUNT: usize = MAX as usize;
const _: () = assert!(Mask::BITS as usize >= COUNT);

/// A signal number, 1 to Linux's `_NSIG - 1`: 1 to 64 on x86, ARM, RISC-V and the other
/// architectures, 1 to 127 on MIPS, whose kernel has 128 signals. [`Signal::LAST`] is the
/// highest.
///
/// On MIPS the real-time signals 65 to 127 are signals like the others: [`block_signals`]
/// blocks them and [`EventLoop::add_signal`](crate::EventLoop::add_signal) watches them and
/// runs their handler (glibc's and musl's `sigset_t` hold 1024 signals, and both pass the
/// kernel the 128-bit mask MIPS has). qemu-user on a 64-signal host cannot emulate them: it
/// keeps no mask bit for them and refuses to send them (EINVAL), so the suite checks their
/// delivery on MIPS hardware only and says so under qemu.
///
/// # Examples
///
/// ```
/// use picosel::Signal;
/// assert_eq!(Signal::from_raw(Signal::TERM.as_raw()), Some(Signal::TERM));
/// assert_eq!(Signal::from_raw(0), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

/// The names of the standard signals, by this architecture's numbers (they differ on MIPS).
const NAMES: [(i32, &str); 30] = [
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGTTIN, "SIGTTIN"),
    (libc::SIGTTOU, "SIGTTOU"),
    (libc::SIGURG, "SIGURG"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGWINCH, "SIGWINCH"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSYS, "SIGSYS"),
];

/// The name, as `kill -l` and signal(7) write it: `SIGTERM`, `SIGRTMIN+2`; a number without a
/// name (one the C library keeps) shows as `SIG33`.
///
/// ```
/// use picosel::Signal;
/// assert_eq!(Signal::TERM.to_string(), "SIGTERM");
/// assert_eq!(format!("{:?}", Signal::HUP), "SIGHUP");
/// let rt = Signal::from_raw(libc::SIGRTMIN() + 2).unwrap();
/// assert_eq!(rt.to_string(), "SIGRTMIN+2");
/// ```
impl core::fmt::Display for Signal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if let Some((_, name)) = NAMES.iter().find(|(n, _)| *n == self.0) {
            return f.write_str(name);
        }
        let rtmin = libc::SIGRTMIN();
        if self.0 >= rtmin {
            write!(f, "SIGRTMIN+{}", self.0 - rtmin)
        } else {
            write!(f, "SIG{}", self.0)
        }
    }
}

/// As [`Display`](core::fmt::Display): the name.
impl core::fmt::Debug for Signal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

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
    /// The highest signal number, `SIGRTMAX` as the kernel counts: 64, or 127 on MIPS.
    ///
    /// ```
    /// use picosel::Signal;
    /// assert_eq!(Signal::from_raw(Signal::LAST.as_raw()), Some(Signal::LAST));
    /// assert_eq!(Signal::from_raw(Signal::LAST.as_raw() + 1), None);
    /// assert_eq!(Signal::LAST.as_raw(), libc::SIGRTMAX());
    /// ```
    pub const LAST: Signal = Signal(MAX);

    /// The signal with number `signo`, if it is in 1..=64 (1..=127 on MIPS: see
    /// [`Signal::LAST`]).
    ///
    /// ```
    /// use picosel::Signal;
    /// assert_eq!(Signal::from_raw(15), Some(Signal::TERM)); // on Linux
    /// assert_eq!(Signal::from_raw(0), None);
    /// assert_eq!(Signal::from_raw(128), None);
    /// ```
    #[must_use]
    pub const fn from_raw(signo: i32) -> Option<Signal> {
        if signo >= 1 && signo <= MAX {
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
    #[must_use]
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// Whether the kernel lets this signal be blocked (all but SIGKILL and SIGSTOP).
    ///
    /// The signals the C library keeps for itself can be blocked by the kernel but not
    /// through the C library: see [`is_reserved`](Self::is_reserved).
    ///
    /// ```
    /// use picosel::Signal;
    /// assert!(Signal::TERM.can_block());
    /// assert!(!Signal::KILL.can_block());
    /// ```
    #[must_use]
    pub const fn can_block(self) -> bool {
        self.0 != libc::SIGKILL && self.0 != libc::SIGSTOP
    }

    /// Whether the C library keeps this signal for itself: `32 <= signo < SIGRTMIN()`, with
    /// `SIGRTMIN()` asked of the C library (32 and 33 on glibc, 32 to 34 on musl). Its
    /// sigaddset(3) refuses them and glibc's `pthread_sigmask` drops them, so they can be
    /// neither blocked nor watched; [`block_signals`] and
    /// [`EventLoop::add_signal`](crate::EventLoop::add_signal) refuse them with
    /// [`Error::ReservedSignal`]. Real-time signals from `SIGRTMIN()` on are free to use.
    ///
    /// ```
    /// use picosel::Signal;
    /// assert!(Signal::from_raw(32).unwrap().is_reserved()); // glibc and musl alike
    /// assert!(!Signal::TERM.is_reserved());
    /// assert!(!Signal::from_raw(libc::SIGRTMIN()).unwrap().is_reserved());
    /// ```
    #[must_use]
    pub fn is_reserved(self) -> bool {
        self.0 >= 32 && self.0 < libc::SIGRTMIN()
    }

    /// Index 0..COUNT into a per-signal table.
    // A `Signal` holds 1..=MAX (`from_raw`), so `self.0 - 1` is in 0..COUNT.
    #[allow(clippy::cast_sign_loss)]
    const fn index(self) -> usize {
        (self.0 - 1) as usize
    }

    const fn bit(self) -> Mask {
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
///         *ev.context_mut() += 1; // reload
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
/// Children inherit the mask through fork(2) and keep it across execve(2) (signal(7)), and
/// `std::process::Command` passes it on: a helper started plainly has SIGTERM blocked and
/// survives `kill -TERM`. Spawn helpers with `picosel-std`'s
/// `CommandSignalsExt::unblock_signals`, which unblocks in the child the signals this function
/// and `add_signal` blocked; a program that forks and execs itself calls
/// [`unblock_signals_for_exec`] in the child. A child started another way (`posix_spawn(3)`
/// without `POSIX_SPAWN_SETSIGMASK`, system(3), popen(3)) keeps them blocked.
///
/// # Errors
/// Every signal is checked before any is blocked, so on error nothing is changed:
/// - [`Error::Unsupported`] for SIGKILL or SIGSTOP, which cannot be blocked;
/// - [`Error::ReservedSignal`] for a signal the C library keeps for itself
///   ([`Signal::is_reserved`]: 32 up to `SIGRTMIN() - 1`), which its calls would silently
///   leave unblocked;
/// - [`Error::Os`] if the C library refuses.
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
    for &s in signals {
        check_blockable(s)?;
        mask |= s.bit();
    }
    let old = sigmask(libc::SIG_BLOCK, mask)?;
    record_blocked(mask & !old);
    Ok(())
}

/// The signals picosel blocked that were not blocked before, in any thread (bit `n - 1` for
/// signal `n`): what [`unblock_signals_for_exec`] unblocks in a child.
/// In 32-bit words, since 32-bit MIPS and PowerPC (common in routers) have no 64-bit
/// atomics; each signal's bit lives in one word, so a reader never sees half a change to it.
static BLOCKED_BY_US: [AtomicU32; WORDS] = [const { AtomicU32::new(0) }; WORDS];
/// Two words, four on MIPS.
const WORDS: usize = Mask::BITS as usize / 32;

/// Word `i` of `bits`.
// Cut to 32 bits on purpose.
#[allow(clippy::cast_possible_truncation)]
const fn word(bits: Mask, i: usize) -> u32 {
    (bits >> (32 * i)) as u32
}

fn record_blocked(bits: Mask) {
    for (i, w) in BLOCKED_BY_US.iter().enumerate() {
        // Relaxed: each bit stands alone, and the thread that spawns after blocking sees its
        // own writes in program order.
        w.fetch_or(word(bits, i), Ordering::Relaxed);
    }
}

fn forget_blocked(bits: Mask) {
    for (i, w) in BLOCKED_BY_US.iter().enumerate() {
        w.fetch_and(!word(bits, i), Ordering::Relaxed);
    }
}

/// Lock-free atomic loads only: async-signal-safe, callable between fork and exec.
fn blocked_by_us() -> Mask {
    let mut bits = 0;
    for (i, w) in BLOCKED_BY_US.iter().enumerate() {
        bits |= Mask::from(w.load(Ordering::Relaxed)) << (32 * i);
    }
    bits
}

/// Refuses what the C library cannot block: SIGKILL and SIGSTOP (the kernel's rule) and the
/// signals it keeps for itself.
fn check_blockable(signal: Signal) -> Result<()> {
    if !signal.can_block() {
        Err(Error::Unsupported)
    } else if signal.is_reserved() {
        Err(Error::ReservedSignal)
    } else {
        Ok(())
    }
}

/// Blocks one signal in this thread; returns whether it was blocked already.
///
/// [`Error::ReservedSignal`] (or `Unsupported`) before any syscall for a signal the C library
/// cannot block, which `pthread_sigmask` would otherwise accept and silently ignore.
fn block_one(signal: Signal) -> Result<bool> {
    check_blockable(signal)?;
    let old = sigmask(libc::SIG_BLOCK, signal.bit())?;
    let was_blocked = old & signal.bit() != 0;
    if !was_blocked {
        record_blocked(signal.bit());
    }
    Ok(was_blocked)
}

/// Unblocks one signal in this thread (rollback of a failed `add_signal`, called only when
/// [`block_one`] had blocked it).
fn unblock_one(signal: Signal) {
    // Cannot fail for a valid `how` and a set built by `sigset`.
    let _ = sigmask(libc::SIG_UNBLOCK, signal.bit());
    forget_blocked(signal.bit());
}

/// Unblocks, in the calling thread, the signals that [`block_signals`] and
/// [`EventLoop::add_signal`](crate::EventLoop::add_signal) blocked (in any thread, as they
/// stand now): the step a child runs between fork(2) and execve(2), so that the program it
/// starts gets the signal mask the process had before picosel blocked anything.
///
/// The mask is inherited through fork(2) and kept across execve(2) (signal(7)): without this
/// step a helper would start with SIGTERM and SIGINT blocked, and `kill -TERM` and Ctrl-C
/// would not stop it. A signal that was blocked already when picosel was asked stays blocked.
///
/// Async-signal-safe, so callable in the child of a multithreaded parent between fork(2) and
/// execve(2), where only async-signal-safe functions may run (the child has one thread, and
/// locks held by the parent's other threads stay held): it does lock-free atomic loads of a
/// process-wide record, builds `sigset_t` values on the stack with `sigemptyset` and
/// `sigaddset`, and calls `pthread_sigmask`, all on the async-signal-safe list of
/// signal-safety(7). It neither allocates nor takes a lock. `picosel-std`'s
/// `CommandSignalsExt::unblock_signals` runs it in `std::process::Command`'s `pre_exec`; a
/// `no_std` program that forks and execs itself calls it in the child.
///
/// # Errors
/// [`Error::Os`] if the C library refuses (it cannot for the sets built here).
///
/// # Examples
///
/// ```
/// use picosel::{block_signals, unblock_signals_for_exec, Signal};
///
/// // Whether this thread blocks `signal`, asked of the C library.
/// fn blocked(signal: Signal) -> bool {
///     let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
///     // SAFETY: with a null new set, pthread_sigmask only writes the current mask into
///     // `set`, which it initialises; sigismember then reads it.
///     unsafe {
///         libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), set.as_mut_ptr());
///         libc::sigismember(set.as_ptr(), signal.as_raw()) == 1
///     }
/// }
///
/// block_signals(&[Signal::TERM]).unwrap();
/// assert!(blocked(Signal::TERM));
/// // In a child, right before execve(2); here in the process itself, to show its effect:
/// unblock_signals_for_exec().unwrap();
/// assert!(!blocked(Signal::TERM));
/// ```
///
/// # References
/// - [signal-safety(7)](https://man7.org/linux/man-pages/man7/signal-safety.7.html)
/// - [signal(7)](https://man7.org/linux/man-pages/man7/signal.7.html), "Signal mask and pending
///   signals"
/// - [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html)
#[doc(alias = "pre_exec")]
pub fn unblock_signals_for_exec() -> Result<()> {
    let mask = blocked_by_us();
    if mask != 0 {
        sigmask(libc::SIG_UNBLOCK, mask)?;
    }
    Ok(())
}

/// The C library's `sigset_t` holding the signals of `mask` (bit `n - 1` for signal `n`).
#[allow(unsafe_code)]
fn sigset(mask: Mask) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `sigemptyset` initialises the whole set through a valid pointer to writable
    // memory of the right type; it cannot fail for a non-null pointer.
    unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    // SAFETY: initialised by `sigemptyset` just above.
    let mut set = unsafe { set.assume_init() };
    for signo in 1..=MAX {
        if mask & (1 << (signo - 1)) != 0 {
            // SAFETY: `set` is an initialised sigset_t; an out-of-range or reserved number only
            // makes sigaddset return EINVAL, which leaves the set unchanged.
            unsafe { libc::sigaddset(&raw mut set, signo) };
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
fn sigmask(how: i32, mask: Mask) -> Result<Mask> {
    let set = sigset(mask);
    let mut old = sigset(0);
    // SAFETY: both pointers are to initialised sigset_t values that outlive the call;
    // pthread_sigmask only reads `set` and writes `old`.
    let rc = unsafe { libc::pthread_sigmask(how, &raw const set, &raw mut old) };
    if rc != 0 {
        // pthread_sigmask returns the error number instead of setting errno.
        return Err(Error::Os(Errno::from_raw_os_error(rc)));
    }
    let mut bits = 0;
    for signo in 1..=MAX {
        if is_member(&old, signo) {
            bits |= 1 << (signo - 1);
        }
    }
    Ok(bits)
}

/// `signalfd(2)`: `fd` -1 makes a new signalfd watching `mask`; an existing signalfd watches
/// `mask` instead of its old one. Returns the fd.
#[allow(unsafe_code)]
fn signalfd(fd: RawFd, mask: Mask) -> Result<RawFd> {
    let set = sigset(mask);
    // SAFETY: `set` is an initialised sigset_t that outlives the call. With an existing fd the
    // kernel checks it is a signalfd (EINVAL otherwise) and only replaces its mask.
    let rc = unsafe { libc::signalfd(fd, &raw const set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if rc < 0 {
        return Err(Error::Os(Errno::from_raw_os_error(errno())));
    }
    Ok(rc)
}

/// A new signalfd watching `mask`.
#[allow(unsafe_code)]
fn open_signalfd(mask: Mask) -> Result<OwnedFd> {
    let fd = signalfd(-1, mask)?;
    // SAFETY: `fd` is a new fd just returned by signalfd, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// errno after a failed C call.
#[allow(unsafe_code)]
fn errno() -> i32 {
    // SAFETY: the C library returns a valid pointer to this thread's errno (glibc and musl
    // call it `__errno_location`, Android's bionic `__errno`).
    #[cfg(not(target_os = "android"))]
    unsafe {
        *libc::__errno_location()
    }
    // SAFETY: as above.
    #[cfg(target_os = "android")]
    unsafe {
        *libc::__errno()
    }
}

/// Records read per readiness: the fd is level-triggered, so more pending ones come next wait.
const BATCH: usize = 4;
const RECORD: usize = size_of::<libc::signalfd_siginfo>();

/// Reads up to [`BATCH`] pending signals from the signalfd `fd` into `out`; returns how many.
fn read_records(fd: &OwnedFd, out: &mut [SignalEvent; BATCH]) -> usize {
    let mut buf = [0u8; RECORD * BATCH];
    // Nonblocking: EAGAIN when another reader got there first, EINTR never blocks long.
    let Ok(n) = rustix::io::read(fd, &mut buf) else {
        return 0;
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

/// The event loop's signals, generic over its handler type as [`Timers`](crate::Timers) is:
/// the signalfd and the mask it watches, a handler per watched signal, and the signals read
/// from the fd but not dispatched yet. No syscall until the first signal is added.
///
/// The loop puts the fd in its selector through the `register` step of [`add`](Self::add),
/// and runs a turn's signals with [`read`](Self::read) then [`take`](Self::take) until `None`.
pub(crate) struct SignalTable<H> {
    fd: Option<OwnedFd>,
    /// The signals `fd` watches (bit `n - 1` for signal `n`); each has a handler.
    mask: Mask,
    handlers: [Option<H>; COUNT],
    /// `batch[next..len]` were read and not dispatched yet (a handler panicked): the signalfd
    /// no longer holds them, so they go first next turn.
    batch: [SignalEvent; BATCH],
    next: usize,
    len: usize,
}

impl<H: Copy> SignalTable<H> {
    /// No signal watched, no fd.
    pub(crate) const fn new() -> Self {
        SignalTable {
            fd: None,
            mask: 0,
            handlers: [None; COUNT],
            batch: [SignalEvent {
                signal: Signal::HUP,
                pid: 0,
                uid: 0,
            }; BATCH],
            next: 0,
            len: 0,
        }
    }

    /// Whether the signalfd is open, which is whether the loop registered it.
    pub(crate) fn is_open(&self) -> bool {
        self.fd.is_some()
    }

    fn contains(&self, signal: Signal) -> bool {
        self.mask & signal.bit() != 0
    }

    /// Handles `signal` with `handler`: blocks it in the calling thread and adds it to the
    /// signalfd, whose first opening `register` puts in the loop's selector. A signal watched
    /// already only gets the new handler.
    ///
    /// Transactional: on error the thread's mask, the signalfd's mask, the handlers and the
    /// selector (`register` failing leaves it as it was) are as before, and a new fd is closed.
    pub(crate) fn add(
        &mut self,
        signal: Signal,
        handler: H,
        register: impl FnOnce(&OwnedFd) -> Result<()>,
    ) -> Result<()> {
        if !signal.can_block() {
            return Err(Error::Unsupported);
        }
        if !self.contains(signal) {
            // Blocked first: a signal arriving between the signalfd and the block would
            // otherwise take its default action.
            let was_blocked = block_one(signal)?;
            if let Err(e) = self.watch(signal, register) {
                if !was_blocked {
                    unblock_one(signal);
                }
                return Err(e);
            }
        }
        if let Some(slot) = self.handlers.get_mut(signal.index()) {
            *slot = Some(handler);
        }
        Ok(())
    }

    /// Adds `signal` to the signalfd's mask, opening and registering the fd on first use. On
    /// error nothing changes: a new fd is dropped (closed) and the mask is kept.
    fn watch(
        &mut self,
        signal: Signal,
        register: impl FnOnce(&OwnedFd) -> Result<()>,
    ) -> Result<()> {
        let mask = self.mask | signal.bit();
        if let Some(fd) = &self.fd {
            signalfd(fd.as_raw_fd(), mask)?;
        } else {
            let fd = open_signalfd(mask)?;
            register(&fd)?;
            self.fd = Some(fd);
        }
        self.mask = mask;
        Ok(())
    }

    /// Whether signals read earlier are not dispatched yet.
    pub(crate) fn pending(&self) -> bool {
        self.next < self.len
    }

    /// Reads the pending signals (a small batch) from the signalfd, unless some read earlier
    /// are not dispatched yet: those go first, and the fd stays readable for the rest.
    pub(crate) fn read(&mut self) {
        if self.pending() {
            return;
        }
        self.len = match &self.fd {
            Some(fd) => read_records(fd, &mut self.batch),
            None => 0,
        };
        self.next = 0;
    }

    /// Takes the next signal read and not dispatched, with its handler. It is taken before the
    /// handler runs: a handler that panics does not get it again, and the others still come.
    pub(crate) fn take(&mut self) -> Option<(H, SignalEvent)> {
        while self.next < self.len {
            let sig = *self.batch.get(self.next)?;
            self.next += 1;
            if let Some(h) = self.handlers.get(sig.signal.index()).copied().flatten() {
                return Some((h, sig));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write as _;

    /// Every signal number goes through the C library's `sigset_t`, up to the last: 64, or
    /// 127 on MIPS, where 65 is in the set too.
    #[test]
    fn sigset_round_trips_through_the_c_library() {
        let above_64 = Signal::from_raw(65).map_or(0, Signal::bit);
        assert_eq!(above_64 != 0, MAX > 64);
        let mask = Signal::TERM.bit()
            | Signal::USR2.bit()
            | Signal::CHLD.bit()
            | Signal::LAST.bit()
            | above_64;
        let set = sigset(mask);
        for signo in 1..=MAX {
            let want = mask & (1 << (signo - 1)) != 0;
            assert_eq!(is_member(&set, signo), want, "{signo}");
        }
    }

    #[test]
    fn kill_and_stop_are_refused() {
        assert_eq!(block_signals(&[Signal::KILL]), Err(Error::Unsupported));
        assert_eq!(block_signals(&[Signal::STOP]), Err(Error::Unsupported));
    }

    /// Regression: `block_signals` returned `Ok` for 32..SIGRTMIN(), which the C library
    /// silently left unblocked; now refused before anything is blocked.
    #[test]
    fn reserved_signals_are_refused_before_anything_changes() {
        let rtmin = libc::SIGRTMIN();
        assert!((33..=35).contains(&rtmin), "SIGRTMIN() = {rtmin}");
        for signo in 32..rtmin {
            let s = Signal::from_raw(signo).unwrap();
            assert!(s.is_reserved() && s.can_block());
            assert_eq!(block_signals(&[s]), Err(Error::ReservedSignal));
            assert_eq!(block_one(s), Err(Error::ReservedSignal));
            let mut table = SignalTable::<()>::new();
            let refused = table.add(s, (), |_| unreachable!("registered a reserved signal"));
            assert_eq!(refused, Err(Error::ReservedSignal));
            assert!(!table.is_open() && !table.contains(s));
        }
        for signo in (1..32).chain(rtmin..=MAX) {
            assert!(!Signal::from_raw(signo).unwrap().is_reserved(), "{signo}");
        }
        // A good signal before a reserved one: refused as a whole, the good one not blocked.
        let before = sigmask(libc::SIG_BLOCK, 0).unwrap();
        let reserved = Signal::from_raw(32).unwrap();
        assert_eq!(
            block_signals(&[Signal::WINCH, reserved]),
            Err(Error::ReservedSignal)
        );
        assert_eq!(sigmask(libc::SIG_BLOCK, 0).unwrap(), before);
    }

    /// The record behind `unblock_signals_for_exec`: signals picosel newly blocked, minus
    /// rolled-back ones; a signal blocked before picosel was asked is not picosel's to unblock.
    /// Real-time signals no other test uses; the mask is this test thread's own.
    #[test]
    fn record_holds_exactly_the_signals_picosel_blocked() {
        let rt = |n| Signal::from_raw(libc::SIGRTMIN() + n).unwrap();
        let (a, b, c) = (rt(6), rt(7), rt(8));
        assert_eq!(blocked_by_us() & (a.bit() | b.bit() | c.bit()), 0);
        assert_eq!(block_one(a), Ok(false));
        assert_eq!(block_one(a), Ok(true));
        assert_ne!(blocked_by_us() & a.bit(), 0);
        unblock_one(a);
        assert_eq!(blocked_by_us() & a.bit(), 0);
        assert_eq!(sigmask(libc::SIG_BLOCK, 0).unwrap() & a.bit(), 0);
        // Blocked outside picosel first: not recorded by either call.
        sigmask(libc::SIG_BLOCK, b.bit()).unwrap();
        block_signals(&[b, c]).unwrap();
        assert_eq!(block_one(b), Ok(true));
        assert_eq!(blocked_by_us() & (b.bit() | c.bit()), c.bit());
        // The first and the last word of the record: signals 31 and `MAX - 1` (63, or 126
        // on MIPS); the last signal is left to the test that raises it.
        let edges = (1 << 30) | (1 << (MAX - 2));
        record_blocked(edges);
        assert_eq!(blocked_by_us() & edges, edges);
        forget_blocked(edges | c.bit());
        assert_eq!(blocked_by_us() & (edges | c.bit()), 0);
    }

    /// The table's `add` is transactional: a refused registration leaves the thread's mask and
    /// the table as before. The signals read are taken one at a time, and a `read` before all
    /// are taken (the turn after a panicking handler) keeps them instead of reading over them.
    /// Real-time signals no other test uses; the mask is this test thread's own.
    #[test]
    #[allow(unsafe_code)]
    fn table_adds_transactionally_and_keeps_what_it_read() {
        let rt = |n| Signal::from_raw(libc::SIGRTMIN() + n).unwrap();
        let (a, b) = (rt(9), rt(10));
        let before = sigmask(libc::SIG_BLOCK, 0).unwrap();
        let mut table = SignalTable::<char>::new();
        assert_eq!(table.add(a, 'a', |_| Err(Error::Full)), Err(Error::Full));
        assert!(!table.is_open() && !table.contains(a));
        assert_eq!(sigmask(libc::SIG_BLOCK, 0).unwrap(), before);
        assert_eq!(blocked_by_us() & a.bit(), 0);

        table.add(a, 'x', |_| Ok(())).unwrap();
        table
            .add(b, 'b', |_| unreachable!("the fd is registered once"))
            .unwrap();
        table
            .add(a, 'a', |_| unreachable!("a is watched already"))
            .unwrap();
        assert!(table.is_open() && table.contains(a) && table.contains(b));
        for s in [a, b] {
            // SAFETY: raise(3) sends a valid signal number to this thread, which blocks it.
            assert_eq!(unsafe { libc::raise(s.as_raw()) }, 0);
        }
        table.read();
        let first = table.take().unwrap();
        assert!(table.pending());
        table.read();
        let second = table.take().unwrap();
        assert_eq!(table.take(), None);
        let mut got = [first, second].map(|(h, e)| (h, e.signal.as_raw()));
        got.sort_unstable();
        assert_eq!(got, [('a', a.as_raw()), ('b', b.as_raw())]);
        unblock_one(a);
        unblock_one(b);
    }

    #[test]
    fn indexes_cover_every_signal() {
        assert_eq!(Signal::from_raw(1).map(Signal::index), Some(0));
        assert_eq!(Signal::LAST.index(), COUNT - 1);
        assert_eq!(Signal::LAST.bit(), 1 << (MAX - 1));
        assert_eq!(Signal::from_raw(MAX + 1), None);
        // The C library counts as many signals (glibc's and musl's `SIGRTMAX()`); Miri's
        // stand-in for `SIGRTMAX()` answers a fixed 42, not the system's.
        if !cfg!(miri) {
            assert_eq!(MAX, libc::SIGRTMAX());
        }
    }

    /// The last signal (127 on MIPS, 64 elsewhere) is blocked, watched and delivered to its
    /// handler like any other. qemu-user on a 64-signal host keeps no mask bit for a guest's
    /// highest signals and refuses to send them (EINVAL): there the delivery is left out, with
    /// a SKIPPED line, and the next test reads the record through the table instead.
    #[test]
    #[allow(unsafe_code)]
    fn the_last_signal_is_blocked_watched_and_delivered() {
        let last = Signal::LAST;
        let mut table = SignalTable::<char>::new();
        table.add(last, 'z', |_| Ok(())).unwrap();
        assert!(table.is_open() && table.contains(last));
        let blocked = sigmask(libc::SIG_BLOCK, 0).unwrap() & last.bit() != 0;
        // SAFETY: raise(3) sends a valid signal number to this thread, which blocks it (checked
        // first: unblocked, a real-time signal would end the process).
        let raised = blocked && unsafe { libc::raise(last.as_raw()) } == 0;
        if raised {
            table.read();
            let (handler, ev) = table.take().unwrap();
            assert_eq!((handler, ev.signal), ('z', last));
        } else {
            // The library has no std, so neither has this test: the line goes straight to fd
            // 2 (past the harness's capture, which only std's print macros reach), names the
            // test itself, and starts on a line of its own whatever the harness wrote last.
            let mut line = heapless::String::<320>::new();
            writeln!(
                line,
                "\nSKIPPED: signal::tests::the_last_signal_is_blocked_watched_and_delivered: \
                 delivery of signal {}: pthread_sigmask accepted it but the mask holds no bit \
                 for it, or raise(3) refused it (an emulator that maps only the guest signals \
                 that fit in its host's)",
                last.as_raw()
            )
            .unwrap();
            rustix::io::write(rustix::stdio::stderr(), line.as_bytes()).unwrap();
        }
        unblock_one(last);
    }

    /// A signalfd record of the last signal (127 on MIPS) goes to the last handler: the
    /// table's parsing and indexing, with the record written to a pipe as the kernel writes
    /// it to a signalfd.
    #[test]
    fn a_record_of_the_last_signal_reaches_its_handler() {
        let (read, write) = rustix::pipe::pipe().unwrap();
        let mut record = [0u8; RECORD];
        let mut put = |at: usize, v: u32| record[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        put(
            offset_of!(libc::signalfd_siginfo, ssi_signo),
            MAX.unsigned_abs(),
        );
        put(offset_of!(libc::signalfd_siginfo, ssi_pid), 7);
        put(offset_of!(libc::signalfd_siginfo, ssi_uid), 1000);
        assert_eq!(rustix::io::write(&write, &record), Ok(RECORD));
        let mut table = SignalTable::<char>::new();
        table.fd = Some(read);
        table.mask = Signal::LAST.bit();
        table.handlers[COUNT - 1] = Some('z');
        table.read();
        let (handler, ev) = table.take().unwrap();
        assert_eq!(
            (handler, ev.signal, ev.pid, ev.uid),
            ('z', Signal::LAST, 7, 1000)
        );
        assert_eq!(table.take(), None);
    }
}
