//! Python's `selectors` example client, done right: the keyboard and the socket on one selector.
//!
//! Python's example client blocks in `input()` and only then looks at the socket, so nothing the
//! server sends shows up until the user types. Here stdin and the socket are both registered
//! on one [`DefaultSelector`], each with its callback in the key's data (the Python example's pattern),
//! and whichever is ready is served at once.
//!
//! ```sh
//! cargo run --example chat_client -- 127.0.0.1:8800
//! cargo run --example chat_client -- 8800              # the same: a bare port is on 127.0.0.1
//! ```
//!
//! Each line typed is sent; whatever arrives is printed as it arrives. The client exits on end
//! of input (Ctrl-D) or when the server closes the connection.
//!
//! ADDR may be `IP:PORT`, `localhost:PORT` or a bare `PORT` (both on 127.0.0.1): no name is
//! looked up. The client is not a daemon: SIGHUP (its terminal closing) ends it, as it ends any
//! program run from a terminal.

mod common;

use picosel::{DefaultSelector, Interest, Ready};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;

const USAGE: common::Usage = common::Usage {
    synopsis: "chat_client [ADDR]",
    details: "
  ADDR          the server: IP:PORT, localhost:PORT or PORT (on 127.0.0.1)
                (default: 127.0.0.1:8800)
  -h, --help    print this help and exit

The selector: epoll, 2 registrations (stdin and the socket).
Exits on end of input (Ctrl-D) or when the server closes; SIGHUP, SIGINT, SIGTERM end it.",
};
/// The server to talk to without an ADDR.
const DEFAULT_ADDR: SocketAddr = common::localhost(8800);

/// What a callback tells the loop.
enum Flow {
    Continue,
    Quit,
}

/// The Python example's `key.data`: the function to call when the fd is ready.
#[derive(Clone, Copy)]
struct Callback(fn(&mut TcpStream, Ready) -> io::Result<Flow>);

/// Two registrations: stdin and the socket.
type Sel = DefaultSelector<Callback, 2>;

/// Stdin is readable: send what was typed.
///
/// It reads fd 0 directly instead of through `std::io::Stdin`: std's stdin keeps its own
/// buffer, and bytes sitting in that buffer would never make fd 0 readable again, so the
/// selector would not know they are there. A terminal in canonical mode hands over one line
/// per read; from a pipe a read may hold several lines or part of one, and sending the bytes
/// as they are keeps the line breaks where the user put them.
fn keyboard(sock: &mut TcpStream, _ready: Ready) -> io::Result<Flow> {
    let mut buf = [0u8; 4096];
    match rustix::io::read(io::stdin(), &mut buf) {
        Ok(0) => Ok(Flow::Quit),
        // The socket stays blocking: if the server stops reading, waiting here is the honest
        // thing for an interactive client to do.
        Ok(n) => sock.write_all(&buf[..n]).map(|()| Flow::Continue),
        Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => Ok(Flow::Continue),
        Err(e) => Err(e.into()),
    }
}

/// The socket is readable: print what arrived, or notice that the server closed.
fn server(sock: &mut TcpStream, _ready: Ready) -> io::Result<Flow> {
    let mut buf = [0u8; 4096];
    // One read per readiness: the selector said there is data (or end of file), so this
    // does not block although the socket is in blocking mode.
    match rustix::io::read(&*sock, &mut buf) {
        Ok(0) => {
            eprintln!("connection closed by the server");
            Ok(Flow::Quit)
        }
        Ok(n) => {
            let mut out = io::stdout().lock();
            out.write_all(&buf[..n])?;
            // stdout is line-buffered: a partial line would otherwise wait for its newline.
            out.flush()?;
            Ok(Flow::Continue)
        }
        Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => Ok(Flow::Continue),
        Err(e) => Err(e.into()),
    }
}

fn run(addr: SocketAddr) -> Result<(), String> {
    let mut sock =
        TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let mut sel = Sel::new();
    sel.register(&sock, Interest::READ, Callback(server))
        .map_err(|e| format!("cannot watch the socket: {e}"))?;
    // epoll refuses regular files (EPERM): they are always ready, there is nothing to wait for.
    sel.register(&io::stdin(), Interest::READ, Callback(keyboard))
        .map_err(|e| {
            format!("cannot watch stdin ({e}); use a terminal or a pipe, not a regular file")
        })?;
    loop {
        let events = sel.select(None).map_err(|e| format!("select: {e}"))?;
        for (key, ready) in events {
            let Callback(callback) = key.data();
            match callback(&mut sock, ready) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Quit) => return Ok(()),
                Err(e) => return Err(format!("connection to {addr}: {e}")),
            }
        }
    }
}

fn main() -> ExitCode {
    let addr = common::Args::new(&USAGE).only_addr();
    let addr = addr.unwrap_or(DEFAULT_ADDR);
    if addr.port() == 0 {
        // Port 0 means "any free port" to a listener; nothing can be connected to there.
        USAGE.not_accepted("ADDR", &addr.to_string(), "the server's port, not 0");
    }
    match run(addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat_client: {e}");
            ExitCode::FAILURE
        }
    }
}
