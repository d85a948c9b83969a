//! A byte-driven check of the selector's pure logic (registration table, tokens and
//! generations, rollback, masking, stale-event filtering) against a plain model, over a backend
//! that makes no syscalls.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/selector.rs`, any bytes from libFuzzer) and
//! the stable test suite (`tests/model.rs`, bytes from proptest and from a fixed PRNG, the
//! latter also under Miri). [`run`] panics on the first disagreement with the model.
//!
//! It is not the crate's simulated backend (`picosel::backend::sim`, which the scripted tests
//! use): this one lets the bytes decide what a well-behaved kernel never does (stale and
//! garbage tokens, events past `N`, edge support switched on and off) to test the selector's
//! filtering of them, where the product follows the backend contract and is deterministic by
//! the test's script.
//!
//! The fake backend takes every decision the kernel would take (refuse an add, a modify or a
//! delete with an errno; fail or interrupt a wait; which events a wait returns, including stale
//! and garbage tokens) from the same byte stream, and asserts the backend contract written in
//! `picosel::backend`: fds are non-negative, interests valid, slots in range, `add` only for a
//! free slot, `modify`/`delete` only for a watched one with the same token.

use crate::rules::{assert_table, model_mask, modify_errors, register_errors, valid, Registration};
use picosel::backend::{Backend, Poller, Token};
use picosel::{Errno, Error, Interest, Mode, RawFd, Ready, Result, Selector, SelectorKey};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------------------
// The byte stream, shared by the op decoder and the fake kernel.

/// What the fake poller publishes: its watch list and its last wait's events.
type Published = (Vec<Watch>, Vec<(u64, Ready)>);

thread_local! {
    static INPUT: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
    /// A copy of the live fake poller's watch list and last wait's events: the selector owns
    /// the poller and does not lend it out, so the poller publishes its state here.
    static MIRROR: RefCell<Published> =
        const { RefCell::new((Vec::new(), Vec::new())) };
    /// Rebuilds made on this thread (for the statistics of a run).
    pub static REBUILDS: Cell<u64> = const { Cell::new(0) };
}

/// The next input byte, or `None` when the input is used up.
fn next_byte() -> Option<u8> {
    INPUT.with(|i| {
        let mut i = i.borrow_mut();
        let b = i.0.get(i.1).copied();
        if b.is_some() {
            i.1 += 1;
        }
        b
    })
}

/// A byte for a decision inside an op: used-up input reads as 0xFF ("no fault").
fn byte() -> u8 {
    next_byte().unwrap_or(0xFF)
}

fn u32_le() -> u32 {
    u32::from_le_bytes([byte(), byte(), byte(), byte()])
}

/// A fault one time in eight.
fn fault() -> bool {
    byte() < 32
}

// ---------------------------------------------------------------------------------------------
// The fake backend.

/// A backend without syscalls. `EDGE` says whether it claims edge-triggered support.
pub struct Fake<const EDGE: bool>;

impl<const EDGE: bool> Backend for Fake<EDGE> {
    const NAME: &'static str = "fake";
    type Poller<const N: usize> = FakePoller<N, EDGE>;
}

/// What the fake kernel watches for one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    fd: RawFd,
    /// The packed [`Token`], so that one type serves every capacity.
    token: u64,
    interest: Interest,
    mode: Mode,
    /// Oneshot registrations are disarmed once reported, until modified.
    armed: bool,
}

/// Events one fake wait can hold: more than `N`, so stale and garbage tokens fit beside live ones.
const MAX_EVENTS: usize = 16;

/// The state of one fake selector of capacity `N`.
pub struct FakePoller<const N: usize, const EDGE: bool> {
    open: bool,
    watched: [Option<Watch>; N],
    events: [(Token<N>, Ready); MAX_EVENTS],
    len: usize,
    /// Every token ever given to `add`, to script stale events.
    history: [Option<Token<N>>; 8],
    history_next: usize,
}

const ERRNOS: [Errno; 5] = [
    Errno::PERM,
    Errno::BADF,
    Errno::NOENT,
    Errno::NOMEM,
    Errno::NOSPC,
];

fn scripted_errno() -> Errno {
    ERRNOS[byte() as usize % ERRNOS.len()]
}

impl<const N: usize, const EDGE: bool> FakePoller<N, EDGE> {
    fn check_contract(fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) {
        assert!(fd >= 0, "contract: backend got negative fd {fd}");
        assert!(
            !interest.is_empty() && Interest::all().contains(interest),
            "contract: backend got invalid interest {interest:?}"
        );
        assert!(
            Self::supports(mode),
            "contract: backend got unsupported mode"
        );
        assert!(
            (token.slot() as usize) < N,
            "contract: slot {} >= N",
            token.slot()
        );
    }

    fn watched(&self) -> impl Iterator<Item = &Watch> {
        self.watched.iter().flatten()
    }

    fn publish(&self) {
        MIRROR.with(|m| {
            *m.borrow_mut() = (
                self.watched().copied().collect(),
                self.events[..self.len]
                    .iter()
                    .map(|&(t, r)| (t.to_u64(), r))
                    .collect(),
            )
        });
    }
}

impl<const N: usize, const EDGE: bool> Poller<N> for FakePoller<N, EDGE> {
    const CLOSED: Self = FakePoller {
        open: false,
        watched: [None; N],
        events: [(Token::new(0, 0), Ready::empty()); MAX_EVENTS],
        len: 0,
        history: [None; 8],
        history_next: 0,
    };

    fn supports(mode: Mode) -> bool {
        EDGE || mode != Mode::Edge
    }

    fn open(&mut self) -> Result<()> {
        if !self.open {
            if fault() {
                return Err(Error::Os(Errno::MFILE));
            }
            self.open = true;
        }
        Ok(())
    }

    fn add(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        let r = self.do_add(fd, token, interest, mode);
        self.publish();
        r
    }

    fn modify(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        let r = self.do_modify(fd, token, interest, mode);
        self.publish();
        r
    }

    fn delete(&mut self, fd: RawFd, token: Token<N>) -> Result<()> {
        let r = self.do_delete(fd, token);
        self.publish();
        r
    }

    fn wait(&mut self, timeout: Option<std::time::Duration>) -> Result<usize> {
        let r = self.do_wait(timeout);
        self.publish();
        r
    }

    fn event(&self, i: usize) -> (Token<N>, Ready) {
        assert!(i < self.len, "contract: event {i} of {}", self.len);
        self.events[i]
    }

    fn close(&mut self) {
        self.do_close();
        self.publish();
    }

    fn rebuild<I: Iterator<Item = (RawFd, Token<N>, Interest, Mode)>>(
        &mut self,
        live: I,
    ) -> Result<()> {
        let r = self.do_rebuild(live);
        self.publish();
        r
    }
}

/// The fake kernel's decisions, each taken from the byte stream.
impl<const N: usize, const EDGE: bool> FakePoller<N, EDGE> {
    fn do_add(&mut self, fd: RawFd, token: Token<N>, interest: Interest, mode: Mode) -> Result<()> {
        Self::check_contract(fd, token, interest, mode);
        assert!(self.open, "contract: add on a poller that is not open");
        let slot = token.slot() as usize;
        assert!(
            self.watched[slot].is_none(),
            "contract: add to a watched slot {slot}"
        );
        assert!(
            self.watched().all(|w| w.fd != fd),
            "contract: fd {fd} added twice"
        );
        if fault() {
            return Err(Error::Os(scripted_errno()));
        }
        self.watched[slot] = Some(Watch {
            fd,
            token: token.to_u64(),
            interest,
            mode,
            armed: true,
        });
        self.history[self.history_next % 8] = Some(token);
        self.history_next += 1;
        Ok(())
    }

    fn do_modify(
        &mut self,
        fd: RawFd,
        token: Token<N>,
        interest: Interest,
        mode: Mode,
    ) -> Result<()> {
        Self::check_contract(fd, token, interest, mode);
        let w = self.watched[token.slot() as usize]
            .as_mut()
            .expect("contract: modify of a slot that is not watched");
        assert_eq!(
            (w.fd, w.token),
            (fd, token.to_u64()),
            "contract: modify with another fd/token"
        );
        if fault() {
            return Err(Error::Os(scripted_errno()));
        }
        w.interest = interest;
        w.mode = mode;
        w.armed = true;
        Ok(())
    }

    fn do_delete(&mut self, fd: RawFd, token: Token<N>) -> Result<()> {
        assert!(fd >= 0, "contract: delete of negative fd");
        let slot = token.slot() as usize;
        assert!(slot < N, "contract: delete of slot {slot} >= N");
        let w = self.watched[slot].expect("contract: delete of a slot that is not watched");
        assert_eq!(
            (w.fd, w.token),
            (fd, token.to_u64()),
            "contract: delete with another fd/token"
        );
        if fault() {
            let e = scripted_errno();
            // EBADF / ENOENT: the fd was closed, so the kernel had already dropped it.
            if e == Errno::BADF || e == Errno::NOENT {
                self.watched[slot] = None;
            }
            return Err(Error::Os(e));
        }
        self.watched[slot] = None;
        Ok(())
    }

    fn do_wait(&mut self, _timeout: Option<std::time::Duration>) -> Result<usize> {
        assert!(self.open, "contract: wait on a poller that is not open");
        self.len = 0;
        match byte() {
            0..=7 => return Err(Error::Os(Errno::INTR)),
            8..=11 => return Err(Error::Os(Errno::NOMEM)),
            _ => {}
        }
        let want = byte() as usize % (MAX_EVENTS + 1);
        let live: Vec<Watch> = self.watched().copied().collect();
        let mut reported = BTreeSet::new();
        for _ in 0..want {
            let kind = byte();
            let raw = Ready::from_bits_truncate(byte());
            let token = match kind % 4 {
                // A live registration.
                0 | 1 => {
                    if live.is_empty() {
                        continue;
                    }
                    Token::from_u64(live[byte() as usize % live.len()].token)
                }
                // A token given to `add` earlier: possibly stale, possibly still live.
                2 => match self.history[byte() as usize % 8] {
                    Some(t) => t,
                    None => continue,
                },
                // Garbage: any slot, any generation.
                _ => Token::from_u64(u64::from(u32_le()) << 32 | u64::from(u32_le())),
            };
            // A token that is watched now is reported as a kernel would: only while armed,
            // at most once per wait, and a oneshot entry is disarmed by being reported.
            let slot = token.slot() as usize;
            if let Some(w) = self.watched.get_mut(slot).and_then(|w| w.as_mut()) {
                if w.token == token.to_u64() {
                    if !w.armed || raw.is_empty() || !reported.insert(slot) {
                        continue;
                    }
                    if w.mode == Mode::Oneshot {
                        w.armed = false;
                    }
                }
            }
            self.events[self.len] = (token, raw);
            self.len += 1;
        }
        Ok(self.len)
    }

    /// A fresh kernel object watching exactly `live`, every entry armed (as epoll does).
    fn do_rebuild(
        &mut self,
        live: impl Iterator<Item = (RawFd, Token<N>, Interest, Mode)>,
    ) -> Result<()> {
        assert!(self.open, "contract: rebuild of a poller that is not open");
        let mut fresh = [None; N];
        for (fd, token, interest, mode) in live {
            Self::check_contract(fd, token, interest, mode);
            let slot = token.slot() as usize;
            assert!(
                fresh[slot].is_none(),
                "contract: two live registrations in slot {slot}"
            );
            fresh[slot] = Some(Watch {
                fd,
                token: token.to_u64(),
                interest,
                mode,
                armed: true,
            });
        }
        // The live set is exactly what add / modify / delete left watched.
        let key = |w: &Option<Watch>| w.map(|w| (w.fd, w.token, w.interest, w.mode));
        for (old, new) in self.watched.iter().zip(fresh.iter()) {
            assert_eq!(
                key(old),
                key(new),
                "contract: rebuild with another live set"
            );
        }
        if fault() {
            return Err(Error::Os(Errno::MFILE));
        }
        self.watched = fresh;
        REBUILDS.with(|r| r.set(r.get() + 1));
        Ok(())
    }

    fn do_close(&mut self) {
        self.open = false;
        self.watched = [None; N];
        self.len = 0;
    }
}

// ---------------------------------------------------------------------------------------------
// The model.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reg {
    key: SelectorKey<u32>,
    token: u64,
}

struct Model<const N: usize, const EDGE: bool> {
    regs: BTreeMap<RawFd, Reg>,
    /// Oneshot registrations that yielded a pair since they were registered or last modified.
    fired: BTreeSet<RawFd>,
    /// Registrations modified since the last wait: their queued events belong to the arming
    /// before the modify, so they do not count as the new arming's one report.
    modified_since_wait: BTreeSet<RawFd>,
    /// Every token of a successful registration: the selector never gives one out again.
    issued: BTreeSet<u64>,
    next_data: u32,
    /// The raw events of a batch dropped before its end, and where it stopped: the next
    /// `select` hands out what is left before it waits.
    rest: Option<(Vec<(u64, Ready)>, usize)>,
}

/// fds the ops pick from: colliding numbers for small `N`, negatives and huge values.
fn pick_fd() -> RawFd {
    match byte() {
        b @ 0..=199 => RawFd::from(b % 20),
        200..=209 => -1,
        210..=219 => RawFd::MIN,
        220..=229 => RawFd::MAX,
        b => 1000 + RawFd::from(b),
    }
}

fn pick_interest() -> Interest {
    let b = byte();
    if b < 224 {
        // Mostly valid: 1..=7.
        Interest::from_bits_retain(b % 7 + 1)
    } else {
        // Mostly with unknown bits, sometimes empty.
        Interest::from_bits_retain((b.wrapping_mul(37) & 0xF8) | (b & 0b0110))
    }
}

fn pick_mode() -> Mode {
    match byte() % 3 {
        0 => Mode::Level,
        1 => Mode::Oneshot,
        _ => Mode::Edge,
    }
}

type Sel<const N: usize, const EDGE: bool> = Selector<Fake<EDGE>, u32, N>;

/// The errors a `register` of `fd` must choose from, given the model's registrations `regs`
/// (the selector's and the loop's models keep different records per fd).
fn expected_register_errors<const N: usize, const EDGE: bool, R>(
    regs: &BTreeMap<RawFd, R>,
    fd: RawFd,
    interest: Interest,
    mode: Mode,
) -> Vec<Error> {
    register_errors(&Registration {
        fd,
        interest,
        mode_supported: EDGE || mode != Mode::Edge,
        registered: regs.contains_key(&fd),
        full: regs.len() == N,
    })
}

impl<const N: usize, const EDGE: bool> Model<N, EDGE> {
    fn new() -> Self {
        Model {
            regs: BTreeMap::new(),
            fired: BTreeSet::new(),
            modified_since_wait: BTreeSet::new(),
            issued: BTreeSet::new(),
            next_data: 0,
            rest: None,
        }
    }

    fn data(&mut self) -> u32 {
        self.next_data += 1;
        self.next_data
    }

    /// The selector, its table and the fake kernel all agree with the model.
    fn check(&self, sel: &Sel<N, EDGE>, poller_watched: &[Watch]) {
        let want: Vec<SelectorKey<u32>> = self.regs.values().map(|r| r.key).collect();
        assert_table(
            sel,
            &want,
            (-2..22).chain([RawFd::MIN, RawFd::MAX, 1000, 1255]),
        );
        // The kernel side holds exactly the registrations, with the same fd, interest and mode.
        assert_eq!(
            poller_watched.len(),
            self.regs.len(),
            "backend watches {poller_watched:?}"
        );
        for w in poller_watched {
            let r = self
                .regs
                .get(&w.fd)
                .expect("backend watches an unregistered fd");
            assert_eq!(
                (w.token, w.interest, w.mode),
                (r.token, r.key.interest(), r.key.mode()),
                "backend entry of fd {}",
                w.fd
            );
        }
    }

    fn register(&mut self, sel: &mut Sel<N, EDGE>, fd: RawFd, interest: Interest, mode: Mode) {
        let data = self.data();
        let before = watched_tokens();
        let got = sel.register_mode(fd, interest, mode, data);
        let must = expected_register_errors::<N, EDGE, _>(&self.regs, fd, interest, mode);
        match got {
            Ok(key) => {
                assert!(
                    must.is_empty(),
                    "register({fd}) succeeded, expected one of {must:?}"
                );
                assert_eq!(
                    (key.fd(), key.interest(), key.mode(), key.data()),
                    (fd, interest, mode, data)
                );
                let after = watched_tokens();
                let mut new = after.difference(&before);
                let token = *new.next().expect("register made no backend entry");
                assert!(new.next().is_none(), "register made two backend entries");
                assert!(self.issued.insert(token), "token {token:?} given out twice");
                self.regs.insert(fd, Reg { key, token });
                self.fired.remove(&fd);
                // Armed now: what the current batch holds for its token was not its report.
                self.modified_since_wait.insert(fd);
            }
            // Anything the fake kernel may answer (an errno from add, EMFILE from open) is
            // allowed when no validation error applies.
            Err(Error::Os(_)) if must.is_empty() => {}
            Err(e) => assert!(
                must.contains(&e),
                "register({fd}, {interest:?}, {mode:?}) = {e:?}, expected one of {must:?}"
            ),
        }
    }

    fn modify(
        &mut self,
        sel: &mut Sel<N, EDGE>,
        fd: RawFd,
        interest: Interest,
        mode: Option<Mode>,
    ) {
        let data = self.data();
        let got = match mode {
            Some(m) => sel.modify_mode(fd, interest, m, data),
            None => sel.modify(fd, interest, data),
        };
        let old = self.regs.get(&fd).copied();
        let mode = mode.or(old.map(|r| r.key.mode())).unwrap_or_default();
        let must = modify_errors(old.is_some(), interest, EDGE || mode != Mode::Edge);
        match (got, old) {
            (Ok(key), Some(old)) => {
                assert!(
                    must.is_empty(),
                    "modify({fd}) succeeded, expected one of {must:?}"
                );
                assert_eq!(
                    (key.fd(), key.interest(), key.mode(), key.data()),
                    (fd, interest, mode, data)
                );
                self.regs.insert(
                    fd,
                    Reg {
                        key,
                        token: old.token,
                    },
                );
                // Every modify of a oneshot registration reaches the backend and re-arms it.
                if mode == Mode::Oneshot || old.key.mode() == Mode::Oneshot {
                    self.fired.remove(&fd);
                }
                self.modified_since_wait.insert(fd);
            }
            (Ok(_), None) => panic!("modify of unregistered fd {fd} succeeded"),
            (Err(Error::Os(_)), Some(old)) if must.is_empty() => {
                // Only a call that reached the backend can fail with an errno.
                let syscall = old.key.interest() != interest
                    || old.key.mode() != mode
                    || mode == Mode::Oneshot;
                assert!(syscall, "modify of data alone failed with an errno");
            }
            (Err(e), _) => assert!(
                must.contains(&e),
                "modify({fd}, {interest:?}) = {e:?}, expected one of {must:?}"
            ),
        }
    }

    fn unregister(&mut self, sel: &mut Sel<N, EDGE>, fd: RawFd) {
        match (sel.unregister(fd), self.regs.get(&fd).copied()) {
            (Ok(key), Some(reg)) => {
                assert_eq!(key, reg.key);
                self.regs.remove(&fd);
            }
            (Err(Error::NotRegistered), None) => {}
            // A backend error other than EBADF/ENOENT: the registration stays.
            (Err(Error::Os(e)), Some(_)) => {
                assert!(
                    e != Errno::BADF && e != Errno::NOENT,
                    "unregister({fd}) = {e:?}"
                );
            }
            (got, want) => panic!("unregister({fd}) = {got:?}, model has {want:?}"),
        }
    }

    /// The next pair the batch must yield from raw event `*pos` on: the first event whose
    /// token is a live registration's and whose masked readiness is not empty.
    fn expected_next(
        &self,
        events: &[(u64, Ready)],
        pos: &mut usize,
    ) -> Option<(SelectorKey<u32>, Ready)> {
        while let Some(&(token, raw)) = events.get(*pos) {
            *pos += 1;
            if let Some((fd, reg)) = self.regs.iter().find(|(_, r)| r.token == token) {
                let ready = model_mask(raw, reg.key.interest());
                // A oneshot registration yields once per arming, even if a rebuilt backend
                // reports it again.
                let spent = reg.key.mode() == Mode::Oneshot && self.fired.contains(fd);
                if !ready.is_empty() && !spent {
                    return Some((reg.key, ready));
                }
            }
        }
        None
    }

    /// One wait (or the rest of a batch dropped early); between pairs the op stream may change
    /// registrations, try a nested wait or drop the batch, as a handler would through
    /// `Events::selector`.
    fn select(&mut self, sel: &mut Sel<N, EDGE>) {
        // The rest of a batch dropped early comes first, without a wait, if it holds a pair.
        let rest = self.rest.take().filter(|(raw, pos)| {
            let mut p = *pos;
            self.expected_next(raw, &mut p).is_some()
        });
        if rest.is_none() {
            // Every wait, even one that fails, starts a new batch: a modify made before it
            // re-armed a registration before any event this wait or a later one can hand out.
            self.modified_since_wait.clear();
        }
        let mut events = match sel.select(None) {
            Ok(ev) => ev,
            Err(Error::Os(e)) => {
                assert!(rest.is_none(), "the rest of a batch made a syscall");
                assert!(e != Errno::INTR, "EINTR must give no events, not an error");
                return;
            }
            Err(e) => panic!("select = {e:?}"),
        };
        let (raw, mut pos) = rest.unwrap_or_else(|| (MIRROR.with(|m| m.borrow().1.clone()), 0));
        loop {
            let want = self.expected_next(&raw, &mut pos);
            let got = events.next();
            assert_eq!(got, want, "pair of the batch, raw events {raw:?}");
            let Some((key, _)) = got else { break };
            if key.mode() == Mode::Oneshot
                && !self.modified_since_wait.contains(&key.fd())
                && !self.fired.insert(key.fd())
            {
                panic!("oneshot fd {} yielded twice without a modify", key.fd());
            }
            match byte() % 8 {
                0 => {
                    let fd = pick_fd();
                    self.unregister(events.selector(), fd);
                }
                1 => {
                    // Unregister and register the same number again: a new generation, and
                    // the old registration's queued events must not reach the new one.
                    let fd = key.fd();
                    self.unregister(events.selector(), fd);
                    let (i, m) = (pick_interest(), pick_mode());
                    self.register(events.selector(), fd, i, m);
                }
                2 => {
                    let (fd, i, m) = (pick_fd(), pick_interest(), pick_mode());
                    self.register(events.selector(), fd, i, m);
                }
                3 => {
                    let (fd, i) = (pick_fd(), pick_interest());
                    self.modify(events.selector(), fd, i, None);
                }
                4 => {
                    // A wait inside the batch would overwrite it: refused, nothing changed.
                    let published = MIRROR.with(|m| m.borrow().clone());
                    assert_eq!(
                        events.selector().select(None).err(),
                        Some(Error::InDispatch),
                        "a wait inside a batch"
                    );
                    assert_eq!(
                        MIRROR.with(|m| m.borrow().clone()),
                        published,
                        "a refused wait reached the backend"
                    );
                }
                5 => {
                    // The batch is dropped before its end: the next select hands out the rest.
                    self.rest = Some((raw, pos));
                    return;
                }
                _ => {}
            }
        }
    }
}

/// What the fake watches now, by token.
fn watched_tokens() -> BTreeSet<u64> {
    MIRROR.with(|m| m.borrow().0.iter().map(|w| w.token).collect())
}

/// Runs one input: the first byte picks the capacity and whether the fake claims edge mode; the
/// rest is ops until the input is used up.
pub fn run(data: &[u8]) {
    INPUT.with(|i| *i.borrow_mut() = (data.to_vec(), 0));
    MIRROR.with(|m| *m.borrow_mut() = (Vec::new(), Vec::new()));
    match next_byte().unwrap_or(0) % 6 {
        0 => run_n::<1, false>(),
        1 => run_n::<2, true>(),
        2 => run_n::<3, false>(),
        3 => run_n::<4, true>(),
        4 => run_n::<8, false>(),
        _ => run_n::<5, true>(),
    }
}

fn run_n<const N: usize, const EDGE: bool>() {
    let mut sel = Sel::<N, EDGE>::new();
    let mut model = Model::<N, EDGE>::new();
    // Bounded: every op consumes at least one byte.
    while let Some(op) = next_byte() {
        match op % 8 {
            0 | 1 => {
                let (fd, i, m) = (pick_fd(), pick_interest(), pick_mode());
                model.register(&mut sel, fd, i, m);
            }
            2 => model.unregister(&mut sel, pick_fd()),
            3 => {
                let (fd, i) = (pick_fd(), pick_interest());
                model.modify(&mut sel, fd, i, None);
            }
            4 => {
                let (fd, i, m) = (pick_fd(), pick_interest(), pick_mode());
                model.modify(&mut sel, fd, i, Some(m));
            }
            5 | 6 => model.select(&mut sel),
            _ => {
                // close(): every registration forgotten, the backend released.
                sel.close();
                sel = Sel::<N, EDGE>::new();
                model.regs.clear();
                model.rest = None;
                // A new selector starts its generations again.
                model.issued.clear();
            }
        }
        let watched = MIRROR.with(|m| m.borrow().0.clone());
        model.check(&sel, &watched);
    }
}

// ---------------------------------------------------------------------------------------------
// The event loop over the same fake backend: handlers that change registrations, stop the
// loop or run a nested `run_once` while a batch is being dispatched.

/// One registration of the event loop, as the model sees it.
#[derive(Debug, Clone, Copy)]
struct LoopReg {
    interest: Interest,
    mode: Mode,
    /// The caller's token, handed back in each `IoEvent`.
    user: usize,
    /// The selector's token, as the fake backend was given it.
    token: u64,
    /// A oneshot registration was dispatched since it was last armed.
    fired: bool,
    /// `LoopModel::waits` when it was last armed by a modify.
    armed_in: u32,
}

/// One `run_once` batch: its wait's events and how far dispatch got.
struct Frame {
    raw: Option<Vec<(u64, Ready)>>,
    pos: usize,
    /// Which wait of the loop this is (`LoopModel::waits` when it began).
    wait_no: u32,
}

/// The event loop's context: the model itself, so handlers can check and update it.
pub struct LoopModel {
    regs: BTreeMap<RawFd, LoopReg>,
    /// The batch being dispatched, or left undispatched by a handler that panicked.
    frame: Option<Frame>,
    next_user: usize,
    /// Waits made so far (one per `run_once` that did not resume a batch).
    waits: u32,
}

type Lp<const N: usize, const EDGE: bool> = picosel::EventLoop<Fake<EDGE>, LoopModel, N, 0>;

thread_local! {
    /// Whether handlers may panic (the stable suite catches it; libFuzzer aborts on any panic).
    pub static HANDLER_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// The payload of a handler's deliberate panic.
struct HandlerPanic;

/// Keeps the default panic message for everything but [`HandlerPanic`].
fn quiet_handler_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<HandlerPanic>().is_none() {
                default(info);
            }
        }));
    });
}

impl LoopModel {
    /// Whether `reg` yields a dispatch for raw readiness `r`.
    fn yields(reg: &LoopReg, r: Ready) -> bool {
        let spent = reg.mode == Mode::Oneshot && reg.fired;
        !spent && !model_mask(r, reg.interest).is_empty()
    }

    /// Whether the batch left by a panicking handler still holds a dispatch.
    fn rest_is_live(&self) -> bool {
        let Some(Frame {
            raw: Some(raw),
            pos,
            ..
        }) = &self.frame
        else {
            return false;
        };
        raw[*pos..].iter().any(|&(token, r)| {
            self.regs
                .values()
                .any(|g| g.token == token && Self::yields(g, r))
        })
    }

    /// The next dispatch the batch must make: the first remaining event whose token is a live
    /// registration's and whose masked readiness is not empty.
    fn expected_next(&mut self) -> Option<(RawFd, usize, Ready)> {
        let frame = self.frame.as_mut()?;
        let raw = frame
            .raw
            .get_or_insert_with(|| MIRROR.with(|m| m.borrow().1.clone()));
        while let Some(&(token, r)) = raw.get(frame.pos) {
            frame.pos += 1;
            if let Some((fd, reg)) = self.regs.iter_mut().find(|(_, g)| g.token == token) {
                if Self::yields(reg, r) {
                    // An event taken before a modify of this batch re-armed it was spent on the
                    // old arming.
                    if reg.mode == Mode::Oneshot && reg.armed_in != frame.wait_no {
                        reg.fired = true;
                    }
                    return Some((*fd, reg.user, model_mask(r, reg.interest)));
                }
            }
        }
        None
    }
}

fn on_io<const N: usize, const EDGE: bool>(lp: &mut Lp<N, EDGE>, ev: picosel::IoEvent) {
    let m = lp.context_mut();
    assert!(m.frame.is_some(), "a handler ran outside run_once");
    let want = m.expected_next();
    assert_eq!(
        Some((ev.fd, ev.data, ev.ready)),
        want,
        "dispatch of the batch"
    );
    match byte() % 10 {
        0 => loop_unregister(lp, pick_fd()),
        1 => {
            // Unregister this fd and register it again: a new registration, which must get
            // none of the old one's queued events.
            loop_unregister(lp, ev.fd);
            let (i, m) = (pick_interest(), pick_mode());
            loop_register(lp, ev.fd, i, m);
        }
        2 => {
            let (fd, i, m) = (pick_fd(), pick_interest(), pick_mode());
            loop_register(lp, fd, i, m);
        }
        3 => {
            let (fd, i) = (pick_fd(), pick_interest());
            loop_modify(lp, fd, i);
        }
        4 => lp.stop(),
        5 => {
            // A nested wait would overwrite the batch: refused, nothing changed.
            let published = MIRROR.with(|m| m.borrow().clone());
            assert_eq!(lp.run_once(None), Err(Error::InDispatch), "nested run_once");
            assert_eq!(
                MIRROR.with(|m| m.borrow().clone()),
                published,
                "a refused wait reached the backend"
            );
        }
        6 if HANDLER_PANICS.with(Cell::get) => std::panic::panic_any(HandlerPanic),
        _ => {}
    }
}

fn loop_register<const N: usize, const EDGE: bool>(
    lp: &mut Lp<N, EDGE>,
    fd: RawFd,
    interest: Interest,
    mode: Mode,
) {
    let m = lp.context_mut();
    m.next_user += 1;
    let user = m.next_user;
    let before = watched_tokens();
    let got = lp.register_mode(fd, interest, mode, user, on_io::<N, EDGE>);
    let m = lp.context_mut();
    let must = expected_register_errors::<N, EDGE, _>(&m.regs, fd, interest, mode);
    match got {
        Ok(()) => {
            assert!(
                must.is_empty(),
                "loop register({fd}) succeeded, expected one of {must:?}"
            );
            let after = watched_tokens();
            let mut new = after.difference(&before);
            let token = *new.next().expect("register made no backend entry");
            let reg = LoopReg {
                interest,
                mode,
                user,
                token,
                fired: false,
                armed_in: m.waits,
            };
            m.regs.insert(fd, reg);
        }
        Err(Error::Os(_)) if must.is_empty() => {}
        Err(e) => assert!(
            must.contains(&e),
            "loop register({fd}) = {e:?}, expected {must:?}"
        ),
    }
}

fn loop_unregister<const N: usize, const EDGE: bool>(lp: &mut Lp<N, EDGE>, fd: RawFd) {
    let got = lp.unregister(fd);
    let m = lp.context_mut();
    match (got, m.regs.contains_key(&fd)) {
        (Ok(()), true) => {
            m.regs.remove(&fd);
        }
        (Err(Error::NotRegistered), false) => {}
        (Err(Error::Os(e)), true) => {
            assert!(
                e != Errno::BADF && e != Errno::NOENT,
                "loop unregister({fd}) = {e:?}"
            )
        }
        (got, registered) => panic!("loop unregister({fd}) = {got:?}, registered: {registered}"),
    }
}

fn loop_modify<const N: usize, const EDGE: bool>(
    lp: &mut Lp<N, EDGE>,
    fd: RawFd,
    interest: Interest,
) {
    let got = lp.modify(fd, interest);
    let m = lp.context_mut();
    let old = m.regs.get(&fd).copied();
    let waits = m.waits;
    match (got, old) {
        (Ok(()), Some(old)) => {
            assert!(valid(interest), "loop modify({fd}) accepted {interest:?}");
            if let Some(r) = m.regs.get_mut(&fd) {
                // Every modify re-arms.
                *r = LoopReg {
                    interest,
                    fired: false,
                    armed_in: waits,
                    ..old
                };
            }
        }
        (Ok(()), None) => panic!("loop modify of unregistered fd {fd} succeeded"),
        (Err(Error::NotRegistered), None) => {}
        (Err(Error::InvalidInterest), Some(_)) => assert!(!valid(interest)),
        (Err(Error::Os(_)), Some(old)) => {
            let syscall = old.interest != interest || old.mode == Mode::Oneshot;
            assert!(
                valid(interest) && syscall,
                "loop modify({fd}) failed without a syscall"
            );
        }
        (got, old) => panic!("loop modify({fd}, {interest:?}) = {got:?}, model {old:?}"),
    }
}

fn loop_run_once<const N: usize, const EDGE: bool>(lp: &mut Lp<N, EDGE>) {
    let m = lp.context_mut();
    // The rest of a batch left by a panicking handler comes first, without a wait.
    if !m.rest_is_live() {
        m.waits += 1;
        m.frame = Some(Frame {
            raw: None,
            pos: 0,
            wait_no: m.waits,
        });
    }
    let resumed = m.frame.as_ref().is_some_and(|f| f.raw.is_some());
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run_once(None)));
    let m = lp.context_mut();
    match got {
        Ok(Ok(_)) => {
            let left = m.expected_next();
            assert_eq!(left, None, "a live event of the batch was not dispatched");
            m.frame = None;
        }
        Ok(Err(Error::Os(e))) => {
            assert!(!resumed, "the rest of a batch made a syscall");
            assert!(e != Errno::INTR, "EINTR must give no events, not an error");
            m.frame = None;
        }
        Ok(Err(e)) => panic!("run_once = {e:?}"),
        // A handler panicked: the frame keeps the rest for the next `run_once`.
        Err(p) if p.downcast_ref::<HandlerPanic>().is_some() => {}
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Runs one input against the event loop: the first byte picks the capacity and whether the
/// fake claims edge mode; the rest is ops until the input is used up.
pub fn run_event_loop(data: &[u8]) {
    if HANDLER_PANICS.with(Cell::get) {
        quiet_handler_panics();
    }
    INPUT.with(|i| *i.borrow_mut() = (data.to_vec(), 0));
    MIRROR.with(|m| *m.borrow_mut() = (Vec::new(), Vec::new()));
    match next_byte().unwrap_or(0) % 4 {
        0 => run_loop_n::<1, false>(),
        1 => run_loop_n::<2, true>(),
        2 => run_loop_n::<4, false>(),
        _ => run_loop_n::<7, true>(),
    }
}

fn run_loop_n<const N: usize, const EDGE: bool>() {
    let mut lp: Box<Lp<N, EDGE>> = Box::new(picosel::EventLoop::new(LoopModel {
        regs: BTreeMap::new(),
        frame: None,
        next_user: 0,
        waits: 0,
    }));
    while let Some(op) = next_byte() {
        match op % 6 {
            0 | 1 => {
                let (fd, i, m) = (pick_fd(), pick_interest(), pick_mode());
                loop_register(&mut lp, fd, i, m);
            }
            2 => loop_unregister(&mut lp, pick_fd()),
            3 => {
                let (fd, i) = (pick_fd(), pick_interest());
                loop_modify(&mut lp, fd, i);
            }
            _ => loop_run_once(&mut lp),
        }
        // The loop's table and the fake kernel agree with the model.
        let m = lp.context();
        assert_eq!(lp.len(), m.regs.len(), "loop len");
        for fd in (-2..22).chain([RawFd::MIN, RawFd::MAX, 1000, 1255]) {
            assert_eq!(
                lp.is_registered(fd),
                m.regs.contains_key(&fd),
                "is_registered({fd})"
            );
        }
        let watched = MIRROR.with(|w| w.borrow().0.clone());
        assert_eq!(watched.len(), m.regs.len(), "backend watches {watched:?}");
        for w in &watched {
            let r = m
                .regs
                .get(&w.fd)
                .expect("backend watches an unregistered fd");
            assert_eq!(
                (w.token, w.interest, w.mode),
                (r.token, r.interest, r.mode),
                "backend entry of fd {}",
                w.fd
            );
        }
    }
}
