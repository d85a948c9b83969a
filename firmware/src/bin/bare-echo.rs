//! The same echo daemon written directly on rustix's epoll, without picosel: the baseline
//! for the size picosel adds (see the README's "Raspberry Pi" section).
//!
//! Usage and behaviour as `echo-daemon`.

#![no_std]
#![no_main]
// MIPS inline assembly (src/start.rs, rustix's system calls) is nightly-only.
#![cfg_attr(target_arch = "mips", feature(asm_experimental_arch))]

#[path = "../common.rs"]
mod common;
#[path = "../start.rs"]
mod start;

use common::{Conn, Want, MAX_CONNS};
use core::ffi::{c_char, c_int};
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::fd::OwnedFd;

/// The event data of the listener; connections use their slot, `0..MAX_CONNS`.
const LISTENER: u64 = u64::MAX;

/// Runs the daemon; `_start` (start.rs) exits with what it returns.
fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let Some(addr) = common::address(argc, argv) else {
        return common::EXIT_USAGE;
    };
    let Ok(listener) = common::listen(&addr) else {
        return common::EXIT_OS;
    };
    let Ok(epfd) = epoll::create(CreateFlags::CLOEXEC) else {
        return common::EXIT_OS;
    };
    if epoll::add(
        &epfd,
        &listener,
        EventData::new_u64(LISTENER),
        EventFlags::IN,
    )
    .is_err()
    {
        return common::EXIT_OS;
    }
    let mut conns: [Option<Conn>; MAX_CONNS] = [const { None }; MAX_CONNS];
    let mut events = [Event {
        flags: EventFlags::empty(),
        data: EventData::new_u64(0),
    }; MAX_CONNS + 1];
    common::announce(&listener);
    loop {
        let n = match epoll::wait(&epfd, &mut events[..], None) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => 0,
            Err(_) => return common::EXIT_OS,
        };
        for e in events.iter().take(n) {
            let data = e.data.u64();
            if data == LISTENER {
                accept(&epfd, &listener, &mut conns);
            } else if let Some(slot) = usize::try_from(data).ok().and_then(|i| conns.get_mut(i)) {
                serve(&epfd, data, slot);
            }
        }
    }
}

/// Accepts every pending connection into a free slot; one with no free slot is closed.
fn accept(epfd: &OwnedFd, listener: &OwnedFd, conns: &mut [Option<Conn>]) {
    while let Some(fd) = common::accept(listener) {
        let Some((i, slot)) = conns.iter_mut().enumerate().find(|(_, c)| c.is_none()) else {
            continue; // full: `fd` drops here and is closed
        };
        if epoll::add(epfd, &fd, EventData::new_u64(i as u64), EventFlags::IN).is_ok() {
            *slot = Some(Conn::new(fd));
        }
    }
}

/// Echoes what a ready connection has, then waits for what it needs next.
fn serve(epfd: &OwnedFd, data: u64, slot: &mut Option<Conn>) {
    let Some(conn) = slot else { return };
    let before = conn.want;
    let after = conn.pump();
    let flags = match after {
        Want::Read => EventFlags::IN,
        Want::Write => EventFlags::OUT,
        Want::Close => {
            let _ = epoll::delete(epfd, &conn.fd);
            *slot = None;
            return;
        }
    };
    if after != before && epoll::modify(epfd, &conn.fd, EventData::new_u64(data), flags).is_err() {
        let _ = epoll::delete(epfd, &conn.fd);
        *slot = None;
    }
}
