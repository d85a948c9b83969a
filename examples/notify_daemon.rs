//! A daemon under a service manager and a hardware watchdog: it tells systemd (or anything
//! that speaks its notification protocol) `READY=1` once started, `STATUS=` with a count of
//! the jobs it did, `WATCHDOG=1` while its loop turns and `STOPPING=1` on SIGTERM; and it pets
//! `/dev/watchdog` while its loop turns and disarms it on a clean stop.
//!
//! ```sh
//! cargo run --example notify_daemon                     # no manager: notifies nobody, runs
//! cargo build --example notify_daemon
//! systemd-run --user --unit=picosel-demo -p Type=notify -p WatchdogSec=4s \
//!     "$PWD/target/debug/examples/notify_daemon"
//! systemctl --user status picosel-demo                  # Status: "12 jobs done"
//! systemctl --user stop picosel-demo                    # SIGTERM: STOPPING=1, exit 0
//! ```
//!
//! As a service on a board (the device is root's, so run it as root or give it the device):
//!
//! ```ini
//! [Service]
//! Type=notify
//! ExecStart=/usr/local/bin/notify_daemon --watchdog-device /dev/watchdog --pet-ms 5000
//! WatchdogSec=30s
//! Restart=on-failure
//! ```
//!
//! Both watchdogs are answered from timers of the event loop, never from a thread of their
//! own: when a handler hangs, the loop stops turning, the keep-alives and the pets stop, and
//! systemd restarts the service (after `WatchdogSec=`) or the board resets (after the device's
//! timeout). `--hang-on-usr1` makes SIGUSR1 hang a handler for good, to see that happen.
//! SIGTERM and SIGINT stop the daemon cleanly: `STOPPING=1`, the magic `V` to the device, exit
//! 0. Any other end (a crash, SIGKILL, an error) leaves the device armed, as it should.
//!
//! Without `$NOTIFY_SOCKET` nothing is sent and nothing fails; without `--watchdog-device`
//! no device is used. `--help` lists every option with its default.
//!
//! The loop type is one alias that a test build switches to picosel's epoll loop on a virtual
//! clock: `tests/virtual_notify.rs` runs this file's own handlers for a simulated day against
//! a test-owned notify socket and a file standing for the device, with the exact cadence.

mod common;

#[cfg(not(test))]
use picosel::DefaultEventLoop;
use picosel::{block_signals, Notifier, Signal, SignalEvent, TimerEvent, WatchdogDevice};
use picosel_std::NotifierEnvExt as _;
use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: common::Usage = common::Usage {
    synopsis:
        "notify_daemon [--watchdog-device PATH] [--pet-ms MS] [--work-ms MS] [--hang-on-usr1]",
    details: "
  --watchdog-device PATH  a hardware watchdog (/dev/watchdog) to pet while the loop turns
                          and disarm with the magic 'V' on a clean stop (default: none)
  --pet-ms MS             milliseconds between pets of the device, at least 1; keep it well
                          under the device's timeout (default: 1000)
  --work-ms MS            milliseconds between jobs, at least 1; each job updates STATUS=
                          (default: 1000)
  --hang-on-usr1          make SIGUSR1 hang a handler for good, to see the watchdogs fire
                          (default: off; SIGUSR1 then ends the program, its default action)
  -h, --help              print this help and exit

The service manager: $NOTIFY_SOCKET (a path, or @ and an abstract name) gets READY=1 after
start-up, STATUS=N jobs done after each job, WATCHDOG=1 every half $WATCHDOG_USEC (unless
$WATCHDOG_PID names another process) and STOPPING=1 on SIGINT or SIGTERM. Unset: nothing is
sent.
The event loop: epoll, room for 2 registrations (it uses one, its signalfd), 3 timers.
SIGHUP: nothing to reload, says so and keeps running; but when the terminal it was started
from is gone, stop as for SIGTERM.
SIGINT, SIGTERM: STOPPING=1, disarm the device, exit 0.",
};

/// The loop watches only its signalfd; three timers: the job, the keep-alive, the pet. Tests
/// run the same handlers on epoll with a virtual clock: real sockets, simulated time.
#[cfg(not(test))]
pub(crate) type Loop = DefaultEventLoop<Daemon, 2, 3>;
#[cfg(test)]
pub(crate) type Loop = picosel::VirtualEventLoop<Daemon, 2, 3>;

/// The signals the loop always takes (SIGUSR1 joins them with `--hang-on-usr1`).
pub(crate) const SIGNALS: [Signal; 3] = [Signal::HUP, Signal::INT, Signal::TERM];

pub(crate) struct Daemon {
    notifier: Notifier,
    /// `None` without `--watchdog-device`, and once disarmed.
    watchdog: Option<WatchdogDevice>,
    pub(crate) jobs: u64,
    /// The last pet failed: reported once, not on every pet.
    pet_failing: bool,
}

impl Daemon {
    /// A daemon that notifies through `notifier` and pets `watchdog`, no job done yet.
    pub(crate) fn new(notifier: Notifier, watchdog: Option<WatchdogDevice>) -> Daemon {
        Daemon {
            notifier,
            watchdog,
            jobs: 0,
            pet_failing: false,
        }
    }

    /// Start-up is done: `READY=1`, then the first `STATUS=`.
    pub(crate) fn announce(&self) -> picosel::Result<()> {
        self.notifier
            .ready()
            .and_then(|()| self.notifier.status("0 jobs done"))
    }

    /// The clean stop's last act: the magic `V` to the device, if there is one.
    pub(crate) fn disarm(&mut self) -> picosel::Result<()> {
        match self.watchdog.take() {
            Some(wd) => wd.close_cleanly(),
            None => Ok(()),
        }
    }
}

/// The daemon's work, here only counted; the count is what the manager shows.
fn on_work(ev: &mut Loop, _t: TimerEvent) {
    let d = ev.context_mut();
    d.jobs += 1;
    let _ = d.notifier.status(format_args!("{} jobs done", d.jobs));
}

/// `WATCHDOG=1`: the loop turns. A daemon with more to check (a worker's progress) checks it
/// here and stays silent when unwell.
fn on_keep_alive(ev: &mut Loop, _t: TimerEvent) {
    let _ = ev.context().notifier.watchdog();
}

/// Pets the hardware watchdog.
fn on_pet(ev: &mut Loop, _t: TimerEvent) {
    let d = ev.context_mut();
    let Some(wd) = &d.watchdog else { return };
    match wd.pet() {
        Ok(()) => d.pet_failing = false,
        Err(e) if !d.pet_failing => {
            eprintln!("notify_daemon: cannot pet the watchdog device: {e}");
            d.pet_failing = true;
        }
        Err(_) => {}
    }
}

/// SIGINT, SIGTERM, and SIGHUP from a terminal that went away: stop. SIGHUP asking for a
/// reload: nothing to reload. SIGUSR1 (only watched with `--hang-on-usr1`): hang.
pub(crate) fn on_signal(ev: &mut Loop, sig: SignalEvent) {
    if sig.signal == Signal::USR1 {
        println!("SIGUSR1: hanging; the keep-alives and the pets stop now");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    if sig.signal == Signal::HUP && common::hangup() == common::Hangup::Reload {
        common::nothing_to_reload();
        return;
    }
    eprintln!("{}: stopping", sig.signal);
    let _ = ev.context().notifier.stopping();
    ev.stop();
}

/// The timers: the job; the keep-alive, when the manager asked for one; the pet, with a device.
pub(crate) fn arm_timers(ev: &mut Loop, work: Duration, pet: Duration) -> picosel::Result<()> {
    ev.add_periodic(work, 0, on_work)?;
    if let Some(period) = ev.context().notifier.watchdog_period() {
        ev.add_periodic(period, 0, on_keep_alive)?;
    }
    if ev.context().watchdog.is_some() {
        ev.add_periodic(pet, 0, on_pet)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut device: Option<OsString> = None;
    let mut pet = Duration::from_secs(1);
    let mut work = Duration::from_secs(1);
    let mut hang_on_usr1 = false;
    let mut args = common::Args::new(&USAGE);
    while let Some(arg) = args.next() {
        match arg {
            common::Arg::Opt(opt) => match opt.as_str() {
                "--watchdog-device" => device = Some(args.value(&opt)),
                "--pet-ms" => pet = args.millis(&opt),
                "--work-ms" => work = args.millis(&opt),
                "--hang-on-usr1" => hang_on_usr1 = true,
                _ => args.unknown_option(&opt),
            },
            common::Arg::Operand(a) => args.unexpected_argument(&a),
        }
    }
    // No thread was started yet: block the signals now, so they only come through the loop.
    let mut signals = SIGNALS.to_vec();
    if hang_on_usr1 {
        signals.push(Signal::USR1);
    }
    if let Err(e) = block_signals(&signals) {
        eprintln!("notify_daemon: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }

    // Unset variables give a notifier that sends nothing; malformed ones are an error.
    let notifier = match Notifier::from_env() {
        Ok(n) => n,
        Err(e) => {
            eprintln!(
                "notify_daemon: the service manager's environment \
                 (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID): {e}"
            );
            return ExitCode::FAILURE;
        }
    };
    // Opening the device arms it: from here on, a failed start leaves it armed.
    let watchdog = match device.as_deref().map(WatchdogDevice::open) {
        None => None,
        Some(Ok(wd)) => Some(wd),
        Some(Err(e)) => {
            let path = device.unwrap_or_default();
            let hint = match e {
                picosel::Error::Os(picosel::Errno::NOENT) => {
                    "\n  no watchdog driver loaded? (modprobe bcm2835_wdt on a Raspberry Pi, \
                     softdog elsewhere)"
                }
                picosel::Error::Os(picosel::Errno::BUSY) => {
                    "\n  another process holds it: systemd's RuntimeWatchdogSec=, or a watchdog \
                     daemon"
                }
                picosel::Error::Os(picosel::Errno::ACCESS) => "\n  the device is root's",
                _ => "",
            };
            eprintln!(
                "notify_daemon: cannot open watchdog device {}: {e}{hint}",
                path.to_string_lossy()
            );
            return ExitCode::FAILURE;
        }
    };

    let mut ev = Loop::new(Daemon::new(notifier, watchdog));
    for sig in signals {
        if let Err(e) = ev.add_signal(sig, on_signal) {
            eprintln!("notify_daemon: cannot watch {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = arm_timers(&mut ev, work, pet) {
        eprintln!("notify_daemon: cannot start a timer: {e}");
        return ExitCode::FAILURE;
    }
    let keep_alive = ev.context().notifier.watchdog_period();
    let pets = ev.context().watchdog.is_some();

    // Started: say so, on stdout and to the manager.
    let manager = match keep_alive {
        _ if !ev.context().notifier.is_enabled() => "no service manager".to_string(),
        Some(p) => format!(
            "service manager notified, keep-alive every {} ms",
            p.as_millis()
        ),
        None => "service manager notified, no keep-alive asked for".to_string(),
    };
    let device_line = match &device {
        Some(p) if pets => format!(
            "watchdog device {}, pet every {} ms",
            p.to_string_lossy(),
            pet.as_millis()
        ),
        _ => "no watchdog device".to_string(),
    };
    println!("ready: {manager}; {device_line}");
    if let Err(e) = ev.context().announce() {
        // The manager may be restarting; it gets the next STATUS= and keep-alive.
        eprintln!("notify_daemon: cannot notify the service manager: {e}");
    }

    if let Err(e) = ev.run() {
        // The device stays armed: the board resets unless a new instance takes over.
        eprintln!("notify_daemon: event loop: {e}");
        return ExitCode::FAILURE;
    }
    let d = ev.context_mut();
    if let Err(e) = d.disarm() {
        eprintln!("notify_daemon: the watchdog device stays armed: {e}");
        return ExitCode::FAILURE;
    }
    // After a SIGHUP from a closed terminal, stdout may be gone: no panic then.
    common::last_words(format_args!("stopped after {} jobs", d.jobs));
    ExitCode::SUCCESS
}
