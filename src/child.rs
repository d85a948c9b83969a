//! [`ChildWatch`]: a child process watched through its pidfd, registered with the loop as any
//! fd, and reaped without blocking once it ended; [`ChildExit`] and [`ExitStatus`]: what it
//! ended with.
//!
//! A pidfd (`pidfd_open(2)`, Linux 5.3) is an fd that refers to one process: it polls readable
//! once the process ended, and `waitid(2)` with `P_PIDFD` (Linux 5.4) reaps that very process.
//! Unlike SIGCHLD, which says only that *some* child changed, and unlike a pid, which the
//! kernel hands to another process once the first is reaped, the pidfd names one child for
//! as long as it is open. So a child is watched with an ordinary registration and an ordinary
//! [`IoHandler`](crate::IoHandler), and nothing else in the process has to give up its own
//! children (no `waitpid(-1)` reaping loop).
//!
//! # References
//! - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
//! - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html), `P_PIDFD`
//! - [pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)

use crate::error::{Error, Result};
#[cfg(feature = "signal")]
use crate::signal::Signal;
use core::fmt;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, WaitId, WaitIdOptions, WaitIdStatus};

/// How a child process ended.
///
/// # Examples
///
/// ```
/// use picosel::ExitStatus;
///
/// assert!(ExitStatus::Exited(0).success());
/// assert_eq!(ExitStatus::Exited(3).code(), Some(3));
/// let killed = ExitStatus::Signaled { signo: 9, core_dumped: false };
/// assert_eq!(killed.code(), None);
/// assert_eq!(killed.signo(), Some(9));
/// # #[cfg(feature = "signal")]
/// assert_eq!(killed.to_string(), "killed by SIGKILL");
/// # #[cfg(not(feature = "signal"))]
/// # assert_eq!(killed.to_string(), "killed by signal 9");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It exited (returned from `main`, called exit(3) or `_exit(2)`) with this code, 0 to
    /// 255: the kernel keeps the low 8 bits of the value passed to `_exit`.
    Exited(i32),
    /// A signal ended it: `signo` is the signal's number, and `core_dumped` tells whether the
    /// kernel wrote a core dump (SIGSEGV, SIGABRT and others, when `ulimit -c` allows).
    Signaled {
        /// The number of the signal that ended it.
        signo: i32,
        /// Whether a core dump was written.
        core_dumped: bool,
    },
}

impl ExitStatus {
    /// Whether it exited with code 0.
    ///
    /// ```
    /// use picosel::ExitStatus;
    /// assert!(ExitStatus::Exited(0).success());
    /// assert!(!ExitStatus::Exited(1).success());
    /// ```
    #[must_use]
    pub const fn success(self) -> bool {
        matches!(self, ExitStatus::Exited(0))
    }

    /// The exit code, if it exited rather than being killed by a signal.
    ///
    /// ```
    /// use picosel::ExitStatus;
    /// assert_eq!(ExitStatus::Exited(7).code(), Some(7));
    /// ```
    #[must_use]
    pub const fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(code) => Some(code),
            ExitStatus::Signaled { .. } => None,
        }
    }

    /// The number of the signal that ended it, if one did.
    ///
    /// ```
    /// use picosel::ExitStatus;
    /// let s = ExitStatus::Signaled { signo: 15, core_dumped: false };
    /// assert_eq!(s.signo(), Some(15));
    /// assert_eq!(ExitStatus::Exited(0).signo(), None);
    /// ```
    #[must_use]
    pub const fn signo(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(_) => None,
            ExitStatus::Signaled { signo, .. } => Some(signo),
        }
    }

    /// The signal that ended it, if one did (feature `signal`).
    ///
    /// ```
    /// use picosel::{ExitStatus, Signal};
    /// let s = ExitStatus::Signaled { signo: Signal::TERM.as_raw(), core_dumped: false };
    /// assert_eq!(s.signal(), Some(Signal::TERM));
    /// ```
    #[cfg(feature = "signal")]
    #[must_use]
    pub const fn signal(self) -> Option<Signal> {
        match self.signo() {
            Some(signo) => Signal::from_raw(signo),
            None => None,
        }
    }

    /// What `waitid(2)` reported, if the child has ended: `None` for a status that is not an
    /// end (only `WEXITED` is asked for, so none is expected).
    fn from_waitid(status: &WaitIdStatus) -> Option<ExitStatus> {
        if let Some(code) = status.exit_status() {
            return Some(ExitStatus::Exited(code));
        }
        let signo = status.terminating_signal()?;
        Some(ExitStatus::Signaled {
            signo,
            core_dumped: status.dumped(),
        })
    }
}

/// `exited with 0`, `killed by SIGTERM`, `killed by SIGSEGV (core dumped)`; without the
/// `signal` feature the signal shows as its number (`killed by signal 15`).
///
/// ```
/// use picosel::ExitStatus;
/// assert_eq!(ExitStatus::Exited(2).to_string(), "exited with 2");
/// let s = ExitStatus::Signaled { signo: 11, core_dumped: true };
/// # #[cfg(feature = "signal")]
/// assert_eq!(s.to_string(), "killed by SIGSEGV (core dumped)");
/// # #[cfg(not(feature = "signal"))]
/// # assert_eq!(s.to_string(), "killed by signal 11 (core dumped)");
/// ```
impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Exited(code) => write!(f, "exited with {code}"),
            ExitStatus::Signaled { signo, core_dumped } => {
                #[cfg(feature = "signal")]
                match Signal::from_raw(signo) {
                    Some(sig) => write!(f, "killed by {sig}")?,
                    None => write!(f, "killed by signal {signo}")?,
                }
                #[cfg(not(feature = "signal"))]
                write!(f, "killed by signal {signo}")?;
                if core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

/// A child that ended and was reaped: its pid and how it ended.
///
/// # Examples
///
/// ```
/// use picosel::{ChildWatch, ExitStatus};
/// # use std::time::Duration;
///
/// let child = std::process::Command::new("false").spawn().unwrap();
/// let mut watch = ChildWatch::open(child.id()).unwrap();
/// # let exit = loop {
/// #     if let Some(e) = watch.reap().unwrap() { break e; }
/// #     std::thread::sleep(Duration::from_millis(1));
/// # };
/// // ... once the watch polls readable:
/// // let exit = watch.reap().unwrap().unwrap();
/// assert_eq!(exit.pid, child.id());
/// assert_eq!(exit.status, ExitStatus::Exited(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildExit {
    /// The child's process id, as `std::process::Child::id` gives it.
    pub pid: u32,
    /// How it ended.
    pub status: ExitStatus,
}

/// A child process watched through its pidfd: register it with the loop for
/// [`Interest::READ`](crate::Interest::READ) and call [`reap`](Self::reap) when it is
/// readable.
///
/// The pidfd polls readable once the child ended; `reap` then collects its exit status
/// (`waitid(2)` on the pidfd), so the kernel frees the child's process-table entry: no zombie is
/// left. The watch owns the pidfd and closes it when dropped; dropping it neither kills nor
/// reaps the child, which then stays a zombie once it ends, until this process ends.
///
/// Each watched child takes **one registration of the loop's `N`** (or of the selector's),
/// like any fd, and one fd of the process's limit (`RLIMIT_NOFILE`) while the watch lives.
/// A supervisor of `K` helpers needs `N >= K` plus its other fds.
///
/// # The order to follow
///
/// 1. Spawn (with std: `picosel-std`'s `Command::unblock_signals`, without it
///    `picosel::unblock_signals_for_exec` in the child, when the loop blocks signals, so the
///    child does not inherit a blocked SIGTERM), then [`open`](Self::open) the watch right
///    away.
/// 2. Register it for `READ`, level-triggered (the default).
/// 3. In the handler, [`reap`](Self::reap): `Ok(Some(exit))` is the end; `Ok(None)` means
///    not ended yet (a spurious wake-up), keep waiting.
/// 4. After the end, unregister, then drop the watch. The pidfd stays readable for good, so a
///    level-triggered registration left in place would call the handler on every turn.
///
/// Reap and signal through the watch only. A pid is recycled once its process is reaped, so
/// after the watch reaped it, `std::process::Child::kill` would send SIGKILL to whatever
/// process got that number next (and `Child::wait` fails with ECHILD). The watch's
/// [`send_signal`](Self::send_signal) names the process by pidfd and can never reach another.
///
/// A process whose SIGCHLD is set to `SIG_IGN` (or `SA_NOCLDWAIT`) has its children reaped by
/// the kernel as they end, with no status to collect: `reap` then fails with `ECHILD`.
///
/// # Size
///
/// The pidfd, the pid and the cached status: 16 bytes on every target (`tests/child.rs`
/// checks it).
///
/// # Examples
///
/// A loop that runs until its helper ends, and tells how it ended:
///
/// ```
/// use picosel::{ChildExit, ChildWatch, DefaultEventLoop, ExitStatus, Interest, IoEvent};
/// use std::process::Command;
///
/// struct Ctx {
///     helper: Option<ChildWatch>,
///     ended: Option<ChildExit>,
/// }
/// type Loop = DefaultEventLoop<Ctx, 1, 0>;
///
/// fn on_helper_end(ev: &mut Loop, io: IoEvent) {
///     let Some(helper) = ev.context_mut().helper.as_mut() else { return };
///     match helper.reap() {
///         Ok(None) => return, // not ended yet
///         Ok(Some(exit)) => ev.context_mut().ended = Some(exit),
///         Err(e) => eprintln!("cannot reap: {e}"),
///     }
///     // Unregister first, then close: the pidfd stays readable for good.
///     ev.unregister(io.fd).unwrap();
///     ev.context_mut().helper = None;
///     ev.stop();
/// }
///
/// let child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
/// let helper = ChildWatch::open(child.id()).unwrap();
/// let mut ev = Loop::new(Ctx { helper: Some(helper), ended: None });
/// ev.register_with(|c| c.helper.as_ref().unwrap(), Interest::READ, 0, on_helper_end)
///     .unwrap();
/// ev.run().unwrap();
/// let exit = ev.context().ended.unwrap();
/// assert_eq!(exit.pid, child.id());
/// assert_eq!(exit.status, ExitStatus::Exited(3));
/// ```
///
/// # References
/// - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
/// - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html), `P_PIDFD`
#[derive(Debug)]
pub struct ChildWatch {
    fd: OwnedFd,
    pid: u32,
    /// Set once reaped: the kernel forgets the status then, so the watch keeps it.
    ended: Option<ExitStatus>,
}

impl ChildWatch {
    /// Opens a pidfd for child `pid` (`pidfd_open(2)`) and checks that this process can reap it
    /// (a `waitid(2)` that neither blocks nor reaps). Two syscalls; the pidfd is close-on-exec,
    /// so helpers spawned later do not inherit it.
    ///
    /// Open it while the child is not yet reaped: until then its pid cannot be reused, even if
    /// it has ended already (a zombie); the watch then polls readable at once. A
    /// `std::process::Child` is never reaped by std unless asked (`wait`, `try_wait`,
    /// `output`, `status`), so `ChildWatch::open(child.id())` right after `spawn` is safe.
    ///
    /// # Errors
    /// - [`Error::Unsupported`]: the kernel is older than Linux 5.4 (`pidfd_open(2)` came in
    ///   5.3 and answers `ENOSYS` before; waitid's `P_PIDFD` came in 5.4 and 5.3 answers
    ///   `EINVAL`). Nothing is left open.
    /// - [`Error::Os`] with `ESRCH`: no such process (or `pid` is 0 or above `i32::MAX`);
    ///   `ECHILD`: a process that is not a child of this one (only the parent can reap);
    ///   `EMFILE`: the fd limit; `EPERM`: a seccomp filter forbids the call.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{ChildWatch, Errno, Error};
    ///
    /// let child = std::process::Command::new("true").spawn().unwrap();
    /// let watch = ChildWatch::open(child.id()).unwrap();
    /// assert_eq!(watch.pid(), child.id());
    ///
    /// // Process 1 exists, but is not our child.
    /// assert_eq!(ChildWatch::open(1).unwrap_err(), Error::Os(Errno::CHILD));
    /// # let mut watch = watch;
    /// # while watch.reap().unwrap().is_none() { std::thread::yield_now(); }
    /// ```
    ///
    /// # References
    /// - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
    #[doc(alias = "pidfd_open")]
    pub fn open(pid: u32) -> Result<ChildWatch> {
        let raw = i32::try_from(pid).map_err(|_| Error::Os(Errno::SRCH))?;
        let id = Pid::from_raw(raw).ok_or(Error::Os(Errno::SRCH))?;
        let fd = rustix::process::pidfd_open(id, PidfdFlags::empty()).map_err(open_error)?;
        // WNOWAIT leaves an ended child waitable, so this only asks: a child of ours? And a
        // kernel that knows P_PIDFD? The fd is closed (dropped) if not.
        let probe = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        rustix::process::waitid(WaitId::PidFd(fd.as_fd()), probe).map_err(waitid_error)?;
        Ok(ChildWatch {
            fd,
            pid,
            ended: None,
        })
    }

    /// The child's process id.
    ///
    /// ```
    /// # use picosel::ChildWatch;
    /// let child = std::process::Command::new("true").spawn().unwrap();
    /// let watch = ChildWatch::open(child.id()).unwrap();
    /// assert_eq!(watch.pid(), child.id());
    /// # let mut watch = watch;
    /// # while watch.reap().unwrap().is_none() { std::thread::yield_now(); }
    /// ```
    #[must_use]
    pub const fn pid(&self) -> u32 {
        self.pid
    }

    /// Reaps the child if it has ended: `Ok(Some(exit))` with how it ended, and the kernel
    /// frees its process-table entry (no zombie); `Ok(None)` if it is still running. Never
    /// blocks: one `waitid(2)` with `WNOHANG`.
    ///
    /// Once reaped, every later call returns the same `Some(exit)` again, without a syscall.
    ///
    /// # Errors
    /// [`Error::Os`] with `ECHILD` if something else reaped the child first (a
    /// `waitpid(-1)` elsewhere in the process, `Child::wait`, or SIGCHLD set to `SIG_IGN`):
    /// its status is then gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{ChildWatch, ExitStatus};
    ///
    /// let mut child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    /// let mut watch = ChildWatch::open(child.id()).unwrap();
    /// assert_eq!(watch.reap().unwrap(), None); // still running
    /// child.kill().unwrap(); // not reaped yet: the pid is still this child's
    /// # let exit = loop {
    /// #     if let Some(e) = watch.reap().unwrap() { break e; }
    /// #     std::thread::yield_now();
    /// # };
    /// // ... once the watch polls readable:
    /// // let exit = watch.reap().unwrap().unwrap();
    /// assert_eq!(exit.status, ExitStatus::Signaled { signo: 9, core_dumped: false });
    /// // Reaped: no zombie in /proc.
    /// assert!(!std::path::Path::new(&format!("/proc/{}", child.id())).exists());
    /// ```
    ///
    /// # References
    /// - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html), `P_PIDFD`
    #[doc(alias = "waitid")]
    pub fn reap(&mut self) -> Result<Option<ChildExit>> {
        if self.ended.is_none() {
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
            let status = rustix::process::waitid(WaitId::PidFd(self.fd.as_fd()), options)?;
            self.ended = status.as_ref().and_then(ExitStatus::from_waitid);
        }
        Ok(self.ended.map(|status| ChildExit {
            pid: self.pid,
            status,
        }))
    }

    /// How the child ended, once [`reap`](Self::reap) reaped it; `None` before.
    ///
    /// ```
    /// # use picosel::{ChildWatch, ExitStatus};
    /// let child = std::process::Command::new("true").spawn().unwrap();
    /// let mut watch = ChildWatch::open(child.id()).unwrap();
    /// assert_eq!(watch.ended(), None);
    /// while watch.reap().unwrap().is_none() {
    ///     std::thread::yield_now(); // a loop waits for READ instead
    /// }
    /// assert_eq!(watch.ended(), Some(ExitStatus::Exited(0)));
    /// ```
    #[must_use]
    pub const fn ended(&self) -> Option<ExitStatus> {
        self.ended
    }

    /// Sends `signal` to the child through its pidfd (`pidfd_send_signal(2)`, Linux 5.1;
    /// feature `signal`). Unlike kill(2) with the pid, this cannot reach another process that
    /// was given the pid after the child was reaped.
    ///
    /// A child that ended but is not yet reaped still takes the signal (it is ignored).
    ///
    /// # Errors
    /// - [`Error::Os`] with `ESRCH` once the child is reaped;
    /// - [`Error::Unsupported`] for a real-time signal (`SIGRTMIN` and above), which rustix
    ///   sends only through an `unsafe` call, and on a kernel older than 5.1;
    /// - [`Error::Os`] with `EPERM` if the child changed to a user this process may not signal.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{ChildWatch, ExitStatus, Signal};
    ///
    /// let child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    /// let mut watch = ChildWatch::open(child.id()).unwrap();
    /// watch.send_signal(Signal::TERM).unwrap();
    /// # while watch.reap().unwrap().is_none() { std::thread::yield_now(); }
    /// // ... once the watch polls readable and is reaped:
    /// let expected = ExitStatus::Signaled { signo: Signal::TERM.as_raw(), core_dumped: false };
    /// assert_eq!(watch.ended(), Some(expected));
    /// ```
    ///
    /// # References
    /// - [pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)
    #[cfg(feature = "signal")]
    #[doc(alias = "pidfd_send_signal")]
    pub fn send_signal(&self, signal: Signal) -> Result<()> {
        let named = rustix::process::Signal::from_named_raw(signal.as_raw());
        let sig = named.ok_or(Error::Unsupported)?;
        rustix::process::pidfd_send_signal(&self.fd, sig).map_err(open_error)
    }
}

/// The pidfd, for [`register`](crate::EventLoop::register) and
/// [`register_with`](crate::EventLoop::register_with).
///
/// ```
/// use picosel::{ChildWatch, DefaultSelector, Interest};
///
/// let child = std::process::Command::new("true").spawn().unwrap();
/// let mut watch = ChildWatch::open(child.id()).unwrap();
/// let mut sel = DefaultSelector::<(), 1>::new();
/// sel.register(&watch, Interest::READ, ()).unwrap();
/// let ready = sel.select(None).unwrap().count(); // waits until it ended
/// assert_eq!(ready, 1);
/// assert!(watch.reap().unwrap().unwrap().status.success());
/// sel.unregister(&watch).unwrap();
/// ```
impl AsFd for ChildWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `pidfd_open(2)` and `pidfd_send_signal(2)` do not exist before Linux 5.3 and 5.1: `ENOSYS`.
fn open_error(e: Errno) -> Error {
    if e == Errno::NOSYS {
        Error::Unsupported
    } else {
        Error::Os(e)
    }
}

/// `waitid(2)` takes `P_PIDFD` from Linux 5.4; Linux 5.3 has pidfds but answers `EINVAL` to
/// an idtype it does not know. The other `EINVAL` cases (bad options) cannot happen here: the
/// options are constants.
fn waitid_error(e: Errno) -> Error {
    if e == Errno::INVAL {
        Error::Unsupported
    } else {
        open_error(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_without_pidfds_is_unsupported() {
        assert_eq!(open_error(Errno::NOSYS), Error::Unsupported);
        assert_eq!(waitid_error(Errno::NOSYS), Error::Unsupported);
        assert_eq!(waitid_error(Errno::INVAL), Error::Unsupported);
    }

    #[test]
    fn other_errors_keep_their_errno() {
        for e in [Errno::SRCH, Errno::CHILD, Errno::MFILE, Errno::PERM] {
            assert_eq!(open_error(e), Error::Os(e));
            assert_eq!(waitid_error(e), Error::Os(e));
        }
        // EINVAL from pidfd_open is a bad pid or flags, not an old kernel.
        assert_eq!(open_error(Errno::INVAL), Error::Os(Errno::INVAL));
    }

    #[test]
    fn pids_that_name_no_process_are_refused_before_any_syscall() {
        assert_eq!(ChildWatch::open(0).unwrap_err(), Error::Os(Errno::SRCH));
        assert_eq!(
            ChildWatch::open(u32::MAX).unwrap_err(),
            Error::Os(Errno::SRCH)
        );
    }
}
