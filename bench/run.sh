#!/usr/bin/env bash
# Builds and runs picosel's whole benchmark set and rewrites BENCHMARKS.md at the repository
# root. Run from anywhere: `bench/run.sh`. About 5 to 8 minutes on a 2-CPU machine.
#
#  1. Installs strace and valgrind with apt-get if they are missing (as root or through
#     `sudo -n`; otherwise the syscall or the instruction count is reported as SKIPPED).
#  2. Builds, optimised: the bench programs (bench/, a crate of its own: loadgen, floor_echo,
#     sel_echo, micro, icount, suite) and the root crate's `echo_server` example. If the
#     example does not build, the echo benchmarks run against `sel_echo` only and say so. Also
#     `tests/virtual_sensor.rs` in release, whose week of `periodic_sensor` in virtual time the
#     suite runs for its CPU time (section 8; skipped, and said so, if it does not build).
#  3. Builds the size-optimised, stripped binaries (profile `release-small`) of `echo_server`,
#     the floor, the selector-only server and a std hello-world for x86_64, aarch64 and armv7;
#     a cross target whose Rust std or linker is not installed is reported as SKIPPED.
#  4. Runs `suite`, which starts the servers, drives them with `loadgen` in interleaved rounds,
#     counts instructions with `icount` (as bench/callgrind.sh does), runs the micro-benchmarks
#     and the virtual-time week, and writes BENCHMARKS.md (with the machine, the date and the commands it ran), its charts
#     in bench/charts/, and the summary table of the README's Performance section. The raw
#     output of every command goes to $CARGO_TARGET_DIR/bench-log.txt.
#
# Knobs (environment): BENCH_ROUNDS (default 11), BENCH_SECS (seconds per run, default 0.6),
# CARGO_TARGET_DIR (default target/ in the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$CARGO_TARGET_DIR"
START=$SECONDS
say() { printf '== %s (%ds)\n' "$*" $((SECONDS - START)) >&2; }

# 1. strace for the syscall count, valgrind for the instruction count.
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
for TOOL in strace valgrind; do
  if ! command -v "$TOOL" >/dev/null; then
    say "installing $TOOL"
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "$TOOL"; } >/dev/null 2>&1 ||
      echo "SKIPPED: $TOOL could not be installed; its count is left out" >&2
  fi
done

# 2. The programs.
say "building the bench programs"
cargo build --release --quiet --manifest-path bench/Cargo.toml --bins
BIN=$CARGO_TARGET_DIR/release
ECHO_ARGS=()
say "building examples/echo_server"
if cargo build --release --quiet --example echo_server; then
  ECHO_ARGS=(--echo-server "$CARGO_TARGET_DIR/release/examples/echo_server")
  # The same code with line tables (a target directory of its own, so the timed binary's
  # build is left alone), so the instruction count can say where in the source it goes.
  say "building examples/echo_server with line tables"
  if CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=$CARGO_TARGET_DIR/lines \
      cargo build --release --quiet --example echo_server; then
    ECHO_ARGS+=(--icount-echo-server "$CARGO_TARGET_DIR/lines/release/examples/echo_server")
  fi
else
  echo "NOTE: examples/echo_server does not build at this commit; echo benchmarks use sel_echo only" >&2
fi

say "building tests/virtual_sensor (release)"
SENSOR_ARGS=()
# The test binary's path, from cargo's JSON messages (its name carries a hash).
if SENSOR=$(cargo test --release --quiet --test virtual_sensor --no-run --message-format=json |
    grep -o '"executable":"[^"]*virtual_sensor[^"]*"' | cut -d'"' -f4 | tail -n 1) &&
    [ -n "$SENSOR" ]; then
  SENSOR_ARGS=(--sensor-test "$SENSOR")
else
  echo "NOTE: tests/virtual_sensor.rs does not build; the virtual-time week is left out" >&2
fi

# 3. Binary sizes.
SIZES=$CARGO_TARGET_DIR/bench-sizes.tsv
: >"$SIZES"
INSTALLED=$(rustup target list --installed 2>/dev/null || true)
HOST=$(rustc -vV | sed -n 's/^host: //p')
for T in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  case $T in
    aarch64-unknown-linux-gnu) LINKER=aarch64-linux-gnu-gcc ;;
    armv7-unknown-linux-gnueabihf) LINKER=arm-linux-gnueabihf-gcc ;;
    *) LINKER=cc ;;
  esac
  if [ "$T" != "$HOST" ]; then
    if ! grep -qx "$T" <<<"$INSTALLED"; then
      printf '%s\t(all)\tSKIPPED: `rustup target add %s` not done\n' "$T" "$T" >>"$SIZES"
      continue
    fi
    if ! command -v "$LINKER" >/dev/null; then
      printf '%s\t(all)\tSKIPPED: linker %s not installed\n' "$T" "$LINKER" >>"$SIZES"
      continue
    fi
  fi
  say "size-optimised builds for $T"
  VAR=CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$T")_LINKER
  export "$VAR"="$LINKER"
  if cargo build --quiet --profile release-small --target "$T" --example echo_server 2>/dev/null; then
    F=$CARGO_TARGET_DIR/$T/release-small/examples/echo_server
    printf '%s\techo_server (picosel event loop, std)\t%s\n' "$T" "$(stat -c %s "$F")" >>"$SIZES"
  else
    printf '%s\techo_server\tSKIPPED: does not build\n' "$T" >>"$SIZES"
  fi
  if cargo build --quiet --profile release-small --target "$T" --manifest-path bench/Cargo.toml \
      --bin hello --bin floor_echo --bin sel_echo; then
    D=$CARGO_TARGET_DIR/$T/release-small
    printf '%s\tsel_echo (picosel Selector, std)\t%s\n' "$T" "$(stat -c %s "$D/sel_echo")" >>"$SIZES"
    printf '%s\tfloor_echo (raw rustix epoll, std)\t%s\n' "$T" "$(stat -c %s "$D/floor_echo")" >>"$SIZES"
    printf '%s\thello (std hello-world)\t%s\n' "$T" "$(stat -c %s "$D/hello")" >>"$SIZES"
  else
    printf '%s\tbench binaries\tSKIPPED: do not build\n' "$T" >>"$SIZES"
  fi
done

# 4. Run and write BENCHMARKS.md.
say "running the suite"
"$BIN/suite" --bin "$BIN" "${ECHO_ARGS[@]}" --sizes "$SIZES" --notes bench/NOTES.md \
  "${SENSOR_ARGS[@]}" --rounds "${BENCH_ROUNDS:-11}" --secs "${BENCH_SECS:-0.6}" \
  --out "$ROOT/BENCHMARKS.md" --charts bench/charts --readme "$ROOT/README.md" \
  --log "$CARGO_TARGET_DIR/bench-log.txt"
say "done: BENCHMARKS.md, bench/charts/, README.md's Performance table"
