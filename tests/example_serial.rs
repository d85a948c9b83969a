//! `serial_bridge` with a pseudo-terminal standing in for the UART: the bridge opens the pty's
//! terminal side as its device, the test plays the far end of the serial line on the
//! controlling side, and a TCP client on loopback plays the network side. Also the command
//! line: the baud rates accepted (not 0), the defaults `--help` states, a bare port and
//! `localhost:PORT`; and SIGHUP answered with "nothing to reload".

mod support;

use rustix::fd::OwnedFd;
use rustix::process::Signal;
use rustix::pty::OpenptFlags;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Instant;
use support::examples::{run_to_end, Example, PATIENCE};

/// The far end of the serial line: the pty's controlling side, read by a thread.
struct Uart {
    master: File,
    rx: Receiver<Vec<u8>>,
    /// The pty's terminal side, for the bridge to open.
    device: String,
}

/// A new pseudo-terminal: its controlling side, and the path of its terminal side.
fn open_pty() -> (File, String) {
    let master: OwnedFd =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("openpt");
    rustix::pty::grantpt(&master).expect("grantpt");
    rustix::pty::unlockpt(&master).expect("unlockpt");
    let device = rustix::pty::ptsname(&master, Vec::new())
        .expect("ptsname")
        .into_string()
        .unwrap();
    (File::from(master), device)
}

/// Whether termios works here: qemu-user (which runs this suite for the Raspberry Pi targets)
/// does not emulate the `TCGETS2` ioctl rustix uses, and answers `ENOSYS`. A real ARM kernel
/// has it.
fn termios_works() -> bool {
    let (_master, device) = open_pty();
    let slave = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&device)
        .unwrap();
    match rustix::termios::tcgetattr(&slave) {
        Err(rustix::io::Errno::NOSYS) => {
            eprintln!("skipped: termios ioctls are not emulated here (qemu-user)");
            false
        }
        _ => true,
    }
}

impl Uart {
    fn new() -> Uart {
        let (master, device) = open_pty();
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        // Ends with EIO once the bridge closes the terminal side.
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Uart { master, rx, device }
    }

    /// Reads exactly `len` bytes that the bridge wrote to the device.
    fn read_exact(&self, len: usize) -> Vec<u8> {
        let deadline = Instant::now() + PATIENCE;
        let mut got = Vec::new();
        while got.len() < len {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(chunk) => got.extend_from_slice(&chunk),
                Err(e) => panic!("uart: {} of {len} bytes, then {e:?}", got.len()),
            }
        }
        assert_eq!(got.len(), len, "more bytes than expected on the uart");
        got
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

fn start(uart: &Uart) -> (Example, SocketAddr) {
    let mut bridge = Example::spawn(
        "serial_bridge",
        &["--device", &uart.device, "--baud", "9600", "127.0.0.1:0"],
    );
    let addr = bridge.listening_addr();
    (bridge, addr)
}

/// A bridge on `uart` with one client connected to it.
fn start_with_client(uart: &Uart) -> (Example, TcpStream) {
    let (mut bridge, addr) = start(uart);
    let client = connect(addr);
    bridge.expect_line("the client", |l| l.contains(" connected to "));
    (bridge, client)
}

/// The device sends `msg`; the client receives exactly it.
fn device_to_client(uart: &Uart, client: &mut TcpStream, msg: &[u8]) {
    (&uart.master).write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, msg);
}

/// SIGTERM ends the bridge with status 0.
fn terminate(mut bridge: Example) {
    bridge.signal(Signal::TERM);
    let (status, _) = bridge.finish();
    assert_eq!(status.code(), Some(0), "{}", bridge.stderr());
}

/// Every byte value, which a terminal in cooked mode would have turned into signals (0x03),
/// end of file (0x04), flow control (0x11, 0x13) or line-ending changes (0x0d, 0x0a).
fn all_bytes() -> Vec<u8> {
    (0..=255u8).collect()
}

#[test]
fn bytes_flow_both_ways_unchanged() {
    if !termios_works() {
        return;
    }
    let uart = Uart::new();
    let (bridge, mut client) = start_with_client(&uart);

    // Network to device.
    client.write_all(b"AT\r\n").unwrap();
    assert_eq!(uart.read_exact(4), b"AT\r\n");
    client.write_all(&all_bytes()).unwrap();
    assert_eq!(uart.read_exact(256), all_bytes());

    // Device to network.
    (&uart.master).write_all(b"OK\r\n").unwrap();
    (&uart.master).write_all(&all_bytes()).unwrap();
    let mut got = vec![0u8; 4 + 256];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got[..4], b"OK\r\n");
    assert_eq!(&got[4..], &all_bytes()[..]);

    // More than either 4 KiB buffer, both ways at once.
    let up: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let down: Vec<u8> = (0..40_000u32).map(|i| (i * 13 % 253) as u8).collect();
    let mut writer = client.try_clone().unwrap();
    let up2 = up.clone();
    let w = thread::spawn(move || writer.write_all(&up2));
    let mut master = uart.master.try_clone().unwrap();
    let down2 = down.clone();
    let m = thread::spawn(move || master.write_all(&down2));
    let mut from_uart = vec![0u8; down.len()];
    client.read_exact(&mut from_uart).unwrap();
    assert!(from_uart == down, "device to network bytes differ");
    assert!(
        uart.read_exact(up.len()) == up,
        "network to device bytes differ"
    );
    w.join().unwrap().unwrap();
    m.join().unwrap().unwrap();
    terminate(bridge);
}

#[test]
fn one_client_at_a_time_and_the_next_after_it_leaves() {
    if !termios_works() {
        return;
    }
    let uart = Uart::new();
    let (mut bridge, addr) = start(&uart);
    let first = connect(addr);
    bridge.expect_line("the first client", |l| l.contains(" connected to "));

    let second = connect(addr);
    let mut busy = String::new();
    (&second).read_to_string(&mut busy).unwrap();
    assert!(busy.contains("port busy"), "{busy:?}");
    bridge.expect_line("the refusal", |l| l.ends_with("refused: port busy"));

    drop(first);
    bridge.expect_line("the first client leaving", |l| l.ends_with(" disconnected"));
    let mut third = connect(addr);
    bridge.expect_line("the third client", |l| l.contains(" connected to "));
    device_to_client(&uart, &mut third, b"hello third");
}

#[test]
fn device_output_with_no_client_is_dropped_not_queued() {
    if !termios_works() {
        return;
    }
    let uart = Uart::new();
    let (mut bridge, addr) = start(&uart);
    (&uart.master).write_all(b"nobody hears this").unwrap();
    // Give the bridge a moment to read and drop it.
    thread::sleep(std::time::Duration::from_millis(200));
    let mut client = connect(addr);
    bridge.expect_line("the client", |l| l.contains(" connected to "));
    device_to_client(&uart, &mut client, b"fresh");
}

#[test]
fn the_device_going_away_ends_the_bridge_with_an_error() {
    if !termios_works() {
        return;
    }
    // No reader thread here: its handle would keep the controlling side open. (CLOEXEC in
    // `open_pty` keeps the bridges of concurrent tests from inheriting it, too.)
    let (master, device) = open_pty();
    let mut bridge = Example::spawn(
        "serial_bridge",
        &["--device", &device, "--baud", "9600", "127.0.0.1:0"],
    );
    bridge.listening_addr();
    drop(master);
    let (status, _) = bridge.finish();
    assert_eq!(status.code(), Some(1));
    assert!(
        bridge.stderr().contains("device gone"),
        "{}",
        bridge.stderr()
    );
}

#[test]
fn a_missing_device_or_a_non_terminal_is_a_clear_error() {
    let (status, _, stderr) = run_to_end("serial_bridge", &["--device", "/dev/ttyNOPE"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/dev/ttyNOPE"), "{stderr}");

    let file = std::env::temp_dir().join(format!("serial_bridge_{}", std::process::id()));
    std::fs::write(&file, "").unwrap();
    let (status, _, stderr) = run_to_end("serial_bridge", &["--device", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(status.code(), Some(1), "{stderr}");
    // Where termios is not emulated, every file gets ENOSYS rather than ENOTTY.
    if termios_works() {
        assert!(stderr.contains("not a terminal"), "{stderr}");
    }
}

#[test]
fn bad_arguments_are_refused_with_usage() {
    support::examples::assert_usage_errors(
        "serial_bridge",
        &[
            &[],
            &["--device"],
            &["--device", "/dev/null", "--baud", "fast"],
            &["--device", "/dev/null", "not-an-address"],
        ],
    );
}

/// The rates termios names, as the refusal lists them.
const RATES: &str = "50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, \
                     38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, \
                     1152000, 1500000, 2000000, 2500000, 3000000, 3500000 or 4000000";

/// `--baud 0` would be `B0`, which tells the driver to hang up the line: refused, as is any
/// rate termios has no name for, with the list of the accepted ones. Checked before the
/// device is opened, so any path will do.
#[test]
fn baud_zero_and_rates_termios_cannot_set_are_refused_with_the_accepted_ones() {
    for baud in ["0", "250000", "4000001", "9601"] {
        let (status, stdout, stderr) =
            run_to_end("serial_bridge", &["--device", "/dev/null", "--baud", baud]);
        assert_eq!(status.code(), Some(2), "{baud}: {stderr}");
        assert_eq!(stdout, "");
        assert!(
            stderr.starts_with(&format!(
                "serial_bridge: --baud: not accepted: \"{baud}\" (use {RATES})\n\
                 usage: serial_bridge --device DEV [--baud N] [ADDR]\n"
            )),
            "{baud}: {stderr}"
        );
    }
    // Every listed rate gets past the command line, to the device (here: not a terminal).
    for baud in RATES.split([',', ' ']).filter(|r| r.parse::<u32>().is_ok()) {
        let (status, _, stderr) =
            run_to_end("serial_bridge", &["--device", "/dev/null", "--baud", baud]);
        assert_eq!(status.code(), Some(1), "{baud}: {stderr}");
        assert!(stderr.starts_with("serial_bridge: /dev/null: "), "{stderr}");
    }
}

#[test]
fn help_states_every_default_and_exits_zero() {
    let stdout = support::examples::assert_help(
        "serial_bridge",
        &[
            "(required)",
            "(default: 115200)",
            "(default: 127.0.0.1:2000)",
            "IP:PORT, localhost:PORT or PORT",
            "epoll, 5 registrations",
            "SIGHUP: nothing to reload",
            "SIGINT, SIGTERM: exit 0",
        ],
    );
    assert!(
        stdout.starts_with("usage: serial_bridge --device DEV [--baud N] [ADDR]\n"),
        "{stdout}"
    );
    // The rates, wrapped over lines in the help, are the ones the refusal lists.
    let help: String = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains(&RATES.replace(" or ", ", ")),
        "the rates in:\n{stdout}"
    );
}

/// A bare port and `localhost:PORT` are both on 127.0.0.1; bytes flow either way.
#[test]
fn a_bare_port_and_localhost_port_listen_on_loopback() {
    if !termios_works() {
        return;
    }
    for arg in ["0", "localhost:0"] {
        let uart = Uart::new();
        let mut bridge = Example::spawn("serial_bridge", &["--device", &uart.device, arg]);
        let addr = bridge.listening_addr();
        assert_eq!(addr.ip().to_string(), "127.0.0.1", "{arg}");
        let mut client = connect(addr);
        bridge.expect_line("the client", |l| l.contains(" connected to "));
        client.write_all(b"ping").unwrap();
        assert_eq!(uart.read_exact(4), b"ping");
        device_to_client(&uart, &mut client, b"pong");
    }
}

/// SIGHUP asks a daemon to reload its configuration; the bridge has none, so it says so and
/// keeps the device open and the client connected (a hang-up of its terminal ends it
/// instead: tests/example_echo.rs).
#[test]
fn sighup_says_nothing_to_reload_and_the_bridge_goes_on() {
    if !termios_works() {
        return;
    }
    let uart = Uart::new();
    let (mut bridge, mut client) = start_with_client(&uart);
    for _ in 0..2 {
        bridge.signal(Signal::HUP);
        bridge.expect_line("the SIGHUP line", |l| {
            l == "SIGHUP: nothing to reload (no config file); still running"
        });
    }
    client.write_all(b"after HUP").unwrap();
    assert_eq!(uart.read_exact(9), b"after HUP");
    device_to_client(&uart, &mut client, b"still up");
    terminate(bridge);
}
