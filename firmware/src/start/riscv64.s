# riscv64 entry: see start.rs. The global pointer first, for accesses the linker relaxed to
# be gp-relative (`norelax`, so that this load itself is not). psABI: sp 16-byte aligned.
_start:
    .option push
    .option norelax
    lla gp, __global_pointer$
    .option pop
    mv fp, zero
    mv ra, zero
    mv a0, sp
    andi sp, sp, -16
    call {entry}
firmware_exit:
    li a7, 94               # exit_group
    ecall
    unimp
