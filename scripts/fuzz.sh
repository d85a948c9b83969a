#!/usr/bin/env bash
# Fuzzes picosel's pure logic with libFuzzer (cargo-fuzz) for a bounded time.
#
#   bash scripts/fuzz.sh [SECONDS]     # total budget, split between the targets (default 60)
#
# Targets (fuzz/fuzz_targets/): `selector` — the registration table, tokens, rollback, masking
# and stale-event filtering over a syscall-free backend; `event_loop` — the event loop's dispatch
# over the same backend, with handlers that change registrations, stop and nest waits;
# `timers` — the timer table. Each checks against a model (tests/support/*.rs, also run on
# stable by tests/model.rs).
#
# Needs a nightly toolchain (libFuzzer's instrumentation and AddressSanitizer); installs
# cargo-fuzz when it is missing. Prints `SKIPPED: fuzz (<reason>)` and exits 0 when either
# cannot be had. Exits 1 when a target finds a failing input: the input is saved under
# fuzz/artifacts/<target>/ and the command to replay it is printed.
#
# Longer runs: `bash scripts/fuzz.sh 3600`, or one target without limit:
# `cd fuzz && cargo +nightly fuzz run timers`. The corpus grows in fuzz/corpus/<target>/
# (not committed) and is reused by the next run.
set -euo pipefail

budget=${1:-60}
case $budget in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
targets=(selector event_loop timers)

skip() {
	echo "SKIPPED: fuzz ($1)"
	exit 0
}

if ! cargo +nightly --version >/dev/null 2>&1; then
	skip "no nightly toolchain: rustup toolchain install nightly"
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "fuzz: installing cargo-fuzz (a few minutes)"
	if ! timeout 1200 cargo install cargo-fuzz --locked >/tmp/picosel-cargo-fuzz-install.log 2>&1; then
		tail -n 20 /tmp/picosel-cargo-fuzz-install.log >&2 || true
		skip "cargo install cargo-fuzz failed, see above"
	fi
fi

cd "$root/fuzz"
if ! cargo +nightly fuzz build >/tmp/picosel-fuzz-build.log 2>&1; then
	tail -n 30 /tmp/picosel-fuzz-build.log >&2 || true
	# The harness sources also compile on stable in tests/model.rs, so a failure here is the
	# nightly toolchain's or libFuzzer's, not the checks'.
	skip "cargo +nightly fuzz build failed on this toolchain, see above"
fi

per=$((budget / ${#targets[@]}))
((per >= 1)) || per=1
status=0
for t in "${targets[@]}"; do
	log=$(mktemp)
	mkdir -p "corpus/$t"
	# -rss_limit_mb: the targets allocate little; a leak or runaway growth fails the run.
	if cargo +nightly fuzz run "$t" "corpus/$t" -- \
		-max_total_time="$per" -max_len=4096 -rss_limit_mb=1024 -print_final_stats=1 \
		>"$log" 2>&1; then
		runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || echo '?')
		echo "fuzz: $t: ${per} s, ${runs} inputs, no failure (corpus: $(ls "corpus/$t" | wc -l) inputs)"
	else
		tail -n 60 "$log"
		echo "fuzz: $t: FAILED — replay with: cd fuzz && cargo +nightly fuzz run $t <artifact above>"
		status=1
	fi
	rm -f "$log"
done
exit $status
