//! Routing and agents on their phones (README.md "Routing", "Agents on their phones";
//! docs/routing.md): round robin, first to claim (one winner), availability, the move on
//! escalation, replies and commands texted from an agent's phone, and the sign-in links of
//! alert texts.

use chrono::Duration;

use crate::helpers::*;

const LEAD: &str = "+16175550123";
const LEAD2: &str = "+16175550124";
const LEAD3: &str = "+16175550125";
const LEAD4: &str = "+16175550126";
const MAIN_ST: &str = "+15555550100";
const ELM_ST: &str = "+15555550110";
const SAM: &str = "+15555550101";
const AVA: &str = "+15555550102";
const JO: &str = "+15555550111";
const MORGAN: &str = "+15555550103";

fn routed(mode: &str) -> String {
    DEMO.replace(
        "missed_message = \"Sorry we missed you. We will text you in a moment.\"",
        &format!(
            "missed_message = \"Sorry we missed you. We will text you in a moment.\"\nrouting = \"{mode}\""
        ),
    )
}

async fn app_with(setup: String) -> TestApp {
    spawn_app_with(AppOptions {
        setup: Some(setup),
        ..AppOptions::default()
    })
    .await
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

async fn conversation_of(app: &TestApp, phone: &str) -> i64 {
    sqlx::query_scalar(
        "select c.conversation_id from conversation c join contact ct using (contact_id) where ct.phone = $1",
    )
    .bind(phone)
    .fetch_one(&app.db.pool)
    .await
    .expect("conversation")
}

async fn set_away(app: &TestApp, email: &str, state: &str) {
    sqlx::query("update agent set availability = $2, back_on = case when $2 = 'vacation' then date '2026-06-20' end where email = $1")
        .bind(email)
        .bind(state)
        .execute(&app.db.pool)
        .await
        .expect("availability");
}

async fn trace(app: &TestApp, phone: &str) -> Vec<(String, Option<String>, Option<String>)> {
    sqlx::query_as(
        "select e.kind, t.name, e.detail from conversation_event e
           join conversation c using (conversation_id) join contact ct using (contact_id)
           left join agent t on t.agent_id = e.to_agent_id
          where ct.phone = $1 order by e.conversation_event_id",
    )
    .bind(phone)
    .fetch_all(&app.db.pool)
    .await
    .expect("trace")
}

async fn rang(app: &TestApp, sid: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select a.name from call c cross join unnest(c.rang_agent_ids) with ordinality as r(agent_id, ord)
           join agent a on a.agent_id = r.agent_id where c.call_sid = $1 order by r.ord",
    )
    .bind(sid)
    .fetch_all(&app.db.pool)
    .await
    .expect("rang")
}

fn texts_to(app: &TestApp, to: &str) -> Vec<String> {
    app.alerts_to(to)
}

/// An agent's text from their phone to a brokerage number, signed as Twilio signs it.
async fn agent_texts(app: &TestApp, from: &str, to: &str, body: &str) {
    app.text_in(from, to, body).await;
}

#[tokio::test]
async fn round_robin_gives_new_leads_in_turn_and_skips_an_agent_who_is_away() {
    let app = app_with(routed("round_robin")).await;
    for lead in [LEAD, LEAD2, LEAD3] {
        app.missed_call(lead, MAIN_ST).await;
    }
    assert_eq!(owner(&app, LEAD).await.as_deref(), Some("Sam Rivera"));
    assert_eq!(owner(&app, LEAD2).await.as_deref(), Some("Ava Chen"));
    assert_eq!(owner(&app, LEAD3).await.as_deref(), Some("Sam Rivera"));
    // Ava goes away: her turn passes to Sam, the trace says why, and the call rings Sam alone.
    set_away(&app, "ava@harbor.example", "away").await;
    let sid = app.missed_call(LEAD4, MAIN_ST).await;
    assert_eq!(owner(&app, LEAD4).await.as_deref(), Some("Sam Rivera"));
    assert_eq!(rang(&app, &sid).await, ["Sam Rivera"]);
    assert_eq!(
        trace(&app, LEAD4).await,
        vec![
            (
                "skipped".into(),
                Some("Ava Chen".into()),
                Some("away".into())
            ),
            (
                "routed".into(),
                Some("Sam Rivera".into()),
                Some("round_robin".into())
            ),
        ]
    );
    // A known lead's call rings its owner alone.
    let again = app.missed_call(LEAD2, MAIN_ST).await;
    assert_eq!(
        rang(&app, &again).await,
        ["Sam Rivera"],
        "Ava is away: her lead rings the available agents"
    );
    set_away(&app, "ava@harbor.example", "available").await;
    let back = app.missed_call(LEAD2, MAIN_ST).await;
    assert_eq!(rang(&app, &back).await, ["Ava Chen"]);
    // The thread shows the trace in words.
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let conv = conversation_of(&app, LEAD4).await;
    let page = sam.get(&format!("/inbox/c/{conv}")).await;
    assert!(
        page.body.contains("Ava Chen away: skipped"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Routed to Sam Rivera: next in turn"));
}

#[tokio::test]
async fn first_to_claim_offers_every_available_agent_and_of_two_claims_in_the_same_second_one_wins()
{
    let app = app_with(routed("first_to_claim")).await;
    app.missed_call(LEAD, MAIN_ST).await;
    app.drain().await;
    let conv = conversation_of(&app, LEAD).await;
    assert_eq!(owner(&app, LEAD).await, None, "unowned while offered");
    for phone in [SAM, AVA] {
        let texts = texts_to(&app, phone);
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert!(
            texts[0].starts_with(&format!("Harbor Realty #{conv}: new lead +1617***0123 about 123 Main St, offered to you and others."))
                && texts[0].ends_with("Reply CLAIM to take it."),
            "{}",
            texts[0]
        );
    }
    // Both claim at once: one owns it, the other is told who.
    let (a, b) = tokio::join!(
        agent_texts(&app, SAM, MAIN_ST, "CLAIM"),
        agent_texts(&app, AVA, MAIN_ST, "claim")
    );
    let _ = (a, b);
    app.drain().await;
    let winner = owner(&app, LEAD).await.expect("claimed");
    let (won, lost) = if winner == "Sam Rivera" {
        (SAM, AVA)
    } else {
        (AVA, SAM)
    };
    let won_texts = texts_to(&app, won);
    let lost_texts = texts_to(&app, lost);
    assert!(
        won_texts
            .iter()
            .any(|t| t.contains(&format!("#{conv} +1617***0123 is yours"))),
        "{won_texts:?}"
    );
    assert!(
        lost_texts.iter().any(
            |t| t.contains(&format!("is already {winner}'s. Nothing changed."))
                || t.contains(&format!("was claimed by {winner}"))
        ),
        "{lost_texts:?}"
    );
    let claims: Vec<(String, Option<i64>)> =
        sqlx::query_as("select outcome, claimed_by from claim_offer")
            .fetch_all(&app.db.pool)
            .await
            .expect("offers");
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].0, "claimed");
    let claimed_events: i64 =
        sqlx::query_scalar("select count(*) from conversation_event where kind = 'claimed'")
            .fetch_one(&app.db.pool)
            .await
            .expect("events");
    assert_eq!(claimed_events, 1, "one claim won");
    // A claim of a claimed lead changes nothing.
    agent_texts(&app, lost, MAIN_ST, "claim").await;
    app.drain().await;
    assert_eq!(owner(&app, LEAD).await.as_deref(), Some(winner.as_str()));
    // The timeout finds it claimed and does nothing.
    app.clock.advance(Duration::minutes(6));
    app.drain().await;
    assert_eq!(owner(&app, LEAD).await.as_deref(), Some(winner.as_str()));
    let jobs: Vec<(String, Option<String>)> =
        sqlx::query_as("select state, reason from job where kind = 'claim_timeout'")
            .fetch_all(&app.db.pool)
            .await
            .expect("jobs");
    assert_eq!(jobs, vec![("done".into(), Some("claimed".into()))]);
}

#[tokio::test]
async fn an_unclaimed_offer_falls_back_to_round_robin_then_to_the_managers() {
    let app = app_with(routed("first_to_claim")).await;
    app.missed_call(LEAD, MAIN_ST).await;
    app.drain().await;
    app.clock.advance(Duration::minutes(5));
    app.drain().await;
    assert_eq!(owner(&app, LEAD).await.as_deref(), Some("Sam Rivera"));
    assert!(
        texts_to(&app, SAM)
            .iter()
            .any(|t| t.contains("was not claimed in 5 min: it is yours now")),
        "{:?}",
        texts_to(&app, SAM)
    );
    // Nobody available: the offer goes to nobody, the lead to Downtown's manager.
    set_away(&app, "sam@harbor.example", "away").await;
    set_away(&app, "ava@harbor.example", "vacation").await;
    let sid = app.missed_call(LEAD2, MAIN_ST).await;
    app.drain().await;
    assert_eq!(owner(&app, LEAD2).await.as_deref(), Some("Morgan Lee"));
    assert_eq!(rang(&app, &sid).await, ["Morgan Lee"]);
    let kinds: Vec<String> = trace(&app, LEAD2).await.into_iter().map(|t| t.0).collect();
    assert_eq!(kinds, ["skipped", "skipped", "to_managers"]);
}

#[tokio::test]
async fn an_agent_outside_working_hours_is_skipped() {
    // 14:00 UTC is 10:00 in New York: Sam works from noon.
    let setup = DEMO.replace(
        "phone = \"+15555550101\"\noffice = \"downtown\"\nrole = \"agent\"",
        "phone = \"+15555550101\"\noffice = \"downtown\"\nrole = \"agent\"\nhours = \"12:00-20:00\"",
    );
    assert_ne!(setup, DEMO);
    let app = app_with(setup).await;
    app.missed_call(LEAD, MAIN_ST).await;
    assert_eq!(owner(&app, LEAD).await.as_deref(), Some("Ava Chen"));
    assert_eq!(
        trace(&app, LEAD).await[0],
        (
            "skipped".into(),
            Some("Sam Rivera".into()),
            Some("off_hours".into())
        )
    );
}

#[tokio::test]
async fn the_escalation_moves_the_conversation_to_the_next_agent_and_tells_both() {
    let app = spawn_app().await;
    app.missed_call(LEAD, MAIN_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    app.text_in(LEAD, MAIN_ST, "Is it still available?").await;
    app.drain().await;
    assert_eq!(owner(&app, LEAD).await.as_deref(), Some("Sam Rivera"));
    app.clock.advance(Duration::minutes(10));
    app.drain().await;
    assert_eq!(owner(&app, LEAD).await.as_deref(), Some("Ava Chen"));
    let conv = conversation_of(&app, LEAD).await;
    assert!(
        texts_to(&app, SAM)
            .iter()
            .any(|t| t == &format!("Harbor Realty: #{conv} +1617***0123 moved to Ava Chen: its reply waited with no answer.")),
        "{:?}",
        texts_to(&app, SAM)
    );
    assert!(
        texts_to(&app, AVA)
            .iter()
            .any(|t| t.contains("reply waited 10 min with no answer: it is yours now")),
        "{:?}",
        texts_to(&app, AVA)
    );
    // The managers still hear of it.
    assert!(!texts_to(&app, MORGAN).is_empty());
    let last = trace(&app, LEAD).await.pop().expect("a move");
    assert_eq!(
        last,
        (
            "reassigned".into(),
            Some("Ava Chen".into()),
            Some("escalated:10".into())
        )
    );
    // Sam is no longer the one alerted: the lead's next reply goes to Ava.
    app.clock.advance(Duration::minutes(6));
    let before = texts_to(&app, SAM).len();
    app.text_in(LEAD, MAIN_ST, "Hello?").await;
    app.drain().await;
    assert_eq!(texts_to(&app, SAM).len(), before);
    assert!(
        texts_to(&app, AVA)
            .iter()
            .any(|t| t.contains("replied about 123 Main St: \"Hello?\""))
    );
}

/// A lead that missed, got the text-back, and replied: Sam (the owner) has one open alert.
async fn lead_replied(app: &TestApp, lead: &str) -> i64 {
    app.missed_call(lead, MAIN_ST).await;
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    app.text_in(lead, MAIN_ST, "Can I see it Saturday?").await;
    app.drain().await;
    conversation_of(app, lead).await
}

#[tokio::test]
async fn an_agents_text_is_relayed_to_the_lead_from_the_brokerage_number_and_recorded_as_their_reply()
 {
    let app = spawn_app().await;
    let conv = lead_replied(&app, LEAD).await;
    let alert = texts_to(&app, SAM).pop().expect("an alert");
    assert!(
        alert.contains(&format!("Harbor Realty #{conv}: "))
            && alert
                .ends_with("Reply here to text the lead, or CLAIM, CLOSE, TAKE OVER, CALL BACK."),
        "{alert}"
    );
    agent_texts(
        &app,
        SAM,
        MAIN_ST,
        "Yes! Saturday at 11 works. See you at 123 Main St.",
    )
    .await;
    app.drain().await;
    let to_lead: Vec<(Option<String>, String)> = app
        .fake
        .messages()
        .into_iter()
        .filter(|m| m.to == LEAD)
        .map(|m| (m.from, m.body))
        .collect();
    let last = to_lead.last().expect("a text to the lead");
    assert_eq!(
        last.0.as_deref(),
        Some(MAIN_ST),
        "from the brokerage number, never the agent's phone"
    );
    assert_eq!(last.1, "Yes! Saturday at 11 works. See you at 123 Main St.");
    assert!(!to_lead.iter().any(|(from, _)| from.as_deref() == Some(SAM)));
    let row: (String, Option<String>) = sqlx::query_as(
        "select m.kind, j.payload->>'agent' from message m join job j using (job_id)
          where m.direction = 'outbound' and m.contact_id is not null order by m.message_id desc limit 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("the reply");
    assert_eq!(
        (row.0.as_str(), row.1.as_deref()),
        ("manual", Some("sam@harbor.example"))
    );
    let outcome: String = sqlx::query_scalar("select outcome from agent_text")
        .fetch_one(&app.db.pool)
        .await
        .expect("agent text");
    assert_eq!(outcome, "reply");
    // The agent's own text is not a lead's: no contact for Sam's phone.
    let contacts: i64 = sqlx::query_scalar("select count(*) from contact where phone = $1")
        .bind(SAM)
        .fetch_one(&app.db.pool)
        .await
        .expect("contacts");
    assert_eq!(contacts, 0);
    // The thread says the reply came by text.
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let page = sam.get(&format!("/inbox/c/{conv}")).await;
    assert!(
        page.body
            .contains("Sam Rivera replied by text from their phone"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn two_open_alerts_get_a_one_line_question_and_nothing_goes_to_a_lead() {
    let app = spawn_app().await;
    let a = lead_replied(&app, LEAD).await;
    let b = lead_replied(&app, LEAD2).await;
    let to_leads = |app: &TestApp| {
        app.fake
            .messages()
            .into_iter()
            .filter(|m| m.to == LEAD || m.to == LEAD2)
            .count()
    };
    let before = to_leads(&app);
    agent_texts(&app, SAM, MAIN_ST, "ok, calling you in 5").await;
    app.drain().await;
    assert_eq!(to_leads(&app), before, "nothing to a lead");
    let question = texts_to(&app, SAM).pop().expect("a question");
    assert_eq!(
        question,
        format!(
            "Harbor Realty: Which lead? Start your text with its number: #{b} +1617***0124, #{a} +1617***0123. Nothing was sent."
        )
    );
    assert!(!question.contains('\n'));
    // Named, it goes.
    agent_texts(&app, SAM, MAIN_ST, &format!("#{a} ok, calling you in 5")).await;
    app.drain().await;
    assert_eq!(to_leads(&app), before + 1);
    assert_eq!(
        app.fake
            .messages()
            .into_iter()
            .rfind(|m| m.to == LEAD)
            .map(|m| m.body)
            .as_deref(),
        Some("ok, calling you in 5")
    );
}

#[tokio::test]
async fn an_agent_can_never_reach_an_opted_out_lead_nor_another_offices_lead() {
    let app = spawn_app().await;
    let conv = lead_replied(&app, LEAD).await;
    app.text_in(LEAD, MAIN_ST, "STOP").await;
    app.drain().await;
    let before = app
        .fake
        .messages()
        .into_iter()
        .filter(|m| m.to == LEAD)
        .count();
    agent_texts(&app, SAM, MAIN_ST, "Are you still looking?").await;
    app.drain().await;
    assert_eq!(
        app.fake
            .messages()
            .into_iter()
            .filter(|m| m.to == LEAD)
            .count(),
        before
    );
    assert_eq!(
        texts_to(&app, SAM).pop().as_deref(),
        Some(
            format!("Harbor Realty: Not sent to #{conv} +1617***0123: they opted out of texts")
                .as_str()
        )
    );
    // Jo (Waterfront) names Downtown's conversation: not theirs, nothing sent.
    agent_texts(&app, JO, MAIN_ST, &format!("#{conv} hi there")).await;
    agent_texts(&app, JO, ELM_ST, &format!("#{conv} hi there")).await;
    app.drain().await;
    assert_eq!(
        app.fake
            .messages()
            .into_iter()
            .filter(|m| m.to == LEAD)
            .count(),
        before
    );
    let jo = texts_to(&app, JO);
    assert_eq!(jo.len(), 2, "{jo:?}");
    assert!(jo.iter().all(|t| t.contains(&format!(
        "#{conv} is not one of your open leads on this number. Nothing was sent."
    ))));
    let outcomes: Vec<(String, Option<String>)> =
        sqlx::query_as("select outcome, detail from agent_text order by agent_text_id")
            .fetch_all(&app.db.pool)
            .await
            .expect("texts");
    assert_eq!(
        outcomes,
        vec![
            ("refused".into(), Some("opted_out".into())),
            ("refused".into(), Some("no_conversation".into())),
            ("refused".into(), Some("no_conversation".into())),
        ]
    );
}

#[tokio::test]
async fn a_removed_agents_text_is_recorded_and_ignored_and_a_stop_from_an_agent_is_never_relayed() {
    let app = spawn_app().await;
    lead_replied(&app, LEAD).await;
    let before = app.fake.messages().len();
    agent_texts(&app, SAM, MAIN_ST, "STOP").await;
    app.drain().await;
    assert_eq!(
        app.fake.messages().len(),
        before,
        "a keyword is neither relayed nor answered"
    );
    // Ava leaves the setup file; her phone's texts are kept and ignored.
    let without_ava = DEMO
        .replace(
            "[[agents]]\nemail = \"ava@harbor.example\"\nname = \"Ava Chen\"\nphone = \"+15555550102\"\noffice = \"downtown\"\nrole = \"agent\"\n",
            "",
        )
        .replace("ring = [\"sam@harbor.example\", \"ava@harbor.example\"]", "ring = [\"sam@harbor.example\"]");
    assert_ne!(without_ava, DEMO);
    apply_setup(&app.db.pool, &without_ava).await;
    agent_texts(&app, AVA, MAIN_ST, "claim").await;
    app.drain().await;
    assert_eq!(app.fake.messages().len(), before);
    let outcomes: Vec<(String, Option<String>, Option<i64>)> =
        sqlx::query_as("select outcome, detail, agent_id from agent_text order by agent_text_id")
            .fetch_all(&app.db.pool)
            .await
            .expect("texts");
    assert_eq!(
        outcomes
            .iter()
            .map(|o| (o.0.as_str(), o.1.as_deref(), o.2.is_some()))
            .collect::<Vec<_>>(),
        vec![
            ("ignored", Some("keyword"), true),
            ("ignored", Some("removed_agent"), false)
        ]
    );
    let contacts: i64 = sqlx::query_scalar("select count(*) from contact where phone = any($1)")
        .bind(vec![SAM, AVA])
        .fetch_one(&app.db.pool)
        .await
        .expect("contacts");
    assert_eq!(contacts, 0);
}

#[tokio::test]
async fn take_over_close_and_help_by_text() {
    let app = spawn_app().await;
    let conv = lead_replied(&app, LEAD).await;
    agent_texts(&app, SAM, MAIN_ST, "help").await;
    app.drain().await;
    assert!(
        texts_to(&app, SAM)
            .pop()
            .expect("help")
            .contains("CLAIM, CLOSE, TAKE OVER, CALL BACK")
    );
    agent_texts(&app, SAM, MAIN_ST, "Take over").await;
    app.drain().await;
    let taken: Option<String> =
        sqlx::query_scalar("select taken_over_by from conversation where conversation_id = $1")
            .bind(conv)
            .fetch_one(&app.db.pool)
            .await
            .expect("conversation");
    assert_eq!(taken.as_deref(), Some("sam@harbor.example"));
    agent_texts(&app, SAM, MAIN_ST, "close").await;
    app.drain().await;
    let closed: bool =
        sqlx::query_scalar("select is_closed from conversation where conversation_id = $1")
            .bind(conv)
            .fetch_one(&app.db.pool)
            .await
            .expect("conversation");
    assert!(closed);
    assert_eq!(
        texts_to(&app, SAM).pop().as_deref(),
        Some(format!("Harbor Realty: #{conv} +1617***0123 closed.").as_str())
    );
}

fn signin_link(alert: &str) -> String {
    let start = alert.find("/s/").expect("a sign-in link");
    alert[start..]
        .split_whitespace()
        .next()
        .expect("link")
        .trim_end_matches('.')
        .to_owned()
}

#[tokio::test]
async fn an_alerts_sign_in_link_opens_the_conversation_once_and_is_worth_nothing_forwarded() {
    let app = spawn_app().await;
    add_login(&app.db.pool, "harbor", "sam@harbor.example", PASSWORD).await;
    let conv = lead_replied(&app, LEAD).await;
    let path = signin_link(&texts_to(&app, SAM).pop().expect("alert"));
    // A GET (a link preview) changes nothing.
    let shown = app.get(&path).await;
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains("Open the conversation"));
    let http = no_redirects();
    let used = http
        .post(format!("{}{path}", app.base_url))
        .send()
        .await
        .expect("post");
    assert_eq!(used.status(), 303);
    assert_eq!(
        used.headers().get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/inbox/c/{conv}").as_str())
    );
    let cookie = used
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("tb_session="))
        .and_then(|c| c.split(';').next())
        .expect("a session")
        .to_owned();
    let page = http
        .get(format!("{}/inbox/c/{conv}", app.base_url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("thread");
    assert_eq!(page.status(), 200);
    // Forwarded after the first use: nothing.
    let again = app.post_raw(&path, Vec::new(), &[]).await;
    assert_eq!(again.status, 410);
    assert!(again.body.contains("used already"));
    // Another alert's link expires in minutes.
    app.clock.advance(Duration::minutes(6));
    app.text_in(LEAD, MAIN_ST, "Hello?").await;
    app.drain().await;
    let fresh = signin_link(&texts_to(&app, SAM).pop().expect("alert"));
    app.clock.advance(Duration::minutes(16));
    let late = app.post_raw(&fresh, Vec::new(), &[]).await;
    assert_eq!(late.status, 410);
    assert!(late.body.contains("expired"));
    // Unknown tokens are 404.
    assert_eq!(app.get("/s/not-a-token").await.status, 404);
}

#[tokio::test]
async fn a_removed_persons_sign_in_link_is_worth_nothing() {
    let app = spawn_app().await;
    add_login(&app.db.pool, "harbor", "sam@harbor.example", PASSWORD).await;
    lead_replied(&app, LEAD).await;
    let path = signin_link(&texts_to(&app, SAM).pop().expect("alert"));
    let without_sam = DEMO.replace("ring = [\"sam@harbor.example\", \"ava@harbor.example\"]", "ring = [\"ava@harbor.example\"]").replace(
        "[[agents]]\nemail = \"sam@harbor.example\"\nname = \"Sam Rivera\"\nphone = \"+15555550101\"\noffice = \"downtown\"\nrole = \"agent\"\n",
        "",
    );
    assert_ne!(without_sam, DEMO);
    apply_setup(&app.db.pool, &without_sam).await;
    let r = app.post_raw(&path, Vec::new(), &[]).await;
    assert!(r.status == 410 || r.status == 404, "{}", r.status);
    assert!(set_cookie(&r, "tb_session").is_none());
}

#[tokio::test]
async fn the_threads_claim_button_claims_once_and_a_late_claim_says_who_has_it() {
    let app = app_with(routed("first_to_claim")).await;
    app.missed_call(LEAD, MAIN_ST).await;
    app.drain().await;
    let conv = conversation_of(&app, LEAD).await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let mut ava = app.person("harbor", "ava@harbor.example").await;
    let page = sam.get(&format!("/inbox/c/{conv}")).await;
    assert!(page.body.contains("Claim this lead"));
    ava.get(&format!("/inbox/c/{conv}")).await;
    let r = sam.post(&format!("/inbox/c/{conv}/claim"), &[]).await;
    assert!(r.status == 303 || r.status == 200, "{}", r.status);
    let late = ava.post(&format!("/inbox/c/{conv}/claim"), &[]).await;
    assert_eq!(late.status, 409);
    assert!(
        late.body
            .contains("Sam Rivera claimed this lead first; nothing changed.")
    );
    assert_eq!(owner(&app, LEAD).await.as_deref(), Some("Sam Rivera"));
    app.drain().await;
    assert!(
        texts_to(&app, AVA)
            .iter()
            .any(|t| t.contains("was claimed by Sam Rivera"))
    );
}
