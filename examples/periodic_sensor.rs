//! A daemon skeleton: read a sensor on a periodic timer, reload settings on SIGHUP, exit
//! cleanly on SIGTERM — all on one thread, on picosel's event loop.
//!
//! ```sh
//! cargo run --example periodic_sensor                                  # CPU temperature, 1 s
//! cargo run --example periodic_sensor -- --path /tmp/value --period-ms 200
//! cargo run --example periodic_sensor -- --config sensor.conf          # kill -HUP re-reads it
//! ```
//!
//! Each reading is printed as `WALL_CLOCK t=SECONDS value=VALUE`: the UTC time for people,
//! and the seconds since start on the monotonic clock, which never jumps (a Pi has no
//! real-time clock and sets its wall clock from the network after boot). On a Raspberry Pi
//! the default path, `/sys/class/thermal/thermal_zone0/temp`, holds the SoC temperature in
//! thousandths of a degree Celsius.
//!
//! The config file holds `key = value` lines (`#` starts a comment):
//!
//! ```text
//! path = /sys/class/thermal/thermal_zone0/temp
//! period_ms = 1000
//! ```
//!
//! Options on the command line give the starting values; the file, when given, overrides them
//! and is read again on every SIGHUP, as a daemon user expects (systemd's
//! `ExecReload=kill -HUP $MAINPID`). A mistake in the file names the file as the config file,
//! and the line: `config file /etc/sensor.conf: line 3: unknown key "colour" (path,
//! period_ms)`. At start that ends the program with status 2; on reload it is reported and
//! the running settings are kept, so a typo never stops the daemon. Without `--config`,
//! SIGHUP has nothing to reload and says so: `SIGHUP: nothing to reload (no config file); still
//! running`. SIGINT and SIGTERM exit 0, and so does SIGHUP when it comes from the terminal the
//! daemon was started from going away (its window closed, its ssh session ended; see
//! `common::Hangup`): that is no reload request.
//!
//! `--help` lists every option with its default.
//!
//! The sensor and the output sit behind [`Io`], and the loop type is one alias that a test
//! build switches to picosel's simulated backend in virtual time: `tests/virtual_sensor.rs`
//! runs this file's own handlers through seven simulated days of readings without sleeping.

mod common;

#[cfg(not(test))]
use picosel::DefaultEventLoop;
use picosel::{block_signals, Instant, Signal, SignalEvent, TimerEvent, TimerId};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: common::Usage = common::Usage {
    synopsis: "periodic_sensor [--path FILE] [--period-ms MS] [--config FILE]",
    details: "
  --path FILE       the sensor: a file whose first line is the value
                    (default: /sys/class/thermal/thermal_zone0/temp)
  --period-ms MS    milliseconds between readings, at least 1 (default: 1000)
  --config FILE     `key = value` lines (keys: path, period_ms) over the options above,
                    read again on SIGHUP (default: none)
  -h, --help        print this help and exit

The event loop: epoll, room for 2 registrations (it uses one, its signalfd), 1 timer.
SIGHUP: re-read --config (without one: nothing to reload, says so and keeps running); but
when the terminal it was started from is gone, exit 0 as for SIGTERM.
SIGINT, SIGTERM: exit 0.",
};
const DEFAULT_PATH: &str = "/sys/class/thermal/thermal_zone0/temp";
/// What a period may be, as the error messages say.
const PERIOD_RULE: &str = "a positive number of milliseconds";

/// The loop watches only its signalfd; one timer does the reading. Tests run the same
/// handlers on the simulated backend, in virtual time.
#[cfg(not(test))]
pub(crate) type Loop = DefaultEventLoop<Daemon, 2, 1>;
#[cfg(test)]
pub(crate) type Loop = picosel::SimEventLoop<Daemon, 2, 1>;

/// Where readings come from and where they go: the sensor file and stdout ([`Real`]), or a
/// test's script.
pub(crate) trait Io {
    /// Reads the sensor at `path`.
    fn read(&mut self, path: &Path) -> std::io::Result<String>;
    /// One reading: `t` since start on the loop's clock, and the periods the timer `missed`.
    fn reading(&mut self, t: Duration, value: &str, missed: u32);
}

/// The sensor file and stdout.
struct Real;

impl Io for Real {
    fn read(&mut self, path: &Path) -> std::io::Result<String> {
        read_sensor(path)
    }

    fn reading(&mut self, t: Duration, value: &str, missed: u32) {
        let missed = match missed {
            0 => String::new(),
            n => format!(" (missed {n} periods)"),
        };
        println!(
            "{} t={:.3} value={value}{missed}",
            common::wall_clock(),
            t.as_secs_f64()
        );
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Settings {
    pub(crate) path: PathBuf,
    pub(crate) period: Duration,
}

pub(crate) struct Daemon {
    /// The command line's settings, which the config file overrides.
    base: Settings,
    config: Option<PathBuf>,
    now: Settings,
    timer: Option<TimerId>,
    /// The loop's time when the timer first started: `t=` in the output is measured from here.
    start: Option<Instant>,
    pub(crate) readings: u64,
    /// The last read error, so a sensor that stays missing is reported once, not per tick.
    failing: Option<String>,
    pub(crate) io: Box<dyn Io>,
}

impl Daemon {
    /// A daemon with settings `now` (from `base` and the `config` file), reading through `io`.
    pub(crate) fn new(
        base: Settings,
        config: Option<PathBuf>,
        now: Settings,
        io: Box<dyn Io>,
    ) -> Daemon {
        Daemon {
            base,
            config,
            now,
            timer: None,
            start: None,
            readings: 0,
            failing: None,
            io,
        }
    }
}

/// A period in milliseconds, from option or config key `what`.
fn parse_period(what: &str, s: &str) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(0) => Err(common::not_accepted(what, s, PERIOD_RULE)),
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => Err(common::not_a_number(what, s)),
    }
}

/// Reads the config file over `base`. Every error starts with `config file PATH: `, and
/// with the line number when a line is wrong.
fn load(base: &Settings, config: Option<&Path>) -> Result<Settings, String> {
    let mut s = base.clone();
    let Some(file) = config else {
        return Ok(s);
    };
    let in_file = |msg: &dyn std::fmt::Display| format!("config file {}: {msg}", file.display());
    let text = std::fs::read_to_string(file).map_err(|e| in_file(&e))?;
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |msg: &str| in_file(&format_args!("line {}: {msg}", i + 1));
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| at(&format!("expected `key = value`, not {line:?}")))?;
        let value = value.trim();
        match key.trim() {
            "path" => s.path = PathBuf::from(value),
            "period_ms" => s.period = parse_period("period_ms", value).map_err(|e| at(&e))?,
            k => return Err(at(&format!("unknown key {k:?} (path, period_ms)"))),
        }
    }
    Ok(s)
}

/// Reads the sensor: the first line of the file, trimmed. A fixed buffer is enough for a
/// sysfs attribute, which the kernel limits to one page.
fn read_sensor(path: &Path) -> std::io::Result<String> {
    let mut buf = [0u8; 128];
    let n = std::fs::File::open(path)?.read(&mut buf)?;
    let text = String::from_utf8_lossy(&buf[..n]);
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

fn on_tick(lp: &mut Loop, ev: TimerEvent) {
    let now = lp.now();
    let d = lp.context_mut();
    let t = now - d.start.unwrap_or(now);
    match d.io.read(&d.now.path) {
        Ok(value) => {
            d.readings += 1;
            if d.failing.take().is_some() {
                eprintln!("{}: readable again", d.now.path.display());
            }
            d.io.reading(t, &value, ev.missed);
        }
        Err(e) => {
            let msg = e.to_string();
            if d.failing.as_deref() != Some(msg.as_str()) {
                eprintln!("cannot read {}: {msg}", d.now.path.display());
                d.failing = Some(msg);
            }
        }
    }
}

/// SIGINT, SIGTERM, and SIGHUP from a terminal that went away: stop. SIGHUP asking for a
/// reload: re-read the config file, or say there is none.
fn on_signal(lp: &mut Loop, ev: SignalEvent) {
    if ev.signal != Signal::HUP || common::hangup() == common::Hangup::TerminalGone {
        lp.stop();
    } else if lp.context_mut().config.is_none() {
        common::nothing_to_reload();
    } else {
        reload(lp);
    }
}

/// SIGHUP with a config file: read it again, and restart the timer if the period changed.
fn reload(lp: &mut Loop) {
    let d = lp.context_mut();
    let new = match load(&d.base, d.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("reload failed, keeping the running settings: {e}");
            return;
        }
    };
    let restart = new.period != d.now.period;
    d.now = new;
    d.failing = None;
    println!(
        "reloaded: path={} period_ms={}",
        d.now.path.display(),
        d.now.period.as_millis()
    );
    if restart {
        if let Some(old) = d.timer.take() {
            let _ = lp.cancel_timer(old);
        }
        if let Err(e) = start_timer(lp) {
            eprintln!("cannot start the timer: {e}");
            lp.stop();
        }
    }
}

/// Starts the reading timer at the current period, on the loop's clock, and notes the time
/// `t=` is measured from if this is the first start.
pub(crate) fn start_timer(lp: &mut Loop) -> picosel::Result<()> {
    let period = lp.context().now.period;
    // Read before arming: the timer's deadlines count from the clock read inside
    // `add_periodic`, and a start read after it would put the readings early (under qemu, by
    // half a millisecond).
    let now = lp.now();
    let id = lp.add_periodic(period, 0, on_tick)?;
    let d = lp.context_mut();
    d.timer = Some(id);
    d.start.get_or_insert(now);
    Ok(())
}

fn main() -> ExitCode {
    // Block the signals before anything else: from now on they are only taken through the
    // loop's signalfd, never delivered asynchronously.
    if let Err(e) = block_signals(&[Signal::HUP, Signal::INT, Signal::TERM]) {
        eprintln!("periodic_sensor: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }
    let mut base = Settings {
        path: PathBuf::from(DEFAULT_PATH),
        period: Duration::from_secs(1),
    };
    let mut config = None;
    let mut args = common::Args::new(&USAGE);
    while let Some(arg) = args.next() {
        match arg {
            common::Arg::Opt(opt) => match opt.as_str() {
                "--path" => base.path = PathBuf::from(args.value(&opt)),
                "--config" => config = Some(PathBuf::from(args.value(&opt))),
                "--period-ms" => {
                    base.period =
                        parse_period(&opt, &args.text(&opt)).unwrap_or_else(|e| USAGE.error(&e))
                }
                _ => args.unknown_option(&opt),
            },
            common::Arg::Operand(a) => args.unexpected_argument(&a),
        }
    }
    let now = match load(&base, config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("periodic_sensor: {e}");
            return ExitCode::from(2);
        }
    };
    // Fail early and clearly when there is no sensor; once running, a sensor that goes away
    // is reported and retried on every tick.
    if let Err(e) = read_sensor(&now.path) {
        eprintln!(
            "periodic_sensor: cannot read {}: {e}\n  \
             no sensor at this path? pass --path FILE (on a Raspberry Pi: {DEFAULT_PATH})",
            now.path.display()
        );
        return ExitCode::FAILURE;
    }

    let mut lp = Loop::new(Daemon::new(base, config, now, Box::new(Real)));
    for sig in [Signal::HUP, Signal::INT, Signal::TERM] {
        if let Err(e) = lp.add_signal(sig, on_signal) {
            eprintln!("periodic_sensor: cannot watch signals: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = start_timer(&mut lp) {
        eprintln!("periodic_sensor: cannot start the timer: {e}");
        return ExitCode::FAILURE;
    }
    let d = lp.context_mut();
    println!(
        "reading {} every {} ms",
        d.now.path.display(),
        d.now.period.as_millis()
    );
    if let Err(e) = lp.run() {
        eprintln!("periodic_sensor: event loop: {e}");
        return ExitCode::FAILURE;
    }
    // After a SIGHUP from a closed terminal, stdout may be gone: no panic then.
    common::last_words(format_args!(
        "stopped after {} readings",
        lp.context_mut().readings
    ));
    ExitCode::SUCCESS
}
