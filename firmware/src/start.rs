//! Process entry without a C library: the ELF entry point `_start` (from `start/ARCH.s`), the
//! exit, and the panic handler. Included by path into each binary, like `common.rs`.
//!
//! Linux starts a static executable at its ELF entry with the stack pointer at `argc`, followed
//! by the `argv` pointers, a null, the environment and the auxiliary vector (the System V ABI's
//! "initial process stack", the same on every architecture). Nothing else is set up and nothing
//! is needed: the daemons use no thread-local storage, no C library and no heap, so the entry
//! code only hands that pointer to Rust with an ABI-conformant stack, and the daemon leaves
//! with the exit_group(2) system call, made there as well (rustix's own is not public API).
//! This is what the `origin` crate's program start does without its optional parts (TLS,
//! `.init_array`, threads); at eight to fifteen instructions per architecture, including MIPS,
//! which `origin` does not cover, it is written out here rather than taken as a dependency.

use core::ffi::{c_char, c_int};

// The entry for the target's architecture, from src/start/ARCH.s (build.rs names ARCH and
// refuses an architecture without a file there). Each clears the frame pointer (and link
// register) so that a backtrace ends there, passes the stack pointer as the first argument,
// aligns the stack as the C ABI requires and calls `entry`; then `firmware_exit`, which
// `entry`'s return value reaches as its first argument: the exit_group(2) system call with the
// architecture's number and calling convention (the kernel's
// arch/*/include/uapi/asm/unistd*.h and syscall(2)), and a trap that never runs.
// `global_asm!` counts as unsafe code: an entry point is assembly by nature.
#[allow(unsafe_code)]
mod asm {
    core::arch::global_asm!(
        ".globl _start",
        ".globl firmware_exit",
        include_str!(concat!("start/", env!("FIRMWARE_ARCH"), ".s")),
        entry = sym super::entry,
    );
}

#[allow(unsafe_code)]
extern "C" {
    /// exit_group(2): ends every thread of the process with `code`.
    fn firmware_exit(code: c_int) -> !;
}

/// Called by `_start` with the initial stack pointer; runs `main` and returns its exit code
/// to `_start`, which exits with it.
///
/// # Safety
///
/// `sp` is the stack pointer the kernel gave the process, untouched.
#[allow(unsafe_code)]
unsafe extern "C" fn entry(sp: *const usize) -> c_int {
    // SAFETY: the kernel's initial stack holds argc at `sp` and then argc argv pointers, each
    // to a NUL-terminated string that lives as long as the process (execve(2)).
    let (argc, argv) = unsafe { (*sp, sp.add(1).cast::<*const c_char>()) };
    crate::main(c_int::try_from(argc).unwrap_or(0), argv)
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // No unwinder and nothing to report to. 134 is what a shell shows for a process killed by
    // SIGABRT (128 + 6), which is how `panic = "abort"` ends a std program.
    // SAFETY: exit_group(2) takes any code and does not return.
    #[allow(unsafe_code)]
    unsafe {
        firmware_exit(134)
    }
}
