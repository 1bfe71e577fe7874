//! Outbound webhooks (docs/webhooks.md): the events a brokerage can subscribe to, the
//! Standard Webhooks signature, when a failed delivery is tried again and when a subscription
//! that keeps failing is paused, and which addresses a delivery may never reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Duration, Utc};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// Every event textback sends, by its fixed name (a name is never changed, only added).
pub const EVENTS: &[&str] = &[
    "lead.created",
    "call.missed",
    "call.answered",
    "text.sent",
    "text.delivered",
    "text.failed",
    "reply.received",
    "opt_out",
    "opt_in",
    "conversation.assigned",
    "conversation.closed",
    "task.created",
    "voicemail.received",
];

/// The events Follow Up Boss is sent (docs/webhooks.md "Follow Up Boss"): the lead, its calls
/// and texts, and its opt-outs.
pub const FUB_EVENTS: &[&str] = &[
    "lead.created",
    "call.missed",
    "call.answered",
    "text.sent",
    "reply.received",
    "opt_out",
    "opt_in",
];

/// Deliveries are tried for this long after the event, then recorded as failed.
pub const GIVE_UP_AFTER_HOURS: i64 = 72;
/// A subscription whose deliveries have all failed for this long is paused.
pub const PAUSE_AFTER_HOURS: i64 = 24;

/// A `whsec_` signing secret: base64 of 24 to 64 random bytes.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with whsec_")]
    Prefix,
    #[error("after whsec_ must come base64")]
    Base64,
    #[error("must hold 24 to 64 bytes (it holds {0})")]
    Length(usize),
}

impl Secret {
    pub fn parse(raw: &str) -> Result<Secret, SecretError> {
        let rest = raw
            .trim()
            .strip_prefix("whsec_")
            .ok_or(SecretError::Prefix)?;
        let key = B64.decode(rest).map_err(|_| SecretError::Base64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(Secret(key))
    }

    /// The `webhook-signature` header's value: `v1,` and the base64 HMAC-SHA256 of
    /// `{id}.{timestamp}.{body}` (Standard Webhooks, "Signature scheme").
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) else {
            // HMAC takes a key of any length; unreachable.
            return String::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// Whether `name` is an event a subscription may list (`*`: all of them).
pub fn is_event(name: &str) -> bool {
    name == "*" || EVENTS.contains(&name)
}

/// When a delivery that has now failed `attempts` times is tried again, or `None`: it has been
/// tried for [`GIVE_UP_AFTER_HOURS`] and is recorded as failed. The waits (5 s, 5 min,
/// 30 min, 2 h, 5 h, then every 10 h) are Standard Webhooks' suggested schedule; `retry_after`
/// (a 429's or 503's `Retry-After`, at most an hour) is a floor.
pub fn next_attempt(
    attempts: u32,
    event_at: DateTime<Utc>,
    now: DateTime<Utc>,
    retry_after: Option<Duration>,
) -> Option<DateTime<Utc>> {
    let wait = match attempts {
        0 | 1 => Duration::seconds(5),
        2 => Duration::minutes(5),
        3 => Duration::minutes(30),
        4 => Duration::hours(2),
        5 => Duration::hours(5),
        _ => Duration::hours(10),
    };
    let floor = retry_after
        .unwrap_or(Duration::zero())
        .clamp(Duration::zero(), Duration::hours(1));
    let at = now + wait.max(floor);
    let deadline = event_at + Duration::hours(GIVE_UP_AFTER_HOURS);
    if now >= deadline {
        None
    } else {
        // The last try falls on the deadline rather than past it.
        Some(at.min(deadline))
    }
}

/// Whether a subscription failing since `failing_since` (its first failure with no success
/// since) is paused now.
pub fn should_pause(failing_since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    failing_since.is_some_and(|since| now - since >= Duration::hours(PAUSE_AFTER_HOURS))
}

/// Whether a delivery may connect to `ip`: not this machine, its private networks, link-local
/// or other special ranges (a subscriber URL is the setup file's, but a DNS answer is anyone's).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || o[0] == 0
        // 100.64.0.0/10: carrier-grade NAT
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        // 192.0.0.0/24: protocol assignments
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        // 198.18.0.0/15: benchmarking
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        // 240.0.0.0/4: reserved
        || o[0] >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7: unique local
        || (s[0] & 0xfe00) == 0xfc00
        // fe80::/10: link-local
        || (s[0] & 0xffc0) == 0xfe80
        // 2001:db8::/32: documentation
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // 64:ff9b::/96 and friends: NAT64 can reach private IPv4
        || s[0] == 0x0064
        // 2002::/16 (6to4) and 2001::/32 (Teredo) embed IPv4 addresses
        || s[0] == 0x2002
        || (s[0] == 0x2001 && s[1] == 0)
        // ::/96 (IPv4-compatible) and 100::/64 (discard)
        || (s[0..6].iter().all(|x| *x == 0))
        || (s[0] == 0x0100 && s[1..4].iter().all(|x| *x == 0)))
}

/// How a receiver's answer is recorded: its status and at most this many characters of its
/// body (the page shows it; a 10 MB answer is never read further).
pub const ANSWER_KEPT: usize = 200;

/// A receiver's answer as kept: one line, control characters dropped, at most [`ANSWER_KEPT`]
/// characters.
pub fn answer_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for c in text.chars() {
        if out.chars().count() >= ANSWER_KEPT {
            out.push('…');
            break;
        }
        if c.is_control() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 12, 14, 0, 0)
            .single()
            .expect("a time")
            + Duration::hours(h)
    }

    /// The test vector of the Standard Webhooks libraries (their "test_sign_function").
    #[test]
    fn signs_as_the_specification_s_test_vector() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a secret");
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_is_whsec_and_base64_of_enough_bytes() {
        assert_eq!(
            Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").err(),
            Some(SecretError::Prefix)
        );
        assert_eq!(
            Secret::parse("whsec_not base64!").err(),
            Some(SecretError::Base64)
        );
        assert_eq!(
            Secret::parse("whsec_c2hvcnQ=").err(),
            Some(SecretError::Length(5))
        );
        assert!(Secret::parse(" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").is_ok());
        assert_eq!(
            format!(
                "{:?}",
                Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            ),
            "Ok(Secret(…))"
        );
    }

    #[test]
    fn the_schedule_waits_longer_each_time_and_gives_up_after_three_days() {
        let cases = [
            (1, 0, Some(Duration::seconds(5))),
            (2, 0, Some(Duration::minutes(5))),
            (3, 0, Some(Duration::minutes(30))),
            (4, 0, Some(Duration::hours(2))),
            (5, 0, Some(Duration::hours(5))),
            (6, 1, Some(Duration::hours(10))),
            (12, 60, Some(Duration::hours(10))),
            // The last try is on the deadline.
            (12, 70, Some(Duration::hours(2))),
            (12, 72, None),
            (13, 80, None),
        ];
        for (attempts, hours_later, wait) in cases {
            assert_eq!(
                next_attempt(attempts, at(0), at(hours_later), None),
                wait.map(|w| at(hours_later) + w),
                "attempts {attempts}, {hours_later} h after the event"
            );
        }
    }

    #[test]
    fn retry_after_is_a_floor_of_at_most_an_hour() {
        assert_eq!(
            next_attempt(1, at(0), at(0), Some(Duration::minutes(2))),
            Some(at(0) + Duration::minutes(2))
        );
        assert_eq!(
            next_attempt(1, at(0), at(0), Some(Duration::days(30))),
            Some(at(1))
        );
        assert_eq!(
            next_attempt(3, at(0), at(0), Some(Duration::seconds(1))),
            Some(at(0) + Duration::minutes(30))
        );
    }

    #[test]
    fn a_subscription_is_paused_after_a_day_of_failures() {
        assert!(!should_pause(None, at(100)));
        assert!(!should_pause(Some(at(0)), at(23)));
        assert!(should_pause(Some(at(0)), at(24)));
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        let cases = [
            ("127.0.0.1", false),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("255.255.255.255", false),
            ("198.18.0.1", false),
            ("224.0.0.1", false),
            ("::1", false),
            ("::", false),
            ("fd00::1", false),
            ("fe80::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("64:ff9b::a00:1", false),
            ("2002:7f00:1::1", false),
            ("2001:0:4136:e378::1", false),
            ("::7f00:1", false),
            ("100::1", false),
            ("8.8.8.8", true),
            ("52.1.2.3", true),
            ("100.128.0.1", true),
            ("2606:4700::1111", true),
            ("::ffff:8.8.8.8", true),
        ];
        for (ip, public) in cases {
            let parsed: IpAddr = ip.parse().expect("an address");
            assert_eq!(is_public(parsed), public, "{ip}");
        }
    }

    #[test]
    fn an_answer_is_kept_short_and_on_one_line() {
        assert_eq!(answer_excerpt(b"ok"), "ok");
        assert_eq!(answer_excerpt(b"bad\r\n\r\nrequest\x00"), "bad request");
        let long = vec![b'a'; 10_000];
        assert_eq!(answer_excerpt(&long).chars().count(), ANSWER_KEPT + 1);
        assert_eq!(answer_excerpt(&[0xff, 0xfe, b'x']), "\u{fffd}\u{fffd}x");
    }

    #[test]
    fn every_fub_event_is_an_event() {
        for e in FUB_EVENTS {
            assert!(is_event(e), "{e}");
        }
        assert!(is_event("*"));
        assert!(!is_event("text.maybe"));
    }

    proptest! {
        /// Whatever happened, the next try is after now and never after the deadline.
        #[test]
        fn the_next_try_is_in_the_window(attempts in 0u32..50, minutes in 0i64..6000, ra in proptest::option::of(0i64..100_000)) {
            let now = at(0) + Duration::minutes(minutes);
            match next_attempt(attempts, at(0), now, ra.map(Duration::seconds)) {
                Some(t) => {
                    prop_assert!(t > now);
                    prop_assert!(t <= at(GIVE_UP_AFTER_HOURS));
                }
                None => prop_assert!(now >= at(GIVE_UP_AFTER_HOURS)),
            }
        }
    }
}
