//! A ser2net-style bridge: a serial device in raw mode on one side, a TCP client on the
//! other, bytes copied both ways by one thread on picosel's event loop.
//!
//! ```sh
//! cargo run --example serial_bridge -- --device /dev/ttyUSB0 --baud 115200 127.0.0.1:2000
//! nc 127.0.0.1 2000            # or: telnet, socat - TCP:127.0.0.1:2000
//! ```
//!
//! The device is opened with `O_NOCTTY` (it must not become this process's controlling
//! terminal) and put in raw mode with termios: no line editing, no echo, no CR/LF
//! translation, 8 data bits, and `CLOCAL` so a UART without modem lines is not waited on.
//! One client is served at a time, as ser2net does by default; another one is told the port
//! is busy and closed.
//!
//! Each direction has a fixed 4 KiB buffer. While the buffer towards the client is full the
//! device is not read (the kernel's tty buffer and the device's flow control take over); while
//! the buffer towards the device is full the client is not read (TCP's window takes over).
//! Nothing grows, and nothing spins.
//!
//! `--baud` takes the rates termios names (`B50` to `B4000000`, termios(3)); anything else is
//! refused at start with the list. 0 in particular is no speed: `B0` tells the driver to hang
//! up the line (drop DTR). ADDR may be `IP:PORT`, `localhost:PORT` or a bare `PORT` (both on
//! 127.0.0.1); `--help` lists every option with its default.
//!
//! SIGINT and SIGTERM end the bridge with status 0. SIGHUP sent on purpose (`kill -HUP`,
//! `systemctl reload`) asks a daemon to reload its configuration and finds none here: the
//! bridge prints `SIGHUP: nothing to reload (no config file); still running` and keeps the
//! device open and the client connected. SIGHUP because the terminal the bridge was started
//! from went away (its window closed, its ssh session ended) ends it as SIGTERM does (see
//! `common::Hangup`).

mod common;

use common::Window;
use picosel::{block_signals, DefaultEventLoop, Interest, IoEvent, RawFd, Signal, SignalEvent};
use rustix::io::Errno;
use rustix::termios::{self, ControlModes, OptionalActions};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: common::Usage = common::Usage {
    synopsis: "serial_bridge --device DEV [--baud N] [ADDR]",
    details: "
  --device DEV    the serial device, e.g. /dev/ttyUSB0 or /dev/serial0 (required)
  --baud N        the line speed, one of 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800,
                  2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000,
                  576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000,
                  3500000, 4000000 (default: 115200)
  ADDR            where to listen: IP:PORT, localhost:PORT or PORT (on 127.0.0.1);
                  port 0 picks a free port (default: 127.0.0.1:2000)
  -h, --help      print this help and exit

The event loop: epoll, 5 registrations (the device, the listener, one client, the signals).
SIGINT, SIGTERM: exit 0.
SIGHUP: nothing to reload (no config file): says so and keeps bridging; but when the
terminal it was started from is gone, exit 0 as for SIGTERM.",
};
/// Where the bridge listens without an ADDR.
const DEFAULT_ADDR: SocketAddr = common::localhost(2000);
const DEFAULT_BAUD: u32 = 115_200;
/// The rates termios has a `B` constant for (termios(3); `rustix::termios::speed`). `B0` is
/// left out: it is not a speed but "hang up".
const RATES: [u32; 30] = [
    50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19_200, 38_400, 57_600,
    115_200, 230_400, 460_800, 500_000, 576_000, 921_600, 1_000_000, 1_152_000, 1_500_000,
    2_000_000, 2_500_000, 3_000_000, 3_500_000, 4_000_000,
];
const BUF: usize = 4096;
const DEVICE: usize = 0;
const LISTENER: usize = 1;
const CLIENT: usize = 2;

/// The device, the listener, one client, and the loop's own signalfd.
type Loop = DefaultEventLoop<Bridge, 5, 1>;

struct Bridge {
    device: File,
    dev_name: String,
    listener: TcpListener,
    client: Option<(TcpStream, SocketAddr)>,
    to_net: [u8; BUF],
    to_net_win: Window,
    to_dev: [u8; BUF],
    to_dev_win: Window,
    /// What the device and the client are registered for now (`None`: not registered).
    dev_interest: Option<Interest>,
    client_interest: Option<Interest>,
    failed: Option<String>,
}

/// Opens `path` read-write, non-blocking, without making it the controlling terminal, and
/// sets raw mode at `baud`.
fn open_device(path: &Path, baud: u32) -> Result<File, String> {
    let name = path.display();
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => format!(
                "{name}: permission denied (on Raspberry Pi OS: sudo usermod -aG dialout $USER, \
                 then log in again)"
            ),
            _ => format!("{name}: {e}"),
        })?;
    let mut t = termios::tcgetattr(&dev).map_err(|e| match e {
        Errno::NOTTY => format!("{name}: not a terminal"),
        e => format!("{name}: cannot read its terminal settings: {e}"),
    })?;
    t.make_raw();
    // CREAD: receive at all; CLOCAL: ignore modem control lines, which a bare UART lacks.
    t.control_modes |= ControlModes::CREAD | ControlModes::CLOCAL;
    t.set_speed(baud)
        .map_err(|e| format!("{name}: baud rate {baud}: {e}"))?;
    termios::tcsetattr(&dev, OptionalActions::Now, &t)
        .map_err(|e| format!("{name}: cannot set raw mode: {e}"))?;
    Ok(dev)
}

/// SIGINT, SIGTERM, and SIGHUP from a terminal that went away: stop. SIGHUP asking for a
/// reload: there is no config; say so and go on.
fn on_signal(lp: &mut Loop, ev: SignalEvent) {
    if ev.signal == Signal::HUP && common::hangup() == common::Hangup::Reload {
        common::nothing_to_reload();
    } else {
        lp.stop();
    }
}

fn on_accept(lp: &mut Loop, _ev: IoEvent) {
    let b = lp.context_mut();
    let (mut stream, peer) = match b.listener.accept() {
        Ok(pair) => pair,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
        Err(e) => {
            eprintln!("accept: {e}");
            return;
        }
    };
    if b.client.is_some() {
        // One client at a time: more would interleave their bytes on the wire.
        let _ = stream.write_all(b"serial_bridge: port busy\r\n");
        println!("{peer} refused: port busy");
        return;
    }
    if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
        return;
    }
    println!("{peer} connected to {}", b.dev_name);
    b.client = Some((stream, peer));
    b.to_net_win.clear();
    sync(lp);
}

/// The device is readable and/or writable.
fn on_device(lp: &mut Loop, ev: IoEvent) {
    let b = lp.context_mut();
    if ev.ready.is_readable() {
        let read = if b.client.is_some() {
            b.to_net_win
                .fill(&mut b.to_net, |buf| rustix::io::read(&b.device, buf))
        } else {
            // Nobody to send to: read and drop, as a UART with nothing attached would.
            let mut scratch = [0u8; BUF];
            rustix::io::read(&b.device, &mut scratch)
        };
        match read {
            // A tty whose other end is gone reads as EIO (or, for some drivers, as EOF).
            Ok(0) | Err(Errno::IO) => b.failed = Some(format!("{}: device gone", b.dev_name)),
            Ok(_) | Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            Err(e) => b.failed = Some(format!("{}: {e}", b.dev_name)),
        }
    }
    if ev.ready.is_writable() {
        flush_device(b);
    }
    if let Err(e) = flush_client(b) {
        drop_client(lp, &format!("disconnected: {e}"));
    }
    sync(lp);
}

/// The client is readable and/or writable.
fn on_client(lp: &mut Loop, ev: IoEvent) {
    let b = lp.context_mut();
    let Some((stream, _)) = b.client.as_ref() else {
        return;
    };
    let mut gone = None;
    if ev.ready.is_readable() {
        match b
            .to_dev_win
            .fill(&mut b.to_dev, |buf| rustix::io::read(stream, buf))
        {
            Ok(0) => gone = Some(String::from("disconnected")),
            Ok(_) | Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            Err(e) => gone = Some(format!("disconnected: {e}")),
        }
        flush_device(b);
    }
    if gone.is_none() {
        if let Err(e) = flush_client(b) {
            gone = Some(format!("disconnected: {e}"));
        }
    }
    if let Some(why) = gone {
        drop_client(lp, &why);
    }
    sync(lp);
}

/// Writes what waits for the device.
fn flush_device(b: &mut Bridge) {
    if b.to_dev_win.is_empty() {
        return;
    }
    match b
        .to_dev_win
        .drain(&b.to_dev, |buf| rustix::io::write(&b.device, buf))
    {
        Ok(_) | Err(Errno::AGAIN) | Err(Errno::INTR) => {}
        Err(e) => b.failed = Some(format!("{}: {e}", b.dev_name)),
    }
}

/// Sends what waits for the client.
fn flush_client(b: &mut Bridge) -> Result<(), Errno> {
    let Some((stream, _)) = b.client.as_ref() else {
        return Ok(());
    };
    if b.to_net_win.is_empty() {
        return Ok(());
    }
    // MSG_NOSIGNAL: a client that vanished is an EPIPE to handle, not a SIGPIPE.
    match b.to_net_win.drain(&b.to_net, |buf| {
        rustix::net::send(stream, buf, rustix::net::SendFlags::NOSIGNAL)
    }) {
        Ok(_) | Err(Errno::AGAIN) | Err(Errno::INTR) => Ok(()),
        Err(e) => Err(e),
    }
}

fn drop_client(lp: &mut Loop, why: &str) {
    let b = lp.context_mut();
    let Some((stream, peer)) = b.client.take() else {
        return;
    };
    b.to_net_win.clear();
    b.client_interest = None;
    // Unregister before the socket closes: the loop borrows fds by number.
    let _ = lp.unregister(stream.as_raw_fd());
    println!("{peer} {why}");
}

/// Registers, modifies or unregisters `fd` so that it waits for `want`; no syscall when
/// nothing changes.
fn set_interest(
    lp: &mut Loop,
    fd: RawFd,
    token: usize,
    handler: fn(&mut Loop, IoEvent),
    now: Option<Interest>,
    want: Option<Interest>,
) -> picosel::Result<()> {
    match (now, want) {
        (a, b) if a == b => Ok(()),
        (None, Some(i)) => lp.register(fd, i, token, handler).map(|_| ()),
        (Some(_), Some(i)) => lp.modify(fd, i).map(|_| ()),
        (Some(_), None) => lp.unregister(fd).map(|_| ()),
        (None, None) => Ok(()),
    }
}

/// Brings both registrations in line with the buffers, and stops the loop on a device error.
fn sync(lp: &mut Loop) {
    let b = lp.context_mut();
    if let Some(e) = b.failed.as_ref() {
        eprintln!("serial_bridge: {e}");
        lp.stop();
        return;
    }
    let read = Interest::READ;
    let write = Interest::WRITE;
    // The device: read while there is room towards the client (or no client), write while
    // bytes wait for it.
    let dev_want = match (
        b.client.is_none() || !b.to_net_win.is_full(BUF),
        !b.to_dev_win.is_empty(),
    ) {
        (true, true) => Some(read | write),
        (true, false) => Some(read),
        (false, true) => Some(write),
        (false, false) => None,
    };
    let client_want = b.client.as_ref().and_then(|_| {
        match (!b.to_dev_win.is_full(BUF), !b.to_net_win.is_empty()) {
            (true, true) => Some(read | write),
            (true, false) => Some(read),
            (false, true) => Some(write),
            (false, false) => None,
        }
    });
    let dev_fd = b.device.as_raw_fd();
    let client_fd = b.client.as_ref().map(|(s, _)| s.as_raw_fd());
    let (dev_now, client_now) = (b.dev_interest, b.client_interest);
    if let Err(e) = set_interest(lp, dev_fd, DEVICE, on_device, dev_now, dev_want) {
        eprintln!("serial_bridge: cannot watch the device: {e}");
        lp.stop();
        return;
    }
    lp.context_mut().dev_interest = dev_want;
    if let Some(fd) = client_fd {
        match set_interest(lp, fd, CLIENT, on_client, client_now, client_want) {
            Ok(()) => lp.context_mut().client_interest = client_want,
            Err(e) => drop_client(lp, &format!("dropped: {e}")),
        }
    }
}

/// The value of `--baud`, which must be one of [`RATES`].
fn parse_baud(args: &mut common::Args, opt: &str) -> u32 {
    let baud = args.number(opt);
    if !RATES.contains(&baud) {
        USAGE.not_accepted(opt, &baud.to_string(), &common::one_of(&RATES));
    }
    baud
}

fn main() -> ExitCode {
    if let Err(e) = block_signals(&[Signal::INT, Signal::TERM, Signal::HUP]) {
        eprintln!("serial_bridge: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }
    let mut device = None;
    let mut baud = DEFAULT_BAUD;
    let mut addr = None;
    let mut args = common::Args::new(&USAGE);
    while let Some(arg) = args.next() {
        match arg {
            common::Arg::Opt(opt) => match opt.as_str() {
                "--device" => device = Some(PathBuf::from(args.value(&opt))),
                "--baud" => baud = parse_baud(&mut args, &opt),
                _ => args.unknown_option(&opt),
            },
            common::Arg::Operand(a) if addr.is_none() => addr = Some(args.addr("ADDR", &a)),
            common::Arg::Operand(a) => args.unexpected_argument(&a),
        }
    }
    let Some(device) = device else {
        USAGE.required("--device")
    };
    match run(&device, baud, addr.unwrap_or(DEFAULT_ADDR)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serial_bridge: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(device: &Path, baud: u32, addr: SocketAddr) -> Result<(), String> {
    let dev = open_device(device, baud)?;
    let listener = TcpListener::bind(addr).map_err(|e| format!("listen on {addr}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let lfd = listener.as_raw_fd();
    let mut lp = Box::new(Loop::new(Bridge {
        device: dev,
        dev_name: device.display().to_string(),
        listener,
        client: None,
        to_net: [0; BUF],
        to_net_win: Window::default(),
        to_dev: [0; BUF],
        to_dev_win: Window::default(),
        dev_interest: None,
        client_interest: None,
        failed: None,
    }));
    lp.register(lfd, Interest::READ, LISTENER, on_accept)
        .map_err(|e| format!("watch the listener: {e}"))?;
    for sig in [Signal::INT, Signal::TERM, Signal::HUP] {
        lp.add_signal(sig, on_signal)
            .map_err(|e| format!("watch signals: {e}"))?;
    }
    sync(&mut lp);
    println!(
        "listening on {local}, bridging {} at {baud} baud",
        device.display()
    );
    lp.run().map_err(|e| format!("event loop: {e}"))?;
    match lp.context_mut().failed.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
