//! The selector's pure logic (table, tokens and generations, rollback, masking, stale-event
//! filtering) over a backend that makes no syscalls, against a model. The checks live in
//! `tests/support/fake_selector.rs`, which `tests/model.rs` also runs on stable.
#![no_main]

// Each target uses one entry point of the shared modules.
#[allow(dead_code)]
#[path = "../../tests/support/rules.rs"]
mod rules;
#[allow(dead_code)]
#[path = "../../tests/support/fake_selector.rs"]
mod fake_selector;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fake_selector::run(data));
