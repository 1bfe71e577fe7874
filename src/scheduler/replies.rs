//! Texts that answer the contact: keyword responses (`keyword_reply`: the opt-out and opt-in
//! confirmations and the help text of docs/compliance.md §4.5) and agents' replies from the inbox
//! (`agent_reply`). Both pass the whole gate in the pre-send transaction, like every text.

use super::{Outcome, send, text_back};
use crate::context::AppState;
use crate::domain::compliance_text::{self, Which};
use crate::domain::gate::{self, KeywordFacts};
use crate::domain::language::Language;
use crate::domain::phone::PhoneNumber;
use crate::domain::sms_text;
use crate::store::{self, contacts, jobs, messages, numbers};

/// The compliance text of docs/compliance.md §4.5 for `kind`, in `language`: the brokerage's own
/// wording from the setup file, else the default.
pub fn keyword_text(
    kind: gate::Kind,
    language: Language,
    brokerage: &str,
    compliance: &store::gate::ComplianceSettings,
    office_phone: &str,
) -> String {
    let which = match kind {
        gate::Kind::OptOutAck => Which::OptOut,
        gate::Kind::OptInAck => Which::OptIn,
        _ => Which::Help,
    };
    compliance_text::render(
        which,
        language,
        compliance.own_text(which, language),
        brokerage,
        office_phone,
    )
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
    // The language of the conversation (docs/compliance.md §4.5): the contact's, which a
    // Spanish keyword itself sets; and a Spanish keyword is answered in Spanish even when the
    // contact's language was chosen as English.
    let keyword_body = {
        let mut conn = state.pool.acquire().await?;
        messages::body(&mut conn, job.brokerage_id, p.inbound_message_id).await?
    };
    let language = if keyword_body
        .as_deref()
        .is_some_and(crate::domain::keywords::is_spanish_keyword)
    {
        Language::Es
    } else {
        contact.language_or(rules.default_language())
    };
    let body = keyword_text(
        kind,
        language,
        &rules.name,
        &rules.compliance,
        &office_phone,
    );
    let out = send::Outgoing {
        media_urls: &[],
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
    // Its photo, at the address Twilio fetches it from (README.md "Pictures").
    let tokens =
        store::media::tokens_for_send(&mut conn, brokerage, &p.media_ids, state.clock.now())
            .await?;
    drop(conn);
    if tokens.len() != p.media_ids.len() {
        return Ok(Outcome::Dead("the reply's photo is gone".into()));
    }
    let media_urls: Vec<String> = tokens
        .iter()
        .map(|t| state.config.public_url.join(&format!("/media/{t}")))
        .collect();
    let body = if first {
        let language = contact.language_or(rules.default_language());
        sms_text::identify_in(&p.body, &rules.name, true, language)
    } else {
        p.body.clone()
    };
    let out = send::Outgoing {
        media_urls: &media_urls,
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
    fn the_brokerage_s_own_wording_wins_in_its_language_only() {
        let c = store::gate::ComplianceSettings {
            help_text: Some("{brokerage} help: {office_phone}. Reply STOP to opt out.".into()),
            ..Default::default()
        };
        assert_eq!(
            keyword_text(
                gate::Kind::Help,
                Language::En,
                "Harbor Realty",
                &c,
                "(555) 555-0100"
            ),
            "Harbor Realty help: (555) 555-0100. Reply STOP to opt out."
        );
        assert_eq!(
            keyword_text(
                gate::Kind::Help,
                Language::Es,
                "Harbor Realty",
                &c,
                "(555) 555-0100"
            ),
            "Harbor Realty: para AYUDA llama al (555) 555-0100. Pueden aplicar tarifas de mensajes y datos. Responde PARA para no recibir mas."
        );
        assert_eq!(
            keyword_text(
                gate::Kind::OptOutAck,
                Language::Es,
                "Harbor Realty",
                &c,
                "x"
            ),
            "Harbor Realty: ya no recibiras mas mensajes nuestros. Responde START para volver a recibirlos."
        );
        assert_eq!(
            keyword_text(gate::Kind::OptInAck, Language::En, "Harbor Realty", &c, "x"),
            "Harbor Realty: you are resubscribed to our texts. Reply STOP to opt out."
        );
    }
}
