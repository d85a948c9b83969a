# MIPS o32 entry: see start.rs. $gp from the linker's `_gp`; sp 8-byte aligned, and the caller
# reserves 16 bytes of argument save area. The assembler fills no delay slot (`noreorder`), so
# the jump's is an explicit nop. `__start` is GNU ld's default entry on MIPS.
    .globl __start
    .set push
    .set noreorder
__start:
_start:
    lui $gp, %hi(_gp)
    addiu $gp, $gp, %lo(_gp)
    move $fp, $zero
    move $ra, $zero
    move $a0, $sp
    li $t0, -8
    and $sp, $sp, $t0
    addiu $sp, $sp, -16
    jal {entry}
    nop
    move $a0, $v0
firmware_exit:
    li $v0, 4246            # exit_group: o32 numbers start at 4000
    syscall
    break
    .set pop
