//! Message status callbacks (docs/twilio.md §3.3, §3.4): after a create is stored, the fake moves
//! the message along its lifecycle and POSTs a signed form to its `StatusCallback` at each
//! step, the way Twilio does, optionally duplicated, reversed or spaced out.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Shared;
use super::player::{self, Pair};
use super::shapes::API_VERSION;
use textback_core::domain::phone::mask;

/// How the fake sends status callbacks for messages created from now on
/// ([`super::FakeTwilio::set_callback_plan`]).
///
/// The steps are `sent` then `delivered`, or, when the recipient's Lookup line type is
/// `landline`, `sent` then `undelivered` with `ErrorCode=30006` (Twilio's own order: the
/// carrier takes the text, the handset report fails). No callback is sent for the initial
/// `queued` status (docs/twilio.md §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackPlan {
    /// `false`: no callbacks, and messages stay `queued` with `date_sent` null.
    pub enabled: bool,
    /// Post every callback twice (two deliveries with distinct idempotency tokens, so a
    /// server cannot dedupe on the token alone; docs/reliability.md §4).
    pub duplicate: bool,
    /// Post the steps in reverse order (`delivered` before `sent`; callbacks are unordered,
    /// docs/twilio.md §3.4).
    pub reverse: bool,
    /// Wait this long (real time) before each step, the first one included.
    pub delay: Duration,
}

impl Default for CallbackPlan {
    fn default() -> Self {
        CallbackPlan {
            enabled: true,
            duplicate: false,
            reverse: false,
            delay: Duration::ZERO,
        }
    }
}

impl CallbackPlan {
    /// No callbacks at all.
    pub fn disabled() -> Self {
        CallbackPlan {
            enabled: false,
            ..CallbackPlan::default()
        }
    }

    /// Every callback sent twice.
    pub fn duplicated(self) -> Self {
        CallbackPlan {
            duplicate: true,
            ..self
        }
    }

    /// Steps in reverse order.
    pub fn reversed(self) -> Self {
        CallbackPlan {
            reverse: true,
            ..self
        }
    }

    /// `delay` before each step.
    pub fn with_delay(self, delay: Duration) -> Self {
        CallbackPlan { delay, ..self }
    }
}

/// One delivery attempt of a status callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAttempt {
    /// The fake's clock when it was sent.
    pub at: DateTime<Utc>,
    /// The `StatusCallback` URL, exactly as given in the create (the URL that was signed).
    pub url: String,
    /// The form parameters, in the order sent.
    pub params: Vec<(String, String)>,
    /// The HTTP status our server answered, or why there was none.
    pub result: Result<u16, String>,
}

/// The lifecycle steps for a recipient of this line type.
fn steps_for(line_type: &str) -> Vec<(&'static str, Option<u32>)> {
    match line_type {
        "landline" => vec![("sent", None), ("undelivered", Some(30006))],
        _ => vec![("sent", None), ("delivered", None)],
    }
}

/// Forward-only rank of message statuses (docs/twilio.md §3.3); unknown statuses rank lowest so
/// they never move a message.
fn rank(status: &str) -> u8 {
    match status {
        "accepted" | "scheduled" => 1,
        "queued" => 2,
        "sending" => 3,
        "sent" => 4,
        "delivered" | "undelivered" | "failed" => 5,
        "read" => 6,
        _ => 0,
    }
}

/// The parameters of a message status callback, in the order of
/// `fixtures/twilio/sms-status-*.txt`: `AccountSid, ApiVersion, From, MessageSid,
/// MessageStatus, [ErrorCode], [RawDlrDoneDate], SmsSid, SmsStatus, To`. `RawDlrDoneDate`
/// (`YYMMDDhhmm`) comes with `delivered` and `undelivered`; `MessagingServiceSid` with a
/// service send; `From` is left out when there is none (a service send before a sender was
/// picked).
#[allow(clippy::too_many_arguments)] // one argument per callback field, all required
pub(crate) fn status_params(
    account_sid: &str,
    message_sid: &str,
    from: Option<&str>,
    to: &str,
    messaging_service_sid: Option<&str>,
    status: &str,
    error_code: Option<&str>,
    now: DateTime<Utc>,
) -> Vec<Pair> {
    let mut p: Vec<Pair> = Vec::with_capacity(11);
    let mut push = |k: &str, v: &str| p.push((k.to_owned(), v.to_owned()));
    push("AccountSid", account_sid);
    push("ApiVersion", API_VERSION);
    if let Some(from) = from {
        push("From", from);
    }
    push("MessageSid", message_sid);
    push("MessageStatus", status);
    if let Some(service) = messaging_service_sid {
        push("MessagingServiceSid", service);
    }
    if let Some(code) = error_code {
        push("ErrorCode", code);
    }
    if matches!(status, "delivered" | "undelivered") {
        push("RawDlrDoneDate", &now.format("%y%m%d%H%M").to_string());
    }
    push("SmsSid", message_sid);
    push("SmsStatus", status);
    push("To", to);
    p
}

/// Starts the callback plan for a just-stored message, in a background task that
/// [`settle`] waits for.
pub(crate) fn schedule(s: &Arc<Shared>, sid: &str) {
    let (plan, steps) = {
        let state = s.lock();
        let Some(m) = state.messages.iter().find(|m| m.msg.sid == sid) else {
            return;
        };
        let mut steps = steps_for(state.line_type(&m.msg.to));
        if state.plan.reverse {
            steps.reverse();
        }
        (state.plan.clone(), steps)
    };
    if !plan.enabled {
        return;
    }
    let task = tokio::spawn(run_plan(s.clone(), sid.to_owned(), steps, plan));
    s.tasks().push(task);
}

async fn run_plan(
    s: Arc<Shared>,
    sid: String,
    steps: Vec<(&'static str, Option<u32>)>,
    plan: CallbackPlan,
) {
    for (status, code) in steps {
        if !plan.delay.is_zero() {
            tokio::time::sleep(plan.delay).await;
        }
        // The message moves even without a StatusCallback: the carrier delivers regardless.
        let Some((Some(url), params)) = advance(&s, &sid, status, code) else {
            continue;
        };
        let copies = if plan.duplicate { 2 } else { 1 };
        for _ in 0..copies {
            let _ = deliver(&s, &url, params.clone()).await;
        }
    }
}

/// Moves the message to `status` if that ranks higher (setting `date_sent` at `sent` or
/// later, and the error code), and builds the callback for `status` itself: a reversed plan
/// reports `sent` after `delivered`, while the message stays `delivered`. Returns the
/// message's `StatusCallback` with the parameters, or `None` for an unknown message.
fn advance(
    s: &Shared,
    sid: &str,
    status: &str,
    code: Option<u32>,
) -> Option<(Option<String>, Vec<Pair>)> {
    let now = s.clock.now();
    let mut state = s.lock();
    let m = &mut state.messages.iter_mut().find(|m| m.msg.sid == sid)?.msg;
    if rank(status) > rank(&m.status) {
        status.clone_into(&mut m.status);
        m.date_updated = now;
        if rank(status) >= rank("sent") && m.date_sent.is_none() {
            m.date_sent = Some(now);
        }
        if code.is_some() {
            m.error_code = code;
        }
    }
    let code = code.map(|c| c.to_string());
    let params = status_params(
        &m.account_sid,
        &m.sid,
        m.from.as_deref(),
        &m.to,
        m.messaging_service_sid.as_deref(),
        status,
        code.as_deref(),
        now,
    );
    Some((m.status_callback.clone(), params))
}

/// Posts one signed callback and logs the attempt.
async fn deliver(s: &Shared, url: &str, params: Vec<Pair>) -> Result<u16, String> {
    let at = s.clock.now();
    // Signed as the message's account signs its webhooks.
    let account = params
        .iter()
        .find(|(k, _)| k == "AccountSid")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let signer = s
        .lock()
        .accounts
        .get(&account)
        .map(|a| a.signer.clone())
        .unwrap_or_else(|| player::Signer::auth_token(&s.auth_token));
    let result = player::post_signed_form(&s.http, &signer, url, &params)
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string());
    let sid = params
        .iter()
        .find(|(k, _)| k == "MessageSid")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let status = params
        .iter()
        .find(|(k, _)| k == "MessageStatus")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let to = params
        .iter()
        .find(|(k, _)| k == "To")
        .map(|(_, v)| mask(v))
        .unwrap_or_default();
    match &result {
        Ok(code) => tracing::info!(%sid, %status, %to, http = code, "fake twilio status callback"),
        Err(e) => {
            tracing::warn!(%sid, %status, %to, error = %e, "fake twilio status callback failed")
        }
    }
    s.lock().callbacks.push(CallbackAttempt {
        at,
        url: url.to_owned(),
        params,
        result: result.clone(),
    });
    result
}

/// [`super::FakeTwilio::send_message_status`].
pub(crate) async fn send_explicit(
    s: &Shared,
    sid: &str,
    status: &str,
    error_code: Option<u32>,
) -> anyhow::Result<u16> {
    let Some((url, params)) = advance(s, sid, status, error_code) else {
        anyhow::bail!("the fake has no message {sid}");
    };
    let Some(url) = url else {
        anyhow::bail!("message {sid} was created without a StatusCallback");
    };
    deliver(s, &url, params)
        .await
        .map_err(|e| anyhow::anyhow!("status callback for {sid} failed: {e}"))
}

/// Waits for every callback task, including tasks scheduled while waiting.
pub(crate) async fn settle(s: &Shared) {
    loop {
        let tasks = std::mem::take(&mut *s.tasks());
        if tasks.is_empty() {
            return;
        }
        for task in tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "fake twilio callback task ended abnormally");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use textback_twilio::form;

    /// The fake's callback for the fixture's message reproduces `sms-status-delivered.txt`
    /// byte for byte.
    #[test]
    fn delivered_params_are_the_fixture() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T18:05:30Z")
            .expect("valid")
            .with_timezone(&Utc);
        let params = status_params(
            "AC4a9f9b8b5c52fcd667586e852d52ac05",
            "SMfc18586643f15531ebe53d3817c3c118",
            Some("+15555550100"),
            "+16175550123",
            None,
            "delivered",
            None,
            now,
        );
        let fixture = include_str!("../../../fixtures/twilio/sms-status-delivered.txt");
        assert_eq!(form::encode(&params), fixture);
    }

    #[test]
    fn undelivered_params_are_the_fixture() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T18:06:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        let params = status_params(
            "AC4a9f9b8b5c52fcd667586e852d52ac05",
            "SM857c50011a4d3d30139b537313d56ac7",
            Some("+15555550100"),
            "+16175550124",
            None,
            "undelivered",
            Some("30006"),
            now,
        );
        let fixture = include_str!("../../../fixtures/twilio/sms-status-undelivered-30006.txt");
        assert_eq!(form::encode(&params), fixture);
    }

    #[test]
    fn ranks_only_move_forward() {
        assert!(rank("delivered") > rank("sent"));
        assert!(rank("sent") > rank("queued"));
        assert!(rank("queued") > rank("accepted"));
        assert_eq!(rank("delivered"), rank("undelivered"));
        assert_eq!(rank("bogus"), 0);
    }
}
