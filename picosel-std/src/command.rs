//! Helpers that stop on SIGTERM: [`CommandSignalsExt`], `std::process::Command` children
//! without the signals picosel blocked.

use std::io;
use std::os::unix::process::CommandExt as _;
use std::process::Command;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Command {}
}

/// Spawning helpers that stop on SIGTERM: `std::process::Command` with the signals picosel
/// blocked unblocked in the child (feature `signal`).
///
/// The signal mask is inherited through fork(2) and kept across execve(2) (signal(7)), and
/// `Command` passes it on unchanged (it stopped emptying it in 2022, rust-lang/rust#101077).
/// After [`picosel::block_signals`] or `EventLoop::add_signal`, a helper spawned plainly would
/// start with SIGTERM and SIGINT blocked: `kill -TERM` and Ctrl-C would not stop it.
///
/// Sealed: implemented for `std::process::Command` only.
///
/// # Examples
///
/// ```
/// use picosel::{block_signals, Signal};
/// use picosel_std::CommandSignalsExt as _;
/// use std::process::Command;
///
/// block_signals(&[Signal::TERM, Signal::INT]).unwrap();
/// // The helper starts with SIGTERM and SIGINT as they were before picosel blocked them.
/// let status = Command::new("true").unblock_signals().status().unwrap();
/// assert!(status.success());
/// ```
pub trait CommandSignalsExt: sealed::Sealed {
    /// Unblocks, in the child and before its program starts, the signals that
    /// [`picosel::block_signals`] and `EventLoop::add_signal` blocked (in any thread, as they
    /// stand when the child is spawned): [`picosel::unblock_signals_for_exec`] in `pre_exec`.
    /// A signal that was blocked already when picosel was asked stays blocked, so the child
    /// gets the mask the process had before.
    ///
    /// `pre_exec` makes std fork the child instead of using `posix_spawn(3)`; a failure to
    /// unblock fails the spawn with the C library's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{block_signals, Signal};
    /// use picosel_std::CommandSignalsExt as _;
    /// use std::process::Command;
    ///
    /// block_signals(&[Signal::TERM]).unwrap();
    /// let mut helper = Command::new("sleep");
    /// helper.arg("0").unblock_signals();
    /// assert!(helper.status().unwrap().success());
    /// ```
    ///
    /// # References
    /// - [signal(7)](https://man7.org/linux/man-pages/man7/signal.7.html), "Signal mask and
    ///   pending signals"
    fn unblock_signals(&mut self) -> &mut Self;
}

impl CommandSignalsExt for Command {
    #[allow(unsafe_code)]
    fn unblock_signals(&mut self) -> &mut Command {
        let unblock = || {
            picosel::unblock_signals_for_exec().map_err(|e| match e {
                // Not `io_error`: the box it makes for the other variants would allocate
                // between fork and exec. An OS error is a plain code.
                picosel::Error::Os(errno) => io::Error::from_raw_os_error(errno.raw_os_error()),
                _ => io::Error::from(io::ErrorKind::Other),
            })
        };
        // SAFETY: between fork and exec only async-signal-safe work is allowed (the child of a
        // multithreaded parent has one thread, and locks held by others stay held).
        // `unblock_signals_for_exec` is async-signal-safe (lock-free atomic loads, sigset_t
        // values on the stack, pthread_sigmask: signal-safety(7)), and the error mapping
        // allocates nothing (an OS io::Error and a bare ErrorKind are plain values).
        unsafe { self.pre_exec(unblock) }
    }
}
