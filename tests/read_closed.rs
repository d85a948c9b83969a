//! Read-closed readiness (CONFORMANCE 16a): a TCP peer's `shutdown(SHUT_WR)` is reported as
//! `Ready::READ_CLOSED` with `READ` on epoll (`EPOLLRDHUP`) and poll (`POLLRDHUP`), to a
//! registration with `READ` only; select(2) has no such set, and shows `READ` alone, with a
//! 0-byte read. Through the selector and through the event loop's `IoEvent`, on a real
//! loopback TCP connection, each check run as `epoll::<name>`, `poll::<name>` and
//! `select::<name>`.

mod support;

use picosel::backend::Backend;
use picosel::{EventLoop, Interest, IoEvent, Ready, Selector};
use rustix::fd::AsRawFd;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

const WAIT: Option<Duration> = Some(Duration::from_secs(5));

/// A connected loopback pair: (the end the selector watches, the peer).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (watched, _) = listener.accept().unwrap();
    (watched, peer)
}

/// Whether the backend can tell a peer's half-close: epoll and poll can, select(2) cannot.
fn tells<B: Backend>() -> bool {
    B::NAME != "select"
}

/// One wait: the readiness of each event, by fd.
fn wait<B: Backend>(sel: &mut Selector<B, (), 4>) -> Vec<(i32, Ready)> {
    let events = sel.select(WAIT).unwrap();
    events.map(|(key, ready)| (key.fd(), ready)).collect()
}

fn half_close_is_read_closed<B: Backend>() {
    let (watched, mut peer) = tcp_pair();
    let fd = watched.as_raw_fd();
    let mut sel = Selector::<B, (), 4>::new();
    sel.register(&watched, Interest::READ, ()).unwrap();
    // Data alone: readable, not closed.
    peer.write_all(b"last").unwrap();
    assert_eq!(wait(&mut sel), [(fd, Ready::READ)]);
    peer.shutdown(Shutdown::Write).unwrap();
    let want = if tells::<B>() {
        Ready::READ | Ready::READ_CLOSED
    } else {
        // select's documented fallback: READ only; the read after the data says the end.
        Ready::READ
    };
    assert_eq!(wait(&mut sel), [(fd, want)]);
    assert_eq!(want.is_read_closed(), tells::<B>());
    // The data sent before the half-close is still there, then the end of the stream.
    let mut buf = [0u8; 8];
    assert_eq!((&watched).read(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"last");
    assert_eq!((&watched).read(&mut buf).unwrap(), 0, "EOF");
    // Level-triggered: still reported, the same way, until unregistered.
    assert_eq!(wait(&mut sel), [(fd, want)]);
    // Our side can still write: the connection is only half closed.
    (&watched).write_all(b"reply").unwrap();
    let mut reply = [0u8; 5];
    peer.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"reply");
}

fn write_only_registration_never_sees_read_closed<B: Backend>() {
    let (watched, peer) = tcp_pair();
    let fd = watched.as_raw_fd();
    let mut sel = Selector::<B, (), 4>::new();
    sel.register(&watched, Interest::WRITE, ()).unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    assert_eq!(wait(&mut sel), [(fd, Ready::WRITE)]);
    // Changed during the batch's life (the slow path, which masks): the same answer.
    sel.modify(&watched, Interest::READ | Interest::WRITE, ())
        .unwrap();
    let both = if tells::<B>() {
        Ready::READ | Ready::WRITE | Ready::READ_CLOSED
    } else {
        Ready::READ | Ready::WRITE
    };
    assert_eq!(wait(&mut sel), [(fd, both)]);
    sel.modify(&watched, Interest::WRITE, ()).unwrap();
    assert_eq!(wait(&mut sel), [(fd, Ready::WRITE)]);
}

fn peer_gone_is_read_closed<B: Backend>() {
    let (watched, peer) = tcp_pair();
    let fd = watched.as_raw_fd();
    let mut sel = Selector::<B, (), 4>::new();
    sel.register(&watched, Interest::READ, ()).unwrap();
    drop(peer);
    let got = wait(&mut sel);
    assert_eq!(got.len(), 1);
    let (got_fd, ready) = got[0];
    assert_eq!(got_fd, fd);
    assert!(ready.is_readable(), "{ready:?}");
    assert_eq!(ready.is_read_closed(), tells::<B>(), "{ready:?}");
    assert_eq!((&watched).read(&mut [0u8; 4]).unwrap(), 0, "EOF");
}

struct Ctx {
    seen: Vec<IoEvent>,
}

type Loop<B> = EventLoop<B, Ctx, 4, 2>;

fn record<B: Backend>(ev: &mut Loop<B>, io: IoEvent) {
    ev.context_mut().seen.push(io);
}

fn event_loop_reports_read_closed<B: Backend>() {
    let (watched, peer) = tcp_pair();
    let mut ev = Loop::<B>::new(Ctx { seen: Vec::new() });
    ev.register(&watched, Interest::READ, 7, record::<B>)
        .unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    assert_eq!(ev.run_once(WAIT).unwrap(), 1);
    let seen = std::mem::take(&mut ev.context_mut().seen);
    assert_eq!(seen.len(), 1);
    let io = seen[0];
    assert_eq!((io.fd, io.data), (watched.as_raw_fd(), 7));
    assert!(io.ready.is_readable(), "{:?}", io.ready);
    assert_eq!(io.ready.is_read_closed(), tells::<B>(), "{:?}", io.ready);
}

per_backend!(
    half_close_is_read_closed,
    write_only_registration_never_sees_read_closed,
    peer_gone_is_read_closed,
    event_loop_reports_read_closed,
);
