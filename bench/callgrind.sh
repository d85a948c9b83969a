#!/usr/bin/env bash
# Counts the user-space instructions of one 64-byte echo round trip, exactly, in the three echo
# servers: `floor_echo` (raw rustix epoll), `sel_echo` (the same server on picosel's Selector)
# and the root crate's `echo_server` example (the event loop). Run from anywhere:
#
#   bench/callgrind.sh [--gate N] [--gate-loop M] [--runs R] [--k1 K1] [--k2 K2] [--where W]
#                      [--annotate DIR]
#
# Each server runs under `valgrind --tool=callgrind`, once driven through K1 round trips on one
# connection and once through K2 (`bench/src/bin/icount.rs`); (Ir(K2) - Ir(K1)) / (K2 - K1)
# cancels start-up, the connection's set-up and shutdown. Only the server's process is counted.
# `--gate N` exits 1 when sel_echo costs more than floor_echo + N per round trip, `--gate-loop M`
# when echo_server costs more than floor_echo + M (CI uses `--gate 30 --gate-loop 80`).
#
# Installs valgrind with apt-get when it is missing (as root or through `sudo -n`); when that
# is not possible it prints `SKIPPED: <reason>` and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if ! command -v valgrind >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq valgrind; } >/dev/null 2>&1 ||
    ! command -v valgrind >/dev/null; then
    echo "SKIPPED: valgrind is not installed and could not be installed with apt-get"
    exit 0
  fi
fi

cargo build --release --quiet --manifest-path bench/Cargo.toml --bin floor_echo --bin sel_echo --bin icount
cargo build --release --quiet --example echo_server
exec "$CARGO_TARGET_DIR/release/icount" --bin "$CARGO_TARGET_DIR/release" \
  --echo-server "$CARGO_TARGET_DIR/release/examples/echo_server" "$@"
