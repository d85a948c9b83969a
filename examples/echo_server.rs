//! Python's `selectors` echo server, done right, on picosel's event loop.
//!
//! ```sh
//! cargo run --example echo_server                      # listens on 127.0.0.1:8800
//! cargo run --example chat_client                      # in another terminal: type, get it back
//! cargo run --release --example echo_server -- --quiet --backend poll --capacity 1024 0.0.0.0:8800
//! cargo run --example echo_server -- 9000              # 127.0.0.1:9000; --help for the rest
//! ```
//!
//! Every byte a client sends comes back on the same connection (not line by line), for many
//! clients at once. What the Python example's version lacks, and this one does:
//!
//! - **Bounded memory.** Each connection has a fixed 16 KiB buffer. What the kernel does not
//!   take at once waits there, with WRITE interest instead of READ, and the server reads no more
//!   from that client until it has gone out: a client that never reads fills its own TCP windows
//!   and stalls itself, not the server or the others.
//! - **Syscalls the work needs, no more.** A readable connection costs one `read` and one
//!   `send` (level-triggered: data left unread is reported by the next wait). Interest is
//!   changed only when an echo is held back or has all gone out, never per event; nothing
//!   reads a clock or allocates after start-up.
//! - **No death by SIGPIPE.** Writes use `MSG_NOSIGNAL`: a client that vanished gives `EPIPE`
//!   and is dropped (Rust programs also start with SIGPIPE ignored).
//! - **No spin when out of fds.** When `accept` fails with `EMFILE`, a reserve fd is closed to
//!   accept the waiting client and close it at once, then reopened; if even that fails, the
//!   listener is set aside for 100 ms by a timer. Either way the server does not spin on a
//!   listener that stays readable.
//! - **A full table is not an outage.** A client beyond the registration capacity is accepted
//!   and closed cleanly; the others keep being served.
//! - **Clean exit.** SIGINT or SIGTERM ends the loop; the server prints one summary line and
//!   exits 0.
//! - **SIGHUP as a daemon user expects.** Sent on purpose (`kill -HUP`, `systemctl reload`
//!   with `ExecReload=kill -HUP $MAINPID`), SIGHUP asks for the configuration to be reloaded.
//!   This server has none, so it prints `SIGHUP: nothing to reload (no config file); still
//!   running` and goes on serving: it neither dies of SIGHUP's default action nor drops its
//!   clients. Sent because the terminal the server was started from went away (its window
//!   closed, its ssh session ended), SIGHUP ends the server as SIGTERM does (see
//!   `common::Hangup`).
//!
//! ADDR may be `IP:PORT`, `localhost:PORT` or a bare `PORT` (both on 127.0.0.1); `--help` lists
//! every option with its default.
//!
//! **One loop type, chosen at run time.** The server is written once, as plain functions on
//! `type Loop`, the way a program with one backend writes it. Because `--backend` and
//! `--capacity` choose among six loop types when the program runs, the `server!` macro makes a
//! copy of those functions per choice, in a module named after it (`epoll_1024`), and `main`
//! calls the chosen module's `run`. A program of your own keeps the body of the macro, with
//! `type Loop = DefaultEventLoop<Ctx, 1024, 1>;` in place of its first line.

mod common;

use common::Hangup;
use picosel::{
    block_signals, Epoll, Error, EventLoop, Interest, IoEvent, Poll, Select, Signal, SignalEvent,
    TimerEvent,
};
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::SendFlags;
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: common::Usage = common::Usage {
    synopsis: "echo_server [--quiet] [--backend epoll|poll|select] [--capacity 64|1024] [ADDR]",
    details: "
  ADDR              where to listen: IP:PORT, localhost:PORT or PORT (on 127.0.0.1);
                    port 0 picks a free port (default: 127.0.0.1:8800)
  --backend NAME    epoll, poll or select (default: epoll)
  --capacity N      registrations the event loop holds, 64 or 1024; the listener and the
                    signals take one each, the rest are clients (default: 1024)
  -q, --quiet       no line per connection (default: a line per connect and disconnect)
  -h, --help        print this help and exit

SIGINT, SIGTERM: exit 0 after one summary line.
SIGHUP: nothing to reload (no config file): says so and keeps serving; but when the
terminal it was started from is gone, exit 0 as for SIGTERM.",
};
/// Where the server listens without an ADDR.
const DEFAULT_ADDR: SocketAddr = common::localhost(8800);

/// The per-connection buffer: the most a client can have in flight through the server.
const BUF: usize = 16 * 1024;
/// The loops' clock: the monotonic clock, or in a test build a virtual one, so that
/// `tests/virtual_echo.rs` measures the accept pause without sleeping.
#[cfg(not(test))]
type LoopClock = picosel::Monotonic;
#[cfg(test)]
type LoopClock = picosel::VirtualClock;
/// Timers: the one that resumes accepting after fd exhaustion.
const TIMERS: usize = 1;
/// The listener's token; connections use their slot number.
const LISTENER: usize = usize::MAX;
/// How long the listener is set aside when no fd can be had even for refusing.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Connections accepted per readiness of the listener, so a flood of connects cannot starve
/// the connections already served.
const ACCEPT_BATCH: usize = 64;

/// A connection slot. Its interest follows from its buffer: READ while nothing waits to go
/// out, WRITE while something does.
struct Conn {
    /// The client's socket; `None` while the slot is free.
    fd: Option<OwnedFd>,
    /// `buf[start..end]`: read from the client, not yet sent back.
    start: usize,
    end: usize,
    buf: Box<[u8; BUF]>,
    peer: SocketAddr,
}

pub(crate) struct Ctx {
    listener: TcpListener,
    /// An fd kept open to be given up when `accept` hits `EMFILE` (see the module docs).
    reserve: Option<File>,
    /// One slot per registration the loop can hold, each with its buffer, allocated at
    /// start-up.
    conns: Vec<Conn>,
    /// Free connection slots; capacity fixed at start-up.
    free: Vec<usize>,
    quiet: bool,
    served: u64,
    echoed: u64,
}

pub(crate) struct Options {
    quiet: bool,
    backend: String,
    capacity: usize,
    addr: SocketAddr,
}

fn parse_args() -> Options {
    use common::Arg;
    let mut o = Options {
        quiet: false,
        backend: "epoll".into(),
        capacity: 1024,
        addr: DEFAULT_ADDR,
    };
    let mut addr_seen = false;
    let mut args = common::Args::new(&USAGE);
    while let Some(arg) = args.next() {
        match arg {
            Arg::Opt(opt) => match opt.as_str() {
                "--quiet" | "-q" => o.quiet = true,
                "--backend" => o.backend = args.choice(&opt, &["epoll", "poll", "select"]).into(),
                "--capacity" => {
                    o.capacity = args.number(&opt);
                    if !matches!(o.capacity, 64 | 1024) {
                        USAGE.not_accepted(&opt, &o.capacity.to_string(), "64 or 1024");
                    }
                }
                _ => args.unknown_option(&opt),
            },
            Arg::Operand(a) if !addr_seen => {
                o.addr = args.addr("ADDR", &a);
                addr_seen = true;
            }
            Arg::Operand(a) => args.unexpected_argument(&a),
        }
    }
    o
}

fn main() -> ExitCode {
    let o = parse_args();
    // Block SIGINT/SIGTERM/SIGHUP before anything else so they are only ever taken through
    // the loop's signalfd, whatever thread the kernel would have picked.
    if let Err(e) = block_signals(&[Signal::INT, Signal::TERM, Signal::HUP]) {
        eprintln!("echo_server: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }
    let result = match (o.backend.as_str(), o.capacity) {
        ("epoll", 64) => epoll_64::run(&o),
        ("epoll", 1024) => epoll_1024::run(&o),
        ("poll", 64) => poll_64::run(&o),
        ("poll", 1024) => poll_1024::run(&o),
        ("select", 64) => select_64::run(&o),
        ("select", 1024) => select_1024::run(&o),
        // `parse_args` let no other backend or capacity through.
        (b, c) => unreachable!("backend {b}, capacity {c}"),
    };
    match result {
        Ok((served, echoed)) => {
            // After a SIGHUP from a closed terminal, stdout may be gone: no panic then.
            common::last_words(format_args!(
                "served {served} connections, echoed {echoed} bytes"
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The server on one loop type, `Loop`; see the module docs for why it is a macro.
macro_rules! server {
    ($($module:ident: $backend:ident, $capacity:literal;)*) => {$(
        pub(crate) mod $module {
            use super::*;

            /// The loop: backend, context, fd registrations, timers.
            pub(crate) type Loop = EventLoop<$backend, Ctx, $capacity, TIMERS, LoopClock>;

            /// Runs the server until SIGINT/SIGTERM; returns (connections served, bytes echoed).
            pub fn run(o: &Options) -> Result<(u64, u64), String> {
                let listener = TcpListener::bind(o.addr)
                    .map_err(|e| format!("listen on {}: {e}", o.addr))?;
                listener.set_nonblocking(true).map_err(|e| e.to_string())?;
                let local = listener.local_addr().map_err(|e| e.to_string())?;
                let reserve = File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
                let ctx = Ctx::new(listener, reserve, $capacity, o.quiet);
                // Boxed: with 1024 registrations the loop's fixed tables take tens of KiB.
                let mut lp = Box::new(Loop::new(ctx));
                watch_listener(&mut lp).map_err(|e| format!("watch the listener: {e}"))?;
                for sig in [Signal::INT, Signal::TERM, Signal::HUP] {
                    lp.add_signal(sig, on_signal)
                        .map_err(|e| format!("watch signals: {e}"))?;
                }
                // std's stdout is line-buffered even into a pipe: the test reading this sees
                // it at once.
                println!("listening on {local}");
                lp.run().map_err(|e| format!("event loop: {e}"))?;
                let ctx = lp.context();
                Ok((ctx.served, ctx.echoed))
            }

            /// SIGINT, SIGTERM, and SIGHUP from a terminal that went away: stop. SIGHUP asking
            /// for a reload: there is no config; say so and go on.
            fn on_signal(lp: &mut Loop, ev: SignalEvent) {
                if ev.signal == Signal::HUP && common::hangup() == Hangup::Reload {
                    common::nothing_to_reload();
                } else {
                    lp.stop();
                }
            }

            pub(crate) fn watch_listener(lp: &mut Loop) -> picosel::Result<()> {
                lp.register_with(|c| &c.listener, Interest::READ, LISTENER, on_accept)
            }

            /// The listener is readable: accept what is waiting, up to a batch.
            fn on_accept(lp: &mut Loop, _ev: IoEvent) {
                for _ in 0..ACCEPT_BATCH {
                    match lp.context().listener.accept() {
                        Ok((stream, peer)) => add_conn(lp, stream, peer),
                        Err(e) => match accept_failed(&e) {
                            Accept::Next => {}
                            Accept::Done => return,
                            Accept::OutOfFds => return out_of_fds(lp),
                        },
                    }
                }
            }

            /// `accept` failed for want of an fd. The waiting client keeps the listener
            /// readable, so returning would spin: refuse it with the reserve fd; if even that
            /// fails, stop watching the listener for a short while.
            fn out_of_fds(lp: &mut Loop) {
                if lp.context_mut().refuse_with_reserve() {
                    return;
                }
                eprintln!("out of file descriptors: not accepting for {ACCEPT_PAUSE:?}");
                let lfd = lp.context().listener.as_raw_fd();
                if lp.unregister(lfd).is_ok()
                    && lp.add_timer(ACCEPT_PAUSE, 0, on_resume).is_err()
                {
                    // No timer to bring it back: watch it again at once rather than never.
                    let _ = watch_listener(lp);
                }
            }

            fn on_resume(lp: &mut Loop, _ev: TimerEvent) {
                if let Err(e) = watch_listener(lp) {
                    eprintln!("cannot watch the listener again: {e}");
                    lp.stop();
                }
            }

            fn add_conn(lp: &mut Loop, stream: TcpStream, peer: SocketAddr) {
                // Small echoes go out at once instead of waiting for Nagle's algorithm.
                if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
                    return;
                }
                let fd = OwnedFd::from(stream);
                let ctx = lp.context_mut();
                let Some(slot) = ctx.free.pop() else {
                    return ctx.refuse(peer, "table full");
                };
                if let Err(e) = lp.register(&fd, Interest::READ, slot, on_conn) {
                    let ctx = lp.context_mut();
                    ctx.free.push(slot);
                    // Dropping `fd` closes it: the client sees a clean end of stream.
                    return ctx.refuse(peer, refusal(e));
                }
                lp.context_mut().open(slot, fd, peer);
            }

            /// The hot path, with nothing held back (READ interest): one `read` and one
            /// `send`. What the kernel does not take is held back, with WRITE interest, and
            /// `flush` sends it.
            fn on_conn(lp: &mut Loop, ev: IoEvent) {
                let ctx = lp.context_mut();
                let Some(c) = ctx.conns.get_mut(ev.data) else {
                    return;
                };
                let Some(fd) = &c.fd else {
                    return;
                };
                if c.start < c.end {
                    return flush(lp, ev);
                }
                // Readable, or hung up: `read` tells which. It returns at most the buffer's
                // length, so `..n` below is in the buffer.
                let n = match rustix::io::read(fd, &mut c.buf[..]) {
                    Ok(0) => return close(lp, ev.data, None),
                    Ok(n) => n,
                    Err(Errno::AGAIN | Errno::INTR) => return,
                    Err(e) => return close(lp, ev.data, Some(&e)),
                };
                // MSG_NOSIGNAL: a peer that is gone gives EPIPE here, not a SIGPIPE.
                let sent = match rustix::net::send(fd, &c.buf[..n], SendFlags::NOSIGNAL) {
                    Ok(sent) => sent,
                    Err(Errno::AGAIN | Errno::INTR) => 0,
                    Err(e) => return close(lp, ev.data, Some(&e)),
                };
                ctx.echoed += sent as u64;
                if sent < n {
                    (c.start, c.end) = (sent, n);
                    if let Err(e) = lp.modify(ev.fd, Interest::WRITE) {
                        close(lp, ev.data, Some(&e));
                    }
                }
            }

            /// An echo is held back (WRITE interest): sends more of it, and once it has all
            /// gone out, reads again (READ interest).
            fn flush(lp: &mut Loop, ev: IoEvent) {
                let ctx = lp.context_mut();
                let Some(c) = ctx.conns.get_mut(ev.data) else {
                    return;
                };
                let (Some(fd), Some(out)) = (&c.fd, c.buf.get(c.start..c.end)) else {
                    return;
                };
                match rustix::net::send(fd, out, SendFlags::NOSIGNAL) {
                    Ok(sent) => {
                        c.start += sent;
                        ctx.echoed += sent as u64;
                    }
                    Err(Errno::AGAIN | Errno::INTR) => return,
                    Err(e) => return close(lp, ev.data, Some(&e)),
                }
                if c.start == c.end {
                    (c.start, c.end) = (0, 0);
                    if let Err(e) = lp.modify(ev.fd, Interest::READ) {
                        close(lp, ev.data, Some(&e));
                    }
                }
            }

            /// Unregisters and closes a connection (unregister first: the loop borrows fds by
            /// number). `why` is borrowed, not formatted into a `String`: closing allocates
            /// nothing.
            fn close(lp: &mut Loop, slot: usize, why: Option<&dyn std::fmt::Display>) {
                let Some((fd, peer)) = lp.context_mut().take(slot) else {
                    return;
                };
                let _ = lp.unregister(&fd);
                drop(fd);
                let ctx = lp.context();
                if !ctx.quiet {
                    match why {
                        Some(e) => println!("{peer} disconnected: {e}"),
                        None => println!("{peer} disconnected"),
                    }
                }
            }
        }
    )*};
}

server! {
    epoll_64: Epoll, 64;
    epoll_1024: Epoll, 1024;
    poll_64: Poll, 64;
    poll_1024: Poll, 1024;
    select_64: Select, 64;
    select_1024: Select, 1024;
}

impl Ctx {
    /// The context of a server with `capacity` connection slots: all the memory it will use,
    /// allocated now. The loop's own fds (listener, signalfd) leave the last slots unused, and
    /// the client who would need one is refused when `register` says `Full`.
    pub(crate) fn new(listener: TcpListener, reserve: File, capacity: usize, quiet: bool) -> Ctx {
        let peer = common::localhost(0);
        let conns = (0..capacity)
            .map(|_| Conn {
                fd: None,
                start: 0,
                end: 0,
                // From the allocator's zeroed pages: the kernel backs a page only when a
                // connection first touches it.
                buf: vec![0; BUF]
                    .into_boxed_slice()
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("BUF bytes")),
                peer,
            })
            .collect();
        Ctx {
            listener,
            reserve: Some(reserve),
            conns,
            free: (0..capacity).rev().collect(),
            quiet,
            served: 0,
            echoed: 0,
        }
    }

    /// Fills a free slot with a connection the loop now watches for READ.
    fn open(&mut self, slot: usize, fd: OwnedFd, peer: SocketAddr) {
        self.served += 1;
        if !self.quiet {
            println!("{peer} connected");
        }
        if let Some(c) = self.conns.get_mut(slot) {
            (c.fd, c.start, c.end, c.peer) = (Some(fd), 0, 0, peer);
        }
    }

    /// Empties a slot: its socket, still open, and its client's address.
    fn take(&mut self, slot: usize) -> Option<(OwnedFd, SocketAddr)> {
        let c = self.conns.get_mut(slot)?;
        let fd = c.fd.take()?;
        self.free.push(slot);
        Some((fd, c.peer))
    }

    fn refuse(&self, peer: SocketAddr, why: &str) {
        if !self.quiet {
            println!("{peer} refused: {why}");
        }
    }

    /// Gives up the reserve fd to accept the waiting client and close it at once, then takes
    /// the reserve back; whether the listener is left with no client waiting: one was refused
    /// that way, or none was waiting (Linux's `accept` takes an fd before it looks for a
    /// client, so it says `EMFILE` when the last fd has just gone to the last client).
    fn refuse_with_reserve(&mut self) -> bool {
        self.reserve = None;
        // The client is closed before the reserve is taken back: its fd is the one just freed.
        let refused = self.listener.accept().map(|(stream, peer)| {
            drop(stream);
            peer
        });
        self.reserve = File::open("/dev/null").ok();
        match refused {
            Ok(peer) => {
                self.refuse(peer, "out of file descriptors");
                true
            }
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        }
    }
}

/// What `on_accept` does after a failed `accept`.
enum Accept {
    /// Take the next client.
    Next,
    /// Nothing more to accept now.
    Done,
    /// No fd left for the client.
    OutOfFds,
}

fn accept_failed(e: &io::Error) -> Accept {
    if e.kind() == io::ErrorKind::WouldBlock {
        return Accept::Done;
    }
    match e.raw_os_error().map(Errno::from_raw_os_error) {
        // The client gave up before we took it; take the next.
        Some(Errno::CONNABORTED | Errno::INTR) => Accept::Next,
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM) => Accept::OutOfFds,
        _ => {
            eprintln!("accept: {e}");
            Accept::Done
        }
    }
}

/// Why `register` refused a client, as the line about it says.
fn refusal(e: Error) -> &'static str {
    match e {
        Error::Full => "table full",
        Error::FdOutOfRange => "fd above the backend's limit",
        _ => "cannot watch it",
    }
}
