//! The gate, rule by rule (docs/compliance.md §2, §3): each test breaks when its rule is broken.

use super::*;
use crate::domain::quiet_hours::profiles;
use crate::domain::zones;

fn p(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).expect("E.164")
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("instant")
}

/// A contact who called at `called`, nothing else on record: everything allowed by default.
struct Case {
    kind: Kind,
    to: PhoneNumber,
    zone: ZoneInfo,
    state: Option<String>,
    blackouts: Vec<Blackout>,
    suppressed: bool,
    hold: bool,
    invalid: bool,
    cannot_receive: bool,
    keyword: Option<KeywordFacts>,
    inquiry: Option<Inquiry>,
    written: bool,
    need_written: bool,
    live: bool,
    counted: Vec<DateTime<Utc>>,
    cap: u32,
    daily: Option<Daily>,
    after_hours_send: bool,
    call_ended_at: Option<DateTime<Utc>>,
}

impl Case {
    fn new(kind: Kind, to: &str, called: &str) -> Case {
        let zone = zones::lookup(to);
        Case {
            kind,
            to: p(to),
            state: zone.state.map(str::to_owned),
            zone,
            blackouts: Vec::new(),
            suppressed: false,
            hold: false,
            invalid: false,
            cannot_receive: false,
            keyword: None,
            inquiry: Some(Inquiry {
                at: t(called),
                basis: "inquiry_call",
                evidence: "CA0001".into(),
            }),
            written: false,
            need_written: false,
            live: false,
            counted: Vec::new(),
            cap: 3,
            daily: None,
            after_hours_send: false,
            call_ended_at: None,
        }
    }

    fn run(&self, now: &str) -> Verdict {
        let profiles = profiles().expect("the committed state windows load");
        let input = Input {
            kind: self.kind,
            recipient: &self.to,
            zone: &self.zone,
            profile: profiles.get(self.state.as_deref()),
            blackouts: &self.blackouts,
            number: NumberFlags {
                is_known_invalid: self.invalid,
                cannot_receive: self.cannot_receive,
                is_suppressed: self.suppressed,
                review_hold: self.hold,
            },
            keyword: self.keyword,
            inquiry: self.inquiry.clone(),
            written_consent: self.written,
            followups_need_written_consent: self.need_written,
            live_conversation: self.live,
            counted: &self.counted,
            cap_24h: self.cap,
            daily: self.daily,
            after_hours_send: self.after_hours_send,
            call_ended_at: self.call_ended_at,
        };
        decide(&input, t(now))
    }

    fn decide(&self, now: &str) -> Decision {
        self.run(now).decision
    }
}

fn allow(reason: &'static str) -> Decision {
    Decision::Allow { reason }
}

fn defer(until: &str, rule: &'static str, reason: &'static str) -> Decision {
    Decision::Defer {
        until: t(until),
        rule,
        reason,
    }
}

// Boston, mid-morning on a Wednesday: every window is open.
const BOSTON: &str = "+16175550123";
const WED_10AM: &str = "2026-07-15T14:00:00Z";
const CALLED: &str = "2026-07-15T13:59:00Z";

#[test]
fn usability_of_security_md_rows_12a_and_13() {
    let table = [
        ("+16175550123", Usability::Us),
        ("+15555550123", Usability::Us),
        ("+17875550123", Usability::Us),
        ("+18005550123", Usability::Us),
        ("+266696687", Usability::OutsideUs),
        ("+442071838750", Usability::OutsideUs),
        ("+14165550123", Usability::OutsideUs),
        ("+12115550123", Usability::Invalid),
        ("+19115550123", Usability::Invalid),
        ("+10125550123", Usability::Invalid),
        ("+11125550123", Usability::Invalid),
        ("+16170550123", Usability::Invalid),
        ("+1617555012", Usability::Invalid),
    ];
    for (number, expected) in table {
        assert_eq!(usability(&p(number)), expected, "{number}");
    }
}

#[test]
fn an_ordinary_text_back_is_allowed_with_its_facts() {
    let v = Case::new(Kind::TextBack, BOSTON, CALLED).run(WED_10AM);
    assert_eq!(v.decision, allow("in_window"));
    assert_eq!(v.facts.zones, vec!["America/New_York".to_owned()]);
    assert_eq!(v.facts.state, "MA");
    assert_eq!(v.facts.basis, Some("inquiry_call"));
    assert_eq!(v.facts.basis_evidence.as_deref(), Some("CA0001"));
    assert_eq!((v.facts.cap_count, v.facts.cap_limit), (Some(0), Some(3)));
    assert_eq!(v.facts.windows.len(), 1);
    assert!(
        v.facts.windows[0].contains("2026-07-15"),
        "{:?}",
        v.facts.windows
    );
}

#[test]
fn r8_unusable_recipients_are_skipped_first() {
    for (to, reason) in [
        ("+19115550123", "invalid_number"),
        ("+442071838750", "outside_us"),
        ("+14165550123", "outside_us"),
    ] {
        let mut c = Case::new(Kind::TextBack, to, CALLED);
        c.suppressed = true;
        assert_eq!(c.decide(WED_10AM), skip("R8", reason), "{to}");
    }
    let mut c = Case::new(Kind::Manual, BOSTON, CALLED);
    c.invalid = true;
    assert_eq!(c.decide(WED_10AM), skip("R8", "invalid_number"));
}

/// Issue 15 §3: a number the carrier said cannot take texts (30005, 30006, 21614, 21635) gets
/// no automated text; a person may still write (the inbox warns first), keyword responses
/// are not held, and an opt-out or a review hold still decides first.
#[test]
fn r8_a_number_that_cannot_take_texts_gets_no_automated_text() {
    let keyword = Some(KeywordFacts {
        received_at: t(WED_10AM),
        carrier_answered: false,
        already_confirmed: false,
    });
    for (kind, expected) in [
        (Kind::TextBack, skip("R8", "cannot_receive")),
        (Kind::FollowUp, skip("R8", "cannot_receive")),
        (Kind::Manual, allow("in_window")),
        (Kind::OptOutAck, allow("keyword_response")),
        (Kind::Help, allow("keyword_response")),
    ] {
        let mut c = Case::new(kind, BOSTON, CALLED);
        c.cannot_receive = true;
        c.keyword = keyword;
        assert_eq!(c.decide(WED_10AM), expected, "{kind:?}");
    }
    let mut c = Case::new(Kind::TextBack, BOSTON, CALLED);
    c.cannot_receive = true;
    c.suppressed = true;
    assert_eq!(c.decide(WED_10AM), skip("R1", "opted_out"), "R1 first");
    let flags = NumberFlags {
        cannot_receive: true,
        ..NumberFlags::default()
    };
    assert_eq!(
        free_checks(&p(BOSTON), flags),
        Some(skip("R8", "cannot_receive"))
    );
    assert_eq!(free_checks(&p(BOSTON), NumberFlags::default()), None);
}

#[test]
fn r1_suppression_blocks_every_path_but_the_opt_out_confirmation() {
    let keyword = Some(KeywordFacts {
        received_at: t(WED_10AM),
        carrier_answered: false,
        already_confirmed: false,
    });
    for kind in [
        Kind::TextBack,
        Kind::FollowUp,
        Kind::Manual,
        Kind::OptInAck,
        Kind::Help,
    ] {
        let mut c = Case::new(kind, BOSTON, CALLED);
        c.suppressed = true;
        c.keyword = keyword;
        c.live = true;
        assert_eq!(c.decide(WED_10AM), skip("R1", "opted_out"), "{kind:?}");
    }
    let mut c = Case::new(Kind::OptOutAck, BOSTON, CALLED);
    c.suppressed = true;
    c.keyword = keyword;
    assert_eq!(c.decide(WED_10AM), allow("keyword_response"));
}

#[test]
fn r3_a_review_hold_blocks_everything_but_the_opt_out_confirmation() {
    for kind in [Kind::TextBack, Kind::FollowUp, Kind::Manual, Kind::Help] {
        let mut c = Case::new(kind, BOSTON, CALLED);
        c.hold = true;
        c.live = true;
        c.keyword = Some(KeywordFacts {
            received_at: t(WED_10AM),
            carrier_answered: false,
            already_confirmed: false,
        });
        assert_eq!(c.decide(WED_10AM), skip("R3", "review_hold"), "{kind:?}");
    }
}

#[test]
fn r4_one_confirmation_within_five_minutes_unless_the_carrier_answered() {
    let received = "2026-07-16T03:00:00Z"; // 23:00 in Boston: keyword responses ignore R7
    let mut c = Case::new(Kind::OptOutAck, BOSTON, CALLED);
    c.suppressed = true;
    let facts = |carrier_answered, already_confirmed| {
        Some(KeywordFacts {
            received_at: t(received),
            carrier_answered,
            already_confirmed,
        })
    };
    c.keyword = facts(false, false);
    assert_eq!(c.decide(received), allow("keyword_response"));
    assert_eq!(c.decide("2026-07-16T03:05:00Z"), allow("keyword_response"));
    assert_eq!(
        c.decide("2026-07-16T03:05:01Z"),
        skip("R4", "response_late")
    );
    c.keyword = facts(true, false);
    assert_eq!(c.decide(received), skip("R4", "carrier_answered"));
    c.keyword = facts(false, true);
    assert_eq!(c.decide(received), skip("R4", "already_confirmed"));
    // Keyword responses are not counted and not capped (R9).
    c.keyword = facts(false, false);
    c.counted = vec![t("2026-07-16T01:00:00Z"); 3];
    assert_eq!(c.decide(received), allow("keyword_response"));
    // No consent basis needed: the contact asked.
    c.inquiry = None;
    assert_eq!(c.decide(received), allow("keyword_response"));
}

#[test]
fn r5_r6_opt_in_and_help_responses() {
    let received = "2026-07-16T03:00:00Z";
    for (kind, rule) in [(Kind::OptInAck, "R5"), (Kind::Help, "R6")] {
        let mut c = Case::new(kind, BOSTON, CALLED);
        c.keyword = Some(KeywordFacts {
            received_at: t(received),
            carrier_answered: false,
            already_confirmed: false,
        });
        assert_eq!(c.decide(received), allow("keyword_response"), "{kind:?}");
        assert_eq!(
            c.decide("2026-07-16T03:06:00Z"),
            skip(rule, "response_late")
        );
        c.keyword = Some(KeywordFacts {
            received_at: t(received),
            carrier_answered: true,
            already_confirmed: false,
        });
        assert_eq!(c.decide(received), skip(rule, "carrier_answered"));
        c.keyword = None;
        assert_eq!(c.decide(received), skip(rule, "gate_error"), "fail closed");
    }
}

#[test]
fn r12_consent_basis_and_the_three_month_inquiry_window() {
    // docs/compliance.md R12's example: 2026-11-30T15:00Z + 3 months = 2027-02-28T15:00Z.
    let mut c = Case::new(Kind::FollowUp, BOSTON, "2026-11-30T15:00:00Z");
    assert_eq!(c.decide("2027-02-26T15:00:00Z"), allow("in_window"));
    assert_eq!(c.decide("2027-02-28T15:00:00Z"), allow("in_window"));
    assert_eq!(
        c.decide("2027-02-28T15:00:01Z"),
        skip("R12", "inquiry_expired")
    );
    c.written = true;
    assert_eq!(c.decide("2027-02-28T15:00:01Z"), allow("in_window"));
    c.written = false;
    c.inquiry = None;
    for kind in [Kind::TextBack, Kind::FollowUp, Kind::Manual] {
        c.kind = kind;
        assert_eq!(
            c.decide(WED_10AM),
            skip("R12", "no_consent_basis"),
            "{kind:?}"
        );
    }
}

#[test]
fn r12_follow_ups_may_need_written_consent() {
    let mut c = Case::new(Kind::FollowUp, BOSTON, CALLED);
    c.need_written = true;
    assert_eq!(c.decide(WED_10AM), skip("R12", "no_written_consent"));
    c.kind = Kind::TextBack;
    assert_eq!(c.decide(WED_10AM), allow("in_window"), "only follow-ups");
    c.kind = Kind::FollowUp;
    c.written = true;
    let v = c.run(WED_10AM);
    assert_eq!(v.decision, allow("in_window"));
    assert_eq!(v.facts.basis, Some("written_consent"));
}

#[test]
fn r9_the_cap_skips_a_fourth_text_back_and_defers_a_follow_up() {
    // docs/compliance.md R9's test: sends at t0, t0+1h, t0+2h; a follow-up due at t0+3h defers to
    // t0+24h.
    let t0 = "2026-07-15T14:00:00Z";
    let mut c = Case::new(Kind::FollowUp, BOSTON, "2026-07-15T13:00:00Z");
    c.counted = vec![t(t0), t("2026-07-15T15:00:00Z"), t("2026-07-15T16:00:00Z")];
    let v = c.run("2026-07-15T17:00:00Z");
    assert_eq!(
        v.decision,
        defer("2026-07-16T14:00:00Z", "R9", "cap_reached")
    );
    assert_eq!((v.facts.cap_count, v.facts.cap_limit), (Some(3), Some(3)));
    c.kind = Kind::TextBack;
    assert_eq!(c.decide("2026-07-15T17:00:00Z"), skip("R9", "cap_reached"));
    c.kind = Kind::Manual;
    assert_eq!(
        c.decide("2026-07-15T17:00:00Z"),
        defer("2026-07-16T14:00:00Z", "R9", "cap_reached")
    );
    // In a live conversation an agent's answer is not counted and not capped.
    c.live = true;
    assert_eq!(c.decide("2026-07-15T17:00:00Z"), allow("live_conversation"));
    // Older than 24 h: not counted any more.
    c.live = false;
    assert_eq!(c.decide("2026-07-16T14:00:01Z"), allow("in_window"));
    // Two counted: the third goes.
    c.counted.pop();
    c.kind = Kind::TextBack;
    assert_eq!(c.decide("2026-07-15T17:00:00Z"), allow("in_window"));
    // A brokerage cap of 1.
    c.cap = 1;
    assert_eq!(c.decide("2026-07-15T17:00:00Z"), skip("R9", "cap_reached"));
}

#[test]
fn r9_a_freed_cap_that_lands_at_night_waits_for_the_window() {
    // Three counted sends around 20:10 EDT (answers in a live conversation, say): the cap
    // frees at 20:10 the next evening, after Massachusetts' 20:00 close, so the follow-up
    // goes at 08:00 the day after, still for the reason cap_reached.
    let mut c = Case::new(Kind::FollowUp, BOSTON, "2026-07-15T23:00:00Z");
    c.counted = vec![
        t("2026-07-16T00:10:00Z"),
        t("2026-07-16T00:11:00Z"),
        t("2026-07-16T00:12:00Z"),
    ];
    assert_eq!(
        c.decide("2026-07-16T13:00:00Z"),
        defer("2026-07-17T12:00:00Z", "R9", "cap_reached")
    );
    // The oldest of the three frees the cap: with the sends at 19:50 EDT, 19:50 the next day.
    c.counted = vec![
        t("2026-07-15T23:50:00Z"),
        t("2026-07-16T00:11:00Z"),
        t("2026-07-16T00:12:00Z"),
    ];
    assert_eq!(
        c.decide("2026-07-16T13:00:00Z"),
        defer("2026-07-16T23:50:00Z", "R9", "cap_reached")
    );
}

#[test]
fn r15_the_daily_recipient_limit_defers_new_recipients_only() {
    let mut c = Case::new(Kind::TextBack, BOSTON, CALLED);
    c.daily = Some(Daily {
        recipients_today: 2,
        limit: 2,
        contact_already_today: false,
        next_midnight: t("2026-07-16T04:00:00Z"),
    });
    // Deferred to the next day's window in the recipient's zone (08:00 EDT).
    assert_eq!(
        c.decide(WED_10AM),
        defer("2026-07-16T12:00:00Z", "R15", "daily_recipient_limit")
    );
    c.kind = Kind::FollowUp;
    assert_eq!(
        c.decide(WED_10AM),
        defer("2026-07-16T12:00:00Z", "R15", "daily_recipient_limit")
    );
    // A contact already texted today still gets the rest of the conversation.
    c.daily = c.daily.map(|d| Daily {
        contact_already_today: true,
        ..d
    });
    assert_eq!(c.decide(WED_10AM), allow("in_window"));
    // Manual messages are not limited.
    c.daily = c.daily.map(|d| Daily {
        contact_already_today: false,
        ..d
    });
    c.kind = Kind::Manual;
    assert_eq!(c.decide(WED_10AM), allow("in_window"));
}

#[test]
fn r7_quiet_hours_defer_with_zones_and_windows_on_record() {
    // docs/compliance.md §5.6: Tallahassee's 850 222 at 12:30:20Z is 07:30 CDT: deferred to 13:00Z.
    let c = Case::new(Kind::TextBack, "+18502220142", "2026-06-12T12:29:00Z");
    let v = c.run("2026-06-12T12:30:20Z");
    assert_eq!(
        v.decision,
        defer("2026-06-12T13:00:00Z", "R7", "quiet_hours")
    );
    assert_eq!(v.facts.state, "FL");
    let mut zones = v.facts.zones.clone();
    zones.sort();
    assert_eq!(zones, ["America/Chicago", "America/New_York"]);
    assert_eq!(v.facts.windows.len(), 2, "{:?}", v.facts.windows);
    // A follow-up at 23:57Z (19:57 EDT) goes; at 23:59Z it waits for Saturday 13:00Z.
    let mut f = Case::new(Kind::FollowUp, "+18502220142", "2026-06-12T12:29:00Z");
    assert_eq!(f.decide("2026-06-12T23:57:00Z"), allow("in_window"));
    assert_eq!(
        f.decide("2026-06-12T23:59:00Z"),
        defer("2026-06-13T13:00:00Z", "R7", "quiet_hours")
    );
    // Pensacola (Central only) at 00:30Z is 19:30 CDT: allowed.
    f = Case::new(Kind::FollowUp, "+18504340142", "2026-06-12T12:29:00Z");
    assert_eq!(f.decide("2026-06-13T00:30:00Z"), allow("in_window"));
}

#[test]
fn r7_section_5_5_vectors_through_the_gate() {
    let cases = [
        // (number, call, now, expected until or None for allow)
        (
            "+12125550123",
            "2026-03-08T02:00:00Z",
            "2026-03-08T02:30:00Z",
            Some("2026-03-08T12:00:00Z"),
        ),
        (
            "+12125550123",
            "2026-03-08T02:00:00Z",
            "2026-03-08T07:30:00Z",
            Some("2026-03-08T12:00:00Z"),
        ),
        (
            "+12125550123",
            "2026-11-01T01:00:00Z",
            "2026-11-01T01:30:00Z",
            Some("2026-11-01T13:00:00Z"),
        ),
        (
            "+12125550123",
            "2026-11-01T01:00:00Z",
            "2026-11-01T05:30:00Z",
            Some("2026-11-01T13:00:00Z"),
        ),
        (
            "+12125550123",
            "2026-11-01T01:00:00Z",
            "2026-11-01T06:30:00Z",
            Some("2026-11-01T13:00:00Z"),
        ),
        (
            "+16025550123",
            "2026-07-15T14:00:00Z",
            "2026-07-15T14:30:00Z",
            Some("2026-07-15T15:00:00Z"),
        ),
        (
            "+13035550123",
            "2026-07-15T14:00:00Z",
            "2026-07-15T14:30:00Z",
            None,
        ),
        (
            "+19282830123",
            "2026-07-16T02:00:00Z",
            "2026-07-16T02:57:00Z",
            None,
        ),
        (
            "+19282830123",
            "2026-07-16T02:00:00Z",
            "2026-07-16T02:59:00Z",
            Some("2026-07-16T15:00:00Z"),
        ),
        (
            "+18085550123",
            "2026-07-15T17:00:00Z",
            "2026-07-15T17:59:00Z",
            Some("2026-07-15T18:00:00Z"),
        ),
        (
            "+17875550123",
            "2026-01-14T11:00:00Z",
            "2026-01-14T11:59:00Z",
            Some("2026-01-14T12:00:00Z"),
        ),
        (
            "+15125550123",
            "2026-06-14T14:00:00Z",
            "2026-06-14T15:00:00Z",
            Some("2026-06-14T17:00:00Z"),
        ),
        (
            "+12055550123",
            "2026-07-03T14:00:00Z",
            "2026-07-03T15:00:00Z",
            Some("2026-07-07T13:00:00Z"),
        ),
        (
            "+14015550123",
            "2026-07-03T14:00:00Z",
            "2026-07-03T15:00:00Z",
            Some("2026-07-07T13:00:00Z"),
        ),
        (
            "+15045550123",
            "2026-02-17T15:00:00Z",
            "2026-02-17T16:00:00Z",
            Some("2026-02-18T14:00:00Z"),
        ),
        (
            "+15555550123",
            "2026-07-15T11:00:00Z",
            "2026-07-15T12:00:00Z",
            Some("2026-07-15T20:00:00Z"),
        ),
        (
            "+15555550123",
            "2026-01-14T11:00:00Z",
            "2026-01-14T12:00:00Z",
            Some("2026-01-14T20:00:00Z"),
        ),
        (
            "+15555550123",
            "2026-07-15T11:00:00Z",
            "2026-07-15T21:57:00Z",
            None,
        ),
        (
            "+15555550123",
            "2026-07-15T11:00:00Z",
            "2026-07-15T21:58:00Z",
            Some("2026-07-16T20:00:00Z"),
        ),
    ];
    for (number, called, now, expected) in cases {
        let c = Case::new(Kind::FollowUp, number, called);
        let got = c.decide(now);
        match expected {
            None => assert_eq!(got, allow("in_window"), "{number} at {now}"),
            Some(until) => {
                let Decision::Defer { until: u, rule, .. } = got else {
                    panic!("{number} at {now}: expected a deferral, got {got:?}");
                };
                assert_eq!((u, rule), (t(until), "R7"), "{number} at {now}");
            }
        }
    }
}

#[test]
fn r7_after_hours_send_is_only_for_a_fresh_text_back() {
    // §5.5's last row: call ended 02:29:40Z, job at 02:30Z, Sat 21:30 EST in New York.
    let mut c = Case::new(Kind::TextBack, "+12125550123", "2026-03-08T02:29:00Z");
    c.after_hours_send = true;
    c.call_ended_at = Some(t("2026-03-08T02:29:40Z"));
    let v = c.run("2026-03-08T02:30:00Z");
    assert_eq!(v.decision, allow("after_hours_send"));
    assert_eq!(v.facts.basis, Some("reply_to_own_call"));
    // Older than 15 minutes: waits.
    assert_eq!(
        c.decide("2026-03-08T02:44:41Z"),
        defer("2026-03-08T12:00:00Z", "R7", "quiet_hours")
    );
    // "defer" (the default) waits.
    c.after_hours_send = false;
    assert_eq!(
        c.decide("2026-03-08T02:30:00Z"),
        defer("2026-03-08T12:00:00Z", "R7", "quiet_hours")
    );
    // Follow-ups always wait.
    c.after_hours_send = true;
    c.kind = Kind::FollowUp;
    assert_eq!(
        c.decide("2026-03-08T02:30:00Z"),
        defer("2026-03-08T12:00:00Z", "R7", "quiet_hours")
    );
    // "send" never overrides the cap.
    c.kind = Kind::TextBack;
    c.counted = vec![t("2026-03-08T01:00:00Z"); 3];
    assert_eq!(c.decide("2026-03-08T02:30:00Z"), skip("R9", "cap_reached"));
}

#[test]
fn r7_manual_messages_follow_the_window_unless_the_conversation_is_live() {
    let mut c = Case::new(Kind::Manual, BOSTON, CALLED);
    // 22:00 EDT.
    assert_eq!(
        c.decide("2026-07-16T02:00:00Z"),
        defer("2026-07-16T12:00:00Z", "R7", "quiet_hours")
    );
    c.live = true;
    assert_eq!(c.decide("2026-07-16T02:00:00Z"), allow("live_conversation"));
}

#[test]
fn r7_blackouts_defer_and_a_long_one_ends_the_job() {
    let mut c = Case::new(Kind::FollowUp, "+15045550123", "2026-08-30T14:00:00Z");
    c.blackouts = vec![Blackout {
        states: vec!["LA".into()],
        from: t("2026-08-29T05:00:00Z"),
        until: t("2026-09-06T05:00:00Z"),
        reason: "Louisiana state of emergency".into(),
    }];
    let v = c.decide("2026-08-31T15:00:00Z");
    let Decision::Defer { until, reason, .. } = v else {
        panic!("deferred, got {v:?}");
    };
    assert_eq!(reason, "blackout");
    assert!(until >= t("2026-09-06T05:00:00Z"), "{until}");
    // `after_hours = "send"` never overrides a blackout.
    c.kind = Kind::TextBack;
    c.after_hours_send = true;
    c.call_ended_at = Some(t("2026-08-31T14:59:00Z"));
    assert!(matches!(
        c.decide("2026-08-31T15:00:00Z"),
        Decision::Defer {
            reason: "blackout",
            ..
        }
    ));
    // Boston is not in Louisiana.
    let mut b = Case::new(Kind::FollowUp, BOSTON, "2026-08-30T14:00:00Z");
    b.blackouts = c.blackouts.clone();
    assert_eq!(b.decide("2026-08-31T15:00:00Z"), allow("in_window"));
    // More than 14 days: skip no_window.
    c.kind = Kind::FollowUp;
    c.blackouts[0].until = t("2026-09-30T05:00:00Z");
    assert_eq!(c.decide("2026-08-31T15:00:00Z"), skip("R7", "no_window"));
}

proptest::proptest! {
    /// Whatever the facts, a suppressed number gets nothing but the opt-out confirmation, and a
    /// deferral is always to a later instant within 14 days.
    #[test]
    fn suppression_always_wins_and_deferrals_move_forward(
        kind in 0usize..6,
        suppressed: bool,
        hold: bool,
        live: bool,
        written: bool,
        sends in 0usize..5,
        minutes in 0i64..(60 * 24 * 400),
        npa in proptest::sample::select(vec!["617", "212", "850", "602", "808", "787", "555", "907", "928"]),
    ) {
        let kinds = [Kind::TextBack, Kind::FollowUp, Kind::Manual, Kind::OptOutAck, Kind::OptInAck, Kind::Help];
        let now = t("2026-01-01T00:00:00Z") + Duration::minutes(minutes);
        let mut c = Case::new(kinds[kind], &format!("+1{npa}5550123"), "2026-01-01T00:00:00Z");
        c.inquiry = Some(Inquiry { at: now - Duration::hours(1), basis: "inquiry_call", evidence: "CA1".into() });
        c.suppressed = suppressed;
        c.hold = hold;
        c.live = live;
        c.written = written;
        c.counted = (0..sends).map(|i| now - Duration::hours(i as i64 + 1)).collect();
        c.keyword = Some(KeywordFacts { received_at: now, carrier_answered: false, already_confirmed: false });
        let d = c.run(&now.to_rfc3339()).decision;
        if suppressed && c.kind != Kind::OptOutAck {
            proptest::prop_assert_eq!(d.clone(), skip("R1", "opted_out"));
        }
        if let Decision::Defer { until, .. } = d {
            proptest::prop_assert!(until > now);
            proptest::prop_assert!(until - now <= Duration::days(MAX_DEFERRAL_DAYS));
        }
    }
}

#[test]
fn keyword_responses_are_recorded_under_their_own_rule() {
    let allow = Decision::Allow {
        reason: "keyword_response",
    };
    assert_eq!(allow.rule_for(Kind::OptOutAck), "R4");
    assert_eq!(allow.rule_for(Kind::OptInAck), "R5");
    assert_eq!(allow.rule_for(Kind::Help), "R6");
    let in_window = Decision::Allow {
        reason: "in_window",
    };
    assert_eq!(in_window.rule_for(Kind::Help), "R7");
    let skip = Decision::Skip {
        rule: "R1",
        reason: "opted_out",
    };
    assert_eq!(skip.rule_for(Kind::Help), "R1");
}

/// A lead from the website (docs/leads.md): its written consent is the basis; it is
/// automated, so it waits for the window (never `after_hours = "send"`, which answers a call)
/// and is deferred, not dropped, by the cap; without the consent it has no basis.
#[test]
fn a_lead_text_rests_on_written_consent_and_waits_for_the_window() {
    let mut c = Case::new(Kind::LeadText, BOSTON, CALLED);
    c.inquiry = None;
    assert_eq!(c.decide(WED_10AM), skip("R12", "no_consent_basis"));
    c.written = true;
    let v = c.run(WED_10AM);
    assert_eq!(v.decision, allow("in_window"));
    assert_eq!(v.facts.basis, Some("written_consent"));
    // 23:30 EDT: the morning's window, even with after_hours = "send" and a call just ended.
    c.after_hours_send = true;
    c.call_ended_at = Some(t("2026-07-16T03:29:00Z"));
    assert_eq!(
        c.decide("2026-07-16T03:30:00Z"),
        defer("2026-07-16T12:00:00Z", "R7", "quiet_hours")
    );
    // Three counted texts today: it waits for the cap to free, it is not dropped.
    c.counted = vec![
        t("2026-07-15T13:00:00Z"),
        t("2026-07-15T13:10:00Z"),
        t("2026-07-15T13:20:00Z"),
    ];
    assert_eq!(
        c.decide(WED_10AM),
        defer("2026-07-16T13:00:00Z", "R9", "cap_reached")
    );
    assert!(Kind::LeadText.is_automated());
    assert_eq!(Kind::LeadText.as_str(), "lead_text");
}
