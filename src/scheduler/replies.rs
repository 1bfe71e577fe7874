//! Texts that answer the contact: keyword responses (`keyword_reply`: the opt-out and opt-in
//! confirmations and the help text of docs/compliance.md §4.5) and agents' replies from the inbox
//! (`agent_reply`). Both pass the whole gate in the pre-send transaction, like every text.

use super::{Outcome, send, text_back};
use crate::context::AppState;
use crate::domain::gate::{self, KeywordFacts};
use crate::domain::phone::PhoneNumber;
use crate::domain::sms_text;
use crate::store::{self, contacts, jobs, messages, numbers};

/// The fixed texts of docs/compliance.md §4.5.
pub fn keyword_text(
    kind: gate::Kind,
    brokerage: &str,
    help_text: Option<&str>,
    office_phone: &str,
) -> String {
    match kind {
        gate::Kind::OptOutAck => format!(
            "{brokerage}: you are unsubscribed and will get no more texts from us. Reply START to resubscribe."
        ),
        gate::Kind::OptInAck => {
            format!("{brokerage}: you are resubscribed to our texts. Reply STOP to opt out.")
        }
        _ => match help_text {
            Some(t) => t
                .replace("{brokerage}", brokerage)
                .replace("{office_phone}", office_phone),
            None => format!(
                "{brokerage}: for help call {office_phone}. Msg & data rates may apply. Reply STOP to opt out."
            ),
        },
    }
}

pub(super) async fn keyword_reply(
    state: &AppState,
    job: &jobs::Claimed,
) -> anyhow::Result<Outcome> {
    let p: jobs::payload::KeywordReply = match send::payload(job) {
        Ok(p) => p,
        Err(outcome) => return Ok(outcome),
    };
    let kind = match p.ack.as_str() {
        "opt_out_ack" => gate::Kind::OptOutAck,
        "opt_in_ack" => gate::Kind::OptInAck,
        "help" => gate::Kind::Help,
        other => return Ok(Outcome::Dead(format!("unknown keyword reply `{other}`"))),
    };
    let Reply {
        contact,
        to: recipient,
        from,
        rules,
        ..
    } = match reply_context(state, job, p.number_id).await? {
        Ok(r) => r,
        Err(outcome) => return Ok(outcome),
    };
    let contact_id = contact.contact_id;
    let office_phone =
        text_back::national(rules.compliance.office_phone.as_deref().unwrap_or(&from));
    let body = keyword_text(
        kind,
        &rules.name,
        rules.compliance.help_text.as_deref(),
        &office_phone,
    );
    let out = send::Outgoing {
        kind,
        contact_id,
        to: &recipient,
        number_id: p.number_id,
        from: &from,
        body: &body,
        template_variant: None,
        keyword: Some(KeywordFacts {
            received_at: p.received_at,
            carrier_answered: p.carrier_answered,
            already_confirmed: p.already_confirmed,
        }),
        call_id: None,
        call_ended_at: None,
        missed_at: None,
        superseded_since: None,
        by_text: None,
    };
    send::gate_and_send(state, job, &out, &rules).await
}

/// What both kinds of reply need: the contact, the number it goes from, the brokerage's rules.
struct Reply {
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    contact: contacts::ContactRow,
    to: PhoneNumber,
    from: String,
    rules: store::gate::BrokerageRules,
}

async fn reply_context(
    state: &AppState,
    job: &jobs::Claimed,
    number_id: i64,
) -> anyhow::Result<Result<Reply, Outcome>> {
    let (mut conn, contact, to) = match send::start(state, job).await? {
        send::Start::Go { conn, contact, to } => (conn, contact, to),
        send::Start::Done(outcome) => return Ok(Err(outcome)),
    };
    let Some(from) = numbers::e164(&mut conn, job.brokerage_id, number_id).await? else {
        return Ok(Err(Outcome::Dead("the number is gone".into())));
    };
    let rules = store::gate::brokerage_rules(&mut conn, job.brokerage_id).await?;
    Ok(Ok(Reply {
        conn,
        contact,
        to,
        from,
        rules,
    }))
}

pub(super) async fn agent_reply(state: &AppState, job: &jobs::Claimed) -> anyhow::Result<Outcome> {
    let brokerage = job.brokerage_id;
    let p: jobs::payload::AgentReply = match send::payload(job) {
        Ok(p) => p,
        Err(outcome) => return Ok(outcome),
    };
    let Reply {
        mut conn,
        contact,
        to: recipient,
        from,
        rules,
    } = match reply_context(state, job, p.number_id).await? {
        Ok(r) => r,
        Err(outcome) => return Ok(outcome),
    };
    let contact_id = contact.contact_id;
    // R10: the first message to a contact introduces the brokerage, even when an agent types it.
    let first =
        messages::is_first_outbound(&mut conn, brokerage, contact_id, &contact.phone).await?;
    drop(conn);
    let body = if first {
        sms_text::identify(&p.body, &rules.name, true)
    } else {
        p.body.clone()
    };
    let out = send::Outgoing {
        kind: gate::Kind::Manual,
        contact_id,
        to: &recipient,
        number_id: p.number_id,
        from: &from,
        body: &body,
        template_variant: None,
        keyword: None,
        call_id: None,
        call_ended_at: None,
        missed_at: None,
        superseded_since: None,
        by_text: p.by_text,
    };
    send::gate_and_send(state, job, &out, &rules).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_texts_are_those_of_compliance_md() {
        let out = keyword_text(
            gate::Kind::OptOutAck,
            "Harbor Realty",
            None,
            "(555) 555-0100",
        );
        assert_eq!(
            out,
            "Harbor Realty: you are unsubscribed and will get no more texts from us. Reply START to resubscribe."
        );
        assert!(out.contains("unsubscribed") && out.contains("START") && !out.contains("http"));
        assert_eq!(
            keyword_text(gate::Kind::OptInAck, "Harbor Realty", None, "x"),
            "Harbor Realty: you are resubscribed to our texts. Reply STOP to opt out."
        );
        assert_eq!(
            keyword_text(gate::Kind::Help, "Harbor Realty", None, "(555) 555-0100"),
            "Harbor Realty: for help call (555) 555-0100. Msg & data rates may apply. Reply STOP to opt out."
        );
        assert_eq!(
            keyword_text(
                gate::Kind::Help,
                "Harbor Realty",
                Some("{brokerage} help: {office_phone}. Reply STOP to opt out."),
                "(555) 555-0100"
            ),
            "Harbor Realty help: (555) 555-0100. Reply STOP to opt out."
        );
    }
}
