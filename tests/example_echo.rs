//! `echo_server` run as a user runs it, talked to over loopback: many concurrent clients with
//! every byte checked, clients that reset, never read or overflow the table, fd exhaustion,
//! every backend, a clean exit with a summary on SIGTERM and SIGINT, and SIGHUP answered with
//! "nothing to reload". Also the command-line rules every example shares: one wording per kind
//! of mistake (status 2, the usage on stderr), `--help` with the defaults (status 0), and
//! addresses as `IP:PORT`, `localhost:PORT` or a bare `PORT`.

mod support;

use rustix::process::Signal;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    // Byte counts fit a usize on every target (at most 50 x 3 x 256 KiB here); MIPS32 and
    // 32-bit PowerPC have no 64-bit atomics.
    let total = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..50u64)
        .map(|i| {
            let total = Arc::clone(&total);
            thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i + 1));
                let s = connect(addr);
                for _ in 0..3 {
                    let len = 1 + (rng.next() % (256 * 1024)) as usize;
                    echo_round_trip(&s, Arc::new(rng.bytes(len)));
                    total.fetch_add(len, Ordering::Relaxed);
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
    // At most the 64 MiB offered: fits a usize on 32-bit targets too.
    let written = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&written);
    let mut w = hog.try_clone().unwrap();
    // Writes until the windows are full and a write times out; the server must stop reading
    // it once its 16 KiB buffer is full, so this ends far below the 64 MiB offered.
    let writer = thread::spawn(move || {
        let chunk = vec![1u8; 64 * 1024];
        for _ in 0..1024 {
            match w.write(&chunk) {
                Ok(n) => counter.fetch_add(n, Ordering::Relaxed),
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
    support::examples::assert_usage_errors(
        "echo_server",
        &[
            &["--backend", "kqueue"],
            &["--capacity", "100"],
            &["--capacity"],
            &["--loud"],
            &["not-an-address"],
        ],
    );
}

/// What every daemon prints on SIGHUP when it has no config file to reload.
const NOTHING_TO_RELOAD: &str = "SIGHUP: nothing to reload (no config file); still running";

/// Runs example `name` with `args` and checks that it refused them as a command-line mistake:
/// status 2, nothing on stdout, and on stderr `NAME: MSG`, the usage and where the help is.
fn assert_usage_error(name: &str, args: &[&str], msg: &str) {
    let (status, stdout, stderr) = support::examples::run_to_end(name, args);
    assert_eq!(status.code(), Some(2), "{name} {args:?}: {stderr}");
    assert_eq!(stdout, "", "{name} {args:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("{name}: {msg}").as_str()),
        "{name} {args:?}: {stderr}"
    );
    assert!(
        lines.get(1).is_some_and(
            |l| l == &format!("usage: {name}") || l.starts_with(&format!("usage: {name} "))
        ),
        "{name} {args:?}: {stderr}"
    );
    assert_eq!(
        lines.get(2).copied(),
        Some(format!("`{name} --help` shows every option and its default").as_str()),
        "{name} {args:?}: {stderr}"
    );
}

const EXAMPLES: [&str; 6] = [
    "echo_server",
    "chat_server",
    "chat_client",
    "gpio_watch",
    "periodic_sensor",
    "serial_bridge",
];

/// `args`, after `--device /dev/null` for serial_bridge, which requires a device: the
/// mistake tested is then the only one.
fn with_device<'a>(name: &str, args: &[&'a str]) -> Vec<&'a str> {
    let device: &[&str] = if name == "serial_bridge" {
        &["--device", "/dev/null"]
    } else {
        &[]
    };
    device.iter().chain(args).copied().collect()
}

/// The same mistake gets the same words from every example: one helper in
/// `examples/common/mod.rs` per kind of mistake.
#[test]
fn every_example_words_each_kind_of_mistake_the_same() {
    for name in EXAMPLES {
        assert_usage_error(name, &["--bogus"], "unknown option --bogus");
        assert_usage_error(name, &["-x"], "unknown option -x");
    }
    for (name, args) in [
        ("echo_server", &["1", "2"][..]),
        ("chat_server", &["1", "2"][..]),
        ("chat_client", &["1", "2"][..]),
        ("gpio_watch", &["/a", "2"][..]),
        ("periodic_sensor", &["2"][..]),
        ("serial_bridge", &["1", "2"][..]),
    ] {
        assert_usage_error(name, &with_device(name, args), "unexpected argument \"2\"");
    }
    for (name, option) in [
        ("echo_server", "--backend"),
        ("echo_server", "--capacity"),
        ("periodic_sensor", "--path"),
        ("periodic_sensor", "--period-ms"),
        ("periodic_sensor", "--config"),
        ("serial_bridge", "--device"),
        ("serial_bridge", "--baud"),
    ] {
        assert_usage_error(name, &[option], &format!("{option} needs a value"));
    }
    for (name, option) in [
        ("echo_server", "--capacity"),
        ("periodic_sensor", "--period-ms"),
        ("serial_bridge", "--baud"),
    ] {
        assert_usage_error(
            name,
            &with_device(name, &[option, "x"]),
            &format!("{option}: not a number: \"x\""),
        );
    }
    for name in ["echo_server", "chat_server", "chat_client", "serial_bridge"] {
        assert_usage_error(
            name,
            &with_device(name, &["nope"]),
            "ADDR: not an address: \"nope\" (use IP:PORT, localhost:PORT or PORT)",
        );
    }
    assert_usage_error(
        "echo_server",
        &["--backend", "kqueue"],
        "--backend: not accepted: \"kqueue\" (use epoll, poll or select)",
    );
    assert_usage_error(
        "echo_server",
        &["--capacity", "100"],
        "--capacity: not accepted: \"100\" (use 64 or 1024)",
    );
}

#[test]
fn help_states_every_default_and_exits_zero() {
    support::examples::assert_help(
        "echo_server",
        &[
            "(default: 127.0.0.1:8800)",
            "epoll, poll or select (default: epoll)",
            "64 or 1024",
            "(default: 1024)",
            "IP:PORT, localhost:PORT or PORT",
            "port 0 picks a free port",
            "SIGHUP: nothing to reload",
            "SIGINT, SIGTERM: exit 0",
        ],
    );
}

/// A bare port is on 127.0.0.1, and so is `localhost:PORT` (the name in any case, and never
/// looked up); the server listens there and echoes.
#[test]
fn a_bare_port_and_localhost_port_listen_on_loopback() {
    for arg in ["0", "localhost:0", "LOCALHOST:0"] {
        let (server, addr) = start(&["--quiet", arg]);
        assert_eq!(addr.ip().to_string(), "127.0.0.1", "{arg}");
        assert_ne!(addr.port(), 0, "{arg}");
        let s = connect(addr);
        echo_round_trip(&s, Arc::new(b"loopback".to_vec()));
        drop(s);
        assert_eq!(
            stop(server, Signal::TERM),
            "served 1 connections, echoed 8 bytes",
            "{arg}"
        );
    }
    // The port found, given back as `localhost:PORT` and as a bare port, to a second server:
    // taken, so the second one fails to listen on exactly that address.
    let (_server, addr) = start(&["--quiet", "0"]);
    for arg in [
        format!("localhost:{}", addr.port()),
        addr.port().to_string(),
    ] {
        let (status, _, stderr) = support::examples::run_to_end("echo_server", &[&arg]);
        assert_eq!(status.code(), Some(1), "{arg}: {stderr}");
        assert!(
            stderr.contains(&format!("listen on 127.0.0.1:{}", addr.port())),
            "{arg}: {stderr}"
        );
    }
}

#[test]
fn a_port_out_of_range_or_a_host_name_is_not_an_address() {
    for arg in [
        "65536",
        "example.com:80",
        "localhost",
        "localhost:",
        ":80",
        "+80",
        "1.2.3.4",
    ] {
        assert_usage_error(
            "echo_server",
            &[arg],
            &format!("ADDR: not an address: {arg:?} (use IP:PORT, localhost:PORT or PORT)"),
        );
    }
}

/// SIGHUP asks a daemon to reload its configuration; echo_server has none, so it says so and
/// goes on serving the clients it has.
#[test]
fn sighup_says_nothing_to_reload_and_keeps_serving() {
    let (mut server, addr) = start(&["127.0.0.1:0"]);
    let s = connect(addr);
    echo_round_trip(&s, Arc::new(b"before".to_vec()));
    for _ in 0..2 {
        server.signal(Signal::HUP);
        server.expect_line("the SIGHUP line", |l| l == NOTHING_TO_RELOAD);
    }
    echo_round_trip(&s, Arc::new(b"after".to_vec()));
    drop(s);
    server.expect_line("the client leaving", |l| l.ends_with(" disconnected"));
    assert_eq!(
        stop(server, Signal::TERM),
        "served 1 connections, echoed 11 bytes"
    );
}

/// A pseudo-terminal: its controlling side (closing it hangs the terminal up, as closing a
/// terminal window or ending an ssh session does) and the path of its terminal side. `None`
/// where termios is not emulated (qemu-user answers ENOSYS), so a hang-up cannot be seen.
fn terminal() -> Option<(rustix::fd::OwnedFd, String)> {
    use rustix::pty::OpenptFlags;
    // CLOEXEC: the examples other tests start at the same time must not hold it open.
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("openpt");
    rustix::pty::grantpt(&master).expect("grantpt");
    rustix::pty::unlockpt(&master).expect("unlockpt");
    let path = rustix::pty::ptsname(&master, Vec::new())
        .expect("ptsname")
        .into_string()
        .unwrap();
    match rustix::termios::tcgetattr(&master) {
        Err(rustix::io::Errno::NOSYS) => {
            eprintln!("skipped: termios ioctls are not emulated here (qemu-user)");
            None
        }
        _ => Some((master, path)),
    }
}

/// Starts example `name` with `args` and its stdin on terminal `tty`, as when started from a
/// shell in that terminal (its stdout and stderr stay pipes, for the test to read).
fn spawn_on_terminal(name: &str, tty: &str, args: &[&str]) -> Example {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"tty="$1"; shift; exec "$0" "$@" < "$tty""#)
        .arg(example_path(name))
        .arg(tty)
        .args(args);
    Example::spawn_cmd(name, &mut cmd)
}

/// SIGHUP from a terminal that went away ends every daemon with status 0, where a SIGHUP
/// sent on purpose (the terminal still there) reloads or says there is nothing to reload.
/// The hang-up is the kernel's (the terminal's controlling side closed); the SIGHUP is sent
/// by the test, as the shell of a closed terminal sends it to its jobs.
#[test]
fn every_daemon_exits_zero_on_sighup_once_its_terminal_is_gone() {
    let Some((_probe, _)) = terminal() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("picosel_hangup_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sensor = dir.join("value");
    std::fs::write(&sensor, "1\n").unwrap();
    let sensor = sensor.to_str().unwrap().to_string();
    // The serial bridge needs a device: another pseudo-terminal, kept open throughout.
    let (_device_master, device) = terminal().unwrap();
    let cases: [(&str, Vec<&str>, &str); 5] = [
        ("echo_server", vec!["--quiet", "0"], "listening on "),
        ("chat_server", vec!["0"], "listening on "),
        ("gpio_watch", vec!["/proc/self/mounts"], "watching "),
        (
            "periodic_sensor",
            vec!["--path", &sensor, "--period-ms", "60000"],
            "reading ",
        ),
        (
            "serial_bridge",
            vec!["--device", &device, "--baud", "9600", "0"],
            "listening on ",
        ),
    ];
    for (name, args, ready) in cases {
        let (master, tty) = terminal().unwrap();
        let mut ex = spawn_on_terminal(name, &tty, &args);
        ex.expect_line("the start line", |l| l.starts_with(ready));
        // The terminal is there: a SIGHUP is a reload request.
        ex.signal(Signal::HUP);
        ex.expect_line("the SIGHUP line", |l| l == NOTHING_TO_RELOAD);
        drop(master);
        // A child another test forks may hold the controlling side until it execs (CLOEXEC):
        // until the hang-up has happened, SIGHUP is still answered as a request.
        let deadline = Instant::now() + PATIENCE;
        loop {
            ex.signal(Signal::HUP);
            // Another line is the daemon's last words (a summary); none, its exit.
            match ex.next_line(Duration::from_millis(300)) {
                Some(line) if line == NOTHING_TO_RELOAD => {}
                _ => break,
            }
            assert!(Instant::now() < deadline, "{name} ignored the hang-up");
        }
        let (status, _) = ex.finish();
        assert_eq!(status.code(), Some(0), "{name}: {}", ex.stderr());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
