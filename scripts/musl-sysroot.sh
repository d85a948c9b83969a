#!/usr/bin/env bash
# A musl C library for a cross target whose rust-std rustup cannot download (e.g.
# armv7-unknown-linux-musleabihf), so that `cargo +nightly test -Zbuild-std` can link its static
# test binaries. Run by scripts/pi-test.sh; usable alone:
#
#   bash scripts/musl-sysroot.sh DEBIAN_ARCH GCC_TRIPLE DIR
#   e.g. bash scripts/musl-sysroot.sh armhf arm-linux-gnueabihf target/pi/musl-armhf
#
# What it does, and why:
#  - Debian's `musl-dev` for DEBIAN_ARCH, fetched with `apt-get download` through a private apt
#    state under DIR (the machine's architectures and lists are left alone) and unpacked there,
#    not installed: it gives crt1.o,
#    crti.o, crtn.o and libc.a. rustc normally takes these from the rust-std it ships
#    ("self-contained" linking), which build-std does not build.
#  - DIR/unwind/libunwind.a: the cross gcc's libgcc_eh.a under the name std's `unwind` crate
#    links for musl targets (with glibc's _dl_find_object added from
#    scripts/musl-dl-find-object.c when that unwinder calls it, as mipsel's does). Rust's
#    rust-std ships LLVM's libunwind there; both provide the
#    `_Unwind_*` API (and ARM's EHABI personality helpers) that panics unwind through.
#  - Prints, on its last line, the RUSTFLAGS that link against them: self-contained linking off,
#    pthread_once linked for the unwinder (see below),
#    no default start files or libraries, musl's crt objects around the program, and libc and
#    libgcc named again after them (crt1.o calls __libc_start_main).
# Exits non-zero with one line on stderr saying which step failed.
set -euo pipefail
arch=$1 triple=$2 dir=$3
die() {
  echo "$*" >&2
  exit 1
}
# Debian's musl triple for armhf is arm-linux-musleabihf, for mipsel mipsel-linux-musl.
case $triple in
  arm-linux-gnueabihf) lib=$dir/root/usr/lib/arm-linux-musleabihf ;;
  mipsel-linux-gnu) lib=$dir/root/usr/lib/mipsel-linux-musl ;;
  *) die "no musl triple known for $triple" ;;
esac
if [ ! -f "$lib/libc.a" ]; then
  # A private apt state for DEBIAN_ARCH under DIR: the machine's own package lists and
  # architectures stay as they are, and no root is needed.
  apt=(-qq -o "Dir::State::Lists=$dir/apt/lists" -o "Dir::Cache=$dir/apt/cache"
    -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch" -o Debug::NoLocking=1)
  mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs"
  # One index of a mirror may be out of step (apt-get then says so and goes on with the rest):
  # whether musl-dev came through is what the download below tells.
  apt-get "${apt[@]}" update >"$dir/apt/update.log" 2>&1 || true
  (cd "$dir/debs" && apt-get "${apt[@]}" download musl-dev >"$dir/apt/download.log" 2>&1) ||
    die "apt-get download musl-dev for $arch failed: $(grep -m1 '^E:' "$dir/apt/download.log" "$dir/apt/update.log" || echo 'see '"$dir"'/apt')"
  for deb in "$dir"/debs/musl-dev_*.deb; do
    dpkg-deb -x "$deb" "$dir/root" || die "dpkg-deb -x $deb failed"
  done
  [ -f "$lib/libc.a" ] || die "musl-dev for $arch has no $lib/libc.a"
fi
eh=$("$triple-gcc" -print-file-name=libgcc_eh.a)
[ -f "$eh" ] || die "$triple-gcc has no libgcc_eh.a"
mkdir -p "$dir/unwind"
# grep reads all of nm's output (no -q): under pipefail, an nm cut short by SIGPIPE would fail
# the test.
if nm -u "$eh" 2>/dev/null | grep -w _dl_find_object >/dev/null; then
  # This unwinder asks glibc's _dl_find_object(3), which musl lacks: a copy of it with that
  # function added (scripts/musl-dl-find-object.c, on musl's dl_iterate_phdr).
  # Built under another name and moved into place, so that a link never sees half of it.
  "$triple-gcc" -O2 -c "$(dirname "$0")/musl-dl-find-object.c" -o "$dir/unwind/dl-find-object.o" ||
    die "compiling scripts/musl-dl-find-object.c with $triple-gcc failed"
  cp "$eh" "$dir/unwind/libunwind.a.new"
  "$triple-ar" rs "$dir/unwind/libunwind.a.new" "$dir/unwind/dl-find-object.o" &&
    "$triple-ar" t "$dir/unwind/libunwind.a.new" | grep -qx dl-find-object.o ||
    die "$triple-ar could not add _dl_find_object to a copy of $eh"
  mv -f "$dir/unwind/libunwind.a.new" "$dir/unwind/libunwind.a"
else
  ln -sf "$eh" "$dir/unwind/libunwind.a"
fi
flags="-C link-self-contained=no -C link-arg=-nostdlib -L $lib -L $dir/unwind"
# gcc's unwinder calls pthread_once(3) through a weak reference once the program has threads
# (gthr-posix.h); a static link pulls no archive member for a weak reference, so the call
# would jump to address 0 on the first panic (seen on mipsel). Naming it pulls musl's in.
flags+=" -C link-arg=-Wl,-u,pthread_once"
flags+=" -C link-arg=$lib/crt1.o -C link-arg=$lib/crti.o"
flags+=" -C link-arg=-lc -C link-arg=-lgcc -C link-arg=-lc -C link-arg=$lib/crtn.o"
echo "$flags"
