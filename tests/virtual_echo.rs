//! `examples/echo_server.rs`'s out-of-fds path with its fds exhausted for real and its clock
//! virtual: the example's loop is epoll on a `VirtualClock` in a test build, and this test
//! lowers the process's `RLIMIT_NOFILE` so that `accept` fails with `EMFILE`. It checks the
//! reserve-fd refusal, the 100 ms accept pause measured on the loop's clock (no sleeping) and
//! the resume, after which the waiting client is served.
//!
//! `RLIMIT_NOFILE` is per process: this file holds this one test, and the limit is put back
//! when it ends, passed or failed.

#[path = "../examples/echo_server.rs"]
#[allow(dead_code)]
mod echo;

use echo::epoll_64::{watch_listener, Loop};
use echo::Ctx;
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// The example's pause when even the reserve fd cannot refuse a client.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Clients the server accepts before its fds run out.
const SERVED_FIRST: usize = 2;

/// The process's fd limit, put back on drop.
struct Limit(Rlimit);

impl Limit {
    fn save() -> Limit {
        Limit(getrlimit(Resource::Nofile))
    }

    /// New fds must be below `max` from now on (fds already open above it stay usable).
    fn lower_to(&self, max: u64) {
        let lowered = Rlimit {
            current: Some(max),
            maximum: self.0.maximum,
        };
        setrlimit(Resource::Nofile, lowered).unwrap();
    }

    fn restore(&self) {
        setrlimit(Resource::Nofile, self.0).unwrap();
    }
}

impl Drop for Limit {
    fn drop(&mut self) {
        self.restore();
    }
}

/// A TCP socket made now, connected later: once the limit is low, the test's clients can make
/// no fd either.
fn client_socket() -> OwnedFd {
    rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap()
}

/// Connects a socket made by `client_socket`; on loopback the handshake is done when this
/// returns, so the server's listener is readable at once.
fn connect(sock: OwnedFd, addr: SocketAddr) -> TcpStream {
    rustix::net::connect(&sock, &addr).unwrap();
    let stream = TcpStream::from(sock);
    // A guard against a hang if the server misbehaves, never a timed assertion: every read
    // below has its answer in the socket before it starts.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Opens /dev/null until the limit refuses: every fd below the limit is then in use.
fn fill_fds() -> Vec<File> {
    let mut ballast = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => ballast.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                return ballast;
            }
        }
    }
}

/// Sends `msg` and reads its echo, after the turns that accept (if `accept`) and serve it.
fn echo_round_trip(lp: &mut Loop, client: &mut TcpStream, msg: &[u8], accept: bool) {
    client.write_all(msg).unwrap();
    if accept {
        assert_eq!(lp.run_once(None), Ok(1), "the listener is ready: accept");
    }
    assert_eq!(lp.run_once(None), Ok(1), "the connection is readable: echo");
    let mut back = vec![0; msg.len()];
    client.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

#[test]
fn out_of_fds_refuses_with_the_reserve_then_pauses_accepting_for_100_ms_of_virtual_time() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let lfd = listener.as_raw_fd();
    let reserve = File::open("/dev/null").unwrap();
    let reserve_fd = reserve.as_raw_fd();
    let mut lp = Box::new(Loop::new(Ctx::new(listener, reserve, 64, true)));
    // The first registration makes the loop's epoll fd: before the limit, like the clients.
    watch_listener(&mut lp).unwrap();
    let mut sockets: Vec<OwnedFd> = (0..SERVED_FIRST + 2).map(|_| client_socket()).collect();

    let limit = Limit::save();
    let probe = File::open("/dev/null").unwrap();
    let max = u64::try_from(probe.as_raw_fd()).unwrap() + 16;
    drop(probe);
    assert!(
        u64::try_from(reserve_fd).unwrap() < max,
        "the reserve is usable"
    );
    limit.lower_to(max);
    let mut ballast = fill_fds();
    // Room for the first clients' fds on the server's side, and no more.
    ballast.truncate(ballast.len() - SERVED_FIRST);

    // Clients are served until accepting runs out of fds.
    let start = lp.now();
    let mut served = Vec::new();
    for i in 0..SERVED_FIRST {
        let mut c = connect(sockets.remove(0), addr);
        echo_round_trip(&mut lp, &mut c, format!("hello {i}").as_bytes(), true);
        served.push(c);
    }

    // The next one: `accept` fails with EMFILE, the reserve fd is given up to accept it and
    // close it at once, then taken back. The client sees its connection closed.
    let mut refused = connect(sockets.remove(0), addr);
    assert_eq!(lp.run_once(None), Ok(1));
    let mut buf = [0; 16];
    assert_eq!(refused.read(&mut buf).unwrap(), 0, "closed by the server");
    assert!(lp.is_registered(lfd), "still accepting");
    assert_eq!(lp.timer_count(), 0, "no pause");
    assert_eq!(lp.now(), start, "no time passed");
    drop(refused);

    // Now not even the reserve can help: its fd, given up, is above the limit. The client is
    // left waiting and the listener is set aside.
    limit.lower_to(u64::try_from(reserve_fd).unwrap());
    let mut waiting = connect(sockets.remove(0), addr);
    assert_eq!(lp.run_once(None), Ok(1));
    let paused_at = lp.now();
    assert!(!lp.is_registered(lfd), "accepting paused");
    assert_eq!(lp.timer_count(), 1, "the resume timer");

    // The fds come back during the pause; the waiting client sends, and is not served yet.
    limit.restore();
    drop(ballast);
    waiting.write_all(b"after the pause").unwrap();
    waiting.set_nonblocking(true).unwrap();
    assert_eq!(
        waiting.read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    waiting.set_nonblocking(false).unwrap();

    // Nothing is ready, so the turn moves the clock to the resume timer and fires it: the
    // pause is exactly 100 ms of the loop's time, and no real time was slept.
    assert_eq!(lp.run_once(None), Ok(1), "the resume timer");
    assert_eq!(lp.now() - paused_at, ACCEPT_PAUSE);
    assert!(lp.is_registered(lfd), "accepting again");
    assert_eq!(lp.timer_count(), 0);

    // The waiting client is accepted and echoed, and so are the ones served before.
    assert_eq!(lp.run_once(None), Ok(1), "accept");
    assert_eq!(lp.run_once(None), Ok(1), "echo");
    let mut back = [0; 15];
    waiting.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"after the pause");
    for c in &mut served {
        echo_round_trip(&mut lp, c, b"still here", false);
    }
    echo_round_trip(&mut lp, &mut waiting, b"and again", false);
    assert_eq!(
        lp.now() - start,
        ACCEPT_PAUSE,
        "the pause is all the time that passed"
    );
}
