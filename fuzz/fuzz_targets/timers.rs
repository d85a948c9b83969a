//! The timer table against a model. The checks live in `tests/support/timer_model.rs`, which
//! `tests/model.rs` also runs on stable.
#![no_main]

#[path = "../../tests/support/timer_model.rs"]
mod timer_model;

libfuzzer_sys::fuzz_target!(|data: &[u8]| timer_model::run(data));
