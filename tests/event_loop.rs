//! The event loop on every backend (CONFORMANCE 22–25): handlers, re-entrancy, timers, a
//! raised signal, the waker. Each check is written once, generic over the backend, and run as
//! `epoll::<name>`, `poll::<name>` and `select::<name>`.
//!
//! Signals sent to the whole process live in `tests/signals.rs`, a binary of their own; here a
//! signal is only ever raised at the test's own thread, which blocks it, so no other thread of
//! the test harness can take it.

mod support;

use picosel::backend::Backend;
use picosel::{Error, EventLoop, Instant, Interest, IoEvent, Mode, Ready, TimerEvent, TimerId};
use rustix::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::time::Duration;
use support::pipe;

const MS: Duration = Duration::from_millis(1);

#[derive(Default)]
struct Ctx {
    /// I/O events seen, in dispatch order.
    io: Vec<IoEvent>,
    /// Fds the handlers work on, by token.
    fds: Vec<Option<OwnedFd>>,
    /// Timers and their tags.
    timers: Vec<(TimerId, u32)>,
    /// Timers fired: tag, when, missed, next deadline.
    fired: Vec<(u32, Instant, u32, Option<Instant>)>,
    wakes: usize,
    #[cfg(feature = "signal")]
    signals: Vec<picosel::SignalEvent>,
    /// Whether the loop was stopped when a handler started.
    saw_stopped: Vec<bool>,
}

impl Ctx {
    fn fd(&self, token: usize) -> RawFd {
        self.fds[token].as_ref().expect("fd for token").as_raw_fd()
    }

    fn tag(&self, id: TimerId) -> u32 {
        self.timers
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, t)| *t)
            .expect("known timer")
    }
}

type L<B> = EventLoop<B, Ctx, 16, 8>;

fn put(w: &OwnedFd) {
    rustix::io::write(w, b"x").unwrap();
}

fn record<B: Backend>(ev: &mut L<B>, io: IoEvent) {
    ev.context_mut().io.push(io);
}

fn tokens(io: &[IoEvent]) -> Vec<usize> {
    let mut t: Vec<usize> = io.iter().map(|e| e.data).collect();
    t.sort();
    t
}

// ---- CONFORMANCE 22: handlers, and changes made during dispatch ------------------------------

fn handlers_run_for_the_right_fds_with_the_right_readiness<B: Backend>() {
    let pipes: Vec<_> = (0..3).map(|_| pipe()).collect();
    let mut ev = L::<B>::new(Ctx::default());
    for (i, (r, _)) in pipes.iter().enumerate() {
        ev.register(r, Interest::READ, i, record::<B>).unwrap();
    }
    ev.register(&pipes[1].1, Interest::WRITE, 10, record::<B>)
        .unwrap();
    put(&pipes[0].1);
    put(&pipes[2].1);
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 3);
    let io = std::mem::take(&mut ev.context_mut().io);
    assert_eq!(tokens(&io), [0, 2, 10]);
    for e in &io {
        let (fd, ready) = match e.data {
            10 => (pipes[1].1.as_raw_fd(), Ready::WRITE),
            t => (pipes[t].0.as_raw_fd(), Ready::READ),
        };
        assert_eq!((e.fd, e.ready), (fd, ready), "data {}", e.data);
    }
    assert_eq!(ev.len(), 4);
}

/// Token 0's handler: registers fd 1 (readable), widens fd 2's interest to WRITE, and
/// unregisters itself.
fn reshape<B: Backend>(ev: &mut L<B>, io: IoEvent) {
    ev.context_mut().io.push(io);
    let (one, two) = (ev.context_mut().fd(1), ev.context_mut().fd(2));
    ev.register(one, Interest::READ, 1, record::<B>).unwrap();
    ev.modify(two, Interest::READ | Interest::WRITE).unwrap();
    ev.unregister(io.fd).unwrap();
}

fn handler_registers_modifies_and_unregisters_during_dispatch<B: Backend>() {
    let (a, aw) = pipe();
    let (b, bw) = pipe();
    let (s, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let s: OwnedFd = s.into();
    let mut ev = L::<B>::new(Ctx::default());
    ev.register(&a, Interest::READ, 0, reshape::<B>).unwrap();
    ev.register(&s, Interest::READ, 2, record::<B>).unwrap();
    ev.context_mut().fds = vec![None, Some(b), Some(s)];
    put(&aw);
    put(&bw);
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(tokens(&ev.context_mut().io), [0]);
    ev.context_mut().io.clear();
    // `a` is still readable but unregistered; `b` is new; the socket is now writable.
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 2);
    let io = std::mem::take(&mut ev.context_mut().io);
    assert_eq!(tokens(&io), [1, 2]);
    let sock = io.iter().find(|e| e.data == 2).unwrap();
    assert_eq!(sock.ready, Ready::WRITE);
    assert!(!ev.is_registered(&a));
    assert_eq!(ev.len(), 2);
}

/// Unregisters itself and the other of the pair (tokens 0 and 1).
fn drop_both<B: Backend>(ev: &mut L<B>, io: IoEvent) {
    ev.context_mut().io.push(io);
    let other = ev.context_mut().fd(1 - io.data);
    ev.unregister(io.fd).unwrap();
    ev.unregister(other).unwrap();
}

fn handler_unregisters_itself_and_another_with_a_queued_event<B: Backend>() {
    let (a, aw) = pipe();
    let (b, bw) = pipe();
    put(&aw);
    put(&bw);
    let mut ev = L::<B>::new(Ctx::default());
    ev.register(&a, Interest::READ, 0, drop_both::<B>).unwrap();
    ev.register(&b, Interest::READ, 1, drop_both::<B>).unwrap();
    ev.context_mut().fds = vec![Some(a), Some(b)];
    // Both are ready in the same batch; whichever runs first removes the other's event.
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(ev.context_mut().io.len(), 1);
    assert!(ev.is_empty());
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 0);
}

/// Closes the other of the pair and registers a new, empty pipe under the same number
/// (`dup2` reuses it), with token 99.
fn replace_other<B: Backend>(ev: &mut L<B>, io: IoEvent) {
    ev.context_mut().io.push(io);
    let other = 1 - io.data;
    let number = ev.context_mut().fd(other);
    ev.unregister(number).unwrap();
    let (new_r, new_w) = pipe();
    let mut old = ev.context_mut().fds[other].take().unwrap();
    rustix::io::dup2(&new_r, &mut old).unwrap(); // closes the old pipe, reuses its number
    assert_eq!(old.as_raw_fd(), number);
    ev.register(&old, Interest::READ, 99, record::<B>).unwrap();
    ev.context_mut().fds[other] = Some(old);
    ev.context_mut().fds.push(Some(new_w)); // token 2: the new pipe's writer
}

fn closed_and_reused_fd_gets_no_stale_event<B: Backend>() {
    let (a, aw) = pipe();
    let (b, bw) = pipe();
    put(&aw);
    put(&bw);
    let mut ev = L::<B>::new(Ctx::default());
    ev.register(&a, Interest::READ, 0, replace_other::<B>)
        .unwrap();
    ev.register(&b, Interest::READ, 1, replace_other::<B>)
        .unwrap();
    ev.context_mut().fds = vec![Some(a), Some(b)];
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    // The old event of the replaced number went neither to its old handler nor to token 99.
    let io = std::mem::take(&mut ev.context_mut().io);
    assert_eq!(io.len(), 1, "{io:?}");
    let first = io[0].data;
    // The replaced first runner's pipe still has data, so it runs again and replaces back;
    // make it stop: unregister it.
    let first_fd = ev.context_mut().fd(first);
    ev.unregister(first_fd).unwrap();
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 0);
    // The new pipe behind the reused number works normally.
    put(ev.context().fds[2].as_ref().unwrap());
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(tokens(&ev.context_mut().io), [99]);
}

fn modify_keeps_handler_and_token_and_rearms_oneshot<B: Backend>() {
    let (r, w) = pipe();
    let mut ev = L::<B>::new(Ctx::default());
    ev.register_mode(&r, Interest::READ, Mode::Oneshot, 5, record::<B>)
        .unwrap();
    put(&w);
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 0); // disarmed, data still there
    ev.modify(&r, Interest::READ).unwrap();
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(tokens(&ev.context_mut().io), [5, 5]);
    assert_eq!(ev.modify(&w, Interest::READ), Err(Error::NotRegistered));
}

fn other_handler<B: Backend>(ev: &mut L<B>, io: IoEvent) {
    let mut io = io;
    io.data += 1000;
    ev.context_mut().io.push(io);
}

fn set_handler_replaces_handler_and_token<B: Backend>() {
    let (r, w) = pipe();
    let mut ev = L::<B>::new(Ctx::default());
    ev.register(&r, Interest::READ, 1, record::<B>).unwrap();
    put(&w);
    ev.set_handler(&r, 2, other_handler::<B>).unwrap();
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(tokens(&ev.context_mut().io), [1002]);
    assert_eq!(
        ev.set_handler(&w, 0, record::<B>),
        Err(Error::NotRegistered)
    );
}

/// Gives the other of the pair (tokens 0 and 1) a new handler and token.
fn switch_other<B: Backend>(ev: &mut L<B>, io: IoEvent) {
    ev.context_mut().io.push(io);
    let other = 1 - io.data;
    let fd = ev.context_mut().fd(other);
    ev.set_handler(fd, other, other_handler::<B>).unwrap();
}

fn queued_event_goes_to_the_handler_set_during_the_batch<B: Backend>() {
    let (a, aw) = pipe();
    let (b, bw) = pipe();
    put(&aw);
    put(&bw);
    let mut ev = L::<B>::new(Ctx::default());
    ev.register(&a, Interest::READ, 0, switch_other::<B>)
        .unwrap();
    ev.register(&b, Interest::READ, 1, switch_other::<B>)
        .unwrap();
    ev.context_mut().fds = vec![Some(a), Some(b)];
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 2);
    let io = std::mem::take(&mut ev.context_mut().io);
    // The first one ran its own handler; the second, still queued, went to the new one.
    assert_eq!(io.len(), 2);
    assert!(
        io[0].data < 2 && io[1].data == 1000 + (1 - io[0].data),
        "{io:?}"
    );
}

/// Narrows the other of the pair (tokens 0 and 1) from READ to WRITE.
fn narrow_other<B: Backend>(ev: &mut L<B>, io: IoEvent) {
    ev.context_mut().io.push(io);
    let fd = ev.context_mut().fd(1 - io.data);
    if ev.is_registered(fd) {
        ev.modify(fd, Interest::WRITE).unwrap();
    }
}

fn queued_event_is_masked_to_the_interest_set_during_the_batch<B: Backend>() {
    let (a, a_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let (b, b_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    for peer in [&a_peer, &b_peer] {
        rustix::io::write(peer, b"x").unwrap();
    }
    let mut ev = L::<B>::new(Ctx::default());
    ev.register(&a, Interest::READ, 0, narrow_other::<B>)
        .unwrap();
    ev.register(&b, Interest::READ, 1, narrow_other::<B>)
        .unwrap();
    ev.context_mut().fds = vec![Some(a.into()), Some(b.into())];
    // Both were readable at the wait; the second's READ no longer matches its interest.
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    let first = ev.context_mut().io[0];
    assert_eq!(first.ready, Ready::READ);
    // Next turn, without the first: the narrowed one reports WRITE.
    let first_fd = ev.context_mut().fd(first.data);
    ev.unregister(first_fd).unwrap();
    ev.context_mut().io.clear();
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    let second = ev.context_mut().io[0];
    assert_eq!((second.data, second.ready), (1 - first.data, Ready::WRITE));
}

fn nop_wake<B: Backend, const N: usize>(_ev: &mut EventLoop<B, Ctx, N, 8>) {}
fn nop_io<B: Backend, const N: usize>(_ev: &mut EventLoop<B, Ctx, N, 8>, _io: IoEvent) {}

fn full_table_counts_the_loop_s_own_fds<B: Backend>() {
    let (a, b) = pipe();
    let (c, _d) = pipe();
    let mut ev = EventLoop::<B, Ctx, 2, 8>::new(Ctx::default());
    ev.register(&a, Interest::READ, 0, nop_io::<B, 2>).unwrap();
    ev.register(&b, Interest::WRITE, 0, nop_io::<B, 2>).unwrap();
    assert_eq!(
        ev.register(&c, Interest::READ, 0, nop_io::<B, 2>),
        Err(Error::Full)
    );
    assert_eq!(ev.waker(nop_wake::<B, 2>).err(), Some(Error::Full));
    ev.unregister(&b).unwrap();
    let _waker = ev.waker(nop_wake::<B, 2>).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        ev.register(&c, Interest::READ, 0, nop_io::<B, 2>),
        Err(Error::Full)
    );
    assert_eq!(ev.unregister(&c), Err(Error::NotRegistered));
}

fn stop_here<B: Backend>(ev: &mut L<B>, io: IoEvent) {
    let stopped = ev.is_stopped();
    ev.context_mut().saw_stopped.push(stopped);
    ev.context_mut().io.push(io);
    ev.stop();
}

fn stop_ends_run_and_run_clears_the_flag<B: Backend>() {
    let (_r, w) = pipe();
    let mut ev = L::<B>::new(Ctx::default());
    ev.register(&w, Interest::WRITE, 0, stop_here::<B>).unwrap();
    ev.run().unwrap();
    assert!(ev.is_stopped());
    ev.run().unwrap();
    assert_eq!(ev.context_mut().saw_stopped, [false, false]);
}

fn io_dispatch_makes_no_registration_syscalls<B: Backend>() {
    let (r, w) = pipe();
    let mut ev = EventLoop::<support::CountingCalls<B>, Ctx, 16, 8>::new(Ctx::default());
    ev.register(&r, Interest::READ, 0, counted_read::<B>)
        .unwrap();
    let before = support::CTL_CALLS.with(|c| c.get());
    for _ in 0..100 {
        put(&w);
        assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    }
    assert_eq!(support::CTL_CALLS.with(|c| c.get()), before);
}

fn counted_read<B: Backend>(
    _ev: &mut EventLoop<support::CountingCalls<B>, Ctx, 16, 8>,
    io: IoEvent,
) {
    let fd = unsafe_free_borrow(io.fd);
    let mut buf = [0u8; 8];
    rustix::io::read(fd, &mut buf).unwrap();
}

/// A borrowed fd for a number the test owns elsewhere.
#[allow(unsafe_code)]
fn unsafe_free_borrow<'a>(fd: RawFd) -> rustix::fd::BorrowedFd<'a> {
    // SAFETY: the tests only pass numbers of fds they keep open for the whole call.
    unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) }
}

// ---- CONFORMANCE 23: timers -------------------------------------------------------------------

fn tagged<B: Backend>(ev: &mut L<B>, t: TimerEvent) {
    let tag = ev.context_mut().tag(t.id);
    let next = ev.timer_deadline(t.id);
    ev.context_mut()
        .fired
        .push((tag, Instant::now(), t.missed, next));
}

fn add<B: Backend>(ev: &mut L<B>, after: Duration, tag: u32) -> TimerId {
    let id = ev.add_timer(after, 0, tagged::<B>).unwrap();
    ev.context_mut().timers.push((id, tag));
    id
}

/// Runs turns until `n` timers fired (bounded).
fn run_until_fired<B: Backend>(ev: &mut L<B>, n: usize) {
    for _ in 0..10_000 {
        if ev.context_mut().fired.len() >= n {
            return;
        }
        ev.run_once(None).unwrap();
    }
    panic!("only {} of {n} timers fired", ev.context_mut().fired.len());
}

fn timers_fire_in_deadline_order_and_never_early<B: Backend>() {
    let mut ev = L::<B>::new(Ctx::default());
    let start = Instant::now();
    for ms in [30u32, 10, 0, 20, 10] {
        add(&mut ev, MS * ms, ms);
    }
    run_until_fired(&mut ev, 5);
    let fired = &ev.context_mut().fired;
    let order: Vec<u32> = fired.iter().map(|f| f.0).collect();
    assert_eq!(order, [0, 10, 10, 20, 30]);
    for &(ms, at, missed, next) in fired {
        assert!(
            at - start >= MS * ms,
            "{ms} ms timer fired after {:?}",
            at - start
        );
        assert_eq!((missed, next), (0, None)); // one-shot: gone once fired
    }
    assert_eq!(ev.timer_count(), 0);
}

fn wait_is_cut_short_by_the_next_timer<B: Backend>() {
    let mut ev = L::<B>::new(Ctx::default());
    let start = Instant::now();
    add(&mut ev, MS * 30, 1);
    // One wait, asked for 10 s, returns when the timer is due and runs it.
    let mut ran = 0;
    for _ in 0..100 {
        ran += ev.run_once(Some(Duration::from_secs(10))).unwrap();
        if ran > 0 {
            break;
        }
    }
    assert_eq!(ran, 1);
    assert!(start.elapsed() >= MS * 30);
    assert!(start.elapsed() < Duration::from_secs(5));
    // Nothing registered, nothing armed, timeout zero: back at once with nothing.
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 0);
}

fn tick<B: Backend>(ev: &mut L<B>, t: TimerEvent) {
    let next = ev.timer_deadline(t.id);
    ev.context_mut()
        .fired
        .push((0, Instant::now(), t.missed, next));
    let accounted: u32 = ev.context_mut().fired.iter().map(|f| 1 + f.2).sum();
    if accounted >= 100 {
        ev.cancel_timer(t.id).unwrap();
        ev.stop();
    }
}

fn periodic_timer_keeps_its_grid_over_100_periods<B: Backend>() {
    let period = MS * 2;
    let mut ev = L::<B>::new(Ctx::default());
    let id = ev.add_periodic(period, 0, tick::<B>).unwrap();
    let first = ev.timer_deadline(id).unwrap();
    ev.run().unwrap();
    let mut n = 0u32; // grid index of the deadline that fired
    for &(_, at, missed, next) in &ev.context_mut().fired {
        let due = first + period * n;
        assert!(
            at >= due,
            "tick {n} early: {:?} before its deadline",
            due - at
        );
        n += 1 + missed;
        if n < 100 {
            // The next deadline is exactly on the grid: no drift accumulates.
            assert_eq!(next, Some(first + period * n));
        }
    }
    assert!(n >= 100);
    assert!(ev.context_mut().fired.last().unwrap().1 >= first + period * 99);
    assert_eq!(ev.timer_count(), 0);
}

fn cancel_second<B: Backend>(ev: &mut L<B>, t: TimerEvent) {
    tagged::<B>(ev, t);
    let victim = ev.context_mut().timers[1].0;
    ev.cancel_timer(victim).unwrap();
}

fn cancelled_timer_never_fires<B: Backend>() {
    let mut ev = L::<B>::new(Ctx::default());
    let first = ev.add_timer(MS, 0, cancel_second::<B>).unwrap();
    ev.context_mut().timers.push((first, 1));
    add(&mut ev, MS * 2, 2); // cancelled by the first, in the same pass
    let gone = add(&mut ev, MS * 3, 3);
    ev.cancel_timer(gone).unwrap();
    assert_eq!(ev.cancel_timer(gone), Err(Error::NotRegistered));
    add(&mut ev, MS * 40, 4);
    std::thread::sleep(MS * 10); // both the first and second are due at the next check
    run_until_fired(&mut ev, 2);
    let order: Vec<u32> = ev.context_mut().fired.iter().map(|f| f.0).collect();
    assert_eq!(order, [1, 4]);
}

fn timer_table_full_is_a_clear_error<B: Backend>() {
    let mut ev = L::<B>::new(Ctx::default());
    let ids: Vec<TimerId> = (0..8).map(|i| add(&mut ev, MS * (100 + i), i)).collect();
    assert_eq!(ev.add_timer(MS, 0, tagged::<B>), Err(Error::Full));
    assert_eq!(ev.add_periodic(MS, 0, tagged::<B>), Err(Error::Full));
    ev.cancel_timer(ids[3]).unwrap();
    ev.add_timer(MS, 0, tagged::<B>).unwrap();
    assert_eq!(ev.timer_count(), 8);
}

fn stale_timer_id_cannot_cancel_a_newer_timer<B: Backend>() {
    let mut ev = EventLoop::<B, Ctx, 16, 1>::new(Ctx::default());
    fn fired<B: Backend>(ev: &mut EventLoop<B, Ctx, 16, 1>, _t: TimerEvent) {
        ev.context_mut().wakes += 1;
    }
    let old = ev.add_timer(MS, 0, fired::<B>).unwrap();
    while ev.context_mut().wakes == 0 {
        ev.run_once(None).unwrap();
    }
    let new = ev.add_timer(MS, 0, fired::<B>).unwrap(); // same slot (T = 1)
    assert_ne!(old, new);
    assert_eq!(ev.cancel_timer(old), Err(Error::NotRegistered));
    while ev.context_mut().wakes == 1 {
        ev.run_once(None).unwrap();
    }
    assert_eq!(ev.cancel_timer(new), Err(Error::NotRegistered)); // fired
}

// ---- CONFORMANCE 24 (thread-directed part): a raised signal -----------------------------------

#[cfg(feature = "signal")]
mod signal {
    use super::*;
    use picosel::{Signal, SignalEvent};

    fn on_signal<B: Backend>(ev: &mut L<B>, sig: SignalEvent) {
        ev.context_mut().signals.push(sig);
    }

    #[allow(unsafe_code)]
    fn raise(sig: Signal) {
        // SAFETY: raise(3) sends a signal to the calling thread; the caller has it blocked.
        assert_eq!(unsafe { libc::raise(sig.as_raw()) }, 0);
    }

    fn raised_signal_reaches_its_handler<B: Backend>() {
        let mut ev = L::<B>::new(Ctx::default());
        ev.add_signal(Signal::USR1, on_signal::<B>).unwrap();
        ev.add_signal(Signal::USR2, on_signal::<B>).unwrap();
        assert_eq!(ev.len(), 0); // the signalfd is the loop's own
        raise(Signal::USR2);
        for _ in 0..100 {
            if !ev.context_mut().signals.is_empty() {
                break;
            }
            ev.run_once(Some(MS * 100)).unwrap();
        }
        let got = std::mem::take(&mut ev.context_mut().signals);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].signal, Signal::USR2);
        assert_eq!(
            got[0].pid,
            rustix::process::getpid().as_raw_nonzero().get() as u32
        );
        assert_eq!(got[0].uid, rustix::process::getuid().as_raw());
        assert_eq!(
            ev.add_signal(Signal::KILL, on_signal::<B>),
            Err(Error::Unsupported)
        );
    }

    per_backend!(raised_signal_reaches_its_handler);
}

// ---- CONFORMANCE 25: the waker -----------------------------------------------------------------

fn count_wake<B: Backend>(ev: &mut L<B>) {
    ev.context_mut().wakes += 1;
}

fn watchdog<B: Backend>(ev: &mut L<B>, io: IoEvent) {
    ev.context_mut().io.push(io);
}

fn waker_wakes_a_loop_blocked_without_timeout<B: Backend>() {
    let mut ev = L::<B>::new(Ctx::default());
    let waker = ev.waker(count_wake::<B>).unwrap();
    // Only if the wake is lost does this pipe end the wait, after 10 s, and fail the test.
    let (dog_r, dog_w) = pipe();
    ev.register(&dog_r, Interest::READ, 7, watchdog::<B>)
        .unwrap();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        std::thread::sleep(MS * 50);
        waker.wake().unwrap();
        if done_rx.recv_timeout(Duration::from_secs(10)).is_err() {
            put(&dog_w);
        }
    });
    let ran = ev.run_once(None).unwrap();
    done_tx.send(()).unwrap();
    t.join().unwrap();
    assert_eq!((ran, ev.context_mut().wakes), (1, 1));
    assert!(
        ev.context_mut().io.is_empty(),
        "woken by the watchdog, not the waker"
    );
    assert!(start.elapsed() >= MS * 50);
}

fn wakes_coalesce_into_one_dispatch<B: Backend>() {
    let mut ev = L::<B>::new(Ctx::default());
    let waker = ev.waker(count_wake::<B>).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..100 {
                    waker.wake().unwrap();
                }
            });
        }
    });
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 0);
    assert_eq!(ev.context_mut().wakes, 1);
    // A second waker (another dup) wakes the same loop; a waker outlives its loop harmlessly.
    let other = ev.waker(count_wake::<B>).unwrap();
    other.wake().unwrap();
    assert_eq!(ev.run_once(Some(Duration::ZERO)).unwrap(), 1);
    drop(ev);
    waker.wake().unwrap();
    other.try_clone().unwrap().wake().unwrap();
}

fn stop_on_wake<B: Backend>(ev: &mut L<B>) {
    ev.context_mut().wakes += 1;
    ev.stop();
}

fn waker_stops_run_from_another_thread<B: Backend>() {
    let mut ev = L::<B>::new(Ctx::default());
    let waker = ev.waker(stop_on_wake::<B>).unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(MS * 20);
        waker.wake().unwrap();
    });
    ev.run().unwrap();
    t.join().unwrap();
    assert_eq!(ev.context_mut().wakes, 1);
}

per_backend!(
    handlers_run_for_the_right_fds_with_the_right_readiness,
    handler_registers_modifies_and_unregisters_during_dispatch,
    handler_unregisters_itself_and_another_with_a_queued_event,
    closed_and_reused_fd_gets_no_stale_event,
    modify_keeps_handler_and_token_and_rearms_oneshot,
    set_handler_replaces_handler_and_token,
    queued_event_goes_to_the_handler_set_during_the_batch,
    queued_event_is_masked_to_the_interest_set_during_the_batch,
    full_table_counts_the_loop_s_own_fds,
    stop_ends_run_and_run_clears_the_flag,
    io_dispatch_makes_no_registration_syscalls,
    timers_fire_in_deadline_order_and_never_early,
    wait_is_cut_short_by_the_next_timer,
    periodic_timer_keeps_its_grid_over_100_periods,
    cancelled_timer_never_fires,
    timer_table_full_is_a_clear_error,
    stale_timer_id_cannot_cancel_a_newer_timer,
    waker_wakes_a_loop_blocked_without_timeout,
    wakes_coalesce_into_one_dispatch,
    waker_stops_run_from_another_thread,
);

/// A loop can move to the thread that runs it; a waker can be shared with any thread.
#[test]
fn loop_is_send_and_waker_is_send_and_sync() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<picosel::DefaultEventLoop<Ctx, 16, 8>>();
    send::<picosel::PollEventLoop<Ctx, 16, 8>>();
    send::<picosel::SelectEventLoop<Ctx, 16, 8>>();
    send::<picosel::Waker>();
    sync::<picosel::Waker>();
}
