#!/usr/bin/env bash
# Raspberry Pi and embedded-board checks from a PC: cross-build picosel for the boards' targets
# and run its whole test suite and its echo servers under qemu-user. Run from anywhere:
# `bash scripts/pi-test.sh`.
#
#  1. Installs what is missing: `rustup target add` for aarch64-unknown-linux-gnu,
#     armv7-unknown-linux-gnueabihf, riscv64gc-unknown-linux-gnu and aarch64-unknown-linux-musl; the nightly $NIGHTLY with rust-src (for -Zbuild-std);
#     Debian's gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf, gcc-riscv64-linux-gnu,
#     gcc-mipsel-linux-gnu, gcc-arm-linux-gnueabi, libc6-dev-armel-cross, libc6-dev-mipsel-cross
#     and qemu-user-static (apt-get, as root or through `sudo -n`). What
#     cannot be installed is reported as a `SKIPPED: ...` line and the checks that need it are
#     left out; that alone does not fail the script.
#  2. `cargo test --target T` for aarch64 (64-bit Raspberry Pi OS), armv7 (32-bit) and riscv64
#     (VisionFive 2, Milk-V): the library's unit tests, every integration test and the doc
#     tests, all run under qemu-user through the runners in .cargo/config.toml (riscv64's
#     linker and runner are set below, as CARGO_TARGET_* variables); and for ARMv6 (Pi Zero,
#     Pi 1) as arm-unknown-linux-gnueabi, std built from source by the nightly against Debian's
#     armel glibc, under `qemu-arm -cpu arm1176`; the same way for little-endian MIPS32 routers
#     as mipsel-unknown-linux-gnu, against Debian's mipsel glibc, under qemu-mipsel; and for
#     armv7 static and MIPS32 static (OpenWrt's C library), as armv7-unknown-linux-musleabihf
#     and mipsel-unknown-linux-musl with std built from source against Debian's musl-dev
#     (scripts/musl-sysroot.sh). Where no toolchain here can run the suite (ARMv6 hard-float)
#     a SKIPPED line says exactly why.
#  3. The echo example, built fully static and size-optimised (profile release-small,
#     aarch64-unknown-linux-musl), and the debug glibc build, each served from qemu-aarch64 to a
#     client on the host that checks the echoes byte for byte.
#  4. firmware/: the `#![no_std]`, `#![no_main]` echo daemon on picosel and the bare rustix
#     epoll loop it is compared with, with their own `_start` and no C library, for x86_64 (the
#     host, stable Rust), aarch64, armv7, ARMv6 (Pi Zero / Pi 1), riscv64 and mipsel (nightly
#     $NIGHTLY, -Zbuild-std=core); the daemon must strip to at most 16 KiB. Each is served to
#     the host client: natively on x86_64, else from qemu-user, the ARMv6 build from
#     `qemu-arm -cpu arm1176` (the Pi Zero's CPU, which refuses any ARMv7 instruction).
#  5. Sizes and results: every binary size it measures and every suite result goes into
#     Markdown tables, printed at the end; with `--write-docs` they replace the blocks between
#     the `pi-sizes`, `firmware-sizes` and `suite-results` markers in docs/raspberry-pi.md (and
#     the last two in README.md), so their figures are always a measurement.
#
# Any failing build, test or echo check fails the script (non-zero exit).
#
# PI_CLEAN=1 (CI sets it) removes each target's build directory once its suite has run: a
# cross-built suite takes hundreds of megabytes, and CI machines have little disk to spare.
#
# $PI_SUITES, when set, names the targets whose suite is run (space-separated; default: all of
# GNU_TARGETS below, ARMv6, mipsel, armv7 static and mipsel static); `PI_SUITES=none` runs no suite, for
# working on the other steps.
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

# The one nightly used for -Zbuild-std (targets whose standard library rustup cannot
# download, and the no-libc firmware, whose `core` must carry compiler-builtins' memcpy and
# memset). Pinned by date: a newer nightly is a deliberate change of this line.
NIGHTLY=nightly-2026-05-20

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

GNU_TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf riscv64gc-unknown-linux-gnu)
# Static targets whose rust-std rustup can download (armv7 musl's it cannot here: its suite and
# echo example build std from source, see MUSL_V7 below).
MUSL_TARGETS=(aarch64-unknown-linux-musl)

# The qemu-user command line for a target, as in .cargo/config.toml.
runner() {
  case $1 in
    aarch64-unknown-linux-gnu) echo "qemu-aarch64-static -L /usr/aarch64-linux-gnu" ;;
    armv7-unknown-linux-gnueabihf) echo "qemu-arm-static -L /usr/arm-linux-gnueabihf" ;;
    aarch64-unknown-linux-musl) echo "qemu-aarch64-static" ;;
    armv7-unknown-linux-musleabihf) echo "qemu-arm-static" ;;
    riscv64gc-unknown-linux-gnu) echo "qemu-riscv64-static -L /usr/riscv64-linux-gnu" ;;
    arm-unknown-linux-gnueabi) echo "qemu-arm-static -cpu arm1176 -L /usr/arm-linux-gnueabi" ;;
    mipsel-unknown-linux-gnu) echo "qemu-mipsel-static -L /usr/mipsel-linux-gnu" ;;
    mipsel-unknown-linux-musl) echo "qemu-mipsel-static" ;;
  esac
}
# With PI_CLEAN=1, a target's build directory goes once its suite is done (the echo step
# rebuilds the one example it needs).
clean_target() {
  [ "${PI_CLEAN:-0}" = 1 ] || return 0
  rm -rf "${PI_TARGET_DIR:?}/$1"
  printf -- '--- removed the %s build (disk free: %s)\n' "$1" "$(df -Ph "$PI_TARGET_DIR" | awk 'NR == 2 { print $4 }')"
}
# The suite's step names a target's skipped suites with the reason, in the results table too.
not_run() {
  skipped "test suite on $1 ($2)"
  suite_row "$1" "not run" "SKIPPED: $2"
}
# The repository's .cargo/config.toml names the Pi targets' linkers and runners; riscv64's are
# given here.
export CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_LINKER=riscv64-linux-gnu-gcc
CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_RUNNER=$(runner riscv64gc-unknown-linux-gnu)
export CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_RUNNER
export CARGO_TARGET_ARM_UNKNOWN_LINUX_GNUEABI_LINKER=arm-linux-gnueabi-gcc
CARGO_TARGET_ARM_UNKNOWN_LINUX_GNUEABI_RUNNER=$(runner arm-unknown-linux-gnueabi)
export CARGO_TARGET_ARM_UNKNOWN_LINUX_GNUEABI_RUNNER
# The tools a target needs on the PATH: its linker and its emulator.
tools() {
  case $1 in
    aarch64-*) echo "aarch64-linux-gnu-gcc qemu-aarch64-static" ;;
    armv7-*) echo "arm-linux-gnueabihf-gcc qemu-arm-static" ;;
    riscv64*) echo "riscv64-linux-gnu-gcc qemu-riscv64-static" ;;
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
command -v riscv64-linux-gnu-gcc >/dev/null || missing_pkgs+=(gcc-riscv64-linux-gnu)
command -v mipsel-linux-gnu-gcc >/dev/null || missing_pkgs+=(gcc-mipsel-linux-gnu)
command -v arm-linux-gnueabi-gcc >/dev/null || missing_pkgs+=(gcc-arm-linux-gnueabi)
[ -d /usr/arm-linux-gnueabi/lib ] || missing_pkgs+=(libc6-dev-armel-cross)
[ -d /usr/mipsel-linux-gnu/lib ] || missing_pkgs+=(libc6-dev-mipsel-cross)
for q in qemu-aarch64-static qemu-arm-static qemu-riscv64-static qemu-mipsel-static; do
  command -v "$q" >/dev/null || { missing_pkgs+=(qemu-user-static) && break; }
done
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

# The pinned nightly with rust-src, for -Zbuild-std.
have_nightly() {
  local sysroot
  sysroot=$(rustup run "$NIGHTLY" rustc --print sysroot 2>/dev/null) &&
    [ -d "$sysroot/lib/rustlib/src/rust/library/core" ]
}
if ! command -v rustup >/dev/null; then
  skipped "$NIGHTLY (no rustup to install it; the -Zbuild-std builds are left out)"
elif ! have_nightly; then
  echo "installing $NIGHTLY with rust-src"
  timed "rustup toolchain install $NIGHTLY" \
    rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src >"$WORK/rustup.log" 2>&1 ||
    skipped "$NIGHTLY ($(grep -m1 '^error' "$WORK/rustup.log" || echo 'rustup toolchain install failed'); the -Zbuild-std builds are left out)"
fi

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

# One row per target in the suite-results table: what ran, what passed, what was skipped.
SUITE_RESULTS=$WORK/suite-results.md
: >"$SUITE_RESULTS"
suite_row() { printf '| `%s` | %s | %s |\n' "$1" "$2" "$3" >>"$SUITE_RESULTS"; }
# "N passed, M ignored, K skipped under emulation", summed over a `cargo test` log.
suite_counts() {
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i - 1); if ($i ~ /^ignored/) g += $(i - 1) } }
    /^(skipped|SKIPPED): / { s++ }
    END { printf "%d passed, %d ignored, %d skipped under emulation", p, g, s }' "$1"
}

# `run_suite TARGET DESCRIPTION CARGO...`: the whole suite for TARGET under its runner, with
# CARGO (`cargo`, or the nightly with -Zbuild-std) before each subcommand's arguments.
ran_suite=()
run_suite() {
  local t=$1 what=$2 rc=0 t0
  shift 2
  case " ${PI_SUITES:-$t} " in *" $t "*) ;; *)
    echo "suite on $t left out (PI_SUITES=$PI_SUITES)"
    return 0
    ;;
  esac
  step "test suite on $t under $(runner "$t")"
  timed "build $t" "$@" --target "$t" --no-run --quiet || fail "building the tests for $t"
  wrap_examples "$t"
  # `--lib --tests` and `--doc`, not a plain `cargo test`: that would build the examples again
  # and, even with nothing to rebuild, put the ARM binaries back over the wrappers.
  t0=$SECONDS
  # --show-output: a test that cannot run here says so on stderr with a line starting
  # `skipped:` or `SKIPPED:` and returns; those lines are shown below as SKIPPED, with the
  # test's name.
  "$@" --target "$t" --lib --tests --no-fail-fast -- --show-output >"$WORK/test-$t.log" 2>&1 || rc=$?
  "$@" --target "$t" --doc >>"$WORK/test-$t.log" 2>&1 || rc=$?
  grep -E '^(     Running|   Doc-tests|test result|test .* FAILED)' "$WORK/test-$t.log" || true
  # A test of the library's own (no std, so no captured output) writes its line straight to
  # stderr, while the tests run: it names itself, and no earlier test's name goes with it.
  awk -v t="$t" '/^     Running / { file = $2; name = "" } /^---- .* stdout ----$/ { name = $2 }
    /^(skipped|SKIPPED): / { sub(/^(skipped|SKIPPED): /, ""); printf "SKIPPED: %s %s on %s (%s)\n", file, name, t, $0 }' \
    "$WORK/test-$t.log"
  printf -- '--- test %s: %ds\n' "$t" "$((SECONDS - t0))"
  # Under emulation on a busy 2-core machine a test with a time limit can miss it (a child
  # process that qemu starts slowly, 5 timer ticks in 50 ms): each failed unit or integration
  # test runs once more on its own. One that passes then is reported as FLAKY, by name, in the
  # output and the results table; one that fails again, or any failed doc test, fails the run.
  local flaky=() retried=0 bin name
  if [ "$rc" -ne 0 ]; then
    sed -n '/^failures:/,/^test result/p' "$WORK/test-$t.log" | head -300 >&2
    grep -E '^error' "$WORK/test-$t.log" >&2 || true
    rc=0
    while read -r bin name; do
      retried=1
      # shellcheck disable=SC2086 # `$bin` is one word: `--lib` or `--test=NAME`
      if [ "$bin" = --doc ] || ! "$@" --target "$t" $bin -- --exact "$name" >"$WORK/retry.log" 2>&1 ||
        ! grep -q '^test result: ok\. 1 passed' "$WORK/retry.log"; then
        rc=1
        cat "$WORK/retry.log" >&2 2>/dev/null || true
        continue
      fi
      echo "FLAKY: $name ($bin) on $t failed, then passed when run again alone"
      flaky+=("$name")
    done < <(awk '/^     Running unittests src\/lib\.rs/ { b = "--lib" }
      /^     Running tests\// { n = $2; sub(/^tests\//, "", n); sub(/\.rs$/, "", n); b = "--test=" n }
      /^   Doc-tests/ { b = "--doc" }
      /^test .* \.\.\. FAILED$/ { print b, $2 }' "$WORK/test-$t.log")
    [ "$retried" = 1 ] && [ "$rc" -eq 0 ] || fail "cargo test --target $t"
  fi
  local result
  result=$(suite_counts "$WORK/test-$t.log")
  # Test names in backticks: the README is the crate's front page, and clippy::pedantic reads it.
  [ ${#flaky[@]} -eq 0 ] || result="$result; failed once, passed when run again: $(printf '`%s` ' "${flaky[@]}" | sed 's/ $//')"
  suite_row "$t" "$what" "$result"
  ran_suite+=("$t")
}
for t in "${GNU_TARGETS[@]}"; do
  usable "$t" || continue
  run_suite "$t" "glibc, $(runner "$t" | cut -d' ' -f1)" cargo test
  timed "no_std build $t" cargo build -p picosel --lib --no-default-features --target "$t" --quiet ||
    fail "no_std build for $t"
  clean_target "$t"
done

# ARMv6 (Pi Zero, Pi 1): no rustup std here, and Debian's armhf start files are ARMv7 (see
# docs/raspberry-pi.md). Debian's armel toolchain and glibc are ARMv5TE code, which an ARMv6 CPU
# runs: std built from source for arm-unknown-linux-gnueabi (ARMv6, soft-float calls) links
# against them, and every test then runs on the Pi Zero's CPU model.
ARMV6=arm-unknown-linux-gnueabi
ARMV6_READY=0
if ! have_nightly; then
  not_run "$ARMV6" "$NIGHTLY with rust-src is not installed, so std cannot be built for it"
elif ! command -v arm-linux-gnueabi-gcc >/dev/null || [ ! -d /usr/arm-linux-gnueabi/lib ]; then
  not_run "$ARMV6" "Debian's gcc-arm-linux-gnueabi and libc6-dev-armel-cross are not installed"
else
  ARMV6_READY=1
  run_suite "$ARMV6" "glibc armel (ARMv5TE), std built from source, qemu-arm -cpu arm1176" \
    cargo "+$NIGHTLY" test -Zbuild-std
  clean_target "$ARMV6"
fi

# Little-endian MIPS32 (OpenWrt's ramips and ath79 routers): a tier-3 target with no rustup std
# at all, so std is built from source, linked against Debian's mipsel glibc (MIPS32r2 code).
# MIPS has 128 signals, not 64 (see `Signal`), and no 64-bit atomics.
MIPSEL=mipsel-unknown-linux-gnu
MIPSEL_READY=0
if ! have_nightly; then
  not_run "$MIPSEL" "$NIGHTLY with rust-src is not installed, so std cannot be built for it"
elif ! command -v mipsel-linux-gnu-gcc >/dev/null || [ ! -d /usr/mipsel-linux-gnu/lib ] ||
  ! command -v qemu-mipsel-static >/dev/null; then
  not_run "$MIPSEL" "Debian's gcc-mipsel-linux-gnu, libc6-dev-mipsel-cross or qemu-user-static is not installed"
else
  MIPSEL_READY=1
  run_suite "$MIPSEL" "glibc mipsel (MIPS32r2), std built from source, qemu-mipsel" \
    cargo "+$NIGHTLY" test -Zbuild-std
  clean_target "$MIPSEL"
fi

# armv7 static (musl): rustup cannot download this target's rust-std here, and rustc takes
# musl's start files and libc.a from that rust-std, which -Zbuild-std does not build.
# scripts/musl-sysroot.sh fetches Debian's musl-dev for armhf (unpacked under the build
# directory, not installed) and names the cross gcc's unwinder as libunwind; std is then built
# from source and every test binary is a static musl executable.
MUSL_V7=armv7-unknown-linux-musleabihf
musl_flags=''
if ! have_nightly; then
  not_run "$MUSL_V7" "$NIGHTLY with rust-src is not installed, so std cannot be built for it"
elif ! have_tools "$MUSL_V7"; then
  not_run "$MUSL_V7" "missing tools: $(tools "$MUSL_V7")"
elif ! musl_flags=$(bash scripts/musl-sysroot.sh armhf arm-linux-gnueabihf "$PI_TARGET_DIR/musl-armhf" 2>"$WORK/musl.log"); then
  musl_flags=''
  not_run "$MUSL_V7" "scripts/musl-sysroot.sh: $(tail -n 1 "$WORK/musl.log")"
else
  run_suite "$MUSL_V7" "musl static (Debian's musl-dev, std built from source), qemu-arm" \
    env RUSTFLAGS="$musl_flags" RUSTDOCFLAGS="$musl_flags" cargo "+$NIGHTLY" test -Zbuild-std
  clean_target "$MUSL_V7"
fi

# MIPS32 static (musl): OpenWrt's C library on its routers. Like armv7 static, through
# scripts/musl-sysroot.sh (Debian's musl-dev for mipsel; its unwinder gets the glibc function
# _dl_find_object it calls, see scripts/musl-dl-find-object.c), with three more flags:
#  - `-soft-float`: Rust's target is soft-float, Debian's musl hard-float (ld refuses to mix
#    them), and std is built from source here anyway, so all of it is built hard-float;
#  - `+crt-static`: the target links dynamically by default (as OpenWrt does);
#  - `--cfg libc_unstable_musl_v1_2`: musl 1.2 (Debian's, OpenWrt's) has a 64-bit `time_t`,
#    which rustix assumes on 32-bit musl; the libc crate's default is the old 32-bit one, and
#    rustix then reads the clock wrong (docs/raspberry-pi.md, "MIPS").
MUSL_MIPSEL=mipsel-unknown-linux-musl
mipsel_musl_flags=''
if ! have_nightly; then
  not_run "$MUSL_MIPSEL" "$NIGHTLY with rust-src is not installed, so std cannot be built for it"
elif ! command -v mipsel-linux-gnu-gcc >/dev/null || ! command -v qemu-mipsel-static >/dev/null; then
  not_run "$MUSL_MIPSEL" "Debian's gcc-mipsel-linux-gnu or qemu-user-static is not installed"
elif ! mipsel_musl_flags=$(bash scripts/musl-sysroot.sh mipsel mipsel-linux-gnu "$PI_TARGET_DIR/musl-mipsel" 2>"$WORK/musl-mipsel.log"); then
  mipsel_musl_flags=''
  not_run "$MUSL_MIPSEL" "scripts/musl-sysroot.sh: $(tail -n 1 "$WORK/musl-mipsel.log")"
else
  mipsel_musl_flags+=" -C target-feature=-soft-float,+crt-static --cfg libc_unstable_musl_v1_2"
  run_suite "$MUSL_MIPSEL" "musl static (Debian's musl-dev, std built from source, hard-float), qemu-mipsel" \
    env RUSTFLAGS="$mipsel_musl_flags" RUSTDOCFLAGS="$mipsel_musl_flags" cargo "+$NIGHTLY" test -Zbuild-std
  clean_target "$MUSL_MIPSEL"
fi

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
  # The boards whose std is built from source, as their suites above: the same example, served
  # from their emulator. `build_std_echo TARGET LINKING CARGO...`, CARGO as in run_suite.
  build_std_echo() {
    local t=$1 linking=$2 bin
    shift 2
    step "echo example: size-optimised ($t, $linking, std built from source, profile release-small)"
    # release-small aborts on panic, so panic_abort is built from source as well.
    timed "build" "$@" build -Zbuild-std=std,panic_abort --target "$t" --profile release-small --example echo_server --quiet ||
      fail "building the size-optimised echo example for $t"
    bin="$PI_TARGET_DIR/$t/release-small/examples/echo_server"
    echo "size: $(size_of "$bin") bytes (stripped) $t echo_server"
    echo "| \`$t\` | $linking | $(commas "$(size_of "$bin")") |" >>"$ECHO_SIZES"
    # shellcheck disable=SC2046
    serve "echo_server ($t, $linking)" $(runner "$t") "$bin" --quiet 127.0.0.1:0
    clean_target "$t"
  }
  [ "$ARMV6_READY" = 0 ] || build_std_echo "$ARMV6" "glibc armel, dynamic" cargo "+$NIGHTLY"
  [ "$MIPSEL_READY" = 0 ] || build_std_echo "$MIPSEL" "glibc, dynamic" cargo "+$NIGHTLY"
  [ -z "$musl_flags" ] || build_std_echo "$MUSL_V7" "static (musl)" env RUSTFLAGS="$musl_flags" cargo "+$NIGHTLY"
  [ -z "$mipsel_musl_flags" ] ||
    build_std_echo "$MUSL_MIPSEL" "static (musl)" env RUSTFLAGS="$mipsel_musl_flags" cargo "+$NIGHTLY"
else
  skipped "echo example (examples/echo_server.rs is not in the tree)"
fi

# ---------------------------------------------------------------------------------------------
# firmware/: no C library, its own `_start` (firmware/src/start.rs). One line per target:
# target | toolchain (stable: prebuilt std; nightly: -Zbuild-std=core) | linker driver |
# qemu-user command ("-": runs on the host) | the boards it is for.
FW_TARGETS=(
  "x86_64-unknown-linux-gnu|stable|cc|-|x86_64 PC (this machine, natively)"
  "aarch64-unknown-linux-gnu|nightly|aarch64-linux-gnu-gcc|qemu-aarch64-static|Pi 3, 4, 5, Zero 2 W (64-bit)"
  "armv7-unknown-linux-gnueabihf|nightly|arm-linux-gnueabihf-gcc|qemu-arm-static -cpu cortex-a7|Pi 2, 3, 4 (32-bit, ARMv7)"
  "arm-unknown-linux-gnueabihf|nightly|arm-linux-gnueabihf-gcc|qemu-arm-static -cpu arm1176|Pi Zero, Zero W, Pi 1 (ARMv6)"
  "riscv64gc-unknown-linux-gnu|nightly|riscv64-linux-gnu-gcc|qemu-riscv64-static|VisionFive 2, Milk-V (RISC-V 64)"
  "mipsel-unknown-linux-musl|nightly|mipsel-linux-gnu-gcc|qemu-mipsel-static -cpu 24Kc|little-endian MIPS32 routers (OpenWrt ramips)"
)
FW_LIMIT=16384
# picosel's own share (echo-daemon minus bare-echo, same run, same toolchain) is asserted on
# this target, and said where it goes: a list from the symbol table of an unstripped build,
# which --write-docs puts below the table in docs/raspberry-pi.md. The goal is 2,048 bytes;
# the selector's code is 2,680 today, so the limit is a ceiling a little above that, which any
# growth of the firmware path trips (lower it with every saving).
FW_SHARE_TARGET=aarch64-unknown-linux-gnu
FW_SHARE_LIMIT=2752
FW_SHARE_GOAL=2048
FW_SHARE=''
FW_BYTES=$WORK/firmware-bytes.block
: >"$FW_BYTES"
for line in "${FW_TARGETS[@]}"; do
  IFS='|' read -r t toolchain linker emu board <<<"$line"
  step "firmware: no-libc echo daemons ($t: $board)"
  build=(cargo build --release --target "$t" --quiet)
  if [ "$toolchain" = nightly ]; then
    # The prebuilt `core` of these targets lacks compiler-builtins' memcpy and memset (a C
    # library would bring them), and ARMv6 and mipsel have no prebuilt `core` here at all.
    if ! have_nightly; then
      skipped "firmware echo daemons on $t ($NIGHTLY with rust-src is not installed)"
      continue
    fi
    build=(cargo "+$NIGHTLY" build --release --target "$t" --quiet
      -Zbuild-std=core -Zbuild-std-features=compiler-builtins-mem)
  elif ! have_std "$t"; then
    skipped "firmware echo daemons on $t (its rust-std is not installed)"
    continue
  fi
  missing=''
  for tool in $linker ${emu%% *}; do
    [ "$tool" = - ] || command -v "$tool" >/dev/null || missing="$missing $tool"
  done
  if [ -n "$missing" ]; then
    skipped "firmware echo daemons on $t (missing tools:$missing)"
    continue
  fi
  # Its own target directory: firmware/.cargo/config.toml gives other rustflags than the
  # library's builds above, and sharing would rebuild both every run.
  (cd firmware && CARGO_TARGET_DIR="$PI_TARGET_DIR/firmware" timed "build $t" "${build[@]}") ||
    fail "building firmware/ for $t"
  dir="$PI_TARGET_DIR/firmware/$t/release"
  for b in echo-daemon bare-echo; do
    echo "size: $(size_of "$dir/$b") bytes (stripped, static, no libc) $t $b"
  done
  readelf -A "$dir/echo-daemon" 2>/dev/null | grep -E 'Tag_CPU_arch:' || true
  d=$(size_of "$dir/echo-daemon")
  b=$(size_of "$dir/bare-echo")
  d_text=$(text_of "$dir/echo-daemon")
  b_text=$(text_of "$dir/bare-echo")
  [ "$toolchain" = nightly ] && toolchain="nightly, build-std"
  echo "| \`$t\` | $board | $toolchain | $(commas "$d") | $(commas "$b") | $(commas $((d - b))) | $(commas $((d_text - b_text))) |" >>"$FW_SIZES"
  [ "$d" -le "$FW_LIMIT" ] || fail "firmware echo-daemon on $t is $d bytes, over $FW_LIMIT"
  if [ "$t" = "$FW_SHARE_TARGET" ]; then
    FW_SHARE=$((d - b))
    # The same build with its symbols, in a directory of its own (the profile differs).
    (cd firmware && CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR="$PI_TARGET_DIR/firmware-symbols" \
      timed "build $t (unstripped)" "${build[@]}") || fail "building firmware/ for $t with symbols"
    sym="$PI_TARGET_DIR/firmware-symbols/$t/release"
    python3 "$ROOT/scripts/firmware-bytes.py" "$sym/echo-daemon" "$sym/bare-echo" "$FW_SHARE" "$t" >"$FW_BYTES" ||
      fail "listing where picosel's bytes go on $t"
    cat "$FW_BYTES"
    clean_target firmware-symbols
  fi
  cmd=()
  where=natively
  [ "$emu" = - ] || { read -ra cmd <<<"$emu" && where="under $emu"; }
  t0=$SECONDS
  serve "firmware echo-daemon ($t, $where)" "${cmd[@]}" "$dir/echo-daemon" 127.0.0.1:0
  serve "firmware bare-echo ($t, $where)" "${cmd[@]}" "$dir/bare-echo" 127.0.0.1:0
  printf -- '--- serve %s: %ds\n' "$t" "$((SECONDS - t0))"
done
# The ARMv6 check means something only if `-cpu arm1176` refuses ARMv7 code: the armv7 build
# must die there with SIGILL (exit 128 + 4) before it parses its argument.
v7="$PI_TARGET_DIR/firmware/armv7-unknown-linux-gnueabihf/release/echo-daemon"
if [ -x "$v7" ] && command -v qemu-arm-static >/dev/null; then
  rc=0
  qemu-arm-static -cpu arm1176 "$v7" not-an-address 2>/dev/null || rc=$?
  [ "$rc" -eq 132 ] || fail "the armv7 echo-daemon under qemu-arm -cpu arm1176 exited $rc, not 132 (SIGILL)"
  echo "ok: the armv7 build dies with SIGILL under qemu-arm -cpu arm1176, so the ARMv6 run above is a real check"
fi
if [ -n "$FW_SHARE" ]; then
  [ "$FW_SHARE" -le "$FW_SHARE_LIMIT" ] ||
    fail "picosel's share of the $FW_SHARE_TARGET firmware echo daemon is $(commas "$FW_SHARE") bytes (echo-daemon minus bare-echo), over the $(commas "$FW_SHARE_LIMIT") allowed; where the bytes go is listed above"
  echo "ok: picosel's share of the $FW_SHARE_TARGET firmware echo daemon is $(commas "$FW_SHARE") bytes, at most $(commas "$FW_SHARE_LIMIT") (the goal: $(commas "$FW_SHARE_GOAL"))"
fi

# ---------------------------------------------------------------------------------------------
# The suite where no toolchain here can build it: each says exactly why.
step "test suite: targets without a usable standard library here"
not_run arm-unknown-linux-gnueabihf "ARMv6 hard-float: rustup cannot download its rust-std here; -Zbuild-std links Debian's armhf crt1.o and glibc, which are ARMv7 Thumb-2 code and die with SIGILL under qemu-arm -cpu arm1176 (the suite runs on ARMv6 as $ARMV6 above)"

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
  echo "Static, stripped, no C library, measured by \`scripts/pi-test.sh\` with $RUSTC (stable) and $NIGHTLY (build-std); each served to the host client from the emulator its row names in the script:"
  echo
  echo "| Target | Boards | Toolchain | \`echo-daemon\` (picosel) | \`bare-echo\` (rustix epoll) | picosel's share | of it \`.text\` |"
  echo "|---|---|---|---|---|---|---|"
  cat "$FW_SIZES"
  echo "<!-- firmware-sizes: end -->"
} >"$WORK/firmware-sizes.block"
{
  echo "<!-- suite-results: begin (written by \`bash scripts/pi-test.sh --write-docs\`) -->"
  echo "The library's whole test suite (unit, integration and doc tests) under qemu-user, from the last \`scripts/pi-test.sh\` run:"
  echo
  echo "| Target | C library, emulator | Result |"
  echo "|---|---|---|"
  cat "$SUITE_RESULTS"
  echo "<!-- suite-results: end -->"
} >"$WORK/suite-results.block"
cat "$WORK/suite-results.block" "$WORK/pi-sizes.block" "$WORK/firmware-sizes.block" "$FW_BYTES"
if [ "$WRITE_DOCS" = 1 ]; then
  if [ -s "$ECHO_SIZES" ] && [ -s "$FW_SIZES" ] && [ -s "$FW_BYTES" ]; then
    python3 "$ROOT/scripts/write-doc-tables.py" "$WORK/suite-results.block" "$WORK/pi-sizes.block" \
      "$WORK/firmware-sizes.block" "$FW_BYTES" || fail "writing the tables into the docs"
    echo "docs/raspberry-pi.md and README.md: tables written"
  else
    skipped "size tables not written (a target could not be measured here)"
  fi
fi

# ---------------------------------------------------------------------------------------------
step "done"
if [ "${PI_SUITES:-}" = none ]; then
  echo "no test suite run (PI_SUITES=none)"
elif [ ${#ran_suite[@]} -eq 0 ]; then
  skipped "test suite under qemu (no cross target could be set up)"
else
  echo "test suite passed under qemu-user on: ${ran_suite[*]}"
fi
echo "pi-test.sh took $((SECONDS - START)) s"
