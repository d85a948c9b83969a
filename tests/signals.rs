//! Real signals sent to the whole process reach the event loop's handlers (CONFORMANCE 24), on
//! every backend.
//!
//! A binary of its own without the libtest harness (`harness = false` in Cargo.toml): a signal
//! sent to the process goes to any thread that does not block it, and libtest's threads are
//! started before any test could block anything. Here `main` blocks the signals first, as a
//! daemon must (see `picosel::block_signals`), so every thread started later inherits the mask
//! and the signals wait for the loop's signalfd. The checks run one after another.
//!
//! The `process::` checks run once, after the backends': the signals the C library keeps for
//! itself, and the mask children start with.

mod support;

use picosel::backend::Backend;
use picosel::{
    block_signals, Error, EventLoop, Instant, Interest, IoEvent, Signal, SignalEvent, TimerEvent,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;
use support::pipe;

const MS: Duration = Duration::from_millis(1);
const HANDLED: [Signal; 6] = [
    Signal::INT,
    Signal::TERM,
    Signal::HUP,
    Signal::USR1,
    Signal::USR2,
    Signal::CHLD,
];

#[derive(Default)]
struct Ctx {
    signals: Vec<SignalEvent>,
    /// Stop when this signal arrives.
    stop_on: Option<Signal>,
    /// Watchdog fired: the signal never came.
    watchdog: bool,
    timer_at: Option<Instant>,
}

type L<B> = EventLoop<B, Ctx, 8, 2>;

fn on_signal<B: Backend>(ev: &mut L<B>, sig: SignalEvent) {
    ev.context_mut().signals.push(sig);
    if ev.context_mut().stop_on == Some(sig.signal) {
        ev.stop();
    }
}

fn on_watchdog<B: Backend>(ev: &mut L<B>, _io: IoEvent) {
    ev.context_mut().watchdog = true;
    ev.stop();
}

fn pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

fn kill_process(sig: Signal) {
    let s = rustix::process::Signal::from_named_raw(sig.as_raw()).unwrap();
    rustix::process::kill_process(rustix::process::getpid(), s).unwrap();
}

#[allow(unsafe_code)]
fn raise(sig: Signal) {
    // SAFETY: raise(3) signals the calling thread, which blocks `sig` (set up in main).
    assert_eq!(unsafe { libc::raise(sig.as_raw()) }, 0);
}

fn new_loop<B: Backend>() -> L<B> {
    let mut ev = L::<B>::new(Ctx::default());
    for s in HANDLED {
        ev.add_signal(s, on_signal::<B>).unwrap();
    }
    ev
}

/// Runs turns until `n` signals were handled (bounded: 10 s).
fn run_until<B: Backend>(ev: &mut L<B>, n: usize) {
    let start = Instant::now();
    while ev.context_mut().signals.len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "signal never arrived"
        );
        ev.run_once(Some(MS * 100)).unwrap();
    }
}

/// Runs `ev.run()` while `send` runs on another thread; a pipe written after 10 s (only if
/// `run` has not returned by then) ends a lost wait with a failure instead of a hang.
fn run_while<B: Backend>(ev: &mut L<B>, send: impl FnOnce() + Send + 'static) {
    let (dog_r, dog_w) = pipe();
    ev.register(&dog_r, Interest::READ, 0, on_watchdog::<B>)
        .unwrap();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        send();
        if done_rx.recv_timeout(Duration::from_secs(10)).is_err() {
            rustix::io::write(&dog_w, b"!").unwrap();
        }
    });
    ev.run().unwrap();
    done_tx.send(()).unwrap();
    t.join().unwrap();
    ev.unregister(&dog_r).unwrap();
    assert!(
        !ev.context_mut().watchdog,
        "run() was not ended by the signal"
    );
}

// ---- the checks -----------------------------------------------------------------------------

fn every_raised_signal_reaches_its_handler<B: Backend>() {
    let mut ev = new_loop::<B>();
    for s in HANDLED {
        raise(s);
    }
    // Six pending signals; the loop reads them a few at a time.
    run_until(&mut ev, HANDLED.len());
    let mut got: Vec<i32> = ev
        .context_mut()
        .signals
        .iter()
        .map(|s| s.signal.as_raw())
        .collect();
    got.sort();
    let mut want: Vec<i32> = HANDLED.iter().map(|s| s.as_raw()).collect();
    want.sort();
    assert_eq!(got, want);
    for s in &ev.context_mut().signals {
        assert_eq!((s.pid, s.uid), (pid(), uid()));
    }
}

fn kill_to_the_process_reaches_the_handler<B: Backend>() {
    let mut ev = new_loop::<B>();
    kill_process(Signal::HUP);
    run_until(&mut ev, 1);
    let s = ev.context_mut().signals[0];
    assert_eq!((s.signal, s.pid, s.uid), (Signal::HUP, pid(), uid()));
}

fn kill_from_another_thread_wakes_a_blocked_run<B: Backend>() {
    let mut ev = new_loop::<B>();
    ev.context_mut().stop_on = Some(Signal::USR1);
    let start = Instant::now();
    run_while(&mut ev, || {
        std::thread::sleep(MS * 30);
        kill_process(Signal::USR1);
    });
    assert_eq!(ev.context_mut().signals.len(), 1);
    assert_eq!(ev.context_mut().signals[0].signal, Signal::USR1);
    assert!(start.elapsed() >= MS * 30);
}

fn sigterm_makes_run_return_cleanly<B: Backend>() {
    let mut ev = new_loop::<B>();
    ev.context_mut().stop_on = Some(Signal::TERM);
    run_while(&mut ev, || {
        std::thread::sleep(MS * 20);
        kill_process(Signal::TERM);
    });
    assert!(ev.is_stopped());
    assert_eq!(ev.context_mut().signals.len(), 1);
    // Still alive and usable: nothing else is pending.
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 0);
}

fn sigchld_arrives_when_a_child_exits<B: Backend>() {
    let mut ev = new_loop::<B>();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    run_until(&mut ev, 1);
    let s = ev.context_mut().signals[0];
    assert_eq!((s.signal, s.pid), (Signal::CHLD, child.id()));
    assert!(child.wait().unwrap().success());
}

static ALARMS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_alarm(_sig: libc::c_int) {
    ALARMS.fetch_add(1, Ordering::SeqCst);
}

#[allow(unsafe_code)]
fn catch_alarm() {
    // SAFETY: installs a handler that only touches an atomic (async-signal-safe), without
    // SA_RESTART, so a blocked wait returns EINTR; `act` is fully initialised.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = count_alarm as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut act.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGALRM, &act, std::ptr::null_mut()),
            0
        );
    }
}

fn stop_on_timer<B: Backend>(ev: &mut L<B>, _t: TimerEvent) {
    ev.context_mut().timer_at = Some(Instant::now());
    ev.stop();
}

#[allow(unsafe_code)]
fn interrupted_wait_is_not_an_error<B: Backend>() {
    let mut ev = new_loop::<B>();
    let before = ALARMS.load(Ordering::SeqCst);
    let start = Instant::now();
    ev.add_timer(MS * 150, 0, stop_on_timer::<B>).unwrap();
    // SAFETY: pthread_self has no preconditions.
    // As an integer: `pthread_t` is a pointer on musl, which is not `Send`.
    let me = unsafe { libc::pthread_self() } as usize;
    run_while(&mut ev, move || {
        std::thread::sleep(MS * 30);
        // SAFETY: `me` is the main thread, alive and blocked in run() for the next 120 ms.
        let rc = unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGALRM) };
        assert_eq!(rc, 0);
    });
    // The wait was interrupted (the handler ran), run() went on, and the timer still fired on
    // time, not early.
    assert_eq!(ALARMS.load(Ordering::SeqCst), before + 1);
    assert!(ev.context_mut().timer_at.unwrap() - start >= MS * 150);
    assert!(ev.context_mut().signals.is_empty());
}

/// Regression: signals 32 up to `SIGRTMIN() - 1` (32–33 on glibc, 32–34 on musl) were
/// accepted by `block_signals` and `add_signal`, although the C library left them unblocked
/// and the signalfd never reported them. Now refused, changing nothing; `SIGRTMIN()` itself
/// works.
fn reserved_signals_are_refused_and_sigrtmin_works<B: Backend>() {
    let rtmin = libc::SIGRTMIN();
    let mut ev = new_loop::<B>();
    let fds = ev.len();
    for signo in 32..rtmin {
        let s = Signal::from_raw(signo).unwrap();
        assert_eq!(block_signals(&[s]), Err(Error::ReservedSignal), "{signo}");
        assert_eq!(
            ev.add_signal(s, on_signal::<B>),
            Err(Error::ReservedSignal),
            "{signo}"
        );
        // Checked first: a blockable signal named before it is not blocked either.
        assert_eq!(
            block_signals(&[Signal::WINCH, s]),
            Err(Error::ReservedSignal)
        );
        assert_eq!(blocked_per_libc() & bit(Signal::WINCH), 0, "{signo}");
    }
    assert_eq!(ev.len(), fds);
    // The first real-time signal is free: blocked, watched and delivered.
    let rt = Signal::from_raw(rtmin).unwrap();
    ev.add_signal(rt, on_signal::<B>).unwrap();
    assert_ne!(blocked_per_libc() & bit(rt), 0);
    raise(rt);
    run_until(&mut ev, 1);
    assert_eq!(ev.context_mut().signals[0].signal, rt);
}

// ---- signal masks ---------------------------------------------------------------------------

fn panic_on_first_signal<B: Backend>(ev: &mut L<B>, sig: SignalEvent) {
    ev.context_mut().signals.push(sig);
    if ev.context_mut().signals.len() == 1 {
        panic!("signal handler failure (deliberate)");
    }
}

/// Two signals read from the signalfd in one batch; the first one's handler panics and the
/// caller catches it: the next turn runs the second one's handler, although the signalfd no
/// longer holds it.
fn a_panicking_signal_handler_leaves_the_rest_to_the_next_turn<B: Backend>() {
    let mut ev = L::<B>::new(Ctx::default());
    for s in [Signal::USR1, Signal::USR2] {
        ev.add_signal(s, panic_on_first_signal::<B>).unwrap();
        raise(s);
    }
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ev.run_once(Some(MS * 1000))
    }));
    assert!(caught.is_err(), "the handler's panic reaches the caller");
    assert_eq!(ev.context_mut().signals.len(), 1);
    let start = Instant::now();
    assert_eq!(ev.run_once(Some(Duration::from_secs(5))), Ok(1));
    assert!(start.elapsed() < Duration::from_secs(1), "the rest waited");
    let mut got: Vec<Signal> = ev.context_mut().signals.iter().map(|s| s.signal).collect();
    got.sort_by_key(|s| s.as_raw());
    assert_eq!(got, [Signal::USR1, Signal::USR2]);
    assert_eq!(ev.run_once(Some(Duration::ZERO)), Ok(0));
}

fn bit(s: Signal) -> u64 {
    1 << (s.as_raw() - 1)
}

/// The `SigBlk` mask of a `/proc/.../status` text.
fn sig_blk(status: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with("SigBlk:")).unwrap();
    u64::from_str_radix(line["SigBlk:".len()..].trim(), 16).unwrap()
}

fn blocked_in_this_thread() -> u64 {
    sig_blk(&std::fs::read_to_string("/proc/thread-self/status").unwrap())
}

/// This thread's mask as the C library reports it (`pthread_sigmask`). Unlike `SigBlk`, this is
/// the program's own view under qemu-user too, which maps the guest's real-time signals to
/// other host signals.
#[allow(unsafe_code)]
fn blocked_per_libc() -> u64 {
    // SAFETY: a zeroed sigset_t is a valid empty set for pthread_sigmask to overwrite; a null
    // new set only reads the mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set),
            0
        );
        set
    };
    (1..=64).fold(0, |m, s| {
        // SAFETY: `set` is initialised; sigismember only reads it.
        let member = unsafe { libc::sigismember(&set, s) };
        if member == 1 {
            m | 1 << (s - 1)
        } else {
            m
        }
    })
}

/// This thread's mask when `main` started, before `block_signals`.
static MASK_AT_START: OnceLock<u64> = OnceLock::new();

// ---- children (process-wide, run once; `std` feature) ------------------------------------------

#[cfg(feature = "std")]
mod children {
    use super::*;

    /// The status of process `pid` once it runs `name` (after its exec), bounded: 10 s.
    fn status_once_running(pid: u32, name: &str) -> String {
        let start = Instant::now();
        loop {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            if status.lines().any(|l| l == format!("Name:\t{name}")) {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{name} never ran"
            );
            std::thread::sleep(MS);
        }
    }

    /// Takes the SIGCHLD the children left pending, which the next loop's signalfd would read.
    #[allow(unsafe_code)]
    fn discard_pending_sigchld() {
        // SAFETY: `set` is initialised by sigemptyset before use, `info` is plain data written by
        // sigtimedwait, and a zero timeout never blocks; SIGCHLD is blocked in this thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            let mut info: libc::siginfo_t = std::mem::zeroed();
            // Zeroed, not a struct literal: with musl's 64-bit time on 32-bit targets the struct
            // has padding fields of its own.
            let zero: libc::timespec = std::mem::zeroed();
            while libc::sigtimedwait(&set, &mut info, &zero) == libc::SIGCHLD {}
        }
    }

    /// Regression: after `block_signals`, a helper spawned with `std::process::Command` (which
    /// passes the mask on) had SIGTERM and SIGINT blocked and survived `kill -TERM`. Spawned with
    /// `unblock_signals`, it starts with the mask the process had before picosel blocked anything,
    /// and SIGTERM kills it. `sleep` itself is checked, not a shell: dash empties its own mask.
    pub fn helpers_spawned_with_unblock_signals_stop_on_sigterm() {
        use picosel_std::CommandSignalsExt as _;
        use std::os::unix::process::ExitStatusExt;
        let stop = bit(Signal::TERM) | bit(Signal::INT);
        let at_start = *MASK_AT_START.get().unwrap();
        assert_eq!(
            at_start & stop,
            0,
            "this test must start with SIGTERM and SIGINT unblocked"
        );
        assert_eq!(blocked_in_this_thread() & stop, stop, "main blocks them");

        // Without it: the mask is inherited, and SIGTERM does nothing (SIGKILL ends it).
        let mut plain = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let status = status_once_running(plain.id(), "sleep");
        assert_eq!(
            sig_blk(&status) & stop,
            stop,
            "a plain child inherits the mask"
        );
        plain.kill().unwrap();
        assert_eq!(plain.wait().unwrap().signal(), Some(libc::SIGKILL));

        let mut helper = std::process::Command::new("sleep")
            .arg("30")
            .unblock_signals()
            .spawn()
            .unwrap();
        let status = status_once_running(helper.id(), "sleep");
        assert_eq!(
            sig_blk(&status),
            at_start,
            "the helper's mask is the one before picosel"
        );
        let pid = rustix::process::Pid::from_raw(helper.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        assert_eq!(helper.wait().unwrap().signal(), Some(libc::SIGTERM));
        discard_pending_sigchld();
    }
}

// ---- runner --------------------------------------------------------------------------------

type Check = (&'static str, fn());

macro_rules! checks {
    ($b:ty, $($name:ident),* $(,)?) => {
        [$((stringify!($name), $name::<$b> as fn())),*]
    };
}

fn all<B: Backend>() -> Vec<Check> {
    checks!(
        B,
        every_raised_signal_reaches_its_handler,
        kill_to_the_process_reaches_the_handler,
        kill_from_another_thread_wakes_a_blocked_run,
        sigterm_makes_run_return_cleanly,
        sigchld_arrives_when_a_child_exits,
        interrupted_wait_is_not_an_error,
        reserved_signals_are_refused_and_sigrtmin_works,
        a_panicking_signal_handler_leaves_the_rest_to_the_next_turn,
    )
    .to_vec()
}

/// Checks of process-wide behaviour, run once.
fn process() -> Vec<Check> {
    #[cfg(feature = "std")]
    return vec![(
        "helpers_spawned_with_unblock_signals_stop_on_sigterm",
        children::helpers_spawned_with_unblock_signals_stop_on_sigterm as fn(),
    )];
    #[cfg(not(feature = "std"))]
    Vec::new()
}

fn main() {
    MASK_AT_START.set(blocked_in_this_thread()).unwrap();
    // First, before any thread exists: every thread started later inherits this mask.
    block_signals(&HANDLED).unwrap();
    catch_alarm();

    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let suites = [
        (picosel::Epoll::NAME, all::<picosel::Epoll>()),
        (picosel::Poll::NAME, all::<picosel::Poll>()),
        (picosel::Select::NAME, all::<picosel::Select>()),
        ("process", process()),
    ];
    let list = std::env::args().any(|a| a == "--list");
    let (mut passed, mut failed) = (0, Vec::new());
    for (backend, checks) in suites {
        for (name, check) in checks {
            let full = format!("{backend}::{name}");
            if !filter.is_empty() && !filter.iter().any(|f| full.contains(f.as_str())) {
                continue;
            }
            if list {
                println!("{full}: test");
                continue;
            }
            let ok = std::panic::catch_unwind(check).is_ok();
            println!("test {full} ... {}", if ok { "ok" } else { "FAILED" });
            if ok {
                passed += 1;
            } else {
                failed.push(full);
            }
        }
    }
    if list {
        return;
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
