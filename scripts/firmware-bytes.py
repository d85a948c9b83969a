"""Where picosel's bytes go in the firmware echo daemon: called by scripts/pi-test.sh with
unstripped builds of firmware/'s echo-daemon and bare-echo, picosel's share of the stripped
pair and the target. Prints a Markdown block (between firmware-bytes markers) of what
echo-daemon has over bare-echo, function by function from the symbol tables (`nm -S`), plus
the read-only data; what is left of the share (small functions, alignment) is one row.

Usage: firmware-bytes.py ECHO_DAEMON BARE_ECHO SHARE TARGET
"""
import re
import subprocess
import sys

# A function whose size differs by less than this is counted in the last row.
SMALL = 32


def short(name):
    """`<picosel::selector::Selector<picosel::backend::epoll::Epoll, u8, 17>>::wait_slow`
    -> `Selector::wait_slow`: no generic arguments, no trait, the last two path segments."""
    prev = None
    while prev != name:
        prev = name
        name = re.sub(r"::<[^<>]*>", "", name)
        name = re.sub(r"(\w)<[^<>]*>", r"\1", name)
        name = re.sub(r"<([^<>]*?) as [^<>]*>", r"\1", name)
        name = re.sub(r"<([^<>]*)>", r"\1", name)
    return "::".join(name.split("::")[-2:])


def symbols(path):
    """Function name -> bytes; the two binaries' crate names are dropped so that the same
    function (the shared `common.rs` and `start.rs`) has the same name in both."""
    out = subprocess.run(["nm", "-C", "-S", path], capture_output=True, text=True, check=True)
    sizes = {}
    for line in out.stdout.splitlines():
        f = line.split(None, 3)
        if len(f) == 4 and f[2] in "tTwW":
            name = re.sub(r"\b(echo_daemon|bare_echo)::", "", f[3])
            sizes[name] = sizes.get(name, 0) + int(f[1], 16)
    return sizes


def section(path, name):
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True, check=True)
    pattern = r"\s%s\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s" % re.escape(name)
    for line in out.stdout.splitlines():
        m = re.search(pattern, line)
        if m:
            return int(m.group(1), 16)
    return 0


def main():
    daemon, bare, share, target = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    d, b = symbols(daemon), symbols(bare)
    rows = []
    for name, size in d.items():
        delta = size - b.get(name, 0)
        if delta < SMALL:
            continue
        if name == "start::entry":
            what = ("the daemon's `main`, with what picosel inlines into it (`new`, `select`, "
                    "the events' `next`, `modify`), over the bare loop's")
        elif "picosel::" in name:
            what = "`%s`" % short(name)
        elif name.startswith("compiler_builtins::"):
            what = "`%s` (compiler-builtins), which only `echo-daemon` links" % name.split("::")[-1]
        else:
            what = "`%s`, which only `echo-daemon` links" % short(name)
        rows.append((delta, what))
    rows.sort(key=lambda r: (-r[0], r[1]))
    rodata = section(daemon, ".rodata") - section(bare, ".rodata")
    rows.append((rodata, "read-only data (tables, constants) over the bare loop's"))
    rest = share - sum(r[0] for r in rows)
    rows.append((rest, "the rest: smaller functions and alignment, less what only the bare loop has"))
    print("<!-- firmware-bytes: begin (written by `bash scripts/pi-test.sh --write-docs`) -->")
    print("Where picosel's %s bytes on `%s` go, from the symbol tables of unstripped builds of "
          "the same two daemons (`nm -S`: `echo-daemon` minus `bare-echo`, function by "
          "function), largest first:" % (format(share, ","), target))
    print()
    print("| Bytes | What |")
    print("|---:|---|")
    for size, what in rows:
        print("| %s | %s |" % (format(size, ","), what))
    print("<!-- firmware-bytes: end -->")


main()
