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
//!   take at once waits there with WRITE interest until drained; while it is full the server
//!   stops reading that client, so a client that never reads fills its own TCP windows and
//!   stalls itself, not the server or the others.
//! - **Syscalls the work needs, no more.** A readable connection costs one `read` and one
//!   `send` (level-triggered: data left unread is reported by the next wait). Interest is
//!   changed only when a buffer turns non-empty, full or empty again, never per event; nothing
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

mod common;

use common::Window;
use picosel::backend::Backend;
use picosel::{
    block_signals, Epoll, Error, EventLoop, Interest, IoEvent, Poll, Select, Signal, SignalEvent,
    TimerEvent,
};
use rustix::io::Errno;
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
/// Timers: the one that resumes accepting after fd exhaustion.
const TIMERS: usize = 1;
/// The listener's token; connections use their slot number.
const LISTENER: usize = usize::MAX;
/// How long the listener is set aside when no fd can be had even for refusing.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Connections accepted per readiness of the listener, so a flood of connects cannot starve
/// the connections already served.
const ACCEPT_BATCH: usize = 64;

struct Conn {
    stream: Option<TcpStream>,
    peer: SocketAddr,
    pending: Window,
    /// The interest registered now, so it is changed only when it must be.
    interest: Interest,
    /// The client half-closed: echo what is pending, then close.
    eof: bool,
}

struct Ctx {
    listener: TcpListener,
    /// An fd kept open to be given up when `accept` hits `EMFILE` (see the module docs).
    reserve: Option<File>,
    conns: Vec<Conn>,
    /// Free connection slots; capacity fixed at start-up.
    free: Vec<usize>,
    /// All connection buffers, `BUF` bytes per slot, allocated once.
    bufs: Vec<u8>,
    quiet: bool,
    served: u64,
    echoed: u64,
}

type Loop<B, const N: usize> = EventLoop<B, Ctx, N, TIMERS>;

struct Options {
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
        ("epoll", 64) => run::<Epoll, 64>(&o),
        ("epoll", 1024) => run::<Epoll, 1024>(&o),
        ("poll", 64) => run::<Poll, 64>(&o),
        ("poll", 1024) => run::<Poll, 1024>(&o),
        ("select", 64) => run::<Select, 64>(&o),
        ("select", 1024) => run::<Select, 1024>(&o),
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

/// Runs the server on backend `B` with `N` registrations until SIGINT/SIGTERM; returns
/// (connections served, bytes echoed).
fn run<B: Backend, const N: usize>(o: &Options) -> Result<(u64, u64), String> {
    let listener = TcpListener::bind(o.addr).map_err(|e| format!("listen on {}: {e}", o.addr))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let reserve = File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    // All the memory the server will use, allocated now. One connection slot per registration
    // the loop can hold; the loop's own (listener, signalfd) leave the last slots unused, and
    // the client who would need one is refused when `register` says `Full`.
    let ctx = Ctx {
        listener,
        reserve: Some(reserve),
        conns: (0..N)
            .map(|_| Conn {
                stream: None,
                peer: local,
                pending: Window::default(),
                interest: Interest::READ,
                eof: false,
            })
            .collect(),
        free: (0..N).rev().collect(),
        bufs: vec![0; N * BUF],
        quiet: o.quiet,
        served: 0,
        echoed: 0,
    };
    // Boxed: with N = 1024 the loop's fixed tables take tens of KiB.
    let mut lp: Box<Loop<B, N>> = Box::new(EventLoop::new(ctx));
    let lfd = lp.context_mut().listener.as_raw_fd();
    lp.register(lfd, Interest::READ, LISTENER, on_accept::<B, N>)
        .map_err(|e| format!("watch the listener: {e}"))?;
    for sig in [Signal::INT, Signal::TERM, Signal::HUP] {
        lp.add_signal(sig, on_signal::<B, N>)
            .map_err(|e| format!("watch signals: {e}"))?;
    }
    // std's stdout is line-buffered even into a pipe: the test reading this sees it at once.
    println!("listening on {local}");
    lp.run().map_err(|e| format!("event loop: {e}"))?;
    let ctx = lp.context_mut();
    Ok((ctx.served, ctx.echoed))
}

/// SIGINT, SIGTERM, and SIGHUP from a terminal that went away: stop. SIGHUP asking for a
/// reload: there is no config; say so and go on.
fn on_signal<B: Backend, const N: usize>(lp: &mut Loop<B, N>, ev: SignalEvent) {
    if ev.signal == Signal::HUP && common::hangup() == common::Hangup::Reload {
        common::nothing_to_reload();
    } else {
        lp.stop();
    }
}

/// The listener is readable: accept what is waiting, up to a batch.
fn on_accept<B: Backend, const N: usize>(lp: &mut Loop<B, N>, _ev: IoEvent) {
    for _ in 0..ACCEPT_BATCH {
        match lp.context_mut().listener.accept() {
            Ok((stream, peer)) => add_conn(lp, stream, peer),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => match e.raw_os_error().map(Errno::from_raw_os_error) {
                // The client gave up before we took it; take the next.
                Some(Errno::CONNABORTED | Errno::INTR) => {}
                Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM) => {
                    return out_of_fds(lp)
                }
                _ => {
                    eprintln!("accept: {e}");
                    return;
                }
            },
        }
    }
}

/// `accept` failed for want of an fd. The waiting client keeps the listener readable, so
/// returning would spin: give up the reserve fd, accept and close the client, take the reserve
/// back. If that fails too, stop watching the listener for a short while.
fn out_of_fds<B: Backend, const N: usize>(lp: &mut Loop<B, N>) {
    let ctx = lp.context_mut();
    ctx.reserve = None;
    // The client is closed before the reserve is taken back: its fd is the one just freed.
    let refused = ctx.listener.accept().map(|(stream, peer)| {
        drop(stream);
        peer
    });
    ctx.reserve = File::open("/dev/null").ok();
    match refused {
        Ok(peer) => {
            if !ctx.quiet {
                println!("{peer} refused: out of file descriptors");
            }
        }
        Err(_) => {
            let lfd = ctx.listener.as_raw_fd();
            eprintln!("out of file descriptors: not accepting for {ACCEPT_PAUSE:?}");
            if lp.unregister(lfd).is_ok()
                && lp.add_timer(ACCEPT_PAUSE, 0, on_resume::<B, N>).is_err()
            {
                // No timer to bring it back: watch it again at once rather than never.
                let _ = lp.register(lfd, Interest::READ, LISTENER, on_accept::<B, N>);
            }
        }
    }
}

fn on_resume<B: Backend, const N: usize>(lp: &mut Loop<B, N>, _ev: TimerEvent) {
    let lfd = lp.context_mut().listener.as_raw_fd();
    if let Err(e) = lp.register(lfd, Interest::READ, LISTENER, on_accept::<B, N>) {
        eprintln!("cannot watch the listener again: {e}");
        lp.stop();
    }
}

fn add_conn<B: Backend, const N: usize>(lp: &mut Loop<B, N>, stream: TcpStream, peer: SocketAddr) {
    let ctx = lp.context_mut();
    // Small echoes go out at once instead of waiting for Nagle's algorithm to batch them.
    if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
        return;
    }
    let Some(slot) = ctx.free.pop() else {
        return refuse(ctx, peer, "table full");
    };
    let fd = stream.as_raw_fd();
    match lp.register(fd, Interest::READ, slot, on_conn::<B, N>) {
        Ok(_) => {}
        Err(e) => {
            let ctx = lp.context_mut();
            ctx.free.push(slot);
            let why = match e {
                Error::Full => "table full",
                Error::FdOutOfRange => "fd above the backend's limit",
                _ => "cannot watch it",
            };
            // Dropping `stream` closes it: the client sees a clean end of stream.
            return refuse(ctx, peer, why);
        }
    }
    let ctx = lp.context_mut();
    ctx.served += 1;
    if !ctx.quiet {
        println!("{peer} connected");
    }
    if let Some(c) = ctx.conns.get_mut(slot) {
        *c = Conn {
            stream: Some(stream),
            peer,
            pending: Window::default(),
            interest: Interest::READ,
            eof: false,
        };
    }
}

fn refuse(ctx: &Ctx, peer: SocketAddr, why: &str) {
    if !ctx.quiet {
        println!("{peer} refused: {why}");
    }
}

/// What a connection should wait for, given its buffer.
fn wanted(c: &Conn) -> Option<Interest> {
    match (c.eof, c.pending.is_empty(), c.pending.is_full(BUF)) {
        (true, true, _) => None,
        (true, false, _) | (false, false, true) => Some(Interest::WRITE),
        (false, true, _) => Some(Interest::READ),
        (false, false, false) => Some(Interest::READ | Interest::WRITE),
    }
}

/// The hot path: one `read` and one `send` per readiness, an `epoll_ctl` only when the
/// buffer changes between empty, partly full and full.
fn on_conn<B: Backend, const N: usize>(lp: &mut Loop<B, N>, ev: IoEvent) {
    let ctx = lp.context_mut();
    let (Some(c), Some(buf)) = (
        ctx.conns.get_mut(ev.data),
        ctx.bufs.get_mut(ev.data * BUF..(ev.data + 1) * BUF),
    ) else {
        return;
    };
    let Some(stream) = c.stream.as_ref() else {
        return;
    };
    let mut failed = None;
    if ev.ready.is_readable() && !c.eof && !c.pending.is_full(BUF) {
        match c.pending.fill(buf, |b| rustix::io::read(stream, b)) {
            Ok(0) => c.eof = true,
            Ok(_) | Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            Err(e) => failed = Some(e),
        }
    }
    if failed.is_none() && !c.pending.is_empty() {
        // MSG_NOSIGNAL: a peer that is gone gives EPIPE here, not a SIGPIPE.
        let sent = c.pending.drain(buf, |b| {
            rustix::net::send(stream, b, rustix::net::SendFlags::NOSIGNAL)
        });
        match sent {
            Ok(n) => ctx.echoed += n as u64,
            Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            Err(e) => failed = Some(e),
        }
    }
    let want = if failed.is_some() { None } else { wanted(c) };
    if want == Some(c.interest) {
        return;
    }
    let fd = ev.fd;
    match want {
        Some(interest) => {
            c.interest = interest;
            if let Err(e) = lp.modify(fd, interest) {
                close(lp, ev.data, Some(&e));
            }
        }
        None => match failed {
            Some(e) => close(lp, ev.data, Some(&e)),
            None => close(lp, ev.data, None),
        },
    }
}

/// Unregisters and closes a connection (unregister first: the loop borrows fds by number).
/// `why` is borrowed, not formatted into a `String`: closing allocates nothing.
fn close<B: Backend, const N: usize>(
    lp: &mut Loop<B, N>,
    slot: usize,
    why: Option<&dyn std::fmt::Display>,
) {
    let ctx = lp.context_mut();
    let Some(c) = ctx.conns.get_mut(slot) else {
        return;
    };
    let Some(stream) = c.stream.take() else {
        return;
    };
    let peer = c.peer;
    ctx.free.push(slot);
    let quiet = ctx.quiet;
    let _ = lp.unregister(stream.as_raw_fd());
    drop(stream);
    if !quiet {
        match why {
            Some(e) => println!("{peer} disconnected: {e}"),
            None => println!("{peer} disconnected"),
        }
    }
}
