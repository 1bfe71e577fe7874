//! The timing knobs of the scheduler and the carrier client (docs/reliability.md "Timing
//! knobs"): the production values, and the short ones the fault tests run with.

use std::time::Duration as StdDuration;

use crate::twilio::client::ClientTimeouts;

/// Timing knobs (docs/reliability.md §2). Production values by default; the fault tests use the
/// short ones so each scenario ends in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub lease: StdDuration,
    pub backoff_base: StdDuration,
    pub backoff_cap: StdDuration,
    /// Counted from a job's due time; past it a text that still cannot go is `dead` (stale).
    pub retry_budget: StdDuration,
    pub reconcile_first_look: StdDuration,
    /// The least gap between the two listings that must both miss a text.
    pub reconcile_gap: StdDuration,
    /// The later "absent" listing is at least this long after the send started.
    pub reconcile_min_age: StdDuration,
    /// How often a worker looks when no `NOTIFY` arrives.
    pub poll_interval: StdDuration,
    pub send: ClientTimeouts,
    /// Jobs a worker runs at once.
    pub concurrency: usize,
    /// Most jobs claimed per statement.
    pub batch: usize,
    /// Claim loops per worker: while one waits for its commit, another claims.
    pub claimers: usize,
    /// Tries of a Lookup before the line type counts as unknown (docs/compliance.md R8).
    pub lookup_attempts: u32,
    /// The lead API's rate per key (docs/leads.md): a burst, then one request a second.
    pub api_burst: u32,
    /// An outbound webhook's or Follow Up Boss's answer is waited for this long at most.
    pub webhook_timeout: StdDuration,
    /// Deliveries (webhooks, Follow Up Boss) made at once: their own slots, so a slow
    /// receiver never holds a text's.
    pub webhook_concurrency: usize,
}

impl Timing {
    pub fn production() -> Timing {
        Timing {
            lease: StdDuration::from_secs(60),
            backoff_base: StdDuration::from_secs(5),
            backoff_cap: StdDuration::from_secs(30 * 60),
            retry_budget: StdDuration::from_secs(2 * 3600),
            reconcile_first_look: StdDuration::from_secs(5),
            reconcile_gap: StdDuration::from_secs(60),
            reconcile_min_age: StdDuration::from_secs(120),
            poll_interval: StdDuration::from_secs(1),
            send: ClientTimeouts {
                connect: StdDuration::from_secs(5),
                total: StdDuration::from_secs(15),
            },
            concurrency: 32,
            batch: 100,
            claimers: 2,
            lookup_attempts: 2,
            api_burst: 30,
            webhook_timeout: StdDuration::from_secs(10),
            webhook_concurrency: 16,
        }
    }

    /// The values of docs/reliability.md's "fault tests" column.
    pub fn fast() -> Timing {
        Timing {
            lease: StdDuration::from_secs(3),
            backoff_base: StdDuration::from_millis(50),
            backoff_cap: StdDuration::from_millis(500),
            retry_budget: StdDuration::from_secs(10),
            reconcile_first_look: StdDuration::from_millis(200),
            reconcile_gap: StdDuration::from_millis(500),
            reconcile_min_age: StdDuration::from_secs(2),
            poll_interval: StdDuration::from_millis(100),
            send: ClientTimeouts {
                connect: StdDuration::from_millis(300),
                total: StdDuration::from_secs(1),
            },
            concurrency: 32,
            batch: 100,
            claimers: 2,
            lookup_attempts: 2,
            api_burst: 30,
            webhook_timeout: StdDuration::from_secs(2),
            webhook_concurrency: 16,
        }
    }
}
