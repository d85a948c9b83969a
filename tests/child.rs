//! `ChildWatch` with real child processes: the exit code and the killing signal reach the
//! handler through the loop on every backend; the child is a zombie until reaped and gone from
//! /proc after; errors for a child reaped elsewhere, a process that is not a child, and (under
//! strace's fault injection) a kernel without pidfds; nothing allocated while watching.

mod support;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{allocations, CountingAlloc};
use picosel::backend::Backend;
use picosel::{
    ChildExit, ChildWatch, DefaultSelector, Errno, Error, EventLoop, ExitStatus, Interest, IoEvent,
    Signal,
};
use std::process::{Child, Command, Stdio};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

struct Ctx {
    watch: Option<ChildWatch>,
    ended: Option<ChildExit>,
    /// Handler calls that found the child still running.
    early: u32,
}

type L<B> = EventLoop<B, Ctx, 4, 0>;

fn on_end<B: Backend>(ev: &mut L<B>, io: IoEvent) {
    let watch = ev.context_mut().watch.as_mut().expect("watched");
    match watch.reap().expect("reap") {
        None => ev.context_mut().early += 1,
        Some(exit) => {
            ev.unregister(io.fd).unwrap();
            let ctx = ev.context_mut();
            ctx.watch = None;
            ctx.ended = Some(exit);
            ev.stop();
        }
    }
}

/// Watches `child` on a loop over `B` until it ended; returns how, checked against the pid.
fn run_until_end<B: Backend>(pid: u32) -> ExitStatus {
    let mut ev = L::<B>::new(Ctx {
        watch: None,
        ended: None,
        early: 0,
    });
    let allocated = allocations(|| {
        let watch = ChildWatch::open(pid).unwrap();
        ev.context_mut().watch = Some(watch);
        ev.register_with(|c| c.watch.as_ref().unwrap(), Interest::READ, 0, on_end)
            .unwrap();
        ev.run().unwrap();
    });
    assert_eq!(allocated, 0, "watching and reaping allocated");
    assert_eq!(ev.len(), 0, "the watch was unregistered");
    let exit = ev.context().ended.expect("ended");
    assert_eq!(exit.pid, pid);
    exit.status
}

/// The state letter of /proc/PID/stat (`R`, `S`, `Z` for a zombie), or `None` once the kernel
/// forgot the process (reaped).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `PID (COMM) STATE ...`; COMM may hold spaces and parentheses, so split at the last `)`.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Starts `program` and gives its pid; the `Child` is dropped, which neither waits for nor
/// kills it: the watch is what reaps it.
fn spawn(program: &str, args: &[&str]) -> u32 {
    start(program, args).id()
}

fn start(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

/// Blocks until the watch polls readable: the child ended.
fn wait_readable(watch: &ChildWatch) {
    let mut sel = DefaultSelector::<(), 1>::new();
    sel.register(watch, Interest::READ, ()).unwrap();
    assert_eq!(sel.select(None).unwrap().count(), 1);
    sel.unregister(watch).unwrap();
}

fn exit_code_reaches_the_handler<B: Backend>() {
    let pid = spawn("sh", &["-c", "exit 7"]);
    assert_eq!(run_until_end::<B>(pid), ExitStatus::Exited(7));
    assert_eq!(proc_state(pid), None, "reaped: no zombie left");
}

fn killing_signal_reaches_the_handler<B: Backend>() {
    let pid = spawn("sleep", &["60"]);
    let watch = ChildWatch::open(pid).unwrap();
    watch.send_signal(Signal::TERM).unwrap();
    drop(watch);
    let status = run_until_end::<B>(pid);
    assert_eq!(
        status,
        ExitStatus::Signaled {
            signo: Signal::TERM.as_raw(),
            core_dumped: false
        }
    );
    assert_eq!(status.signal(), Some(Signal::TERM));
    assert_eq!(status.to_string(), "killed by SIGTERM");
    assert_eq!(proc_state(pid), None, "reaped: no zombie left");
}

per_backend!(
    exit_code_reaches_the_handler,
    killing_signal_reaches_the_handler
);

#[test]
fn a_zombie_until_reaped_then_gone() {
    let pid = spawn("true", &[]);
    let mut watch = ChildWatch::open(pid).unwrap();
    wait_readable(&watch);
    assert_eq!(proc_state(pid), Some('Z'), "ended, not yet reaped");
    // A zombie still takes a signal (and ignores it): a stop racing the end is no error.
    assert_eq!(watch.send_signal(Signal::TERM), Ok(()));
    let exit = watch.reap().unwrap().expect("ended");
    assert_eq!(exit.status, ExitStatus::Exited(0));
    assert_eq!(proc_state(pid), None);
    // Later calls give the same answer, without asking the kernel (which forgot the child).
    assert_eq!(watch.reap().unwrap(), Some(exit));
    assert_eq!(watch.ended(), Some(ExitStatus::Exited(0)));
}

#[test]
fn a_running_child_is_left_alone() {
    let pid = spawn("sleep", &["60"]);
    let mut watch = ChildWatch::open(pid).unwrap();
    assert_eq!(watch.reap().unwrap(), None);
    assert_eq!(watch.ended(), None);
    assert!(
        matches!(proc_state(pid), Some(s) if s != 'Z'),
        "running, no zombie"
    );
    // rustix sends real-time signals only through an unsafe constructor.
    let rt = Signal::from_raw(libc::SIGRTMIN()).unwrap();
    assert_eq!(watch.send_signal(rt), Err(Error::Unsupported));
    assert_eq!(watch.reap().unwrap(), None, "still running");
    watch.send_signal(Signal::KILL).unwrap();
    wait_readable(&watch);
    let exit = watch.reap().unwrap().expect("ended");
    assert_eq!(exit.status.signo(), Some(Signal::KILL.as_raw()));
    assert_eq!(exit.status.code(), None);
    // Reaped: the pidfd can no longer reach it (nor anything that got its pid).
    assert_eq!(watch.send_signal(Signal::KILL), Err(Error::Os(Errno::SRCH)));
}

#[test]
fn the_exit_code_is_the_low_eight_bits() {
    let pid = spawn("sh", &["-c", "exit 300"]);
    let mut watch = ChildWatch::open(pid).unwrap();
    wait_readable(&watch);
    assert_eq!(
        watch.reap().unwrap().unwrap().status,
        ExitStatus::Exited(44)
    );
}

#[test]
fn a_child_reaped_elsewhere_is_an_error() {
    let mut child = start("true", &[]);
    let mut watch = ChildWatch::open(child.id()).unwrap();
    assert!(child.wait().unwrap().success()); // std reaps it first
    assert_eq!(watch.reap(), Err(Error::Os(Errno::CHILD)));
    assert_eq!(watch.ended(), None);
}

#[test]
fn only_a_child_can_be_watched() {
    // Process 1 exists but is not ours: its parent alone may reap it.
    assert_eq!(ChildWatch::open(1).unwrap_err(), Error::Os(Errno::CHILD));
    // A pid that was reaped names no process (unless the kernel reused it since, which would
    // then be some other process's child: ECHILD).
    let mut child = start("true", &[]);
    let pid = child.id();
    child.wait().unwrap();
    let e = ChildWatch::open(pid).unwrap_err();
    assert!(matches!(e, Error::Os(Errno::SRCH | Errno::CHILD)), "{e:?}");
}

#[test]
fn the_watch_is_sixteen_bytes() {
    // The figure the docs of `ChildWatch` give.
    assert_eq!(std::mem::size_of::<ChildWatch>(), 16);
}

/// The syscall that strace makes fail, with what an older kernel answers, set by
/// [`an_old_kernel_is_unsupported`] for the run of the test binary under strace.
const INJECTED: &str = "PICOSEL_TEST_INJECTED";

/// Opens a watch: it works on this kernel, or, when the run is under strace with
/// `pidfd_open` answering ENOSYS (Linux before 5.3) or `waitid` answering EINVAL (5.3, no
/// `P_PIDFD`), it is refused with `Unsupported`, and no fd is left open.
#[test]
fn open_answers_as_the_kernel_allows() {
    if std::env::var_os(INJECTED).is_none() {
        let pid = spawn("true", &[]);
        let mut watch = ChildWatch::open(pid).expect("this kernel has pidfds");
        wait_readable(&watch);
        assert!(watch.reap().unwrap().unwrap().status.success());
        return;
    }
    let mut child = start("true", &[]);
    let fds = support::open_fds();
    assert_eq!(
        ChildWatch::open(child.id()).unwrap_err(),
        Error::Unsupported
    );
    println!("refused as unsupported");
    assert_eq!(support::open_fds(), fds, "an fd was left open");
    // std's wait is wait4(2), which strace leaves alone.
    assert!(child.wait().unwrap().success());
}

#[test]
fn an_old_kernel_is_unsupported() {
    let exe = std::env::current_exe().unwrap();
    for (syscall, errno) in [("pidfd_open", "ENOSYS"), ("waitid", "EINVAL")] {
        let out = Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null", "-e"])
            .arg(format!("trace={syscall}"))
            .arg("-e")
            .arg(format!("inject={syscall}:error={errno}"))
            .arg(&exe)
            .args([
                "--exact",
                "open_answers_as_the_kernel_allows",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(INJECTED, format!("{syscall}:{errno}"))
            // LeakSanitizer cannot run under ptrace (scripts/asan.sh builds this binary with
            // it): the leak check is the plain run's, not this traced one's.
            .env("ASAN_OPTIONS", "detect_leaks=0")
            .output();
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                println!("SKIPPED: strace cannot be run ({e}); the errno mapping has unit tests");
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // strace's own complaints (no ptrace in a container, a binary it cannot exec, as
        // under qemu-user) start with `strace: `; the test binary's never do.
        let complaint = stderr.lines().find(|l| l.starts_with("strace: "));
        if let (false, Some(complaint)) = (out.status.success(), complaint) {
            println!("SKIPPED: strace cannot run the test here ({complaint}); the errno mapping has unit tests");
            return;
        }
        assert!(
            out.status.success() && stdout.contains("refused as unsupported"),
            "{syscall} failing with {errno}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
    }
}
