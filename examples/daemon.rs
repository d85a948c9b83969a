//! The template for a daemon: a TCP echo service that is correct under backpressure, a timer,
//! and SIGTERM / Ctrl-C for a clean stop. `cargo run --example daemon -- [ADDR]`.
use picosel::{
    block_signals, DefaultEventLoop, Interest, IoEvent, Signal, SignalEvent, TimerEvent,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

const CLIENTS: usize = 8;

/// One client: its socket and the bytes read but not yet echoed back.
struct Client {
    stream: TcpStream,
    buf: [u8; 4096],
    start: usize,
    end: usize,
}

/// The daemon's state, owned by the loop and handed to every handler.
struct Daemon {
    listener: TcpListener,
    clients: [Option<Client>; CLIENTS],
}

/// The loop, named once: the context, fd registrations (clients + listener + signalfd), timers.
type Loop = DefaultEventLoop<Daemon, { CLIENTS + 2 }, 1>;

fn on_accept(ev: &mut Loop, _io: IoEvent) {
    while let Ok((stream, _peer)) = ev.context().listener.accept() {
        // A full table drops the newcomer (closing it); the others keep being served.
        let Some(slot) = ev.context().clients.iter().position(Option::is_none) else {
            continue;
        };
        if stream.set_nonblocking(true).is_ok()
            && ev
                .register(&stream, Interest::READ, slot, on_client)
                .is_ok()
        {
            ev.context_mut().clients[slot] = Some(Client {
                stream,
                buf: [0; 4096],
                start: 0,
                end: 0,
            });
        }
    }
}

/// Reads only when the last read is echoed: a client that does not read its echoes is not
/// read either, and the kernel's buffers push back on it (backpressure, no data lost).
fn on_client(ev: &mut Loop, io: IoEvent) {
    let Some(c) = ev.context_mut().clients[io.data].as_mut() else {
        return;
    };
    let mut open = true;
    if c.start == c.end {
        match c.stream.read(&mut c.buf) {
            Ok(0) => open = false,
            Ok(n) => (c.start, c.end) = (0, n),
            Err(e) => open = e.kind() == ErrorKind::WouldBlock,
        }
    }
    while open && c.start < c.end {
        match c.stream.write(&c.buf[c.start..c.end]) {
            Ok(n) => c.start += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => open = false,
        }
    }
    let want = if c.start < c.end {
        Interest::WRITE
    } else {
        Interest::READ
    };
    if let Some(c) = ev.context_mut().clients[io.data].take_if(|_| !open) {
        let _ = ev.unregister(&c.stream); // then `c` drops and closes
    } else {
        let _ = ev.modify(io.fd, want); // no syscall when unchanged
    }
}

fn on_tick(ev: &mut Loop, _t: TimerEvent) {
    let n = ev.context().clients.iter().flatten().count();
    eprintln!("{n} client(s)");
}

fn on_term(ev: &mut Loop, sig: SignalEvent) {
    eprintln!("{}: stopping", sig.signal);
    ev.stop();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // First, before any thread: the signals go to the loop, not to their default action.
    block_signals(&[Signal::TERM, Signal::INT])?;
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8800".into());
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    println!("listening on {}", listener.local_addr()?);
    let mut ev = Loop::new(Daemon {
        listener,
        clients: Default::default(),
    });
    ev.register_with(|d| &d.listener, Interest::READ, 0, on_accept)?;
    ev.add_periodic(Duration::from_secs(60), 0, on_tick)?;
    ev.add_signal(Signal::TERM, on_term)?;
    ev.add_signal(Signal::INT, on_term)?;
    ev.run()?;
    Ok(())
}
