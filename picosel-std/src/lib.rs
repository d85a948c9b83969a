//! std adapters for [picosel](https://docs.rs/picosel): what a daemon built on std wants from
//! picosel that needs std itself.
//!
//! picosel is `#![no_std]` and never links std or alloc, in any build: every call it makes is
//! a syscall on memory it was given. Three conveniences for programs that do have std need it,
//! so they live here instead:
//!
//! - [`io_error`] and [`IoResultExt::io`]: a picosel [`Error`](picosel::Error) as a
//!   [`std::io::Error`] (an OS error keeps its errno; the others box their message, which
//!   allocates). The orphan rule keeps `From<picosel::Error> for io::Error` out of any crate
//!   but picosel, hence a function and an extension trait. A `main` that returns
//!   `Result<(), Box<dyn std::error::Error>>` needs neither: `?` takes picosel's errors as
//!   they are.
//! - [`NotifierEnvExt::from_env`]: [`Notifier::from_env()`](picosel::Notifier), reading
//!   `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` through `std::env`, which
//!   allocates. picosel's own [`Notifier::from_vars`](picosel::Notifier::from_vars) takes the
//!   values.
//! - [`CommandSignalsExt::unblock_signals`] (feature `signal`, on by default): a
//!   [`std::process::Command`] child that starts without the signals picosel blocked, by
//!   [`picosel::unblock_signals_for_exec`] in `pre_exec`.
//!
//! # Examples
//!
//! ```
//! use picosel::{DefaultSelector, Interest, Notifier};
//! use picosel_std::{IoResultExt as _, NotifierEnvExt as _};
//!
//! // `?` on picosel's errors where a function returns `std::io::Result`:
//! fn watch(sel: &mut DefaultSelector<(), 4>, fd: i32) -> std::io::Result<()> {
//!     sel.register(fd, Interest::READ, ()).io()?;
//!     Ok(())
//! }
//! let err = watch(&mut DefaultSelector::new(), -1).unwrap_err();
//! assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
//!
//! // Disabled when no service manager set $NOTIFY_SOCKET.
//! let notifier = Notifier::from_env().io()?;
//! notifier.ready().io()?;
//! # Ok::<(), std::io::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "signal")]
mod command;
mod error;
mod notify;

#[cfg(feature = "signal")]
pub use command::CommandSignalsExt;
pub use error::{io_error, IoResultExt};
pub use notify::NotifierEnvExt;
