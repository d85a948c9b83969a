//! The README's memory figures, measured: `size_of` of the main types, written into the README
//! between the `sizes` markers by `PICOSEL_BLESS=1 cargo test --test sizes`, and checked
//! against it by every `cargo test` on x86_64 (the target the README describes). On other
//! targets the test prints the table for that target instead (`-- --nocapture`), so the ARM
//! runs under qemu stay green and still show their figures.

use picosel::{
    EpollEventLoop, EpollSelector, PollEventLoop, PollSelector, SelectEventLoop, SelectSelector,
};
use std::fmt::Write as _;
use std::mem::size_of;

const BEGIN: &str =
    "<!-- sizes: begin (written by `PICOSEL_BLESS=1 cargo test --test sizes`) -->\n";
const END: &str = "<!-- sizes: end -->\n";

/// Thousands separated by commas, as the README writes numbers.
fn n(v: usize) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One row: the six types at capacity `N` (selectors with `usize` data, loops with `()`
/// context and 16 timers).
fn row<const N: usize>() -> [usize; 6] {
    [
        size_of::<EpollSelector<usize, N>>(),
        size_of::<PollSelector<usize, N>>(),
        size_of::<SelectSelector<usize, N>>(),
        size_of::<EpollEventLoop<(), N, 16>>(),
        size_of::<PollEventLoop<(), N, 16>>(),
        size_of::<SelectEventLoop<(), N, 16>>(),
    ]
}

fn table() -> String {
    let rows = [
        (16, row::<16>()),
        (64, row::<64>()),
        (256, row::<256>()),
        (1024, row::<1024>()),
        (4096, row::<4096>()),
    ];
    let mut t = String::new();
    t.push_str(
        "| N | `EpollSelector` | `PollSelector` | `SelectSelector` | `EpollEventLoop` | \
         `PollEventLoop` | `SelectEventLoop` |\n|---|---|---|---|---|---|---|\n",
    );
    for (cap, sizes) in rows {
        let cells: Vec<String> = sizes.iter().map(|&s| n(s)).collect();
        writeln!(t, "| {cap} | {} |", cells.join(" | ")).unwrap();
    }
    // Each registration costs the same at every N: the slope between two rows, exact.
    let (lo, hi) = (rows[1].1, rows[3].1);
    let per = |i: usize| (hi[i] - lo[i]) / (1024 - 64);
    let per_timer =
        (size_of::<EpollEventLoop<(), 64, 32>>() - size_of::<EpollEventLoop<(), 64, 16>>()) / 16;
    let base = size_of::<EpollEventLoop<(), 1, 0>>() - per(3);
    writeln!(
        t,
        "\nEach registration adds {} bytes to a selector on epoll, {} on poll and {} on select \
         (with `usize` data), and {}, {} and {} to an event loop; each timer {} bytes. The \
         fixed part of an event loop on epoll is {} bytes plus the context{}.",
        per(0),
        per(1),
        per(2),
        per(3),
        per(4),
        per(5),
        per_timer,
        n(base),
        if cfg!(feature = "signal") {
            " (the signal handler table included)"
        } else {
            ""
        },
    )
    .unwrap();
    t
}

#[test]
fn readme_memory_figures_are_measured() {
    let generated = format!(
        "{BEGIN}`size_of` in bytes on {}, selectors with `usize` data, event loops with `()` \
         context and 16 timers:\n\n{}{END}",
        std::env::consts::ARCH,
        table()
    );
    if !cfg!(all(
        target_arch = "x86_64",
        feature = "signal",
        feature = "std"
    )) {
        println!("{generated}");
        return;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let start = readme
        .find(BEGIN)
        .expect("README has the sizes begin marker");
    let end = readme[start..]
        .find(END)
        .expect("README has the sizes end marker")
        + start;
    let current = &readme[start..end + END.len()];
    if std::env::var_os("PICOSEL_BLESS").is_some() {
        let updated = readme.replacen(current, &generated, 1);
        std::fs::write(path, updated).expect("write README.md");
        return;
    }
    assert_eq!(
        current, generated,
        "README's memory figures are stale: run `PICOSEL_BLESS=1 cargo test --test sizes`"
    );
}
