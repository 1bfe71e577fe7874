//! `textback twilio connect` and `textback doctor` (README.md "Running it for real"): point a
//! brokerage's numbers at this server through Twilio's `IncomingPhoneNumbers` API, and check a
//! deployment end to end in plain words.

use std::fmt::Write as _;

use crate::context::AppState;
use crate::store::{self, BrokerageId};
use crate::twilio::client::{IncomingNumber, ReadError};
use crate::twilio::credentials::Credentials;
use crate::twilio::signature;

/// One setting of a number that textback needs, as the API names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The API parameter (`VoiceUrl`).
    pub param: &'static str,
    /// What the number has now ("" when empty).
    pub from: String,
    /// What textback needs.
    pub to: String,
}

/// The settings a number needs for this server at `public` (its `TEXTBACK_PUBLIC_URL`):
/// calls and call statuses, texts, by POST; an application SID would win over the URLs, so it
/// is cleared. What differs from `n`, in the API's order. Pure.
pub fn changes(n: &IncomingNumber, public: &crate::config::PublicUrl) -> Vec<Change> {
    let wanted: [(&'static str, Option<&str>, String); 8] = [
        (
            "VoiceUrl",
            n.voice_url.as_deref(),
            public.join("/twilio/voice"),
        ),
        ("VoiceMethod", n.voice_method.as_deref(), "POST".to_owned()),
        (
            "StatusCallback",
            n.status_callback.as_deref(),
            public.join("/twilio/voice/status"),
        ),
        (
            "StatusCallbackMethod",
            n.status_callback_method.as_deref(),
            "POST".to_owned(),
        ),
        ("SmsUrl", n.sms_url.as_deref(), public.join("/twilio/sms")),
        ("SmsMethod", n.sms_method.as_deref(), "POST".to_owned()),
        (
            "VoiceApplicationSid",
            n.voice_application_sid.as_deref(),
            String::new(),
        ),
        (
            "SmsApplicationSid",
            n.sms_application_sid.as_deref(),
            String::new(),
        ),
    ];
    wanted
        .into_iter()
        .filter_map(|(param, now, to)| {
            let from = now.unwrap_or("").to_owned();
            // Methods compare without case (Twilio answers `POST`, `post` would do too).
            let same = if param.ends_with("Method") {
                from.eq_ignore_ascii_case(&to)
            } else {
                from == to
            };
            (!same).then_some(Change { param, from, to })
        })
        .collect()
}

/// What `twilio connect` found for one of the brokerage's numbers.
#[derive(Debug, Clone)]
pub enum NumberPlan {
    /// The account has it; these settings differ (none: it points at textback already).
    Found {
        e164: String,
        sid: String,
        changes: Vec<Change>,
        trunk: Option<String>,
    },
    /// Not among the account's numbers.
    Missing { e164: String, account: String },
    /// The carrier could not be asked.
    Error { e164: String, why: String },
}

/// The brokerage's active numbers, each as the carrier has it and what would change.
pub async fn plan(
    state: &AppState,
    brokerage: BrokerageId,
) -> anyhow::Result<(Credentials, Vec<NumberPlan>)> {
    let creds = state
        .credentials(brokerage)
        .await?
        .map_err(|why| anyhow::anyhow!("the brokerage's Twilio account cannot be used: {why}"))?;
    let mut conn = state.pool.acquire().await?;
    let numbers = store::numbers::active_e164s(&mut conn, brokerage).await?;
    drop(conn);
    let mut out = Vec::new();
    for e164 in numbers {
        let plan = match state.twilio.incoming_numbers(&creds, &e164).await {
            Ok(found) => match found.into_iter().find(|n| n.phone_number == e164) {
                Some(n) => NumberPlan::Found {
                    changes: changes(&n, &state.config.public_url),
                    sid: n.sid,
                    trunk: n.trunk_sid.filter(|t| !t.is_empty()),
                    e164,
                },
                None => NumberPlan::Missing {
                    e164,
                    account: creds.account_sid.clone(),
                },
            },
            Err(e) => NumberPlan::Error {
                e164,
                why: read_error(&e),
            },
        };
        out.push(plan);
    }
    Ok((creds, out))
}

/// Applies a plan's changes; returns, per number, `None` when done or why not.
pub async fn apply(
    state: &AppState,
    creds: &Credentials,
    plans: &[NumberPlan],
) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for p in plans {
        if let NumberPlan::Found {
            e164, sid, changes, ..
        } = p
            && !changes.is_empty()
        {
            let form: Vec<(&str, &str)> =
                changes.iter().map(|c| (c.param, c.to.as_str())).collect();
            let result = match state.twilio.update_incoming_number(creds, sid, &form).await {
                Ok(now) if crate::connect::changes(&now, &state.config.public_url).is_empty() => {
                    None
                }
                Ok(_) => Some("the carrier did not keep every setting".to_owned()),
                Err(e) => Some(read_error(&e)),
            };
            out.push((e164.clone(), result));
        }
    }
    out
}

fn read_error(e: &ReadError) -> String {
    match e {
        ReadError::Status { status: 401 | 403 } => {
            "the carrier refused the credentials (check the account SID and auth token)".to_owned()
        }
        other => other.to_string(),
    }
}

/// One line of `doctor`'s report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Ok(String),
    Fail(String),
    Note(String),
}

impl Check {
    pub fn failed(&self) -> bool {
        matches!(self, Check::Fail(_))
    }

    pub fn line(&self) -> String {
        match self {
            Check::Ok(s) => format!("ok    {s}"),
            Check::Fail(s) => format!("FAIL  {s}"),
            Check::Note(s) => format!("note  {s}"),
        }
    }
}

/// The public address reaches this deployment and signatures check out there: a request
/// signed with `creds` to `/twilio/ping` through `TEXTBACK_PUBLIC_URL`.
pub async fn check_public_url(state: &AppState, creds: &Credentials) -> Check {
    let url = state.config.public_url.join("/twilio/ping");
    let params = vec![
        ("AccountSid".to_owned(), creds.account_sid.clone()),
        ("Ping".to_owned(), "doctor".to_owned()),
    ];
    let sig = {
        use secrecy::ExposeSecret as _;
        signature::compute(creds.auth_token.expose_secret().as_bytes(), &url, &params)
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let Ok(http) = http else {
        return Check::Fail("cannot make an HTTP client".into());
    };
    let answer = http
        .post(&url)
        .header("x-twilio-signature", sig)
        .form(&params)
        .send()
        .await;
    match answer {
        Ok(r) if r.status().as_u16() == 200 => Check::Ok(format!(
            "{url} reaches textback and a signed request checks out there"
        )),
        Ok(r) if r.status().as_u16() == 403 => Check::Fail(format!(
            "{url} reaches textback, but the signature does not check out: Twilio signs the exact address it calls, so TEXTBACK_PUBLIC_URL must be that address (a proxy that changes the scheme, host, port or path breaks every webhook)"
        )),
        Ok(r) => Check::Fail(format!(
            "{url} answered {} : it does not reach this textback (another server, or an older version?)",
            r.status().as_u16()
        )),
        Err(e) => Check::Fail(format!(
            "{url} cannot be reached from here ({e}); Twilio must reach it from the internet"
        )),
    }
}

/// The report of `doctor` for one brokerage: its account, and each number's settings.
pub async fn check_brokerage(state: &AppState, brokerage: BrokerageId, slug: &str) -> Vec<Check> {
    let mut out = Vec::new();
    let creds = match state.credentials(brokerage).await {
        Ok(Ok(c)) => c,
        Ok(Err(why)) => {
            out.push(Check::Fail(format!(
                "{slug}: no usable Twilio account: {why}"
            )));
            return out;
        }
        Err(e) => {
            out.push(Check::Fail(format!(
                "{slug}: the database could not be read: {e}"
            )));
            return out;
        }
    };
    match state.twilio.fetch_account(&creds).await {
        Ok(a) if a.status.as_deref().is_none_or(|s| s == "active") => out.push(Check::Ok(format!(
            "{slug}: the credentials of account {} work",
            a.sid
        ))),
        Ok(a) => out.push(Check::Fail(format!(
            "{slug}: account {} is {} at Twilio",
            a.sid,
            a.status.unwrap_or_default()
        ))),
        Err(e) => {
            out.push(Check::Fail(format!(
                "{slug}: account {}: {}",
                creds.account_sid,
                read_error(&e)
            )));
            return out;
        }
    }
    match plan(state, brokerage).await {
        Ok((_, plans)) => {
            for p in plans {
                out.push(match p {
                    NumberPlan::Found {
                        e164,
                        changes,
                        trunk: Some(t),
                        ..
                    } if changes.is_empty() => Check::Fail(format!(
                        "{slug}: {e164} points at textback, but its calls go to SIP trunk {t}"
                    )),
                    NumberPlan::Found { e164, changes, .. } if changes.is_empty() => {
                        Check::Ok(format!("{slug}: {e164} points at this server"))
                    }
                    NumberPlan::Found { e164, changes, .. } => {
                        let mut s = format!("{slug}: {e164} does not point at this server:");
                        for c in &changes {
                            let from = if c.from.is_empty() {
                                "(empty)"
                            } else {
                                &c.from
                            };
                            let to = if c.to.is_empty() { "(empty)" } else { &c.to };
                            let _ = write!(s, " {} is {from}, needs {to};", c.param);
                        }
                        s.push_str(&format!(
                            " run `textback twilio connect --brokerage {slug} --apply`"
                        ));
                        Check::Fail(s)
                    }
                    NumberPlan::Missing { e164, account } => Check::Fail(format!(
                        "{slug}: {e164} is not a number of account {account}"
                    )),
                    NumberPlan::Error { e164, why } => {
                        Check::Fail(format!("{slug}: {e164}: {why}"))
                    }
                });
            }
        }
        Err(e) => out.push(Check::Fail(format!("{slug}: {e}"))),
    }
    out.extend(check_messaging(state, &creds, brokerage, slug).await);
    out.extend(check_connections(state, brokerage, slug).await);
    out
}

/// The brokerage's webhooks and Follow Up Boss (docs/webhooks.md): each secret can be read
/// (and a webhook's is a `whsec_` secret), and none is paused or failing.
async fn check_connections(state: &AppState, brokerage: BrokerageId, slug: &str) -> Vec<Check> {
    use crate::twilio::credentials::read_secret;
    let mut out = Vec::new();
    let subs = match state.pool.acquire().await {
        Ok(mut conn) => crate::store::webhooks::subscriptions(&mut conn, brokerage).await,
        Err(e) => Err(e.into()),
    };
    let subs = match subs {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::Fail(format!(
                "{slug}: the subscriptions could not be read: {e}"
            )));
            return out;
        }
    };
    let env = &state.config.twilio.env;
    for s in subs {
        let what = if s.kind == "follow_up_boss" {
            "Follow Up Boss".to_owned()
        } else {
            format!("webhook {}", s.name)
        };
        let secret = s.secret_source().map(|src| read_secret(&src, env));
        match (s.kind.as_str(), secret) {
            (_, None) => out.push(Check::Fail(format!("{slug}: {what}: no secret is named"))),
            (_, Some(Err(why))) => out.push(Check::Fail(format!("{slug}: {what}: {why}"))),
            ("webhook", Some(Ok(raw))) => {
                use secrecy::ExposeSecret as _;
                if let Err(why) = crate::domain::webhooks::Secret::parse(raw.expose_secret()) {
                    out.push(Check::Fail(format!(
                        "{slug}: {what}: the signing secret {why}"
                    )));
                    continue;
                }
            }
            _ => {}
        }
        if let Some(Err(why)) = s.system_key_source().map(|k| read_secret(&k, env)) {
            out.push(Check::Fail(format!("{slug}: {what}: system key: {why}")));
        }
        out.push(match (s.state.as_str(), s.failing_since) {
            ("paused", _) => Check::Fail(format!(
                "{slug}: {what} is paused after a day of failures ({} events held): fix the receiver, then resume it on /connections",
                s.held
            )),
            (_, Some(since)) => Check::Fail(format!(
                "{slug}: {what} has been failing since {since}: see /connections for the receiver's answers"
            )),
            _ => Check::Ok(format!("{slug}: {what} at {} is set up", s.url)),
        });
    }
    out
}

/// The brokerage's numbers in Messaging Services: a service that does not defer to the
/// number's own SMS URL sends the replies and STOPs elsewhere unless its inbound URL is
/// textback's; and each such service's A2P 10DLC campaign (US carriers block texts from a local
/// number without a verified one).
async fn check_messaging(
    state: &AppState,
    creds: &Credentials,
    brokerage: BrokerageId,
    slug: &str,
) -> Vec<Check> {
    let mut out = Vec::new();
    let numbers = match state.pool.acquire().await {
        Ok(mut conn) => store::numbers::active_e164s(&mut conn, brokerage).await,
        Err(e) => Err(e.into()),
    };
    let numbers = match numbers {
        Ok(n) => n,
        Err(e) => {
            out.push(Check::Fail(format!(
                "{slug}: the numbers could not be read from the database: {e}"
            )));
            return out;
        }
    };
    let services = match state.twilio.messaging_services(creds).await {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::Fail(format!(
                "{slug}: the Messaging Services could not be read: {}",
                read_error(&e)
            )));
            return out;
        }
    };
    let sms_url = state.config.public_url.join("/twilio/sms");
    let mut campaigns_checked = std::collections::HashSet::new();
    for e164 in &numbers {
        let Some((service, _)) = services.iter().find(|(_, ns)| ns.contains(e164)) else {
            out.push(Check::Note(format!(
                "{slug}: {e164} is in no Messaging Service: its texts come to its own SMS URL; a local number still needs an A2P 10DLC campaign to text US phones"
            )));
            continue;
        };
        let name = service
            .friendly_name
            .clone()
            .unwrap_or_else(|| service.sid.clone());
        let defers = service.use_inbound_webhook_on_number == Some(true);
        let inbound = service.inbound_request_url.clone().unwrap_or_default();
        if defers || inbound == sms_url {
            out.push(Check::Ok(format!(
                "{slug}: {e164} is in Messaging Service {name}, whose inbound texts reach textback"
            )));
        } else {
            let now = if inbound.is_empty() {
                "(empty)"
            } else {
                &inbound
            };
            out.push(Check::Fail(format!(
                "{slug}: {e164} is in Messaging Service {name}, which sends its inbound texts to {now}, not textback: replies and STOPs never arrive. In the service's Integration settings choose \"Defer to sender's webhook\" or \"Send a webhook\" to {sms_url}"
            )));
        }
        if !campaigns_checked.insert(service.sid.clone()) {
            continue;
        }
        match state.twilio.a2p_campaigns(creds, &service.sid).await {
            Ok(campaigns) => {
                let statuses: Vec<String> = campaigns
                    .iter()
                    .filter_map(|c| c.campaign_status.clone())
                    .collect();
                out.push(if statuses.iter().any(|s| s == "VERIFIED") {
                    Check::Ok(format!(
                        "{slug}: Messaging Service {name} has a verified A2P 10DLC campaign"
                    ))
                } else if statuses.is_empty() {
                    Check::Fail(format!(
                        "{slug}: Messaging Service {name} has no A2P 10DLC campaign: US carriers block its local numbers' texts (30034) until one is verified"
                    ))
                } else if statuses
                    .iter()
                    .any(|s| matches!(s.as_str(), "FAILED" | "SUSPENDED" | "EXPIRED"))
                {
                    Check::Fail(format!(
                        "{slug}: Messaging Service {name}'s A2P 10DLC campaign is {}: its texts are blocked; see the campaign's errors in Twilio's console",
                        statuses.join(", ")
                    ))
                } else {
                    Check::Note(format!(
                        "{slug}: Messaging Service {name}'s A2P 10DLC campaign is {}: texts are blocked until it is verified",
                        statuses.join(", ")
                    ))
                });
            }
            Err(e) => out.push(Check::Fail(format!(
                "{slug}: the A2P 10DLC campaign of {name} could not be read: {}",
                read_error(&e)
            ))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public() -> crate::config::PublicUrl {
        crate::config::PublicUrl::parse("https://textback.example.com").expect("url")
    }

    fn number() -> IncomingNumber {
        IncomingNumber {
            sid: "PN1".into(),
            phone_number: "+15555550100".into(),
            voice_url: Some("https://textback.example.com/twilio/voice".into()),
            voice_method: Some("POST".into()),
            sms_url: Some("https://textback.example.com/twilio/sms".into()),
            sms_method: Some("post".into()),
            status_callback: Some("https://textback.example.com/twilio/voice/status".into()),
            status_callback_method: Some("POST".into()),
            voice_application_sid: Some(String::new()),
            sms_application_sid: None,
            trunk_sid: None,
        }
    }

    #[test]
    fn a_number_pointed_at_textback_needs_nothing() {
        assert_eq!(changes(&number(), &public()), vec![]);
    }

    #[test]
    fn each_setting_that_differs_is_one_change_and_an_application_is_cleared() {
        let mut n = number();
        n.voice_url = None;
        n.sms_url = Some("https://demo.twilio.com/welcome/sms/reply".into());
        n.voice_method = Some("GET".into());
        n.voice_application_sid = Some("AP123".into());
        let got = changes(&n, &public());
        let params: Vec<&str> = got.iter().map(|c| c.param).collect();
        assert_eq!(
            params,
            ["VoiceUrl", "VoiceMethod", "SmsUrl", "VoiceApplicationSid"]
        );
        assert_eq!(got[0].from, "");
        assert_eq!(got[0].to, "https://textback.example.com/twilio/voice");
        assert_eq!(got[3].to, "");
        // A public URL with a path prefix keeps it.
        let prefixed = crate::config::PublicUrl::parse("https://x.example/tb").expect("url");
        let got = changes(&number(), &prefixed);
        assert_eq!(got[0].to, "https://x.example/tb/twilio/voice");
    }
}
