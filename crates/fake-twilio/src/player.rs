//! Twilio's side of the webhooks: a [`Player`] posts signed form requests to our server the
//! way Twilio does (docs/twilio.md §1, §2.1, §3.4, §3.5), with the parameter sets of the fixtures
//! in `fixtures/twilio/*.txt`.
//!
//! Every webhook has a `*_params` builder as well as the method that posts it, so a test can
//! replay, tamper with or reorder exactly what Twilio would send.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};

use super::callbacks;
use super::shapes::{self, API_VERSION};
use textback_core::clock::SharedClock;
use textback_twilio::{form, signature};

/// A form parameter: name and decoded value.
pub type Pair = (String, String);

/// `CA` + 32 lowercase hex digits, like a Twilio call SID.
pub fn new_call_sid() -> String {
    format!("CA{:032x}", rand::random::<u128>())
}

/// `SM` + 32 lowercase hex digits, like a Twilio message SID.
pub fn new_message_sid() -> String {
    format!("SM{:032x}", rand::random::<u128>())
}

/// How an account's webhooks are signed: with its auth token (HMAC-SHA1, the default), or with
/// a shared key Twilio's Webhooks configuration API names (`key=ID,algorithm=…` in
/// `X-Twilio-Webhooks-Signature-Settings`).
#[derive(Clone)]
pub struct Signer {
    pub algorithm: signature::Algorithm,
    pub key: String,
    /// The settings header's value, for a shared key.
    pub settings: Option<String>,
}

impl Signer {
    /// The classic signature: the auth token, HMAC-SHA1, no settings header.
    pub fn auth_token(token: &str) -> Signer {
        Signer {
            algorithm: signature::Algorithm::HmacSha1,
            key: token.to_owned(),
            settings: None,
        }
    }

    /// A shared key `id` with `secret`, signing with `algorithm`.
    pub fn shared_key(id: &str, secret: &str, algorithm: signature::Algorithm) -> Signer {
        Signer {
            algorithm,
            key: secret.to_owned(),
            settings: Some(format!("key={id},algorithm={}", algorithm.as_str())),
        }
    }

    pub fn sign(&self, url: &str, params: &[Pair]) -> String {
        signature::compute_with(self.algorithm, self.key.as_bytes(), url, params)
    }
}

/// Posts `params` to `url` as Twilio does: form-encoded, `X-Twilio-Signature` computed over
/// `url` exactly as given and every parameter (with the settings header of a shared key),
/// plus Twilio's `I-Twilio-Idempotency-Token` (fresh per delivery) and user agent.
pub(crate) async fn post_signed_form(
    client: &reqwest::Client,
    signer: &Signer,
    url: &str,
    params: &[Pair],
) -> reqwest::Result<reqwest::Response> {
    let sig = signer.sign(url, params);
    post_form(client, url, params, Some(&sig), signer.settings.as_deref()).await
}

async fn post_form(
    client: &reqwest::Client,
    url: &str,
    params: &[Pair],
    signature: Option<&str>,
    settings: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let mut req = client
        .post(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(USER_AGENT, "TwilioProxy/1.1")
        .header(
            "I-Twilio-Idempotency-Token",
            format!("{:032x}", rand::random::<u128>()),
        )
        .body(form::encode(params));
    if let Some(sig) = signature {
        req = req.header("X-Twilio-Signature", sig);
    }
    if let Some(settings) = settings {
        req = req.header("X-Twilio-Webhooks-Signature-Settings", settings);
    }
    req.send().await
}

/// What our server answered to a webhook.
#[derive(Debug, Clone)]
pub struct WebhookResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl WebhookResponse {
    /// The `Content-Type` header, if any and readable.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    }
}

/// The outcome of a `<Dial>` for [`Player::dial_result`] (docs/twilio.md §1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialResult<'a> {
    /// `DialCallStatus`: `completed`, `answered`, `busy`, `no-answer`, `failed`, `canceled`.
    pub dial_call_status: &'a str,
    /// `DialBridged`; `None` leaves the parameter out.
    pub bridged: Option<bool>,
    /// The parent (inbound) call's `CallStatus`: `in-progress` while the caller is on the
    /// line, `completed` when they are gone.
    pub parent_call_status: &'a str,
    /// `DialCallSid`; `None` leaves it out (as after dialing a conference).
    pub dial_call_sid: Option<String>,
    /// `DialCallDuration` in seconds; `None` leaves it out (as in a captured no-answer).
    pub dial_call_duration: Option<u32>,
}

impl DialResult<'static> {
    /// Nobody picked up: the key set of `voice-dial-action-no-answer.txt`.
    pub fn no_answer() -> Self {
        DialResult {
            dial_call_status: "no-answer",
            bridged: Some(false),
            parent_call_status: "in-progress",
            dial_call_sid: Some(new_call_sid()),
            dial_call_duration: None,
        }
    }

    /// An agent answered and talked `secs`, then the call ended: the key set of
    /// `voice-dial-action-completed.txt`.
    pub fn answered(secs: u32) -> Self {
        DialResult {
            dial_call_status: "completed",
            bridged: Some(true),
            parent_call_status: "completed",
            dial_call_sid: Some(new_call_sid()),
            dial_call_duration: Some(secs),
        }
    }
}

/// Posts signed webhooks to `public_url` + path as Twilio would.
#[derive(Clone)]
pub struct Player {
    /// Our server's public base URL (`TEXTBACK_PUBLIC_URL`), without a trailing slash. The
    /// signature covers `public_url + path`.
    pub public_url: String,
    pub account_sid: String,
    /// How its webhooks are signed (the account's auth token unless told otherwise).
    pub signer: Signer,
    /// `MessagingServiceSid` on inbound texts (the fixtures' numbers sit in a service);
    /// `None` leaves it out.
    pub messaging_service_sid: Option<String>,
    clock: SharedClock,
    client: reqwest::Client,
}

impl Player {
    /// A player for `public_url`, signing with `auth_token`; `clock` dates the `Timestamp`
    /// and `RawDlrDoneDate` fields.
    pub fn new(
        public_url: &str,
        account_sid: &str,
        auth_token: &str,
        clock: SharedClock,
    ) -> Player {
        // Building a client without TLS roots or proxies cannot fail in practice; fall back to
        // the default client rather than panicking if it ever did.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Player {
            public_url: public_url.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            signer: Signer::auth_token(auth_token),
            messaging_service_sid: Some("MG441a0ce03d5817bc1352b7f83958c7b3".to_owned()),
            clock,
            client,
        }
    }

    /// `public_url + path`: the URL a webhook to `path` is signed for.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// The `X-Twilio-Signature` Twilio would send with `params` to `path`.
    pub fn sign(&self, path: &str, params: &[Pair]) -> String {
        self.signer.sign(&self.url(path), params)
    }

    /// This player, signing with `signer` instead (a shared key).
    pub fn signing_with(mut self, signer: Signer) -> Player {
        self.signer = signer;
        self
    }

    /// Posts `params` to `path`, signed.
    pub async fn post_signed(
        &self,
        path: &str,
        params: &[Pair],
    ) -> anyhow::Result<WebhookResponse> {
        let response =
            post_signed_form(&self.client, &self.signer, &self.url(path), params).await?;
        read(response).await
    }

    /// Posts `params` to `path` with the given signature header (or none): for tests of
    /// forged, stale or missing signatures.
    pub async fn post_with_signature(
        &self,
        path: &str,
        params: &[Pair],
        signature: Option<&str>,
    ) -> anyhow::Result<WebhookResponse> {
        let response = post_form(&self.client, &self.url(path), params, signature, None).await?;
        read(response).await
    }

    /// The parameters every voice request carries (docs/twilio.md §1.1), in the order of the
    /// fixtures, with `Caller`/`Called` and the geo fields (`BOSTON, MA` for 617 numbers,
    /// only the country for other +1 numbers, empty elsewhere).
    fn voice_params(
        &self,
        call_sid: &str,
        from: &str,
        to: &str,
        call_status: &str,
        direction: &str,
    ) -> Vec<Pair> {
        let (from_city, from_state, from_zip, from_country) = geo(from);
        let (to_city, to_state, to_zip, to_country) = geo(to);
        pairs(&[
            ("Called", to),
            ("ToState", to_state),
            ("CallerCountry", from_country),
            ("Direction", direction),
            ("CallerState", from_state),
            ("ToZip", to_zip),
            ("CallSid", call_sid),
            ("To", to),
            ("CallerZip", from_zip),
            ("ToCountry", to_country),
            ("CalledZip", to_zip),
            ("ApiVersion", API_VERSION),
            ("CalledCity", to_city),
            ("CallStatus", call_status),
            ("From", from),
            ("AccountSid", &self.account_sid),
            ("CalledCountry", to_country),
            ("CallerCity", from_city),
            ("ToCity", to_city),
            ("FromCountry", from_country),
            ("Caller", from),
            ("FromCity", from_city),
            ("CalledState", to_state),
            ("FromZip", from_zip),
            ("FromState", from_state),
        ])
    }

    /// The incoming-call request (`voice-incoming.txt`): `CallStatus=ringing`,
    /// `Direction=inbound`, `StirVerstat` for an E.164 caller.
    pub fn incoming_call_params(&self, call_sid: &str, from: &str, to: &str) -> Vec<Pair> {
        let mut p = self.voice_params(call_sid, from, to, "ringing", "inbound");
        if from.starts_with('+') {
            push(&mut p, "StirVerstat", "TN-Validation-Passed-A");
        }
        p
    }

    /// `POST /twilio/voice`.
    pub async fn incoming_call(
        &self,
        call_sid: &str,
        from: &str,
        to: &str,
    ) -> anyhow::Result<WebhookResponse> {
        let params = self.incoming_call_params(call_sid, from, to);
        self.post_signed("/twilio/voice", &params).await
    }

    /// The `<Dial action>` request (`voice-dial-action-*.txt`): the parent call's parameters
    /// plus `DialCallStatus`, and `DialCallSid`, `DialCallDuration`, `DialBridged` when given.
    pub fn dial_result_params(
        &self,
        call_sid: &str,
        from: &str,
        to: &str,
        dial: &DialResult<'_>,
    ) -> Vec<Pair> {
        let mut p = self.voice_params(call_sid, from, to, dial.parent_call_status, "inbound");
        push(&mut p, "DialCallStatus", dial.dial_call_status);
        if let Some(sid) = &dial.dial_call_sid {
            push(&mut p, "DialCallSid", sid);
        }
        if let Some(secs) = dial.dial_call_duration {
            push(&mut p, "DialCallDuration", &secs.to_string());
        }
        if let Some(bridged) = dial.bridged {
            push(
                &mut p,
                "DialBridged",
                if bridged { "true" } else { "false" },
            );
        }
        p
    }

    /// `POST /twilio/voice/dial`.
    pub async fn dial_result(
        &self,
        call_sid: &str,
        from: &str,
        to: &str,
        dial: DialResult<'_>,
    ) -> anyhow::Result<WebhookResponse> {
        let params = self.dial_result_params(call_sid, from, to, &dial);
        self.post_signed("/twilio/voice/dial", &params).await
    }

    /// A call status callback (`voice-status-completed.txt`): `Timestamp` (the clock, RFC
    /// 2822), `CallbackSource=call-progress-events`, `SequenceNumber`; terminal statuses
    /// (`completed`, `busy`, `no-answer`, `failed`, `canceled`) add `Duration` (billed
    /// minutes, rounded up) and `CallDuration` (`call_duration_secs`).
    pub fn call_status_params(
        &self,
        call_sid: &str,
        from: &str,
        to: &str,
        call_status: &str,
        sequence_number: u32,
        call_duration_secs: u32,
    ) -> Vec<Pair> {
        let mut p = self.voice_params(call_sid, from, to, call_status, "inbound");
        push(&mut p, "Timestamp", &shapes::rfc2822(self.clock.now()));
        push(&mut p, "CallbackSource", "call-progress-events");
        push(&mut p, "SequenceNumber", &sequence_number.to_string());
        if matches!(
            call_status,
            "completed" | "busy" | "no-answer" | "failed" | "canceled"
        ) {
            push(
                &mut p,
                "Duration",
                &call_duration_secs.div_ceil(60).to_string(),
            );
            push(&mut p, "CallDuration", &call_duration_secs.to_string());
        }
        p
    }

    /// `POST /twilio/voice/status`. A `completed` call lasted 31 s (as in the fixture); other
    /// terminal statuses 0 s. See [`Self::call_status_with_duration`] for another length.
    pub async fn call_status(
        &self,
        call_sid: &str,
        from: &str,
        to: &str,
        call_status: &str,
        sequence_number: u32,
    ) -> anyhow::Result<WebhookResponse> {
        let secs = if call_status == "completed" { 31 } else { 0 };
        self.call_status_with_duration(call_sid, from, to, call_status, sequence_number, secs)
            .await
    }

    /// `POST /twilio/voice/status` with an explicit `CallDuration`.
    pub async fn call_status_with_duration(
        &self,
        call_sid: &str,
        from: &str,
        to: &str,
        call_status: &str,
        sequence_number: u32,
        call_duration_secs: u32,
    ) -> anyhow::Result<WebhookResponse> {
        let params = self.call_status_params(
            call_sid,
            from,
            to,
            call_status,
            sequence_number,
            call_duration_secs,
        );
        self.post_signed("/twilio/voice/status", &params).await
    }

    /// The `<Number url>` request on an agent's leg once it answered (docs/twilio.md §1.3): a child
    /// leg, `Direction=outbound-dial`, `CallStatus=in-progress`, `ParentCallSid`; `From` is the
    /// caller ID the leg presents (`caller`), `To` the agent.
    pub fn screen_params(
        &self,
        child_call_sid: &str,
        parent_call_sid: &str,
        agent_phone: &str,
        caller: &str,
    ) -> Vec<Pair> {
        let mut p = self.voice_params(
            child_call_sid,
            caller,
            agent_phone,
            "in-progress",
            "outbound-dial",
        );
        push(&mut p, "ParentCallSid", parent_call_sid);
        p
    }

    /// `POST /twilio/voice/screen`.
    pub async fn screen(
        &self,
        child_call_sid: &str,
        parent_call_sid: &str,
        agent_phone: &str,
        caller: &str,
    ) -> anyhow::Result<WebhookResponse> {
        let params = self.screen_params(child_call_sid, parent_call_sid, agent_phone, caller);
        self.post_signed("/twilio/voice/screen", &params).await
    }

    /// The `<Gather action>` request of the screen: the screen's parameters plus `Digits`.
    pub fn screen_answer_params(
        &self,
        child_call_sid: &str,
        parent_call_sid: &str,
        agent_phone: &str,
        caller: &str,
        digits: &str,
    ) -> Vec<Pair> {
        let mut p = self.screen_params(child_call_sid, parent_call_sid, agent_phone, caller);
        push(&mut p, "Digits", digits);
        p
    }

    /// `POST /twilio/voice/screen/answer`.
    pub async fn screen_answer(
        &self,
        child_call_sid: &str,
        parent_call_sid: &str,
        agent_phone: &str,
        caller: &str,
        digits: &str,
    ) -> anyhow::Result<WebhookResponse> {
        let params =
            self.screen_answer_params(child_call_sid, parent_call_sid, agent_phone, caller, digits);
        self.post_signed("/twilio/voice/screen/answer", &params)
            .await
    }

    /// An incoming text (`sms-inbound-*.txt`, docs/twilio.md §3.5): `SmsStatus=received`,
    /// `NumSegments` computed from the body, `MessagingServiceSid` when the player has one,
    /// `MediaUrl{N}`/`MediaContentType{N}` for each of `num_media`, `OptOutType` when given.
    pub fn inbound_sms_params(
        &self,
        message_sid: &str,
        from: &str,
        to: &str,
        body: &str,
        num_media: u32,
        opt_out_type: Option<&str>,
    ) -> Vec<Pair> {
        let (from_city, from_state, from_zip, from_country) = geo(from);
        let (to_city, to_state, to_zip, to_country) = geo(to);
        let segments = shapes::num_segments(body).to_string();
        let media = num_media.to_string();
        let mut p = pairs(&[
            ("ToCountry", to_country),
            ("ToState", to_state),
            ("SmsMessageSid", message_sid),
            ("NumMedia", &media),
            ("ToCity", to_city),
            ("FromZip", from_zip),
            ("SmsSid", message_sid),
            ("FromState", from_state),
            ("SmsStatus", "received"),
            ("FromCity", from_city),
            ("Body", body),
            ("FromCountry", from_country),
            ("To", to),
        ]);
        if let Some(service) = &self.messaging_service_sid {
            push(&mut p, "MessagingServiceSid", service);
        }
        push(&mut p, "ToZip", to_zip);
        push(&mut p, "NumSegments", &segments);
        push(&mut p, "MessageSid", message_sid);
        push(&mut p, "AccountSid", &self.account_sid);
        push(&mut p, "From", from);
        push(&mut p, "ApiVersion", API_VERSION);
        for i in 0..num_media {
            let media_sid = format!("ME{:032x}", rand::random::<u128>());
            let url = format!(
                "https://api.twilio.com/{API_VERSION}/Accounts/{}/Messages/{message_sid}/Media/{media_sid}",
                self.account_sid
            );
            push(&mut p, &format!("MediaContentType{i}"), "image/jpeg");
            push(&mut p, &format!("MediaUrl{i}"), &url);
        }
        if let Some(kind) = opt_out_type {
            push(&mut p, "OptOutType", kind);
        }
        p
    }

    /// `POST /twilio/sms`.
    pub async fn inbound_sms(
        &self,
        message_sid: &str,
        from: &str,
        to: &str,
        body: &str,
        num_media: u32,
        opt_out_type: Option<&str>,
    ) -> anyhow::Result<WebhookResponse> {
        let params = self.inbound_sms_params(message_sid, from, to, body, num_media, opt_out_type);
        self.post_signed("/twilio/sms", &params).await
    }

    /// `POST /twilio/sms` of a text with media at these addresses (`(MediaUrl, MediaContentType)`,
    /// e.g. from [`crate::FakeTwilio::add_media`]).
    pub async fn inbound_mms(
        &self,
        message_sid: &str,
        from: &str,
        to: &str,
        body: &str,
        media: &[(String, String)],
    ) -> anyhow::Result<WebhookResponse> {
        let mut params = self.inbound_sms_params(message_sid, from, to, body, 0, None);
        for (k, v) in params.iter_mut() {
            if k == "NumMedia" {
                *v = media.len().to_string();
            }
        }
        for (i, (url, content_type)) in media.iter().enumerate() {
            push(&mut params, &format!("MediaContentType{i}"), content_type);
            push(&mut params, &format!("MediaUrl{i}"), url);
        }
        self.post_signed("/twilio/sms", &params).await
    }

    /// A message status callback (`sms-status-*.txt`), the same parameters the fake's own
    /// status callbacks carry (`MessagingServiceSid` is left out: the fixtures' outbound
    /// texts are plain `From` sends).
    pub fn message_status_params(
        &self,
        message_sid: &str,
        from: &str,
        to: &str,
        status: &str,
        error_code: Option<&str>,
    ) -> Vec<Pair> {
        callbacks::status_params(
            &self.account_sid,
            message_sid,
            Some(from),
            to,
            None,
            status,
            error_code,
            self.clock.now(),
        )
    }

    /// `POST /twilio/sms/status`.
    pub async fn message_status(
        &self,
        message_sid: &str,
        from: &str,
        to: &str,
        status: &str,
        error_code: Option<&str>,
    ) -> anyhow::Result<WebhookResponse> {
        let params = self.message_status_params(message_sid, from, to, status, error_code);
        self.post_signed("/twilio/sms/status", &params).await
    }
}

async fn read(response: reqwest::Response) -> anyhow::Result<WebhookResponse> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await?;
    Ok(WebhookResponse {
        status,
        headers,
        body,
    })
}

fn pairs(list: &[(&str, &str)]) -> Vec<Pair> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn push(p: &mut Vec<Pair>, k: &str, v: &str) {
    p.push((k.to_owned(), v.to_owned()));
}

/// City, state, zip and country Twilio would derive for a number: a tiny table good enough
/// for the fixtures (617 is Boston); other +1 numbers get only the country, as the
/// fixtures' brokerage number does; anything else is empty.
fn geo(number: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    if number.starts_with("+1617") {
        ("BOSTON", "MA", "02108", "US")
    } else if number.starts_with("+1") {
        ("", "", "", "US")
    } else {
        ("", "", "", "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use textback_core::clock::ManualClock;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";
    const ACCOUNT: &str = "AC4a9f9b8b5c52fcd667586e852d52ac05";

    fn player(now: &str) -> Player {
        let now = DateTime::parse_from_rfc3339(now)
            .expect("valid")
            .with_timezone(&Utc);
        Player::new(
            "http://127.0.0.1:3000/",
            ACCOUNT,
            TOKEN,
            ManualClock::new(now),
        )
    }

    /// With the fixtures' values, the player's bodies are the fixtures byte for byte, so they
    /// also carry the signatures listed in the fixtures' README.
    #[test]
    fn bodies_are_the_fixtures() {
        let p = player("2026-11-22T18:04:37Z");
        let lead = "+16175550123";
        let number = "+15555550100";
        let cases: Vec<(Vec<Pair>, &str, &str, &str)> = vec![
            (
                p.incoming_call_params("CA7b810266248bdfda6ab66f956c264d20", lead, number),
                include_str!("../../../fixtures/twilio/voice-incoming.txt"),
                "/twilio/voice",
                "5pObUag17NPUNL8/W/nXlPHrY0I=",
            ),
            (
                p.dial_result_params(
                    "CA7b810266248bdfda6ab66f956c264d20",
                    lead,
                    number,
                    &DialResult {
                        dial_call_status: "no-answer",
                        bridged: Some(false),
                        parent_call_status: "in-progress",
                        dial_call_sid: Some("CA4a441250a50f9464fbf806a9aed16410".into()),
                        dial_call_duration: None,
                    },
                ),
                include_str!("../../../fixtures/twilio/voice-dial-action-no-answer.txt"),
                "/twilio/voice/dial",
                "ZQ70QZBzi8PZciqrDr3WQw3jvX4=",
            ),
            (
                p.dial_result_params(
                    "CAe778982f2d27284bf4b6c16266104eba",
                    lead,
                    number,
                    &DialResult {
                        dial_call_status: "completed",
                        bridged: Some(true),
                        parent_call_status: "completed",
                        dial_call_sid: Some("CA2dd2561292bba9bd869216daf0be0323".into()),
                        dial_call_duration: Some(64),
                    },
                ),
                include_str!("../../../fixtures/twilio/voice-dial-action-completed.txt"),
                "/twilio/voice/dial",
                "46/e+F6YymYrzIK5CTfyh2Whli4=",
            ),
            (
                p.call_status_params(
                    "CA7b810266248bdfda6ab66f956c264d20",
                    lead,
                    number,
                    "completed",
                    0,
                    31,
                ),
                include_str!("../../../fixtures/twilio/voice-status-completed.txt"),
                "/twilio/voice/status",
                "v7xQWl35TyFcznHB+/o7AwMt1vY=",
            ),
            (
                p.inbound_sms_params(
                    "SMde6ce066e1d9e6b83094b4fac48e77a8",
                    lead,
                    number,
                    "STOP",
                    0,
                    Some("STOP"),
                ),
                include_str!("../../../fixtures/twilio/sms-inbound-stop.txt"),
                "/twilio/sms",
                "/uuA/3urD85N3D5qNogI+NUw9rM=",
            ),
            (
                p.inbound_sms_params(
                    "SMfbe28c1338c05f58fa3d16e84d711cf6",
                    lead,
                    number,
                    "Yes! Is the 3 bed on Main St still available? Could I see it Saturday around 11?",
                    0,
                    None,
                ),
                include_str!("../../../fixtures/twilio/sms-inbound-reply.txt"),
                "/twilio/sms",
                "LlD2uM3KcxWWFN+ntTiwzdse7F4=",
            ),
        ];
        for (params, fixture, path, sig) in cases {
            assert_eq!(form::encode(&params), fixture, "{path}");
            assert_eq!(p.sign(path, &params), sig, "{path}");
        }
    }

    #[test]
    fn sids_look_like_twilios() {
        for sid in [new_call_sid(), new_message_sid()] {
            assert_eq!(sid.len(), 34);
            assert!(
                sid[2..]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
        }
        assert!(new_call_sid().starts_with("CA"));
        assert!(new_message_sid().starts_with("SM"));
    }
}
