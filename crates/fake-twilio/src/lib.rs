//! A fake Twilio carrier for the integration tests and `textback demo` (docs/twilio.md §9,
//! docs/reliability.md §6).
//!
//! [`FakeTwilio::start`] binds `127.0.0.1:0` and serves, on one port, the REST paths textback
//! calls (`Messages.json` create/list/fetch, `Calls.json` create) and Lookup v2
//! (`/v2/PhoneNumbers/{number}`), with Twilio's JSON shapes exactly as in `fixtures/twilio/`.
//! It records every request ([`FakeTwilio::requests`]), keeps the messages and calls it
//! accepted, sends signed status callbacks per a [`CallbackPlan`], and misbehaves on demand
//! ([`Fault`], [`Scope`], [`FakeTwilio::go_down`]). A [`Player`] plays Twilio's side of the
//! webhooks (incoming calls, dial results, inbound texts, …) against our server.
//!
//! The fake runs its own accept loop (hyper's HTTP/1 connection server over an axum router)
//! rather than `axum::serve`, for two faults that need control of the sockets: a reset closes
//! one connection without a response, and `go_down` drops the listener *and* every open
//! connection so that clients see "connection refused".
//!
//! Module map: `rest` (request handling), `shapes` (JSON bodies), `faults`, `callbacks`
//! (status callbacks), `player` (webhooks toward our server).

mod callbacks;
mod calls;
mod faults;
mod player;
mod rest;
mod shapes;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt as _;

pub use callbacks::{CallbackAttempt, CallbackPlan};
pub use calls::{AgentAction, CallPlan, CallStep, FakeRecording, LeadAction, silent_mp3};
pub use faults::{Fault, Scope};
pub use player::{DialResult, Player, Signer, WebhookResponse, new_call_sid, new_message_sid};

/// What a trial account puts before every body it sends (docs/twilio.md §3.2): the message the
/// carrier keeps, lists and reports then differs from the body we asked it to send.
pub const TRIAL_PREFIX: &str = "Sent from your Twilio trial account - ";

/// The body the carrier keeps for a message it accepts. Real Twilio does not always keep the
/// body it was given: a trial account prefixes it, Message Redaction empties it, a Messaging
/// Service may rewrite it. Reconciliation must not mistake such a message for an absent one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeptBody {
    /// The body as sent.
    #[default]
    AsSent,
    /// The body with this text before it (see [`TRIAL_PREFIX`]).
    Prefixed(String),
    /// An empty body, as Twilio's Message Redaction keeps it.
    Redacted,
}

impl KeptBody {
    fn apply(&self, body: &str) -> String {
        match self {
            KeptBody::AsSent => body.to_owned(),
            KeptBody::Prefixed(prefix) => format!("{prefix}{body}"),
            KeptBody::Redacted => String::new(),
        }
    }
}

use textback_core::clock::SharedClock;

/// How to start a [`FakeTwilio`]: the credentials it accepts (HTTP Basic
/// `account_sid:auth_token`, and the account in the path) and signs its callbacks with, and
/// the clock its dates come from.
#[derive(Clone)]
pub struct FakeTwilioConfig {
    pub account_sid: String,
    pub auth_token: String,
    pub clock: SharedClock,
}

impl FakeTwilioConfig {
    /// The account and auth token of `fixtures/twilio/` (`AC4a9f…`, `0123456789abcdef…`), so
    /// fixture signatures and the fake's agree.
    pub fn with_fixture_credentials(clock: SharedClock) -> Self {
        FakeTwilioConfig {
            account_sid: "AC4a9f9b8b5c52fcd667586e852d52ac05".to_owned(),
            auth_token: "0123456789abcdef0123456789abcdef".to_owned(),
            clock,
        }
    }
}

/// One request the fake received, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The fake's clock when the request arrived.
    pub at: DateTime<Utc>,
    pub method: String,
    /// The path as received (still percent-encoded).
    pub path: String,
    /// The raw query string, `""` when there is none.
    pub query: String,
    /// The decoded form body (empty for GET, or when the body did not decode).
    pub params: Vec<(String, String)>,
    /// The HTTP status answered; `None` while the answer is pending (a delay or hold) and
    /// for a reset, which answers nothing.
    pub status: Option<u16>,
    /// What the fake did, in words: `"201 created SM…"`, `"held"`, `"reset (recorded SM…)"`,
    /// `"401 code 20003"`, …
    pub outcome: String,
}

/// A message the carrier "has": created and recorded (a plain 201, or a fault with
/// `recorded: true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeMessage {
    /// `SM` + 32 lowercase hex digits.
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    /// `None` when only a `MessagingServiceSid` was given.
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub body: String,
    /// `queued` (or `accepted` with a Messaging Service), then as the callback plan moves it:
    /// `sent`, `delivered` / `undelivered`. Only ever moves forward (docs/twilio.md §3.3 rank).
    pub status: String,
    pub status_callback: Option<String>,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
    /// Null until the message reaches `sent`.
    pub date_sent: Option<DateTime<Utc>>,
    pub num_segments: u32,
    pub num_media: u32,
    /// Set by an `undelivered`/`failed` step that carries one (e.g. 30006).
    pub error_code: Option<u32>,
    /// The `MediaUrl`s of the create, in order.
    pub media_urls: Vec<String>,
}

/// A call created through `POST …/Calls.json`. Without a [`CallPlan`] for its `To` the call
/// goes nowhere; with one, the fake plays both legs (`calls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCall {
    /// `CA` + 32 lowercase hex digits.
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    pub from: String,
    pub url: Option<String>,
    pub twiml: Option<String>,
    pub status_callback: Option<String>,
    /// Every `StatusCallbackEvent` value, in order (the parameter is repeated, docs/twilio.md §5).
    pub status_callback_events: Vec<String>,
    /// The `Timeout` parameter as given.
    pub timeout: Option<String>,
    pub status: String,
    pub phone_number_sid: String,
    pub date_created: DateTime<Utc>,
    /// Seconds, once the call ended.
    pub duration: Option<u32>,
}

/// The running fake. Cheap to clone; the server stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeTwilio {
    inner: Arc<Handle>,
}

/// Owns the server task; dropping it (with the last [`FakeTwilio`]) stops the server.
struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: tokio::sync::Mutex<Option<Server>>,
}

struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(server) = self.server.get_mut().take() {
            // Aborting drops the listener and the connection set, which aborts every
            // connection task.
            server.task.abort();
        }
    }
}

/// State shared by the request handlers, the callback tasks and the handle.
pub(crate) struct Shared {
    pub account_sid: String,
    pub auth_token: String,
    pub clock: SharedClock,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Client for status callbacks.
    pub http: reqwest::Client,
    state: Mutex<State>,
    /// Status-callback tasks not yet awaited by [`FakeTwilio::settle`].
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Outbound media fetched (message SID, what came back).
    pub fetched: Mutex<Vec<(String, FetchedMedia)>>,
}

#[derive(Default)]
pub(crate) struct State {
    pub requests: Vec<RecordedRequest>,
    pub messages: Vec<StoredMessage>,
    pub calls: Vec<FakeCall>,
    pub line_types: HashMap<String, String>,
    pub invalid: HashSet<String>,
    /// CNAM per number: (`caller_name`, `caller_type`).
    pub caller_names: HashMap<String, (String, String)>,
    pub faults: faults::Faults,
    /// One sender per create held by [`Fault::Hold`].
    pub held: Vec<oneshot::Sender<()>>,
    pub plan: CallbackPlan,
    /// Every account the fake knows (the primary one and subaccounts), by SID: its auth
    /// token and how its webhooks are signed.
    pub accounts: HashMap<String, FakeAccount>,
    /// The body kept for messages created from now on.
    pub kept_body: KeptBody,
    /// How long (by the fake's clock) after its creation a message starts to show in
    /// listings: Twilio's list can lag the create by seconds.
    pub list_lag: chrono::Duration,
    pub callbacks: Vec<CallbackAttempt>,
    /// How created calls are played: per number called, else the default; none: not played.
    pub call_plans: HashMap<String, CallPlan>,
    pub default_call_plan: Option<CallPlan>,
    /// Faults for `POST …/Calls.json` (apart from the messages' faults).
    pub call_faults: faults::Faults,
    pub call_log: Vec<CallStep>,
    /// (agent leg's CallSid, the number its `<Dial>` rang).
    pub dialed: Vec<(String, String)>,
    pub recordings: Vec<FakeRecording>,
    /// The accounts' phone numbers (`IncomingPhoneNumbers`): where their webhooks go.
    pub numbers: Vec<FakeNumber>,
    /// Messaging Services (the Messaging API), with their numbers and A2P campaign.
    pub services: Vec<FakeService>,
    /// Inbound media Twilio holds (`…/Messages/{MM}/Media/{ME}`), served from its content store.
    pub media: Vec<FakeMedia>,
}

/// An inbound text's media item, as Twilio keeps it: fetched with the account's credentials at
/// `…/Messages/{message_sid}/Media/{sid}`, which redirects to its content store (`/cdn/{sid}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeMedia {
    pub account_sid: String,
    pub message_sid: String,
    pub sid: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What the fake fetched of an outbound message's `MediaUrl`, as Twilio does when it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMedia {
    pub url: String,
    /// The HTTP status, or `None` when nothing answered.
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// A Messaging Service: its inbound setting, its numbers, its A2P 10DLC campaign's status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeService {
    pub sid: String,
    pub friendly_name: String,
    pub inbound_request_url: Option<String>,
    pub use_inbound_webhook_on_number: bool,
    pub numbers: Vec<String>,
    /// `None`: no campaign registered.
    pub campaign_status: Option<String>,
}

/// A number of an account, with the settings `IncomingPhoneNumbers` shows and updates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeNumber {
    pub account_sid: String,
    pub sid: String,
    pub phone_number: String,
    pub voice_url: Option<String>,
    pub voice_method: String,
    pub sms_url: Option<String>,
    pub sms_method: String,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    pub voice_application_sid: Option<String>,
    pub sms_application_sid: Option<String>,
}

/// One account of the fake: what authenticates its REST calls and signs its webhooks.
#[derive(Clone)]
pub(crate) struct FakeAccount {
    pub auth_token: String,
    pub signer: Signer,
}

/// A message plus the `sid` its [`Fault::ListDup`] twin shows under, fixed at creation so
/// that paging through a duplicated listing is stable.
pub(crate) struct StoredMessage {
    pub msg: FakeMessage,
    pub dup_sid: String,
    /// Listings show the message from this instant on ([`FakeTwilio::set_list_lag`]).
    pub listed_from: DateTime<Utc>,
}

impl State {
    /// The Lookup line type of a number; `mobile` unless told otherwise.
    pub fn line_type(&self, e164: &str) -> &str {
        self.line_types
            .get(e164)
            .map(String::as_str)
            .unwrap_or("mobile")
    }
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock; if one did, the state is still usable
        // for a test double, and the panic itself is what the test reports.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn tasks(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FakeTwilio {
    /// Binds `127.0.0.1:0` and spawns the accept loop. Must be called inside a tokio runtime.
    pub async fn start(cfg: FakeTwilioConfig) -> io::Result<FakeTwilio> {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            // Twilio waits 15 s for a webhook answer, 10 s of it for the connection (§1.8).
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(io::Error::other)?;
        let mut state = State::default();
        state.accounts.insert(
            cfg.account_sid.clone(),
            FakeAccount {
                auth_token: cfg.auth_token.clone(),
                signer: Signer::auth_token(&cfg.auth_token),
            },
        );
        let shared = Arc::new(Shared {
            account_sid: cfg.account_sid,
            auth_token: cfg.auth_token,
            clock: cfg.clock,
            base_url: format!("http://{addr}"),
            http,
            state: Mutex::new(state),
            tasks: Mutex::new(Vec::new()),
            fetched: Mutex::new(Vec::new()),
        });
        let server = spawn_server(listener, shared.clone());
        tracing::info!(%addr, "fake twilio listening");
        Ok(FakeTwilio {
            inner: Arc::new(Handle {
                shared,
                addr,
                server: tokio::sync::Mutex::new(Some(server)),
            }),
        })
    }

    /// `http://127.0.0.1:PORT`: the base of both the REST API and Lookup v2 paths.
    pub fn base_url(&self) -> String {
        self.inner.shared.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn account_sid(&self) -> &str {
        &self.inner.shared.account_sid
    }

    pub fn auth_token(&self) -> &str {
        &self.inner.shared.auth_token
    }

    /// Adds an account (a brokerage's subaccount): REST calls authenticate with its SID and
    /// `auth_token` and see only its messages; its webhooks are signed with its token.
    pub fn add_account(&self, account_sid: &str, auth_token: &str) {
        self.state().accounts.insert(
            account_sid.to_owned(),
            FakeAccount {
                auth_token: auth_token.to_owned(),
                signer: Signer::auth_token(auth_token),
            },
        );
    }

    /// From now on the account's webhooks (status callbacks, and its [`Player`]s made
    /// afterwards) are signed with `signer` (a shared key) instead of its auth token.
    pub fn sign_webhooks_with(&self, account_sid: &str, signer: Signer) {
        if let Some(account) = self.state().accounts.get_mut(account_sid) {
            account.signer = signer;
        }
    }

    /// A [`Player`] for the account `account_sid`, signing as that account's webhooks are.
    pub fn player_for(&self, public_url: &str, account_sid: &str) -> Player {
        let s = &self.inner.shared;
        let account = self.state().accounts.get(account_sid).cloned();
        let (token, signer) = match account {
            Some(a) => (a.auth_token, a.signer),
            None => (s.auth_token.clone(), Signer::auth_token(&s.auth_token)),
        };
        Player::new(public_url, account_sid, &token, s.clock.clone()).signing_with(signer)
    }

    /// Lookup v2 `line_type_intelligence.type` for a number (default `mobile`). A `landline`
    /// number also gets the undelivered/30006 callback plan.
    /// The account `account_sid` has the number `e164` (its URLs empty, as a new number's
    /// are, unless `voice_url` is given). Returns its SID.
    pub fn add_number(&self, account_sid: &str, e164: &str, voice_url: Option<&str>) -> String {
        let sid = format!("PN{:032x}", rand::random::<u128>());
        self.state().numbers.push(FakeNumber {
            account_sid: account_sid.to_owned(),
            sid: sid.clone(),
            phone_number: e164.to_owned(),
            voice_url: voice_url.map(str::to_owned),
            voice_method: "POST".into(),
            sms_method: "POST".into(),
            status_callback_method: "POST".into(),
            ..FakeNumber::default()
        });
        sid
    }

    /// A Messaging Service with `numbers`; `defer`: each number's own SMS URL gets its inbound
    /// texts, else `inbound_url` does; `campaign`: its A2P 10DLC campaign's status. Returns its
    /// SID.
    pub fn add_messaging_service(
        &self,
        name: &str,
        numbers: &[&str],
        defer: bool,
        inbound_url: Option<&str>,
        campaign: Option<&str>,
    ) -> String {
        let sid = format!("MG{:032x}", rand::random::<u128>());
        self.state().services.push(FakeService {
            sid: sid.clone(),
            friendly_name: name.to_owned(),
            inbound_request_url: inbound_url.map(str::to_owned),
            use_inbound_webhook_on_number: defer,
            numbers: numbers.iter().map(|n| (*n).to_owned()).collect(),
            campaign_status: campaign.map(str::to_owned),
        });
        sid
    }

    /// The account's numbers as the fake has them now.
    pub fn numbers(&self) -> Vec<FakeNumber> {
        self.state().numbers.clone()
    }

    pub fn set_line_type(&self, e164: &str, line_type: &str) {
        self.state()
            .line_types
            .insert(e164.to_owned(), line_type.to_owned());
    }

    /// Lookup answers 200 `valid: false` (`INVALID_BUT_POSSIBLE`) for this number.
    pub fn set_lookup_invalid(&self, e164: &str) {
        self.state().invalid.insert(e164.to_owned());
    }

    /// The CNAM Lookup's `caller_name` package reports for this number, as a consumer's.
    pub fn set_caller_name(&self, e164: &str, name: &str) {
        self.set_caller(e164, name, "CONSUMER");
    }

    /// The CNAM Lookup's `caller_name` and `caller_type` (`CONSUMER`, `BUSINESS`,
    /// `UNDETERMINED`) for this number.
    pub fn set_caller(&self, e164: &str, name: &str, caller_type: &str) {
        self.state()
            .caller_names
            .insert(e164.to_owned(), (name.to_owned(), caller_type.to_owned()));
    }

    /// The body the carrier keeps (and lists, fetches and answers with) for messages created
    /// from now on.
    pub fn keep_bodies(&self, kept: KeptBody) {
        self.state().kept_body = kept;
    }

    /// Messages created from now on show in `GET …/Messages.json` only `lag` after their
    /// creation (by the fake's clock); a fetch by sid finds them at once.
    pub fn set_list_lag(&self, lag: chrono::Duration) {
        self.state().list_lag = lag;
    }

    /// Arms a fault. Faults apply in injection order; the first whose scope matches wins.
    pub fn inject(&self, fault: Fault, scope: Scope) {
        tracing::info!(?fault, "fake twilio fault injected");
        self.state().faults.inject(fault, scope);
    }

    /// Disarms every fault. Creates already held stay held until [`Self::release_held`].
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Lets every create held by [`Fault::Hold`] answer.
    pub fn release_held(&self) {
        let held = std::mem::take(&mut self.state().held);
        for release in held {
            // The receiver is gone when the client hung up or the fake went down: fine.
            let _ = release.send(());
        }
    }

    /// How many creates are held right now (whose client is still waiting). Lets a test
    /// wait until the request "has left" before it acts (docs/reliability.md F8).
    pub fn held_count(&self) -> usize {
        let mut state = self.state();
        state.held.retain(|h| !h.is_closed());
        state.held.len()
    }

    /// Stops listening and drops every open connection (held and delayed requests included):
    /// new connections are refused until [`Self::go_up`]. Returns once the port is closed.
    pub async fn go_down(&self) {
        let server = self.inner.server.lock().await.take();
        if let Some(server) = server {
            let _ = server.stop.send(());
            let _ = server.task.await;
            tracing::info!(addr = %self.inner.addr, "fake twilio down");
        }
    }

    /// Listens again on the same port. A no-op when already up. Fails only if the port was
    /// taken by someone else meanwhile.
    pub async fn go_up(&self) -> io::Result<()> {
        let mut server = self.inner.server.lock().await;
        if server.is_none() {
            let listener = listen(self.inner.addr)?;
            *server = Some(spawn_server(listener, self.inner.shared.clone()));
            tracing::info!(addr = %self.inner.addr, "fake twilio up");
        }
        Ok(())
    }

    /// Every request received, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// The messages the carrier has, in creation order.
    /// Keeps a media item as Twilio would for an inbound text of `account_sid`; returns the
    /// `MediaUrl` its webhook carries (`{base}/2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{ME}`).
    pub fn add_media(&self, account_sid: &str, content_type: &str, bytes: Vec<u8>) -> String {
        let message_sid = format!("MM{}", &player::new_message_sid()[2..]);
        let sid = format!("ME{}", &player::new_message_sid()[2..]);
        let url = format!(
            "{}/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Media/{sid}",
            self.base_url()
        );
        self.state().media.push(FakeMedia {
            account_sid: account_sid.to_owned(),
            message_sid,
            sid,
            content_type: content_type.to_owned(),
            bytes,
        });
        url
    }

    /// What was fetched of each outbound message's `MediaUrl` (by the message's SID), in order.
    pub fn fetched_media(&self) -> Vec<(String, FetchedMedia)> {
        self.inner
            .shared
            .fetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn messages(&self) -> Vec<FakeMessage> {
        self.state()
            .messages
            .iter()
            .map(|s| s.msg.clone())
            .collect()
    }

    /// The calls created, in creation order.
    pub fn calls(&self) -> Vec<FakeCall> {
        self.state().calls.clone()
    }

    /// Every status callback the fake has tried to deliver, in order.
    pub fn callbacks(&self) -> Vec<CallbackAttempt> {
        self.state().callbacks.clone()
    }

    /// Calls created from now on to `to` are played by `plan` (both legs, signed webhooks).
    pub fn set_call_plan(&self, to: &str, plan: CallPlan) {
        self.state().call_plans.insert(to.to_owned(), plan);
    }

    /// Calls created from now on to a number with no plan of its own are played by `plan`
    /// (`None`: not played, the call goes nowhere).
    pub fn set_default_call_plan(&self, plan: Option<CallPlan>) {
        self.state().default_call_plan = plan;
    }

    /// Arms a fault for `POST …/Calls.json` (`Status`, `Reset`, `Delay`, `Hold`; `recorded`
    /// means the call exists and is played although the answer says otherwise).
    pub fn inject_call_fault(&self, fault: Fault, scope: Scope) {
        self.state().call_faults.inject(fault, scope);
    }

    /// Every step of the calls played, in order.
    pub fn call_log(&self) -> Vec<CallStep> {
        self.state().call_log.clone()
    }

    /// The numbers a played call's `<Dial>` rang: (agent leg's CallSid, number).
    pub fn dialed(&self) -> Vec<(String, String)> {
        self.state().dialed.clone()
    }

    /// The recordings the fake holds.
    pub fn recordings(&self) -> Vec<FakeRecording> {
        self.state().recordings.clone()
    }

    /// A voicemail on call `call_sid` (`from` → `to`), posted with `player` as Twilio would after
    /// a `<Record>`: the recording status callback, the `<Record action>`, and the transcription
    /// when `transcript` is given. The recording is served as MP3 afterwards. Returns its SID.
    pub async fn voicemail(
        &self,
        player: &Player,
        call_sid: &str,
        from: &str,
        to: &str,
        secs: u32,
        transcript: Option<&str>,
    ) -> anyhow::Result<String> {
        calls::voicemail(
            &self.inner.shared,
            player,
            call_sid,
            from,
            to,
            secs,
            transcript,
        )
        .await
    }

    /// The plan for messages created from now on.
    pub fn set_callback_plan(&self, plan: CallbackPlan) {
        self.state().plan = plan;
    }

    /// Sends one signed status callback for message `sid` to its `StatusCallback`, now, and
    /// moves the message's status forward if `status` ranks higher. Returns the HTTP status
    /// our server answered. Errors when the message is unknown, has no `StatusCallback`, or
    /// the request fails.
    pub async fn send_message_status(
        &self,
        sid: &str,
        status: &str,
        error_code: Option<u32>,
    ) -> anyhow::Result<u16> {
        callbacks::send_explicit(&self.inner.shared, sid, status, error_code).await
    }

    /// Waits until every scheduled status callback has been delivered or has failed.
    pub async fn settle(&self) {
        callbacks::settle(&self.inner.shared).await;
    }

    /// A [`Player`] that signs with this fake's auth token and posts to `public_url` (the
    /// server's `TEXTBACK_PUBLIC_URL`).
    pub fn player(&self, public_url: &str) -> Player {
        let primary = self.inner.shared.account_sid.clone();
        self.player_for(public_url, &primary)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.shared.lock()
    }
}

/// A listening socket with `SO_REUSEADDR`, so `go_up` can rebind the port at once even while
/// connections closed by `go_down` linger in TIME_WAIT.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn spawn_server(listener: TcpListener, shared: Arc<Shared>) -> Server {
    let (stop, stopped) = oneshot::channel();
    let router = rest::router(shared);
    let task = tokio::spawn(accept_loop(listener, router, stopped));
    Server { stop, task }
}

/// Accepts until told to stop; then closes the listener and aborts every connection task
/// (the connections are owned by the `JoinSet`, so none outlives the loop).
async fn accept_loop(listener: TcpListener, router: axum::Router, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, router.clone()));
                }
                Err(e) => {
                    // E.g. too many open files: back off instead of spinning.
                    tracing::warn!(error = %e, "fake twilio accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
            // Reap finished connections so the set does not grow for ever.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// Serves one connection with HTTP/1. A response carrying [`rest::ResetConnection`] is turned
/// into a service error, on which hyper closes the connection without writing anything.
async fn serve_connection(stream: TcpStream, router: axum::Router) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let router = router.clone();
        async move {
            let response = match router.oneshot(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response
                .extensions()
                .get::<rest::ResetConnection>()
                .is_some()
            {
                Err(rest::ResetError)
            } else {
                Ok(response)
            }
        }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %e, "fake twilio connection ended");
    }
}
