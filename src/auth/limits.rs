//! Per-client rate limiting: a token bucket per caller name (`limits.rate_per_second` with a
//! burst of `limits.rate_burst`). A refused call learns how long to wait (`Retry-After`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<std::sync::Arc<str>, Bucket>>,
}

impl RateLimiter {
    /// `rate` requests per second per client, bursts up to `burst`; a rate of 0 means no limit.
    pub fn new(rate: u32, burst: u32) -> RateLimiter {
        RateLimiter { rate: rate as f64, burst: burst.max(1) as f64, buckets: Mutex::new(HashMap::new()) }
    }

    pub fn enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// `Ok` to go ahead, or `Err(seconds to wait)`.
    pub fn check(&self, client: &std::sync::Arc<str>) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let Ok(mut map) = self.buckets.lock() else { return Ok(()) };
        // Bounded memory: forget clients that have been quiet long enough to be full again.
        if map.len() > 10_000 {
            let full_after = self.burst / self.rate;
            map.retain(|_, b| now.duration_since(b.at).as_secs_f64() < full_after);
        }
        let b = map.entry(client.clone()).or_insert(Bucket { tokens: self.burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusal_with_a_wait() {
        let l = RateLimiter::new(1, 3);
        let c: std::sync::Arc<str> = "a".into();
        assert!(l.check(&c).is_ok());
        assert!(l.check(&c).is_ok());
        assert!(l.check(&c).is_ok());
        assert_eq!(l.check(&c), Err(1));
        // Another client has its own bucket.
        assert!(l.check(&"b".into()).is_ok());
        // Zero: no limit.
        let off = RateLimiter::new(0, 0);
        for _ in 0..100 {
            assert!(off.check(&c).is_ok());
        }
    }
}
