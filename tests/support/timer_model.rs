//! A byte-driven check of the timer table ([`picosel::Timers`]) against a plain model: a list
//! of armed timers searched linearly, with the table's documented rules (earliest deadline
//! first, ties in the order the deadlines were set; periodic timers stay on their grid and
//! count the periods they skipped, and leave the table after the last grid point that fits in
//! an `Instant`; stale ids name nothing).
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/timers.rs`) and `tests/model.rs`. [`run`]
//! panics on the first disagreement.

use picosel::{Error, Expired, Instant, TimerId, Timers};
use std::time::Duration;

struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos += 1;
        b
    }

    fn byte(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }

    fn u64(&mut self) -> u64 {
        let mut v = [0; 8];
        for b in &mut v {
            *b = self.byte();
        }
        u64::from_le_bytes(v)
    }

    /// A time: mostly small offsets from `base`, sometimes anything (near 0 and u64::MAX too).
    fn time(&mut self, base: u64) -> u64 {
        match self.byte() % 8 {
            0 => self.u64(),
            1 => u64::MAX - u64::from(self.byte()),
            2 => u64::from(self.byte()),
            _ => base.saturating_add(u64::from(self.byte()) * 7),
        }
    }

    fn period(&mut self) -> Option<u64> {
        match self.byte() % 6 {
            0 | 1 => None,
            2 => Some(0),
            3 => Some(self.u64()),
            _ => Some(u64::from(self.byte() % 40)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct ModelTimer {
    deadline: u64,
    period: u64,
    seq: u64,
    data: u32,
}

struct Model {
    /// Every id the table gave out, with the timer while it is armed.
    ids: Vec<(TimerId, Option<ModelTimer>)>,
    seq: u64,
}

impl Model {
    fn armed(&self) -> impl Iterator<Item = (usize, &ModelTimer)> {
        self.ids
            .iter()
            .enumerate()
            .filter_map(|(i, (_, t))| t.as_ref().map(|t| (i, t)))
    }

    fn len(&self) -> usize {
        self.armed().count()
    }

    /// The next timer to fire: earliest deadline, then earliest set.
    fn first(&self) -> Option<usize> {
        self.armed()
            .min_by_key(|(_, t)| (t.deadline, t.seq))
            .map(|(i, _)| i)
    }

    fn check<const T: usize>(&self, timers: &Timers<u32, T>) {
        assert_eq!(timers.len(), self.len(), "len");
        assert_eq!(timers.is_empty(), self.len() == 0);
        let want = self.first().and_then(|i| self.ids[i].1).map(|t| t.deadline);
        assert_eq!(
            timers.next_deadline().map(Instant::as_nanos),
            want,
            "next_deadline"
        );
        for (id, t) in &self.ids {
            assert_eq!(timers.contains(*id), t.is_some(), "contains({id:?})");
            assert_eq!(
                timers.deadline(*id).map(Instant::as_nanos),
                t.map(|t| t.deadline),
                "deadline({id:?})"
            );
        }
    }
}

/// Runs one input: the first byte picks the capacity; the rest is ops until it is used up.
pub fn run(data: &[u8]) {
    let mut b = Bytes { data, pos: 0 };
    match b.byte() % 5 {
        0 => run_t::<0>(b),
        1 => run_t::<1>(b),
        2 => run_t::<3>(b),
        3 => run_t::<8>(b),
        _ => run_t::<17>(b),
    }
}

fn run_t<const T: usize>(mut b: Bytes<'_>) {
    let mut timers = Timers::<u32, T>::new();
    let mut m = Model {
        ids: Vec::new(),
        seq: 0,
    };
    let mut now: u64 = 1000;
    let mut data = 0u32;
    while let Some(op) = b.next() {
        match op % 6 {
            0 | 1 => {
                let deadline = b.time(now);
                let period = b.period();
                data += 1;
                let got = timers.add(
                    Instant::from_nanos(deadline),
                    period.map(Duration::from_nanos),
                    data,
                );
                match (got, period) {
                    (Err(e), Some(0)) => assert_eq!(e, Error::InvalidPeriod, "zero period"),
                    (Ok(_), Some(0)) => panic!("zero period accepted"),
                    (Err(e), _) => {
                        assert_eq!(e, Error::Full);
                        assert_eq!(m.len(), T, "Full below capacity");
                    }
                    (Ok(id), _) => {
                        assert!(m.len() < T, "add beyond capacity");
                        assert!(
                            m.ids.iter().all(|(old, _)| *old != id),
                            "id {id:?} given out twice"
                        );
                        m.seq += 1;
                        let t = ModelTimer {
                            deadline,
                            period: period.unwrap_or(0),
                            seq: m.seq,
                            data,
                        };
                        m.ids.push((id, Some(t)));
                    }
                }
            }
            2 => {
                // Cancel any id ever given out: live ones succeed once, stale ones never.
                if m.ids.is_empty() {
                    continue;
                }
                let i = b.byte() as usize % m.ids.len();
                let (id, t) = m.ids[i];
                match (timers.cancel(id), t) {
                    (Ok(h), Some(t)) => {
                        assert_eq!(h, t.data);
                        m.ids[i].1 = None;
                    }
                    (Err(Error::NotRegistered), None) => {}
                    (got, want) => panic!("cancel({id:?}) = {got:?}, model {want:?}"),
                }
            }
            3 | 4 => {
                // Time moves on (mostly forward), then everything due fires.
                now = b.time(now);
                for _ in 0..64 {
                    let got = timers.expire(Instant::from_nanos(now));
                    let want = expire(&mut m, now);
                    assert_eq!(got, want, "expire({now})");
                    if got.is_none() {
                        break;
                    }
                }
            }
            _ => {
                // Only what is due fires: nothing, when `now` is before the first deadline.
                if let Some(d) = timers.next_deadline() {
                    if d.as_nanos() > 0 {
                        let before = Instant::from_nanos(d.as_nanos() - 1);
                        assert_eq!(timers.expire(before), None, "fired early");
                    }
                }
            }
        }
        m.check(&timers);
    }
}

/// The model's `expire`.
fn expire(m: &mut Model, now: u64) -> Option<Expired<u32>> {
    let i = m.first()?;
    let (id, t) = m.ids[i];
    let t = t?;
    if t.deadline > now {
        return None;
    }
    let mut missed = 0;
    match (now - t.deadline).checked_div(t.period) {
        // Period 0: a one-shot timer, gone once fired.
        None => m.ids[i].1 = None,
        Some(skipped) => {
            missed = u32::try_from(skipped).unwrap_or(u32::MAX);
            // The first grid point after `now`; past the end of time (u64 nanoseconds) there is
            // none, and this was the timer's last firing.
            let next = u128::from(t.deadline) + (u128::from(skipped) + 1) * u128::from(t.period);
            m.ids[i].1 = u64::try_from(next).ok().map(|deadline| {
                m.seq += 1;
                ModelTimer {
                    deadline,
                    seq: m.seq,
                    ..t
                }
            });
        }
    }
    Some(Expired {
        id,
        data: t.data,
        deadline: Instant::from_nanos(t.deadline),
        missed,
    })
}
