//! `Notifier::from_env()`: picosel's [`Notifier`] from this process's environment, through
//! `std::env` ([`NotifierEnvExt`]).

use picosel::Notifier;
use std::os::unix::ffi::OsStrExt;

mod sealed {
    pub trait Sealed {}
    impl Sealed for picosel::Notifier {}
}

/// [`Notifier::from_env()`](NotifierEnvExt::from_env): a `use` line away, the call reads as if
/// it were picosel's own.
///
/// Sealed: implemented for [`Notifier`] only.
///
/// # Examples
///
/// ```
/// use picosel::Notifier;
/// use picosel_std::NotifierEnvExt as _;
///
/// fn start_up() -> Result<Notifier, Box<dyn std::error::Error>> {
///     let notifier = Notifier::from_env()?; // disabled when $NOTIFY_SOCKET is unset
///     // ... start up, then:
///     notifier.ready()?;
///     Ok(notifier)
/// }
/// start_up().unwrap();
/// ```
pub trait NotifierEnvExt: sealed::Sealed + Sized {
    /// A notifier as the service manager asks for in this process's environment:
    /// `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`, by the rules of
    /// [`Notifier::from_vars`]. With `$NOTIFY_SOCKET` unset (the daemon was started from a
    /// shell, or by a manager that does not speak this protocol) it is
    /// [disabled](Notifier::disabled): nothing is sent and nothing fails.
    ///
    /// It reads the variables through `std::env`, which allocates while it runs (the values
    /// are copied out, then freed); call it once, at start-up. The notifications allocate
    /// nothing. The variables are left in place, so a child inherits them; `$WATCHDOG_PID`
    /// (systemd sets it) keeps the child from taking the keep-alives as its own.
    ///
    /// # Errors
    /// Those of [`Notifier::from_vars`]: a variable that is set but malformed, or no socket to
    /// be had.
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::Notifier;
    /// use picosel_std::NotifierEnvExt as _;
    ///
    /// let notifier = Notifier::from_env().unwrap();
    /// assert_eq!(notifier.is_enabled(), std::env::var_os("NOTIFY_SOCKET").is_some());
    /// ```
    ///
    /// # References
    /// - [sd_notify(3)](https://www.freedesktop.org/software/systemd/man/latest/sd_notify.html)
    #[doc(alias = "sd_notify")]
    fn from_env() -> picosel::Result<Self>;
}

impl NotifierEnvExt for Notifier {
    fn from_env() -> picosel::Result<Notifier> {
        let var = std::env::var_os;
        let (socket, usec, pid) = (
            var("NOTIFY_SOCKET"),
            var("WATCHDOG_USEC"),
            var("WATCHDOG_PID"),
        );
        Notifier::from_vars(
            socket.as_deref().map(OsStrExt::as_bytes),
            usec.as_deref().map(OsStrExt::as_bytes),
            pid.as_deref().map(OsStrExt::as_bytes),
            std::process::id(),
        )
    }
}
