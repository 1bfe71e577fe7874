//! Who may see and do what (docs/inbox.md, docs/security.md §2): roles, the
//! session's lifetime, and the login throttle. Pure: the store applies the scope in SQL, the
//! HTTP layer asks these functions.

use chrono::{DateTime, Duration, Utc};

/// A person's role, from the setup file's `[[agents]] role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sees the conversations and tasks of their office's numbers and those assigned to them.
    Agent,
    /// Sees their office; the dashboard and its export for that office.
    Manager,
    /// Sees the whole brokerage; dismisses configuration alerts.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "manager" => Some(Role::Manager),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }

    /// The dashboard and the CSV export are for managers and admins (docs/security.md §2).
    pub fn sees_dashboard(self) -> bool {
        matches!(self, Role::Manager | Role::Admin)
    }

    /// Configuration alerts (carrier codes, the daily recipient limit) are the admins': only
    /// they see the banner and dismiss it (a manager cannot fix the carrier account).
    pub fn dismisses_alerts(self) -> bool {
        self == Role::Admin
    }
}

/// What a person may see, as the store's queries apply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub brokerage_id: i64,
    pub role: Role,
    pub office_id: i64,
    pub agent_id: i64,
}

impl Scope {
    /// Whether a conversation on a number of `number_office`, assigned to `assigned` (whose
    /// office is `assigned_office`), is visible. The store's SQL predicate says the same; the
    /// unit tests below pin both to this table.
    pub fn sees_conversation(
        &self,
        number_office: i64,
        assigned: Option<i64>,
        assigned_office: Option<i64>,
    ) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Manager => {
                number_office == self.office_id || assigned_office == Some(self.office_id)
            }
            Role::Agent => number_office == self.office_id || assigned == Some(self.agent_id),
        }
    }

    /// The office the dashboard is limited to: a manager's own; none for an admin.
    pub fn dashboard_office(&self) -> Option<i64> {
        match self.role {
            Role::Admin => None,
            Role::Manager | Role::Agent => Some(self.office_id),
        }
    }
}

/// Sessions end after 8 hours without a request and 7 days after login (docs/security.md §2).
pub const SESSION_IDLE: Duration = Duration::hours(8);
pub const SESSION_ABSOLUTE: Duration = Duration::days(7);
/// A session's last-seen time is written at most this often (not on every request).
pub const SESSION_TOUCH_EVERY: Duration = Duration::minutes(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Valid { touch: bool },
    IdleExpired,
    Expired,
}

pub fn session_state(
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> SessionState {
    if now >= created_at + SESSION_ABSOLUTE {
        SessionState::Expired
    } else if now >= last_seen_at + SESSION_IDLE {
        SessionState::IdleExpired
    } else {
        SessionState::Valid {
            touch: now >= last_seen_at + SESSION_TOUCH_EVERY,
        }
    }
}

/// Login throttling (docs/security.md §2): per account, 5 failures in 15 minutes lock it for 15
/// minutes; per client address, 20 attempts a minute.
pub const ACCOUNT_FAILURES: usize = 5;
pub const ACCOUNT_WINDOW: Duration = Duration::minutes(15);
pub const IP_ATTEMPTS: usize = 20;
pub const IP_WINDOW: Duration = Duration::minutes(1);

/// Whether a login attempt may go ahead, given the account's recent failures (since its last
/// success, within [`ACCOUNT_WINDOW`]) and the address's recent attempts (within
/// [`IP_WINDOW`]), each newest first. `Err(seconds)`: refused, retry after that long.
pub fn throttle(
    account_failures: &[DateTime<Utc>],
    ip_attempts: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Result<(), u64> {
    let wait = |times: &[DateTime<Utc>], limit: usize, window: Duration| -> Option<u64> {
        let recent: Vec<&DateTime<Utc>> = times.iter().filter(|t| now - **t < window).collect();
        if recent.len() < limit {
            return None;
        }
        // Free again when the limit-th newest leaves the window.
        let pivot = recent.get(limit - 1)?;
        let secs = (**pivot + window - now).num_seconds().max(1);
        Some(u64::try_from(secs).unwrap_or(1))
    };
    let account = wait(account_failures, ACCOUNT_FAILURES, ACCOUNT_WINDOW);
    let ip = wait(ip_attempts, IP_ATTEMPTS, IP_WINDOW);
    match (account, ip) {
        (None, None) => Ok(()),
        (a, b) => Err(a.unwrap_or(0).max(b.unwrap_or(0))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn roles_parse_and_only_managers_and_admins_see_the_dashboard() {
        assert_eq!(Role::parse("agent"), Some(Role::Agent));
        assert_eq!(Role::parse("manager"), Some(Role::Manager));
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse("Admin"), None);
        assert!(!Role::Agent.sees_dashboard());
        assert!(Role::Manager.sees_dashboard());
        assert!(Role::Admin.sees_dashboard());
        assert!(Role::Admin.dismisses_alerts());
        assert!(!Role::Manager.dismisses_alerts());
    }

    #[test]
    fn visibility_by_role_office_and_assignment() {
        let scope = |role| Scope {
            brokerage_id: 1,
            role,
            office_id: 10,
            agent_id: 100,
        };
        // (role, number office, assigned, assigned office, visible)
        let rows = [
            (Role::Agent, 10, None, None, true),
            (Role::Agent, 20, None, None, false),
            (Role::Agent, 20, Some(100), Some(10), true),
            (Role::Agent, 20, Some(101), Some(10), false),
            (Role::Manager, 10, None, None, true),
            (Role::Manager, 20, Some(101), Some(10), true),
            (Role::Manager, 20, Some(102), Some(20), false),
            (Role::Manager, 20, None, None, false),
            (Role::Admin, 20, None, None, true),
            (Role::Admin, 30, Some(5), Some(30), true),
        ];
        for (role, office, assigned, assigned_office, visible) in rows {
            assert_eq!(
                scope(role).sees_conversation(office, assigned, assigned_office),
                visible,
                "{role:?} office {office} assigned {assigned:?}"
            );
        }
        assert_eq!(scope(Role::Admin).dashboard_office(), None);
        assert_eq!(scope(Role::Manager).dashboard_office(), Some(10));
    }

    #[test]
    fn sessions_end_after_eight_idle_hours_or_seven_days() {
        let login = t("2026-06-12T09:00:00Z");
        assert_eq!(
            session_state(login, login, t("2026-06-12T09:00:30Z")),
            SessionState::Valid { touch: false }
        );
        assert_eq!(
            session_state(login, login, t("2026-06-12T09:01:00Z")),
            SessionState::Valid { touch: true }
        );
        assert_eq!(
            session_state(login, login, t("2026-06-12T16:59:59Z")),
            SessionState::Valid { touch: true }
        );
        assert_eq!(
            session_state(login, login, t("2026-06-12T17:00:00Z")),
            SessionState::IdleExpired
        );
        // Active all week: still ends at seven days.
        let seen = t("2026-06-19T08:59:00Z");
        assert_eq!(
            session_state(login, seen, t("2026-06-19T08:59:59Z")),
            SessionState::Valid { touch: false }
        );
        assert_eq!(
            session_state(login, seen, t("2026-06-19T09:00:00Z")),
            SessionState::Expired
        );
    }

    #[test]
    fn five_failures_lock_the_account_for_fifteen_minutes() {
        let now = t("2026-06-12T10:00:00Z");
        let ago = |s: i64| now - Duration::seconds(s);
        assert_eq!(throttle(&[], &[], now), Ok(()));
        let four = [ago(10), ago(20), ago(30), ago(40)];
        assert_eq!(throttle(&four, &[], now), Ok(()));
        let five = [ago(10), ago(20), ago(30), ago(40), ago(50)];
        // Free when the 5th newest (50 s ago) is 15 min old: in 850 s.
        assert_eq!(throttle(&five, &[], now), Err(850));
        // Failures older than the window do not count.
        let old = [ago(10), ago(20), ago(30), ago(40), ago(900)];
        assert_eq!(throttle(&old, &[], now), Ok(()));
    }

    #[test]
    fn twenty_attempts_a_minute_from_one_address_are_refused() {
        let now = t("2026-06-12T10:00:00Z");
        let attempts: Vec<DateTime<Utc>> = (0..20).map(|i| now - Duration::seconds(i)).collect();
        assert_eq!(throttle(&[], &attempts[..19], now), Ok(()));
        // The 20th newest is 19 s old: free in 41 s.
        assert_eq!(throttle(&[], &attempts, now), Err(41));
        let stale: Vec<DateTime<Utc>> = (0..30).map(|i| now - Duration::seconds(60 + i)).collect();
        assert_eq!(throttle(&[], &stale, now), Ok(()));
    }

    #[test]
    fn the_longer_of_the_two_waits_is_given() {
        let now = t("2026-06-12T10:00:00Z");
        let five: Vec<DateTime<Utc>> = (1..=5).map(|i| now - Duration::seconds(i)).collect();
        let twenty: Vec<DateTime<Utc>> = (1..=20).map(|i| now - Duration::seconds(i)).collect();
        assert_eq!(throttle(&five, &twenty, now), Err(895));
    }
}
