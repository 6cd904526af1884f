//! Every duration that must agree with another, in one place and derived from the invocation's
//! own deadline (Lambda's `deadline`, epoch milliseconds), never from constants that must match
//! template.yaml's timeouts.
//!
//! The lease scheme rests on these inequalities (stated by the tests below, for any timeout):
//! - a holder's work stops before Lambda ends the invocation: `work_until < deadline`;
//! - a lease outlives its holder: it lapses at the holder's deadline plus [`CLOCK_SKEW`], so no
//!   live holder loses it, whatever the function's timeout;
//! - a rollout waiting for a busy service stops waiting with time left to roll out:
//!   `wait_until < work_until`;
//! - Lambda's retry of a failed invocation (one minute later at the soonest, with the same
//!   request id) never waits for the lease its own first attempt left: the lease names that
//!   invocation, and a lease naming the very invocation that meets it has a dead holder.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How far two Lambda hosts' clocks may disagree; leases are written on one and read on another.
pub const CLOCK_SKEW: Duration = Duration::from_secs(2);
/// Lambda's first retry of a failed asynchronous invocation comes this long after the failure
/// (AWS Lambda developer guide, "error handling and automatic retries").
pub const FIRST_ASYNC_RETRY: Duration = Duration::from_secs(60);
/// Kept back from a deploy's deadline to answer and log before Lambda ends the invocation.
const ANSWER_MARGIN: Duration = Duration::from_secs(2);
/// Kept back from verify's deadline for the verdict, the rollback and the writes.
const VERDICT_MARGIN: Duration = Duration::from_secs(20);
/// Kept back from a deploy's work for the rollout itself after waiting for a busy service.
const ROLLOUT_RESERVE: Duration = Duration::from_secs(8);
/// The longest verify's rollback holds a service lease; its held calls are stopped at this.
pub const ROLLBACK_HOLD: Duration = Duration::from_secs(30);
/// Used when the runtime reports no usable deadline (local emulators may send none, or 0), and by
/// direct calls (tests, the CLI) that have none.
pub const FALLBACK_REMAINING: Duration = Duration::from_secs(30);

/// When an invocation ends, on both clocks: the monotonic one for timeouts, the wall clock for
/// leases other hosts read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    at_ms: u64,
    /// The time the invocation had when this was made: margins never take more than a share of it.
    total: Duration,
}

impl Deadline {
    /// From Lambda's `deadline` (epoch ms); a missing or past one gives [`FALLBACK_REMAINING`].
    pub fn from_lambda(deadline_epoch_ms: u64) -> Deadline {
        let now = now_ms();
        if deadline_epoch_ms > now {
            Deadline::after(Duration::from_millis(deadline_epoch_ms - now))
        } else {
            Deadline::after(FALLBACK_REMAINING)
        }
    }

    /// `total` from now.
    pub fn after(total: Duration) -> Deadline {
        Deadline { at: Instant::now() + total, at_ms: now_ms() + total.as_millis() as u64, total }
    }

    /// When Lambda ends the invocation.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// When a deploy stops working, leaving time to answer (never more than half its time).
    pub fn work_until(&self) -> Instant {
        self.at - ANSWER_MARGIN.min(self.total / 2)
    }

    /// When verify's verdict must be in hand (never more than half its time kept back).
    pub fn verdict_by(&self) -> Instant {
        self.at - VERDICT_MARGIN.min(self.total / 2)
    }

    /// Until when a rollout waits for another's lease (never more than a third of its time kept back).
    pub fn wait_until(&self) -> Instant {
        self.work_until() - ROLLOUT_RESERVE.min(self.total / 3)
    }

    /// When a lease taken by this invocation lapses (epoch ms): after the invocation can no longer run.
    pub fn lease_expires_at_ms(&self) -> u64 {
        self.at_ms + CLOCK_SKEW.as_millis() as u64
    }
}

/// The first pause between two reads of another rollout's lease; doubled up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(25);
/// The longest pause between two reads of another rollout's lease.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Polling a lease another rollout holds: pauses of 25 ms, doubling to 1 s, never past `until`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pause: Duration,
    until: Instant,
}

impl Backoff {
    /// Pauses that end by `until`.
    pub fn until(until: Instant) -> Backoff {
        Backoff { pause: FIRST_PAUSE, until }
    }

    /// The next pause, counted from `now`, or `None` when it would pass `until` (the flows sleep it:
    /// [`crate::flows::lease::pause`]).
    pub fn next(&mut self, now: Instant) -> Option<Duration> {
        if now + self.pause >= self.until {
            return None;
        }
        let pause = self.pause;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        Some(pause)
    }
}

/// The time verify gives a smoke test under a function timeout of `verify_timeout_s`: the
/// timeout less the margin kept for the verdict, the rollback and the writes.
pub fn smoke_budget_ms(verify_timeout_s: u64) -> u64 {
    Duration::from_secs(verify_timeout_s).saturating_sub(VERDICT_MARGIN).as_millis() as u64
}

/// Now, in epoch milliseconds (the clock leases expire by).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Epoch seconds of epoch milliseconds (CloudWatch's windows are in seconds).
pub fn epoch_s(ms: u64) -> i64 {
    i64::try_from(ms / 1000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_outlives_its_holder_and_every_wait_leaves_time_to_roll_out() {
        // Lambda's whole range of timeouts, and the deploy function's own 30 s.
        for timeout in [1, 3, 10, 30, 60, 300, 900].map(Duration::from_secs) {
            let d = Deadline::after(timeout);
            assert!(d.work_until() < d.at(), "{timeout:?}: work stops before Lambda ends the invocation");
            assert!(d.verdict_by() < d.at(), "{timeout:?}");
            assert!(d.wait_until() < d.work_until(), "{timeout:?}: a wait leaves time to roll out");
            assert!(d.wait_until() > Instant::now(), "{timeout:?}: and some time to wait");
            let runs_until_ms = now_ms() + timeout.as_millis() as u64;
            assert!(d.lease_expires_at_ms() >= runs_until_ms + CLOCK_SKEW.as_millis() as u64 - 5, "{timeout:?}");
        }
        // With the deploy function's 30 s timeout a dead holder's lease has lapsed before Lambda
        // retries any invocation, even one it never named.
        let deploy = Deadline::after(Duration::from_secs(30));
        assert!(deploy.lease_expires_at_ms() < now_ms() + FIRST_ASYNC_RETRY.as_millis() as u64);
        assert_eq!(deploy.wait_until() + ROLLOUT_RESERVE + ANSWER_MARGIN, deploy.at());
    }

    #[test]
    fn a_missing_deadline_gives_the_fallback() {
        let d = Deadline::from_lambda(0);
        let left = d.at().duration_since(Instant::now());
        assert!(left > FALLBACK_REMAINING - Duration::from_secs(1) && left <= FALLBACK_REMAINING, "{left:?}");
        let d = Deadline::from_lambda(now_ms() + 300_000);
        let v = d.verdict_by().duration_since(Instant::now());
        assert!(v > Duration::from_secs(279) && v <= Duration::from_secs(280), "{v:?}");
        assert_eq!(smoke_budget_ms(900), 880_000);
    }
}
