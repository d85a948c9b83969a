# x86_64 entry: see start.rs. SysV x86_64 wants rsp 16-byte aligned before a call.
_start:
    xor ebp, ebp
    mov rdi, rsp
    and rsp, -16
    call {entry}
    mov edi, eax
firmware_exit:
    mov eax, 231            # exit_group
    syscall
    ud2
