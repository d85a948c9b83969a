//! The README's promises under legal but unusual use, through the public API: `stop` then
//! `run_once`, nested waits, panicking handlers, batches dropped early, the epoll rebuild.
//! Each check is written once, generic over the backend, and run per backend it applies to.

mod support;

use picosel::backend::Backend;
use picosel::{Error, EventLoop, Interest, IoEvent, Mode, RawFd, Selector, TimerEvent};
use rustix::fd::{AsRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};
use support::pipe;

const MS: Duration = Duration::from_millis(1);

fn write(fd: &OwnedFd, data: &[u8]) {
    assert_eq!(rustix::io::write(fd, data).expect("write"), data.len());
}

/// Edge-triggered where the backend can, oneshot elsewhere: either way the kernel (or the
/// emulation) reports the event once, so a lost event never comes back.
fn once_mode<B: Backend>() -> Mode {
    if B::NAME == "epoll" {
        Mode::Edge
    } else {
        Mode::Oneshot
    }
}

#[derive(Default)]
struct Ctx {
    /// fds whose handler ran, in order.
    ran: Vec<RawFd>,
    /// What a nested `run_once` from a handler returned.
    nested: Vec<Result<usize, Error>>,
    ticks: u32,
}

type Loop<B> = EventLoop<B, Ctx, 8, 2>;

// ---------------------------------------------------------------------------------------------
// 1. `stop` is not sticky.

fn tick_and_stop<B: Backend>(ev: &mut Loop<B>, _t: TimerEvent) {
    ev.context_mut().ticks += 1;
    ev.stop();
}

/// After `stop()` (here from a periodic timer's handler, which stops every `run`), later
/// `run_once` calls still fire timers and still wait for them: no busy loop.
fn stop_then_run_once_keeps_timers_firing<B: Backend>() {
    let mut ev = Loop::<B>::new(Ctx::default());
    ev.add_periodic(MS, 0, tick_and_stop::<B>).unwrap();
    ev.run().unwrap();
    assert!(ev.is_stopped());
    assert_eq!(ev.context_mut().ticks, 1);

    // Each turn without a timeout waits for the next tick and fires it: a sticky stop made
    // every turn return at once with nothing run (a spin), and no timer ever fired again.
    for turn in 0..20 {
        let ran = ev.run_once(None).unwrap();
        assert!(ran >= 1, "turn {turn} after stop ran no handler");
    }
    assert!(ev.context_mut().ticks >= 21);
}

// ---------------------------------------------------------------------------------------------
// 4. Nested waits are refused; the rest of a batch is never lost.

fn nest_then_record<B: Backend>(ev: &mut Loop<B>, io: IoEvent) {
    let nested = ev.run_once(Some(Duration::ZERO));
    ev.context_mut().nested.push(nested);
    ev.context_mut().ran.push(io.fd);
}

/// A handler's `run_once` is refused with `InDispatch` and changes nothing: every event of the
/// outer batch (edge-triggered or oneshot, so reported once) still reaches its handler.
fn nested_run_once_is_refused_and_the_batch_goes_on<B: Backend>() {
    let (r1, w1) = pipe();
    let (r2, w2) = pipe();
    let mut ev = Loop::<B>::new(Ctx::default());
    for r in [&r1, &r2] {
        ev.register_mode(
            r,
            Interest::READ,
            once_mode::<B>(),
            0,
            nest_then_record::<B>,
        )
        .unwrap();
    }
    write(&w1, b"a");
    write(&w2, b"b");
    assert_eq!(ev.run_once(Some(100 * MS)), Ok(2));
    let mut ran = ev.context_mut().ran.clone();
    ran.sort();
    let mut want = vec![r1.as_raw_fd(), r2.as_raw_fd()];
    want.sort();
    assert_eq!(ran, want, "both events of the batch dispatched");
    assert_eq!(ev.context_mut().nested, [Err(Error::InDispatch); 2]);
    // From outside a handler, run_once works as before.
    assert_eq!(ev.run_once(Some(Duration::ZERO)), Ok(0));
}

fn panic_on_first<B: Backend>(ev: &mut Loop<B>, io: IoEvent) {
    ev.context_mut().ran.push(io.fd);
    if ev.context_mut().ran.len() == 1 {
        panic!("handler failure (deliberate)");
    }
}

/// A handler that panics, caught by the caller with `catch_unwind`: the next turn hands out
/// the rest of the batch before it waits, so the other edge-triggered / oneshot event arrives.
fn panicking_handler_leaves_the_rest_to_the_next_turn<B: Backend>() {
    let (r1, w1) = pipe();
    let (r2, w2) = pipe();
    let mut ev = Loop::<B>::new(Ctx::default());
    for r in [&r1, &r2] {
        ev.register_mode(r, Interest::READ, once_mode::<B>(), 0, panic_on_first::<B>)
            .unwrap();
    }
    write(&w1, b"a");
    write(&w2, b"b");
    let caught = catch_unwind(AssertUnwindSafe(|| ev.run_once(Some(100 * MS))));
    assert!(caught.is_err(), "the handler's panic reaches the caller");
    assert_eq!(ev.context_mut().ran.len(), 1);
    // The loop goes on: the rest of the batch first, without blocking.
    let start = Instant::now();
    assert_eq!(ev.run_once(Some(Duration::from_secs(5))), Ok(1));
    assert!(start.elapsed() < Duration::from_secs(1), "the rest waited");
    let mut ran = ev.context_mut().ran.clone();
    ran.sort();
    let mut want = vec![r1.as_raw_fd(), r2.as_raw_fd()];
    want.sort();
    assert_eq!(ran, want);
    // Each event once.
    assert_eq!(ev.run_once(Some(Duration::ZERO)), Ok(0));
}

/// An `Events` dropped before its end: the next `select` hands out the rest first, and a wait
/// on the selector it lends out is refused while it lives.
fn dropped_events_hand_out_the_rest_first<B: Backend>() {
    let (r1, w1) = pipe();
    let (r2, w2) = pipe();
    let mut sel = Selector::<B, u8, 4>::new();
    sel.register_mode(&r1, Interest::READ, once_mode::<B>(), 1)
        .unwrap();
    sel.register_mode(&r2, Interest::READ, once_mode::<B>(), 2)
        .unwrap();
    write(&w1, b"a");
    write(&w2, b"b");
    let mut events = sel.select(Some(100 * MS)).unwrap();
    let (first, _) = events.next().expect("a first pair");
    assert_eq!(
        events.selector().select(Some(Duration::ZERO)).err(),
        Some(Error::InDispatch)
    );
    drop(events);
    let rest: Vec<u8> = sel
        .select(Some(Duration::from_secs(5)))
        .unwrap()
        .map(|(k, _)| k.data())
        .collect();
    assert_eq!(rest.len(), 1, "the rest of the batch");
    assert_ne!(rest[0], first.data());
    assert_eq!(sel.select(Some(Duration::ZERO)).unwrap().count(), 0);
}

// ---------------------------------------------------------------------------------------------
// 5. The epoll rebuild does not revive a closed registration.

/// A rebuild (made due by an orphaned duplicate) must not re-add, by number, a registration
/// whose fd was closed: the number now names another file, whose readiness would reach the
/// old registration.
#[test]
fn epoll_rebuild_does_not_revive_a_closed_registration() {
    let mut sel = Selector::<picosel::Epoll, &str, 8>::new();
    // An orphan: a registered fd closed while a duplicate keeps its file open. Its unregister
    // cannot remove it from epoll's interest list, so its next report makes a rebuild due.
    let (orphan, orphan_w) = pipe();
    let dup = rustix::io::dup(&orphan).unwrap();
    sel.register(&orphan, Interest::READ, "orphan").unwrap();
    let orphan_fd = orphan.as_raw_fd();
    drop(orphan);
    sel.unregister(orphan_fd).unwrap();
    write(&orphan_w, b"x");
    assert_eq!(sel.select(Some(Duration::ZERO)).unwrap().count(), 0);

    // A registration whose fd is closed, its number then taken by an unregistered file.
    let (victim, _victim_w) = pipe();
    sel.register(&victim, Interest::READ, "victim").unwrap();
    let (other, other_w) = pipe();
    let mut victim = victim;
    rustix::io::dup2(&other, &mut victim).unwrap(); // closes the victim's file
    write(&other_w, b"y");

    // This wait rebuilds first; the victim's number now reads as `other`.
    let got: Vec<&str> = sel
        .select(Some(20 * MS))
        .unwrap()
        .map(|(k, _)| k.data())
        .collect();
    assert!(got.is_empty(), "a closed registration revived: {got:?}");
    sel.unregister(&victim).unwrap();
    drop((dup, other));
}

per_backend!(
    stop_then_run_once_keeps_timers_firing,
    nested_run_once_is_refused_and_the_batch_goes_on,
    panicking_handler_leaves_the_rest_to_the_next_turn,
    dropped_events_hand_out_the_rest_first,
);
