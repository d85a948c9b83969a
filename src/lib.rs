// The README is the guide, and its code blocks are doctests; they use the default features.
#![cfg_attr(all(feature = "std", feature = "signal"), doc = include_str!("../README.md"))]
#![cfg_attr(
    not(all(feature = "std", feature = "signal")),
    doc = "picosel: a `no_std`, heap-free I/O selector and event loop for Linux daemons on \
           small devices. The guide, with its examples, is built with the default features."
)]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(target_os = "linux", target_os = "android")))]
compile_error!(
    "picosel is for Linux and Android: it is built on epoll(7), signalfd(2), eventfd(2) and the \
     Linux poll/select semantics, which other systems (macOS, the BSDs, bare-metal MCUs) do not \
     have. On an MCU, use an executor for its interrupts (for example embassy) instead."
);

/// Applies the Linux/Android gate to each item, so that another OS gets the one
/// `compile_error!` above instead of errors from deep inside the OS crates.
macro_rules! on_linux {
    ($($item:item)*) => {
        $(
            #[cfg(any(target_os = "linux", target_os = "android"))]
            $item
        )*
    };
}

on_linux! {
    pub mod backend;
    mod batch;
    // waitid's P_PIDFD is Linux's; rustix offers it on Linux only (not Android).
    #[cfg(target_os = "linux")]
    mod child;
    mod clock;
    mod error;
    mod event_loop;
    mod interest;
    mod key;
    mod notify;
    mod registry;
    mod selector;
    #[cfg(feature = "signal")]
    mod signal;
    mod slots;
    mod time;
    mod timeout;
    mod timer;
    mod token;
    mod waker;
    mod wall;
    mod watchdog;

    pub use backend::{Epoll, Poll, Select};
    #[cfg(target_os = "linux")]
    pub use child::{ChildExit, ChildWatch, ExitStatus};
    #[cfg(feature = "sim")]
    pub use backend::sim::Sim;
    pub use clock::{Clock, Monotonic, VirtualClock};
    pub use error::{Errno, Error, Result};
    pub use event_loop::event::{IoEvent, TimerEvent};
    #[cfg(feature = "signal")]
    pub use event_loop::SignalHandler;
    pub use event_loop::{
        DefaultEventLoop, EpollEventLoop, EventLoop, IoHandler, PollEventLoop, SelectEventLoop,
        TimerHandler, VirtualEventLoop, WakeHandler,
    };
    #[cfg(feature = "sim")]
    pub use event_loop::SimEventLoop;
    pub use interest::{Interest, Mode, Ready};
    pub use key::{SelectorKey, Source};
    pub use notify::Notifier;
    pub use rustix::fd::RawFd;
    pub use selector::{
        DefaultSelector, EpollSelector, Events, PollSelector, SelectSelector, Selector,
    };
    #[cfg(feature = "signal")]
    pub use signal::{block_signals, unblock_signals_for_exec, Signal, SignalEvent};
    pub use time::Instant;
    pub use timer::{Expired, TimerId, Timers};
    pub use waker::Waker;
    pub use wall::{wall_now, ClockSetWatch, Daily};
    pub use watchdog::WatchdogDevice;
}
