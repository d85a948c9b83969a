#!/usr/bin/env bash
# Runs the test suite with AddressSanitizer (which includes LeakSanitizer on x86_64 and
# aarch64 Linux): the library, every test binary and the example binaries they start are built
# instrumented (std itself is not; that would need -Zbuild-std).
#
#   bash scripts/asan.sh            # default tests (about a minute after the build)
#   bash scripts/asan.sh --stress   # and the ignored stress tests (tests/stress_*.rs)
#
# Needs nightly (-Zsanitizer); prints `SKIPPED: asan (<reason>)` and exits 0 without it.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
	echo "SKIPPED: asan ($1)"
	exit 0
}

cargo +nightly --version >/dev/null 2>&1 || skip "no nightly toolchain"
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
case $host in
x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
*) skip "AddressSanitizer is not set up here for $host" ;;
esac

export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
# Instrumented artifacts must not mix with normal ones; --target keeps build scripts and
# proc-macros uninstrumented.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}/asan
cargo +nightly test --target "$host" --tests
if [[ ${1:-} == --stress ]]; then
	cargo +nightly test --release --target "$host" --test stress_echo --test stress_signals --test stress_closed_fds -- --ignored --test-threads=1
fi
