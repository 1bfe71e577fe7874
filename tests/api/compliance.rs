//! The compliance gate end to end (docs/compliance.md R1–R15, §4 keywords, §5 quiet hours;
//! docs/reliability.md §4, F11, F14): real webhooks, a real database, the fake carrier. Each test
//! checks what the carrier received and what the database recorded (job state and reason,
//! the gate's decision record, the consent ledger).

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use textback::effects::{self, ReplyRefused};
use textback::store::{BrokerageId, suppressions};
use textback_fake_twilio::{Fault, Scope};

use crate::cli::{run, textback, write_temp};
use crate::helpers::*;

const LEAD: &str = "+16175550123";
const MAIN_ST: &str = "+15555550100";
const ELM_ST: &str = "+15555550110";
const BAYSIDE: &str = "+15555550200";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 instant")
}

fn now(app: &TestApp) -> DateTime<Utc> {
    textback::clock::Clock::now(app.clock.as_ref())
}

// ---------------------------------------------------------------------------------------------
// Calls and texts, as Twilio sends them.

fn incoming(call_sid: &str, from: &str, to: &str) -> Vec<(String, String)> {
    let p = with(fixture("voice-incoming.txt"), "CallSid", call_sid);
    let p = with(with(p, "From", from), "Caller", from);
    with(with(p, "To", to), "Called", to)
}

fn dial_no_answer(call_sid: &str, from: &str, to: &str) -> Vec<(String, String)> {
    let p = with(
        fixture("voice-dial-action-no-answer.txt"),
        "CallSid",
        call_sid,
    );
    let p = with(with(p, "From", from), "Caller", from);
    let p = with(with(p, "To", to), "Called", to);
    with(
        with(p, "DialCallStatus", "no-answer"),
        "DialBridged",
        "false",
    )
}

/// A call from `from` to `to` that nobody answers.
async fn missed_call(app: &TestApp, from: &str, to: &str) {
    let sid = new_sid("CA");
    let r = app
        .post_signed("/twilio/voice", &incoming(&sid, from, to))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .post_signed("/twilio/voice/dial", &dial_no_answer(&sid, from, to))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// The text-back's hold delay of the demo file.
fn hold(app: &TestApp) {
    app.clock.advance(Duration::seconds(20));
}

/// An inbound text without `OptOutType`: Twilio's handling did not match it.
fn sms(sid: &str, from: &str, to: &str, body: &str) -> Vec<(String, String)> {
    let p = with(fixture("sms-inbound-reply.txt"), "MessageSid", sid);
    let p = with(with(p, "SmsSid", sid), "SmsMessageSid", sid);
    let p = with(with(p, "From", from), "To", to);
    without(with(p, "Body", body), "OptOutType")
}

/// Posts an inbound text; returns its `MessageSid`.
async fn text(app: &TestApp, from: &str, to: &str, body: &str) -> String {
    let sid = new_sid("SM");
    let r = app
        .post_signed("/twilio/sms", &sms(&sid, from, to, body))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    sid
}

/// Twilio's own STOP handling matched: the fixture with `OptOutType=STOP`.
async fn carrier_stop(app: &TestApp, from: &str, to: &str) -> String {
    let sid = new_sid("SM");
    let p = with(fixture("sms-inbound-stop.txt"), "MessageSid", &sid);
    let p = with(with(p, "SmsSid", &sid), "SmsMessageSid", &sid);
    let p = with(with(p, "From", from), "To", to);
    let r = app.post_signed("/twilio/sms", &p).await;
    assert_eq!(r.status, 200, "{}", r.body);
    sid
}

// ---------------------------------------------------------------------------------------------
// What the carrier received.

/// Bodies the carrier accepted for `to`, in order.
fn texts_to(app: &TestApp, to: &str) -> Vec<String> {
    app.fake
        .messages()
        .into_iter()
        .filter(|m| m.to == to)
        .map(|m| m.body)
        .collect()
}

/// Create requests the fake received (accepted or not), with the test clock at arrival.
fn creates_to(app: &TestApp, to: &str) -> Vec<(DateTime<Utc>, String)> {
    app.fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/Messages.json"))
        .filter(|r| r.params.iter().any(|(k, v)| k == "To" && v == to))
        .map(|r| {
            let body = r
                .params
                .iter()
                .find(|(k, _)| k == "Body")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (r.at, body)
        })
        .collect()
}

/// Texts to leads the carrier was asked to send (alerts to agents' phones left out).
fn creates(app: &TestApp) -> usize {
    app.fake
        .requests()
        .iter()
        .filter(|r| is_lead_text(r))
        .count()
}

// ---------------------------------------------------------------------------------------------
// What the database recorded.

async fn brokerage(app: &TestApp, slug: &str) -> BrokerageId {
    BrokerageId(
        sqlx::query_scalar("select brokerage_id from brokerage where slug = $1")
            .bind(slug)
            .fetch_one(&app.db.pool)
            .await
            .expect("the brokerage"),
    )
}

async fn contact(app: &TestApp, slug: &str, phone: &str) -> i64 {
    sqlx::query_scalar(
        "select contact_id from contact join brokerage using (brokerage_id) where slug = $1 and phone = $2",
    )
    .bind(slug)
    .bind(phone)
    .fetch_one(&app.db.pool)
    .await
    .expect("the contact")
}

async fn number(app: &TestApp, e164: &str) -> i64 {
    sqlx::query_scalar("select number_id from number where e164 = $1")
        .bind(e164)
        .fetch_one(&app.db.pool)
        .await
        .expect("the number")
}

/// The current suppression's source, if the number is suppressed in that brokerage.
async fn suppression(app: &TestApp, slug: &str, phone: &str) -> Option<String> {
    sqlx::query_scalar(
        "select s.source from suppression s join brokerage b using (brokerage_id)
          where b.slug = $1 and s.phone = $2 and s.lifted_at is null",
    )
    .bind(slug)
    .bind(phone)
    .fetch_optional(&app.db.pool)
    .await
    .expect("suppression")
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct Event {
    event: String,
    source: String,
    who: String,
    how: Option<String>,
    evidence: Option<String>,
    raw_text: Option<String>,
    suppressed_after: bool,
}

/// The consent ledger of `phone` in the brokerage, oldest first.
async fn ledger(app: &TestApp, slug: &str, phone: &str) -> Vec<Event> {
    sqlx::query_as::<_, Event>(
        "select e.event, e.source, e.who, e.how, e.evidence, e.raw_text, e.suppressed_after
           from consent_event e join brokerage b using (brokerage_id)
          where b.slug = $1 and e.phone = $2 order by consent_event_id",
    )
    .bind(slug)
    .bind(phone)
    .fetch_all(&app.db.pool)
    .await
    .expect("ledger")
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Decision {
    job_id: Option<i64>,
    decision: String,
    rule: Option<String>,
    reason: String,
    until: Option<DateTime<Utc>>,
    zones: Vec<String>,
    state: Option<String>,
    windows: Vec<String>,
    cap_count: Option<i32>,
    cap_limit: Option<i32>,
}

impl Decision {
    /// (decision, rule, reason)
    fn what(&self) -> (&str, &str, &str) {
        (
            self.decision.as_str(),
            self.rule.as_deref().unwrap_or(""),
            self.reason.as_str(),
        )
    }
}

/// Every gate decision of this `kind` (gate kinds: text_back, follow_up, manual, opt_out_ack,
/// opt_in_ack, help), oldest first.
async fn decisions(app: &TestApp, kind: &str) -> Vec<Decision> {
    sqlx::query_as::<_, Decision>(
        "select job_id, decision, rule, reason, until, zones, state, windows, cap_count, cap_limit
           from gate_decision where kind = $1
          -- jobs that run together decide at the same test-clock instant, in any order:
          -- those are listed in the order the jobs were made
          order by decided_at, job_id, gate_decision_id",
    )
    .bind(kind)
    .fetch_all(&app.db.pool)
    .await
    .expect("decisions")
}

async fn whats(app: &TestApp, kind: &str) -> Vec<(String, String, String)> {
    decisions(app, kind)
        .await
        .iter()
        .map(|d| {
            let (a, b, c) = d.what();
            (a.to_owned(), b.to_owned(), c.to_owned())
        })
        .collect()
}

fn w(decision: &str, rule: &str, reason: &str) -> (String, String, String) {
    (decision.to_owned(), rule.to_owned(), reason.to_owned())
}

/// (state, reason) of the jobs of `kind`, oldest first.
async fn jobs_of(app: &TestApp, kind: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as("select state, reason from job where kind = $1 order by job_id")
        .bind(kind)
        .fetch_all(&app.db.pool)
        .await
        .expect("jobs")
}

fn js(state: &str, reason: Option<&str>) -> (String, Option<String>) {
    (state.to_owned(), reason.map(str::to_owned))
}

/// Counts of the tables the gate and the ledger write (not in helpers' domain snapshot).
async fn compliance_counts(app: &TestApp) -> Vec<i64> {
    let mut out = Vec::new();
    for table in [
        "consent_event",
        "gate_decision",
        "suppression",
        "alert",
        "task",
    ] {
        out.push(app.count(table).await);
    }
    out
}

/// Queues an agent's reply from the inbox, as the inbox does.
async fn agent_reply(
    app: &TestApp,
    phone: &str,
    via: &str,
    agent: &str,
    body: &str,
) -> Result<i64, ReplyRefused> {
    let b = brokerage(app, "harbor").await;
    let contact_id = contact(app, "harbor", phone).await;
    let number_id = number(app, via).await;
    let mut tx = app.db.pool.begin().await.expect("begin");
    let queued = effects::queue_agent_reply(
        &mut tx,
        b,
        textback::store::ContactId(contact_id),
        number_id,
        agent,
        body,
        now(app),
    )
    .await
    .expect("queue the reply");
    tx.commit().await.expect("commit");
    queued
}

/// A setup file: the demo with its `[[follow_ups]]` replaced by `steps` (`after` values).
fn demo_with_follow_ups(steps: &[&str]) -> String {
    let old = "[[follow_ups]]\nafter = \"1d\"\ntemplate = \"Hi {first_name|there}, {agent_first_name} from {brokerage} again. Still interested in {listing|our homes}? Reply here or call {number}. Reply STOP to opt out.\"\n";
    assert!(DEMO.contains(old), "the demo's follow-up changed");
    let new: String = steps
        .iter()
        .enumerate()
        .map(|(i, after)| {
            format!(
                "[[follow_ups]]\nafter = \"{after}\"\ntemplate = \"Step {}: {{brokerage}} about {{listing|our homes}}. Reply STOP to opt out.\"\n\n",
                i + 1
            )
        })
        .collect();
    DEMO.replace(old, &new)
}

/// The demo with more `[compliance]` keys (the demo's `[compliance]` table is its last).
fn demo_with_compliance(extra: &str) -> String {
    assert!(DEMO.trim_end().ends_with("office_phone = \"+15555550100\""));
    format!("{}\n{extra}\n", DEMO.trim_end())
}

async fn spawn_with(setup: String) -> TestApp {
    spawn_app_with(AppOptions {
        setup: Some(setup),
        ..Default::default()
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// R2, R4: opt-out keywords and the one confirmation.

#[tokio::test]
async fn stop_with_punctuation_suppresses_and_gets_exactly_one_confirmation() {
    let app = spawn_app().await;
    let first = text(&app, LEAD, MAIN_ST, "Stop.").await;

    // Suppressed in the transaction that stored the text, with its ledger event.
    assert_eq!(
        suppression(&app, "harbor", LEAD).await.as_deref(),
        Some("keyword")
    );
    assert_eq!(
        ledger(&app, "harbor", LEAD).await,
        vec![Event {
            event: "opt_out".into(),
            source: "keyword".into(),
            who: "contact".into(),
            how: Some("sms".into()),
            evidence: Some(first.clone()),
            raw_text: Some("Stop.".into()),
            suppressed_after: true,
        }]
    );
    let class: Option<String> =
        sqlx::query_scalar("select keyword_class from message where sid = $1")
            .bind(&first)
            .fetch_one(&app.db.pool)
            .await
            .expect("stored");
    assert_eq!(class.as_deref(), Some("opt_out"));

    app.drain().await;
    let sent = texts_to(&app, LEAD);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let confirmation = &sent[0];
    assert!(confirmation.starts_with("Harbor Realty:"), "{confirmation}");
    assert!(confirmation.contains("unsubscribed"), "{confirmation}");
    assert!(confirmation.contains("START"), "{confirmation}");
    assert!(!confirmation.contains("http"), "{confirmation}");
    assert_eq!(
        app.fake.messages()[0].from.as_deref(),
        Some(MAIN_ST),
        "from the number the contact texted"
    );
    assert_eq!(
        whats(&app, "opt_out_ack").await,
        vec![w("allow", "R4", "keyword_response")]
    );
    assert_eq!(jobs_of(&app, "keyword_reply").await, vec![js("sent", None)]);
    let (kind, counted): (Option<String>, bool) =
        sqlx::query_as("select kind, counts_for_cap from message where direction = 'outbound'")
            .fetch_one(&app.db.pool)
            .await
            .expect("the confirmation's row");
    assert_eq!(
        (kind.as_deref(), counted),
        (Some("opt_out_ack"), false),
        "a keyword response is not counted by R9"
    );

    // A second opt-out (a new MessageSid): recorded as evidence, never a second confirmation.
    app.clock.advance(Duration::seconds(30));
    let second = text(&app, LEAD, MAIN_ST, "Stop.").await;
    app.drain().await;
    assert_eq!(texts_to(&app, LEAD).len(), 1, "no second confirmation");
    assert_eq!(
        whats(&app, "opt_out_ack").await,
        vec![
            w("allow", "R4", "keyword_response"),
            w("skip", "R4", "already_confirmed")
        ]
    );
    assert_eq!(
        jobs_of(&app, "keyword_reply").await,
        vec![js("sent", None), js("skipped", Some("already_confirmed"))]
    );
    let events = ledger(&app, "harbor", LEAD).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].evidence.as_deref(), Some(second.as_str()));

    // Twilio retries the same webhook: nothing new at all (docs/reliability.md I5).
    let before = (app.snapshot().await, compliance_counts(&app).await);
    let r = app
        .post_signed("/twilio/sms", &sms(&second, LEAD, MAIN_ST, "Stop."))
        .await;
    assert_eq!(r.status, 200);
    app.drain().await;
    assert_eq!(
        (app.snapshot().await, compliance_counts(&app).await),
        before
    );
    assert_eq!(texts_to(&app, LEAD).len(), 1);
}

#[tokio::test]
async fn a_carrier_exact_stop_is_answered_by_the_carrier_not_by_us() {
    let app = spawn_app().await;
    // `STOP` without OptOutType: carrier-exact, and the demo's Twilio answers keywords.
    let bare = text(&app, LEAD, MAIN_ST, "STOP").await;
    // With OptOutType=STOP (Twilio says it answered).
    let other = "+16175550124";
    let typed = carrier_stop(&app, other, MAIN_ST).await;
    app.run_until_quiet(Duration::hours(1)).await;

    assert_eq!(creates(&app), 0, "the carrier sent the confirmation");
    for (phone, sid, how) in [(LEAD, &bare, "sms"), (other, &typed, "OptOutType")] {
        assert_eq!(
            suppression(&app, "harbor", phone).await.as_deref(),
            Some("carrier_keyword"),
            "{phone}"
        );
        let events = ledger(&app, "harbor", phone).await;
        assert_eq!(events.len(), 1, "{phone}");
        assert_eq!(
            (
                events[0].event.as_str(),
                events[0].how.as_deref(),
                events[0].evidence.as_deref()
            ),
            ("opt_out", Some(how), Some(sid.as_str()))
        );
    }
    assert_eq!(
        whats(&app, "opt_out_ack").await,
        vec![
            w("skip", "R4", "carrier_answered"),
            w("skip", "R4", "carrier_answered")
        ]
    );
    assert_eq!(
        jobs_of(&app, "keyword_reply").await,
        vec![
            js("skipped", Some("carrier_answered")),
            js("skipped", Some("carrier_answered"))
        ]
    );
}

/// `carrier_answers_keywords = false`: a bare `STOP` is ours to confirm; OptOutType still
/// means Twilio answered.
#[tokio::test]
async fn without_carrier_keyword_handling_a_bare_stop_is_confirmed_by_us() {
    let app = spawn_with(demo_with_compliance("carrier_answers_keywords = false")).await;
    text(&app, LEAD, MAIN_ST, "STOP").await;
    carrier_stop(&app, "+16175550124", MAIN_ST).await;
    app.drain().await;
    assert_eq!(texts_to(&app, LEAD).len(), 1);
    assert!(texts_to(&app, "+16175550124").is_empty());
    assert_eq!(
        whats(&app, "opt_out_ack").await,
        vec![
            w("allow", "R4", "keyword_response"),
            w("skip", "R4", "carrier_answered")
        ]
    );
}

#[tokio::test]
async fn a_confirmation_more_than_five_minutes_late_is_never_sent() {
    let app = spawn_app().await;
    text(&app, LEAD, MAIN_ST, "Stop.").await;
    // The worker was down: the confirmation's job runs 6 minutes after the keyword.
    app.clock.advance(Duration::minutes(6));
    app.drain().await;
    assert_eq!(creates(&app), 0);
    assert_eq!(
        whats(&app, "opt_out_ack").await,
        vec![w("skip", "R4", "response_late")]
    );
    assert_eq!(
        jobs_of(&app, "keyword_reply").await,
        vec![js("skipped", Some("response_late"))]
    );
    assert_eq!(
        suppression(&app, "harbor", LEAD).await.as_deref(),
        Some("keyword"),
        "the opt-out itself stands"
    );

    // Within the five minutes it goes.
    let other = "+16175550124";
    text(&app, other, MAIN_ST, "Stop.").await;
    app.clock.advance(Duration::seconds(4 * 60 + 59));
    app.drain().await;
    assert_eq!(texts_to(&app, other).len(), 1);
}

/// R4: "at 23:00 local → still at once" (R7 and R9 do not apply to keyword responses).
#[tokio::test]
async fn a_confirmation_goes_at_once_even_at_night() {
    let app = spawn_app().await;
    app.clock.set(at("2026-06-13T03:00:00Z")); // 23:00 EDT in Boston
    text(&app, LEAD, MAIN_ST, "Stop.").await;
    app.drain().await;
    let sent = creates_to(&app, LEAD);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, at("2026-06-13T03:00:00Z"));
}

// ---------------------------------------------------------------------------------------------
// F11: STOP races the text-back (docs/reliability.md §4: the contact row lock orders them).

/// Backends of the test's database waiting for a lock.
async fn lock_waiters(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("pg_stat_activity")
}

async fn wait_for_lock_waiters(app: &TestApp, n: i64) {
    for _ in 0..1000 {
        if lock_waiters(app).await >= n {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    let waiting: Vec<String> = sqlx::query_scalar(
        "select query from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap_or_default();
    panic!("expected {n} transactions waiting for a lock; waiting: {waiting:?}");
}

/// What waits on a lock right now (to show that both wait on the contact's row).
async fn waiting_queries(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "select query from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' order by query_start",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("pg_stat_activity")
}

/// The STOP webhook, posted from its own task.
fn post_stop(app: &TestApp, body: &str) -> tokio::task::JoinHandle<u16> {
    let params = sms(&new_sid("SM"), LEAD, MAIN_ST, body);
    let sig = app.sign("/twilio/sms", &params);
    let client = app.http.clone();
    let url = format!("{}/twilio/sms", app.base_url);
    let form = textback::twilio::form::encode(&params);
    tokio::spawn(async move {
        client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sig)
            .body(form)
            .send()
            .await
            .expect("the webhook answers")
            .status()
            .as_u16()
    })
}

/// A worker running every due job, in its own task.
fn worker(app: &TestApp) -> tokio::task::JoinHandle<usize> {
    let state = app.state.clone();
    tokio::spawn(async move {
        textback::scheduler::Scheduler::new(state)
            .drain()
            .await
            .expect("drain")
    })
}

/// Locks the lead's contact row in a separate transaction, as docs/reliability.md §6 describes.
async fn lock_contact(app: &TestApp) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut holder = app.db.pool.begin().await.expect("begin");
    sqlx::query("select contact_id from contact where phone = $1 for update")
        .bind(LEAD)
        .fetch_one(&mut *holder)
        .await
        .expect("lock the contact");
    holder
}

/// F11, STOP first: the STOP commits while the text-back waits for the contact's lock in its
/// pre-send transaction; the gate then sees the suppression: skipped(opted_out), no create.
#[tokio::test]
async fn f11_a_stop_committed_before_the_pre_send_wins() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    let holder = lock_contact(&app).await;
    let stop = post_stop(&app, "STOP");
    wait_for_lock_waiters(&app, 1).await;
    let text_back = worker(&app);
    wait_for_lock_waiters(&app, 2).await;
    let waiting = waiting_queries(&app).await;
    assert!(
        waiting.iter().all(|q| q.contains("for update")),
        "both wait for the contact's row lock: {waiting:?}"
    );
    holder.rollback().await.expect("release");
    assert_eq!(stop.await.expect("stop"), 200);
    text_back.await.expect("worker");
    app.run_until_quiet(Duration::days(2)).await;

    assert_eq!(creates(&app), 0, "no text-back after the STOP");
    assert_eq!(
        jobs_of(&app, "text_back").await,
        vec![js("skipped", Some("opted_out"))]
    );
    assert_eq!(
        whats(&app, "text_back").await,
        vec![w("skip", "R1", "opted_out")],
        "the pre-send gate decided, and said so"
    );
    assert_eq!(
        suppression(&app, "harbor", LEAD).await.as_deref(),
        Some("carrier_keyword")
    );
    assert!(
        jobs_of(&app, "follow_up").await.is_empty(),
        "nothing was sent, nothing armed"
    );
}

/// F11, send first: the text-back's pre-send transaction commits first; the STOP lands while
/// the create is in flight. Exactly one create; then the suppression; the follow-up that the
/// send arms is cancelled(opted_out), never sent.
#[tokio::test]
async fn f11_a_text_back_sent_before_the_stop_is_the_only_text() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    // The carrier keeps its answer until the STOP has committed: the record of the send (and
    // the follow-ups it arms) comes after the suppression.
    app.fake
        .inject(Fault::Hold { recorded: true }, Scope::Next(1));
    let holder = lock_contact(&app).await;
    let text_back = worker(&app);
    wait_for_lock_waiters(&app, 1).await;
    let stop = post_stop(&app, "STOP");
    wait_for_lock_waiters(&app, 2).await;
    holder.rollback().await.expect("release");
    assert_eq!(stop.await.expect("stop"), 200);
    for _ in 0..500 {
        if app.fake.held_count() > 0 || !app.fake.messages().is_empty() {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    app.fake.release_held();
    text_back.await.expect("worker");
    app.run_until_quiet(Duration::days(2)).await;

    assert_eq!(creates(&app), 1, "exactly one create");
    assert_eq!(texts_to(&app, LEAD).len(), 1);
    assert!(texts_to(&app, LEAD)[0].contains("Sorry we missed your call"));
    assert_eq!(
        whats(&app, "text_back").await,
        vec![w("allow", "R7", "in_window")]
    );
    // (`sent`; its reason is `reconciled` if the held answer outlasted the client's timeout.)
    assert_eq!(jobs_of(&app, "text_back").await[0].0, "sent");
    assert_eq!(
        suppression(&app, "harbor", LEAD).await.as_deref(),
        Some("carrier_keyword")
    );
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![js("cancelled", Some("opted_out"))],
        "the sequence stops at the opt-out"
    );
    assert!(whats(&app, "follow_up").await.is_empty());
}

/// F11 in plain sequence, both orders: STOP while the text-back waits its hold; STOP after
/// it was sent and its follow-up armed.
#[tokio::test]
async fn f11_in_sequence_stop_cancels_what_is_pending() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    text(&app, LEAD, MAIN_ST, "STOP").await;
    hold(&app);
    app.run_until_quiet(Duration::days(2)).await;
    assert_eq!(creates(&app), 0);
    assert_eq!(
        jobs_of(&app, "text_back").await,
        vec![js("cancelled", Some("opted_out"))]
    );

    let other = "+16175550124";
    missed_call(&app, other, MAIN_ST).await;
    hold(&app);
    app.drain().await;
    assert_eq!(texts_to(&app, other).len(), 1);
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![js("scheduled", None)]
    );
    app.clock.advance(Duration::hours(1));
    text(&app, other, MAIN_ST, "STOP").await;
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![js("cancelled", Some("opted_out"))]
    );
    app.run_until_quiet(Duration::days(3)).await;
    assert_eq!(texts_to(&app, other).len(), 1, "no follow-up after STOP");
}

/// R12: a reply that arrives while the text-back's create is in flight (after its pre-send
/// transaction, before its record) stops the sequence all the same.
#[tokio::test]
async fn a_reply_while_the_text_back_is_in_flight_stops_the_follow_ups() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    app.fake
        .inject(Fault::Hold { recorded: true }, Scope::Next(1));
    let text_back = worker(&app);
    for _ in 0..500 {
        if app.fake.held_count() > 0 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    assert_eq!(app.fake.held_count(), 1, "the create is in flight");
    app.clock.advance(Duration::milliseconds(300));
    text(&app, LEAD, MAIN_ST, "Yes, is it still available?").await;
    app.clock.advance(Duration::milliseconds(300));
    app.fake.release_held();
    text_back.await.expect("worker");
    app.run_until_quiet(Duration::days(3)).await;
    assert_eq!(texts_to(&app, LEAD).len(), 1, "the text-back only");
    assert_eq!(jobs_of(&app, "text_back").await, vec![js("sent", None)]);
    assert!(
        jobs_of(&app, "follow_up")
            .await
            .iter()
            .all(|j| j.0 == "cancelled" && j.1.as_deref() == Some("inbound_text")),
        "{:?}",
        jobs_of(&app, "follow_up").await
    );
}

// ---------------------------------------------------------------------------------------------
// R5: opt-in.

#[tokio::test]
async fn an_opt_in_lifts_the_suppression_and_a_new_call_gets_a_text_back() {
    let app = spawn_app().await;
    text(&app, LEAD, MAIN_ST, "Stop.").await;
    app.drain().await;
    assert_eq!(texts_to(&app, LEAD).len(), 1, "the opt-out confirmation");

    // `yes!` is not carrier-exact: our confirmation (§4.4 row 32).
    app.clock.advance(Duration::minutes(10));
    let yes = text(&app, LEAD, MAIN_ST, "yes!").await;
    assert_eq!(suppression(&app, "harbor", LEAD).await, None, "lifted");
    let events = ledger(&app, "harbor", LEAD).await;
    assert_eq!(events.len(), 2);
    assert_eq!(
        (
            events[1].event.as_str(),
            events[1].evidence.as_deref(),
            events[1].raw_text.as_deref(),
            events[1].suppressed_after
        ),
        ("opt_in", Some(yes.as_str()), Some("yes!"), false)
    );
    app.drain().await;
    let sent = texts_to(&app, LEAD);
    assert_eq!(sent.len(), 2);
    assert!(sent[1].contains("resubscribed"), "{}", sent[1]);
    assert_eq!(
        whats(&app, "opt_in_ack").await,
        vec![w("allow", "R5", "keyword_response")]
    );

    // The number may be texted again: a new missed call gets its text-back.
    app.clock.advance(Duration::minutes(10));
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    app.drain().await;
    let sent = texts_to(&app, LEAD);
    assert_eq!(sent.len(), 3);
    assert!(sent[2].contains("Sorry we missed your call"), "{}", sent[2]);
    assert_eq!(jobs_of(&app, "text_back").await, vec![js("sent", None)]);
}

/// R5: an opt-in applied after an opt-out that arrived later (another instance's spool
/// replayed late, README.md "When the database goes away") does not lift it; a new one does.
#[tokio::test]
async fn an_opt_in_applied_late_never_lifts_a_later_opt_out() {
    let app = spawn_app().await;
    let t0 = textback::clock::Clock::now(app.clock.as_ref());
    app.clock.set(t0 + Duration::minutes(2));
    text(&app, LEAD, MAIN_ST, "Stop.").await;
    // An opt-in that arrived a minute earlier, applied only now.
    app.clock.set(t0 + Duration::minutes(1));
    text(&app, LEAD, MAIN_ST, "yes!").await;
    app.clock.set(t0 + Duration::minutes(3));
    app.drain().await;
    assert_eq!(
        suppression(&app, "harbor", LEAD).await.as_deref(),
        Some("keyword"),
        "still suppressed"
    );
    assert_eq!(
        ledger(&app, "harbor", LEAD)
            .await
            .iter()
            .map(|e| e.event.as_str())
            .collect::<Vec<_>>(),
        vec!["opt_out"]
    );
    let sent = texts_to(&app, LEAD);
    assert_eq!(sent.len(), 1, "only the opt-out confirmation: {sent:?}");
    assert!(!sent[0].contains("resubscribed"), "{}", sent[0]);

    // Their next opt-in, after the opt-out, lifts it.
    app.clock.advance(Duration::minutes(1));
    text(&app, LEAD, MAIN_ST, "yes!").await;
    app.drain().await;
    assert_eq!(suppression(&app, "harbor", LEAD).await, None, "lifted");
    let sent = texts_to(&app, LEAD);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[1].contains("resubscribed"), "{}", sent[1]);
}

#[tokio::test]
async fn a_carrier_exact_start_lifts_without_a_text_from_us() {
    let app = spawn_app().await;
    text(&app, LEAD, MAIN_ST, "STOP").await;
    app.clock.advance(Duration::minutes(1));
    text(&app, LEAD, MAIN_ST, "START").await;
    app.drain().await;
    assert_eq!(creates(&app), 0, "Twilio answered both");
    assert_eq!(suppression(&app, "harbor", LEAD).await, None);
    assert_eq!(
        ledger(&app, "harbor", LEAD)
            .await
            .iter()
            .map(|e| (e.event.as_str(), e.source.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("opt_out", "carrier_keyword"),
            ("opt_in", "carrier_keyword")
        ]
    );
    assert_eq!(
        whats(&app, "opt_in_ack").await,
        vec![w("skip", "R5", "carrier_answered")]
    );
    app.clock.advance(Duration::minutes(1));
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    app.drain().await;
    assert_eq!(texts_to(&app, LEAD).len(), 1, "the text-back");
}

#[tokio::test]
async fn yes_please_call_me_does_not_lift_a_suppression() {
    let app = spawn_app().await;
    text(&app, LEAD, MAIN_ST, "STOP").await;
    app.clock.advance(Duration::minutes(1));
    let sid = text(&app, LEAD, MAIN_ST, "Yes please call me").await;
    let class: Option<String> =
        sqlx::query_scalar("select keyword_class from message where sid = $1")
            .bind(&sid)
            .fetch_one(&app.db.pool)
            .await
            .expect("stored");
    assert_eq!(class.as_deref(), Some("reply"));
    assert_eq!(
        suppression(&app, "harbor", LEAD).await.as_deref(),
        Some("carrier_keyword"),
        "still suppressed"
    );
    assert_eq!(ledger(&app, "harbor", LEAD).await.len(), 1);
    // Nor does a new call: no text-back (a callback task instead, docs/architecture.md step 8).
    app.clock.advance(Duration::minutes(1));
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    app.run_until_quiet(Duration::days(2)).await;
    assert_eq!(creates(&app), 0);
    assert_eq!(
        jobs_of(&app, "text_back").await,
        vec![js("skipped", Some("opted_out"))]
    );
    assert_eq!(
        whats(&app, "text_back").await,
        vec![w("skip", "R1", "opted_out")]
    );
}

/// R1, R5: suppressions are per brokerage.
#[tokio::test]
async fn a_suppression_in_one_brokerage_does_not_touch_another() {
    let app = spawn_app().await;
    apply_setup(&app.db.pool, OTHER_BROKERAGE).await;
    text(&app, LEAD, MAIN_ST, "STOP").await;
    assert_eq!(suppression(&app, "bayside", LEAD).await, None);

    // Bayside can still text the lead.
    missed_call(&app, LEAD, BAYSIDE).await;
    hold(&app);
    app.drain().await;
    let sent = app.fake.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].to.as_str(), sent[0].from.as_deref()),
        (LEAD, Some(BAYSIDE))
    );
    assert!(sent[0].body.contains("Bayside Homes"));

    // STOP to Bayside, START to Harbor: Harbor lifted, Bayside still suppressed.
    app.clock.advance(Duration::minutes(1));
    text(&app, LEAD, BAYSIDE, "STOP").await;
    text(&app, LEAD, MAIN_ST, "START").await;
    assert_eq!(suppression(&app, "harbor", LEAD).await, None);
    assert_eq!(
        suppression(&app, "bayside", LEAD).await.as_deref(),
        Some("carrier_keyword")
    );
    assert_eq!(
        ledger(&app, "bayside", LEAD)
            .await
            .iter()
            .map(|e| e.event.as_str())
            .collect::<Vec<_>>(),
        vec!["opt_out"]
    );
}

// ---------------------------------------------------------------------------------------------
// R6: help.

#[tokio::test]
async fn help_gets_one_help_text_unless_the_carrier_answered_or_the_number_is_suppressed() {
    let app = spawn_app().await;
    // The inbound also stops the sequence: a text-back went out, its follow-up is armed.
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    app.drain().await;
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![js("scheduled", None)]
    );
    app.clock.advance(Duration::minutes(5));
    text(&app, LEAD, MAIN_ST, "Help!").await;
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![js("cancelled", Some("inbound_text"))]
    );
    app.drain().await;
    let sent = texts_to(&app, LEAD);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let help = &sent[1];
    assert!(help.contains("Harbor Realty"), "{help}");
    assert!(help.contains("STOP"), "{help}");
    assert!(help.contains("(555) 555-0100"), "{help}");
    assert_eq!(
        whats(&app, "help").await,
        vec![w("allow", "R6", "keyword_response")]
    );

    // HELP, carrier-exact: Twilio answered.
    let second = "+16175550124";
    text(&app, second, MAIN_ST, "HELP").await;
    // Suppressed: nothing but the one opt-out confirmation ever goes.
    let third = "+16175550125";
    text(&app, third, MAIN_ST, "STOP").await;
    text(&app, third, MAIN_ST, "Help!").await;
    app.run_until_quiet(Duration::hours(1)).await;
    assert!(texts_to(&app, second).is_empty());
    assert!(texts_to(&app, third).is_empty());
    assert_eq!(
        whats(&app, "help").await,
        vec![
            w("allow", "R6", "keyword_response"),
            w("skip", "R6", "carrier_answered"),
            w("skip", "R1", "opted_out")
        ]
    );
    assert_eq!(
        jobs_of(&app, "keyword_reply").await,
        vec![
            js("sent", None),
            js("skipped", Some("carrier_answered")),
            js("skipped", Some("carrier_answered")),
            js("skipped", Some("opted_out")),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// R3: review hold.

#[tokio::test]
async fn a_possible_opt_out_holds_everything_until_a_person_decides() {
    let app = spawn_app().await;
    let harbor = brokerage(&app, "harbor").await;
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    app.drain().await;
    assert_eq!(texts_to(&app, LEAD).len(), 1);

    app.clock.advance(Duration::minutes(5));
    let sid = text(&app, LEAD, MAIN_ST, "Not interested").await;
    let (held_at, held_msg): (Option<DateTime<Utc>>, Option<i64>) = sqlx::query_as(
        "select review_hold_at, review_hold_message_id from contact where phone = $1",
    )
    .bind(LEAD)
    .fetch_one(&app.db.pool)
    .await
    .expect("contact");
    assert_eq!(held_at, Some(now(&app)));
    let msg_id: i64 = sqlx::query_scalar("select message_id from message where sid = $1")
        .bind(&sid)
        .fetch_one(&app.db.pool)
        .await
        .expect("stored");
    assert_eq!(held_msg, Some(msg_id));
    assert_eq!(
        suppression(&app, "harbor", LEAD).await,
        None,
        "not an opt-out"
    );
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![js("cancelled", Some("inbound_text"))],
        "automation stops"
    );
    let events = ledger(&app, "harbor", LEAD).await;
    assert_eq!(
        events
            .iter()
            .map(|e| (e.event.as_str(), e.source.as_str(), e.evidence.as_deref()))
            .collect::<Vec<_>>(),
        vec![("review_hold", "review", Some(sid.as_str()))]
    );

    // Nothing, not even an agent's reply, while on hold.
    assert_eq!(
        agent_reply(&app, LEAD, MAIN_ST, "sam@harbor.example", "Understood!").await,
        Err(ReplyRefused::ReviewHold)
    );
    assert_eq!(ReplyRefused::ReviewHold.reason(), "review_hold");
    assert!(jobs_of(&app, "agent_reply").await.is_empty());

    // "Not an opt-out": the hold is lifted, with who and when.
    let contact_id = contact(&app, "harbor", LEAD).await;
    let mut conn = app.db.pool.acquire().await.expect("conn");
    assert!(
        suppressions::resolve_review(
            &mut conn,
            harbor,
            textback::store::ContactId(contact_id),
            false,
            "sam@harbor.example",
            now(&app)
        )
        .await
        .expect("resolve")
    );
    drop(conn);
    let held: Option<DateTime<Utc>> =
        sqlx::query_scalar("select review_hold_at from contact where phone = $1")
            .bind(LEAD)
            .fetch_one(&app.db.pool)
            .await
            .expect("contact");
    assert_eq!(held, None);
    let events = ledger(&app, "harbor", LEAD).await;
    assert_eq!(
        (
            events[1].event.as_str(),
            events[1].who.as_str(),
            events[1].suppressed_after
        ),
        ("review_cleared", "sam@harbor.example", false)
    );

    // Now the reply goes.
    agent_reply(
        &app,
        LEAD,
        MAIN_ST,
        "sam@harbor.example",
        "Understood, thanks!",
    )
    .await
    .expect("queued");
    app.drain().await;
    let sent = texts_to(&app, LEAD);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1], "Understood, thanks!");
    assert_eq!(
        whats(&app, "manual").await,
        vec![w("allow", "R7", "live_conversation")]
    );

    // The other decision: "opt-out" suppresses with source review.
    let other = "+16175550124";
    text(&app, other, MAIN_ST, "Not interested").await;
    let other_id = contact(&app, "harbor", other).await;
    let mut conn = app.db.pool.acquire().await.expect("conn");
    assert!(
        suppressions::resolve_review(
            &mut conn,
            harbor,
            textback::store::ContactId(other_id),
            true,
            "ava@harbor.example",
            now(&app)
        )
        .await
        .expect("resolve")
    );
    drop(conn);
    assert_eq!(
        suppression(&app, "harbor", other).await.as_deref(),
        Some("review")
    );
    let events = ledger(&app, "harbor", other).await;
    assert_eq!(
        events
            .iter()
            .map(|e| (e.event.as_str(), e.source.as_str(), e.who.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("review_hold", "review", "contact"),
            ("opt_out", "review", "ava@harbor.example")
        ]
    );
    assert_eq!(
        agent_reply(&app, other, MAIN_ST, "ava@harbor.example", "Sorry!").await,
        Err(ReplyRefused::OptedOut)
    );
    app.run_until_quiet(Duration::hours(1)).await;
    assert!(texts_to(&app, other).is_empty());
}

// ---------------------------------------------------------------------------------------------
// F14 / R1 across offices.

#[tokio::test]
async fn f14_stop_via_one_office_blocks_a_reply_from_the_other() {
    let app = spawn_app().await;
    let harbor = brokerage(&app, "harbor").await;
    // Downtown's Main St number and Waterfront's Elm St number are two offices.
    let offices: Vec<String> = sqlx::query_scalar(
        "select o.slug from number n join office o using (office_id) where n.e164 in ($1, $2) order by n.e164",
    )
    .bind(MAIN_ST)
    .bind(ELM_ST)
    .fetch_all(&app.db.pool)
    .await
    .expect("offices");
    assert_eq!(offices, vec!["downtown", "waterfront"]);

    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    app.drain().await;
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![js("scheduled", None)]
    );

    // A reply Jo queued from Waterfront a moment before the STOP is still waiting to run
    // (enqueued directly: the inbox would have refused it after the STOP).
    let contact_id = contact(&app, "harbor", LEAD).await;
    let elm = number(&app, ELM_ST).await;
    let mut conn = app.db.pool.acquire().await.expect("conn");
    use textback::store::jobs::{JobPayload as _, Place, payload};
    payload::AgentReply {
        number_id: elm,
        agent: "jo@harbor.example".into(),
        body: "Hi, Jo here".into(),
        once: None,
        by_text: None,
        media_ids: Vec::new(),
    }
    .enqueue(
        &mut conn,
        harbor,
        Place::for_contact(
            textback::store::ContactId(contact_id),
            now(&app) + Duration::minutes(30),
            now(&app),
        ),
    )
    .await
    .expect("enqueue");
    drop(conn);

    app.clock.advance(Duration::minutes(10));
    text(&app, LEAD, MAIN_ST, "STOP").await;
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![js("cancelled", Some("opted_out"))],
        "A's follow-ups are cancelled"
    );
    assert_eq!(
        jobs_of(&app, "agent_reply").await,
        vec![js("cancelled", Some("opted_out"))],
        "pending manual messages too (R2)"
    );

    // Jo replies from the inbox through Waterfront's number: refused, with the reason.
    let refused = agent_reply(&app, LEAD, ELM_ST, "jo@harbor.example", "Hi, Jo here").await;
    assert_eq!(refused, Err(ReplyRefused::OptedOut));
    assert_eq!(ReplyRefused::OptedOut.reason(), "opted_out");
    app.run_until_quiet(Duration::days(3)).await;
    assert_eq!(creates(&app), 1, "the text-back only");
    assert!(texts_to(&app, LEAD)[0].contains("Sorry we missed your call"));
}

/// R1 in the pre-send transaction: a manual reply whose job was queued before the opt-out
/// and runs after it is skipped by the gate.
#[tokio::test]
async fn a_manual_reply_that_runs_after_the_opt_out_is_skipped_by_the_gate() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    app.drain().await;
    agent_reply(&app, LEAD, ELM_ST, "jo@harbor.example", "Hi, Jo here")
        .await
        .expect("queued");
    // The worker has claimed the reply (it is running) when the STOP commits.
    let claimed: i64 = sqlx::query_scalar(
        "update job set state = 'running', attempt = attempt + 1, lease_until = $1
          where kind = 'agent_reply' and state = 'scheduled' returning job_id",
    )
    .bind(now(&app) + Duration::seconds(1))
    .fetch_one(&app.db.pool)
    .await
    .expect("claim by hand");
    text(&app, LEAD, MAIN_ST, "STOP").await;
    // The lease runs out; a worker re-claims it and the gate runs in its pre-send transaction.
    app.clock.advance(Duration::seconds(5));
    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(creates(&app), 1, "the text-back only");
    let (state, reason): (String, Option<String>) =
        sqlx::query_as("select state, reason from job where job_id = $1")
            .bind(claimed)
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        ("skipped", Some("opted_out"))
    );
    assert_eq!(
        whats(&app, "manual").await,
        vec![w("skip", "R1", "opted_out")]
    );
}

// ---------------------------------------------------------------------------------------------
// R7: quiet hours.

#[tokio::test]
async fn a_follow_up_due_at_night_waits_for_the_morning_window() {
    let app = spawn_with(demo_with_follow_ups(&["2h"])).await;
    // 19:30 EDT: the text-back goes at once; its follow-up is due about 21:30.
    app.clock.set(at("2026-06-12T23:30:00Z"));
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    app.drain().await;
    assert_eq!(texts_to(&app, LEAD).len(), 1);
    let due: DateTime<Utc> = sqlx::query_scalar("select run_at from job where kind = 'follow_up'")
        .fetch_one(&app.db.pool)
        .await
        .expect("armed");
    assert!(
        due >= at("2026-06-13T01:30:20Z") && due <= at("2026-06-13T01:40:20Z"),
        "{due}"
    );

    // Until shortly before 08:00: the step runs at 21:3x, is deferred, and waits.
    app.run_until_quiet(Duration::hours(12)).await;
    let d = decisions(&app, "follow_up").await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].what(), ("defer", "R7", "quiet_hours"));
    let morning = at("2026-06-13T12:00:00Z"); // Saturday 08:00 EDT, MA opens at 08:00
    assert_eq!(d[0].until, Some(morning));
    assert_eq!(d[0].zones, vec!["America/New_York".to_owned()]);
    assert_eq!(d[0].state.as_deref(), Some("MA"));
    assert_eq!(d[0].windows.len(), 1, "{:?}", d[0].windows);
    assert!(
        d[0].windows[0].starts_with("New_York 2026-06-12 Fri 08:00-20:00 (21:"),
        "{:?}",
        d[0].windows
    );
    let (state, reason, run_at): (String, Option<String>, DateTime<Utc>) =
        sqlx::query_as("select state, reason, run_at from job where kind = 'follow_up'")
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!(
        (state.as_str(), reason.as_deref(), run_at),
        ("scheduled", Some("quiet_hours"), morning),
        "deferred, never dropped"
    );

    app.clock.set(morning - Duration::seconds(1));
    app.drain().await;
    assert_eq!(texts_to(&app, LEAD).len(), 1, "not a second early");

    app.run_until_quiet(Duration::hours(2)).await;
    let sent = creates_to(&app, LEAD);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].0, morning, "sent at the first allowed instant");
    assert!(
        sent[1].1.starts_with("Step 1: Harbor Realty"),
        "{}",
        sent[1].1
    );
    let occurred: DateTime<Utc> = sqlx::query_scalar(
        "select occurred_at from message where kind = 'follow_up' and direction = 'outbound'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("the follow-up's row");
    assert_eq!(occurred, morning);
    assert_eq!(
        whats(&app, "follow_up").await,
        vec![
            w("defer", "R7", "quiet_hours"),
            w("allow", "R7", "in_window")
        ]
    );
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![js("sent", Some("quiet_hours"))],
        "sent; the reason keeps why it was late"
    );
}

// ---------------------------------------------------------------------------------------------
// R9: the frequency cap.

#[tokio::test]
async fn the_cap_defers_the_fourth_automated_text_to_24_hours_after_the_first() {
    let app = spawn_with(demo_with_follow_ups(&["1h", "2h", "3h"])).await;
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    let t0 = now(&app); // the text-back's pre-send instant
    app.drain().await;
    app.run_until_quiet(Duration::days(2)).await;

    let sent = creates_to(&app, LEAD);
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(sent[0].0, t0);
    assert!(sent[1].1.starts_with("Step 1"));
    assert!(sent[2].1.starts_with("Step 2"));
    assert!(sent[3].1.starts_with("Step 3"));
    assert!(sent[2].0 < t0 + Duration::hours(3));
    // Three counted sends in 24 h: the third step waits until the text-back is 24 h old
    // (10:00:20 EDT on Saturday, inside MA's window, so R7 adds nothing).
    assert_eq!(sent[3].0, t0 + Duration::hours(24));

    let steps = decisions(&app, "follow_up").await;
    let third_job = steps.last().expect("decisions").job_id;
    let third: Vec<&Decision> = steps.iter().filter(|d| d.job_id == third_job).collect();
    assert_eq!(third.len(), 2, "{steps:?}");
    assert_eq!(third[0].what(), ("defer", "R9", "cap_reached"));
    assert_eq!(third[0].until, Some(t0 + Duration::hours(24)));
    assert_eq!((third[0].cap_count, third[0].cap_limit), (Some(3), Some(3)));
    assert_eq!(third[1].what(), ("allow", "R7", "in_window"));
    assert_eq!(
        (third[1].cap_count, third[1].cap_limit),
        (Some(2), Some(3)),
        "the text-back no longer counts"
    );
    assert_eq!(
        jobs_of(&app, "follow_up").await,
        vec![
            js("sent", None),
            js("sent", None),
            js("sent", Some("cap_reached"))
        ]
    );
}

/// R9: two workers racing at a count of 2 send one; the contact's lock orders them.
#[tokio::test]
async fn racing_sends_at_a_count_of_two_send_one() {
    let app = spawn_app().await;
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    let t0 = now(&app);
    app.drain().await;
    // A manual message outside a live conversation counts: 2.
    agent_reply(&app, LEAD, MAIN_ST, "sam@harbor.example", "Hi, it's Sam")
        .await
        .expect("queued");
    app.drain().await;
    assert_eq!(texts_to(&app, LEAD).len(), 2);

    agent_reply(&app, LEAD, MAIN_ST, "sam@harbor.example", "One")
        .await
        .expect("queued");
    agent_reply(&app, LEAD, MAIN_ST, "ava@harbor.example", "Two")
        .await
        .expect("queued");
    let (a, b) = tokio::join!(worker(&app), worker(&app));
    a.expect("worker");
    b.expect("worker");
    app.fake.settle().await;
    assert_eq!(texts_to(&app, LEAD).len(), 3, "exactly one of the two");
    let manual = whats(&app, "manual").await;
    assert_eq!(manual.len(), 3, "{manual:?}");
    let mut last_two = manual[1..].to_vec();
    last_two.sort();
    assert_eq!(
        last_two,
        vec![
            w("allow", "R7", "in_window"),
            w("defer", "R9", "cap_reached")
        ]
    );
    let deferred = decisions(&app, "manual")
        .await
        .into_iter()
        .find(|d| d.decision == "defer")
        .expect("the deferral");
    assert_eq!(deferred.until, Some(t0 + Duration::hours(24)));
}

// ---------------------------------------------------------------------------------------------
// R15: daily unique recipients per sending number.

#[tokio::test]
async fn the_daily_recipient_limit_defers_new_recipients_and_alerts_once() {
    let app = spawn_with(demo_with_compliance("daily_unique_recipients = 2")).await;
    let callers = ["+16175550131", "+16175550132", "+16175550133"];
    // Three new callers at once: the pre-send transactions race for the number's last slot.
    for caller in callers {
        missed_call(&app, caller, MAIN_ST).await;
    }
    hold(&app);
    app.drain().await;
    let texted: Vec<&str> = callers
        .iter()
        .copied()
        .filter(|c| !texts_to(&app, c).is_empty())
        .collect();
    assert_eq!(texted.len(), 2, "two recipients a day: {texted:?}");
    let waiting = callers
        .iter()
        .copied()
        .find(|c| texts_to(&app, c).is_empty())
        .expect("one waits");

    let tb = decisions(&app, "text_back").await;
    let deferred: Vec<&Decision> = tb.iter().filter(|d| d.decision == "defer").collect();
    assert_eq!(deferred.len(), 1, "{tb:?}");
    assert_eq!(
        deferred[0].what(),
        ("defer", "R15", "daily_recipient_limit")
    );
    // The next local day (midnight in the brokerage's New York), then the window: 08:00 EDT.
    let next_window = at("2026-06-13T12:00:00Z");
    assert_eq!(deferred[0].until, Some(next_window));
    let alerts: Vec<(String, String)> =
        sqlx::query_as("select audience, reason from alert where reason = 'daily_recipient_limit'")
            .fetch_all(&app.db.pool)
            .await
            .expect("alerts");
    assert_eq!(
        alerts,
        vec![("admins".into(), "daily_recipient_limit".into())]
    );

    // A fourth caller: deferred too, still one alert.
    app.clock.advance(Duration::minutes(5));
    let fourth = "+16175550134";
    missed_call(&app, fourth, MAIN_ST).await;
    hold(&app);
    app.drain().await;
    assert!(texts_to(&app, fourth).is_empty());
    let alerts: i64 =
        sqlx::query_scalar("select count(*) from alert where reason = 'daily_recipient_limit'")
            .fetch_one(&app.db.pool)
            .await
            .expect("alerts");
    assert_eq!(alerts, 1, "one alert a day");

    // A reply to the first caller is not limited.
    agent_reply(
        &app,
        texted[0],
        MAIN_ST,
        "sam@harbor.example",
        "Hi, Sam here",
    )
    .await
    .expect("queued");
    app.drain().await;
    assert_eq!(texts_to(&app, texted[0]).len(), 2);

    // The next morning both waiting text-backs go, at the window's start.
    app.run_until_quiet(Duration::hours(23)).await;
    for caller in [waiting, fourth] {
        let sent = creates_to(&app, caller);
        assert_eq!(sent.len(), 1, "{caller}");
        assert_eq!(sent[0].0, next_window, "{caller}");
    }
}

// ---------------------------------------------------------------------------------------------
// R13: records.

#[tokio::test]
async fn every_gated_job_has_its_decision_record_and_the_records_are_append_only() {
    let app = spawn_app().await;
    let landline = "+16175550140";
    app.fake.set_line_type(landline, "landline");
    // A text-back and its follow-up; a confirmation; a help text; a text-back skipped by the
    // free checks; a landline; a deferral by quiet hours; an agent reply.
    missed_call(&app, LEAD, MAIN_ST).await;
    missed_call(&app, landline, MAIN_ST).await;
    hold(&app);
    app.drain().await;
    text(&app, "+16175550141", MAIN_ST, "Stop.").await;
    text(&app, "+16175550142", MAIN_ST, "Help!").await;
    missed_call(&app, "+16175550141", ELM_ST).await;
    agent_reply(&app, LEAD, MAIN_ST, "sam@harbor.example", "Hi, Sam here")
        .await
        .expect("queued");
    hold(&app);
    app.drain().await;
    app.clock.set(at("2026-06-13T02:00:00Z")); // 22:00 EDT
    missed_call(&app, "+16175550143", MAIN_ST).await;
    hold(&app);
    app.run_until_quiet(Duration::days(3)).await;

    let missing: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
        "select j.job_id, j.kind, j.state, j.reason from job j
          where j.kind in ('text_back', 'follow_up', 'keyword_reply', 'agent_reply')
            and j.state in ('sent', 'skipped', 'dead', 'needs_review')
            and not exists (select 1 from gate_decision g where g.job_id = j.job_id)",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("jobs");
    assert!(
        missing.is_empty(),
        "terminal jobs without a decision: {missing:?}"
    );
    // A skipped job's reason is its last decision's.
    let mismatched: Vec<(i64, Option<String>, String)> = sqlx::query_as(
        "select j.job_id, j.reason, g.reason from job j
           join lateral (select reason, rule from gate_decision where job_id = j.job_id
                          order by gate_decision_id desc limit 1) g on true
          where j.state = 'skipped' and (j.reason is distinct from g.reason or g.rule is null)",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("jobs");
    assert!(mismatched.is_empty(), "{mismatched:?}");
    let kinds: Vec<(String, String)> =
        sqlx::query_as("select distinct kind, reason from gate_decision order by kind, reason")
            .fetch_all(&app.db.pool)
            .await
            .expect("kinds");
    for expected in [
        ("text_back", "in_window"),
        ("text_back", "opted_out"),
        ("text_back", "line_type"),
        ("text_back", "quiet_hours"),
        ("opt_out_ack", "keyword_response"),
        ("help", "keyword_response"),
        ("manual", "in_window"),
    ] {
        assert!(
            kinds.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {kinds:?}"
        );
    }
    // Every deferral keeps its zones and windows; every decision its rule.
    // (Alerts to the brokerage's own people are not gated: their record has the rate limit's
    // reason and no R-number.)
    let bare: i64 = sqlx::query_scalar(
        "select count(*) from gate_decision
          where (rule is null and kind <> 'agent_alert') or (decision = 'defer' and (zones = '{}' or windows = '{}'))",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("count");
    assert_eq!(bare, 0);

    // Append-only: the triggers refuse every change and delete.
    for statement in [
        "update consent_event set who = 'someone else'",
        "delete from consent_event",
        "update gate_decision set reason = 'in_window'",
        "delete from gate_decision",
    ] {
        let err = sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&app.db.pool)
            .await
            .expect_err(statement);
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    assert!(app.count("consent_event").await >= 1);
    assert!(app.count("gate_decision").await >= 8);
}

// ---------------------------------------------------------------------------------------------
// `dnc import` and `dnc export` (R1, R13).

#[tokio::test]
async fn dnc_import_is_all_or_nothing_and_an_imported_number_gets_no_text() {
    let app = spawn_app().await;
    let bad = write_temp(
        "bad.csv",
        b"phone,reason,source,at\n+16175550151,asked on the phone,front desk,2026-06-01T10:00:00Z\n617-555-0152,x,y,\n",
    );
    let (code, out, err) = run(textback()
        .args(["dnc", "import"])
        .arg(&bad)
        .args(["--brokerage", "harbor"])
        .env("DATABASE_URL", &app.db.url));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("617-555-0152"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(app.count("suppression").await, 0);
    assert_eq!(app.count("consent_event").await, 0);

    let good = write_temp(
        "good.csv",
        b"phone,reason,source,at\n+16175550151,asked on the phone,front desk,2026-06-01T10:00:00Z\n+16175550152,,,\n",
    );
    let (code, out, err) = run(textback()
        .args(["dnc", "import"])
        .arg(&good)
        .args(["--brokerage", "harbor"])
        .env("DATABASE_URL", &app.db.url));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 numbers added"), "{out}");
    for phone in ["+16175550151", "+16175550152"] {
        assert_eq!(
            suppression(&app, "harbor", phone).await.as_deref(),
            Some("import"),
            "{phone}"
        );
    }
    let events = ledger(&app, "harbor", "+16175550151").await;
    assert_eq!(
        events,
        vec![Event {
            event: "opt_out".into(),
            source: "import".into(),
            who: "import:good.csv".into(),
            how: Some("front desk".into()),
            evidence: Some("good.csv:2".into()),
            raw_text: None,
            suppressed_after: true,
        }]
    );

    // An imported number calls: no text, a callback task (docs/architecture.md step 8).
    missed_call(&app, "+16175550151", MAIN_ST).await;
    hold(&app);
    app.run_until_quiet(Duration::days(2)).await;
    assert_eq!(creates(&app), 0);
    assert_eq!(
        jobs_of(&app, "text_back").await,
        vec![js("skipped", Some("opted_out"))]
    );
    assert_eq!(
        whats(&app, "text_back").await,
        vec![w("skip", "R1", "opted_out")]
    );
    let tasks: Vec<(String, String)> = sqlx::query_as("select reason, state from task")
        .fetch_all(&app.db.pool)
        .await
        .expect("tasks");
    assert_eq!(tasks, vec![("opted_out".into(), "open".into())]);

    // Importing the same file again changes nothing.
    let before = compliance_counts(&app).await;
    let (code, out, _) = run(textback()
        .args(["dnc", "import"])
        .arg(&good)
        .args(["--brokerage", "harbor"])
        .env("DATABASE_URL", &app.db.url));
    assert_eq!(code, 0);
    assert!(
        out.contains("0 numbers added") && out.contains("2 already"),
        "{out}"
    );
    assert_eq!(compliance_counts(&app).await, before);

    // Export: the header, then one row per suppression, oldest first.
    text(&app, LEAD, MAIN_ST, "STOP").await;
    let (code, out, err) = run(textback()
        .args(["dnc", "export", "--brokerage", "harbor"])
        .env("DATABASE_URL", &app.db.url));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "phone,reason,source,at,who");
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(
        lines[1],
        "+16175550151,asked on the phone,import,2026-06-01T06:00:00-04:00,import:good.csv"
    );
    assert!(
        lines[2..].iter().any(|l| l.starts_with("+16175550152,")
            && l.contains(",import,")
            && l.ends_with(",import:good.csv")),
        "{out}"
    );
    assert!(
        lines[2..].iter().any(|l| l.starts_with(&format!("{LEAD},"))
            && l.contains(",carrier_keyword,2026-06-12T10:00:")
            && l.ends_with(",contact")),
        "{out}"
    );
    let (code, _, err) = run(textback()
        .args(["dnc", "export", "--brokerage", "nope"])
        .env("DATABASE_URL", &app.db.url));
    assert_eq!(code, 2, "{err}");
}

// ---------------------------------------------------------------------------------------------
// R10, R11: what an agent types.

/// R10: the first message to a contact, typed by an agent, names the brokerage and carries the
/// opt-out line; the next one goes as typed.
#[tokio::test]
async fn an_agents_first_message_to_a_contact_is_identified_and_the_next_goes_verbatim() {
    let app = spawn_app().await;
    // The contact texted first (the consent basis) and was never texted by the brokerage.
    text(
        &app,
        LEAD,
        MAIN_ST,
        "Is the house on Elm St still available?",
    )
    .await;
    app.drain().await;
    assert_eq!(creates(&app), 0, "{:?}", app.jobs().await);

    agent_reply(&app, LEAD, MAIN_ST, "sam@harbor.example", "Hi, Sam here.")
        .await
        .expect("queued");
    app.drain().await;
    let sent = texts_to(&app, LEAD);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("Harbor Realty: "), "{}", sent[0]);
    assert!(sent[0].ends_with(" Reply STOP to opt out."), "{}", sent[0]);
    assert_eq!(
        sent[0],
        "Harbor Realty: Hi, Sam here. Reply STOP to opt out."
    );

    app.clock.advance(Duration::minutes(2));
    agent_reply(&app, LEAD, MAIN_ST, "sam@harbor.example", "Does 3pm work?")
        .await
        .expect("queued");
    app.drain().await;
    let sent = texts_to(&app, LEAD);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1], "Does 3pm work?", "the second goes as typed");
    assert_eq!(
        jobs_of(&app, "agent_reply").await,
        vec![js("sent", None), js("sent", None)]
    );
    assert_eq!(
        whats(&app, "manual").await,
        vec![
            w("allow", "R7", "live_conversation"),
            w("allow", "R7", "live_conversation")
        ]
    );
}

/// R11: a manual message with a public shortener is refused at once, reason shown; nothing is
/// queued and nothing reaches the carrier.
#[tokio::test]
async fn a_manual_reply_with_a_shortener_is_refused_and_nothing_is_queued() {
    let app = spawn_app().await;
    text(
        &app,
        LEAD,
        MAIN_ST,
        "Is the house on Elm St still available?",
    )
    .await;
    // The reply's alert to Sam and, 10 minutes on, its escalation to the managers play out
    // first: only what the refused reply would do is compared.
    app.run_until_quiet(Duration::hours(1)).await;
    let before = (app.snapshot().await, compliance_counts(&app).await);

    let refused = agent_reply(
        &app,
        LEAD,
        MAIN_ST,
        "sam@harbor.example",
        "Photos here: bit.ly/x",
    )
    .await;
    assert_eq!(refused, Err(ReplyRefused::Shortener));
    assert_eq!(ReplyRefused::Shortener.reason(), "link_shortener");

    app.run_until_quiet(Duration::hours(1)).await;
    assert_eq!(
        (app.snapshot().await, compliance_counts(&app).await),
        before,
        "nothing queued or recorded"
    );
    assert!(jobs_of(&app, "agent_reply").await.is_empty());
    assert_eq!(creates(&app), 0);
}

// ---------------------------------------------------------------------------------------------
// R14: the gate again on every attempt.

fn not_processed() -> Fault {
    Fault::Status {
        http: 503,
        code: None,
        recorded: false,
        retry_after: None,
    }
}

/// R14: the first attempt is allowed just before the window's end (19:58 EDT with the margin),
/// the carrier refuses it (503, not processed), and the retry after the backoff falls past the
/// window: the retry is deferred to 08:00 and sent once then, never on the earlier allow.
#[tokio::test]
async fn a_window_closing_during_a_carrier_outage_defers_the_retry() {
    let app = spawn_app().await;
    app.fake.inject(not_processed(), Scope::Next(1));
    // The text-back's hold ends at 19:57:59.990 EDT: 10 ms before the window (with its 2-minute
    // margin) closes; the fast backoff is 25–50 ms.
    app.clock.set(at("2026-06-12T23:57:39.990Z"));
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    let first_try = at("2026-06-12T23:57:59.990Z");
    assert_eq!(now(&app), first_try);
    app.drain().await;
    let tried = creates_to(&app, LEAD);
    assert_eq!(tried.len(), 1, "{tried:?}");
    assert_eq!(tried[0].0, first_try);
    assert!(texts_to(&app, LEAD).is_empty(), "the carrier took nothing");
    let (state, retry_at): (String, DateTime<Utc>) =
        sqlx::query_as("select state, run_at from job where kind = 'text_back'")
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!(state, "scheduled", "a retry");
    assert!(
        retry_at > at("2026-06-12T23:58:00Z") && retry_at <= first_try + Duration::milliseconds(50),
        "{retry_at}"
    );

    // The retry runs past the window: deferred, not sent on the first attempt's allow.
    app.clock.set(retry_at);
    app.drain().await;
    assert_eq!(creates_to(&app, LEAD).len(), 1, "no create at night");
    let morning = at("2026-06-13T12:00:00Z"); // Saturday 08:00 EDT
    let d = decisions(&app, "text_back").await;
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[0].what(), ("allow", "R7", "in_window"));
    assert_eq!(d[1].what(), ("defer", "R7", "quiet_hours"));
    assert_eq!(d[1].until, Some(morning));
    assert!(d[0].job_id.is_some() && d[1].job_id == d[0].job_id, "{d:?}");
    let (state, reason, run_at): (String, Option<String>, DateTime<Utc>) =
        sqlx::query_as("select state, reason, run_at from job where kind = 'text_back'")
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!(
        (state.as_str(), reason.as_deref(), run_at),
        ("scheduled", Some("quiet_hours"), morning)
    );

    // The morning: sent once, at the window's start.
    app.run_until_quiet(Duration::hours(13)).await;
    let sent = creates_to(&app, LEAD);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1].0, morning);
    assert_eq!(texts_to(&app, LEAD).len(), 1, "one text");
    assert_eq!(
        whats(&app, "text_back").await,
        vec![
            w("allow", "R7", "in_window"),
            w("defer", "R7", "quiet_hours"),
            w("allow", "R7", "in_window")
        ]
    );
    assert_eq!(
        jobs_of(&app, "text_back").await,
        vec![js("sent", Some("quiet_hours"))]
    );
    let states: Vec<String> = sqlx::query_scalar(
        "select send_state from message where direction = 'outbound' order by message_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("rows");
    assert_eq!(states, vec!["failed_certain", "sent"]);
}

/// R14: a STOP committed between two attempts: the retry never reaches the carrier. Waiting
/// for its retry, the job is cancelled with the opt-out; already claimed by a worker when the
/// STOP commits, the gate in its pre-send transaction skips it (no earlier allow is reused).
#[tokio::test]
async fn a_stop_between_attempts_skips_the_next() {
    let app = spawn_app().await;

    // Waiting for its retry.
    app.fake.inject(not_processed(), Scope::Next(1));
    missed_call(&app, LEAD, MAIN_ST).await;
    hold(&app);
    app.drain().await;
    assert_eq!(creates_to(&app, LEAD).len(), 1);
    assert_eq!(
        jobs_of(&app, "text_back").await,
        vec![js("scheduled", Some("retry"))]
    );
    text(&app, LEAD, MAIN_ST, "STOP").await;
    app.run_until_quiet(Duration::hours(2)).await;
    assert_eq!(creates_to(&app, LEAD).len(), 1, "no second create");
    assert!(texts_to(&app, LEAD).is_empty());
    assert_eq!(
        jobs_of(&app, "text_back").await,
        vec![js("cancelled", Some("opted_out"))]
    );

    // Claimed by a worker (running) when the STOP commits.
    let other = "+16175550125";
    app.fake.inject(not_processed(), Scope::Next(1));
    missed_call(&app, other, MAIN_ST).await;
    hold(&app);
    app.drain().await;
    assert_eq!(creates_to(&app, other).len(), 1);
    let claimed: i64 = sqlx::query_scalar(
        "update job set state = 'running', attempt = attempt + 1, lease_until = $1
          where kind = 'text_back' and state = 'scheduled' returning job_id",
    )
    .bind(now(&app) + Duration::seconds(1))
    .fetch_one(&app.db.pool)
    .await
    .expect("claim by hand");
    text(&app, other, MAIN_ST, "STOP").await;
    // The lease runs out; a worker re-claims it and the gate runs in its pre-send transaction.
    app.clock.advance(Duration::seconds(5));
    app.run_until_quiet(Duration::hours(2)).await;
    assert_eq!(creates_to(&app, other).len(), 1, "no create after the STOP");
    assert!(texts_to(&app, other).is_empty());
    let (state, reason): (String, Option<String>) =
        sqlx::query_as("select state, reason from job where job_id = $1")
            .bind(claimed)
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        ("skipped", Some("opted_out"))
    );
    let d: Vec<(String, String, String)> = decisions(&app, "text_back")
        .await
        .iter()
        .filter(|d| d.job_id == Some(claimed))
        .map(|d| {
            let (a, b, c) = d.what();
            (a.to_owned(), b.to_owned(), c.to_owned())
        })
        .collect();
    assert_eq!(
        d,
        vec![w("allow", "R7", "in_window"), w("skip", "R1", "opted_out")]
    );
    assert_eq!(
        suppression(&app, "harbor", other).await.as_deref(),
        Some("carrier_keyword")
    );
}
