//! Python's `selectors` example server, without its blocking `input()`.
//!
//! The Python example server calls `input()` inside a read callback, so one client's message stops
//! the whole loop until the operator types. Here the server's stdin is one more registration
//! on the selector: lines typed on it go to every client, and each client's lines go to the
//! other clients, all from one thread that never blocks. Callbacks live in each key's data, as
//! in the Python example.
//!
//! ```sh
//! cargo run --example chat_server -- 127.0.0.1:8800
//! cargo run --example chat_client -- 8800              # in two other terminals
//! ```
//!
//! Every client gets what the others write, prefixed with the writer's address; lines typed on
//! the server reach everyone as `server: ...`. A client that stops reading is disconnected
//! once its bounded output buffer is full, rather than making the server grow.
//!
//! ADDR may be `IP:PORT`, `localhost:PORT` or a bare `PORT` (both on 127.0.0.1); `--help` lists
//! the defaults.
//!
//! SIGHUP sent on purpose (`kill -HUP`, `systemctl reload`) asks a daemon to reload its
//! configuration, and finds none here: the server prints `SIGHUP: nothing to reload (no config
//! file); still running` and goes on relaying. SIGHUP because the terminal the server was
//! started from went away (its window closed, its ssh session ended) ends it with status 0
//! (see `common::Hangup`). A bare selector has no signal support, so
//! `common::answer_sighup_on_a_thread` answers SIGHUP from a small event loop on a thread of
//! its own; the relaying stays on the main thread. SIGINT and SIGTERM end the server as usual.

mod common;

use picosel::{DefaultSelector, Interest, Ready};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;

const USAGE: common::Usage = common::Usage {
    synopsis: "chat_server [ADDR]",
    details: "
  ADDR          where to listen: IP:PORT, localhost:PORT or PORT (on 127.0.0.1);
                port 0 picks a free port (default: 127.0.0.1:8800)
  -h, --help    print this help and exit

The selector: epoll, 34 registrations (32 clients, the listener, stdin); a 33rd client is
told the room is full. Lines typed on stdin go to every client.
SIGHUP: nothing to reload (no config file): says so and keeps relaying; but when the
terminal it was started from is gone, exit 0.
SIGINT, SIGTERM: end the server.",
};
/// Where the server listens without an ADDR.
const DEFAULT_ADDR: SocketAddr = common::localhost(8800);
/// Clients served at once; one more is accepted and told the room is full.
const MAX_CLIENTS: usize = 32;
/// Registrations: the clients, the listener and stdin.
const N: usize = MAX_CLIENTS + 2;
/// The longest line relayed in one piece; a longer one is relayed in pieces.
const LINE_MAX: usize = 1024;
/// Output waiting for one client; a client this far behind is disconnected.
const OUT_MAX: usize = 64 * 1024;

/// The Python example's `key.data`: what to call, and for a client its slot.
#[derive(Clone, Copy)]
struct Callback {
    call: fn(&mut Sel, &mut Server, usize, Ready),
    slot: usize,
}

type Sel = DefaultSelector<Callback, N>;

/// A line being assembled from reads that may split it or hold several.
struct LineBuf {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl LineBuf {
    const fn new() -> Self {
        LineBuf {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    /// Appends `data`, calling `line` with each complete line (without its newline).
    fn push(&mut self, mut data: &[u8], mut line: impl FnMut(&[u8])) {
        while !data.is_empty() {
            let newline = data.iter().position(|&b| b == b'\n');
            let take = newline.map_or(data.len(), |i| i + 1);
            let room = LINE_MAX - self.len;
            let (chunk, rest) = data.split_at(take.min(room));
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
            data = rest;
            if chunk.last() == Some(&b'\n') {
                line(&self.buf[..self.len - 1]);
                self.len = 0;
            } else if self.len == LINE_MAX {
                line(&self.buf[..self.len]);
                self.len = 0;
            }
        }
    }
}

struct Client {
    stream: TcpStream,
    addr: SocketAddr,
    input: LineBuf,
    /// Bytes not yet taken by the kernel, at most `OUT_MAX`.
    out: Vec<u8>,
}

struct Server {
    listener: TcpListener,
    clients: Vec<Option<Client>>,
    stdin: LineBuf,
}

/// The message a line becomes: `FROM: LINE\n`.
fn message(from: &dyn std::fmt::Display, line: &[u8]) -> Vec<u8> {
    let mut msg = format!("{from}: ").into_bytes();
    msg.extend_from_slice(line);
    msg.push(b'\n');
    msg
}

/// The listener is readable: accept one client and register its read callback.
fn accept(sel: &mut Sel, server: &mut Server, _slot: usize, _ready: Ready) {
    let (mut stream, addr) = match server.listener.accept() {
        Ok(pair) => pair,
        // EMFILE and friends: say so and go on; the listener stays readable, so this is
        // retried on the next wait. A server that must survive fd exhaustion without spinning
        // is shown in echo_server.
        Err(e) => {
            eprintln!("accept: {e}");
            return;
        }
    };
    let Some(slot) = server.clients.iter().position(Option::is_none) else {
        let _ = stream.write_all(b"server: the room is full\n");
        println!("{addr} refused: the room is full");
        return;
    };
    if let Err(e) = stream.set_nonblocking(true) {
        eprintln!("{addr}: {e}");
        return;
    }
    let callback = Callback { call: client, slot };
    if let Err(e) = sel.register(&stream, Interest::READ, callback) {
        eprintln!("{addr}: cannot watch: {e}");
        return;
    }
    println!("{addr} connected");
    server.clients[slot] = Some(Client {
        stream,
        addr,
        input: LineBuf::new(),
        out: Vec::with_capacity(OUT_MAX),
    });
}

/// A client is readable (new lines, or it left) and/or writable (its output can move on).
fn client(sel: &mut Sel, server: &mut Server, slot: usize, ready: Ready) {
    if ready.is_writable() {
        flush(sel, server, slot);
    }
    if !ready.is_readable() {
        return;
    }
    let Some(Some(c)) = server.clients.get_mut(slot) else {
        return;
    };
    let mut buf = [0u8; 4096];
    let n = match rustix::io::read(&c.stream, &mut buf) {
        Ok(0) => return disconnect(sel, server, slot, "disconnected"),
        Ok(n) => n,
        Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => return,
        Err(e) => return disconnect(sel, server, slot, &format!("disconnected: {e}")),
    };
    let addr = c.addr;
    let mut lines = Vec::new();
    c.input
        .push(&buf[..n], |line| lines.push(message(&addr, line)));
    for msg in lines {
        print!("{}", String::from_utf8_lossy(&msg));
        broadcast(sel, server, Some(slot), &msg);
    }
}

/// Stdin is readable: relay each typed line to every client.
fn keyboard(sel: &mut Sel, server: &mut Server, _slot: usize, _ready: Ready) {
    let mut buf = [0u8; 4096];
    let n = match rustix::io::read(io::stdin(), &mut buf) {
        Ok(0) => {
            // End of the operator's input: keep relaying between clients.
            let _ = sel.unregister(&io::stdin());
            return;
        }
        Ok(n) => n,
        Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => return,
        Err(e) => {
            eprintln!("stdin: {e}");
            let _ = sel.unregister(&io::stdin());
            return;
        }
    };
    let mut lines = Vec::new();
    server
        .stdin
        .push(&buf[..n], |line| lines.push(message(&"server", line)));
    for msg in lines {
        broadcast(sel, server, None, &msg);
    }
}

/// Queues `msg` for every client but `except`, and tries to send it at once.
fn broadcast(sel: &mut Sel, server: &mut Server, except: Option<usize>, msg: &[u8]) {
    for slot in 0..server.clients.len() {
        if Some(slot) == except {
            continue;
        }
        let Some(Some(c)) = server.clients.get_mut(slot) else {
            continue;
        };
        if c.out.len() + msg.len() > OUT_MAX {
            disconnect(sel, server, slot, "disconnected: too slow to read");
            continue;
        }
        c.out.extend_from_slice(msg);
        flush(sel, server, slot);
    }
}

/// Sends what a client's output holds, and asks for WRITE readiness only while some is left
/// (a writable socket is nearly always writable: WRITE interest on an idle one would spin).
fn flush(sel: &mut Sel, server: &mut Server, slot: usize) {
    let Some(Some(c)) = server.clients.get_mut(slot) else {
        return;
    };
    if !c.out.is_empty() {
        // MSG_NOSIGNAL: a client that vanished gives EPIPE here instead of killing the server.
        match rustix::net::send(&c.stream, &c.out, rustix::net::SendFlags::NOSIGNAL) {
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
            Err(e) => return disconnect(sel, server, slot, &format!("disconnected: {e}")),
        }
    }
    let interest = if c.out.is_empty() {
        Interest::READ
    } else {
        Interest::READ | Interest::WRITE
    };
    let callback = Callback { call: client, slot };
    // Same interest: the selector makes no syscall.
    if let Err(e) = sel.modify(&c.stream, interest, callback) {
        disconnect(sel, server, slot, &format!("disconnected: {e}"));
    }
}

/// Unregisters a client before its socket is closed (the selector borrows fds by number).
fn disconnect(sel: &mut Sel, server: &mut Server, slot: usize, why: &str) {
    if let Some(c) = server.clients.get_mut(slot).and_then(Option::take) {
        let _ = sel.unregister(&c.stream);
        println!("{} {why}", c.addr);
    }
}

fn run(addr: SocketAddr) -> Result<(), String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let mut sel = Sel::new();
    let listen_cb = Callback {
        call: accept,
        slot: 0,
    };
    sel.register(&listener, Interest::READ, listen_cb)
        .map_err(|e| format!("cannot watch the listener: {e}"))?;
    let stdin_cb = Callback {
        call: keyboard,
        slot: 0,
    };
    // Run from a service manager, stdin may be /dev/null, which epoll refuses (EPERM):
    // then there is no operator, and the server relays between clients only.
    if let Err(e) = sel.register(&io::stdin(), Interest::READ, stdin_cb) {
        eprintln!("not reading stdin ({e}): relaying between clients only");
    }
    let mut server = Server {
        listener,
        clients: (0..MAX_CLIENTS).map(|_| None).collect(),
        stdin: LineBuf::new(),
    };
    println!("listening on {local}");
    loop {
        let mut events = sel.select(None).map_err(|e| format!("select: {e}"))?;
        while let Some((key, ready)) = events.next() {
            let cb = key.data();
            (cb.call)(events.selector(), &mut server, cb.slot, ready);
        }
    }
}

fn main() -> ExitCode {
    let addr = common::Args::new(&USAGE).only_addr();
    // Before any other thread exists: see `answer_sighup_on_a_thread`.
    if let Err(e) = common::answer_sighup_on_a_thread() {
        eprintln!("chat_server: {e}");
        return ExitCode::FAILURE;
    }
    match run(addr.unwrap_or(DEFAULT_ADDR)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat_server: {e}");
            ExitCode::FAILURE
        }
    }
}
