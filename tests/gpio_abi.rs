//! `gpio_watch`'s GPIO v2 ABI (examples/gpio_watch/gpio_v2.rs), without GPIO hardware:
//!
//! - event records in the kernel's layout (written here from the offsets of `linux/gpio.h`,
//!   not from the example's struct) decode to the right edges, and any 48 bytes decode without
//!   a panic; the line request is built with the flags and the attribute the kernel expects.
//!   These are pure functions: they run on every target, under qemu-user too.
//! - the structures' sizes, offsets and alignments, the ioctl opcode and the constants are
//!   compiled against `linux/gpio.h` by each C compiler installed (`cc`, and the cross
//!   compilers `aarch64-linux-gnu-gcc` and `arm-linux-gnueabihf-gcc`, whose sysroots carry the
//!   header of their architecture): one `_Static_assert` per number. A compiler or a header
//!   that is missing is reported as `SKIPPED: ...` and the rest still runs. The example's own
//!   `const` block checks the same numbers at compile time on every target it is built for.

#[allow(dead_code)]
#[path = "../examples/gpio_watch/gpio_v2.rs"]
mod gpio_v2;

use gpio_v2::*;
use std::mem::{align_of, offset_of, size_of};
use std::process::{Command, Stdio};

/// A record as the kernel writes it: `struct gpio_v2_line_event` in the machine's byte order,
/// at the header's offsets (timestamp_ns 0, id 8, offset 12, seqno 16, line_seqno 20,
/// padding 24..48).
fn record(timestamp_ns: u64, id: u32, offset: u32, seqno: u32, line_seqno: u32) -> [u8; 48] {
    let mut r = [0u8; 48];
    r[0..8].copy_from_slice(&timestamp_ns.to_ne_bytes());
    r[8..12].copy_from_slice(&id.to_ne_bytes());
    r[12..16].copy_from_slice(&offset.to_ne_bytes());
    r[16..20].copy_from_slice(&seqno.to_ne_bytes());
    r[20..24].copy_from_slice(&line_seqno.to_ne_bytes());
    r
}

#[test]
fn a_rising_edge_decodes_with_its_line_sequence_and_timestamp() {
    let edge = decode(&record(123_456_789_012, 1, 17, 7, 3));
    assert_eq!(
        edge,
        Edge {
            kind: EdgeKind::Rising,
            line: 17,
            seq: 3,
            request_seq: 7,
            timestamp_ns: 123_456_789_012,
        }
    );
    assert_eq!(
        edge.to_string(),
        "edge rising line 17 seq 3 at 123.456789 s"
    );
}

#[test]
fn a_falling_edge_decodes() {
    let edge = decode(&record(5_000_000_001, 2, 4, 1, 1));
    assert_eq!(edge.kind, EdgeKind::Falling);
    assert_eq!(edge.to_string(), "edge falling line 4 seq 1 at 5.000000 s");
}

#[test]
fn an_unknown_event_id_is_kept_and_shown_as_a_number() {
    let edge = decode(&record(0, 9, 0, 1, 1));
    assert_eq!(edge.kind, EdgeKind::Other(9));
    assert_eq!(edge.to_string(), "event 9 line 0 seq 1 at 0.000000 s");
}

#[test]
fn the_reserved_padding_is_ignored() {
    let mut r = record(1_000, 1, 17, 2, 2);
    r[24..].fill(0xA5);
    assert_eq!(decode(&r), decode(&record(1_000, 1, 17, 2, 2)));
}

#[test]
fn extreme_values_decode_and_print() {
    let edge = decode(&record(u64::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX));
    assert_eq!(edge.line, u32::MAX);
    assert_eq!(
        edge.to_string(),
        "event 4294967295 line 4294967295 seq 4294967295 at 18446744073.709551 s"
    );
}

/// Any 48 bytes decode to something and print: no input makes the decoder panic.
#[test]
fn any_48_bytes_decode_without_a_panic() {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..20_000 {
        let mut r = [0u8; EVENT_SIZE];
        for b in r.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let edge = decode(&r);
        assert!(!edge.to_string().is_empty());
    }
}

#[test]
fn a_line_request_is_one_input_line_with_the_edges_and_bias_asked_for() {
    for (edges, want) in [
        (Edges::Rising, FLAG_EDGE_RISING),
        (Edges::Falling, FLAG_EDGE_FALLING),
        (Edges::Both, FLAG_EDGE_RISING | FLAG_EDGE_FALLING),
    ] {
        for (bias, bias_flag) in [
            (Bias::AsIs, 0),
            (Bias::PullUp, FLAG_BIAS_PULL_UP),
            (Bias::PullDown, FLAG_BIAS_PULL_DOWN),
            (Bias::Disabled, FLAG_BIAS_DISABLED),
        ] {
            let req = line_request(17, edges, bias, 0, "gpio_watch");
            assert_eq!(req.num_lines, 1);
            assert_eq!(req.offsets[0], 17);
            assert!(req.offsets[1..].iter().all(|&o| o == 0));
            assert_eq!(req.config.flags, FLAG_INPUT | want | bias_flag);
            assert_eq!(req.config.num_attrs, 0, "no debounce, no attribute");
            assert_eq!(req.event_buffer_size, 0, "the kernel's default");
            // The kernel refuses a request whose padding is not zero.
            assert_eq!(req.padding, [0; 5]);
            assert_eq!(req.config.padding, [0; 5]);
            assert_eq!(&req.consumer[..11], b"gpio_watch\0");
        }
    }
}

#[test]
fn a_debounce_period_is_one_attribute_for_the_first_line() {
    let req = line_request(4, Edges::Both, Bias::PullUp, 5_000, "gpio_watch");
    assert_eq!(req.config.num_attrs, 1);
    assert_eq!(req.config.attrs[0].attr.id, ATTR_ID_DEBOUNCE);
    assert_eq!(req.config.attrs[0].attr.padding, 0);
    assert_eq!(req.config.attrs[0].mask, 1);
    assert!(req.config.attrs[1..]
        .iter()
        .all(|a| a.attr.id == 0 && a.mask == 0));
}

#[test]
fn the_consumer_label_is_cut_to_fit_with_its_nul() {
    let req = line_request(0, Edges::Both, Bias::AsIs, 0, &"x".repeat(40));
    assert_eq!(&req.consumer[..31], "x".repeat(31).as_bytes());
    assert_eq!(req.consumer[31], 0);
}

#[test]
fn the_command_line_names_map_to_the_settings() {
    for name in Edges::NAMES {
        assert!(Edges::from_name(name).is_some(), "{name}");
    }
    for name in Bias::NAMES {
        assert_eq!(Bias::from_name(name).map(Bias::name), Some(name));
    }
    assert_eq!(Edges::from_name("up"), None);
    assert_eq!(Bias::from_name("pull"), None);
}

/// Every number the example takes from `linux/gpio.h`, as a C expression and the example's
/// value on this target.
fn facts() -> Vec<(&'static str, u64)> {
    // A struct's size, alignment and the offset of each field the example uses, named as C
    // names them (`flags`, `values` and `debounce_period_us` are one union in C).
    macro_rules! layout {
        ($c:literal, $t:ty { $($cf:literal => $f:ident),* $(,)? }) => {
            [
                (concat!("sizeof(struct ", $c, ")"), size_of::<$t>() as u64),
                (concat!("_Alignof(struct ", $c, ")"), align_of::<$t>() as u64),
                $((concat!("offsetof(struct ", $c, ", ", $cf, ")"), offset_of!($t, $f) as u64),)*
            ]
        };
    }
    let structs = [
        &layout!("gpio_v2_line_attribute", LineAttribute {
            "id" => id, "padding" => padding,
            "flags" => value, "values" => value, "debounce_period_us" => value,
        })[..],
        &layout!("gpio_v2_line_config_attribute", LineConfigAttribute {
            "attr" => attr, "mask" => mask,
        }),
        &layout!("gpio_v2_line_config", LineConfig {
            "flags" => flags, "num_attrs" => num_attrs, "padding" => padding, "attrs" => attrs,
        }),
        &layout!("gpio_v2_line_request", LineRequest {
            "offsets" => offsets, "consumer" => consumer, "config" => config,
            "num_lines" => num_lines, "event_buffer_size" => event_buffer_size,
            "padding" => padding, "fd" => fd,
        }),
        &layout!("gpio_v2_line_event", LineEvent {
            "timestamp_ns" => timestamp_ns, "id" => id, "offset" => offset, "seqno" => seqno,
            "line_seqno" => line_seqno, "padding" => padding,
        }),
    ];
    let mut facts: Vec<_> = structs.concat();
    // The opcode's 32 bits: `Opcode` is a C `int` on MIPS musl (negative there, so widening it
    // would extend the sign), a `u32` or a C `unsigned long` elsewhere.
    #[allow(clippy::unnecessary_cast)]
    let opcode = u64::from(GET_LINE_IOCTL as u32);
    facts.extend([
        ("GPIO_V2_GET_LINE_IOCTL", opcode),
        ("GPIO_V2_LINES_MAX", LINES_MAX as u64),
        ("GPIO_MAX_NAME_SIZE", MAX_NAME_SIZE as u64),
        ("GPIO_V2_LINE_NUM_ATTRS_MAX", NUM_ATTRS_MAX as u64),
        ("GPIO_V2_LINE_FLAG_INPUT", FLAG_INPUT),
        ("GPIO_V2_LINE_FLAG_EDGE_RISING", FLAG_EDGE_RISING),
        ("GPIO_V2_LINE_FLAG_EDGE_FALLING", FLAG_EDGE_FALLING),
        ("GPIO_V2_LINE_FLAG_BIAS_PULL_UP", FLAG_BIAS_PULL_UP),
        ("GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN", FLAG_BIAS_PULL_DOWN),
        ("GPIO_V2_LINE_FLAG_BIAS_DISABLED", FLAG_BIAS_DISABLED),
        ("GPIO_V2_LINE_ATTR_ID_DEBOUNCE", ATTR_ID_DEBOUNCE as u64),
        ("GPIO_V2_LINE_EVENT_RISING_EDGE", EVENT_RISING_EDGE as u64),
        ("GPIO_V2_LINE_EVENT_FALLING_EDGE", EVENT_FALLING_EDGE as u64),
    ]);
    facts
}

/// A C file that compiles only if `linux/gpio.h` agrees with every fact.
fn probe_source() -> String {
    let mut c = String::from("#include <stddef.h>\n#include <linux/gpio.h>\n\n");
    for (expr, value) in facts() {
        c += &format!(
            "_Static_assert((unsigned long long)({expr}) == {value}ull, \
             \"linux/gpio.h: {expr} is not {value}, as examples/gpio_watch/gpio_v2.rs has it\");\n"
        );
    }
    c
}

/// What a compiler's attempt at the probe came to.
enum Probe {
    /// The header agrees: the machine the compiler targets.
    Agrees(String),
    /// It could not be checked, and why.
    Skipped(String),
}

fn probe_with(compiler: &str, source: &std::path::Path) -> Probe {
    let machine = match Command::new(compiler)
        .arg("-dumpmachine")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(out) => {
            return Probe::Skipped(format!(
                "{compiler} could not be run here (status {})",
                out.status
            ))
        }
        Err(e) => return Probe::Skipped(format!("no {compiler}: {e}")),
    };
    let out = Command::new(compiler)
        .args(["-fsyntax-only", "-Wall"])
        .arg(source)
        .stdin(Stdio::null())
        .output()
        .expect("the compiler ran once already");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Probe::Agrees(machine)
    } else if stderr.contains("linux/gpio.h") && stderr.contains("No such file") {
        Probe::Skipped(format!(
            "{compiler} ({machine}) has no linux/gpio.h (Debian: linux-libc-dev, or the cross \
             compiler's linux-libc-dev-*-cross)"
        ))
    } else {
        panic!("{compiler} ({machine}) disagrees with the example's ABI:\n{stderr}");
    }
}

/// The architecture a compiler's target triple names, as the README and CI name them.
fn arch(machine: &str) -> &'static str {
    match machine.split('-').next().unwrap_or("") {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        a if a.starts_with("arm") => "armv7",
        _ => "other",
    }
}

/// The numbers of `linux/gpio.h`, per architecture, against the example's: sizes, offsets and
/// alignments of the four structures, the ioctl opcode, the flags and ids. The example's
/// values are this target's; its `const` block makes them the same numbers on every target,
/// so one set checks the headers of x86_64, aarch64 and armv7.
#[test]
fn the_structures_and_constants_match_linux_gpio_h() {
    let source =
        std::env::temp_dir().join(format!("picosel_gpio_abi_probe_{}.c", std::process::id()));
    std::fs::write(&source, probe_source()).unwrap();
    // The host's compiler, then each architecture's own (Debian's cross compilers, whose
    // sysroots hold that architecture's linux/gpio.h).
    let mut checked: Vec<&str> = Vec::new();
    let mut why_not: Vec<(&str, String)> = Vec::new();
    for (compiler, package) in [
        ("cc", "gcc"),
        ("x86_64-linux-gnu-gcc", "gcc-x86-64-linux-gnu"),
        ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
        ("arm-linux-gnueabihf-gcc", "gcc-arm-linux-gnueabihf"),
    ] {
        match probe_with(compiler, &source) {
            Probe::Agrees(machine) => {
                eprintln!(
                    "linux/gpio.h for {machine} ({compiler}): {} numbers agree",
                    facts().len()
                );
                checked.push(arch(&machine));
            }
            Probe::Skipped(why) => why_not.push((compiler, format!("{why}; Debian: {package}"))),
        }
    }
    let _ = std::fs::remove_file(&source);
    for (a, compiler) in [
        ("x86_64", "x86_64-linux-gnu-gcc"),
        ("aarch64", "aarch64-linux-gnu-gcc"),
        ("armv7", "arm-linux-gnueabihf-gcc"),
    ] {
        if !checked.contains(&a) {
            let why = why_not
                .iter()
                .find(|(c, _)| *c == compiler)
                .map_or("no compiler for it", |(_, why)| why.as_str());
            eprintln!("SKIPPED: linux/gpio.h for {a} ({why})");
        }
    }
}
