//! A firmware-grade TCP echo daemon on picosel: `#![no_std]`, `#![no_main]`, no heap.
//!
//! Usage: `echo-daemon [IP:PORT | PORT]` (default 127.0.0.1:7878; port 0 picks a free one).
//! Prints `listening on IP:PORT`, then echoes every connection until killed.
//!
//! One [`DefaultSelector`] (epoll) watches the listener and up to [`MAX_CONNS`] connections;
//! each key's data is the connection's slot, and the batch's `events.selector()` lends the
//! selector out to register accepted connections and to switch a connection between reading
//! and writing. All state is on `main`'s stack: about 9 KiB.

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
use picosel::{DefaultSelector, Interest};

/// The key data of the listener; connections use their slot, `0..MAX_CONNS`.
const LISTENER: u8 = u8::MAX;

type Sel = DefaultSelector<u8, { MAX_CONNS + 1 }>;

/// Runs the daemon; `_start` (start.rs) exits with what it returns.
fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let Some(addr) = common::address(argc, argv) else {
        return common::EXIT_USAGE;
    };
    let Ok(listener) = common::listen(&addr) else {
        return common::EXIT_OS;
    };
    let mut sel = Sel::new();
    if sel.register(&listener, Interest::READ, LISTENER).is_err() {
        return common::EXIT_OS;
    }
    let mut conns: [Option<Conn>; MAX_CONNS] = [const { None }; MAX_CONNS];
    common::announce(&listener);
    loop {
        let Ok(mut events) = sel.select(None) else {
            return common::EXIT_OS;
        };
        while let Some((key, _ready)) = events.next() {
            let sel = events.selector();
            if key.data() == LISTENER {
                accept(sel, &listener, &mut conns);
            } else if let Some(slot) = conns.get_mut(usize::from(key.data())) {
                serve(sel, key.data(), slot);
            }
        }
    }
}

/// Accepts every pending connection into a free slot; one with no free slot is closed.
fn accept(sel: &mut Sel, listener: &rustix::fd::OwnedFd, conns: &mut [Option<Conn>]) {
    while let Some(fd) = common::accept(listener) {
        let Some((i, slot)) = conns.iter_mut().enumerate().find(|(_, c)| c.is_none()) else {
            continue; // full: `fd` drops here and is closed
        };
        // `i < MAX_CONNS <= u8::MAX`, so the slot fits the key data.
        if sel.register(&fd, Interest::READ, i as u8).is_ok() {
            *slot = Some(Conn::new(fd));
        }
    }
}

/// Echoes what a ready connection has, then waits for what it needs next.
fn serve(sel: &mut Sel, data: u8, slot: &mut Option<Conn>) {
    let Some(conn) = slot else { return };
    let before = conn.want;
    let after = conn.pump();
    let interest = match after {
        Want::Read => Interest::READ,
        Want::Write => Interest::WRITE,
        Want::Close => {
            let _ = sel.unregister(&conn.fd);
            *slot = None; // closes the fd, after it is unregistered
            return;
        }
    };
    if after != before && sel.modify(&conn.fd, interest, data).is_err() {
        let _ = sel.unregister(&conn.fd);
        *slot = None;
    }
}
