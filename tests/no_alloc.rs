//! Zero heap allocations: creating selectors and 10,000 register / select / modify /
//! unregister cycles on each backend allocate nothing. A counting global allocator counts the
//! allocations made by this thread while armed.

mod common;

use common::{pipe, socketpair};
use picosel::backend::{Backend, Epoll, Poll, Select};
use picosel::{Interest, Mode, Selector};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    if ARMED.with(|a| a.get()) {
        COUNT.with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: forwards to the system allocator unchanged; counting touches only const-initialised
// thread-locals, which never allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns how many allocations this thread made in it.
fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(|c| c.get())
}

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

/// One test, so no other test thread runs while the allocator is armed.
#[test]
fn no_heap_allocation_on_any_backend() {
    cycles::<Epoll>();
    cycles::<Poll>();
    cycles::<Select>();
    // The counter works: a Vec allocates.
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8]))), 1);
}
