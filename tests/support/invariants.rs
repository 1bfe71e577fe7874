//! docs/reliability.md §5's invariants I1–I5, judged from the fake carrier's log and the database
//! after a drain: shared by the randomized runs (`tests/sim.rs`) and the fault tests
//! (`tests/faults.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use textback_fake_twilio::{FakeMessage, FakeTwilio};

use crate::helpers::STAFF_PHONES;

/// A webhook's form parameters.
pub type Params = Vec<(String, String)>;

/// Rows of `sql` as text (for failure messages).
pub async fn rows(pool: &PgPool, sql: &str) -> Vec<String> {
    let sql = format!("select t::text from ({sql}) t");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap()
}

#[derive(sqlx::FromRow, Debug)]
struct Out {
    message_id: i64,
    job_id: Option<i64>,
    kind: Option<String>,
    to_raw: String,
    from_raw: String,
    body: String,
    sid: Option<String>,
    send_state: Option<String>,
    /// The pre-send time (server clock): `started_at` of the outbound row.
    occurred_at: DateTime<Utc>,
    review_reason: Option<String>,
}

#[derive(sqlx::FromRow, Debug)]
struct Job {
    job_id: i64,
    kind: String,
    state: String,
    #[allow(dead_code)] // shown in failure messages
    reason: Option<String>,
    #[allow(dead_code)]
    last_error: Option<String>,
    contact_id: Option<i64>,
    finished_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow, Debug)]
struct In {
    message_id: i64,
    sid: String,
    from_raw: String,
    keyword_class: Option<String>,
    occurred_at: DateTime<Utc>,
}

/// R7 for a 617 number (America/New_York; MA 08:00–20:00 every day, no holidays), ending 2
/// minutes early: computed here independently of the server's quiet-hours code.
fn in_boston_window(t: DateTime<Utc>) -> bool {
    use chrono::Timelike;
    let secs = t
        .with_timezone(&chrono_tz::America::New_York)
        .num_seconds_from_midnight();
    (8 * 3600..20 * 3600 - 120).contains(&secs)
}

/// Judges docs/reliability.md's I1–I5 from the fake carrier's log and the database: `hooks` are the
/// webhooks the test posted (path, parameters, our answer), for I5's row-per-SID checks;
/// `carrier_down` the spans (fake's clock) when the test took the carrier off the network. A
/// list of violations, empty when all hold.
pub async fn check(
    pool: &PgPool,
    fake: &FakeTwilio,
    hooks: &[(&'static str, Params, Option<u16>)],
    carrier_down: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<String> {
    let mut bad = Vec::new();
    // Listings the fake failed or padded with twins (`Fault::ListFail`, `Fault::ListDup`):
    // (when, the `To` filter as sent, what the fake did).
    let listings: Vec<(DateTime<Utc>, String, String)> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/Messages.json"))
        .map(|r| (r.at, r.query, r.outcome))
        .collect();
    let fake = fake.messages();
    let outs: Vec<Out> = sqlx::query_as(
        "select message_id, job_id, kind, to_raw, from_raw, body, sid, send_state, occurred_at, review_reason
           from message where direction = 'outbound' order by message_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let jobs: HashMap<i64, Job> = sqlx::query_as::<_, Job>(
        "select job_id, kind, state, reason, last_error, contact_id, finished_at from job",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|j| (j.job_id, j))
    .collect();
    let ins: Vec<In> = sqlx::query_as(
        "select message_id, sid, from_raw, keyword_class, occurred_at from message where direction = 'inbound'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let fake_sids: HashSet<&str> = fake.iter().map(|m| m.sid.as_str()).collect();
    let is_accepted = |o: &&Out| o.sid.as_deref().is_some_and(|s| fake_sids.contains(s));
    let accepted: Vec<&Out> = outs.iter().filter(is_accepted).collect();
    let leads: Vec<&Out> = accepted
        .iter()
        .copied()
        .filter(|o| !STAFF_PHONES.contains(&o.to_raw.as_str()))
        .collect();

    // I2 (first: its verdicts on needs_review excuse unlinked creates in I1). Every job
    // terminal, every send settled; needs_review only with a cause the checker can see: for
    // `carrier_list_ambiguous`, two accepted creates with the row's To, From and body made no
    // earlier than 60 s before its pre-send, or a listing of its `To` padded with twins after
    // it; for `carrier_list_unreadable`, a listing of its `To` that the fake failed, or the
    // carrier off the network, after it.
    let mut excused = HashSet::new();
    for j in jobs.values() {
        if !matches!(
            j.state.as_str(),
            "sent" | "done" | "cancelled" | "skipped" | "dead" | "needs_review"
        ) {
            bad.push(format!(
                "I2: job {} ({}) is not terminal: {j:?}",
                j.job_id, j.kind
            ));
        }
        let reviewed =
            |o: &Out| o.job_id == Some(j.job_id) && o.send_state.as_deref() == Some("needs_review");
        if j.state == "needs_review" && !outs.iter().any(reviewed) {
            bad.push(format!(
                "I2: job needs_review without a needs_review message: {j:?}"
            ));
        }
    }
    for o in &outs {
        if matches!(o.send_state.as_deref(), Some("sending" | "unknown")) {
            bad.push(format!("I2: outbound row left unsettled: {o:?}"));
        }
        if o.send_state.as_deref() == Some("needs_review") || o.review_reason.is_some() {
            let twins = fake.iter().filter(|m| {
                (&m.to, m.from.as_deref(), &m.body)
                    == (&o.to_raw, Some(o.from_raw.as_str()), &o.body)
                    && m.date_created >= o.occurred_at - chrono::Duration::seconds(60)
            });
            let twins = twins.count();
            let since = o.occurred_at - chrono::Duration::seconds(1);
            let to = format!("To={}", o.to_raw.replace('+', "%2B"));
            let listing_fault = |fault: &str| {
                listings.iter().any(|(at, query, outcome)| {
                    *at >= since && query.contains(&to) && outcome.contains(fault)
                })
            };
            // The carrier's messages of the send's window under another body (a trial prefix,
            // a redaction) that no row claims: the cause of `carrier_body_differs`.
            let rewritten: Vec<&FakeMessage> = fake
                .iter()
                .filter(|m| {
                    (&m.to, m.from.as_deref()) == (&o.to_raw, Some(o.from_raw.as_str()))
                        && m.body != o.body
                        && m.date_created >= o.occurred_at - chrono::Duration::seconds(60)
                        && !outs
                            .iter()
                            .any(|x| x.sid.as_deref() == Some(m.sid.as_str()))
                })
                .collect();
            let visible = match o.review_reason.as_deref() {
                Some("carrier_body_differs") if !rewritten.is_empty() => {
                    for m in &rewritten {
                        excused.insert((m.to.clone(), m.body.clone()));
                    }
                    true
                }
                Some("carrier_list_ambiguous") => twins >= 2 || listing_fault("(ListDup fault)"),
                Some("carrier_list_unreadable") => {
                    listing_fault("(ListFail fault)")
                        || carrier_down.iter().any(|(_, until)| *until >= since)
                }
                _ => false,
            };
            if visible {
                excused.insert((o.to_raw.clone(), o.body.clone()));
            } else {
                let job = o.job_id.and_then(|j| jobs.get(&j));
                bad.push(format!("I2: needs_review with no visible cause ({twins} such creates at the fake): {o:?}, {job:?}"));
            }
        }
    }

    // I1: every accepted create linked to exactly one outbound row, no row linked to a create
    // the fake does not have, at most one accepted create per job (and that job `sent`), at
    // most one accepted text-back per missed-call episode.
    for m in &fake {
        let linked: Vec<&Out> = outs
            .iter()
            .filter(|o| o.sid.as_deref() == Some(m.sid.as_str()))
            .collect();
        if linked.len() != 1 && !excused.contains(&(m.to.clone(), m.body.clone())) {
            bad.push(format!(
                "I1: accepted create {} to {} at {} ({:?}) is linked to {} outbound rows",
                m.sid,
                m.to,
                m.date_created,
                m.body,
                linked.len()
            ));
        }
        // Linked to the row of that very text: reconcile links by To, From and body.
        for o in linked {
            if (&o.to_raw, Some(&o.from_raw), &o.body) != (&m.to, m.from.as_ref(), &m.body) {
                bad.push(format!("I1: {} linked to another text's row: {o:?}", m.sid));
            }
        }
    }
    for o in outs.iter().filter(|o| o.sid.is_some() && !is_accepted(o)) {
        bad.push(format!(
            "I1: outbound row linked to a sid the fake never accepted: {o:?}"
        ));
    }
    let mut per_job: BTreeMap<i64, Vec<&Out>> = BTreeMap::new();
    for o in &accepted {
        per_job
            .entry(o.job_id.unwrap_or_default())
            .or_default()
            .push(o);
    }
    for (j, rows) in &per_job {
        let job = jobs.get(j);
        if rows.len() > 1 {
            bad.push(format!(
                "I1: job {j} has {} accepted creates: {rows:?}",
                rows.len()
            ));
        }
        if job.is_none_or(|job| job.state != "sent") {
            bad.push(format!(
                "I1/I2: job {job:?} did not end `sent` though its text was accepted: {:?}",
                rows[0]
            ));
        }
    }
    // An episode (domain/episode.rs) lasts until 24 h after its text-back's job finished `sent`:
    // a later accepted text-back to the contact must be pre-sent after that.
    let mut text_backs: BTreeMap<i64, Vec<(&Out, &Job)>> = BTreeMap::new();
    for o in accepted
        .iter()
        .filter(|o| o.kind.as_deref() == Some("text_back"))
    {
        let job = &jobs[&o.job_id.unwrap()];
        text_backs
            .entry(job.contact_id.unwrap())
            .or_default()
            .push((o, job));
    }
    for pair in text_backs.values().flat_map(|list| list.windows(2)) {
        let ((a, job), (b, _)) = (pair[0], pair[1]);
        if b.occurred_at < job.finished_at.unwrap() + chrono::Duration::hours(24) {
            bad.push(format!(
                "I1: two text-backs in one episode: {a:?} (job finished {:?}), then {b:?}",
                job.finished_at
            ));
        }
    }

    // I3: no accepted text to a number whose opt-out (not lifted by a later opt-in) committed
    // before its pre-send, but the one opt-out confirmation per opt-out. The inbound STOP and
    // the pre-send both take the contact's row lock first and insert their message under it,
    // so message ids order an opt-out by text against a pre-send exactly, whatever the clocks
    // say; a ledger event without an inbound text behind it is ordered by server-clock times.
    let ledger: Vec<(String, String, Option<String>, DateTime<Utc>)> = sqlx::query_as(
        "select phone, event, evidence, at from consent_event where event in ('opt_out', 'opt_in') order by consent_event_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for o in &leads {
        let before =
            |(phone, _, evidence, at): &&(String, String, Option<String>, DateTime<Utc>)| {
                *phone == o.to_raw
                    && match ins
                        .iter()
                        .find(|i| evidence.as_deref() == Some(i.sid.as_str()))
                    {
                        Some(stop) => stop.message_id < o.message_id,
                        None => *at < o.occurred_at,
                    }
            };
        let last = ledger.iter().rev().find(before);
        if last.is_some_and(|e| e.1 == "opt_out") && o.kind.as_deref() != Some("opt_out_ack") {
            bad.push(format!("I3: text after an opt-out ({last:?}): {o:?}"));
        }
    }
    let phones: std::collections::BTreeSet<&str> = leads
        .iter()
        .map(|o| o.to_raw.as_str())
        .chain(ledger.iter().map(|e| e.0.as_str()))
        .collect();
    for phone in phones {
        let acks = leads
            .iter()
            .filter(|o| o.to_raw == phone && o.kind.as_deref() == Some("opt_out_ack"));
        let opt_outs = ledger
            .iter()
            .filter(|e| e.0 == phone && e.1 == "opt_out")
            .count();
        if acks.clone().count() > opt_outs {
            bad.push(format!(
                "I3: {} opt-out confirmations to {phone} for {opt_outs} opt-outs",
                acks.count()
            ));
        }
    }

    // I4: text-backs and follow-ups pre-sent inside the recipient's window (docs/compliance.md R7);
    // agent replies too, unless the contact sent a non-keyword text in the 24 h before
    // (`live_conversation`); keyword replies are exempt. The server's window function must
    // agree with the checker's own.
    let profiles = textback::domain::quiet_hours::profiles().expect("window data");
    for o in &leads {
        let zone = textback::domain::zones::lookup(&o.to_raw);
        let profile = profiles.get(zone.state);
        let theirs =
            textback::domain::quiet_hours::window_at(o.occurred_at, &zone.zones, profile, &[]);
        let ours = in_boston_window(o.occurred_at);
        if theirs.is_open() != ours {
            bad.push(format!(
                "I4: quiet_hours::window_at disagrees with the checker ({ours}) at {}: {theirs:?}",
                o.occurred_at
            ));
        }
        let live = ins.iter().any(|i| {
            i.from_raw == o.to_raw
                && matches!(i.keyword_class.as_deref(), Some("reply" | "review"))
                && i.occurred_at > o.occurred_at - chrono::Duration::hours(24)
                && i.occurred_at <= o.occurred_at
        });
        let kind = o.kind.as_deref().unwrap_or_default();
        let windowed = matches!(kind, "text_back" | "follow_up") || (kind == "manual" && !live);
        if windowed && !ours {
            let local = o.occurred_at.with_timezone(&chrono_tz::America::New_York);
            bad.push(format!(
                "I4: {kind} pre-sent at {local}, outside 08:00-19:58: {o:?}"
            ));
        }
    }

    // I5 (the replays themselves are in `run_seed`): a call row per CallSid and an inbound row
    // per MessageSid answered 200, no inbound row nobody sent, no status below one received.
    let sid_of = |params: &[(String, String)], key: &str| {
        params.iter().find(|p| p.0 == key).map(|p| p.1.clone())
    };
    let calls: HashMap<String, i64> =
        sqlx::query_as("select call_sid, count(*) from call group by call_sid")
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let mut sent_sms = HashSet::new();
    for (path, params, status) in hooks {
        match (*path, status) {
            ("/twilio/voice", Some(200)) => {
                let sid = sid_of(params, "CallSid").unwrap();
                if calls.get(&sid) != Some(&1) {
                    bad.push(format!(
                        "I5: call {sid}, answered 200, has {:?} rows",
                        calls.get(&sid)
                    ));
                }
            }
            ("/twilio/sms", _) => {
                let sid = sid_of(params, "MessageSid").unwrap();
                let rows = ins.iter().filter(|i| i.sid == sid).count();
                if rows > 1 || (rows == 0 && *status == Some(200)) {
                    bad.push(format!(
                        "I5: inbound {sid}, answered {status:?}, has {rows} rows"
                    ));
                }
                sent_sms.insert(sid);
            }
            _ => {}
        }
    }
    // (Only when the test recorded its webhooks.)
    if !hooks.is_empty() {
        for i in ins.iter().filter(|i| !sent_sms.contains(&i.sid)) {
            bad.push(format!("I5: an inbound row nobody sent: {i:?}"));
        }
    }
    // From the database alone: one call row per CallSid, one inbound row per MessageSid.
    for twice in rows(
        pool,
        "select call_sid, count(*) from call group by call_sid having count(*) > 1",
    )
    .await
    {
        bad.push(format!("I5: a CallSid with several call rows: {twice}"));
    }
    for twice in rows(
        pool,
        "select sid, count(*) from message where direction = 'inbound' group by sid having count(*) > 1",
    )
    .await
    {
        bad.push(format!("I5: a MessageSid with several inbound rows: {twice}"));
    }
    let downward = rows(
        pool,
            "select m.message_id, m.carrier_status, array_agg(e.status order by e.message_status_event_id)
               from message m join message_status_event e on e.message_id = m.message_id group by 1, 2
             having coalesce(message_status_rank(m.carrier_status), -1) < max(message_status_rank(e.status))",
        )
        .await;
    bad.extend(
        downward
            .into_iter()
            .map(|d| format!("I5: status below one it received: {d}")),
    );
    bad
}
