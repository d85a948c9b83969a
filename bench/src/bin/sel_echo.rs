//! The floor's echo server again, line for line, but on picosel's [`Selector`] instead of raw
//! epoll: it isolates the cost of the selector layer (registry lookup, token check, masking)
//! from that of the event loop used by the root crate's `echo_server` example.
//!
//! ```text
//! sel_echo [--backend epoll|poll|select] [--quiet] ADDR   # prints "listening on ADDR"
//! ```

use picosel::backend::Backend;
use picosel::{Epoll, Interest, Poll, Ready, Select, Selector};
use picosel_bench::ServerArgs;
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::SocketFlags;
use std::io::Write;
use std::process::ExitCode;

/// Capacity: the listener and up to 1023 connections (select's FD_SETSIZE allows no more).
const N: usize = 1024;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Listener,
    Conn,
}

fn serve<B: Backend>(args: &ServerArgs, lfd: OwnedFd) -> ExitCode {
    let mut sel: Box<Selector<B, Kind, N>> = Box::new(Selector::new());
    if let Err(e) = sel.register(&lfd, Interest::READ, Kind::Listener) {
        eprintln!("sel_echo: register listener: {e}");
        return ExitCode::from(1);
    }
    let mut conns: Vec<Option<OwnedFd>> = Vec::new();
    let mut parked: Vec<Vec<u8>> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let mut events = match sel.select(None) {
            Ok(ev) => ev,
            Err(e) => {
                eprintln!("sel_echo: select: {e}");
                return ExitCode::from(1);
            }
        };
        while let Some((key, ready)) = events.next() {
            if let Kind::Listener = key.data() {
                while let Ok(c) =
                    rustix::net::accept_with(&lfd, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
                {
                    let i = c.as_raw_fd() as usize;
                    let _ = rustix::net::sockopt::set_tcp_nodelay(&c, true);
                    // Full table or fd >= 1024 on select: drop the connection, keep serving.
                    if events
                        .selector()
                        .register(&c, Interest::READ, Kind::Conn)
                        .is_err()
                    {
                        continue;
                    }
                    if conns.len() <= i {
                        conns.resize_with(i + 1, || None);
                        parked.resize_with(i + 1, Vec::new);
                    }
                    if !args.quiet {
                        eprintln!("accepted fd {i}");
                    }
                    conns[i] = Some(c);
                }
                continue;
            }
            let i = key.fd() as usize;
            let Some(Some(c)) = conns.get(i) else {
                continue;
            };
            let mut close = false;
            if !parked[i].is_empty() {
                if ready.contains(Ready::WRITE) {
                    match rustix::io::write(c, &parked[i]) {
                        Ok(w) => {
                            parked[i].drain(..w);
                            if parked[i].is_empty() {
                                let _ = events.selector().modify(c, Interest::READ, Kind::Conn);
                            }
                        }
                        Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                        Err(_) => close = true,
                    }
                } else if ready.intersects(Ready::HUP | Ready::ERROR) {
                    close = true;
                }
            } else {
                match rustix::io::read(c, &mut buf) {
                    Ok(0) => close = true,
                    Ok(r) => match rustix::io::write(c, &buf[..r]) {
                        Ok(w) if w == r => {}
                        Ok(w) => {
                            parked[i].extend_from_slice(&buf[w..r]);
                            let _ = events.selector().modify(c, Interest::WRITE, Kind::Conn);
                        }
                        Err(Errno::AGAIN) => {
                            parked[i].extend_from_slice(&buf[..r]);
                            let _ = events.selector().modify(c, Interest::WRITE, Kind::Conn);
                        }
                        Err(_) => close = true,
                    },
                    Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                    Err(_) => close = true,
                }
            }
            if close {
                let _ = events.selector().unregister(key.fd());
                conns[i] = None;
                parked[i].clear();
                if !args.quiet {
                    eprintln!("closed fd {i}");
                }
            }
        }
    }
}

fn run(args: &ServerArgs, lfd: OwnedFd) -> ExitCode {
    match args.backend.as_str() {
        "epoll" => serve::<Epoll>(args, lfd),
        "poll" => serve::<Poll>(args, lfd),
        "select" => serve::<Select>(args, lfd),
        other => {
            eprintln!("sel_echo: unknown backend {other}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let args = match ServerArgs::parse("sel_echo") {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    picosel_bench::raise_nofile();
    // `--threads T`: T event loops on T threads, each with its own selector and its own
    // listening socket on the same port (SO_REUSEPORT), sharing nothing.
    let (mut socks, local) = match picosel_bench::listeners(args.addr, args.threads.clamp(1, 64)) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("sel_echo: listen on {}: {e}", args.addr);
            return ExitCode::from(1);
        }
    };
    println!("listening on {local}");
    let _ = std::io::stdout().flush();
    let Some(first) = socks.pop() else {
        return ExitCode::from(1);
    };
    let args = std::sync::Arc::new(args);
    for lfd in socks {
        let a = args.clone();
        std::thread::spawn(move || run(&a, lfd));
    }
    run(&args, first)
}
