//! A supervisor: runs a helper command, restarts it with a growing delay whenever it ends, and
//! on SIGTERM or Ctrl-C passes SIGTERM on to it and waits for it to stop, with SIGKILL after a
//! deadline. Then it exits 0, leaving no process and no zombie behind.
//!
//! ```sh
//! cargo run --example supervisor -- sleep 5                  # restarted every 5 s
//! cargo run --example supervisor -- --backoff-ms 200 -- sh -c 'echo working; exit 1'
//! ```
//!
//! The helper is watched through its pidfd ([`ChildWatch`], Linux 5.4): the loop's handler
//! runs when it ends, reaps it (no zombie), and signals go to it through the pidfd, which
//! cannot reach another process that got the same pid later. It is spawned with
//! [`CommandSignalsExt::unblock_signals`]: the supervisor blocks SIGTERM, SIGINT and SIGHUP
//! for its loop, and a helper spawned plainly would inherit that mask and ignore the SIGTERM
//! it is sent.
//!
//! `--help` lists every option with its default.

mod common;

use picosel::{
    block_signals, ChildWatch, DefaultEventLoop, Interest, IoEvent, Signal, SignalEvent,
    TimerEvent, TimerId,
};
use picosel_std::CommandSignalsExt;
use std::ffi::OsString;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const USAGE: common::Usage = common::Usage {
    synopsis: "supervisor [--backoff-ms MS] [--max-backoff-ms MS] [--grace-ms MS] [--] COMMAND \
               [ARG...]",
    details: "
  --backoff-ms MS      milliseconds before the first restart, at least 1; the delay doubles
                       with each restart, up to --max-backoff-ms (default: 1000)
  --max-backoff-ms MS  the longest delay between restarts; the delay starts over after a
                       helper that ran at least that long (default: 30000)
  --grace-ms MS        milliseconds a helper has to stop after SIGTERM before it gets
                       SIGKILL, at least 1 (default: 5000)
  COMMAND [ARG...]     the helper, run without a shell; what follows COMMAND is its own
  -h, --help           print this help and exit

The helper is restarted whenever it ends, whatever its exit status. It starts with the signal
mask the supervisor had before blocking its own signals, so SIGTERM stops it as usual.
The event loop: epoll, room for 2 registrations (its signalfd and the helper's pidfd), 2
timers (the restart delay and the stop deadline).
SIGHUP: passed on to the helper (a reload request); but when the terminal the supervisor was
started from is gone, stop as for SIGTERM.
SIGINT, SIGTERM: SIGTERM to the helper, SIGKILL after --grace-ms if it is still running, then
exit 0.",
};

/// Two registrations (the signalfd and the helper's pidfd) and two timers (restart, deadline).
type Loop = DefaultEventLoop<Supervisor, 2, 2>;

struct Supervisor {
    /// The helper's program and its arguments; never empty.
    command: Vec<OsString>,
    helper: Option<Helper>,
    /// The delay before the next restart.
    backoff: Duration,
    first_backoff: Duration,
    max_backoff: Duration,
    grace: Duration,
    /// The restart timer, between a helper's end and the next start.
    restart: Option<TimerId>,
    /// The SIGKILL timer, while a helper is asked to stop.
    deadline: Option<TimerId>,
    /// A stop was asked for (SIGTERM, SIGINT, a hangup).
    stopping: bool,
    /// The loop stopped on an error: exit 1.
    failed: bool,
}

/// The running helper.
struct Helper {
    watch: ChildWatch,
    started: Instant,
}

/// Starts the helper and registers its pidfd; returns its pid.
fn start_helper(ev: &mut Loop) -> Result<u32, String> {
    let (program, args) = ev.context().command.split_first().expect("a command");
    let name = program.to_string_lossy().into_owned();
    // The child is not kept: dropping std's `Child` neither waits for it nor kills it, and
    // from here on it is reaped and signalled through its pidfd only.
    let pid = Command::new(program)
        .args(args)
        .unblock_signals()
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?
        .id();
    let watch = ChildWatch::open(pid).map_err(|e| {
        abandon(pid);
        format!("cannot watch helper pid {pid}: {e}")
    })?;
    ev.context_mut().helper = Some(Helper {
        watch,
        started: Instant::now(),
    });
    if let Err(e) = ev.register_with(
        |s| &s.helper.as_ref().expect("just set").watch,
        Interest::READ,
        0,
        on_helper_end,
    ) {
        abandon(pid);
        ev.context_mut().helper = None;
        return Err(format!("cannot watch helper pid {pid}: {e}"));
    }
    Ok(pid)
}

/// Kills and reaps a helper that cannot be watched. It is not reaped yet, so `pid` is still
/// this child's and cannot have been reused.
fn abandon(pid: u32) {
    use rustix::process::{kill_process, waitpid, Pid, Signal as Sig, WaitOptions};
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, Sig::KILL);
        let _ = waitpid(Some(pid), WaitOptions::empty());
    }
}

/// The helper's pidfd is readable: it ended. Reap it, then restart it, or finish stopping.
fn on_helper_end(ev: &mut Loop, io: IoEvent) {
    let Some(helper) = ev.context_mut().helper.as_mut() else {
        return;
    };
    let pid = helper.watch.pid();
    let how = match helper.watch.reap() {
        Ok(None) => return, // not ended yet
        Ok(Some(exit)) => exit.status.to_string(),
        // Reaped by someone else (SIGCHLD set to SIG_IGN, say): gone all the same.
        Err(e) => format!("ended, status unknown ({e})"),
    };
    let ran = helper.started.elapsed();
    // Unregister before the pidfd is closed: it stays readable for good.
    let _ = ev.unregister(io.fd);
    ev.context_mut().helper = None;
    if ev.context().stopping {
        if let Some(id) = ev.context_mut().deadline.take() {
            let _ = ev.cancel_timer(id);
        }
        println!("helper pid {pid} {how}; stopped");
        ev.stop();
        return;
    }
    let s = ev.context_mut();
    if ran >= s.max_backoff {
        s.backoff = s.first_backoff;
    }
    schedule_restart(ev, &format!("helper pid {pid} {how}"));
}

/// Arms the restart after the current delay, and doubles the delay for the next one.
fn schedule_restart(ev: &mut Loop, what: &str) {
    let s = ev.context_mut();
    let delay = s.backoff;
    s.backoff = delay.saturating_mul(2).min(s.max_backoff);
    match ev.add_timer(delay, 0, on_restart) {
        Ok(id) => {
            ev.context_mut().restart = Some(id);
            println!("{what}; restarting in {} ms", delay.as_millis());
        }
        Err(e) => fail(ev, &format!("cannot arm the restart timer: {e}")),
    }
}

fn on_restart(ev: &mut Loop, _t: TimerEvent) {
    ev.context_mut().restart = None;
    match start_helper(ev) {
        Ok(pid) => println!("started helper pid {pid}"),
        Err(e) => {
            eprintln!("supervisor: {e}");
            schedule_restart(ev, "no helper");
        }
    }
}

/// The stop deadline passed and the helper still runs: SIGKILL, which it cannot ignore. Its
/// pidfd then polls readable and [`on_helper_end`] finishes the stop.
fn on_deadline(ev: &mut Loop, _t: TimerEvent) {
    let s = ev.context_mut();
    s.deadline = None;
    let Some(helper) = &s.helper else { return };
    let pid = helper.watch.pid();
    println!(
        "helper pid {pid} did not stop in {} ms: SIGKILL",
        s.grace.as_millis()
    );
    if let Err(e) = helper.watch.send_signal(Signal::KILL) {
        fail(ev, &format!("cannot send SIGKILL to helper pid {pid}: {e}"));
    }
}

/// SIGINT, SIGTERM, and SIGHUP from a terminal that went away: stop. SIGHUP asking for a
/// reload: pass it on to the helper.
fn on_signal(ev: &mut Loop, sig: SignalEvent) {
    if sig.signal == Signal::HUP && common::hangup() == common::Hangup::Reload {
        match &ev.context().helper {
            Some(h) => match h.watch.send_signal(Signal::HUP) {
                Ok(()) => println!("SIGHUP: passed on to helper pid {}", h.watch.pid()),
                Err(e) => eprintln!("supervisor: cannot pass SIGHUP on: {e}"),
            },
            None => println!("SIGHUP: no helper running (restart pending); not passed on"),
        }
        return;
    }
    if ev.context().stopping {
        println!("{}: already stopping", sig.signal);
        return;
    }
    ev.context_mut().stopping = true;
    if let Some(id) = ev.context_mut().restart.take() {
        let _ = ev.cancel_timer(id);
    }
    let s = ev.context();
    let Some(helper) = &s.helper else {
        println!("{}: no helper running; stopped", sig.signal);
        ev.stop();
        return;
    };
    let (pid, grace) = (helper.watch.pid(), s.grace);
    if let Err(e) = helper.watch.send_signal(Signal::TERM) {
        // The deadline still stands, and the pidfd still tells when it ends.
        eprintln!("supervisor: cannot send SIGTERM to helper pid {pid}: {e}");
    }
    match ev.add_timer(grace, 0, on_deadline) {
        Ok(id) => ev.context_mut().deadline = Some(id),
        Err(e) => fail(ev, &format!("cannot arm the stop deadline: {e}")),
    }
    println!(
        "{}: stopping helper pid {pid}, SIGKILL in {} ms",
        sig.signal,
        grace.as_millis()
    );
}

/// Stops on an error, with exit status 1; the helper, if any, is killed and reaped.
fn fail(ev: &mut Loop, msg: &str) {
    eprintln!("supervisor: {msg}");
    if let Some(helper) = ev.context_mut().helper.take() {
        abandon(helper.watch.pid());
    }
    ev.context_mut().failed = true;
    ev.stop();
}

fn main() -> ExitCode {
    let mut backoff = Duration::from_secs(1);
    let mut max_backoff = Duration::from_secs(30);
    let mut grace = Duration::from_secs(5);
    let mut command = Vec::new();
    let mut args = common::Args::new(&USAGE);
    while let Some(arg) = args.next() {
        match arg {
            common::Arg::Opt(opt) => match opt.as_str() {
                "--backoff-ms" => backoff = args.millis(&opt),
                "--max-backoff-ms" => max_backoff = args.millis(&opt),
                "--grace-ms" => grace = args.millis(&opt),
                _ => args.unknown_option(&opt),
            },
            common::Arg::Operand(program) => {
                // The helper's own options follow its name: read no further.
                command.push(program);
                command.extend(args.remaining());
            }
        }
    }
    if command.is_empty() {
        USAGE.required("COMMAND");
    }
    let signals = [Signal::HUP, Signal::INT, Signal::TERM];
    // No thread was started yet: block the signals now, so they only come through the loop.
    if let Err(e) = block_signals(&signals) {
        eprintln!("supervisor: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }
    let mut ev = Loop::new(Supervisor {
        command,
        helper: None,
        backoff,
        first_backoff: backoff,
        max_backoff: max_backoff.max(backoff),
        grace,
        restart: None,
        deadline: None,
        stopping: false,
        failed: false,
    });
    for sig in signals {
        if let Err(e) = ev.add_signal(sig, on_signal) {
            eprintln!("supervisor: cannot watch {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    // A helper that cannot start at all is a mistake to report now, not to retry forever.
    match start_helper(&mut ev) {
        Ok(pid) => println!("started helper pid {pid}"),
        Err(e) => {
            eprintln!("supervisor: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = ev.run() {
        fail(&mut ev, &format!("event loop: {e}"));
    }
    if ev.context().failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
