//! Retry timing after a send that certainly did not happen (docs/reliability.md §2 "Timing knobs"):
//! `d = min(cap, base·2ⁿ)`, then uniform in `[d/2, d]` (jitter, so that many jobs failed by
//! one outage do not retry in lockstep); `Retry-After` is a floor.

use std::time::Duration;

/// The wait before retry number `retry` (1 for the first retry). `unit` is a random number in
/// `[0, 1)` supplied by the caller, so this stays pure.
pub fn delay(
    retry: u32,
    base: Duration,
    cap: Duration,
    retry_after: Option<Duration>,
    unit: f64,
) -> Duration {
    let exp = retry.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(cap);
    let unit = unit.clamp(0.0, 1.0);
    let jittered = full.mul_f64(0.5 + unit / 2.0);
    match retry_after {
        Some(floor) => jittered.max(floor),
        None => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BASE: Duration = Duration::from_secs(5);
    const CAP: Duration = Duration::from_secs(1800);

    #[test]
    fn doubles_from_the_base_up_to_the_cap() {
        assert_eq!(delay(1, BASE, CAP, None, 1.0), Duration::from_secs(5));
        assert_eq!(delay(2, BASE, CAP, None, 1.0), Duration::from_secs(10));
        assert_eq!(delay(3, BASE, CAP, None, 1.0), Duration::from_secs(20));
        assert_eq!(delay(10, BASE, CAP, None, 1.0), CAP);
        assert_eq!(delay(1000, BASE, CAP, None, 1.0), CAP);
        assert_eq!(
            delay(1, BASE, CAP, None, 0.0),
            Duration::from_millis(2500),
            "the lower half of the jitter range"
        );
    }

    #[test]
    fn retry_after_is_a_floor() {
        assert_eq!(
            delay(1, BASE, CAP, Some(Duration::from_secs(60)), 0.3),
            Duration::from_secs(60)
        );
        assert_eq!(
            delay(8, BASE, CAP, Some(Duration::from_secs(2)), 1.0),
            Duration::from_secs(640)
        );
    }

    proptest! {
        #[test]
        fn always_within_half_to_full_of_the_capped_exponential(retry in 1u32..64, unit in 0.0f64..1.0) {
            let d = delay(retry, BASE, CAP, None, unit);
            let full = BASE.saturating_mul(1u32 << (retry - 1).min(30)).min(CAP);
            prop_assert!(d >= full / 2 && d <= full);
        }
    }
}
