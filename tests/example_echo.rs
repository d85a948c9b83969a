//! `echo_server` run as a user runs it, talked to over loopback: many concurrent clients with
//! every byte checked, clients that reset, never read or overflow the table, fd exhaustion,
//! every backend, and a clean exit with a summary on SIGTERM and SIGINT.

mod support;

use rustix::process::Signal;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::examples::{example_path, Example, PATIENCE};
use support::Rng;

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

/// Sends `payload` from a second thread while reading the echo here (a client that wrote
/// everything before reading would stall on its own full windows), and checks every byte.
fn echo_round_trip(s: &TcpStream, payload: Arc<Vec<u8>>) {
    let mut writer = s.try_clone().unwrap();
    let sent = Arc::clone(&payload);
    let w = thread::spawn(move || writer.write_all(&sent));
    let mut got = vec![0u8; payload.len()];
    (&*s)
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("echo of {} bytes: {e}", payload.len()));
    w.join().unwrap().expect("write the payload");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != payload[i]) {
        panic!("byte {i} of {} differs", payload.len());
    }
}

fn start(args: &[&str]) -> (Example, SocketAddr) {
    let mut server = Example::spawn("echo_server", args);
    let addr = server.listening_addr();
    (server, addr)
}

/// Stops the server with `sig` and returns its summary line, checking the exit status is 0.
fn stop(mut server: Example, sig: Signal) -> String {
    server.signal(sig);
    let (status, rest) = server.finish();
    assert_eq!(status.code(), Some(0), "stderr: {}", server.stderr());
    let summary = rest
        .into_iter()
        .rfind(|l| l.starts_with("served "))
        .unwrap_or_else(|| panic!("no summary; stderr: {}", server.stderr()));
    summary
}

#[test]
fn fifty_concurrent_clients_get_every_byte_back() {
    let (server, addr) = start(&["--quiet", "127.0.0.1:0"]);
    let total = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..50u64)
        .map(|i| {
            let total = Arc::clone(&total);
            thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i + 1));
                let s = connect(addr);
                for _ in 0..3 {
                    let len = 1 + (rng.next() % (256 * 1024)) as usize;
                    echo_round_trip(&s, Arc::new(rng.bytes(len)));
                    total.fetch_add(len as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    let total = total.load(Ordering::Relaxed);
    let summary = stop(server, Signal::TERM);
    assert_eq!(
        summary,
        format!("served 50 connections, echoed {total} bytes")
    );
}

#[test]
fn sigterm_exits_zero_with_a_summary_of_connections_and_bytes() {
    let (mut server, addr) = start(&["127.0.0.1:0"]);
    for _ in 0..3 {
        let s = connect(addr);
        echo_round_trip(&s, Arc::new(vec![b'x'; 1000]));
        drop(s);
        server.expect_line("`ADDR disconnected`", |l| l.ends_with(" disconnected"));
    }
    assert_eq!(
        stop(server, Signal::TERM),
        "served 3 connections, echoed 3000 bytes"
    );
}

#[test]
fn sigint_exits_zero_too() {
    let (server, _addr) = start(&["--quiet", "127.0.0.1:0"]);
    assert_eq!(
        stop(server, Signal::INT),
        "served 0 connections, echoed 0 bytes"
    );
}

#[test]
fn a_reset_a_half_close_and_a_silent_client_do_not_disturb_the_others() {
    let (mut server, addr) = start(&["127.0.0.1:0"]);
    let silent = connect(addr);

    // Reset mid-stream: send a lot, read nothing, close with SO_LINGER 0 (an RST).
    let reset = connect(addr);
    let me = reset.local_addr().unwrap().to_string();
    server.expect_line("the resetting client", |l| l == format!("{me} connected"));
    // More than the windows hold, so the server has data in flight when the RST comes.
    reset
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let _ = (&reset).write_all(&vec![7u8; 4 * 1024 * 1024]);
    rustix::net::sockopt::set_socket_linger(&reset, Some(Duration::ZERO)).unwrap();
    drop(reset);
    server.expect_line("the reset client gone", |l| {
        l.starts_with(&format!("{me} disconnected"))
    });

    // Half-close: what was sent before the FIN still comes back, then the server closes.
    let half = connect(addr);
    (&half).write_all(b"last words").unwrap();
    half.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    (&half).read_to_end(&mut back).unwrap();
    assert_eq!(back, b"last words");

    // One MiB in one write, from a client that reads concurrently.
    let big = connect(addr);
    let mut rng = Rng(42);
    echo_round_trip(&big, Arc::new(rng.bytes(1024 * 1024)));

    // The silent client is still connected and served.
    echo_round_trip(&silent, Arc::new(b"finally".to_vec()));
}

#[test]
fn a_client_that_never_reads_cannot_stall_the_others_or_grow_the_server() {
    let (_server, addr) = start(&["--quiet", "127.0.0.1:0"]);
    let hog = connect(addr);
    hog.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&written);
    let mut w = hog.try_clone().unwrap();
    // Writes until the windows are full and a write times out; the server must stop reading
    // it once its 16 KiB buffer is full, so this ends far below the 64 MiB offered.
    let writer = thread::spawn(move || {
        let chunk = vec![1u8; 64 * 1024];
        for _ in 0..1024 {
            match w.write(&chunk) {
                Ok(n) => counter.fetch_add(n as u64, Ordering::Relaxed),
                Err(_) => break,
            };
        }
    });
    let other = connect(addr);
    for _ in 0..20 {
        echo_round_trip(&other, Arc::new(vec![3u8; 10_000]));
    }
    writer.join().unwrap();
    let held = written.load(Ordering::Relaxed);
    assert!(
        held < 64 * 1024 * 1024,
        "the server kept reading a client that never reads: {held} bytes taken"
    );
}

#[test]
fn a_full_table_refuses_the_extra_clients_cleanly_and_serves_the_others() {
    let (mut server, addr) = start(&["--capacity", "64", "127.0.0.1:0"]);
    let mut served = Vec::new();
    let mut refused = 0;
    for _ in 0..70 {
        let s = connect(addr);
        let me = s.local_addr().unwrap().to_string();
        let line = server.expect_line("connected or refused", |l| l.starts_with(&me));
        if line == format!("{me} connected") {
            served.push(s);
        } else {
            assert!(line.contains("refused: table full"), "{line}");
            // Closed cleanly: end of stream, not a hang.
            let mut buf = [0u8; 8];
            match (&s).read(&mut buf) {
                Ok(0) => {}
                Ok(n) => panic!("refused client got {n} bytes"),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                Err(e) => panic!("refused client: {e}"),
            }
            refused += 1;
        }
    }
    // 64 registrations, less the loop's own: the listener and the signalfd (62 today).
    assert!((60..64).contains(&served.len()), "served {}", served.len());
    assert_eq!(refused, 70 - served.len());
    for s in &served {
        echo_round_trip(s, Arc::new(b"still here".to_vec()));
    }
}

/// Total CPU time (user + system) of a process, in clock ticks, from /proc.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn out_of_fds_the_server_refuses_without_spinning_and_recovers() {
    // A limit of 16 fds: stdio, listener, reserve, epoll and signalfd leave room for ~9.
    let exe = example_path("echo_server");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -n 16 && exec \"$0\" --capacity 64 127.0.0.1:0")
        .arg(&exe);
    let mut server = Example::spawn_cmd("echo_server", &mut cmd);
    let addr = server.listening_addr();
    let mut served = Vec::new();
    let mut refused = 0;
    for _ in 0..16 {
        let s = connect(addr);
        let me = s.local_addr().unwrap().to_string();
        let line = server.expect_line("connected or refused", |l| l.starts_with(&me));
        if line.ends_with(" connected") {
            served.push(s);
        } else {
            assert!(line.contains("out of file descriptors"), "{line}");
            refused += 1;
        }
    }
    assert!(refused > 0, "the fd limit was never reached");
    assert!(served.len() >= 5, "served {}", served.len());

    // Idle with the limit reached: no busy loop on a listener that stays readable.
    let before = cpu_ticks(server.pid());
    let t = Instant::now();
    thread::sleep(Duration::from_millis(500));
    let used = cpu_ticks(server.pid()) - before;
    assert!(
        used < 20,
        "{used} ticks of CPU in {:?} while idle",
        t.elapsed()
    );

    // Everyone served is still served; after one leaves, a newcomer gets its fd.
    for s in &served {
        echo_round_trip(s, Arc::new(b"ok".to_vec()));
    }
    drop(served.pop());
    server.expect_line("the client leaving", |l| l.ends_with(" disconnected"));
    let newcomer = connect(addr);
    echo_round_trip(&newcomer, Arc::new(b"welcome".to_vec()));
}

#[test]
fn every_backend_and_capacity_echoes() {
    for backend in ["epoll", "poll", "select"] {
        for capacity in ["64", "1024"] {
            let (server, addr) = start(&[
                "--quiet",
                "--backend",
                backend,
                "--capacity",
                capacity,
                "127.0.0.1:0",
            ]);
            let clients: Vec<TcpStream> = (0..4).map(|_| connect(addr)).collect();
            let mut rng = Rng(7);
            for s in &clients {
                echo_round_trip(s, Arc::new(rng.bytes(100 * 1024)));
            }
            drop(clients);
            let summary = stop(server, Signal::TERM);
            assert_eq!(
                summary, "served 4 connections, echoed 409600 bytes",
                "{backend} {capacity}"
            );
        }
    }
}

#[test]
fn bad_arguments_are_refused_with_usage() {
    for args in [
        &["--backend", "kqueue"][..],
        &["--capacity", "100"][..],
        &["--capacity"][..],
        &["--loud"][..],
        &["not-an-address"][..],
    ] {
        let (status, _, stderr) = support::examples::run_to_end("echo_server", args);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("usage:"), "{args:?}: {stderr}");
    }
}
