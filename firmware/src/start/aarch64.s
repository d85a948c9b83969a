// aarch64 entry: see start.rs. The kernel leaves sp 16-byte aligned, as AAPCS64 requires.
_start:
    mov x29, xzr
    mov x30, xzr
    mov x0, sp
    bl {entry}
firmware_exit:
    mov x8, #94             // exit_group
    svc #0
    brk #1
