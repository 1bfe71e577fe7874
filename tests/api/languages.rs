//! Texts in the lead's language (README.md "Spanish"): detected from their texts, answered in
//! Spanish, a Spanish opt-out confirmed in Spanish once, routed to an agent who speaks Spanish;
//! the lead's ESPAÑOL / ENGLISH and the agent's choice in the thread.

use chrono::Duration;

use crate::helpers::*;

const LEAD: &str = "+16175550123";
const LEAD2: &str = "+16175550124";
const MAIN_ST: &str = "+15555550100";
const SAM: &str = "+15555550101";
const AVA: &str = "+15555550102";

async fn language_of(app: &TestApp, phone: &str) -> (Option<String>, Option<String>) {
    sqlx::query_as("select language, language_how from contact where phone = $1")
        .bind(phone)
        .fetch_one(&app.db.pool)
        .await
        .expect("contact")
}

async fn owner(app: &TestApp, phone: &str) -> Option<String> {
    sqlx::query_scalar(
        "select a.name from conversation c join contact ct using (contact_id)
           left join agent a on a.agent_id = c.assigned_agent_id where ct.phone = $1",
    )
    .bind(phone)
    .fetch_one(&app.db.pool)
    .await
    .expect("conversation")
}

fn texts_to(app: &TestApp, to: &str) -> Vec<String> {
    app.fake
        .messages()
        .into_iter()
        .filter(|m| m.to == to)
        .map(|m| m.body)
        .collect()
}

#[tokio::test]
async fn a_spanish_lead_is_detected_routed_to_a_speaker_answered_and_confirmed_in_spanish() {
    let app = spawn_app().await;
    // They write first, in Spanish: detected, and the new conversation goes to Ava (who speaks
    // Spanish) rather than Sam (first in the ring, English only).
    app.text_in(
        LEAD,
        MAIN_ST,
        "Hola, vi el letrero de la casa en Main St. ¿Todavía está disponible? Me gustaría verla",
    )
    .await;
    assert_eq!(
        language_of(&app, LEAD).await,
        (Some("es".into()), Some("detected".into()))
    );
    assert_eq!(owner(&app, LEAD).await.as_deref(), Some("Ava Chen"));
    let trace: Vec<(String, Option<String>)> = sqlx::query_as(
        "select kind, detail from conversation_event order by conversation_event_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("trace");
    assert_eq!(
        trace,
        vec![
            ("language".into(), Some("es:detected".into())),
            ("routed".into(), Some("all+es".into())),
        ]
    );
    app.run_until_quiet(Duration::minutes(2)).await;
    assert_eq!(texts_to(&app, AVA).len(), 1, "Ava is told of the reply");
    assert!(texts_to(&app, SAM).is_empty());

    // Two days on, a missed call: the text-back is the Spanish template, with the Spanish
    // opt-out words. (Right after their text, the text-back would be cancelled: they wrote.)
    let later = textback::clock::Clock::now(app.clock.as_ref()) + Duration::days(2);
    app.clock.set(later);
    app.missed_call(LEAD, MAIN_ST).await;
    app.run_until_quiet(Duration::minutes(5)).await;
    let to_lead = texts_to(&app, LEAD);
    assert_eq!(to_lead.len(), 1, "{to_lead:?}");
    assert!(
        // (Sam's name: nobody answered the reply in two days, so the escalation moved it on
        // to the one agent left.)
        to_lead[0].starts_with("Hola, soy Sam de Harbor Realty. Perdon por no contestar")
            && to_lead[0].ends_with("Responde PARA para no recibir mas."),
        "{}",
        to_lead[0]
    );

    // BAJA: suppressed, confirmed in Spanish; PARA after it is not confirmed again.
    app.text_in(LEAD, MAIN_ST, "BAJA").await;
    app.drain().await;
    app.text_in(LEAD, MAIN_ST, "PARA").await;
    app.drain().await;
    let to_lead = texts_to(&app, LEAD);
    assert_eq!(
        to_lead[1..],
        [
            "Harbor Realty: ya no recibiras mas mensajes nuestros. Responde START para volver a recibirlos."
        ],
        "{to_lead:?}"
    );
    let suppressed: i64 = sqlx::query_scalar(
        "select count(*) from suppression where phone = $1 and lifted_at is null",
    )
    .bind(LEAD)
    .fetch_one(&app.db.pool)
    .await
    .expect("suppression");
    assert_eq!(suppressed, 1);
    // Nothing else was asked of the carrier for the lead (the follow-up is cancelled).
    app.run_until_quiet(Duration::days(3)).await;
    assert_eq!(texts_to(&app, LEAD).len(), 2);
}

#[tokio::test]
async fn a_spanish_keyword_alone_sets_spanish_and_is_answered_in_it() {
    let app = spawn_app().await;
    app.missed_call(LEAD, MAIN_ST).await;
    app.run_until_quiet(Duration::minutes(5)).await;
    let first = texts_to(&app, LEAD);
    assert!(first[0].starts_with("Hi there, this is Sam"), "{first:?}");
    app.text_in(LEAD, MAIN_ST, "ayuda").await;
    app.drain().await;
    app.text_in(LEAD, MAIN_ST, "Basta!").await;
    app.drain().await;
    assert_eq!(
        language_of(&app, LEAD).await,
        (Some("es".into()), Some("detected".into()))
    );
    let sent = texts_to(&app, LEAD);
    assert_eq!(sent.len(), 3, "{sent:?}");
    // AYUDA is answered in Spanish (a help word is Spanish too), with the office's number.
    assert!(
        sent[1].starts_with("Harbor Realty: para AYUDA llama al (555) 555-01")
            && sent[1].ends_with("Responde PARA para no recibir mas."),
        "{sent:?}"
    );
    assert_eq!(
        sent[2],
        "Harbor Realty: ya no recibiras mas mensajes nuestros. Responde START para volver a recibirlos."
    );
}

#[tokio::test]
async fn the_lead_s_keyword_and_the_agent_s_choice_beat_a_guess() {
    let app = spawn_app().await;
    app.text_in(LEAD2, MAIN_ST, "ESPAÑOL").await;
    assert_eq!(
        language_of(&app, LEAD2).await,
        (Some("es".into()), Some("keyword".into()))
    );
    // A long English text does not overturn what they asked for.
    app.text_in(
        LEAD2,
        MAIN_ST,
        "Is the house on Main Street still available? I would like to see it this weekend",
    )
    .await;
    assert_eq!(language_of(&app, LEAD2).await.0.as_deref(), Some("es"));

    // Their agent sets English in the thread: recorded as the agent's, shown in the thread.
    add_login(
        &app.db.pool,
        "harbor",
        "ava@harbor.example",
        "correct horse battery",
    )
    .await;
    let mut ava = app
        .log_in("ava@harbor.example", "correct horse battery")
        .await;
    let id: i64 = sqlx::query_scalar(
        "select c.conversation_id from conversation c join contact ct using (contact_id) where ct.phone = $1",
    )
    .bind(LEAD2)
    .fetch_one(&app.db.pool)
    .await
    .expect("conversation");
    let page = ava.get(&format!("/inbox/c/{id}")).await.body;
    assert!(
        page.contains("Language: Español (they asked for it by text)"),
        "{page}"
    );
    assert_eq!(
        ava.post(&format!("/inbox/c/{id}/language"), &[("language", "en")])
            .await
            .status,
        303
    );
    assert_eq!(
        language_of(&app, LEAD2).await,
        (Some("en".into()), Some("agent".into()))
    );
    let page = ava.get(&format!("/inbox/c/{id}")).await.body;
    assert!(
        page.contains("Language: English, set by Ava Chen"),
        "{page}"
    );
    // A Spanish text no longer changes it; their own keyword does.
    app.text_in(
        LEAD2,
        MAIN_ST,
        "Gracias, nos vemos el sábado por la mañana en la casa",
    )
    .await;
    assert_eq!(language_of(&app, LEAD2).await.0.as_deref(), Some("en"));
    app.text_in(LEAD2, MAIN_ST, "español").await;
    assert_eq!(
        language_of(&app, LEAD2).await,
        (Some("es".into()), Some("keyword".into()))
    );
    // Set to English by the agent, a Spanish opt-out word is still confirmed in Spanish.
    assert_eq!(
        ava.post(&format!("/inbox/c/{id}/language"), &[("language", "en")])
            .await
            .status,
        303
    );
    app.text_in(LEAD2, MAIN_ST, "BAJA").await;
    app.drain().await;
    assert_eq!(
        texts_to(&app, LEAD2).last().map(String::as_str),
        Some(
            "Harbor Realty: ya no recibiras mas mensajes nuestros. Responde START para volver a recibirlos."
        )
    );
    assert_eq!(
        language_of(&app, LEAD2).await.0.as_deref(),
        Some("en"),
        "the choice stays"
    );
    // A language textback does not write: 400, nothing changed.
    let r = ava
        .post(&format!("/inbox/c/{id}/language"), &[("language", "fr")])
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(language_of(&app, LEAD2).await.0.as_deref(), Some("en"));
}

#[tokio::test]
async fn the_dashboard_counts_leads_by_language() {
    let app = spawn_app().await;
    app.text_in(
        LEAD,
        MAIN_ST,
        "Hola, ¿me puede llamar mañana por la tarde por favor?",
    )
    .await;
    app.missed_call(LEAD, MAIN_ST).await;
    app.missed_call(LEAD2, MAIN_ST).await;
    app.run_until_quiet(Duration::minutes(5)).await;
    add_login(
        &app.db.pool,
        "harbor",
        "riley@harbor.example",
        "correct horse battery",
    )
    .await;
    let mut riley = app
        .log_in("riley@harbor.example", "correct horse battery")
        .await;
    let page = riley.get("/dashboard").await.body;
    assert!(page.contains("By language"), "{page}");
    let csv = riley.get("/dashboard/export.csv").await.body;
    let rows: Vec<&str> = csv.lines().filter(|l| l.contains(",language,")).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows.iter().any(|r| r.contains(",language,Español,"))
            && rows.iter().any(|r| r.contains(",language,English,")),
        "{csv}"
    );
}
