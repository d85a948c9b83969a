//! Model-based property tests of the selector.
//!
//! 1. Over real fds, on each backend: random sequences of register / modify / unregister /
//!    select / write / drain / close / reuse-by-`dup2`, with closed fds, reused numbers, a full
//!    table, invalid interests, negative and huge fds. After every step the selector must agree
//!    with a plain model (what is registered, with which interest, mode and data); every error
//!    must be one the model allows and leave the state equal to the model; and `select` must
//!    report exactly the registered fds that poll(2) finds ready, masked to their interest.
//! 2. Over a backend without syscalls (`support/fake_selector.rs`, shared with the fuzz target):
//!    any byte string, including kernel refusals, EINTR, stale and garbage tokens and handlers
//!    that change the table mid-batch.
//!
//! Case counts are modest so `cargo test` stays fast; `PROPTEST_CASES=5000 cargo test --release
//! --test model` runs more.

mod support;

#[path = "support/fake_selector.rs"]
mod fake_selector;
#[path = "support/rules.rs"]
mod rules;
#[path = "support/timer_model.rs"]
mod timer_model;

use picosel::backend::{Backend, Epoll, Poll, Select};
use picosel::{Errno, Error, Interest, Mode, Ready, Selector, SelectorKey};
use proptest::prelude::*;
use proptest::test_runner::Config;
use rules::{assert_table, model_mask, modify_errors, register_errors, Registration};
use rustix::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;
use support::{pipe, socketpair};

/// Capacity of the selectors under test: small, so `Full` comes up often.
const N: usize = 4;

/// A number that is never open here: at or above select's FD_SETSIZE.
const HUGE: RawFd = 5000;

/// The real-fd tests take this, so that no other test in this binary opens or closes fds while
/// one of them relies on which numbers are closed and which the kernel hands out next.
static FDS: Mutex<()> = Mutex::new(());

/// `PROPTEST_CASES` when set, else `default`.
fn config(default: u32) -> Config {
    let mut c = Config {
        // Failing inputs are printed (shrunk); no regression files are written beside the tests.
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default;
    }
    c
}

// ---------------------------------------------------------------------------------------------
// The world of real fds.

/// Which of the test's fd numbers an op is about.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// One of the numbers opened at the start of the case (by index).
    Own(usize),
    Negative(RawFd),
    Huge,
}

#[derive(Debug, Clone, Copy)]
enum Pair {
    Pipe,
    Socket,
}

#[derive(Debug, Clone)]
enum Op {
    Register(Target, u8, Mode),
    Modify(Target, u8),
    ModifyMode(Target, u8, Mode),
    Unregister(Target),
    Select,
    /// Select; after the first pair, unregister the victim, put a new file at its number and
    /// register that: no later pair of the batch may be for the victim's number.
    SelectAndReplace(Target),
    Write(Target, usize),
    Drain(Target),
    Close(Target),
    /// Put a new file at the number with `dup2` (closing what was there).
    Reuse(Target, Pair, bool),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        12 => (0..7usize).prop_map(Target::Own),
        1 => prop_oneof![Just(-1), Just(RawFd::MIN), -100..0].prop_map(Target::Negative),
        1 => Just(Target::Huge),
    ]
}

fn interest() -> impl Strategy<Value = u8> {
    prop_oneof![8 => 1..=7u8, 1 => any::<u8>()]
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![4 => Just(Mode::Level), 2 => Just(Mode::Oneshot), 1 => Just(Mode::Edge)]
}

fn op() -> impl Strategy<Value = Op> {
    let pair = prop_oneof![Just(Pair::Pipe), Just(Pair::Socket)];
    prop_oneof![
        6 => (target(), interest(), mode()).prop_map(|(t, i, m)| Op::Register(t, i, m)),
        2 => (target(), interest()).prop_map(|(t, i)| Op::Modify(t, i)),
        1 => (target(), interest(), mode()).prop_map(|(t, i, m)| Op::ModifyMode(t, i, m)),
        3 => target().prop_map(Op::Unregister),
        4 => Just(Op::Select),
        1 => target().prop_map(Op::SelectAndReplace),
        3 => (target(), prop_oneof![Just(1usize), Just(4096), Just(70_000)])
            .prop_map(|(t, n)| Op::Write(t, n)),
        2 => target().prop_map(Op::Drain),
        2 => target().prop_map(Op::Close),
        2 => (target(), pair, any::<bool>()).prop_map(|(t, p, e)| Op::Reuse(t, p, e)),
    ]
}

/// Every fd the case owns, by number, and how often each number changed file.
struct World {
    /// The numbers opened at the start; ops address them by index.
    nums: Vec<RawFd>,
    open: BTreeMap<RawFd, OwnedFd>,
    /// Bumped whenever a number is closed or gets a new file: an epoll registration lives only
    /// as long as the file it was made for.
    generation: BTreeMap<RawFd, u64>,
    /// Numbers that hold a regular file (epoll refuses those with EPERM).
    regular: BTreeSet<RawFd>,
}

impl World {
    fn new() -> Self {
        let mut w = World {
            nums: Vec::new(),
            open: BTreeMap::new(),
            generation: BTreeMap::new(),
            regular: BTreeSet::new(),
        };
        let (a, b) = pipe();
        let (c, d) = pipe();
        let (e, f) = socketpair();
        let g = rustix::fs::memfd_create("picosel-model", rustix::fs::MemfdFlags::CLOEXEC)
            .expect("memfd");
        w.regular.insert(g.as_raw_fd());
        for fd in [a, b, c, d, e, f, g] {
            w.nums.push(fd.as_raw_fd());
            w.adopt(fd);
        }
        w
    }

    fn adopt(&mut self, fd: OwnedFd) {
        let n = fd.as_raw_fd();
        *self.generation.entry(n).or_default() += 1;
        self.open.insert(n, fd);
    }

    fn close(&mut self, n: RawFd) {
        if self.open.remove(&n).is_some() {
            *self.generation.entry(n).or_default() += 1;
            self.regular.remove(&n);
        }
    }

    fn number(&self, t: Target) -> RawFd {
        match t {
            Target::Own(i) => self.nums[i % self.nums.len()],
            Target::Negative(n) => n,
            Target::Huge => HUGE,
        }
    }

    fn is_open(&self, n: RawFd) -> bool {
        self.open.contains_key(&n)
    }

    fn generation(&self, n: RawFd) -> u64 {
        self.generation.get(&n).copied().unwrap_or(0)
    }

    /// Puts one end of a new pipe or socketpair at number `n` (one of ours), keeping the other
    /// end open wherever the kernel put it.
    #[allow(unsafe_code)]
    fn reuse(&mut self, n: RawFd, pair: Pair, first: bool) {
        let (a, b) = match pair {
            Pair::Pipe => pipe(),
            Pair::Socket => socketpair(),
        };
        let (chosen, other) = if first { (a, b) } else { (b, a) };
        let (c, o) = (chosen.as_raw_fd(), other.as_raw_fd());
        // The kernel hands out the lowest free numbers, so a closed `n` may already be one of
        // the two: then that end is the new file at `n`.
        self.adopt(chosen);
        self.adopt(other);
        if c == n || o == n {
            return;
        }
        // What was at `n` goes first (dup2 would close it too, but the map owns it).
        self.close(n);
        // SAFETY: `c` is open (just adopted) and `n` is one of this test's own numbers, now
        // closed; nothing else in this process uses it (the FDS lock), and the test takes
        // ownership of the result below.
        let r = unsafe { libc::dup2(c, n) };
        assert_eq!(r, n, "dup2");
        // SAFETY: dup2 returned `n`, a new fd owned by nobody else.
        self.adopt(unsafe { OwnedFd::from_raw_fd(n) });
        self.close(c);
    }

    fn write(&self, n: RawFd, len: usize) {
        if let Some(fd) = self.open.get(&n) {
            let buf = vec![0x5a; len];
            // Non-blocking; EAGAIN on a full pipe, EBADF on a read end, EPIPE without a reader
            // (SIGPIPE is ignored in Rust programs): all fine, the point is the readiness.
            let _ = rustix::io::write(fd, &buf);
        }
    }

    fn drain(&self, n: RawFd) {
        if let Some(fd) = self.open.get(&n) {
            let mut buf = vec![0; 65536];
            for _ in 0..8 {
                match rustix::io::read(fd, &mut buf) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
    }

    /// What poll(2) says about number `n` right now (POLLNVAL when it is closed).
    #[allow(unsafe_code)]
    fn poll(&self, n: RawFd) -> i16 {
        let mut p = libc::pollfd {
            fd: n,
            events: libc::POLLIN
                | libc::POLLOUT
                | libc::POLLPRI
                | libc::POLLRDNORM
                | libc::POLLRDBAND
                | libc::POLLWRNORM
                | libc::POLLWRBAND,
            revents: 0,
        };
        // SAFETY: one valid pollfd, timeout 0; poll never touches the fd's memory.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        assert!(r >= 0, "poll");
        p.revents
    }
}

/// The raw readiness epoll and poll report for revents `r`.
fn view_epoll_poll(r: i16) -> Ready {
    let mut v = Ready::empty();
    for (bit, ready) in [
        (libc::POLLIN, Ready::READ),
        (libc::POLLOUT, Ready::WRITE),
        (libc::POLLPRI, Ready::PRIORITY),
        (libc::POLLHUP, Ready::HUP),
        (libc::POLLERR | libc::POLLNVAL, Ready::ERROR),
    ] {
        if r & bit != 0 {
            v |= ready;
        }
    }
    v
}

/// The raw readiness select(2) reports for revents `r`: the kernel's POLLIN_SET, POLLOUT_SET
/// and POLLEX_SET (fs/select.c); HUP and ERR show only as readable / writable.
fn view_select(r: i16) -> Ready {
    let mut v = Ready::empty();
    let read = libc::POLLIN | libc::POLLRDNORM | libc::POLLRDBAND | libc::POLLHUP | libc::POLLERR;
    let write = libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND | libc::POLLERR;
    if r & read != 0 {
        v |= Ready::READ;
    }
    if r & write != 0 {
        v |= Ready::WRITE;
    }
    if r & libc::POLLPRI != 0 {
        v |= Ready::PRIORITY;
    }
    v
}

// ---------------------------------------------------------------------------------------------
// The model of one selector.

#[derive(Debug, Clone, Copy)]
struct Reg {
    key: SelectorKey<u32>,
    /// The number's generation when the kernel last accepted this registration.
    generation: u64,
    /// Oneshot registrations are disarmed once reported, until modified.
    armed: bool,
}

struct Model<B> {
    regs: BTreeMap<RawFd, Reg>,
    next_data: u32,
    _b: std::marker::PhantomData<B>,
}

/// Asserts that `got` is an error in `must ∪ may` (when `must` is not empty), or is `Ok` or an
/// error in `may` (when it is). Returns whether it was `Ok`.
fn check_outcome<T: std::fmt::Debug>(
    what: &str,
    got: &Result<T, Error>,
    must: &[Error],
    may: &[Error],
) -> bool {
    match got {
        Ok(v) => {
            assert!(
                must.is_empty(),
                "{what} = Ok({v:?}), expected one of {must:?}"
            );
            true
        }
        Err(e) => {
            assert!(
                must.contains(e) || may.contains(e),
                "{what} = Err({e:?}), expected one of {must:?} (or {may:?})"
            );
            false
        }
    }
}

impl<B: Backend> Model<B> {
    fn new() -> Self {
        Model {
            regs: BTreeMap::new(),
            next_data: 0,
            _b: std::marker::PhantomData,
        }
    }

    fn epoll() -> bool {
        B::NAME == "epoll"
    }

    fn select_backend() -> bool {
        B::NAME == "select"
    }

    /// Whether the kernel still watches this registration: epoll forgets it when the file it
    /// was made for is closed (the number's generation moved on); poll and select watch the
    /// number, whatever file is behind it now.
    fn alive(&self, w: &World, fd: RawFd, reg: &Reg) -> bool {
        !Self::epoll() || (w.is_open(fd) && w.generation(fd) == reg.generation)
    }

    fn check(&self, sel: &Selector<B, u32, N>, w: &World) {
        let want: Vec<SelectorKey<u32>> = self.regs.values().map(|r| r.key).collect();
        assert_table(
            sel,
            &want,
            w.nums.iter().copied().chain([-1, RawFd::MIN, HUGE]),
        );
    }

    fn register(
        &mut self,
        sel: &mut Selector<B, u32, N>,
        w: &World,
        fd: RawFd,
        bits: u8,
        mode: Mode,
    ) {
        self.next_data += 1;
        let (interest, data) = (Interest::from_bits_retain(bits), self.next_data);
        let got = sel.register_mode(fd, interest, mode, data);
        let mut must = register_errors(&Registration {
            fd,
            interest,
            mode_supported: mode != Mode::Edge || Self::epoll(),
            registered: self.regs.contains_key(&fd),
            full: self.regs.len() == N,
        });
        let mut may = Vec::new();
        if Self::select_backend() && fd >= 1024 {
            must.push(Error::FdOutOfRange);
        }
        if fd >= 0 && !w.is_open(fd) {
            // epoll_ctl answers EBADF; poll and select make no syscall to register but may
            // check the fd.
            if Self::epoll() {
                must.push(Error::Os(Errno::BADF));
            } else {
                may.push(Error::Os(Errno::BADF));
            }
        }
        if Self::epoll() && w.regular.contains(&fd) {
            must.push(Error::Os(Errno::PERM));
        }
        if check_outcome(
            &format!("register({fd}, {interest:?}, {mode:?})"),
            &got,
            &must,
            &may,
        ) {
            let key = got.unwrap_or_else(|_| unreachable!());
            assert_eq!(
                (key.fd(), key.interest(), key.mode(), key.data()),
                (fd, interest, mode, data)
            );
            let generation = w.generation(fd);
            self.regs.insert(
                fd,
                Reg {
                    key,
                    generation,
                    armed: true,
                },
            );
        }
    }

    fn modify(
        &mut self,
        sel: &mut Selector<B, u32, N>,
        w: &World,
        fd: RawFd,
        bits: u8,
        mode: Option<Mode>,
    ) {
        self.next_data += 1;
        let (interest, data) = (Interest::from_bits_retain(bits), self.next_data);
        let got = match mode {
            Some(m) => sel.modify_mode(fd, interest, m, data),
            None => sel.modify(fd, interest, data),
        };
        let old = self.regs.get(&fd).copied();
        let mode = mode.or(old.map(|r| r.key.mode())).unwrap_or_default();
        let mut must = modify_errors(old.is_some(), interest, mode != Mode::Edge || Self::epoll());
        let mut may = Vec::new();
        // A change of data alone makes no syscall; anything else reaches the backend.
        let syscall = old.is_some_and(|o| {
            o.key.interest() != interest || o.key.mode() != mode || mode == Mode::Oneshot
        });
        if let (Some(old), true) = (old, syscall) {
            if Self::epoll() && !self.alive(w, fd, &old) {
                // EPOLL_CTL_MOD: EBADF for a closed number, ENOENT for a new file there.
                must.push(Error::Os(if w.is_open(fd) {
                    Errno::NOENT
                } else {
                    Errno::BADF
                }));
            } else if !w.is_open(fd) {
                may.push(Error::Os(Errno::BADF));
            }
        }
        if check_outcome(
            &format!("modify({fd}, {interest:?}, {mode:?})"),
            &got,
            &must,
            &may,
        ) {
            let (key, old) = (
                got.unwrap_or_else(|_| unreachable!()),
                old.expect("registered"),
            );
            assert_eq!(
                (key.fd(), key.interest(), key.mode(), key.data()),
                (fd, interest, mode, data)
            );
            let reg = Reg {
                key,
                generation: old.generation,
                armed: old.armed || syscall,
            };
            self.regs.insert(fd, reg);
        }
    }

    fn unregister(&mut self, sel: &mut Selector<B, u32, N>, fd: RawFd) {
        let got = sel.unregister(fd);
        match self.regs.remove(&fd) {
            // Closed, or closed and reused: still succeeds (EBADF / ENOENT are ignored).
            Some(reg) => assert_eq!(got, Ok(reg.key), "unregister({fd})"),
            None => assert_eq!(got, Err(Error::NotRegistered), "unregister({fd})"),
        }
    }

    /// What the next wait must report: fd → (readiness, whether it must be reported at all).
    /// Edge-triggered registrations may be left out (no new edge); the others may not.
    fn expected(&self, w: &World) -> BTreeMap<RawFd, (Ready, bool)> {
        let mut out = BTreeMap::new();
        for (&fd, reg) in &self.regs {
            if !reg.armed || !self.alive(w, fd, reg) {
                continue;
            }
            // poll and select report a closed number once, as ERROR, with the others.
            let raw = if Self::select_backend() {
                if !w.is_open(fd) {
                    Ready::ERROR
                } else {
                    view_select(w.poll(fd))
                }
            } else {
                view_epoll_poll(w.poll(fd))
            };
            let ready = model_mask(raw, reg.key.interest());
            if !ready.is_empty() {
                out.insert(fd, (ready, reg.key.mode() != Mode::Edge));
            }
        }
        out
    }

    fn select(&mut self, sel: &mut Selector<B, u32, N>, w: &mut World, victim: Option<RawFd>) {
        let expected = self.expected(w);
        // Numbers closed when the wait starts (a handler may put a new file there mid-batch).
        let closed_at_wait: Vec<RawFd> = self
            .regs
            .keys()
            .filter(|fd| !w.is_open(**fd))
            .copied()
            .collect();
        let mut events = sel.select(Some(Duration::ZERO)).expect("select");
        let mut got = BTreeMap::new();
        let mut replaced = None;
        while let Some((key, ready)) = events.next() {
            assert!(
                Some(key.fd()) != replaced,
                "stale event for fd {} dispatched after it was replaced mid-batch",
                key.fd()
            );
            let reg = self.regs.get(&key.fd()).copied();
            assert_eq!(Some(key), reg.map(|r| r.key), "dispatched key");
            assert!(
                got.insert(key.fd(), ready).is_none(),
                "fd {} twice",
                key.fd()
            );
            if let (Some(v), None) = (victim, replaced) {
                // Replace the victim: unregister, a new file at its number, register that.
                if self.regs.contains_key(&v) && w.nums.contains(&v) {
                    self.unregister(events.selector(), v);
                    w.reuse(v, Pair::Socket, true);
                    self.register(events.selector(), w, v, Interest::READ.bits(), Mode::Level);
                    replaced = Some(v);
                }
            }
        }
        for (fd, (ready, must)) in &expected {
            if Some(*fd) == replaced {
                continue;
            }
            match got.get(fd) {
                Some(r) if *must => assert_eq!(r, ready, "readiness of fd {fd}"),
                // Edge: only what is ready now can be reported.
                Some(r) => assert!(ready.contains(*r), "edge readiness of fd {fd}: {r:?}"),
                None => assert!(!must, "fd {fd} ready ({ready:?}) but not reported"),
            }
        }
        for (fd, r) in &got {
            assert!(
                expected.contains_key(fd),
                "fd {fd} reported {r:?} but not ready (expected {expected:?})"
            );
            if let Some(reg) = self.regs.get_mut(fd) {
                // Disarmed once reported: oneshot, and (poll, select) a closed number.
                let closed = !Self::epoll() && closed_at_wait.contains(fd);
                if (reg.key.mode() == Mode::Oneshot || closed) && Some(*fd) != replaced {
                    reg.armed = false;
                }
            }
        }
    }
}

fn run_ops<B: Backend>(ops: &[Op]) {
    let _guard = FDS.lock().unwrap_or_else(|e| e.into_inner());
    let mut sel = Selector::<B, u32, N>::new();
    // Open the backend's own fd (epoll) before the world's, so it never takes a number the
    // ops close, reuse or register.
    assert_eq!(sel.select(Some(Duration::ZERO)).expect("select").count(), 0);
    let mut w = World::new();
    let mut m = Model::<B>::new();
    for op in ops {
        match *op {
            Op::Register(t, i, mode) => m.register(&mut sel, &w, w.number(t), i, mode),
            Op::Modify(t, i) => m.modify(&mut sel, &w, w.number(t), i, None),
            Op::ModifyMode(t, i, mode) => m.modify(&mut sel, &w, w.number(t), i, Some(mode)),
            Op::Unregister(t) => m.unregister(&mut sel, w.number(t)),
            Op::Select => m.select(&mut sel, &mut w, None),
            Op::SelectAndReplace(t) => {
                let v = w.number(t);
                m.select(&mut sel, &mut w, Some(v));
            }
            Op::Write(t, len) => w.write(w.number(t), len),
            Op::Drain(t) => w.drain(w.number(t)),
            Op::Close(t) => {
                if let Target::Own(_) = t {
                    w.close(w.number(t));
                }
            }
            Op::Reuse(t, pair, first) => {
                if let Target::Own(_) = t {
                    w.reuse(w.number(t), pair, first);
                }
            }
        }
        m.check(&sel, &w);
    }
    drop(sel);
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    #[cfg_attr(miri, ignore)]
    fn epoll_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        run_ops::<Epoll>(&ops);
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn poll_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        run_ops::<Poll>(&ops);
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn select_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        run_ops::<Select>(&ops);
    }
}

// ---------------------------------------------------------------------------------------------
// The pure logic, over a backend without syscalls: the fuzz target's body on stable.

proptest! {
    #![proptest_config(config(256))]

    #[test]
    #[cfg_attr(miri, ignore)]
    fn fake_backend_matches_model(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        fake_selector::run(&data);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    #[cfg_attr(miri, ignore)]
    fn timers_match_model(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        timer_model::run(&data);
    }
}

/// `runs` pseudo-random inputs of 512 bytes (xorshift64), the same on every run.
fn fixed_inputs(runs: usize, f: fn(&[u8])) {
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut data = vec![0u8; 512];
    for _ in 0..runs {
        for b in &mut data {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = (seed >> 24) as u8;
        }
        f(&data);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    #[cfg_attr(miri, ignore)]
    fn event_loop_on_fake_backend_matches_model(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        fake_selector::HANDLER_PANICS.with(|p| p.set(true));
        fake_selector::run_event_loop(&data);
    }
}

/// Fixed inputs for the event loop over the fake backend; runs under Miri too.
#[test]
fn event_loop_fixed_inputs() {
    fake_selector::HANDLER_PANICS.with(|p| p.set(true));
    fixed_inputs(
        if cfg!(miri) { 8 } else { 400 },
        fake_selector::run_event_loop,
    );
}

/// Fixed inputs for the fake-backend check: runs under Miri too (no syscalls, no proptest).
#[test]
fn fake_backend_fixed_inputs() {
    fixed_inputs(if cfg!(miri) { 8 } else { 400 }, fake_selector::run);
}

/// Regression: `Timers::expire` once computed `skipped + 1` in `u64`, which overflowed for a
/// 1 ns periodic timer with deadline 0 expiring at `Instant::MAX` (a panic with overflow checks;
/// without them a deadline that never advanced, so the timer fired on every call). Later the
/// next deadline saturated at `Instant::MAX`, so `expire(Instant::MAX)` returned the timer
/// forever; now a timer whose next deadline cannot be represented fires a last time and leaves.
#[test]
fn timer_period_overflow() {
    let mut t = picosel::Timers::<u32, 1>::new();
    let period = Some(Duration::from_nanos(1));
    let id = t.add(picosel::Instant::from_nanos(0), period, 7).unwrap();
    let e = t.expire(picosel::Instant::MAX).expect("due");
    assert_eq!((e.data, e.missed), (7, u32::MAX));
    // The next deadline lies beyond Instant::MAX: disarmed, neither saturated nor left at 0.
    assert_eq!(t.next_deadline(), None);
    assert!(!t.contains(id));
    assert!(t.expire(picosel::Instant::MAX).is_none());
}

/// Fixed inputs for the timer-table check; runs under Miri too.
#[test]
fn timers_fixed_inputs() {
    fixed_inputs(if cfg!(miri) { 8 } else { 400 }, timer_model::run);
}

/// epoll watches an open file, not an fd number (epoll(7), "Q6"). When a registered fd is
/// closed while a duplicate of it stays open (`dup`, `fork`), the kernel keeps reporting the
/// file under the old registration's token, and `EPOLL_CTL_DEL` on the closed number fails with
/// EBADF. After `unregister`, waits must still block: the selector rebuilds its epoll instance
/// rather than spin on the orphaned file (found by this test; now fixed).
#[test]
#[cfg_attr(miri, ignore)]
fn epoll_closed_fd_with_a_live_duplicate_does_not_spin() {
    let _guard = FDS.lock().unwrap_or_else(|e| e.into_inner());
    let (r, w) = pipe();
    let mut sel = Selector::<Epoll, u32, 4>::new();
    sel.register(&r, Interest::READ, 1).unwrap();
    let dup = rustix::io::fcntl_dupfd_cloexec(&r, 0).expect("dup");
    let fd = r.as_raw_fd();
    drop(r);
    rustix::io::write(&w, b"x").unwrap();
    // Unregister after the close, as the docs allow: succeeds.
    assert_eq!(sel.unregister(fd).map(|k| k.data()), Ok(1));
    // Nothing is registered: a wait must block for its timeout, and report nothing.
    let start = std::time::Instant::now();
    let mut wakeups = 0;
    while start.elapsed() < Duration::from_millis(200) {
        assert_eq!(
            sel.select(Some(Duration::from_millis(50))).unwrap().count(),
            0
        );
        wakeups += 1;
    }
    drop(dup);
    assert!(
        wakeups <= 5,
        "{wakeups} wake-ups in 200 ms with nothing registered"
    );
}

/// Regression: a rebuilt epoll instance takes the lowest free fd number, which can be the
/// number of a registered fd the caller closed. `unregister` of that number must succeed (the
/// epoll backend answers ENOENT for its own number instead of the kernel's EINVAL).
#[test]
#[cfg_attr(miri, ignore)]
fn epoll_unregister_after_rebuild_took_the_closed_number() {
    let _guard = FDS.lock().unwrap_or_else(|e| e.into_inner());
    let mut sel = Selector::<Epoll, u32, 4>::new();
    assert_eq!(sel.select(Some(Duration::ZERO)).unwrap().count(), 0);
    let (r1, _w1) = pipe();
    let (r2, w2) = pipe();
    let (n1, n2) = (r1.as_raw_fd(), r2.as_raw_fd());
    sel.register(&r1, Interest::READ, 1).unwrap();
    sel.register(&r2, Interest::READ, 2).unwrap();
    // r2's file outlives its number through a duplicate, then r2 is unregistered: an orphan.
    let dup = rustix::io::fcntl_dupfd_cloexec(&r2, 300).expect("dup");
    drop(r2);
    assert_eq!(sel.unregister(n2).map(|k| k.data()), Ok(2));
    rustix::io::write(&w2, b"x").unwrap();
    // r1 is closed without unregistering: its number is now the lowest free one.
    drop(r1);
    assert!(n1 < n2);
    // The orphan's report schedules a rebuild; the next wait rebuilds on a fresh epoll fd.
    for _ in 0..3 {
        assert_eq!(sel.select(Some(Duration::ZERO)).unwrap().count(), 0);
    }
    // Unregistering the closed fd must succeed, whatever now holds its number.
    assert_eq!(sel.unregister(n1).map(|k| k.data()), Ok(1));
    drop(dup);
}

/// Regression: a oneshot registration that was reported comes back armed in the kernel when
/// the epoll instance is rebuilt; the selector must still not yield it again before `modify`.
#[test]
#[cfg_attr(miri, ignore)]
fn epoll_rebuild_keeps_a_fired_oneshot_disarmed() {
    let _guard = FDS.lock().unwrap_or_else(|e| e.into_inner());
    let mut sel = Selector::<Epoll, u32, 4>::new();
    let (a, aw) = pipe();
    sel.register_mode(&a, Interest::READ, Mode::Oneshot, 1)
        .unwrap();
    rustix::io::write(&aw, b"x").unwrap();
    let first: Vec<u32> = sel
        .select(Some(Duration::ZERO))
        .unwrap()
        .map(|(k, _)| k.data())
        .collect();
    assert_eq!(first, [1]);
    // An orphan (closed with a live duplicate, then unregistered) triggers a rebuild.
    let (b, bw) = pipe();
    sel.register(&b, Interest::READ, 2).unwrap();
    let dup = rustix::io::fcntl_dupfd_cloexec(&b, 300).expect("dup");
    let nb = b.as_raw_fd();
    drop(b);
    sel.unregister(nb).unwrap();
    rustix::io::write(&bw, b"y").unwrap();
    for i in 0..3 {
        let got: Vec<u32> = sel
            .select(Some(Duration::from_millis(10)))
            .unwrap()
            .map(|(k, _)| k.data())
            .collect();
        assert_eq!(
            got,
            [] as [u32; 0],
            "wait {i}: a fired oneshot reported again"
        );
    }
    drop(dup);
}
