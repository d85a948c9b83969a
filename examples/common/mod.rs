//! Small pieces the examples share: argument errors, a bounded byte buffer, timestamps.
//!
//! This is `examples/common/mod.rs`, not `examples/common.rs`, so cargo does not build it as an
//! example of its own; each example includes it with `mod common;`.

// Each example uses a different part of this module.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Prints `error: MSG` and the usage line on stderr and exits with status 2 (the usual exit
/// status for a command-line mistake).
pub fn usage_error(usage: &str, msg: &str) -> ! {
    eprintln!("error: {msg}\nusage: {usage}");
    std::process::exit(2)
}

/// Prints the usage line on stdout and exits 0 when `arg` asks for help.
pub fn maybe_help(usage: &str, arg: &str) {
    if arg == "-h" || arg == "--help" {
        println!("usage: {usage}");
        std::process::exit(0)
    }
}

/// Parses `HOST:PORT` (an IP address, not a name: these examples do not resolve names).
pub fn parse_addr(usage: &str, s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| usage_error(usage, &format!("not an IP:PORT address: {s:?}")))
}

/// The value after option `name`, or a usage error.
pub fn option_value(usage: &str, name: &str, value: Option<String>) -> String {
    value.unwrap_or_else(|| usage_error(usage, &format!("{name} needs a value")))
}

/// Bytes waiting in a fixed slice that the caller owns: `slice[start..end]`.
///
/// Reading appends at `end`, writing consumes from `start`; when the window reaches the end of
/// the slice with room before `start`, the bytes are moved to the front. The slice is never
/// grown, which is what keeps a slow peer from making a server use more memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    start: usize,
    end: usize,
}

impl Window {
    /// The number of bytes waiting.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether `cap` bytes are waiting: no room to read more.
    pub fn is_full(&self, cap: usize) -> bool {
        self.len() >= cap
    }

    /// Lets `read` fill the free part of `slice` and keeps what it read.
    ///
    /// Returns what `read` returned; `Ok(0)` means end of file (or no room: check
    /// [`is_full`](Self::is_full) first).
    pub fn fill<E>(
        &mut self,
        slice: &mut [u8],
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        if self.end == slice.len() && self.start > 0 {
            slice.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = read(&mut slice[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Lets `write` take the waiting bytes and drops what it took.
    pub fn drain<E>(
        &mut self,
        slice: &[u8],
        write: impl FnOnce(&[u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let n = write(&slice[self.start..self.end])?;
        self.start += n;
        if self.start == self.end {
            // Empty again: start over at the front so the next read gets the whole slice.
            self.start = 0;
            self.end = 0;
        }
        Ok(n)
    }

    /// Forgets the waiting bytes.
    pub fn clear(&mut self) {
        *self = Window::default();
    }
}

/// Time since an arbitrary fixed point (boot, on Linux), from `CLOCK_MONOTONIC`: it never jumps
/// when the wall clock is set (by NTP, or by hand on a Pi without a real-time clock).
pub fn monotonic() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The wall clock as UTC ISO 8601 with milliseconds, for example `2026-11-26T13:55:01.123Z`.
pub fn wall_clock() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    let mut out = String::with_capacity(24);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        since.subsec_millis()
    );
    out
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian calendar (Howard Hinnant's
/// `civil_from_days`): no time-zone database needed for UTC.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
