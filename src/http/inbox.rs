//! `/inbox`: the conversations a person may see, one thread, and what agents do there (docs/inbox.md
//! "The inbox"). Every page and action finds the conversation through
//! the person's scope, so another brokerage's or office's id is a 404. State changes are POST
//! forms carrying the session's CSRF token; each answers with a redirect to the thread (so a
//! reload never repeats it), or the thread again with the reason when it was refused.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::auth::{Posted, PostedFiles, Viewer};
use super::pages::Layout;
use super::{AppState, Error, Result};
use crate::domain::alerts::callback_why;
use crate::domain::callback;
use crate::domain::decision_text::{self, past_time};
use crate::domain::language::{How, Language};
use crate::domain::phone::{display, parse_typed};
use crate::domain::{carrier, sms_text};
use crate::effects::{self, ReplyRefused};
use crate::store::inbox::{self, Filter, Head, Thread};
use crate::store::jobs::{JobKind, JobState};
use crate::store::{contacts, conversations, messages, tasks};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/inbox") }))
        .route("/inbox", get(inbox_page))
        .route("/inbox/list", get(list_fragment))
        .route("/inbox/search", post(search))
        .route("/inbox/events", get(super::live::events))
        .route("/inbox/c/{id}", get(conversation_page))
        .route("/inbox/c/{id}/thread", get(thread_fragment))
        .route(
            "/inbox/c/{id}/reply",
            post(reply).layer(axum::extract::DefaultBodyLimit::max(
                super::auth::MAX_UPLOAD_FORM_BYTES,
            )),
        )
        .route("/inbox/c/{id}/note", post(note))
        .route("/inbox/c/{id}/assign", post(assign))
        .route("/inbox/c/{id}/close", post(close))
        .route("/inbox/c/{id}/reopen", post(reopen))
        .route("/inbox/c/{id}/takeover", post(take_over))
        .route("/inbox/c/{id}/claim", post(claim))
        .route("/inbox/c/{id}/do-not-text", post(do_not_text))
        .route("/inbox/c/{id}/review", post(review))
        .route("/inbox/c/{id}/name", post(set_name))
        .route("/inbox/c/{id}/language", post(set_language))
        .route("/inbox/c/{id}/merge", post(merge))
        .route("/inbox/c/{id}/delete", post(delete))
        .route("/inbox/c/{id}/tasks/{task}/done", post(task_done))
        .route("/inbox/c/{id}/callback", post(call_back))
        .route("/inbox/voicemails/{id}/audio", get(voicemail_audio))
}

/// An id from a path: anything but a positive 64-bit number is simply not found (docs/security.md
/// §3 row 25: negative, 2^63, non-numeric and UUID-shaped ids all answer 404).
pub fn parse_id(raw: &str) -> Result<i64> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(Error::NotFound),
    }
}

/// Most conversations the list shows at once ("Older conversations" pages on).
const PAGE: i64 = 50;
/// The longest reply (docs/security.md §3 row 26; Twilio's limit is 1,600 characters).
const MAX_REPLY_CHARS: usize = 1600;

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    filter: Option<String>,
    before: Option<i64>,
    /// The conversation open beside the list (a live refresh keeps its row marked).
    selected: Option<i64>,
}

impl ListQuery {
    fn filter(&self) -> Filter {
        self.filter
            .as_deref()
            .and_then(Filter::parse)
            .unwrap_or(Filter::Open)
    }

    fn before(&self) -> Option<DateTime<Utc>> {
        self.before.and_then(DateTime::<Utc>::from_timestamp_micros)
    }
}

pub struct FilterTab {
    key: &'static str,
    label: &'static str,
}

pub struct RowView {
    id: i64,
    who: String,
    sub: String,
    preview: String,
    when: String,
    unread: bool,
    waiting: bool,
    escalated: bool,
    hold: bool,
    suppressed: bool,
    closed: bool,
    tasks: i64,
    assigned: String,
    selected: bool,
}

pub struct Badge {
    class: &'static str,
    text: String,
}

pub struct AgentOption {
    id: i64,
    label: String,
    selected: bool,
}

pub struct ItemView {
    at: DateTime<Utc>,
    order: u8,
    when: String,
    class: &'static str,
    title: String,
    body: Option<String>,
    meta: Option<String>,
    warn: bool,
    /// A voicemail's audio, played through textback.
    audio: Option<String>,
    /// A text's pictures and files (README.md "Pictures").
    media: Vec<MediaView>,
}

/// A picture or file of a text: served by textback (`src`) when kept, else a line saying why
/// not.
pub struct MediaView {
    src: Option<String>,
    image: bool,
    label: String,
    width: Option<i32>,
    height: Option<i32>,
}

fn media_view(m: &crate::store::media::Item) -> MediaView {
    let is_image = |t: Option<&str>| t.is_some_and(|t| t.starts_with("image/"));
    let image = is_image(m.content_type.as_deref());
    let what = if image || (m.content_type.is_none() && is_image(m.claimed_type.as_deref())) {
        "photo"
    } else {
        "file"
    };
    let label = match m.state.as_str() {
        "stored" if image => "Photo".to_owned(),
        "stored" => format!("PDF, {} KB", (i64::from(m.size.unwrap_or(0)) + 1023) / 1024),
        "pending" => format!("A {what} on its way from the carrier…"),
        "refused" => match m.reason.as_deref() {
            Some("not_twilio" | "other_account") => {
                format!("A {what} not kept: its link was not from Twilio")
            }
            Some(code) => format!(
                "A {what} not kept: {}",
                crate::domain::media::reason_words(code).unwrap_or_else(|| code.replace('_', " "))
            ),
            None => format!("A {what} not kept"),
        },
        _ => format!("A {what} the carrier could not give us"),
    };
    MediaView {
        src: (m.state == "stored").then(|| format!("/inbox/media/{}", m.media_id)),
        image,
        label,
        width: m.width,
        height: m.height,
    }
}

pub struct TaskView {
    id: i64,
    text: String,
    when: String,
}

pub struct ThreadView {
    id: i64,
    who: String,
    name: String,
    phone: String,
    tel: String,
    number: String,
    listing: String,
    office: String,
    badges: Vec<Badge>,
    agents: Vec<AgentOption>,
    review_hold: Option<String>,
    suppressed: bool,
    closed: bool,
    taken_over: Option<String>,
    items: Vec<ItemView>,
    open_tasks: Vec<TaskView>,
    phones: Vec<(i64, String)>,
    merge_targets: Vec<(i64, String)>,
    reply_blocked: Option<String>,
    /// The brokerage's name when no text has gone to this number yet: the compose box says
    /// what the first text gets (R10: the name and the opt-out line).
    first_text: Option<String>,
    /// The opt-out line a first text gets, in the contact's language.
    opt_out_line: &'static str,
    /// Why the number cannot take texts, when the carrier or Lookup said so: the compose box
    /// offers the call first, and a text needs the "send anyway" box ticked.
    cannot_text: Option<&'static str>,
    error: Option<String>,
    /// The refusal's code, for `data-reason` (empty when none).
    error_reason: &'static str,
    draft: String,
    /// A fresh one-time token for the reply form.
    once: String,
    /// The brokerage's saved replies, their fields filled for this lead and this person
    /// (README.md "Agents on their phones"): (name, text).
    saved: Vec<(String, String)>,
    /// A first-to-claim offer open to this person: the thread offers "Claim".
    claimable: bool,
    /// The contact's language (code) and the choices: (code, name, selected).
    language_choices: Vec<(&'static str, &'static str, bool)>,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    layout: Layout,
    csrf: String,
    filters: Vec<FilterTab>,
    filter: &'static str,
    /// The list and the thread as their live fragments render them (askama's escaping done
    /// there), with their digests.
    list: Fragment,
    thread: Option<Fragment>,
    thread_id: Option<i64>,
    notice: Option<String>,
}

/// A rendered fragment of the inbox and the digest of what it shows. The page and the live
/// endpoints give the same digest for the same content, so the page swaps a fragment only when
/// something changed (a swap under a person's pointer replaces what they were about to click).
struct Fragment {
    html: String,
    digest: String,
}

impl Fragment {
    /// `volatile`: a value that differs at every render without changing what is shown (the
    /// reply form's one-time token), left out of the digest.
    fn new(html: String, volatile: &str) -> Fragment {
        use sha2::{Digest as _, Sha256};
        let shown = if volatile.is_empty() {
            std::borrow::Cow::Borrowed(html.as_str())
        } else {
            std::borrow::Cow::Owned(html.replace(volatile, ""))
        };
        let digest = hex::encode(&Sha256::digest(shown.as_bytes())[..12]);
        Fragment { html, digest }
    }

    /// The live endpoint's answer: the fragment, its digest in `X-Textback-Digest`.
    fn into_response(self) -> Response {
        (
            [(
                axum::http::HeaderName::from_static("x-textback-digest"),
                self.digest,
            )],
            Html(self.html),
        )
            .into_response()
    }
}

#[derive(Template)]
#[template(path = "list.html")]
struct ListFragment {
    filter: &'static str,
    rows: Vec<RowView>,
    older: Option<i64>,
}

#[derive(Template)]
#[template(path = "thread.html")]
struct ThreadFragment {
    csrf: String,
    thread: ThreadView,
}

fn who(name: Option<&str>, phone: &str) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_owned(),
        None => display(phone),
    }
}

fn one_line(body: &str, chars: usize) -> String {
    let line = sms_text::printable(body)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if line.chars().count() > chars {
        let mut out: String = line.chars().take(chars).collect();
        out.push('…');
        out
    } else {
        line
    }
}

async fn rows(
    state: &AppState,
    viewer: &Viewer,
    query: &ListQuery,
    selected: Option<i64>,
) -> Result<(Vec<RowView>, Option<i64>)> {
    let now = state.clock.now();
    let mut conn = state.pool.acquire().await?;
    let list = inbox::list(
        &mut conn,
        &viewer.scope(),
        viewer.user_id,
        query.filter(),
        query.before(),
        PAGE,
    )
    .await?;
    // The next page starts below the oldest row that is here by recency (not the last shown:
    // waiting leads are lifted within the page).
    let older = (list.len() as i64 == PAGE)
        .then(|| {
            list.iter()
                .filter(|r| !r.pinned)
                .map(|r| r.last_activity_at)
                .min()
                .map(|t| t.timestamp_micros())
        })
        .flatten();
    let rows = list
        .into_iter()
        .map(|r| RowView {
            id: r.conversation_id,
            who: who(r.name.as_deref(), &r.phone),
            sub: match (&r.name, &r.listing) {
                (Some(_), Some(l)) => format!("{} · {l}", display(&r.phone)),
                (Some(_), None) => display(&r.phone),
                (None, Some(l)) => l.clone(),
                (None, None) => String::new(),
            },
            preview: match (r.last_direction.as_deref(), r.last_body.as_deref()) {
                (Some("outbound"), Some(b)) => format!("You: {}", one_line(b, 80)),
                (_, Some(b)) => one_line(b, 80),
                _ => match r.last_call_outcome.as_deref() {
                    Some("answered") => "Call answered",
                    Some("missed") => "Missed call",
                    Some("unclassified") => "Call: the result was unclear",
                    _ => "Incoming call",
                }
                .to_owned(),
            },
            when: past_time(r.last_activity_at, now, viewer.tz),
            unread: r.unread,
            waiting: r.waiting_since.is_some(),
            escalated: r.escalated_at.is_some() && r.waiting_since.is_some(),
            hold: r.review_hold,
            suppressed: r.suppressed,
            closed: r.is_closed,
            tasks: r.open_tasks,
            assigned: r.assigned_name.unwrap_or_else(|| "unassigned".to_owned()),
            selected: Some(r.conversation_id) == selected,
        })
        .collect();
    Ok((rows, older))
}

fn filters() -> Vec<FilterTab> {
    Filter::ALL
        .into_iter()
        .map(|f| FilterTab {
            key: f.key(),
            label: f.label(),
        })
        .collect()
}

async fn render_inbox(
    state: &AppState,
    viewer: &Viewer,
    query: &ListQuery,
    thread: Option<ThreadView>,
    notice: Option<String>,
) -> Result<String> {
    let selected = thread.as_ref().map(|t| t.id);
    let (rows, older) = rows(state, viewer, query, selected).await?;
    let list = list_html(query.filter().key(), rows, older)?;
    let thread_id = thread.as_ref().map(|t| t.id);
    let thread = thread.map(|t| thread_html(viewer, t)).transpose()?;
    Ok(InboxPage {
        layout: Layout::of(viewer, "inbox"),
        csrf: viewer.csrf.clone(),
        filters: filters(),
        filter: query.filter().key(),
        list,
        thread,
        thread_id,
        notice,
    }
    .render()?)
}

fn list_html(filter: &'static str, rows: Vec<RowView>, older: Option<i64>) -> Result<Fragment> {
    let html = ListFragment {
        filter,
        rows,
        older,
    }
    .render()?;
    Ok(Fragment::new(html, ""))
}

fn thread_html(viewer: &Viewer, thread: ThreadView) -> Result<Fragment> {
    let once = thread.once.clone();
    let html = ThreadFragment {
        csrf: viewer.csrf.clone(),
        thread,
    }
    .render()?;
    Ok(Fragment::new(html, &once))
}

/// `GET /inbox`.
async fn inbox_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<ListQuery>,
) -> Result<Html<String>> {
    Ok(Html(
        render_inbox(&state, &viewer, &query, None, None).await?,
    ))
}

/// `GET /inbox/list`: the list alone, for live updates.
async fn list_fragment(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<ListQuery>,
) -> Result<Response> {
    let (rows, older) = rows(&state, &viewer, &query, query.selected).await?;
    Ok(list_html(query.filter().key(), rows, older)?.into_response())
}

/// The conversation if the person may see it, else 404.
async fn visible_head(state: &AppState, viewer: &Viewer, id: i64) -> Result<Head> {
    let mut conn = state.pool.acquire().await?;
    match inbox::head(&mut conn, &viewer.scope(), id).await? {
        Some(head) => Ok(head),
        None => {
            // Denied access is logged (ASVS 16.3.2): missing, or not this person's to see.
            tracing::info!(
                user_id = viewer.user_id,
                conversation_id = id,
                "conversation not found or not visible"
            );
            Err(Error::NotFound)
        }
    }
}

/// Whether a GET may count as the person reading a conversation: not when the browser says
/// another site sent it there (a cross-site link must change nothing, docs/security.md §2 CSRF).
fn same_site(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| matches!(v, "same-origin" | "none"))
}

/// `GET /inbox/c/{id}`: the list and the thread; the conversation counts as read.
async fn conversation_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Html<String>> {
    let id = parse_id(&id)?;
    let head = visible_head(&state, &viewer, id).await?;
    let thread = thread_view(&state, &viewer, &head, None, String::new()).await?;
    if same_site(&headers) {
        let mut conn = state.pool.acquire().await?;
        conversations::mark_read(&mut conn, viewer.user_id, id, state.clock.now()).await?;
    }
    Ok(Html(
        render_inbox(&state, &viewer, &query, Some(thread), None).await?,
    ))
}

#[derive(Debug, Deserialize, Default)]
struct FragmentQuery {
    /// `1` when the page is in view: the conversation counts as read.
    seen: Option<String>,
}

/// `GET /inbox/c/{id}/thread`: the thread alone, for live updates.
async fn thread_fragment(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<FragmentQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let head = visible_head(&state, &viewer, id).await?;
    let thread = thread_view(&state, &viewer, &head, None, String::new()).await?;
    if q.seen.as_deref() == Some("1") && same_site(&headers) {
        let mut conn = state.pool.acquire().await?;
        conversations::mark_read(&mut conn, viewer.user_id, id, state.clock.now()).await?;
    }
    Ok(thread_html(&viewer, thread)?.into_response())
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "text_back" => "Text-back",
        "lead_text" => "Lead text",
        "follow_up" => "Follow-up",
        "manual" => "Reply",
        "opt_out_ack" => "Opt-out confirmation",
        "opt_in_ack" => "Opt-in confirmation",
        "help" => "Help reply",
        _ => "Text",
    }
}

fn delivery(m: &inbox::MessageItem) -> (Option<String>, bool) {
    match m.send_state.as_deref() {
        Some("sending") => (Some("sending…".into()), false),
        Some("unknown") => (Some("checking with the carrier…".into()), false),
        Some("needs_review") => (
            Some("may not have gone out: the carrier could not confirm it".into()),
            true,
        ),
        Some("failed_certain") => (Some("not sent; trying again".into()), true),
        Some("rejected") => (
            Some(match m.error_code {
                Some(code) => format!("refused by the carrier: {}", carrier::describe(code)),
                None => "refused by the carrier".into(),
            }),
            true,
        ),
        _ => match (m.carrier_status.as_deref(), m.error_code) {
            (Some("delivered" | "read"), _) => (Some("delivered".into()), false),
            (Some("undelivered" | "failed"), Some(code)) => (
                Some(format!("not delivered: {}", carrier::describe(code))),
                true,
            ),
            (Some("undelivered" | "failed"), None) => (Some("not delivered".into()), true),
            (Some(s), _) => (Some(s.replace('_', " ")), false),
            (None, _) => (Some("sent".into()), false),
        },
    }
}

fn job_words(j: &inbox::JobItem, now: DateTime<Utc>, tz: Tz) -> Option<(String, bool)> {
    let why = |r: Option<&str>| -> String {
        match r {
            Some("answered_call") => "the caller reconnected and an agent answered".into(),
            Some("inbound_text") => "the contact texted".into(),
            Some("agent_takeover") => "an agent took over".into(),
            Some("opted_out") => "the contact opted out".into(),
            Some("conversation_closed") => "the conversation was closed".into(),
            Some("contact_deleted") => "the contact was deleted".into(),
            Some("human_replied") => "an agent replied".into(),
            Some("cannot_text") => "the carrier said this number cannot take texts".into(),
            Some("filtered") => "the carrier filtered an earlier text as spam".into(),
            Some("unreachable") => "their phone was unreachable twice in a row".into(),
            Some("number_removed") => "the number it was for left the setup file".into(),
            Some(other) => other.replace('_', " "),
            None => String::new(),
        }
    };
    // A dead job's last error: a carrier code in words, else the error as recorded.
    let failure = |e: Option<&str>| -> String {
        match e.map(str::trim) {
            Some(code) if code.parse::<i32>().is_ok() => {
                carrier::describe(code.parse::<i32>().unwrap_or_default())
            }
            Some("stale") => "it was too late to send".into(),
            Some(other) => other.to_owned(),
            None => "the carrier refused it".into(),
        }
    };
    let label = kind_label(match j.kind {
        JobKind::AgentReply => "manual",
        k => k.as_str(),
    });
    match (j.kind, j.state) {
        (JobKind::TextBack, JobState::Scheduled) => Some((
            match decision_text::countdown(j.run_at, now) {
                // The hold after a missed call: how long the caller has to ring back.
                Some(soon) => format!(
                    "Text-back {soon} (at {})",
                    decision_text::local_time(j.run_at, now, tz)
                ),
                None if j.run_at <= now => "Text-back about to go".to_owned(),
                None => format!(
                    "Text-back scheduled for {}",
                    decision_text::local_time(j.run_at, now, tz)
                ),
            },
            false,
        )),
        (JobKind::LeadText, JobState::Scheduled) => Some((
            if j.run_at <= now {
                "Lead text about to go".to_owned()
            } else {
                format!(
                    "Lead text scheduled for {}",
                    decision_text::local_time(j.run_at, now, tz)
                )
            },
            false,
        )),
        (JobKind::AgentReply, JobState::Scheduled | JobState::Running) => {
            Some(("Reply queued".into(), false))
        }
        (_, JobState::Cancelled) => Some((
            format!("{label} cancelled: {}", why(j.reason.as_deref())),
            false,
        )),
        (_, JobState::Dead) => Some((
            format!(
                "{label} could not be sent: {}",
                failure(j.last_error.as_deref())
            ),
            true,
        )),
        (_, JobState::NeedsReview) => Some((
            format!("{label} may not have gone out: a person should check"),
            true,
        )),
        _ => None,
    }
}

/// A person named by the name the setup file gives them (records keep the email).
fn person(names: &Names, email: &str) -> String {
    names
        .get(&email.to_lowercase())
        .cloned()
        .unwrap_or_else(|| email.to_owned())
}

type Names = std::collections::HashMap<String, String>;

fn consent_words(
    e: &inbox::ConsentItem,
    names: &Names,
    when: impl Fn(DateTime<Utc>) -> String,
) -> String {
    let by = match e.who.as_str() {
        "contact" => "by the contact".to_owned(),
        "carrier" => "reported by the carrier".to_owned(),
        w if w.starts_with("import:") => format!("imported ({})", &w[7..]),
        w => format!("by {}", person(names, w)),
    };
    match e.event.as_str() {
        "opt_out" if e.source == "agent" => format!("Marked do not text {by}"),
        "opt_out" if e.source == "review" => format!("Reviewed as an opt-out {by}"),
        "opt_out" => format!("Opted out ({by})"),
        "opt_in" => format!("Opted back in ({by})"),
        "review_hold" => "Possible opt-out: nothing is sent until a person decides".to_owned(),
        "review_cleared" => format!("Reviewed: not an opt-out ({by})"),
        "written_consent" => match (e.raw_text.as_deref(), e.consent_url.as_deref()) {
            // "Written consent: “I agree to receive texts…” on https://…/f/acme/buyers at 10:02"
            (Some(text), Some(url)) => {
                let shown = crate::domain::alerts::preview(text);
                let from = e
                    .consent_ip
                    .as_deref()
                    .map(|ip| format!(", from {ip}"))
                    .unwrap_or_default();
                format!(
                    "Written consent: “{shown}” on {} at {}{from}",
                    sms_text::printable(url),
                    when(e.at)
                )
            }
            _ => format!("Written consent recorded ({by})"),
        },
        other => other.replace('_', " "),
    }
}

fn event_words(e: &inbox::EventItem) -> String {
    let by = e
        .by_name
        .as_deref()
        .map(|n| format!(" by {n}"))
        .unwrap_or_default();
    match e.kind.as_str() {
        "assigned" => format!(
            "Assigned to {}{by}",
            e.to_name.as_deref().unwrap_or("someone")
        ),
        "unassigned" => format!("Unassigned{by}"),
        "closed" => format!("Closed{by}"),
        "reopened" => format!("Reopened{by}"),
        "taken_over" => format!("Taken over{by}: no more automatic texts"),
        "language" => language_words(e.detail.as_deref().unwrap_or(""), &by),
        // The routing trace (docs/routing.md).
        _ => routing_words(e).unwrap_or_else(|| format!("{}{by}", e.kind.replace('_', " "))),
    }
}

/// A change of the contact's language in plain words (README.md "Spanish"); `detail` is
/// `code:how` as stored.
fn language_words(detail: &str, by: &str) -> String {
    let (code, how) = detail.split_once(':').unwrap_or((detail, ""));
    let name = Language::parse(code).map_or("another language", Language::name);
    match How::parse(how) {
        Some(How::Keyword) => format!("Language: {name} (they asked for it by text)"),
        Some(How::Agent) => format!("Language: {name}, set{by}"),
        _ => format!("Language: {name} (from what they wrote)"),
    }
}

/// A line of the routing trace in plain words ("Offered to Sam and Ava: first to claim").
fn routing_words(e: &inbox::EventItem) -> Option<String> {
    let to = e.to_name.as_deref().unwrap_or("someone");
    let by = e.by_name.as_deref().unwrap_or("someone");
    let offered: Vec<&str> = e.agent_names.iter().flatten().map(String::as_str).collect();
    // A language that narrowed the choice rides on the detail: `round_robin+es`.
    let (detail, language) = match e.detail.as_deref().unwrap_or("").split_once('+') {
        Some((d, code)) => (d, Language::parse(code)),
        None => (e.detail.as_deref().unwrap_or(""), None),
    };
    let speaks = language
        .map(|l| format!(" (speaks {})", l.name()))
        .unwrap_or_default();
    Some(match e.kind.as_str() {
        "routed" => match detail {
            "round_robin" => format!("Routed to {to}{speaks}: next in turn"),
            "first_to_claim" => format!("Routed to {to}{speaks}"),
            "claim_timeout" => {
                format!("Routed to {to}{speaks}: next in turn, as nobody claimed it")
            }
            _ => format!("Routed to {to}{speaks}: first available agent"),
        },
        "offered" => format!(
            "Offered to {}{}: the first to claim it owns it",
            crate::effects::routing::names(&offered),
            language
                .map(|l| format!(" (they speak {})", l.name()))
                .unwrap_or_default()
        ),
        "claimed" => format!("Claimed by {to}"),
        "claim_timed_out" => format!(
            "Not claimed in time (offered to {})",
            crate::effects::routing::names(&offered)
        ),
        "skipped" => {
            let why = crate::domain::routing::Unavailable::from_code(detail)
                .map_or_else(|| "not available".to_owned(), |u| u.words());
            format!("{to} {why}: skipped")
        }
        "to_managers" => match &e.to_name {
            Some(m) => format!("Nobody available: to the managers ({m})"),
            None => "Nobody available: to the managers".to_owned(),
        },
        "reassigned" => {
            let minutes = detail
                .strip_prefix("escalated:")
                .map(|m| format!(": the reply waited {m} min"))
                .unwrap_or_default();
            format!("Moved from {by} to {to}{speaks}{minutes}")
        }
        "agent_text" => match detail {
            "reply" => format!("{by} replied by text from their phone"),
            "claim" => format!("{by} texted CLAIM"),
            "close" => format!("{by} texted CLOSE"),
            "take_over" => format!("{by} texted TAKE OVER"),
            "call_back" => format!("{by} texted CALL BACK"),
            other => format!("{by} texted {}", other.replace('_', " ")),
        },
        _ => return None,
    })
}

fn items(thread: &Thread, head: &Head, names: &Names, now: DateTime<Utc>, tz: Tz) -> Vec<ItemView> {
    let mut out = Vec::new();
    let when = |at: DateTime<Utc>| past_time(at, now, tz);
    for c in &thread.calls {
        let about = c
            .listing
            .as_deref()
            .map(|l| format!(" about {l}"))
            .unwrap_or_default();
        let title = match (c.outcome.as_deref(), c.answered_by.as_deref()) {
            (Some("answered"), Some(a)) => format!("Call{about}, answered by {a}"),
            (Some("answered"), None) => format!("Call{about}, answered"),
            (Some("missed"), _) => format!("Missed call{about}"),
            (Some("unclassified"), _) => format!("Call{about}: the result was unclear"),
            _ => format!("Incoming call{about}"),
        };
        out.push(ItemView {
            at: c.started_at,
            order: 0,
            when: when(c.started_at),
            class: "call",
            title,
            body: None,
            meta: (c.from_raw != head.phone).then(|| format!("from {}", display(&c.from_raw))),
            warn: false,
            audio: None,
            media: Vec::new(),
        });
    }
    for m in &thread.messages {
        if m.kind.as_deref() == Some("agent_alert") {
            continue;
        }
        let (title, class, meta, warn) = if m.direction == "inbound" {
            let title = match m.keyword_class.as_deref() {
                Some("opt_out") => "Opt-out".to_owned(),
                Some("opt_in") => "Opt-in".to_owned(),
                Some("help") => "Asked for help".to_owned(),
                Some("review") => "Possible opt-out".to_owned(),
                _ => who(head.name.as_deref(), &m.from_raw),
            };
            let meta = (m.from_raw != head.phone).then(|| format!("from {}", display(&m.from_raw)));
            (
                title,
                "in",
                meta,
                m.keyword_class.as_deref() == Some("review"),
            )
        } else {
            let title = match (m.kind.as_deref(), m.author.as_deref()) {
                (Some("manual"), Some(a)) => a.to_owned(),
                (k, _) => kind_label(k.unwrap_or("text_back")).to_owned(),
            };
            let (status, warn) = delivery(m);
            let meta = if m.to_raw != head.phone {
                status.map(|s| format!("to {} · {s}", display(&m.to_raw)))
            } else {
                status
            };
            (title, "out", meta, warn)
        };
        let media: Vec<MediaView> = thread
            .media
            .iter()
            .filter(|x| {
                x.message_id == Some(m.message_id)
                    || (m.direction == "outbound" && x.job_id.is_some() && x.job_id == m.job_id)
            })
            .map(media_view)
            .collect();
        out.push(ItemView {
            at: m.occurred_at,
            order: 1,
            when: when(m.occurred_at),
            class,
            title,
            body: (!m.body.is_empty() || media.is_empty())
                .then(|| sms_text::printable(&m.body).into_owned()),
            meta,
            warn,
            audio: None,
            media,
        });
    }
    for n in &thread.notes {
        out.push(ItemView {
            at: n.created_at,
            order: 2,
            when: when(n.created_at),
            class: "note",
            title: format!("Note by {}", n.author),
            body: Some(n.body.clone()),
            meta: None,
            warn: false,
            audio: None,
            media: Vec::new(),
        });
    }
    for t in &thread.tasks {
        let about = t
            .listing
            .as_deref()
            .map(|l| format!(" about {l}"))
            .unwrap_or_default();
        let detail = match &t.detail {
            Some(d) => format!("{}:{d}", t.reason),
            None => t.reason.clone(),
        };
        let meta = match (
            t.state.as_str(),
            t.done_by.as_deref(),
            t.done_reason.as_deref(),
        ) {
            ("open", _, _) => "open".to_owned(),
            (_, Some(by), _) => format!("done by {}", person(names, by)),
            (_, None, Some("answered_call")) => "done: a call connected".to_owned(),
            (_, None, Some(r)) => format!("done ({})", r.replace('_', " ")),
            _ => "done".to_owned(),
        };
        out.push(ItemView {
            at: t.created_at,
            order: 3,
            when: when(t.created_at),
            class: "task",
            title: format!("Call back ({}){about}", callback_why(&detail)),
            body: None,
            meta: Some(meta),
            warn: false,
            audio: None,
            media: Vec::new(),
        });
    }
    for c in &thread.callbacks {
        let by = match c.origin.as_str() {
            "auto" => "automatic, right after the miss",
            "link" => "from the link in an alert text",
            _ => "from the inbox",
        }
        .to_owned();
        let (title, warn) = match (c.state.as_str(), c.outcome.as_deref()) {
            ("ended", Some(o)) => {
                let ended = callback::Ended::parse(o);
                let words = ended.map_or_else(|| o.replace('_', " "), |e| e.words().to_owned());
                let title = match ended {
                    Some(callback::Ended::Connected) => {
                        let secs = c.talk_secs.unwrap_or(0);
                        format!(
                            "Called back by {}: connected, {}:{:02}",
                            c.agent_name,
                            secs / 60,
                            secs % 60
                        )
                    }
                    _ => format!("Callback to {}'s phone: {words}", c.agent_name),
                };
                (title, ended != Some(callback::Ended::Connected))
            }
            ("queued" | "creating" | "unknown", _) => {
                (format!("Calling {}'s phone…", c.agent_name), false)
            }
            ("ringing", _) => (format!("Ringing {}'s phone…", c.agent_name), false),
            ("answered", _) => (format!("{} picked up; waiting for 1", c.agent_name), false),
            _ => (
                format!("{} pressed 1: dialling the lead…", c.agent_name),
                false,
            ),
        };
        let detail = c.detail.as_deref().filter(|d| {
            c.outcome
                .as_deref()
                .is_some_and(|o| o == "refused" || o == "not_placed")
                && !d.is_empty()
        });
        out.push(ItemView {
            at: c.created_at,
            order: 3,
            when: when(c.created_at),
            class: "call",
            title,
            body: detail.map(str::to_owned),
            meta: Some(by),
            warn,
            audio: None,
            media: Vec::new(),
        });
    }
    for w in &thread.web_leads {
        // A lead from the website or a lead source (docs/leads.md): what they wrote, where from.
        let from = match (w.source.as_deref(), w.key_name.as_deref()) {
            (Some(source), _) => format!("Lead from {}", sms_text::printable(source)),
            (None, Some(key)) => format!("Lead from {}", sms_text::printable(key)),
            (None, None) => "Lead from the website".to_owned(),
        };
        let title = match w.name.as_deref() {
            Some(name) => format!("{from}: {}", sms_text::printable(name)),
            None => from,
        };
        out.push(ItemView {
            at: w.created_at,
            order: 0,
            when: when(w.created_at),
            class: "in",
            title,
            body: w
                .message
                .as_deref()
                .map(|m| sms_text::printable(m).into_owned()),
            meta: w
                .listing
                .as_deref()
                .map(|l| format!("about {}", sms_text::printable(l))),
            warn: false,
            audio: None,
            media: Vec::new(),
        });
    }
    for v in &thread.voicemails {
        let secs = v.duration_secs.unwrap_or(0);
        let body = match (v.transcription_status.as_str(), v.transcript.as_deref()) {
            ("completed", Some(t)) if !t.trim().is_empty() => {
                Some(sms_text::printable(t).into_owned())
            }
            // Twilio does not retry a transcription callback: after a while, none is coming.
            ("none", _) if now - v.created_at < chrono::Duration::minutes(10) => {
                Some("(transcript on its way)".to_owned())
            }
            _ => None,
        };
        let title = match v.keyword_class.as_deref() {
            Some("opt_out") => format!("Voicemail, {}:{:02}: an opt-out", secs / 60, secs % 60),
            Some("review") => format!(
                "Voicemail, {}:{:02}: possible opt-out",
                secs / 60,
                secs % 60
            ),
            _ => format!("Voicemail, {}:{:02}", secs / 60, secs % 60),
        };
        out.push(ItemView {
            at: v.created_at,
            order: 1,
            when: when(v.created_at),
            class: "in",
            title,
            body,
            meta: None,
            warn: v.keyword_class.as_deref() == Some("review"),
            audio: Some(format!("/inbox/voicemails/{}/audio", v.voicemail_id)),
            media: Vec::new(),
        });
    }
    for d in &thread.decisions {
        if d.kind == "agent_alert" {
            continue;
        }
        let words = decision_text::describe(
            &decision_text::Decision {
                decision: &d.decision,
                reason: &d.reason,
                until: d.until,
                zones: &d.zones,
                recipient: &d.phone,
                cap_count: d.cap_count,
                cap_limit: d.cap_limit,
            },
            now,
        );
        out.push(ItemView {
            at: d.decided_at,
            order: 4,
            when: when(d.decided_at),
            class: "decision",
            title: format!("{} {words}", kind_label(&d.kind)),
            body: None,
            meta: (d.decision == "defer" && !d.job_pending)
                .then(|| "since then: tried again".to_owned()),
            warn: d.decision == "skip",
            audio: None,
            media: Vec::new(),
        });
    }
    for e in &thread.events {
        out.push(ItemView {
            at: e.at,
            order: 7,
            when: when(e.at),
            class: "event",
            title: event_words(e),
            body: None,
            meta: None,
            warn: false,
            audio: None,
            media: Vec::new(),
        });
    }
    for e in &thread.consent {
        out.push(ItemView {
            at: e.at,
            order: 5,
            when: when(e.at),
            class: "event",
            title: consent_words(e, names, when),
            body: None,
            meta: None,
            warn: e.event == "opt_out" || e.event == "review_hold",
            audio: None,
            media: Vec::new(),
        });
    }
    for j in &thread.jobs {
        // A reply just sent shows at once as the text it is, on its way.
        if j.kind == JobKind::AgentReply
            && matches!(j.state, JobState::Scheduled | JobState::Running)
            && let Some(body) = &j.body
        {
            out.push(ItemView {
                at: j.at,
                order: 1,
                when: when(j.at),
                class: "out",
                title: j
                    .agent
                    .as_deref()
                    .map_or_else(|| "Reply".to_owned(), |a| person(names, a)),
                body: Some(body.clone()),
                meta: Some(if j.run_at > now + chrono::Duration::minutes(1) {
                    format!(
                        "queued: goes at {}",
                        decision_text::local_time(j.run_at, now, tz)
                    )
                } else {
                    "sending…".to_owned()
                }),
                warn: false,
                audio: None,
                media: Vec::new(),
            });
            continue;
        }
        if let Some((title, warn)) = job_words(j, now, tz) {
            out.push(ItemView {
                at: j.at,
                order: 6,
                when: when(j.at),
                class: "event",
                title,
                body: j.body.clone(),
                meta: None,
                warn,
                audio: None,
                media: Vec::new(),
            });
        }
    }
    out.sort_by(|a, b| a.at.cmp(&b.at).then(a.order.cmp(&b.order)));
    out
}

async fn thread_view(
    state: &AppState,
    viewer: &Viewer,
    head: &Head,
    error: Option<String>,
    draft: String,
) -> Result<ThreadView> {
    let now = state.clock.now();
    let tz = viewer.tz;
    let mut conn = state.pool.acquire().await?;
    let thread = inbox::thread(
        &mut conn,
        viewer.brokerage,
        head.conversation_id,
        head.visible_from,
    )
    .await?;
    let agents = inbox::agents(&mut conn, viewer.brokerage).await?;
    let names = inbox::names_by_email(&mut conn, viewer.brokerage).await?;
    let phones = inbox::phones(&mut conn, viewer.brokerage, head.conversation_id).await?;
    let first_text =
        messages::is_first_outbound(&mut conn, viewer.brokerage, head.contact_id, &head.phone)
            .await?;
    let targets = inbox::merge_targets(&mut conn, &viewer.scope(), head.conversation_id).await?;
    let saved_rows = crate::store::routing::saved_replies(&mut conn, viewer.brokerage).await?;
    let claimable =
        crate::store::routing::open_offer_for(&mut conn, viewer.brokerage, head.conversation_id)
            .await?
            .is_some_and(|o| o.agent_ids.contains(&viewer.agent_id));
    drop(conn);
    let number_display = display(&head.number_e164);
    let saved: Vec<(String, String)> = saved_rows
        .into_iter()
        .filter_map(|r| {
            let template = crate::domain::template::Template::parse(&r.body).ok()?;
            let first = viewer
                .name
                .split_whitespace()
                .next()
                .unwrap_or(&viewer.name)
                .to_owned();
            let text = template.render(|f| {
                use crate::domain::template::Field;
                match f {
                    Field::Brokerage => Some(viewer.brokerage_name.as_str()),
                    Field::Office => Some(head.office_name.as_str()),
                    Field::AgentFirstName => Some(first.as_str()),
                    Field::AgentName => Some(viewer.name.as_str()),
                    Field::Listing => head.listing.as_deref(),
                    Field::Number => Some(number_display.as_str()),
                    Field::FirstName => head
                        .name
                        .as_deref()
                        .and_then(|n| n.split_whitespace().next()),
                }
            });
            Some((r.name, text))
        })
        .collect();
    let held = head.review_hold_message_id.and_then(|id| {
        thread
            .messages
            .iter()
            .find(|m| m.message_id == id)
            .map(|m| one_line(&m.body, 200))
    });
    let mut badges = Vec::new();
    let default_language = Language::parse(&head.default_language).unwrap_or(Language::En);
    let language = head
        .language
        .as_deref()
        .and_then(Language::parse)
        .unwrap_or(default_language);
    // Only worth a badge when it is not the brokerage's everyday language.
    if language != default_language {
        badges.push(Badge {
            class: "lang",
            text: language.name().to_owned(),
        });
    }
    if head.review_hold_at.is_some() {
        badges.push(Badge {
            class: "warn",
            text: "possible opt-out: review".into(),
        });
    }
    if head.suppressed {
        badges.push(Badge {
            class: "stop",
            text: "opted out: no texts".into(),
        });
    }
    if let Some(since) = head.waiting_since {
        badges.push(Badge {
            class: "wait",
            text: format!("waiting since {}", past_time(since, now, tz)),
        });
    }
    if head.escalated_at.is_some() && head.waiting_since.is_some() {
        badges.push(Badge {
            class: "warn",
            text: "escalated to the managers".into(),
        });
    }
    if let Some(at) = head.taken_over_at {
        badges.push(Badge {
            class: "",
            text: format!(
                "taken over by {} {}",
                head.taken_over_by
                    .as_deref()
                    .map_or_else(|| "an agent".to_owned(), |e| person(&names, e)),
                past_time(at, now, tz)
            ),
        });
    }
    if head.is_closed {
        badges.push(Badge {
            class: "",
            text: "closed".into(),
        });
    }
    let open_tasks = thread
        .tasks
        .iter()
        .filter(|t| t.state == "open")
        .map(|t| {
            let detail = match &t.detail {
                Some(d) => format!("{}:{d}", t.reason),
                None => t.reason.clone(),
            };
            TaskView {
                id: t.task_id,
                text: format!(
                    "Call {} back ({})",
                    who(head.name.as_deref(), &head.phone),
                    callback_why(&detail)
                ),
                when: past_time(t.created_at, now, tz),
            }
        })
        .collect();
    let reply_blocked = if head.suppressed {
        Some("This number opted out: no text can go to it unless they text START.".to_owned())
    } else if head.review_hold_at.is_some() {
        Some(
            "A possible opt-out awaits a decision above; nothing can be sent until then."
                .to_owned(),
        )
    } else {
        None
    };
    Ok(ThreadView {
        id: head.conversation_id,
        who: who(head.name.as_deref(), &head.phone),
        name: head.name.clone().unwrap_or_default(),
        phone: display(&head.phone),
        tel: head.phone.clone(),
        number: display(&head.number_e164),
        listing: head.listing.clone().unwrap_or_default(),
        office: head.office_name.clone(),
        badges,
        agents: agents
            .into_iter()
            .map(|(id, name, office)| AgentOption {
                id,
                label: format!("{name} ({office})"),
                selected: Some(id) == head.assigned_agent_id,
            })
            .collect(),
        review_hold: held.or_else(|| head.review_hold_at.map(|_| String::new())),
        suppressed: head.suppressed,
        closed: head.is_closed,
        taken_over: head.taken_over_by.clone(),
        items: items(&thread, head, &names, now, tz),
        open_tasks,
        phones: if phones.len() > 1 {
            phones
                .into_iter()
                .map(|(id, p)| (id.0, display(&p)))
                .collect()
        } else {
            Vec::new()
        },
        merge_targets: targets
            .into_iter()
            .map(|(id, phone, name)| (id, who(name.as_deref(), &phone)))
            .collect(),
        reply_blocked,
        first_text: first_text.then(|| viewer.brokerage_name.clone()),
        opt_out_line: match language {
            Language::En => sms_text::OPT_OUT_LINE.trim(),
            Language::Es => sms_text::OPT_OUT_LINE_ES.trim(),
        },
        cannot_text: crate::domain::line_type::why_no_texts(
            head.cannot_text_code.as_deref(),
            head.line_type.as_deref(),
        ),
        error,
        error_reason: "",
        draft,
        saved,
        claimable,
        language_choices: Language::ALL
            .iter()
            .map(|l| (l.as_str(), l.name(), *l == language))
            .collect(),
        once: super::auth::random_token()?,
    })
}

/// The thread again, with what went wrong in words, under `status` (a refused reply keeps its
/// draft). `reason` is a code for the page's `data-reason` (machines and tests read it; people
/// read the words).
async fn refused(
    state: &AppState,
    viewer: &Viewer,
    head: &Head,
    status: axum::http::StatusCode,
    (error, reason): (String, &'static str),
    draft: String,
) -> Result<Response> {
    let mut thread = thread_view(state, viewer, head, Some(error), draft).await?;
    thread.error_reason = reason;
    let page = render_inbox(state, viewer, &ListQuery::default(), Some(thread), None).await?;
    Ok((status, Html(page)).into_response())
}

fn back(id: i64) -> Response {
    Redirect::to(&format!("/inbox/c/{id}")).into_response()
}

/// The frame every conversation action shares: the conversation must be visible to this person
/// (else 404, and nothing changes), the change runs in one transaction, and a log line names
/// the action and who took it (never what was typed).
async fn act(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    action: &'static str,
    change: impl AsyncFnOnce(&mut sqlx::PgConnection, &Head) -> Result<()>,
) -> Result<()> {
    let head = visible_head(state, viewer, id).await?;
    let mut tx = state.pool.begin().await?;
    change(&mut tx, &head).await?;
    tx.commit().await?;
    tracing::info!(user_id = viewer.user_id, conversation_id = id, "{action}");
    Ok(())
}

/// How long a reply's photo answers at its address: Twilio fetches it when it sends, and a
/// reply held for quiet hours or retried may go out a day or two later.
const PHOTO_DAYS: i64 = 3;

#[derive(Deserialize)]
struct ReplyForm {
    #[serde(default)]
    body: String,
    to: Option<String>,
    /// The form's one-time token: a double submission sends once.
    once: Option<String>,
    /// `yes`: the agent knows the number may not take texts and writes all the same.
    #[serde(default)]
    anyway: String,
}

/// `POST /inbox/c/{id}/reply`: through the gate and the at-most-once sender (an
/// `agent_reply` job). Refused at once, with the reason, for an opted-out number, a review
/// hold or a public link shortener (docs/compliance.md R1, R3, R11).
async fn reply(
    State(state): State<AppState>,
    Path(id): Path<String>,
    PostedFiles {
        viewer,
        form,
        files,
    }: PostedFiles<ReplyForm>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let head = visible_head(&state, &viewer, id).await?;
    let typed = sms_text::plain_newlines(&form.body);
    let body = typed.trim();
    // A photo (README.md "Pictures"): one, checked by its bytes, of a type every phone shows.
    let photo = match files.as_slice() {
        [] => None,
        [bytes] => match crate::domain::media::check(bytes) {
            Ok(c) if c.kind.may_send() => Some((bytes, c)),
            Ok(c) => {
                return refused(
                    &state,
                    &viewer,
                    &head,
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    (
                        format!(
                            "Not sent: a {} may not show on their phone. Attach a JPEG, PNG or GIF photo.",
                            c.kind.mime()
                        ),
                        "photo_type",
                    ),
                    typed.clone(),
                )
                .await;
            }
            Err(why) => {
                return refused(
                    &state,
                    &viewer,
                    &head,
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    (
                        format!(
                            "Not sent: {}. Attach a JPEG, PNG or GIF photo.",
                            why.words()
                        ),
                        "photo_refused",
                    ),
                    typed.clone(),
                )
                .await;
            }
        },
        _ => {
            return refused(
                &state,
                &viewer,
                &head,
                axum::http::StatusCode::BAD_REQUEST,
                ("One photo per text.".into(), "photos"),
                typed.clone(),
            )
            .await;
        }
    };
    if body.is_empty() && photo.is_none() {
        return refused(
            &state,
            &viewer,
            &head,
            axum::http::StatusCode::BAD_REQUEST,
            ("The message is empty.".into(), "empty"),
            String::new(),
        )
        .await;
    }
    if body.chars().count() > MAX_REPLY_CHARS {
        return refused(
            &state,
            &viewer,
            &head,
            axum::http::StatusCode::BAD_REQUEST,
            (
                "A text can have at most 1,600 characters.".into(),
                "too_long",
            ),
            typed.clone(),
        )
        .await;
    }
    if let Some(why) = crate::domain::line_type::why_no_texts(
        head.cannot_text_code.as_deref(),
        head.line_type.as_deref(),
    ) && form.anyway != "yes"
    {
        return refused(
            &state,
            &viewer,
            &head,
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            (
                format!(
                    "Not sent: this number probably cannot take texts ({why}). Call them instead, or tick \u{201c}Send the text anyway\u{201d}."
                ),
                "cannot_receive",
            ),
            typed.clone(),
        )
        .await;
    }
    let mut conn = state.pool.acquire().await?;
    let phones = inbox::phones(&mut conn, viewer.brokerage, id).await?;
    let (contact, phone) = match form.to.as_deref().filter(|t| !t.is_empty()) {
        Some(to) => {
            let to = crate::store::ContactId(to.parse::<i64>().map_err(|_| Error::NotFound)?);
            phones
                .iter()
                .find(|(c, _)| *c == to)
                .cloned()
                .ok_or(Error::NotFound)?
        }
        None => (head.contact_id, head.phone.clone()),
    };
    // A first message gets the brokerage's name and the opt-out line (R10); the carrier
    // refuses more than 1,600 characters in all (21617), so the whole text is counted.
    let first = messages::is_first_outbound(&mut conn, viewer.brokerage, contact, &phone).await?;
    drop(conn);
    let whole = if first {
        let language = head
            .language
            .as_deref()
            .and_then(Language::parse)
            .or_else(|| Language::parse(&head.default_language))
            .unwrap_or(Language::En);
        sms_text::identify_in(body, &viewer.brokerage_name, true, language)
            .chars()
            .count()
    } else {
        body.chars().count()
    };
    if whole > MAX_REPLY_CHARS {
        return refused(
            &state,
            &viewer,
            &head,
            axum::http::StatusCode::BAD_REQUEST,
            (
                format!(
                    "A text can have at most 1,600 characters; this first message to them would have {whole} with the brokerage's name and the opt-out line added."
                ),
                "too_long",
            ),
            typed.clone(),
        )
        .await;
    }
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let once = form
        .once
        .as_deref()
        .filter(|t| !t.is_empty() && t.len() <= 64);
    let mut media_ids = Vec::new();
    if let Some((bytes, checked)) = photo {
        let token = super::auth::random_token()?;
        let id = crate::store::media::insert_upload(
            &mut tx,
            viewer.brokerage,
            &crate::store::media::NewUpload {
                file: crate::store::media::Stored {
                    bytes,
                    content_type: checked.kind.mime(),
                    width: checked.width,
                    height: checked.height,
                },
                token: &token,
                expires_at: now + chrono::Duration::days(PHOTO_DAYS),
                uploaded_by: viewer.agent_id,
            },
            now,
        )
        .await?;
        media_ids.push(id);
    }
    let queued = effects::queue_agent_reply_once(
        &mut tx,
        viewer.brokerage,
        contact,
        head.number_id,
        &viewer.email,
        effects::Said {
            body,
            once,
            by_text: None,
            media_ids: &media_ids,
        },
        now,
    )
    .await?;
    match queued {
        Ok(job) => {
            // A second submission of the form found the first one's reply: its photo goes with
            // that one, and this upload is not kept.
            if !media_ids.is_empty() {
                crate::store::media::discard_unattached(&mut tx, viewer.brokerage, &media_ids)
                    .await?;
            }
            tx.commit().await?;
            tracing::info!(
                user_id = viewer.user_id,
                job_id = job,
                chars = body.chars().count(),
                segments = sms_text::segments(body),
                "agent reply queued"
            );
            Ok(back(id))
        }
        Err(why) => {
            drop(tx);
            let words = match why {
                ReplyRefused::OptedOut => {
                    "Not sent: this number opted out of texts. Only they can undo that, by texting START."
                }
                ReplyRefused::ReviewHold => {
                    "Not sent: they may have asked to stop. Decide above whether it is an opt-out first."
                }
                ReplyRefused::Shortener => {
                    "Not sent: carriers block public link shorteners such as bit.ly. Use the full link."
                }
                ReplyRefused::Empty => "The message is empty.",
            };
            tracing::info!(
                user_id = viewer.user_id,
                reason = why.reason(),
                "agent reply refused"
            );
            refused(
                &state,
                &viewer,
                &head,
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                (words.into(), why.reason()),
                typed.clone(),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct NoteForm {
    #[serde(default)]
    body: String,
}

async fn note(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, form }: Posted<NoteForm>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let typed = sms_text::plain_newlines(&form.body);
    let body = typed.trim();
    act(&state, &viewer, id, "note added", async |tx, _| {
        if body.is_empty() || body.chars().count() > 2000 {
            return Err(Error::BadRequest(
                "A note needs between 1 and 2,000 characters.".into(),
            ));
        }
        let now = state.clock.now();
        conversations::add_note(tx, viewer.brokerage, id, viewer.agent_id, body, now).await?;
        Ok(())
    })
    .await?;
    Ok(back(id))
}

#[derive(Deserialize)]
struct AssignForm {
    #[serde(default)]
    agent: String,
}

async fn assign(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, form }: Posted<AssignForm>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    act(
        &state,
        &viewer,
        id,
        "conversation assigned",
        async |tx, _| {
            let agent = if form.agent.is_empty() {
                None
            } else {
                let wanted = form
                    .agent
                    .parse::<i64>()
                    .map_err(|_| Error::BadRequest("Choose an agent from the list.".into()))?;
                let agents = inbox::agents(tx, viewer.brokerage).await?;
                if !agents.iter().any(|(a, _, _)| *a == wanted) {
                    return Err(Error::BadRequest("Choose an agent from the list.".into()));
                }
                Some(wanted)
            };
            // A person's choice ends a first-to-claim offer (docs/routing.md).
            effects::routing::withdraw_offer(tx, viewer.brokerage, id, state.clock.now()).await?;
            if conversations::assign(tx, viewer.brokerage, id, agent).await? {
                let kind = if agent.is_some() {
                    "assigned"
                } else {
                    "unassigned"
                };
                let now = state.clock.now();
                conversations::record_event(
                    tx,
                    viewer.brokerage,
                    id,
                    kind,
                    Some(viewer.agent_id),
                    agent,
                    now,
                )
                .await?;
            }
            Ok(())
        },
    )
    .await?;
    Ok(back(id))
}

#[derive(Deserialize)]
struct Nothing {}

/// `POST /inbox/c/{id}/claim`: the viewer claims a lead offered to them (docs/routing.md). A lead
/// someone claimed first answers who has it (409) and changes nothing.
async fn claim(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, .. }: Posted<Nothing>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let head = visible_head(&state, &viewer, id).await?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let result = effects::routing::claim(
        &mut tx,
        viewer.brokerage,
        id,
        head.contact_id,
        viewer.agent_id,
        now,
    )
    .await?;
    tx.commit().await?;
    match result {
        effects::routing::Claimed::Held(name) => {
            tracing::info!(
                conversation_id = id,
                "claim refused: claimed by someone else"
            );
            refused(
                &state,
                &viewer,
                &head,
                axum::http::StatusCode::CONFLICT,
                (
                    format!("{name} claimed this lead first; nothing changed."),
                    "claimed_by_other",
                ),
                String::new(),
            )
            .await
        }
        _ => {
            tracing::info!(conversation_id = id, "lead claimed");
            Ok(back(id))
        }
    }
}

async fn set_closed(state: &AppState, viewer: &Viewer, id: &str, closed: bool) -> Result<Response> {
    let id = parse_id(id)?;
    let kind = if closed { "closed" } else { "reopened" };
    act(
        state,
        viewer,
        id,
        "conversation closed or reopened",
        async |tx, _| {
            let now = state.clock.now();
            if effects::people::set_closed(tx, viewer.brokerage, id, closed, &viewer.email, now)
                .await?
            {
                conversations::record_event(
                    tx,
                    viewer.brokerage,
                    id,
                    kind,
                    Some(viewer.agent_id),
                    None,
                    now,
                )
                .await?;
            }
            Ok(())
        },
    )
    .await?;
    Ok(back(id))
}

async fn close(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, .. }: Posted<Nothing>,
) -> Result<Response> {
    set_closed(&state, &viewer, &id, true).await
}

async fn reopen(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, .. }: Posted<Nothing>,
) -> Result<Response> {
    set_closed(&state, &viewer, &id, false).await
}

async fn take_over(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, .. }: Posted<Nothing>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    act(
        &state,
        &viewer,
        id,
        "conversation taken over",
        async |tx, _| {
            let now = state.clock.now();
            // Under the contacts' locks: of two people taking it over at once, one is first.
            if effects::people::take_over(tx, viewer.brokerage, id, &viewer.email, now).await? {
                conversations::record_event(
                    tx,
                    viewer.brokerage,
                    id,
                    "taken_over",
                    Some(viewer.agent_id),
                    None,
                    now,
                )
                .await?;
            }
            Ok(())
        },
    )
    .await?;
    Ok(back(id))
}

/// The box a person ticks before an action that cannot be taken back from the page (a
/// do-not-text, a delete): the page requires it, the server checks it.
#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

impl ConfirmForm {
    fn check(&self, what: &str) -> Result<()> {
        if self.confirm == "yes" {
            Ok(())
        } else {
            Err(Error::BadRequest(format!(
                "Tick the box to confirm {what}; nothing was changed."
            )))
        }
    }
}

async fn do_not_text(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, form }: Posted<ConfirmForm>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    act(&state, &viewer, id, "marked do not text", async |tx, _| {
        form.check("that this number gets no more texts")?;
        // Every contact locked first, in id order, before any of them is written.
        let now = state.clock.now();
        for contact in effects::people::lock_all(tx, viewer.brokerage, id).await? {
            effects::people::do_not_text(tx, viewer.brokerage, contact, &viewer.email, now).await?;
        }
        Ok(())
    })
    .await?;
    Ok(back(id))
}

#[derive(Deserialize)]
struct ReviewForm {
    #[serde(default)]
    decision: String,
}

async fn review(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, form }: Posted<ReviewForm>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    act(
        &state,
        &viewer,
        id,
        "review hold decided",
        async |tx, head| {
            let opt_out = match form.decision.as_str() {
                "opt_out" => true,
                "not_opt_out" => false,
                _ => {
                    return Err(Error::BadRequest(
                        "Choose opt-out or not an opt-out.".into(),
                    ));
                }
            };
            // Every number of the conversation that is on hold (a merge can bring in another's),
            // every contact locked first, in id order, before any of them is written.
            let now = state.clock.now();
            let contacts =
                effects::people::lock_all(tx, viewer.brokerage, head.conversation_id).await?;
            for contact in contacts {
                effects::people::decide_review(
                    tx,
                    viewer.brokerage,
                    contact,
                    opt_out,
                    &viewer.email,
                    now,
                )
                .await?;
            }
            Ok(())
        },
    )
    .await?;
    Ok(back(id))
}

#[derive(Deserialize)]
struct NameForm {
    #[serde(default)]
    name: String,
}

async fn set_name(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, form }: Posted<NameForm>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    // (The log never holds the name itself: it is personal data.)
    act(&state, &viewer, id, "contact name set", async |tx, head| {
        let name = form.name.trim();
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Error::BadRequest(
                "A name has at most 100 characters and no control characters.".into(),
            ));
        }
        let name = Some(name).filter(|n| !n.is_empty());
        conversations::set_contact_name(tx, viewer.brokerage, head.contact_id, name).await?;
        Ok(())
    })
    .await?;
    Ok(back(id))
}

#[derive(Deserialize)]
struct LanguageForm {
    #[serde(default)]
    language: String,
}

/// `POST /inbox/c/{id}/language`: the agent sets the language the lead is texted in (README.md
/// "Spanish"); a guess from their texts never overrides it, their own ESPAÑOL or ENGLISH does.
async fn set_language(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, form }: Posted<LanguageForm>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let Some(language) = Language::parse(form.language.trim()) else {
        return Err(Error::BadRequest(
            "The language is `en` (English) or `es` (Español).".into(),
        ));
    };
    let now = state.clock.now();
    act(
        &state,
        &viewer,
        id,
        "contact language set",
        async |tx, head| {
            contacts::lock(tx, viewer.brokerage, head.contact_id).await?;
            contacts::set_language(
                tx,
                viewer.brokerage,
                head.contact_id,
                language,
                How::Agent,
                Some(viewer.agent_id),
                now,
            )
            .await?;
            Ok(())
        },
    )
    .await?;
    Ok(back(id))
}

#[derive(Deserialize)]
struct MergeForm {
    #[serde(default)]
    into: String,
}

async fn merge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, form }: Posted<MergeForm>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let into = parse_id(&form.into)?;
    // The other conversation must be visible too: asked before the transaction, so the action
    // does not hold one connection while it waits for another.
    if into != id {
        visible_head(&state, &viewer, into).await?;
    }
    act(
        &state,
        &viewer,
        id,
        "conversations merged",
        async |tx, _| {
            if into == id {
                return Err(Error::BadRequest(
                    "A conversation cannot be merged into itself.".into(),
                ));
            }
            effects::people::merge(tx, viewer.brokerage, id, into, state.clock.now()).await?;
            Ok(())
        },
    )
    .await?;
    Ok(back(into))
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, form }: Posted<ConfirmForm>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    act(
        &state,
        &viewer,
        id,
        "contact deleted from the inbox",
        async |tx, _| {
            form.check("the delete")?;
            effects::people::delete(tx, viewer.brokerage, id, state.clock.now()).await?;
            Ok(())
        },
    )
    .await?;
    Ok(Redirect::to("/inbox").into_response())
}

async fn task_done(
    State(state): State<AppState>,
    Path((id, task)): Path<(String, String)>,
    Posted { viewer, .. }: Posted<Nothing>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let task = parse_id(&task)?;
    act(&state, &viewer, id, "callback task done", async |tx, _| {
        let contacts = conversations::contacts_of(tx, viewer.brokerage, id).await?;
        // Another conversation's task, or one already done, changes nothing.
        let now = state.clock.now();
        tasks::mark_done(tx, viewer.brokerage, task, &contacts, &viewer.email, now).await?;
        Ok(())
    })
    .await?;
    Ok(back(id))
}

/// `POST /inbox/c/{id}/callback` (the thread's "Call back", and a callback task's): textback
/// calls this person's phone through the number the lead called; on 1, the lead
/// (docs/calls.md). Refused, with the reason, by the call rule or while one is under way.
async fn call_back(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { viewer, .. }: Posted<Nothing>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let head = visible_head(&state, &viewer, id).await?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let asked = effects::callbacks::ask(
        &mut tx,
        viewer.brokerage,
        &effects::callbacks::Ask {
            contact_id: head.contact_id,
            number_id: head.number_id,
            origin: callback::Origin::Inbox,
            requested_by: Some(viewer.agent_id),
            agent_id: viewer.agent_id,
            remaining: Vec::new(),
            call_id: None,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = viewer.user_id, conversation_id = id, asked = ?asked, "callback asked for");
    match asked {
        effects::callbacks::Asked::Queued { .. } => Ok(back(id)),
        effects::callbacks::Asked::AlreadyLive => {
            refused(
                &state,
                &viewer,
                &head,
                axum::http::StatusCode::CONFLICT,
                (
                    "A callback to this lead is already under way; nothing new was placed."
                        .to_owned(),
                    "callback_live",
                ),
                String::new(),
            )
            .await
        }
        effects::callbacks::Asked::Refused { words, .. } => {
            refused(
                &state,
                &viewer,
                &head,
                axum::http::StatusCode::CONFLICT,
                (format!("No call was placed: {words}."), "call_rule"),
                String::new(),
            )
            .await
        }
    }
}

fn unavailable() -> Response {
    (
        axum::http::StatusCode::BAD_GATEWAY,
        "The voicemail could not be fetched from the carrier; try again in a moment.\n",
    )
        .into_response()
}

/// `GET /inbox/voicemails/{id}/audio`: a voicemail's audio, fetched from the carrier with the
/// brokerage's account, for a person who may see its conversation (404 otherwise). The page
/// never links to the carrier.
async fn voicemail_audio(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let mut conn = state.pool.acquire().await?;
    let Some(vm) = crate::store::callbacks::voicemail(&mut conn, viewer.brokerage, id).await?
    else {
        return Err(Error::NotFound);
    };
    let visible = contact_visible(&mut conn, &viewer, vm.contact_id, vm.created_at).await?;
    drop(conn);
    if !visible {
        tracing::info!(
            user_id = viewer.user_id,
            voicemail_id = id,
            "voicemail not found or not visible"
        );
        return Err(Error::NotFound);
    }
    let creds = match state.credentials(viewer.brokerage).await? {
        Ok(c) => c,
        Err(why) => {
            tracing::warn!(reason = %why, "no account to fetch a voicemail with");
            return Ok(unavailable());
        }
    };
    match state.twilio.recording_mp3(&creds, &vm.recording_sid).await {
        Ok(bytes) => Ok((
            [
                (axum::http::header::CONTENT_TYPE, "audio/mpeg"),
                (axum::http::header::CACHE_CONTROL, "private, no-store"),
            ],
            bytes,
        )
            .into_response()),
        Err(e) => {
            tracing::warn!(voicemail_id = id, error = %e, "could not fetch a voicemail's audio");
            Ok(unavailable())
        }
    }
}

/// Whether this person may see what happened at `at` in the conversation `contact` shows in
/// (a voicemail, a photo): the conversation is theirs to see, and `at` is not from before it
/// was deleted; `false` for no contact.
pub(super) async fn contact_visible(
    conn: &mut sqlx::PgConnection,
    viewer: &Viewer,
    contact: Option<crate::store::ContactId>,
    at: DateTime<Utc>,
) -> Result<bool> {
    let Some(contact) = contact else {
        return Ok(false);
    };
    Ok(inbox::contact_visible_at(conn, &viewer.scope(), contact, at).await?)
}

#[derive(Deserialize)]
struct SearchForm {
    #[serde(default)]
    phone: String,
}

/// `POST /inbox/search`: by phone, as a POST so the number never sits in a URL or an access
/// log (docs/security.md §2 "URLs").
async fn search(
    State(state): State<AppState>,
    Posted { viewer, form }: Posted<SearchForm>,
) -> Result<Response> {
    let notice = match parse_typed(&form.phone) {
        None => "Type a phone number, such as (617) 555-0123.".to_owned(),
        Some(phone) => {
            let mut conn = state.pool.acquire().await?;
            match inbox::find_by_phone(&mut conn, &viewer.scope(), phone.as_e164()).await? {
                Some(id) => return Ok(back(id)),
                None => format!("No conversation with {}.", display(phone.as_e164())),
            }
        }
    };
    let page = render_inbox(&state, &viewer, &ListQuery::default(), None, Some(notice)).await?;
    Ok(Html(page).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_not_positive_numbers_are_not_found() {
        assert_eq!(parse_id("12").ok(), Some(12));
        for raw in [
            "-1",
            "0",
            "9223372036854775808",
            "abc",
            "1e3",
            "123e4567-e89b-12d3-a456-426614174000",
            "",
        ] {
            assert!(matches!(parse_id(raw), Err(Error::NotFound)), "{raw}");
        }
    }

    #[test]
    fn previews_are_one_short_line() {
        assert_eq!(one_line("a\n b  c", 80), "a b c");
        assert_eq!(one_line(&"x".repeat(90), 80).chars().count(), 81);
    }
}
