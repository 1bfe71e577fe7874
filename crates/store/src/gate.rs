//! What the compliance gate reads in the pre-send transaction (docs/compliance.md §2), and the
//! decision record it writes. The caller holds the contact's row lock, so a suppression
//! committed before it is seen (docs/reliability.md §4).

use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use sqlx::PgConnection;
use sqlx::types::Json;

use super::{BrokerageId, ContactId, MessageId, Result};
use textback_core::domain::compliance_text::Which;
use textback_core::domain::gate::{Facts, Inquiry, Kind, Verdict};
use textback_core::domain::language::Language;

/// `[compliance]` and `[[blackouts]]` as applied (docs/compliance.md §7); defaults as there.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ComplianceSettings {
    pub cap_24h: u32,
    pub carrier_answers_keywords: bool,
    pub link_domains: Vec<String>,
    pub help_text: Option<String>,
    pub help_text_es: Option<String>,
    pub opt_out_text: Option<String>,
    pub opt_out_text_es: Option<String>,
    pub opt_in_text: Option<String>,
    pub opt_in_text_es: Option<String>,
    pub office_phone: Option<String>,
    pub followups_need_written_consent: bool,
    pub daily_unique_recipients: u32,
    pub blackouts: Vec<StoredBlackout>,
}

impl Default for ComplianceSettings {
    fn default() -> Self {
        let d = textback_core::setup::Compliance::default();
        ComplianceSettings {
            cap_24h: d.cap_24h.into(),
            carrier_answers_keywords: d.carrier_answers_keywords,
            link_domains: d.link_domains,
            help_text: d.help_text,
            help_text_es: d.help_text_es,
            opt_out_text: d.opt_out_text,
            opt_out_text_es: d.opt_out_text_es,
            opt_in_text: d.opt_in_text,
            opt_in_text_es: d.opt_in_text_es,
            office_phone: None,
            followups_need_written_consent: d.followups_need_written_consent,
            daily_unique_recipients: d.daily_unique_recipients,
            blackouts: Vec::new(),
        }
    }
}

impl ComplianceSettings {
    /// The brokerage's own wording of a compliance text, if it has one.
    pub fn own_text(&self, which: Which, language: Language) -> Option<&str> {
        match (which, language) {
            (Which::OptOut, Language::En) => self.opt_out_text.as_deref(),
            (Which::OptOut, Language::Es) => self.opt_out_text_es.as_deref(),
            (Which::OptIn, Language::En) => self.opt_in_text.as_deref(),
            (Which::OptIn, Language::Es) => self.opt_in_text_es.as_deref(),
            (Which::Help, Language::En) => self.help_text.as_deref(),
            (Which::Help, Language::Es) => self.help_text_es.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StoredBlackout {
    pub states: Vec<String>,
    pub from: DateTime<FixedOffset>,
    pub until: DateTime<FixedOffset>,
    pub reason: String,
}

/// The brokerage settings every gated send reads.
#[derive(Debug, Clone)]
pub struct BrokerageRules {
    pub name: String,
    pub time_zone: String,
    pub after_hours_send: bool,
    pub compliance: ComplianceSettings,
    /// `[brokerage] language`: what a contact whose language is not known is texted in.
    pub default_language: Language,
}

impl BrokerageRules {
    pub fn default_language(&self) -> Language {
        self.default_language
    }

    /// The declared blackouts as the window test takes them.
    pub fn blackouts(&self) -> Vec<textback_core::domain::quiet_hours::Blackout> {
        self.compliance
            .blackouts
            .iter()
            .map(|b| textback_core::domain::quiet_hours::Blackout {
                states: b.states.clone(),
                from: b.from.with_timezone(&Utc),
                until: b.until.with_timezone(&Utc),
                reason: b.reason.clone(),
            })
            .collect()
    }
}

pub async fn brokerage_rules(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<BrokerageRules> {
    let (name, time_zone, after_hours, compliance, default_language): (
        String,
        String,
        String,
        Json<serde_json::Value>,
        String,
    ) = sqlx::query_as(
        "select name, time_zone, after_hours, compliance, default_language from brokerage where brokerage_id = $1",
    )
    .bind(brokerage)
    .fetch_one(conn)
    .await?;
    // Written by `setup apply` from a validated file; a value this build cannot read falls
    // back to the defaults, which are the strict ones.
    let compliance = serde_json::from_value(compliance.0).unwrap_or_else(|e| {
        tracing::error!(error = %e, "stored [compliance] settings unreadable; using the defaults");
        ComplianceSettings::default()
    });
    Ok(BrokerageRules {
        name,
        time_zone,
        after_hours_send: after_hours == "send",
        compliance,
        default_language: Language::parse(&default_language).unwrap_or(Language::En),
    })
}

/// The contact's side of the gate's input.
#[derive(Debug, Clone)]
pub struct ContactFacts {
    pub is_suppressed: bool,
    pub review_hold: bool,
    pub is_known_invalid: bool,
    /// The carrier said the number cannot take texts (21614, 21635, 30005, 30006), and no
    /// inbound text has proved otherwise since.
    pub cannot_receive: bool,
    pub inquiry: Option<Inquiry>,
    pub written_consent: bool,
    pub live_conversation: bool,
    pub counted: Vec<DateTime<Utc>>,
}

impl ContactFacts {
    /// The number's flags of docs/compliance.md §2 steps 1 and 2.
    pub fn number_flags(&self) -> textback_core::domain::gate::NumberFlags {
        textback_core::domain::gate::NumberFlags {
            is_known_invalid: self.is_known_invalid,
            cannot_receive: self.cannot_receive,
            is_suppressed: self.is_suppressed,
            review_hold: self.review_hold,
        }
    }
}

/// Reads the contact's facts (R1, R3, R8, R9, R12, live conversation) at `now`.
pub async fn contact_facts(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    contact_id: ContactId,
    now: DateTime<Utc>,
) -> Result<ContactFacts> {
    #[derive(sqlx::FromRow)]
    struct Row {
        is_suppressed: bool,
        review_hold: bool,
        is_known_invalid: bool,
        cannot_receive: bool,
        call_at: Option<DateTime<Utc>>,
        call_sid: Option<String>,
        text_at: Option<DateTime<Utc>>,
        text_sid: Option<String>,
        written_consent: bool,
        live_conversation: bool,
        counted: Vec<DateTime<Utc>>,
    }
    let r = sqlx::query_as::<_, Row>(
        "select exists (select 1 from suppression s where s.brokerage_id = c.brokerage_id and s.phone = c.phone and s.lifted_at is null) as is_suppressed,
                c.review_hold_at is not null as review_hold,
                c.invalid_at is not null as is_known_invalid,
                c.cannot_text_at is not null as cannot_receive,
                lc.started_at as call_at, lc.call_sid,
                lt.occurred_at as text_at, lt.sid as text_sid,
                exists (select 1 from consent_event e where e.brokerage_id = c.brokerage_id and e.phone = c.phone and e.event = 'written_consent') as written_consent,
                -- the contact's latest reply up to now, newest first through the contact's index: a
                -- two-sided time range here gets a generic plan that walks the brokerage's whole day
                coalesce((select m.occurred_at > $3 - interval '24 hours' from message m
                           where m.brokerage_id = c.brokerage_id and m.contact_id = c.contact_id and m.direction = 'inbound'
                             and m.keyword_class in ('reply', 'review') and m.occurred_at <= $3
                           order by m.occurred_at desc limit 1), false) as live_conversation,
                array(select m.occurred_at from message m where m.contact_id = c.contact_id and m.counts_for_cap
                         and m.send_state not in ('failed_certain', 'rejected')
                         and m.occurred_at > $3 - interval '24 hours' order by m.occurred_at) as counted
           from contact c
           left join lateral (select started_at, call_sid from call where brokerage_id = c.brokerage_id and contact_id = c.contact_id
                               order by started_at desc limit 1) lc on true
           left join lateral (select occurred_at, sid from message where brokerage_id = c.brokerage_id and contact_id = c.contact_id
                                and direction = 'inbound' and coalesce(keyword_class, 'reply') <> 'opt_out'
                               order by occurred_at desc limit 1) lt on true
          where c.brokerage_id = $1 and c.contact_id = $2",
    )
    .bind(brokerage)
    .bind(contact_id)
    .bind(now)
    .fetch_one(conn)
    .await?;
    let call = r.call_at.map(|at| Inquiry {
        at,
        basis: "inquiry_call",
        evidence: r.call_sid.unwrap_or_default(),
    });
    let text = r.text_at.map(|at| Inquiry {
        at,
        basis: "inbound_text",
        evidence: r.text_sid.unwrap_or_default(),
    });
    let inquiry = match (call, text) {
        (Some(c), Some(t)) => Some(if t.at > c.at { t } else { c }),
        (c, t) => c.or(t),
    };
    Ok(ContactFacts {
        is_suppressed: r.is_suppressed,
        review_hold: r.review_hold,
        is_known_invalid: r.is_known_invalid,
        cannot_receive: r.cannot_receive,
        inquiry,
        written_consent: r.written_consent,
        live_conversation: r.live_conversation,
        counted: r.counted,
    })
}

/// R15: serialises the automated pre-send transactions of one sending number until the end of
/// the caller's transaction, so two of them cannot both take the day's last recipient slot
/// (each holds only its own contact's lock). Taken after the contact's lock, never before it.
pub async fn lock_daily_recipients(conn: &mut PgConnection, number_id: i64) -> Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtext('textback:daily-recipients'), hashtext($1::bigint::text))")
        .bind(number_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// R15: how many distinct contacts the number sent automated messages to since `midnight`,
/// and whether this contact is one of them.
pub async fn daily_recipients(
    conn: &mut PgConnection,
    number_id: i64,
    contact_id: ContactId,
    midnight: DateTime<Utc>,
) -> Result<(i64, bool)> {
    Ok(sqlx::query_as(
        "select count(distinct contact_id), coalesce(bool_or(contact_id = $2), false)
           from message
          where number_id = $1 and direction = 'outbound' and kind in ('text_back', 'follow_up', 'lead_text')
            and send_state not in ('failed_certain', 'rejected') and occurred_at >= $3",
    )
    .bind(number_id)
    .bind(contact_id)
    .bind(midnight)
    .fetch_one(conn)
    .await?)
}

/// Where a decision belongs.
#[derive(Debug, Clone, Copy)]
pub struct DecisionRef {
    pub contact_id: Option<ContactId>,
    pub number_id: Option<i64>,
    pub job_id: Option<i64>,
    pub message_id: Option<MessageId>,
    pub attempt: Option<i32>,
}

/// Appends the decision record (docs/compliance.md §2).
pub async fn record(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    at: &DecisionRef,
    kind: Kind,
    verdict: &Verdict,
    data: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let d = &verdict.decision;
    let until = match d {
        textback_core::domain::gate::Decision::Defer { until, .. } => Some(*until),
        _ => None,
    };
    let Facts {
        zones,
        state,
        country,
        windows,
        cap_count,
        cap_limit,
        basis,
        basis_evidence,
    } = &verdict.facts;
    Ok(sqlx::query_scalar(
        "insert into gate_decision (brokerage_id, contact_id, number_id, job_id, message_id, attempt, kind, decided_at,
                                    decision, until, rule, reason, zones, state, country, windows, cap_count, cap_limit,
                                    basis, basis_evidence, data)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
         returning gate_decision_id",
    )
    .bind(brokerage)
    .bind(at.contact_id)
    .bind(at.number_id)
    .bind(at.job_id)
    .bind(at.message_id)
    .bind(at.attempt)
    .bind(kind.as_str())
    .bind(now)
    .bind(d.label())
    .bind(until)
    .bind(Some(d.rule_for(kind)).filter(|r| !r.is_empty()))
    .bind(d.reason())
    .bind(zones)
    .bind(state)
    .bind(country)
    .bind(windows)
    .bind(cap_count.and_then(|c| i32::try_from(c).ok()))
    .bind(cap_limit.and_then(|c| i32::try_from(c).ok()))
    .bind(basis)
    .bind(basis_evidence)
    .bind(data)
    .fetch_one(conn)
    .await?)
}

/// The latest decision for a job (tests, the inbox's "why").
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecisionRow {
    pub gate_decision_id: i64,
    pub kind: String,
    pub decision: String,
    pub rule: Option<String>,
    pub reason: String,
    pub until: Option<DateTime<Utc>>,
    pub zones: Vec<String>,
    pub state: Option<String>,
    pub windows: Vec<String>,
    pub basis: Option<String>,
}

pub async fn decisions_for_job(conn: &mut PgConnection, job_id: i64) -> Result<Vec<DecisionRow>> {
    Ok(sqlx::query_as::<_, DecisionRow>(
        "select gate_decision_id, kind, decision, rule, reason, until, zones, state, windows, basis
           from gate_decision where job_id = $1 order by gate_decision_id",
    )
    .bind(job_id)
    .fetch_all(conn)
    .await?)
}

/// Appends the record of an alert's rate-limit decision (docs/compliance.md §2, kind
/// `agent_alert`: not gated, but the limit's decision is kept like the gate's). `allow` when
/// the alert is texted, `skip` with the limit's reason when it is held back.
pub async fn record_alert_decision(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    at: &DecisionRef,
    allowed: bool,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "insert into gate_decision (brokerage_id, contact_id, number_id, job_id, message_id, attempt, kind, decided_at,
                                    decision, reason)
         values ($1, $2, $3, $4, $5, $6, 'agent_alert', $7, $8, $9)
         returning gate_decision_id",
    )
    .bind(brokerage)
    .bind(at.contact_id)
    .bind(at.number_id)
    .bind(at.job_id)
    .bind(at.message_id)
    .bind(at.attempt)
    .bind(now)
    .bind(if allowed { "allow" } else { "skip" })
    .bind(reason)
    .fetch_one(conn)
    .await?)
}
