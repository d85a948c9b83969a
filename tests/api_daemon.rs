//! A small daemon written the way the README teaches, as a proof that the API needs no raw fd
//! numbers, no generic parameters, no turbofish and no `unsafe`: a UDP socket owned by the
//! context (registered with `register_with`), a per-peer idle timer that carries the peer's
//! slot as its data, and SIGTERM for a clean stop. It also runs: a client sends datagrams, the
//! idle timers expire, SIGTERM ends `run`.
//!
//! A binary of its own without the libtest harness (`harness = false`), because SIGTERM is sent
//! to the whole process: `main` blocks it before any thread starts.

use picosel::{
    block_signals, DefaultEventLoop, Interest, IoEvent, Signal, SignalEvent, TimerEvent, TimerId,
};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const PEERS: usize = 4;

struct Peer {
    addr: SocketAddr,
    idle: TimerId,
    datagrams: u32,
}

struct Ctx {
    udp: UdpSocket,
    peers: [Option<Peer>; PEERS],
    expired: Vec<(SocketAddr, u32)>,
    stopped_by: Option<Signal>,
}

type Loop = DefaultEventLoop<Ctx, 4, PEERS>;

const IDLE: Duration = Duration::from_millis(50);

fn on_datagram(ev: &mut Loop, _io: IoEvent) {
    let mut buf = [0u8; 512];
    while let Ok((n, from)) = ev.context().udp.recv_from(&mut buf) {
        let _ = ev.context().udp.send_to(&buf[..n], from);
        let known = ev
            .context()
            .peers
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.addr == from));
        let slot = match known {
            Some(slot) => {
                // Still talking: push its idle timeout back.
                if let Some(old) = ev.context().peers[slot].as_ref().map(|p| p.idle) {
                    let _ = ev.cancel_timer(old);
                }
                slot
            }
            None => match ev.context().peers.iter().position(Option::is_none) {
                Some(free) => free,
                None => continue, // full: answered, not tracked
            },
        };
        let Ok(idle) = ev.add_timer(IDLE, slot, on_idle) else {
            continue;
        };
        let peer = ev.context_mut().peers[slot].get_or_insert(Peer {
            addr: from,
            idle,
            datagrams: 0,
        });
        peer.idle = idle;
        peer.datagrams += 1;
    }
}

fn on_idle(ev: &mut Loop, t: TimerEvent) {
    // The timer's data says which peer went quiet.
    if let Some(peer) = ev.context_mut().peers[t.data].take() {
        ev.context_mut().expired.push((peer.addr, peer.datagrams));
    }
}

fn on_term(ev: &mut Loop, sig: SignalEvent) {
    ev.context_mut().stopped_by = Some(sig.signal);
    ev.stop();
}

fn on_done(_ev: &mut Loop, _t: TimerEvent) {
    // Everything checked below happened; ask to be stopped the way systemd would.
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM);
}

fn scenario() -> Result<(), Box<dyn std::error::Error>> {
    let udp = UdpSocket::bind("127.0.0.1:0")?;
    udp.set_nonblocking(true)?;
    let server = udp.local_addr()?;
    let mut ev = Loop::new(Ctx {
        udp,
        peers: Default::default(),
        expired: Vec::new(),
        stopped_by: None,
    });
    ev.register_with(|c| &c.udp, Interest::READ, 0, on_datagram)?;
    ev.add_signal(Signal::TERM, on_term)?;

    // Two clients: one sends three datagrams, the other one.
    let a = UdpSocket::bind("127.0.0.1:0")?;
    let b = UdpSocket::bind("127.0.0.1:0")?;
    for _ in 0..3 {
        a.send_to(b"ping", server)?;
    }
    b.send_to(b"ping", server)?;
    ev.add_timer(IDLE * 4, 0, on_done)?;
    let start = Instant::now();
    ev.run()?;

    let c = ev.context();
    assert_eq!(c.stopped_by, Some(Signal::TERM));
    let mut expired = c.expired.clone();
    expired.sort();
    let mut want = vec![(a.local_addr()?, 3), (b.local_addr()?, 1)];
    want.sort();
    assert_eq!(
        expired, want,
        "each peer's idle timer, told which peer it was for"
    );
    assert!(c.peers.iter().all(Option::is_none));
    assert!(start.elapsed() >= IDLE);
    let mut buf = [0u8; 8];
    a.set_read_timeout(Some(Duration::from_secs(1)))?;
    assert_eq!(a.recv(&mut buf)?, 4);
    Ok(())
}

fn main() {
    block_signals(&[Signal::TERM]).expect("block SIGTERM before any thread starts");
    if std::env::args().any(|a| a == "--list") {
        println!("api_daemon: test");
        return;
    }
    let ok = std::panic::catch_unwind(|| scenario().expect("the daemon runs")).is_ok();
    println!("test api_daemon ... {}", if ok { "ok" } else { "FAILED" });
    println!();
    println!(
        "test result: {}. {} passed; {} failed",
        if ok { "ok" } else { "FAILED" },
        u8::from(ok),
        u8::from(!ok)
    );
    if !ok {
        std::process::exit(101);
    }
}
