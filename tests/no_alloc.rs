//! Zero heap allocations: creating selectors and 10,000 register / select / modify /
//! unregister cycles on each backend, the simulated one included, allocate nothing. A counting global allocator counts the
//! allocations made by this thread while armed.

mod support;

use picosel::backend::{Backend, Epoll, Poll, Select};
use picosel::{Interest, Mode, Selector};
use std::time::Duration;
use support::{pipe, socketpair};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{allocations, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn cycles<B: Backend>() {
    let (r, w) = pipe();
    let (a, b) = socketpair();
    let n = allocations(|| {
        let mut sel = Selector::<B, u64, 64>::new();
        for i in 0..10_000u64 {
            sel.register(&r, Interest::READ, i).unwrap();
            sel.register_mode(&a, Interest::READ | Interest::WRITE, Mode::Oneshot, i)
                .unwrap();
            rustix::io::write(&w, b"x").unwrap();
            let mut seen = 0;
            for (key, ready) in sel.select(Some(Duration::ZERO)).unwrap() {
                assert!(!ready.is_empty());
                seen += key.data() + 1;
            }
            assert_eq!(seen, 2 * (i + 1));
            sel.modify(&r, Interest::READ | Interest::PRIORITY, i + 1)
                .unwrap();
            sel.modify(&a, Interest::WRITE, i).unwrap();
            let mut buf = [0u8; 1];
            rustix::io::read(&r, &mut buf).unwrap();
            sel.unregister(&r).unwrap();
            sel.unregister(&a).unwrap();
        }
        let _ = b;
    });
    assert_eq!(n, 0, "{} allocated {n} times", B::NAME);
}

/// The same cycles on the simulated backend, with the readiness and a refusal it injects.
fn sim_cycles() {
    let n = allocations(|| {
        let mut sel = Selector::<picosel::Sim, u64, 64>::new();
        for i in 0..10_000u64 {
            sel.register(3, Interest::READ, i).unwrap();
            sel.register_mode(4, Interest::READ | Interest::WRITE, Mode::Oneshot, i)
                .unwrap();
            sel.sim_mut().fail_next_add(picosel::Errno::MFILE);
            assert!(sel.register(5, Interest::READ, i).is_err());
            sel.sim_mut()
                .set_ready_once(3, picosel::Ready::READ)
                .unwrap();
            sel.sim_mut().set_ready(4, picosel::Ready::WRITE).unwrap();
            assert_eq!(sel.select(None).unwrap().count(), 2);
            sel.modify(4, Interest::WRITE, i).unwrap();
            sel.unregister(3).unwrap();
            sel.unregister(4).unwrap();
        }
    });
    assert_eq!(n, 0, "sim allocated {n} times");
}

/// One test, so no other test thread runs while the allocator is armed.
#[test]
fn no_heap_allocation_on_any_backend() {
    cycles::<Epoll>();
    cycles::<Poll>();
    cycles::<Select>();
    sim_cycles();
    // The counter works: a Vec allocates.
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8]))), 1);
}
