//! Link flags for the daemons (and only for them: not for build scripts, which link against the
//! host's C library as usual): a static executable with no C library and no start files; and
//! the architecture whose entry code src/start.rs includes.
//!
//! - `-nostartfiles -nostdlib -static`: no crt1.o/crti.o, no libc, no libgcc; `_start` is in
//!   src/start.rs, and the few memory functions the code calls (memcpy, memset) come from
//!   Rust's own compiler-builtins.
//! - `-z max-page-size=65536`: segments aligned for any kernel page size: 4 KiB (Pi 1-4, Zero),
//!   16 KiB (the Pi 5's default Raspberry Pi OS kernel) or 64 KiB. Without RELRO this costs no
//!   file size, only address space between the segments.
//! - `-z norelro`: RELRO would pad the file to a page boundary after the part made read-only
//!   after start-up. A static non-PIE binary has no run-time relocations, so only hardening
//!   of `.got` and `.data.rel.ro` is given up, not correctness.
//! - `--build-id=none`: drops a 36-byte note nobody reads on the device.
//! - `-z noexecstack`: the stack stays non-executable without a `.note.GNU-stack` from crt files.
//! - no-eh-frame.ld and `--no-eh-frame-hdr`: no unwind tables, which nothing reads in a
//!   `panic = "abort"` binary without an unwinder.
fn main() {
    // src/start.rs takes the program entry from src/start/ARCH.s.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let asm = format!("src/start/{arch}.s");
    if !std::path::Path::new(&asm).exists() {
        panic!("firmware/: no program entry for the {arch:?} architecture ({asm} is missing)");
    }
    println!("cargo:rustc-env=FIRMWARE_ARCH={arch}");
    println!("cargo:rerun-if-changed={asm}");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-Wl,-z,max-page-size=65536",
        "-Wl,-z,norelro",
        "-Wl,--build-id=none",
        "-Wl,-z,noexecstack",
        "-Wl,--no-eh-frame-hdr",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/no-eh-frame.ld");
    println!("cargo:rerun-if-changed=no-eh-frame.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
