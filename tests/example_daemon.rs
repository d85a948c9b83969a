//! The daemon template (`examples/daemon.rs`) run as a user runs it: 8 MiB sent before any of
//! it is read back comes back byte for byte (the template stops reading a client that does not
//! read, instead of dropping data), a second client is served meanwhile, and SIGTERM stops it
//! with status 0.

mod support;

use rustix::process::Signal;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use support::examples::Example;
use support::{connect, Rng};

const PAYLOAD: usize = 8 << 20;

#[test]
fn eight_mib_sent_before_reading_come_back_byte_for_byte() {
    let mut daemon = Example::spawn("daemon", &["127.0.0.1:0"]);
    let addr = daemon.listening_addr();
    let client = connect(addr);
    let payload = Rng(0x8bad_f00d).bytes(PAYLOAD);

    // Write everything from a second thread; read nothing until the writer is done or has
    // stalled (the kernel's buffers full, both ways), so the daemon sees a client that does not
    // read its echoes.
    let mut writer = client.try_clone().unwrap();
    let sent = payload.clone();
    let (done_tx, done_rx) = mpsc::channel();
    let w = thread::spawn(move || {
        let r = writer.write_all(&sent);
        let _ = done_tx.send(());
        r
    });
    let stalled_or_done = done_rx.recv_timeout(Duration::from_secs(2));

    // Meanwhile another client is served as usual.
    let mut other = connect(addr);
    other.write_all(b"ping").unwrap();
    let mut pong = [0u8; 4];
    other.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"ping");

    let mut got = vec![0u8; PAYLOAD];
    (&client).read_exact(&mut got).expect("read the echo");
    w.join().unwrap().expect("write the payload");
    if let Some(i) = (0..PAYLOAD).find(|&i| got[i] != payload[i]) {
        panic!("byte {i} of {PAYLOAD} differs (writer done before reading: {stalled_or_done:?})");
    }

    daemon.signal(Signal::TERM);
    let start = Instant::now();
    // `finish`, not `wait`: stderr is complete only once its reader thread is done.
    let (status, _) = daemon.finish();
    assert!(status.success(), "{status:?}: {}", daemon.stderr());
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        daemon.stderr().contains("SIGTERM: stopping"),
        "{}",
        daemon.stderr()
    );
}
