//! Fault injection (docs/reliability.md §6): what the fake does instead of a plain 201, and for
//! which requests.
//!
//! Faults are kept in the order they were injected; the first one whose scope matches a
//! request applies. Create faults (everything but [`Fault::ListFail`] and [`Fault::ListDup`])
//! are matched against `POST …/Messages.json`; list faults against `GET …/Messages.json`.

use std::time::Duration;

use tokio::time::Instant;

/// One way the carrier can misbehave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `http` with Twilio's error JSON (`{code, message, more_info, status}`).
    /// `code: None` falls back to `20000 + http` (20429, 20500 and 20503 are real Twilio codes).
    /// `recorded: true` stores the message first ("accepted, then 500"): it shows in the list
    /// and gets its status callbacks. `retry_after` adds a `Retry-After: <secs>` header.
    Status {
        http: u16,
        code: Option<u32>,
        recorded: bool,
        retry_after: Option<u64>,
    },
    /// `recorded: true`: store the message at once, answer 201 after `ms`.
    /// `recorded: false`: store nothing, answer 500 (code 20500) after `ms`.
    Delay { ms: u64, recorded: bool },
    /// Keep the response pending until [`super::FakeTwilio::release_held`]; then 201
    /// (`recorded: true`, stored on arrival) or 500 (nothing stored).
    Hold { recorded: bool },
    /// Read the request, store it if `recorded`, then close the connection without writing
    /// any response.
    Reset { recorded: bool },
    /// `GET …/Messages.json` answers 500 (code 20500).
    ListFail,
    /// `GET …/Messages.json` shows, right after each real message, a second message with the
    /// same `to`, `from`, `body`, status and dates but another `sid`: two reconcile candidates.
    /// The extra messages exist only in listings (fetching their `sid` gives 404).
    ListDup,
}

impl Fault {
    /// True for the faults that apply to the list endpoint rather than to creates.
    pub fn is_list_fault(&self) -> bool {
        matches!(self, Fault::ListFail | Fault::ListDup)
    }
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The next `n` matching requests (creates, or listings for list faults); then it is gone.
    Next(u32),
    /// Every matching request during this much *real* time from injection (tokio `Instant`,
    /// not the fake's clock: a test's `ManualClock` standing still must not keep a fault alive
    /// for ever).
    For(Duration),
    /// Every create whose `To` is this number; for list faults, every listing whose `To`
    /// filter is this number. Stays until [`super::FakeTwilio::clear_faults`].
    To(String),
    /// Every matching request until cleared.
    Always,
}

#[derive(Debug)]
enum Live {
    Next(u32),
    Until(Instant),
    To(String),
    Always,
}

#[derive(Debug)]
struct Active {
    fault: Fault,
    scope: Live,
}

/// The faults currently armed.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    active: Vec<Active>,
}

/// What the list faults say about one listing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListFaults {
    pub fail: bool,
    pub dup: bool,
}

impl Faults {
    pub fn inject(&mut self, fault: Fault, scope: Scope) {
        let scope = match scope {
            Scope::Next(n) => Live::Next(n),
            Scope::For(d) => Live::Until(Instant::now() + d),
            Scope::To(to) => Live::To(to),
            Scope::Always => Live::Always,
        };
        self.active.push(Active { fault, scope });
    }

    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// The fault for a create to `to`, if any; consumes one use of a `Next(n)` scope.
    pub fn take_create(&mut self, to: &str) -> Option<Fault> {
        self.take(|f| !f.is_list_fault(), Some(to))
    }

    /// The list faults for a listing whose `To` filter is `to_filter`. `ListFail` and
    /// `ListDup` are looked up separately, so both can be armed at once (a failing listing
    /// shows nothing, so `fail` wins in effect).
    pub fn take_list(&mut self, to_filter: Option<&str>) -> ListFaults {
        let fail = self.take(|f| *f == Fault::ListFail, to_filter).is_some();
        let dup = self.take(|f| *f == Fault::ListDup, to_filter).is_some();
        ListFaults { fail, dup }
    }

    /// Finds the first live fault accepted by `kind` whose scope matches `to`, uses it up once
    /// and returns it.
    fn take(&mut self, kind: impl Fn(&Fault) -> bool, to: Option<&str>) -> Option<Fault> {
        let now = Instant::now();
        // Drop what has expired, so the list does not grow with dead entries.
        self.active.retain(|a| match a.scope {
            Live::Next(n) => n > 0,
            Live::Until(t) => now < t,
            Live::To(_) | Live::Always => true,
        });
        let found = self.active.iter_mut().position(|a| {
            kind(&a.fault)
                && match &a.scope {
                    Live::To(want) => to == Some(want.as_str()),
                    Live::Next(_) | Live::Until(_) | Live::Always => true,
                }
        });
        let i = found?;
        let fault = self.active[i].fault.clone();
        if let Live::Next(n) = &mut self.active[i].scope {
            *n -= 1;
            if *n == 0 {
                self.active.remove(i);
            }
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAIL: Fault = Fault::Status {
        http: 503,
        code: None,
        recorded: false,
        retry_after: None,
    };

    #[test]
    fn next_n_is_used_up() {
        let mut f = Faults::default();
        f.inject(FAIL, Scope::Next(2));
        assert_eq!(f.take_create("+1"), Some(FAIL));
        assert_eq!(f.take_create("+1"), Some(FAIL));
        assert_eq!(f.take_create("+1"), None);
    }

    #[test]
    fn next_zero_never_applies() {
        let mut f = Faults::default();
        f.inject(FAIL, Scope::Next(0));
        assert_eq!(f.take_create("+1"), None);
    }

    #[test]
    fn to_matches_only_that_number_and_list_faults_do_not_hit_creates() {
        let mut f = Faults::default();
        f.inject(Fault::ListFail, Scope::Always);
        f.inject(FAIL, Scope::To("+15555550123".into()));
        assert_eq!(f.take_create("+15555550199"), None);
        assert_eq!(f.take_create("+15555550123"), Some(FAIL));
        assert_eq!(f.take_create("+15555550123"), Some(FAIL));
        assert_eq!(
            f.take_list(None),
            ListFaults {
                fail: true,
                dup: false
            }
        );
    }

    #[test]
    fn first_injected_wins_and_clear_removes_all() {
        let mut f = Faults::default();
        f.inject(Fault::Reset { recorded: false }, Scope::Next(1));
        f.inject(FAIL, Scope::Always);
        assert_eq!(f.take_create("+1"), Some(Fault::Reset { recorded: false }));
        assert_eq!(f.take_create("+1"), Some(FAIL));
        f.clear();
        assert_eq!(f.take_create("+1"), None);
    }

    #[tokio::test]
    async fn for_expires_in_real_time() {
        let mut f = Faults::default();
        f.inject(FAIL, Scope::For(Duration::from_millis(60)));
        assert_eq!(f.take_create("+1"), Some(FAIL));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(f.take_create("+1"), None);
    }
}
