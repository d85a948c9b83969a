#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
mod error;
mod interest;
mod key;
mod registry;
mod selector;
mod time;
mod timer;

pub use backend::{Epoll, Poll, Select};
pub use error::{Errno, Error, Result};
pub use interest::{Interest, Mode, Ready};
pub use key::{SelectorKey, Source};
pub use rustix::fd::RawFd;
pub use selector::{
    DefaultSelector, EpollSelector, Events, PollSelector, SelectSelector, Selector,
};
pub use time::Instant;
pub use timer::{Expired, TimerId, Timers};
