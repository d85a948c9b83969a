//! The kernel's GPIO v2 character-device ABI, as far as `gpio_watch` uses it: the line request
//! (`struct gpio_v2_line_request` and the structures inside it), the `GPIO_V2_GET_LINE_IOCTL`
//! opcode, and the edge event records (`struct gpio_v2_line_event`) read from a line request.
//! Everything here mirrors `include/uapi/linux/gpio.h` (Linux 5.10 and later) and is plain
//! data: building a request and decoding a record are pure functions, with no `unsafe`. The one
//! ioctl that hands a request to the kernel is in `chardev.rs`.
//!
//! The v2 structures were designed to have one layout on every architecture: every 64-bit
//! field is `__aligned_u64` and every implicit hole is an explicit `padding` field. The
//! `const` block below holds the sizes and offsets of `linux/gpio.h` (the same on x86_64,
//! aarch64 and armv7), so a build for any target fails if the Rust layout differs;
//! `tests/gpio_abi.rs` compiles them against the installed header with a C compiler.

use core::fmt;
use core::mem::{offset_of, size_of};

/// `GPIO_V2_LINES_MAX`: lines one request may hold.
pub const LINES_MAX: usize = 64;
/// `GPIO_MAX_NAME_SIZE`: the consumer label, NUL included.
pub const MAX_NAME_SIZE: usize = 32;
/// `GPIO_V2_LINE_NUM_ATTRS_MAX`: attributes one line configuration may hold.
pub const NUM_ATTRS_MAX: usize = 10;

/// `GPIO_V2_LINE_FLAG_INPUT`
pub const FLAG_INPUT: u64 = 1 << 2;
/// `GPIO_V2_LINE_FLAG_EDGE_RISING`
pub const FLAG_EDGE_RISING: u64 = 1 << 4;
/// `GPIO_V2_LINE_FLAG_EDGE_FALLING`
pub const FLAG_EDGE_FALLING: u64 = 1 << 5;
/// `GPIO_V2_LINE_FLAG_BIAS_PULL_UP`
pub const FLAG_BIAS_PULL_UP: u64 = 1 << 8;
/// `GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN`
pub const FLAG_BIAS_PULL_DOWN: u64 = 1 << 9;
/// `GPIO_V2_LINE_FLAG_BIAS_DISABLED`
pub const FLAG_BIAS_DISABLED: u64 = 1 << 10;

/// `GPIO_V2_LINE_ATTR_ID_DEBOUNCE`: the attribute's value is `debounce_period_us`.
pub const ATTR_ID_DEBOUNCE: u32 = 3;

/// `GPIO_V2_LINE_EVENT_RISING_EDGE`: the `id` of a rising edge's record.
pub const EVENT_RISING_EDGE: u32 = 1;
/// `GPIO_V2_LINE_EVENT_FALLING_EDGE`: the `id` of a falling edge's record.
pub const EVENT_FALLING_EDGE: u32 = 2;

/// The value of a line attribute (the anonymous union of `struct gpio_v2_line_attribute`).
/// Only written here, never read, so it needs no `unsafe`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub union AttrValue {
    /// `flags`: for `GPIO_V2_LINE_ATTR_ID_FLAGS`.
    pub flags: u64,
    /// `values`: for `GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES`.
    pub values: u64,
    /// `debounce_period_us`: for [`ATTR_ID_DEBOUNCE`].
    pub debounce_period_us: u32,
}

/// `struct gpio_v2_line_attribute`
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct LineAttribute {
    /// `id`: which member of `value` is meant (`GPIO_V2_LINE_ATTR_ID_*`).
    pub id: u32,
    /// `padding`: must be zero.
    pub padding: u32,
    /// The union.
    pub value: AttrValue,
}

/// `struct gpio_v2_line_config_attribute`: an attribute and the lines it applies to.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct LineConfigAttribute {
    /// `attr`
    pub attr: LineAttribute,
    /// `mask`: bit `i` applies the attribute to `offsets[i]` of the request.
    pub mask: u64,
}

/// `struct gpio_v2_line_config`
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct LineConfig {
    /// `flags`: `GPIO_V2_LINE_FLAG_*` for every line without an attribute that overrides them.
    pub flags: u64,
    /// `num_attrs`: how many of `attrs` are used.
    pub num_attrs: u32,
    /// `padding`: must be zero.
    pub padding: [u32; 5],
    /// `attrs`
    pub attrs: [LineConfigAttribute; NUM_ATTRS_MAX],
}

/// `struct gpio_v2_line_request`: what `GPIO_V2_GET_LINE_IOCTL` reads, and where it writes
/// the new request's fd.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct LineRequest {
    /// `offsets`: the lines, by their offset on the chip.
    pub offsets: [u32; LINES_MAX],
    /// `consumer`: a NUL-terminated label, shown by `gpioinfo`.
    pub consumer: [u8; MAX_NAME_SIZE],
    /// `config`
    pub config: LineConfig,
    /// `num_lines`: how many of `offsets` are used.
    pub num_lines: u32,
    /// `event_buffer_size`: edge events the kernel keeps; 0 takes its default (16 per line).
    pub event_buffer_size: u32,
    /// `padding`: must be zero.
    pub padding: [u32; 5],
    /// `fd`: written by the kernel, the request's fd.
    pub fd: i32,
}

/// `struct gpio_v2_line_event`: one record read from a line request's fd. Its fields are
/// read from the bytes by [`decode`]; the struct is here for its layout.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default)]
pub struct LineEvent {
    /// `timestamp_ns`: when the edge happened, in nanoseconds on `CLOCK_MONOTONIC` (unless
    /// the request asked for another clock).
    pub timestamp_ns: u64,
    /// `id`: [`EVENT_RISING_EDGE`] or [`EVENT_FALLING_EDGE`].
    pub id: u32,
    /// `offset`: the line's offset on the chip.
    pub offset: u32,
    /// `seqno`: the event's number among all the request's events, from 1.
    pub seqno: u32,
    /// `line_seqno`: the event's number among this line's events, from 1.
    pub line_seqno: u32,
    /// `padding`: reserved.
    pub padding: [u32; 6],
}

/// The size of one event record: reads from a line request return whole records.
pub const EVENT_SIZE: usize = size_of::<LineEvent>();

/// `GPIO_V2_GET_LINE_IOCTL`: `_IOWR(0xB4, 0x07, struct gpio_v2_line_request)`.
pub const GET_LINE_IOCTL: rustix::ioctl::Opcode =
    rustix::ioctl::opcode::read_write::<LineRequest>(0xB4, 0x07);

// The numbers of `linux/gpio.h`, identical on x86_64, aarch64 and armv7 (tests/gpio_abi.rs
// compiles them against the header, for all three where their compilers are installed).
const _: () = {
    assert!(size_of::<LineAttribute>() == 16);
    assert!(offset_of!(LineAttribute, id) == 0);
    assert!(offset_of!(LineAttribute, padding) == 4);
    assert!(offset_of!(LineAttribute, value) == 8);
    assert!(size_of::<LineConfigAttribute>() == 24);
    assert!(offset_of!(LineConfigAttribute, attr) == 0);
    assert!(offset_of!(LineConfigAttribute, mask) == 16);
    assert!(size_of::<LineConfig>() == 272);
    assert!(offset_of!(LineConfig, flags) == 0);
    assert!(offset_of!(LineConfig, num_attrs) == 8);
    assert!(offset_of!(LineConfig, padding) == 12);
    assert!(offset_of!(LineConfig, attrs) == 32);
    assert!(size_of::<LineRequest>() == 592);
    assert!(offset_of!(LineRequest, offsets) == 0);
    assert!(offset_of!(LineRequest, consumer) == 256);
    assert!(offset_of!(LineRequest, config) == 288);
    assert!(offset_of!(LineRequest, num_lines) == 560);
    assert!(offset_of!(LineRequest, event_buffer_size) == 564);
    assert!(offset_of!(LineRequest, padding) == 568);
    assert!(offset_of!(LineRequest, fd) == 588);
    assert!(size_of::<LineEvent>() == 48);
    assert!(offset_of!(LineEvent, timestamp_ns) == 0);
    assert!(offset_of!(LineEvent, id) == 8);
    assert!(offset_of!(LineEvent, offset) == 12);
    assert!(offset_of!(LineEvent, seqno) == 16);
    assert!(offset_of!(LineEvent, line_seqno) == 20);
    assert!(offset_of!(LineEvent, padding) == 24);
    // `Opcode` is a `u32`, a C `int` or a C `unsigned long`, by target and rustix backend (an
    // `int` on MIPS musl, where the value is negative): its low 32 bits are the number.
    #[allow(clippy::unnecessary_cast)]
    let opcode = GET_LINE_IOCTL as u32;
    assert!(opcode == 0xC250_B407);
};

/// Which edges to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edges {
    /// Low to high.
    Rising,
    /// High to low.
    Falling,
    /// Both.
    Both,
}

impl Edges {
    /// The names the command line takes.
    pub const NAMES: [&'static str; 3] = ["rising", "falling", "both"];

    /// `rising`, `falling` or `both`.
    pub fn from_name(name: &str) -> Option<Edges> {
        match name {
            "rising" => Some(Edges::Rising),
            "falling" => Some(Edges::Falling),
            "both" => Some(Edges::Both),
            _ => None,
        }
    }

    /// The `GPIO_V2_LINE_FLAG_EDGE_*` flags.
    pub const fn flags(self) -> u64 {
        match self {
            Edges::Rising => FLAG_EDGE_RISING,
            Edges::Falling => FLAG_EDGE_FALLING,
            Edges::Both => FLAG_EDGE_RISING | FLAG_EDGE_FALLING,
        }
    }
}

/// The line's pull resistor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bias {
    /// Left as it is (the board's default, or what the device tree or a previous user set).
    AsIs,
    /// The internal pull-up, for a button that connects the pin to ground.
    PullUp,
    /// The internal pull-down, for a button that connects the pin to 3.3 V.
    PullDown,
    /// No pull resistor: the circuit drives the pin both ways.
    Disabled,
}

impl Bias {
    /// The names the command line takes.
    pub const NAMES: [&'static str; 4] = ["as-is", "pull-up", "pull-down", "disabled"];

    /// `as-is`, `pull-up`, `pull-down` or `disabled`.
    pub fn from_name(name: &str) -> Option<Bias> {
        match name {
            "as-is" => Some(Bias::AsIs),
            "pull-up" => Some(Bias::PullUp),
            "pull-down" => Some(Bias::PullDown),
            "disabled" => Some(Bias::Disabled),
            _ => None,
        }
    }

    /// Its name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Bias::AsIs => "as-is",
            Bias::PullUp => "pull-up",
            Bias::PullDown => "pull-down",
            Bias::Disabled => "disabled",
        }
    }

    /// The `GPIO_V2_LINE_FLAG_BIAS_*` flag, or none.
    pub const fn flags(self) -> u64 {
        match self {
            Bias::AsIs => 0,
            Bias::PullUp => FLAG_BIAS_PULL_UP,
            Bias::PullDown => FLAG_BIAS_PULL_DOWN,
            Bias::Disabled => FLAG_BIAS_DISABLED,
        }
    }
}

/// A request with every field zero, as the kernel wants every unused field and all padding.
pub const fn zeroed_request() -> LineRequest {
    const ATTR: LineConfigAttribute = LineConfigAttribute {
        attr: LineAttribute {
            id: 0,
            padding: 0,
            value: AttrValue { flags: 0 },
        },
        mask: 0,
    };
    LineRequest {
        offsets: [0; LINES_MAX],
        consumer: [0; MAX_NAME_SIZE],
        config: LineConfig {
            flags: 0,
            num_attrs: 0,
            padding: [0; 5],
            attrs: [ATTR; NUM_ATTRS_MAX],
        },
        num_lines: 0,
        event_buffer_size: 0,
        padding: [0; 5],
        fd: 0,
    }
}

/// The request for one input line at `offset` with edge detection: `edges`, the pull
/// resistor `bias`, and a debounce period of `debounce_us` microseconds (0: none). `consumer`
/// is the label `gpioinfo` shows, cut to 31 bytes. The kernel's default event buffer (16
/// events) is kept; a gap in the events' sequence numbers tells when it overflowed.
pub fn line_request(
    offset: u32,
    edges: Edges,
    bias: Bias,
    debounce_us: u32,
    consumer: &str,
) -> LineRequest {
    let mut req = zeroed_request();
    req.offsets[0] = offset;
    req.num_lines = 1;
    let label = &consumer.as_bytes()[..consumer.len().min(MAX_NAME_SIZE - 1)];
    req.consumer[..label.len()].copy_from_slice(label);
    req.config.flags = FLAG_INPUT | edges.flags() | bias.flags();
    if debounce_us > 0 {
        let slot = &mut req.config.attrs[0];
        slot.attr.id = ATTR_ID_DEBOUNCE;
        // A write into the union, whose 8 bytes are already zero: the u32 takes the first 4
        // (the member's offset is 0 whatever the byte order), the others stay zero.
        slot.attr.value.debounce_period_us = debounce_us;
        // Bit 0: the request's first (and only) line.
        slot.mask = 1;
        req.config.num_attrs = 1;
    }
    req
}

/// The kind of an edge event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// [`EVENT_RISING_EDGE`]
    Rising,
    /// [`EVENT_FALLING_EDGE`]
    Falling,
    /// Any other `id`: a newer kernel's, or bytes that are no event record.
    Other(u32),
}

/// One decoded edge event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Rising or falling.
    pub kind: EdgeKind,
    /// The line's offset on its chip.
    pub line: u32,
    /// The event's number among the line's events, from 1 (`line_seqno`); a gap means the
    /// kernel's event buffer overflowed and dropped the events in between.
    pub seq: u32,
    /// The event's number among all the request's events (`seqno`).
    pub request_seq: u32,
    /// When, in nanoseconds on the kernel's clock (`CLOCK_MONOTONIC` by default).
    pub timestamp_ns: u64,
}

/// Decodes one record, in the kernel's layout and the machine's byte order, as read from a
/// line request. Every 48 bytes decode to something: an unknown `id` is
/// [`EdgeKind::Other`]; the reserved padding is ignored.
pub fn decode(record: &[u8; EVENT_SIZE]) -> Edge {
    let u32_at = |at: usize| {
        u32::from_ne_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]])
    };
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&record[offset_of!(LineEvent, timestamp_ns)..][..8]);
    let kind = match u32_at(offset_of!(LineEvent, id)) {
        EVENT_RISING_EDGE => EdgeKind::Rising,
        EVENT_FALLING_EDGE => EdgeKind::Falling,
        id => EdgeKind::Other(id),
    };
    Edge {
        kind,
        line: u32_at(offset_of!(LineEvent, offset)),
        seq: u32_at(offset_of!(LineEvent, line_seqno)),
        request_seq: u32_at(offset_of!(LineEvent, seqno)),
        timestamp_ns: u64::from_ne_bytes(ts),
    }
}

/// `edge rising line 17 seq 3 at 123.456789 s` (the kernel's timestamp, in seconds with
/// microseconds); an unknown kind is `event 7 line 17 ...`.
impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            EdgeKind::Rising => f.write_str("edge rising")?,
            EdgeKind::Falling => f.write_str("edge falling")?,
            EdgeKind::Other(id) => write!(f, "event {id}")?,
        }
        let secs = self.timestamp_ns / 1_000_000_000;
        let micros = self.timestamp_ns % 1_000_000_000 / 1_000;
        write!(
            f,
            " line {} seq {} at {secs}.{micros:06} s",
            self.line, self.seq
        )
    }
}
