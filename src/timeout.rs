//! Timeouts on their way to the kernel: rounded up to whole milliseconds once, cut into the
//! chunks the syscalls can take, and handed to the backend as a `Duration`, which it turns
//! into the kernel's timespec with [`timespec`].

use core::time::Duration;
use rustix::event::{Nsecs, Timespec};

/// The longest wait one syscall takes: `epoll_wait(2)` and poll(2) take a C `int` of
/// milliseconds (24.8 days).
pub(crate) const MAX_CHUNK: Duration = Duration::from_millis(i32::MAX as u64);

/// Rounds up to whole milliseconds, the unit of `epoll_wait(2)` and poll(2): rounding down would
/// turn a 0.5 ms wait into a 0 ms poll and its caller into a busy loop. Saturates at
/// `Duration::MAX` (a wait of 584 billion years).
#[inline]
pub(crate) fn round_up_ms(d: Duration) -> Duration {
    match d.subsec_nanos() % 1_000_000 {
        0 => d,
        part => d.saturating_add(Duration::from_nanos(u64::from(1_000_000 - part))),
    }
}

/// The next chunk of a wait of `left` (whole milliseconds), and what is left after it. A wait
/// longer than [`MAX_CHUNK`] is made of several; a chunk that timed out has lasted at least
/// its length (the kernel never returns early on a timeout), so no clock is read to know what
/// is left.
#[inline]
pub(crate) fn next_chunk(left: Option<Duration>) -> (Option<Duration>, Duration) {
    match left {
        None => (None, Duration::ZERO),
        // `d > MAX_CHUNK`: the saturating form never saturates, and has no panic path.
        Some(d) if d > MAX_CHUNK => (Some(MAX_CHUNK), d.saturating_sub(MAX_CHUNK)),
        Some(d) => (Some(d), Duration::ZERO),
    }
}

/// The kernel's timespec for a backend's wait; `None` blocks without limit. A duration past
/// `i64::MAX` seconds is clamped there (rustix then refuses it with `EINVAL` rather than
/// wrapping); the core never passes more than [`MAX_CHUNK`].
#[inline]
pub(crate) fn timespec(timeout: Option<Duration>) -> Option<Timespec> {
    timeout.map(|d| Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // Below 10^9, so it fits `Nsecs`, which is a C `long` (32 bits) where rustix goes
        // through a 32-bit C library (MIPS musl), 64 bits elsewhere: infallible there only.
        #[allow(clippy::unnecessary_fallible_conversions)]
        tv_nsec: Nsecs::try_from(d.subsec_nanos()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn timeouts_round_up_to_whole_ms() {
        assert_eq!(round_up_ms(Duration::ZERO), Duration::ZERO);
        assert_eq!(round_up_ms(Duration::from_micros(1)), MS);
        assert_eq!(round_up_ms(Duration::from_micros(1500)), 2 * MS);
        assert_eq!(round_up_ms(7 * MS), 7 * MS);
        assert_eq!(round_up_ms(Duration::MAX), Duration::MAX);
    }

    /// A wait longer than `i32::MAX` ms (24.8 days) is made of chunks that add up to all of
    /// it, instead of being clamped to the first.
    #[test]
    fn timeouts_over_i32_max_ms_wait_the_whole_time() {
        assert_eq!(next_chunk(None), (None, Duration::ZERO));
        assert_eq!(
            next_chunk(Some(Duration::ZERO)),
            (Some(Duration::ZERO), Duration::ZERO)
        );
        assert_eq!(
            next_chunk(Some(MAX_CHUNK)),
            (Some(MAX_CHUNK), Duration::ZERO)
        );
        assert_eq!(next_chunk(Some(MAX_CHUNK + MS)), (Some(MAX_CHUNK), MS));
        // 60 days: three chunks, adding up to exactly the whole wait.
        let sixty_days = Duration::from_secs(60 * 86_400);
        let (mut left, mut total, mut chunks) = (Some(sixty_days), Duration::ZERO, 0);
        loop {
            let (c, after) = next_chunk(left);
            let c = c.unwrap();
            assert!(c <= MAX_CHUNK);
            total += c;
            chunks += 1;
            if after.is_zero() {
                break;
            }
            left = Some(after);
        }
        assert_eq!((total, chunks), (sixty_days, 3));
        // The longest Duration does not overflow anything.
        let (c, after) = next_chunk(Some(round_up_ms(Duration::MAX)));
        assert_eq!(c, Some(MAX_CHUNK));
        assert!(after > Duration::from_secs(u64::MAX / 2));
    }

    #[test]
    fn timespecs_keep_the_whole_duration() {
        let ts = |d| timespec(Some(d)).map(|t| (t.tv_sec, t.tv_nsec));
        assert_eq!(ts(MAX_CHUNK), Some((2_147_483, 647_000_000)));
        assert_eq!(ts(1_999 * MS), Some((1, 999_000_000)));
        assert_eq!(ts(Duration::MAX), Some((i64::MAX, 999_999_999)));
        assert!(timespec(None).is_none());
    }
}
