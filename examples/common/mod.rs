//! Small pieces the examples share: the command line (one wording per kind of mistake),
//! addresses, SIGHUP in a daemon without a config file, a bounded byte buffer, timestamps.
//!
//! This is `examples/common/mod.rs`, not `examples/common.rs`, so cargo does not build it as an
//! example of its own; each example includes it with `mod common;`.

// Each example uses a different part of this module.
#![allow(dead_code)]

use picosel::{block_signals, DefaultEventLoop, Signal};
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What an example tells about its command line.
pub struct Usage {
    /// `NAME [OPTIONS] ARGS` on one line: shown with every command-line mistake. Its first
    /// word is the program's name.
    pub synopsis: &'static str,
    /// Every option and argument with its default, the loop's backend and capacity, and what
    /// the signals do: shown by `-h` and `--help`, after the synopsis. It starts with a
    /// newline (so its lines can be written in the source as they print), which leaves a blank
    /// line after the synopsis.
    pub details: &'static str,
}

impl Usage {
    /// The program's name: the synopsis' first word.
    pub fn name(&self) -> &'static str {
        self.synopsis.split(' ').next().unwrap_or(self.synopsis)
    }

    /// Prints the usage and the details on stdout and exits 0 (`-h`, `--help`).
    pub fn help(&self) -> ! {
        println!("usage: {}\n{}", self.synopsis, self.details);
        std::process::exit(0)
    }

    /// Prints `NAME: MSG` and the usage on stderr and exits with status 2, the usual status for
    /// a command-line mistake. Every mistake goes through here, most through the helpers
    /// below, so that each kind is worded one way in every example.
    pub fn error(&self, msg: &str) -> ! {
        let name = self.name();
        eprintln!(
            "{name}: {msg}\nusage: {}\n`{name} --help` shows every option and its default",
            self.synopsis
        );
        std::process::exit(2)
    }

    /// `unknown option --foo`
    pub fn unknown_option(&self, option: &str) -> ! {
        self.error(&format!("unknown option {option}"))
    }

    /// `unexpected argument "x"`: an operand too many.
    pub fn unexpected_argument(&self, arg: &OsStr) -> ! {
        self.error(&format!("unexpected argument {arg:?}"))
    }

    /// `--baud needs a value`
    pub fn missing_value(&self, option: &str) -> ! {
        self.error(&format!("{option} needs a value"))
    }

    /// `--device is required`, `PATH is required`
    pub fn required(&self, what: &str) -> ! {
        self.error(&format!("{what} is required"))
    }

    /// `--baud: not a number: "x"`
    pub fn not_a_number(&self, what: &str, value: &str) -> ! {
        self.error(&not_a_number(what, value))
    }

    /// `--baud: not accepted: "0" (use 50, 75, ...)`
    pub fn not_accepted(&self, what: &str, value: &str, accepted: &str) -> ! {
        self.error(&not_accepted(what, value, accepted))
    }

    /// `ADDR: not an address: "x" (use IP:PORT, localhost:PORT or PORT)`
    pub fn not_an_address(&self, what: &str, value: &str) -> ! {
        self.error(&format!(
            "{what}: not an address: {value:?} (use {ADDR_FORMS})"
        ))
    }
}

/// `WHAT: not a number: "x"`, for an option (`--baud`) or a config key (`period_ms`).
pub fn not_a_number(what: &str, value: &str) -> String {
    format!("{what}: not a number: {value:?}")
}

/// `WHAT: not accepted: "0" (use ACCEPTED)`: a well-formed value outside the accepted ones,
/// which `accepted` lists or describes; for an option or a config key.
pub fn not_accepted(what: &str, value: &str, accepted: &str) -> String {
    format!("{what}: not accepted: {value:?} (use {accepted})")
}

/// `a, b or c`: the accepted values, for [`not_accepted`].
pub fn one_of<T: std::fmt::Display>(values: &[T]) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        let sep = match i {
            0 => "",
            i if i + 1 == values.len() => " or ",
            _ => ", ",
        };
        let _ = write!(out, "{sep}{v}");
    }
    out
}

/// One command-line argument.
pub enum Arg {
    /// `-x` or `--xyz` (before any `--`).
    Opt(String),
    /// Anything else: an address, a path. A lone `-` is one too.
    Operand(OsString),
}

/// The command line, read one argument at a time; `-h` and `--help` print the help and exit.
pub struct Args {
    usage: &'static Usage,
    rest: std::iter::Skip<std::env::ArgsOs>,
    /// After `--`, everything is an operand.
    operands_only: bool,
}

impl Args {
    /// The process's arguments, after the program's name.
    pub fn new(usage: &'static Usage) -> Args {
        Args {
            usage,
            rest: std::env::args_os().skip(1),
            operands_only: false,
        }
    }

    /// The next argument. `-h` or `--help` prints the help and exits 0; `--` makes all the
    /// arguments after it operands.
    pub fn next(&mut self) -> Option<Arg> {
        let arg = self.rest.next()?;
        if self.operands_only {
            return Some(Arg::Operand(arg));
        }
        let text = arg.to_string_lossy();
        match text.as_ref() {
            "-h" | "--help" => self.usage.help(),
            "--" => {
                self.operands_only = true;
                self.next()
            }
            t if t.starts_with('-') && t.len() > 1 => Some(Arg::Opt(t.to_string())),
            _ => Some(Arg::Operand(arg)),
        }
    }

    /// The value after `option`, as it is (a path may be any bytes).
    pub fn value(&mut self, option: &str) -> OsString {
        self.rest
            .next()
            .unwrap_or_else(|| self.usage.missing_value(option))
    }

    /// The arguments not read yet, as they are: a command line to pass on, whose options are
    /// its own (`supervisor -- sh -c CMD` hands `sh -c CMD` over unread).
    pub fn remaining(&mut self) -> Vec<OsString> {
        self.rest.by_ref().collect()
    }

    /// The value after `option`, as text (a value that is not UTF-8 is shown lossily and then
    /// refused by the caller's check, as any other wrong value).
    pub fn text(&mut self, option: &str) -> String {
        self.value(option).to_string_lossy().into_owned()
    }

    /// The value after `option`, a positive number of milliseconds.
    pub fn millis(&mut self, option: &str) -> Duration {
        let v = self.text(option);
        match v.parse::<u64>() {
            Ok(0) => self
                .usage
                .not_accepted(option, &v, "a positive number of milliseconds"),
            Ok(ms) => Duration::from_millis(ms),
            Err(_) => self.usage.not_a_number(option, &v),
        }
    }

    /// The value after `option`, as a number.
    pub fn number<T: FromStr>(&mut self, option: &str) -> T {
        let v = self.text(option);
        v.parse()
            .unwrap_or_else(|_| self.usage.not_a_number(option, &v))
    }

    /// The value after `option`, which must be one of `choices`.
    pub fn choice(&mut self, option: &str, choices: &[&'static str]) -> &'static str {
        let v = self.text(option);
        match choices.iter().find(|&&c| c == v) {
            Some(c) => c,
            None => self.usage.not_accepted(option, &v, &one_of(choices)),
        }
    }

    /// Operand `arg`, named `what` in the usage, as an address (see [`parse_addr`]).
    pub fn addr(&self, what: &str, arg: &OsStr) -> SocketAddr {
        let s = arg.to_string_lossy();
        parse_addr(&s).unwrap_or_else(|| self.usage.not_an_address(what, &s))
    }

    /// A whole command line of at most one operand, an address named `ADDR`, and no options
    /// (but `--help`).
    pub fn only_addr(mut self) -> Option<SocketAddr> {
        let mut addr = None;
        while let Some(arg) = self.next() {
            match arg {
                Arg::Opt(opt) => self.unknown_option(&opt),
                Arg::Operand(a) if addr.is_none() => addr = Some(self.addr("ADDR", &a)),
                Arg::Operand(a) => self.unexpected_argument(&a),
            }
        }
        addr
    }

    /// `unknown option --foo`
    pub fn unknown_option(&self, option: &str) -> ! {
        self.usage.unknown_option(option)
    }

    /// `unexpected argument "x"`
    pub fn unexpected_argument(&self, arg: &OsStr) -> ! {
        self.usage.unexpected_argument(arg)
    }
}

/// The address forms [`parse_addr`] takes, as the error message names them.
pub const ADDR_FORMS: &str = "IP:PORT, localhost:PORT or PORT";

/// An address as the examples take it: `IP:PORT` (`192.168.1.20:8800`, `0.0.0.0:8800`,
/// `[::1]:8800`), `localhost:PORT`, or a bare `PORT`; the last two mean `127.0.0.1:PORT`.
/// No name is looked up (no DNS, no `/etc/hosts`): `localhost` is the only name, and it is
/// always the IPv4 loopback. Port 0 asks a listener for a free port.
pub fn parse_addr(s: &str) -> Option<SocketAddr> {
    if let Ok(addr) = s.parse() {
        return Some(addr);
    }
    let port = match s.rsplit_once(':') {
        Some((host, port)) if host.eq_ignore_ascii_case("localhost") => port,
        Some(_) => return None,
        None => s,
    };
    // u16's parser takes a leading `+`: only digits are a port here.
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// A loopback address, for the defaults.
pub const fn localhost(port: u16) -> SocketAddr {
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

/// What a SIGHUP asks of a daemon.
///
/// SIGHUP has two senders. A person or a service manager sends it on purpose to ask a daemon
/// to reload its configuration: `kill -HUP PID`, `systemctl reload` (with systemd's
/// `ExecReload=kill -HUP $MAINPID`). A terminal sends it when it goes away: its window
/// closed, its ssh session ended (the kernel signals the terminal's processes, the shell
/// signals its jobs). A daemon started from that terminal is then expected to end, as any
/// program started from it does (to outlive it, start the daemon with systemd, `nohup` or
/// `setsid`). The two are told apart by the terminal: once it is gone, the kernel answers
/// EIO to stdin, stdout and stderr that were on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hangup {
    /// The terminal is gone: end cleanly, without writing to it.
    TerminalGone,
    /// A request: reload the configuration, or say there is none and go on.
    Reload,
}

/// What the SIGHUP just received asks for (see [`Hangup`]).
pub fn hangup() -> Hangup {
    use std::os::fd::AsFd;
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let gone = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()]
        .into_iter()
        .any(|fd| matches!(rustix::termios::tcgetattr(fd), Err(rustix::io::Errno::IO)));
    if gone {
        Hangup::TerminalGone
    } else {
        Hangup::Reload
    }
}

/// What a daemon without a config file does on a SIGHUP that asks for a reload: says so and
/// keeps running. It neither dies (SIGHUP's default action) nor pretends to have reloaded.
pub fn nothing_to_reload() {
    println!("{NOTHING_TO_RELOAD}");
}

/// The line [`nothing_to_reload`] prints.
pub const NOTHING_TO_RELOAD: &str = "SIGHUP: nothing to reload (no config file); still running";

/// SIGHUP for a program whose own loop is a bare selector, which has no signal support:
/// blocks SIGHUP in this thread and answers it on a small thread of its own, which runs an
/// event loop with one registration, its signalfd. A reload request gets
/// [`nothing_to_reload`]; a terminal gone ends the process with status 0.
///
/// Call it first in `main`, before any other thread starts: the blocked mask is inherited by
/// the threads created afterwards, and a thread that did not block SIGHUP would take it with
/// its default action, which ends the process.
pub fn answer_sighup_on_a_thread() -> Result<(), String> {
    block_signals(&[Signal::HUP]).map_err(|e| format!("cannot block SIGHUP: {e}"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            let mut lp = DefaultEventLoop::<(), 1, 0>::new(());
            let watched = lp.add_signal(Signal::HUP, |_, _| match hangup() {
                Hangup::Reload => nothing_to_reload(),
                Hangup::TerminalGone => std::process::exit(0),
            });
            let ok = watched.is_ok();
            let _ = tx.send(watched.map_err(|e| format!("cannot watch SIGHUP: {e}")));
            if ok {
                if let Err(e) = lp.run() {
                    eprintln!("SIGHUP watcher: {e}");
                }
            }
        })
        .map_err(|e| format!("cannot start the SIGHUP watcher: {e}"))?;
    rx.recv()
        .unwrap_or_else(|_| Err("the SIGHUP watcher did not start".into()))
}

/// Prints a line on stdout, and nothing if stdout is gone (a terminal that hung up, a closed
/// pipe), where `println!` would panic: for the last words of a daemon on its way out.
pub fn last_words(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Bytes waiting in a fixed slice that the caller owns: `slice[start..end]`.
///
/// Reading appends at `end`, writing consumes from `start`; when the window reaches the end of
/// the slice with room before `start`, the bytes are moved to the front. The slice is never
/// grown, which is what keeps a slow peer from making a server use more memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    start: usize,
    end: usize,
}

impl Window {
    /// The number of bytes waiting.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether `cap` bytes are waiting: no room to read more.
    pub fn is_full(&self, cap: usize) -> bool {
        self.len() >= cap
    }

    /// Lets `read` fill the free part of `slice` and keeps what it read.
    ///
    /// Returns what `read` returned; `Ok(0)` means end of file (or no room: check
    /// [`is_full`](Self::is_full) first).
    pub fn fill<E>(
        &mut self,
        slice: &mut [u8],
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        if self.end == slice.len() && self.start > 0 {
            slice.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = read(&mut slice[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Lets `write` take the waiting bytes and drops what it took.
    pub fn drain<E>(
        &mut self,
        slice: &[u8],
        write: impl FnOnce(&[u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let n = write(&slice[self.start..self.end])?;
        self.start += n;
        if self.start == self.end {
            // Empty again: start over at the front so the next read gets the whole slice.
            self.start = 0;
            self.end = 0;
        }
        Ok(n)
    }

    /// Forgets the waiting bytes.
    pub fn clear(&mut self) {
        *self = Window::default();
    }
}

/// Time since an arbitrary fixed point (boot, on Linux), from `CLOCK_MONOTONIC`: it never jumps
/// when the wall clock is set (by NTP, or by hand on a Pi without a real-time clock).
pub fn monotonic() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The wall clock as UTC ISO 8601 with milliseconds, for example `2026-11-26T13:55:01.123Z`.
pub fn wall_clock() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut out = utc_seconds(since);
    out.insert_str(out.len() - 1, &format!(".{:03}", since.subsec_millis()));
    out
}

/// A wall time (since the Unix epoch) as UTC ISO 8601 to the second, for example
/// `2026-11-26T13:55:01Z`.
pub fn utc_seconds(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian calendar (Howard Hinnant's
/// `civil_from_days`): no time-zone database needed for UTC.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
