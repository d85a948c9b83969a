#!/usr/bin/env bash
# Raspberry Pi checks from a PC: cross-build picosel for the Pi's targets and run its whole test
# suite and its echo servers under qemu-user. Run from anywhere: `bash scripts/pi-test.sh`.
#
#  1. Installs what is missing: `rustup target add` for aarch64-unknown-linux-gnu,
#     armv7-unknown-linux-gnueabihf, aarch64-unknown-linux-musl and armv7-unknown-linux-musleabihf;
#     Debian's gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf and qemu-user-static (apt-get, as
#     root or through `sudo -n`). What cannot be installed is reported as a `SKIPPED: ...` line
#     and the checks that need it are left out; that alone does not fail the script.
#  2. `cargo test --target T` for aarch64 (64-bit Raspberry Pi OS) and armv7 (32-bit): the
#     library's unit tests, every integration test and the doc tests, all run under qemu-user
#     through the runners in .cargo/config.toml.
#  3. The echo example, built fully static and size-optimised (profile release-small,
#     aarch64-unknown-linux-musl), and the debug glibc build, each served from qemu-aarch64 to a
#     client on the host that checks the echoes byte for byte.
#  4. firmware/: the `#![no_std]`, `#![no_main]` echo daemon on picosel and the bare rustix
#     epoll loop it is compared with; the daemon must strip to at most 16 KiB. Both are served
#     from qemu-aarch64 to the host client.
#  5. Sizes: every binary size it measures goes into two Markdown tables, printed at the end;
#     with `--write-docs` they replace the blocks between the `pi-sizes` and
#     `firmware-sizes` markers in docs/raspberry-pi.md, so its figures are always a measurement.
#
# Any failing build, test or echo check fails the script (non-zero exit).
#
# Build directory: $PI_TARGET_DIR, default `target/pi` in the repository (not the usual
# target/, because step 2 puts small wrapper scripts in place of the example binaries there;
# see `wrap_examples`). An ambient CARGO_TARGET_DIR is ignored for the same reason.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WRITE_DOCS=0
[ "${1:-}" = "--write-docs" ] && WRITE_DOCS=1
PI_TARGET_DIR=${PI_TARGET_DIR:-$ROOT/target/pi}
export CARGO_TARGET_DIR=$PI_TARGET_DIR
mkdir -p "$PI_TARGET_DIR"

START=$SECONDS
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n=== %s  [%ds]\n' "$*" "$((SECONDS - START))"; }
skipped() { printf 'SKIPPED: %s\n' "$*"; }
fail() {
  printf 'FAILED: %s\n' "$*" >&2
  exit 1
}
# `timed LABEL CMD...`: runs CMD and prints how long it took.
timed() {
  local label=$1 t0=$SECONDS rc=0
  shift
  "$@" || rc=$?
  printf -- '--- %s: %ds\n' "$label" "$((SECONDS - t0))"
  return "$rc"
}

GNU_TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
MUSL_TARGETS=(aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf)

# The qemu-user command line for a target, as in .cargo/config.toml.
runner() {
  case $1 in
    aarch64-unknown-linux-gnu) echo "qemu-aarch64-static -L /usr/aarch64-linux-gnu" ;;
    armv7-unknown-linux-gnueabihf) echo "qemu-arm-static -L /usr/arm-linux-gnueabihf" ;;
    aarch64-unknown-linux-musl) echo "qemu-aarch64-static" ;;
    armv7-unknown-linux-musleabihf) echo "qemu-arm-static" ;;
  esac
}
# The tools a target needs on the PATH: its linker and its emulator.
tools() {
  case $1 in
    aarch64-*) echo "aarch64-linux-gnu-gcc qemu-aarch64-static" ;;
    armv7-*) echo "arm-linux-gnueabihf-gcc qemu-arm-static" ;;
  esac
}
have_tools() {
  local t
  for t in $(tools "$1"); do
    command -v "$t" >/dev/null || return 1
  done
}
have_std() { rustc --print sysroot >/dev/null && [ -d "$(rustc --print sysroot)/lib/rustlib/$1/lib" ]; }

# ---------------------------------------------------------------------------------------------
step "tools"
cargo --version
rustc --version

missing_pkgs=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing_pkgs+=(gcc-aarch64-linux-gnu)
command -v arm-linux-gnueabihf-gcc >/dev/null || missing_pkgs+=(gcc-arm-linux-gnueabihf)
if ! command -v qemu-aarch64-static >/dev/null || ! command -v qemu-arm-static >/dev/null; then
  missing_pkgs+=(qemu-user-static)
fi
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
  if ! command -v apt-get >/dev/null; then
    skipped "installing ${missing_pkgs[*]} (no apt-get on this system)"
  elif [ ${#sudo[@]} -gt 0 ] && ! sudo -n true 2>/dev/null; then
    skipped "installing ${missing_pkgs[*]} (not root and no password-less sudo)"
  else
    echo "installing ${missing_pkgs[*]}"
    if ! { "${sudo[@]}" apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing_pkgs[@]}" >/dev/null; }; then
      skipped "installing ${missing_pkgs[*]} (apt-get failed; see above)"
    fi
  fi
fi

for t in "${GNU_TARGETS[@]}" "${MUSL_TARGETS[@]}"; do
  if ! have_std "$t"; then
    if ! command -v rustup >/dev/null; then
      skipped "$t (no rustup to add its standard library)"
    elif ! rustup target add "$t" >"$WORK/rustup.log" 2>&1; then
      skipped "$t ($(grep -m1 '^error' "$WORK/rustup.log" || echo 'rustup target add failed'))"
    fi
  fi
done

usable() { have_std "$1" && have_tools "$1"; }
for t in "${GNU_TARGETS[@]}" "${MUSL_TARGETS[@]}"; do
  if usable "$t"; then
    echo "ready: $t ($(runner "$t"))"
  elif have_std "$t"; then
    skipped "$t (missing tools: $(tools "$t"))"
  fi
done

# ---------------------------------------------------------------------------------------------
# Example binaries under qemu-user.
#
# The example tests (tests/example_*.rs) start the example binaries with std's Command. Under
# qemu-user the test binary is emulated, but its execve(2) of an ARM example goes to the host
# kernel, which cannot run it without a binfmt_misc entry for qemu (absent here and in most
# containers): execve fails with ENOEXEC in the child, and since qemu emulates glibc's
# posix_spawn (clone with CLONE_VFORK) as a fork, the error cannot reach the parent, which sees
# a child exiting with status 127 and no output. Replacing each uplifted example binary with a
# host shell script that execs the emulator on the real binary (cargo keeps it under its hashed
# name) is what binfmt_misc would do. The script `exec`s, so the test's child pid is qemu's,
# and qemu-user delivers signals sent to it to the emulated example. Cargo uplifts (re-links) the
# example binaries whenever they are part of a build, even when nothing is recompiled, so the
# tests are then run with `cargo test --lib --tests` and `--doc`, which leave examples alone.
wrap_examples() {
  local target=$1 dir="$PI_TARGET_DIR/$1/debug/examples" f real
  [ -d "$dir" ] || return 0
  for src in examples/*.rs; do
    f="$dir/$(basename "$src" .rs)"
    [ -f "$f" ] || continue
    # Only a freshly uplifted ELF binary; a wrapper already in place stays. Cargo keeps the
    # binary itself under its hashed name, a hard link to the uplifted file.
    [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
    real=$(find "$dir" -maxdepth 1 -samefile "$f" ! -path "$f" -print -quit)
    if [ -n "$real" ]; then
      rm -f "$f"
    else
      # A file system without hard links: cargo copied it instead.
      real="$f.target-binary"
      mv -f "$f" "$real"
    fi
    printf '#!/bin/sh\n# Runs the %s example under qemu-user (see scripts/pi-test.sh).\nexec %s %s "$@"\n' \
      "$target" "$(runner "$target")" "$real" >"$f"
    chmod +x "$f"
  done
}

ran_suite=()
for t in "${GNU_TARGETS[@]}"; do
  usable "$t" || continue
  step "test suite on $t under $(runner "$t" | cut -d' ' -f1)"
  timed "build $t" cargo test --target "$t" --no-run --quiet || fail "building the tests for $t"
  wrap_examples "$t"
  # `--lib --tests` and `--doc`, not a plain `cargo test`: that would build the examples again
  # and, even with nothing to rebuild, put the ARM binaries back over the wrappers.
  t0=$SECONDS
  rc=0
  # --show-output: a test that cannot run here says so on stderr with a line starting
  # `skipped:` or `SKIPPED:` and returns; those lines are shown below as SKIPPED, with the
  # test's name.
  cargo test --target "$t" --lib --tests --no-fail-fast -- --show-output >"$WORK/test-$t.log" 2>&1 || rc=$?
  cargo test --target "$t" --doc >>"$WORK/test-$t.log" 2>&1 || rc=$?
  grep -E '^(     Running|   Doc-tests|test result|test .* FAILED)' "$WORK/test-$t.log" || true
  awk -v t="$t" '/^     Running / { file = $2 } /^---- .* stdout ----$/ { name = $2 }
    /^(skipped|SKIPPED): / { sub(/^(skipped|SKIPPED): /, ""); printf "SKIPPED: %s %s on %s (%s)\n", file, name, t, $0 }' \
    "$WORK/test-$t.log"
  printf -- '--- test %s: %ds\n' "$t" "$((SECONDS - t0))"
  if [ "$rc" -ne 0 ]; then
    sed -n '/^failures:/,/^test result/p' "$WORK/test-$t.log" | head -300 >&2
    grep -E '^error' "$WORK/test-$t.log" >&2 || true
    fail "cargo test --target $t (exit $rc)"
  fi
  timed "no_std build $t" cargo build --lib --no-default-features --target "$t" --quiet ||
    fail "no_std build for $t"
  ran_suite+=("$t")
done

# ---------------------------------------------------------------------------------------------
# The host client: for each of three connections opened at once, send a 128 KiB random
# payload from a background writer while reading the echo back, and compare byte for byte.
# Bash's /dev/tcp needs nothing installed. Every read is bounded by `timeout`.
head -c 131072 /dev/urandom >"$WORK/payload"
check_echo() {
  local label=$1 port=$2 size fds=() fd i
  size=$(wc -c <"$WORK/payload")
  for i in 1 2 3; do
    exec {fd}<>"/dev/tcp/127.0.0.1/$port" || fail "$label: cannot connect to 127.0.0.1:$port"
    fds+=("$fd")
  done
  for i in 0 1 2; do
    cat "$WORK/payload" >&"${fds[$i]}" &
    PIDS+=($!)
  done
  for i in 0 1 2; do
    timeout 60 head -c "$size" <&"${fds[$i]}" >"$WORK/got.$i" || true
  done
  for fd in "${fds[@]}"; do
    exec {fd}>&-
  done
  for i in 0 1 2; do
    cmp -s "$WORK/payload" "$WORK/got.$i" ||
      fail "$label: connection $i echoed $(wc -c <"$WORK/got.$i") of $size bytes, or other bytes"
  done
  # A short line as well, as a person would type it.
  exec {fd}<>"/dev/tcp/127.0.0.1/$port"
  printf 'hello from the host\n' >&"$fd"
  local line=''
  read -r -t 30 line <&"$fd" || true
  exec {fd}>&-
  [ "$line" = 'hello from the host' ] || fail "$label: echoed line was '$line'"
  echo "ok: $label echoed 3 x $size bytes at once and a line"
}

# `serve LABEL CMD...`: starts a server that prints `listening on ADDR`, checks its echoes,
# then stops it.
serve() {
  local label=$1 out="$WORK/server.out" port='' i pid
  shift
  : >"$out"
  "$@" >"$out" 2>"$WORK/server.err" &
  pid=$!
  PIDS+=("$pid")
  for i in $(seq 1 200); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\).*$/\1/p' "$out" | head -1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || fail "$label: no 'listening on' line; stdout: $(cat "$out"); stderr: $(cat "$WORK/server.err")"
  check_echo "$label" "$port"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

size_of() { stat -c %s "$1"; }
# The size of the .text section of an ELF file of any architecture (readelf reads them all).
text_of() {
  local hex
  hex=$(readelf -SW "$1" | sed -n 's/.* \.text  *PROGBITS  *[0-9a-f]*  *[0-9a-f]*  *\([0-9a-f]*\) .*/\1/p' | head -n 1)
  printf '%d' "0x${hex:-0}"
}
# 12345 -> 12,345, as the README writes numbers.
commas() { printf '%s' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
ECHO_SIZES=$WORK/echo-sizes.md
FW_SIZES=$WORK/firmware-sizes.md
: >"$ECHO_SIZES"
: >"$FW_SIZES"

# ---------------------------------------------------------------------------------------------
echo_ok=0
if [ -f examples/echo_server.rs ]; then
  if usable aarch64-unknown-linux-gnu; then
    step "echo example (debug, glibc) under qemu-aarch64"
    # Built by the test suite above, and then possibly replaced by its qemu wrapper.
    bin="$PI_TARGET_DIR/aarch64-unknown-linux-gnu/debug/examples/echo_server"
    [ -x "$bin" ] || timed "build" cargo build --target aarch64-unknown-linux-gnu --example echo_server --quiet ||
      fail "building the echo example for aarch64-unknown-linux-gnu"
    cmd=("$bin")
    if [ "$(head -c 4 "$bin" | od -An -c | tr -d ' ')" = '177ELF' ]; then
      read -ra cmd <<<"$(runner aarch64-unknown-linux-gnu) $bin"
    fi
    serve "echo_server (aarch64 glibc, debug)" "${cmd[@]}" --quiet 127.0.0.1:0
    echo_ok=1
  fi
  for t in "${MUSL_TARGETS[@]}"; do
    usable "$t" || continue
    step "echo example: static, size-optimised ($t, profile release-small)"
    timed "build" cargo build --target "$t" --profile release-small --example echo_server --quiet ||
      fail "building the static echo example for $t"
    bin="$PI_TARGET_DIR/$t/release-small/examples/echo_server"
    file "$bin" 2>/dev/null || true
    echo "size: $(size_of "$bin") bytes (stripped) $t echo_server"
    echo "| \`$t\` | static (static-pie) | $(commas "$(size_of "$bin")") |" >>"$ECHO_SIZES"
    # shellcheck disable=SC2046
    serve "echo_server ($t static)" $(runner "$t") "$bin" --quiet 127.0.0.1:0
    echo_ok=1
  done
  [ "$echo_ok" = 1 ] || skipped "echo example under qemu (no usable aarch64 or musl target)"
  for t in "${GNU_TARGETS[@]}"; do
    usable "$t" || continue
    step "echo example: size-optimised, glibc ($t, profile release-small)"
    timed "build" cargo build --target "$t" --profile release-small --example echo_server --quiet ||
      fail "building the size-optimised echo example for $t"
    bin="$PI_TARGET_DIR/$t/release-small/examples/echo_server"
    echo "size: $(size_of "$bin") bytes (stripped) $t echo_server"
    echo "| \`$t\` | glibc, dynamic | $(commas "$(size_of "$bin")") |" >>"$ECHO_SIZES"
  done
else
  skipped "echo example (examples/echo_server.rs is not in the tree)"
fi

# ---------------------------------------------------------------------------------------------
FW_LIMIT=16384
for t in aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf; do
  if ! usable "$t"; then
    skipped "firmware echo daemons on $t (target or tools not installed)"
    continue
  fi
  step "firmware: #![no_std] echo daemons, static ($t)"
  # Its own target directory: firmware/.cargo/config.toml gives the musl targets other
  # rustflags than the echo example's build above, and sharing would rebuild both every run.
  (cd firmware && CARGO_TARGET_DIR="$PI_TARGET_DIR/firmware" timed "build" cargo build --release --target "$t" --quiet) ||
    fail "building firmware/ for $t"
  dir="$PI_TARGET_DIR/firmware/$t/release"
  for b in echo-daemon bare-echo; do
    echo "size: $(size_of "$dir/$b") bytes (stripped, static) $t $b"
  done
  d_text=$(text_of "$dir/echo-daemon")
  b_text=$(text_of "$dir/bare-echo")
  {
    echo "| \`$t\` | \`echo-daemon\` (picosel) | $(commas "$(size_of "$dir/echo-daemon")") | $(commas "$d_text") |"
    echo "| \`$t\` | \`bare-echo\` (rustix epoll only) | $(commas "$(size_of "$dir/bare-echo")") | $(commas "$b_text") |"
    echo "| \`$t\` | picosel's share | $(commas $(($(size_of "$dir/echo-daemon") - $(size_of "$dir/bare-echo")))) | $(commas $((d_text - b_text))) |"
  } >>"$FW_SIZES"
  [ "$(size_of "$dir/echo-daemon")" -le "$FW_LIMIT" ] ||
    fail "firmware echo-daemon on $t is $(size_of "$dir/echo-daemon") bytes, over $FW_LIMIT"
  # shellcheck disable=SC2046
  serve "firmware echo-daemon ($t)" $(runner "$t") "$dir/echo-daemon" 127.0.0.1:0
  # shellcheck disable=SC2046
  serve "firmware bare-echo ($t)" $(runner "$t") "$dir/bare-echo" 127.0.0.1:0
done

# ---------------------------------------------------------------------------------------------
step "sizes"
RUSTC=$(rustc --version)
{
  echo "<!-- pi-sizes: begin (written by \`bash scripts/pi-test.sh --write-docs\`) -->"
  echo "Stripped sizes of the echo example (profile \`release-small\`), measured by \`scripts/pi-test.sh\` with $RUSTC:"
  echo
  echo "| Target | Linking | Bytes |"
  echo "|---|---|---|"
  cat "$ECHO_SIZES"
  echo "<!-- pi-sizes: end -->"
} >"$WORK/pi-sizes.block"
{
  echo "<!-- firmware-sizes: begin (written by \`bash scripts/pi-test.sh --write-docs\`) -->"
  echo "Static, stripped, measured by \`scripts/pi-test.sh\` with $RUSTC:"
  echo
  echo "| Target | Daemon | Bytes | \`.text\` |"
  echo "|---|---|---|---|"
  cat "$FW_SIZES"
  echo "<!-- firmware-sizes: end -->"
} >"$WORK/firmware-sizes.block"
cat "$WORK/pi-sizes.block" "$WORK/firmware-sizes.block"
if [ "$WRITE_DOCS" = 1 ]; then
  if [ -s "$ECHO_SIZES" ] && [ -s "$FW_SIZES" ]; then
    python3 - "$ROOT/docs/raspberry-pi.md" "$WORK/pi-sizes.block" "$WORK/firmware-sizes.block" <<'PY'
import re, sys
readme, *blocks = sys.argv[1:]
text = open(readme).read()
for path in blocks:
    block = open(path).read().rstrip("\n")
    name = re.match(r"<!-- ([a-z-]+): begin", block).group(1)
    pattern = re.compile(r"<!-- %s: begin.*?<!-- %s: end -->" % (name, name), re.S)
    if not pattern.search(text):
        sys.exit("docs/raspberry-pi.md has no %s markers" % name)
    text = pattern.sub(lambda _: block, text, count=1)
open(readme, "w").write(text)
PY
    echo "docs/raspberry-pi.md: size tables written"
  else
    skipped "size tables not written (a target could not be measured here)"
  fi
fi

# ---------------------------------------------------------------------------------------------
step "done"
if [ ${#ran_suite[@]} -eq 0 ]; then
  skipped "test suite under qemu (no cross target could be set up)"
else
  echo "test suite passed under qemu-user on: ${ran_suite[*]}"
fi
echo "pi-test.sh took $((SECONDS - START)) s"
