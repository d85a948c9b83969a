//! The floor: a TCP echo server written directly on rustix's epoll, with no abstraction.
//!
//! ```text
//! floor_echo [--quiet] ADDR        # prints "listening on ADDR"; port 0 picks a free port
//! ```
//!
//! It does the least work an echo server can do, and is the speed limit the picosel servers are
//! measured against: level-triggered `EPOLLIN` on every connection, the fd number itself as the
//! epoll data, and per ready connection one `read` and one `write` (a level-triggered fd that
//! still has data is reported again by the next `epoll_wait`, so reading until `EAGAIN` would
//! only add a syscall). A short write parks the rest and waits for `EPOLLOUT`, reading nothing
//! more from that connection until it is flushed.

use picosel_bench::ServerArgs;
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::SocketFlags;
use std::io::Write;
use std::process::ExitCode;

const EVENTS: usize = 1024;

fn main() -> ExitCode {
    let args = match ServerArgs::parse("floor_echo") {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    picosel_bench::raise_nofile();
    let (lfd, local) = match picosel_bench::listeners(args.addr, 1) {
        Ok((mut v, a)) if !v.is_empty() => (v.remove(0), a),
        Ok(_) => return ExitCode::from(1),
        Err(e) => {
            eprintln!("floor_echo: listen on {}: {e}", args.addr);
            return ExitCode::from(1);
        }
    };
    let epfd = match epoll::create(CreateFlags::CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("floor_echo: epoll_create: {e}");
            return ExitCode::from(1);
        }
    };
    let lraw = lfd.as_raw_fd();
    if epoll::add(&epfd, &lfd, EventData::new_u64(lraw as u64), EventFlags::IN).is_err() {
        return ExitCode::from(1);
    }
    println!("listening on {local}");
    let _ = std::io::stdout().flush();

    // Connections and parked output, indexed by fd number (the kernel hands out low numbers).
    let mut conns: Vec<Option<OwnedFd>> = Vec::new();
    let mut parked: Vec<Vec<u8>> = Vec::new();
    let mut events = vec![
        Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0),
        };
        EVENTS
    ];
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match epoll::wait(&epfd, &mut events[..], None) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => {
                eprintln!("floor_echo: epoll_wait: {e}");
                return ExitCode::from(1);
            }
        };
        for ev in &events[..n] {
            let fd = ev.data.u64() as i32;
            let flags = ev.flags;
            if fd == lraw {
                // Accept what is queued; EAGAIN ends the batch, EMFILE and friends too (the
                // listener stays readable, so the next wait retries).
                while let Ok(c) =
                    rustix::net::accept_with(&lfd, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
                {
                    let i = c.as_raw_fd() as usize;
                    let _ = rustix::net::sockopt::set_tcp_nodelay(&c, true);
                    if epoll::add(&epfd, &c, EventData::new_u64(i as u64), EventFlags::IN).is_err()
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
            let i = fd as usize;
            let Some(Some(c)) = conns.get(i) else {
                continue;
            };
            let mut close = false;
            if !parked[i].is_empty() {
                if flags.contains(EventFlags::OUT) {
                    match rustix::io::write(c, &parked[i]) {
                        Ok(w) => {
                            parked[i].drain(..w);
                            if parked[i].is_empty() {
                                let _ = epoll::modify(
                                    &epfd,
                                    c,
                                    EventData::new_u64(i as u64),
                                    EventFlags::IN,
                                );
                            }
                        }
                        Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                        Err(_) => close = true,
                    }
                } else if flags.intersects(EventFlags::HUP | EventFlags::ERR) {
                    close = true;
                }
            } else {
                match rustix::io::read(c, &mut buf) {
                    Ok(0) => close = true,
                    Ok(r) => match rustix::io::write(c, &buf[..r]) {
                        Ok(w) if w == r => {}
                        Ok(w) => {
                            parked[i].extend_from_slice(&buf[w..r]);
                            let _ = epoll::modify(
                                &epfd,
                                c.as_fd(),
                                EventData::new_u64(i as u64),
                                EventFlags::OUT,
                            );
                        }
                        Err(Errno::AGAIN) => {
                            parked[i].extend_from_slice(&buf[..r]);
                            let _ = epoll::modify(
                                &epfd,
                                c.as_fd(),
                                EventData::new_u64(i as u64),
                                EventFlags::OUT,
                            );
                        }
                        Err(_) => close = true,
                    },
                    Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                    Err(_) => close = true,
                }
            }
            if close {
                // close(2) also removes the fd from the epoll interest list (no dup exists).
                conns[i] = None;
                parked[i].clear();
                if !args.quiet {
                    eprintln!("closed fd {i}");
                }
            }
        }
    }
}
