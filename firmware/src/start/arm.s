@ 32-bit ARM entry: see start.rs. A32 instructions of ARMv5TE only, so that this is also the
@ Pi Zero's (ARMv6) entry. AAPCS: sp 8-byte aligned at a public interface. EABI system calls:
@ the number in r7, then `svc #0`.
    .arm
    .type _start, %function
    .type firmware_exit, %function
_start:
    mov fp, #0
    mov lr, #0
    mov r0, sp
    bic r1, r0, #7
    mov sp, r1
    bl {entry}
firmware_exit:
    mov r7, #248            @ exit_group
    svc #0
    b .
