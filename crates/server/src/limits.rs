//! Per-key rate limits (GCRA, through the `governor` crate).
//!
//! Each API key has its own bucket: `rate_limit_per_second` requests per
//! second on average, with `rate_limit_burst` at once. A refused request
//! answers 429 `rate.limited` with `Retry-After`, in whole seconds,
//! rounded up so a client that waits that long is admitted.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The limiter; `None` inside when limiting is off.
#[derive(Debug)]
pub struct RateLimits {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl RateLimits {
    /// `per_second` requests per second per key with bursts of `burst`;
    /// 0 turns limiting off.
    pub fn new(per_second: u32, burst: u32) -> RateLimits {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        RateLimits {
            limiter,
            clock: DefaultClock::default(),
        }
    }

    /// `Ok` when `key` may make a request now, else the seconds to wait.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        // Keys are few (one per client); the lookup by &str needs an owned
        // String only for a key seen for the first time.
        l.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets keys whose buckets are full again (bounded memory when
    /// many keys come and go). Called periodically.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn burst_then_refused_with_a_wait() {
        let l = RateLimits::new(1, 3);
        for _ in 0..3 {
            assert_eq!(l.check("k"), Ok(()));
        }
        let wait = l.check("k").unwrap_err();
        assert!((1..=1).contains(&wait), "{wait}");
        // Another key has its own bucket.
        assert_eq!(l.check("other"), Ok(()));
    }

    #[test]
    fn zero_turns_it_off() {
        let l = RateLimits::new(0, 0);
        for _ in 0..10_000 {
            assert_eq!(l.check("k"), Ok(()));
        }
    }
}
