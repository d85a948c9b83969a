/* glibc's _dl_find_object(3) for a static musl program, through dl_iterate_phdr(3), which musl
   has: the unwinder of a glibc cross gcc (libgcc_eh.a, gcc 12 and later, where glibc is 2.35
   or later) calls it to find the unwind tables of the object that holds a program counter, and
   musl has no such function. scripts/musl-sysroot.sh compiles this into the libunwind.a it
   makes when the cross gcc's unwinder needs it (Debian's mipsel gcc does; its armhf one finds
   ARM's own tables through __gnu_Unwind_Find_exidx instead). Fills the fields the unwinder
   reads; -1 when no loaded object holds PC or it has no PT_GNU_EH_FRAME. The struct's layout
   comes from the cross gcc's glibc headers, which is the layout the unwinder was built with. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>

struct query {
  uintptr_t pc;
  struct dl_find_object *out;
  int found;
};

static int visit(struct dl_phdr_info *info, size_t size, void *data) {
  struct query *q = data;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  void *eh = 0;
  (void)size;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *p = &info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + p->p_vaddr;
    if (p->p_type == PT_LOAD) {
      if (start < lo) lo = start;
      if (start + p->p_memsz > hi) hi = start + p->p_memsz;
    } else if (p->p_type == PT_GNU_EH_FRAME) {
      eh = (void *)start;
    }
  }
  if (q->pc < lo || q->pc >= hi) return 0;
  q->out->dlfo_flags = 0;
  q->out->dlfo_map_start = (void *)lo;
  q->out->dlfo_map_end = (void *)hi;
  q->out->dlfo_link_map = 0;
  q->out->dlfo_eh_frame = eh;
  q->found = eh != 0;
  return 1;
}

int _dl_find_object(void *pc, struct dl_find_object *out) {
  struct query q = {(uintptr_t)pc, out, 0};
  dl_iterate_phdr(visit, &q);
  return q.found ? 0 : -1;
}
