//! The supervisor example (`examples/supervisor.rs`) run as a user runs it, with this test
//! process as child subreaper (`PR_SET_CHILD_SUBREAPER`): a helper orphaned by the supervisor
//! would become this process's child, so "no process and no zombie left" is checked by
//! listing this process's children in /proc. The helper is killed twice and restarted twice
//! with a doubling delay; SIGTERM reaches it through the supervisor and the supervisor exits 0;
//! a helper that ignores SIGTERM gets SIGKILL at the deadline.

mod support;

use rustix::process::{kill_process, Pid, Signal};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};
use support::examples::{example_path, run_to_end, Example, PATIENCE};

/// The tests take turns: each checks that this process has no child left at its end, which a
/// supervisor of another test running at the same time would spoil.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes this process the child subreaper: orphans are re-parented to it instead of to init.
/// Whether that worked: qemu-user (`scripts/pi-test.sh`) refuses this prctl, and the tests
/// then check the helpers by pid only, with a SKIPPED line for the orphan check.
fn subreaper() -> bool {
    static SET: OnceLock<bool> = OnceLock::new();
    *SET.get_or_init(|| {
        let me = rustix::process::getpid();
        match rustix::process::set_child_subreaper(Some(me)) {
            Ok(()) => true,
            Err(e) => {
                println!("SKIPPED: the orphan check: PR_SET_CHILD_SUBREAPER refused ({e})");
                false
            }
        }
    })
}

/// No child of this process is left (orphans included, running or zombie), if it is the
/// subreaper.
fn no_child_left() {
    if subreaper() {
        assert_eq!(children_of_this_process(), Vec::<u32>::new(), "left behind");
    }
}

/// The fields of /proc/PID/stat after `(COMM)` (COMM may hold spaces and parentheses):
/// state, ppid, ... ; `None` once the kernel forgot the process.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// A process's parent, from /proc.
fn parent(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// When the process started (stat field 22, in clock ticks since boot): with the pid, it names
/// one process even after the pid is reused.
fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Every process (zombies included) whose parent is this process.
fn children_of_this_process() -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent(pid) == Some(me))
        .collect()
}

/// Whether `pid` ignores SIGTERM (bit 14 of `SigIgn:` in /proc/PID/status).
fn ignores_sigterm(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (Signal::TERM.as_raw() - 1)) != 0)
}

/// Polls `cond` until it holds, failing the test after [`PATIENCE`].
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "never: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A helper the supervisor started: its pid and start time.
struct Helper {
    pid: u32,
    started: Option<u64>,
}

/// Reads `started helper pid N`; checks the helper is the supervisor's own child.
fn started(sup: &mut Example) -> Helper {
    let line = sup.expect_line("`started helper pid N`", |l| {
        l.starts_with("started helper pid ")
    });
    let pid: u32 = line["started helper pid ".len()..].parse().expect("a pid");
    assert_eq!(
        parent(pid),
        Some(sup.pid()),
        "helper {pid} is the supervisor's child"
    );
    Helper {
        pid,
        started: start_time(pid),
    }
}

/// Waits for this test's turn, starts the supervisor with `options` (split at spaces) and the
/// helper command `helper`, and reads the start of the first helper. Keep the guard for the
/// whole test.
///
/// The supervisor starts with every signal at its default action. An ignored signal stays
/// ignored across fork and exec (signal(7)), so a test run under `nohup` would hand its
/// SIGHUP-ignoring disposition down to the helper, and `sleep` would outlive a SIGHUP; the
/// supervisor rightly passes on what it was given, so the test gives it the defaults.
fn supervise(options: &str, helper: &[&str]) -> (MutexGuard<'static, ()>, Example, Helper) {
    let turn = one_at_a_time();
    subreaper();
    let mut cmd = Command::new(example_path("supervisor"));
    cmd.args(options.split_whitespace()).arg("--").args(helper);
    #[allow(unsafe_code)]
    // SAFETY: between fork and exec only async-signal-safe calls are allowed; `signal(2)` is
    // one (signal-safety(7)), and the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGQUIT] {
                if libc::signal(sig, libc::SIG_DFL) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut sup = Example::spawn_cmd("supervisor", &mut cmd);
    let first = started(&mut sup);
    (turn, sup, first)
}

fn kill(pid: u32, sig: Signal) {
    // The supervisor has not reaped it (it waits for it), so the pid is still the helper's.
    let pid = Pid::from_raw(pid as i32).expect("pid > 0");
    kill_process(pid, sig).expect("kill");
}

fn expect_exact(sup: &mut Example, line: &str) {
    sup.expect_line(&format!("{line:?}"), |l| l == line);
}

/// Reads `helper pid PID WHAT`: how the helper ended, and what comes next.
fn expect_end(sup: &mut Example, pid: u32, what: &str) {
    expect_exact(sup, &format!("helper pid {pid} {what}"));
}

/// Waits for the supervisor to exit 0, then checks that it left nothing behind: no child of
/// this process (so no orphaned helper, running or zombie) and none of the helpers in /proc.
fn exits_cleanly(mut sup: Example, helpers: &[Helper]) {
    let (status, rest) = sup.finish();
    assert!(status.success(), "{status:?}; stderr: {}", sup.stderr());
    assert!(
        !rest.iter().any(|l| l.starts_with("started helper")),
        "a restart after the stop: {rest:?}"
    );
    no_child_left();
    for h in helpers {
        // Gone, or the pid was given to an unrelated process since.
        let now = start_time(h.pid);
        assert!(
            now.is_none() || now != h.started,
            "helper {} is still there",
            h.pid
        );
    }
}

#[test]
fn a_helper_killed_twice_is_restarted_twice_then_sigterm_stops_all() {
    let (_turn, mut sup, first) =
        supervise("--backoff-ms 50 --max-backoff-ms 60000", &["sleep", "60"]);
    let mut helpers = vec![first];
    for delay in [50, 100] {
        let pid = helpers.last().unwrap().pid;
        kill(pid, Signal::KILL);
        expect_end(
            &mut sup,
            pid,
            &format!("killed by SIGKILL; restarting in {delay} ms"),
        );
        let next = started(&mut sup);
        assert_ne!(next.pid, pid);
        helpers.push(next);
    }
    let pid = helpers.last().unwrap().pid;
    sup.signal(Signal::TERM);
    expect_exact(
        &mut sup,
        &format!("SIGTERM: stopping helper pid {pid}, SIGKILL in 5000 ms"),
    );
    // SIGTERM itself stopped it: the helper did not inherit the supervisor's blocked mask.
    expect_end(&mut sup, pid, "killed by SIGTERM; stopped");
    exits_cleanly(sup, &helpers);
}

#[test]
fn a_helper_that_ignores_sigterm_gets_sigkill_at_the_deadline() {
    let ignores_term = ["sh", "-c", "trap '' TERM; exec sleep 60"];
    let (_turn, mut sup, helper) = supervise("--grace-ms 200", &ignores_term);
    let pid = helper.pid;
    eventually("the helper ignores SIGTERM", || ignores_sigterm(pid));
    sup.signal(Signal::TERM);
    expect_exact(
        &mut sup,
        &format!("SIGTERM: stopping helper pid {pid}, SIGKILL in 200 ms"),
    );
    expect_end(&mut sup, pid, "did not stop in 200 ms: SIGKILL");
    expect_end(&mut sup, pid, "killed by SIGKILL; stopped");
    exits_cleanly(sup, &[helper]);
}

#[test]
fn sigterm_while_a_restart_is_pending_stops_at_once() {
    let (_turn, mut sup, helper) = supervise("--backoff-ms 60000", &["sleep", "60"]);
    let pid = helper.pid;
    kill(pid, Signal::TERM);
    expect_end(&mut sup, pid, "killed by SIGTERM; restarting in 60000 ms");
    sup.signal(Signal::TERM);
    expect_exact(&mut sup, "SIGTERM: no helper running; stopped");
    exits_cleanly(sup, &[helper]);
}

#[test]
fn sighup_is_passed_on_to_the_helper() {
    let (_turn, mut sup, first) = supervise("--backoff-ms 50", &["sleep", "60"]);
    let pid = first.pid;
    // Its stdio are pipes, not a terminal that went away: a reload request.
    sup.signal(Signal::HUP);
    expect_exact(&mut sup, &format!("SIGHUP: passed on to helper pid {pid}"));
    // `sleep` takes SIGHUP's default action: it ends, and is restarted.
    expect_end(&mut sup, pid, "killed by SIGHUP; restarting in 50 ms");
    let second = started(&mut sup);
    sup.signal(Signal::TERM);
    expect_end(&mut sup, second.pid, "killed by SIGTERM; stopped");
    exits_cleanly(sup, &[first, second]);
}

#[test]
fn a_helper_that_cannot_start_is_an_error() {
    let _turn = one_at_a_time();
    subreaper();
    let (status, _out, err) = run_to_end("supervisor", &["/nonexistent/helper"]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot start /nonexistent/helper: No such file or directory"),
        "{err}"
    );
    let (status, _out, err) = run_to_end("supervisor", &["--grace-ms", "10"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("COMMAND is required"), "{err}");
    no_child_left();
}
