#!/usr/bin/env bash
# Runs picosel's pure logic under Miri (undefined behaviour, out-of-bounds, overflow checks):
#
#   bash scripts/miri.sh
#
# What runs: the in-module unit tests of the registration table, the dense poll/select array,
# the interest/readiness flag mapping, timeout rounding, Instant, the timer table and the signal
# numbering; and the fixed-input model checks of the selector core and the event loop's
# dispatch (over a syscall-free backend) and of the timer table from tests/model.rs.
#
# Not under Miri: whatever makes syscalls Miri does not emulate (epoll, poll, select, signalfd,
# sockets; `signal::tests::sigset_round_trips_through_the_c_library` calls libc's sigemptyset),
# and the two 20,000-step random-model unit tests of the registry and the timers, which take
# many minutes interpreted (they run natively in `cargo test`, and the fixed-input checks above
# cover the same code under Miri).
#
# Needs nightly with the miri component; tries to add it, else prints `SKIPPED: miri (<reason>)`
# and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
	echo "SKIPPED: miri ($1)"
	exit 0
}

if ! cargo +nightly --version >/dev/null 2>&1; then
	skip "no nightly toolchain"
fi
if ! cargo +nightly miri --version >/dev/null 2>&1; then
	timeout 600 rustup component add miri rust-src --toolchain nightly >/dev/null 2>&1 ||
		skip "rustup component add miri --toolchain nightly failed"
	cargo +nightly miri --version >/dev/null 2>&1 || skip "miri not usable after install"
fi
if ! timeout 900 cargo +nightly miri setup >/tmp/picosel-miri-setup.log 2>&1; then
	tail -n 20 /tmp/picosel-miri-setup.log >&2 || true
	skip "cargo miri setup failed (it builds a std for Miri from rust-src)"
fi

# A target dir of its own: Miri's artifacts are not reusable by normal builds anyway.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}/miri-run

# Unit tests of the pure modules (filters are substrings of test paths).
cargo +nightly miri test --lib -- \
	interest:: \
	backend::dense:: \
	flag_mapping \
	timeout::tests \
	registry::tests::insert_lookup_remove \
	registry::tests::full_changes_nothing \
	registry::tests::reused_slot_gets_new_generation \
	registry::tests::generations_wrap \
	token:: \
	slots::tests::full_table \
	slots::tests::generations_wrap \
	slots::tests::insert_get \
	slots::tests::links_belong \
	slots::tests::slot_bits \
	batch:: \
	time::tests \
	signal::tests::indexes_cover \
	signal::tests::kill_and_stop \
	timer::tests::stale_id \
	timer::tests::full_and_zero \
	timer::tests::equal_deadlines \
	timer::tests::periodic_stays \
	timer::tests::expire_loop \
	timer::tests::periodic_timer_near \
	timer::tests::generation_wraps \
	timer::tests::counters_at

# The selector core, the event loop and the timer table against their models, on fixed inputs.
cargo +nightly miri test --test model -- fixed_inputs
