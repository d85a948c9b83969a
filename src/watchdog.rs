//! [`WatchdogDevice`]: a hardware watchdog (`/dev/watchdog`), petted from the loop and closed
//! with the kernel's magic `V` on a clean shutdown.
//!
//! The kernel's watchdog API (Documentation/watchdog/watchdog-api.rst) is three file
//! operations: opening the device starts the timer; every write restarts it (a "pet"); a write
//! holding a `V` followed by the close stops it ("magic close"). A close without the `V` leaves
//! it running, so the board resets when the timeout passes: which is what a crash, a kill or a
//! hang must lead to.

use crate::error::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// A hardware watchdog device, open for petting.
///
/// Opening the device arms the watchdog: from then on the board resets unless
/// [`pet`](Self::pet) is called more often than the device's timeout (set by its driver, often
/// 10 to 60 s; 15 s at most on a Raspberry Pi). Pet it from a periodic timer of the event
/// loop, not from a thread of its own: the pets then stop when the loop stops turning (a
/// handler stuck in a loop, a deadlock), and the board resets, which is the point of it.
///
/// [`close_cleanly`](Self::close_cleanly) disarms it on a clean shutdown. **Dropping it does
/// not**: the fd is closed without the magic `V`, the kernel logs "watchdog did not stop!" and
/// the timer keeps running. So a daemon that panics, is killed (SIGKILL, the OOM killer) or
/// returns early with an error leaves the watchdog armed, and the board resets unless a new
/// instance opens the device and pets it in time (systemd's `Restart=` is usually quick
/// enough).
///
/// A kernel built with `CONFIG_WATCHDOG_NOWAYOUT` (or a driver loaded with `nowayout=1`)
/// ignores the magic close: once opened, the watchdog can never be stopped.
///
/// Only one process may have the device open (`EBUSY` for the others). If systemd itself pets
/// it (`RuntimeWatchdogSec=` in system.conf) or a watchdog daemon runs, they hold it.
///
/// # Examples
///
/// A daemon's loop pets it on a timer and closes it cleanly when it stops (here a file stands
/// for the device):
///
/// ```
/// use picosel::{DefaultEventLoop, TimerEvent, WatchdogDevice};
/// use std::time::Duration;
///
/// struct Daemon {
///     /// `None` on a board without one, and once closed.
///     watchdog: Option<WatchdogDevice>,
///     pets: u32,
/// }
/// type Loop = DefaultEventLoop<Daemon, 2, 1>;
///
/// fn on_pet(ev: &mut Loop, _t: TimerEvent) {
///     let d = ev.context_mut();
///     if let Some(wd) = &d.watchdog {
///         let _ = wd.pet();
///     }
///     d.pets += 1;
///     if d.pets == 3 {
///         ev.stop();
///     }
/// }
///
/// # let path = std::env::temp_dir().join(format!("picosel-doc-wd-{}", std::process::id()));
/// # std::fs::write(&path, b"").unwrap();
/// let device = path.as_path(); // "/dev/watchdog" on the board
/// let mut ev = Loop::new(Daemon {
///     watchdog: Some(WatchdogDevice::open(device).unwrap()),
///     pets: 0,
/// });
/// ev.add_periodic(Duration::from_millis(5), 0, on_pet).unwrap();
/// ev.run().unwrap();
/// // Stopped cleanly: disarm it. (On an error return, leave it armed.)
/// if let Some(wd) = ev.context_mut().watchdog.take() {
///     wd.close_cleanly().unwrap();
/// }
/// assert_eq!(std::fs::read(&path).unwrap(), b"\0\0\0V");
/// # std::fs::remove_file(&path).unwrap();
/// ```
///
/// # References
/// - [The Linux Watchdog driver API](https://docs.kernel.org/watchdog/watchdog-api.html)
#[derive(Debug)]
pub struct WatchdogDevice {
    fd: OwnedFd,
}

impl WatchdogDevice {
    /// Opens the watchdog device at `path` (`O_WRONLY | O_CLOEXEC`), which arms it. The path
    /// is any of rustix's path types: `&str`, `&CStr`, `&[u8]`, and with `std`, `&Path`;
    /// under 256 bytes it is made NUL-terminated on the stack.
    ///
    /// Any writable file opens: a regular file or a FIFO stands for the device in tests (a
    /// FIFO's open waits for a reader, as `open(2)` does).
    ///
    /// # Errors
    /// [`Error::Os`]: the kernel's refusal. `ENOENT`: no watchdog driver is loaded
    /// (`modprobe bcm2835_wdt` on a Raspberry Pi, `softdog` elsewhere); `EACCES`: the device is
    /// root's; `EBUSY`: another process holds it (systemd's `RuntimeWatchdogSec=`, a watchdog
    /// daemon).
    ///
    /// # Examples
    ///
    /// ```
    /// use picosel::{Errno, Error, WatchdogDevice};
    ///
    /// let missing = WatchdogDevice::open("/nonexistent/watchdog");
    /// assert_eq!(missing.unwrap_err(), Error::Os(Errno::NOENT));
    /// ```
    pub fn open<P: rustix::path::Arg>(path: P) -> Result<WatchdogDevice> {
        let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(WatchdogDevice { fd })
    }

    /// Pets the watchdog: writes one byte (a NUL, as the kernel's documentation does), which
    /// restarts its timer. Never a `V`, which would arm the magic close.
    ///
    /// # Errors
    /// [`Error::Os`]: the write failed (the device went away: `ENODEV`).
    ///
    /// # Examples
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("picosel-doc-pet-{}", std::process::id()));
    /// # std::fs::write(&path, b"").unwrap();
    /// let wd = picosel::WatchdogDevice::open(path.as_path()).unwrap();
    /// wd.pet().unwrap();
    /// wd.pet().unwrap();
    /// drop(wd); // no magic close: a real watchdog stays armed
    /// assert_eq!(std::fs::read(&path).unwrap(), b"\0\0");
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn pet(&self) -> Result<()> {
        write_byte(self.fd.as_fd(), b'\0')
    }

    /// Stops the watchdog on a clean shutdown: writes the magic `V`, then closes the device.
    /// Call it last, once the loop has stopped and the daemon is sure to exit.
    ///
    /// # Errors
    /// [`Error::Os`]: the `V` could not be written. The device is closed all the same, without
    /// the magic close: the watchdog stays armed.
    ///
    /// # Examples
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("picosel-doc-close-{}", std::process::id()));
    /// # std::fs::write(&path, b"").unwrap();
    /// let wd = picosel::WatchdogDevice::open(path.as_path()).unwrap();
    /// wd.pet().unwrap();
    /// wd.close_cleanly().unwrap();
    /// assert_eq!(std::fs::read(&path).unwrap(), b"\0V");
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn close_cleanly(self) -> Result<()> {
        // The watchdog core remembers the `V` and stops the timer at the release that follows
        // (the drop of `self.fd` at the end of this function).
        write_byte(self.fd.as_fd(), b'V')
    }
}

impl AsFd for WatchdogDevice {
    /// The device's fd, for the driver's ioctls (`WDIOC_SETTIMEOUT`, `WDIOC_GETTIMELEFT`, …),
    /// which picosel does not wrap.
    ///
    /// ```
    /// use rustix::fd::AsFd;
    /// # let path = std::env::temp_dir().join(format!("picosel-doc-fd-{}", std::process::id()));
    /// # std::fs::write(&path, b"").unwrap();
    /// let wd = picosel::WatchdogDevice::open(path.as_path()).unwrap();
    /// assert!(rustix::fs::fstat(wd.as_fd()).is_ok());
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Writes one byte, again if a signal interrupted the write.
fn write_byte(fd: BorrowedFd<'_>, byte: u8) -> Result<()> {
    loop {
        match rustix::io::write(fd, &[byte]) {
            Ok(1) => return Ok(()),
            // A write of one byte that wrote none: the device took nothing.
            Ok(_) => return Err(Error::Os(Errno::IO)),
            Err(Errno::INTR) => {}
            Err(e) => return Err(Error::Os(e)),
        }
    }
}
