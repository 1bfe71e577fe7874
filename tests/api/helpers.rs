//! The test app: a fresh PostgreSQL database per test (dropped afterwards), the real router
//! bound on 127.0.0.1:0, a settable clock, and requests signed exactly as Twilio signs them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;

use textback::clock::ManualClock;
use textback::config::Config;
use textback::context::AppState;
use textback::store::{BrokerageId, messages};
use textback::twilio::{form, signature};
use textback_fake_twilio::{FakeTwilio, FakeTwilioConfig};

pub const TOKEN: &str = "0123456789abcdef0123456789abcdef";
pub const ACCOUNT_SID: &str = "AC4a9f9b8b5c52fcd667586e852d52ac05";

/// The PostgreSQL server the tests use: `TEXTBACK_TEST_PG` (a URL without the database), else
/// the local default of this machine.
pub fn pg_server() -> String {
    std::env::var("TEXTBACK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@localhost:5432".to_owned())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);
static CLEANED: OnceLock<()> = OnceLock::new();

/// A fresh, migrated database, dropped when this value is.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let name = format!(
            "tbtest_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let url = format!("{}/{name}", pg_server());
        if CLEANED.set(()).is_ok() {
            drop_stale_databases().await;
        }
        let pool = textback::db::prepare(&url)
            .await
            .expect("create and migrate the test database");
        TestDb { name, url, pool }
    }

    /// A second, independent pool on the same database (as another server process would have).
    pub async fn another_pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.url)
            .await
            .expect("connect")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
        // No `pool.close()`: it would wait for connections held by tasks of the test's own
        // runtime, which is blocked right here. `with (force)` ends those sessions instead.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(admin) = admin_pool().await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "drop database if exists \"{name}\" with (force)"
                    )))
                    .execute(&admin)
                    .await;
                }
            });
        })
        .join();
    }
}

async fn admin_pool() -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(&format!("{}/postgres", pg_server()))
        .await
}

/// Databases left behind by test processes that no longer run (a crashed or killed run).
async fn drop_stale_databases() {
    let Ok(admin) = admin_pool().await else {
        return;
    };
    let names: Vec<String> =
        sqlx::query_scalar("select datname from pg_database where datname like 'tbtest\\_%'")
            .fetch_all(&admin)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "drop database if exists \"{name}\" with (force)"
            )))
            .execute(&admin)
            .await;
        }
    }
}

/// A response, read fully.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`: where requests go.
    pub base_url: String,
    /// `TEXTBACK_PUBLIC_URL`: what signatures cover (usually the same as `base_url`).
    pub public_url: String,
    pub db: TestDb,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    /// The fake carrier: `TWILIO_API_BASE` and `TWILIO_LOOKUP_BASE` point at it, so nothing a
    /// test does can reach the real Twilio.
    pub fake: FakeTwilio,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn test_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-12T14:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
}

pub struct AppOptions {
    /// `TEXTBACK_PUBLIC_URL`; `None`: the bound address.
    pub public_url: Option<String>,
    /// A setup file applied before the app starts.
    pub setup: Option<String>,
    /// More environment variables for the app's `Config` (`TEXTBACK_…`).
    pub env: Vec<(&'static str, String)>,
    /// Variables the app's `Config` goes without (`TWILIO_ACCOUNT_SID`).
    pub unset: Vec<&'static str>,
    /// The lead API's burst per key (`Timing::api_burst`); `None`: the production 30.
    pub api_burst: Option<u32>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            public_url: None,
            setup: Some(DEMO.to_owned()),
            env: Vec::new(),
            unset: Vec::new(),
            api_burst: None,
        }
    }
}

pub const DEMO: &str = include_str!("../../fixtures/demo.toml");

/// A second brokerage, for tenancy tests: Bayside Homes, number +15555550200.
pub const OTHER_BROKERAGE: &str = r#"
[brokerage]
slug = "bayside"
name = "Bayside Homes"
time_zone = "America/Los_Angeles"

[[offices]]
slug = "main"
name = "Main"

[[agents]]
email = "lee@bayside.example"
name = "Lee Ortiz"
phone = "+15555550201"
office = "main"
role = "agent"

[[numbers]]
number = "+15555550200"
office = "main"
ring = ["lee@bayside.example"]

[text_back]
template = "Hi from {brokerage}. Reply STOP to opt out."
"#;

/// The demo brokerage's app.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let db = TestDb::new().await;
    let pool = db.pool.clone();
    spawn_app_on(db, pool, options).await
}

/// [`spawn_app_with`] on `db`, the app reaching it through `pool` (a pool through a proxy the
/// test takes down, say); the test's own queries use `db.pool`.
pub async fn spawn_app_on(db: TestDb, pool: PgPool, options: AppOptions) -> TestApp {
    // Logs stay silent unless TEST_LOG is set.
    if std::env::var_os("TEST_LOG").is_some() {
        textback::telemetry::init();
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base_url = format!("http://{addr}");
    let public_url = options.public_url.unwrap_or_else(|| base_url.clone());
    let clock = ManualClock::new(test_start());
    let fake = FakeTwilio::start(FakeTwilioConfig::with_fixture_credentials(clock.clone()))
        .await
        .expect("the fake carrier starts");
    assert_eq!(
        (fake.account_sid(), fake.auth_token()),
        (ACCOUNT_SID, TOKEN)
    );
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("TWILIO_API_BASE", fake.base_url()),
        ("TWILIO_LOOKUP_BASE", fake.base_url()),
        ("DATABASE_URL", db.url.clone()),
        ("TEXTBACK_BIND", addr.to_string()),
        ("TEXTBACK_PUBLIC_URL", public_url.clone()),
        ("TWILIO_AUTH_TOKEN", TOKEN.to_owned()),
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID.to_owned()),
        ("TEXTBACK_SPOOL_DIR", spool_dir()),
    ]);
    vars.extend(options.env.iter().cloned());
    for name in &options.unset {
        vars.remove(name);
    }
    let config = Config::from_lookup(move |k| vars.get(k).cloned()).expect("test config");
    if let Some(setup) = &options.setup {
        apply_setup(&db.pool, setup).await;
    }
    let mut timing = textback::scheduler::Timing::fast();
    if let Some(burst) = options.api_burst {
        timing.api_burst = burst;
    }
    let app = textback::build_with(config, pool, clock.clone(), timing).expect("build");
    let state = app.state.clone();
    let server = tokio::spawn(async move {
        let _ = textback::serve(listener, app, std::future::pending()).await;
    });
    TestApp {
        addr,
        base_url,
        public_url,
        db,
        state,
        clock,
        fake,
        http: reqwest::Client::new(),
        server,
    }
}

pub async fn apply_setup(pool: &PgPool, toml: &str) -> textback::store::setup::ApplySummary {
    let file = textback::setup::parse(toml)
        .unwrap_or_else(|p| panic!("test setup file is invalid: {p:?}"));
    textback::store::setup::apply(pool, &file)
        .await
        .expect("apply setup")
}

/// Decoded pairs of a fixture of `fixtures/twilio/`.
pub fn fixture(name: &str) -> Vec<(String, String)> {
    let path = format!("{}/fixtures/twilio/{name}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    form::decode(&body).expect("fixture decodes")
}

/// `params` with `key` set to `value` (added when missing).
pub fn with(mut params: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    match params.iter_mut().find(|(k, _)| k == key) {
        Some(p) => p.1 = value.to_owned(),
        None => params.push((key.to_owned(), value.to_owned())),
    }
    params
}

/// `params` without `key`.
pub fn without(params: Vec<(String, String)>, key: &str) -> Vec<(String, String)> {
    params.into_iter().filter(|(k, _)| k != key).collect()
}

/// A spool directory of its own for one server of a test (README.md "When the database goes
/// away"): servers never share one.
pub fn spool_dir() -> String {
    let dir = std::env::temp_dir().join(format!(
        "tb-spool-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    dir.display().to_string()
}

pub fn new_sid(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}

impl TestApp {
    pub fn sign(&self, path: &str, params: &[(String, String)]) -> String {
        signature::compute(
            TOKEN.as_bytes(),
            &format!("{}{path}", self.public_url),
            params,
        )
    }

    /// POSTs `params` form-encoded and signed as Twilio signs them.
    pub async fn post_signed(&self, path: &str, params: &[(String, String)]) -> Resp {
        let sig = self.sign(path, params);
        self.post_raw(
            path,
            form::encode(params).into_bytes(),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-twilio-signature", &sig),
            ],
        )
        .await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Resp {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base_url))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        read(
            self.http
                .get(format!("{}{path}", self.base_url))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
    }

    /// A digest of every domain table's rows: equal before and after means nothing was stored
    /// or changed (docs/security.md §3; docs/reliability.md I5).
    pub async fn snapshot(&self) -> Vec<(String, i64, String)> {
        snapshot(&self.db.pool).await
    }

    pub fn webhook_count(&self, endpoint: &'static str, outcome: &'static str) -> u64 {
        self.state.metrics.webhook_count(endpoint, outcome)
    }

    /// Runs every job due now (by the test clock) until none is left.
    pub async fn drain(&self) -> usize {
        let n = textback::scheduler::Scheduler::new(self.state.clone())
            .drain()
            .await
            .expect("drain");
        self.fake.settle().await;
        n
    }

    /// Moves the test clock to each next due job and drains, until no job is scheduled (or
    /// `limit` of clock time has passed): backoffs and reconcile gaps play out at once.
    pub async fn run_until_quiet(&self, limit: chrono::Duration) {
        let end = textback::clock::Clock::now(self.clock.as_ref()) + limit;
        for _ in 0..10_000 {
            self.drain().await;
            let next: Option<DateTime<Utc>> =
                sqlx::query_scalar("select min(run_at) from job where state = 'scheduled'")
                    .fetch_one(&self.db.pool)
                    .await
                    .expect("next");
            match next {
                Some(at) if at <= end => {
                    if at > textback::clock::Clock::now(self.clock.as_ref()) {
                        self.clock.set(at);
                    }
                }
                _ => return,
            }
        }
        panic!("the queue never went quiet");
    }

    /// (kind, state, reason) of every job of the leads' side, in creation order: the jobs that
    /// alert the brokerage's own people (`agent_alert`, `escalation`) are left out.
    pub async fn jobs(&self) -> Vec<(String, String, Option<String>)> {
        sqlx::query_as("select kind, state, reason from job where kind not in ('agent_alert', 'escalation') order by job_id")
            .fetch_all(&self.db.pool)
            .await
            .expect("jobs")
    }
}

/// The phones of the agents of the test setup files (DEMO and OTHER_BROKERAGE): texts to them
/// are alerts for the brokerage's people, not texts to leads.
pub const STAFF_PHONES: &[&str] = &[
    "+15555550101",
    "+15555550102",
    "+15555550103",
    "+15555550104",
    "+15555550111",
    "+15555550201",
];

/// Whether a request the fake carrier received is a Messages create to a lead (not an alert
/// to an agent's phone).
pub fn is_lead_text(r: &textback_fake_twilio::RecordedRequest) -> bool {
    r.method == "POST"
        && r.path.ends_with("/Messages.json")
        && !r
            .params
            .iter()
            .any(|(k, v)| k == "To" && STAFF_PHONES.contains(&v.as_str()))
}

/// Whether a request is a Messages create to an agent's phone (an alert).
pub fn is_staff_text(r: &textback_fake_twilio::RecordedRequest) -> bool {
    r.method == "POST"
        && r.path.ends_with("/Messages.json")
        && r.params
            .iter()
            .any(|(k, v)| k == "To" && STAFF_PHONES.contains(&v.as_str()))
}

pub const DOMAIN_TABLES: &[&str] = &[
    "brokerage",
    "office",
    "agent",
    "number",
    "number_ring",
    "follow_up_step",
    "contact",
    "call",
    "call_event",
    "message",
    "message_status_event",
    "job",
    "job_transition",
];

pub async fn snapshot(pool: &PgPool) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for table in DOMAIN_TABLES {
        let (count, digest): (i64, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select count(*), md5(string_agg(t::text, '|' order by t::text)) from {table} t"
        )))
        .fetch_one(pool)
        .await
        .expect("snapshot");
        out.push((table.to_string(), count, digest.unwrap_or_default()));
    }
    out
}

pub async fn read(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

/// The TwiML root's child elements' tag names.
pub fn twiml_verbs(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML ({e}): {xml}"));
    assert!(doc.root_element().has_tag_name("Response"), "{xml}");
    doc.root_element()
        .children()
        .filter(|n| n.is_element())
        .map(|n| n.tag_name().name().to_owned())
        .collect()
}

/// An outbound text of Harbor's Main St number as the pipeline records it: the pre-send
/// row, then accepted by the carrier with `sid`.
pub async fn seed_sent_message(app: &TestApp, sid: &str, to: &str) -> i64 {
    let mut conn = app.db.pool.acquire().await.expect("conn");
    let brokerage: i64 =
        sqlx::query_scalar("select brokerage_id from brokerage where slug = 'harbor'")
            .fetch_one(&mut *conn)
            .await
            .expect("harbor");
    let number_id: i64 = sqlx::query_scalar("select number_id from number where e164 = $1")
        .bind("+15555550100")
        .fetch_one(&mut *conn)
        .await
        .expect("number");
    let id = messages::insert_outbound_sending(
        &mut conn,
        BrokerageId(brokerage),
        &messages::NewOutbound {
            number_id,
            contact_id: None,
            from: "+15555550100",
            to,
            body: "Hi there, this is Sam at Harbor Realty.",
            idempotency_key: &new_sid("k"),
            job_id: None,
            attempt: None,
            template_variant: None,
            kind: "text_back",
            counts_for_cap: true,
            started_at: Utc::now(),
        },
    )
    .await
    .expect("pre-send row");
    assert!(
        messages::mark_accepted(&mut conn, BrokerageId(brokerage), id, sid, "queued")
            .await
            .expect("accepted")
    );
    id.0
}

/// The carrier's events for one caller, signed as Twilio signs them.
impl TestApp {
    pub fn incoming_params(call_sid: &str, from: &str, to: &str) -> Vec<(String, String)> {
        let p = with(fixture("voice-incoming.txt"), "CallSid", call_sid);
        let p = with(with(p, "From", from), "Caller", from);
        with(with(p, "To", to), "Called", to)
    }

    pub fn dial_params(
        call_sid: &str,
        from: &str,
        to: &str,
        status: &str,
        bridged: &str,
    ) -> Vec<(String, String)> {
        let p = with(
            fixture("voice-dial-action-no-answer.txt"),
            "CallSid",
            call_sid,
        );
        let p = with(with(p, "From", from), "Caller", from);
        let p = with(
            with(with(p, "To", to), "Called", to),
            "DialCallStatus",
            status,
        );
        with(p, "DialBridged", bridged)
    }

    /// A call from `from` to `to` that nobody answers; returns its `CallSid`.
    pub async fn missed_call(&self, from: &str, to: &str) -> String {
        let sid = new_sid("CA");
        let r = self
            .post_signed("/twilio/voice", &Self::incoming_params(&sid, from, to))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = self
            .post_signed(
                "/twilio/voice/dial",
                &Self::dial_params(&sid, from, to, "no-answer", "false"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        sid
    }

    /// A call from `from` to `to` that an agent takes.
    pub async fn answered_call(&self, from: &str, to: &str) -> String {
        let sid = new_sid("CA");
        let r = self
            .post_signed("/twilio/voice", &Self::incoming_params(&sid, from, to))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = self
            .post_signed(
                "/twilio/voice/dial",
                &Self::dial_params(&sid, from, to, "completed", "true"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        sid
    }

    /// An inbound text (no `OptOutType`); returns its `MessageSid`.
    pub async fn text_in(&self, from: &str, to: &str, body: &str) -> String {
        let sid = new_sid("SM");
        let p = with(fixture("sms-inbound-reply.txt"), "MessageSid", &sid);
        let p = with(with(p, "SmsSid", &sid), "SmsMessageSid", &sid);
        let p = with(with(p, "From", from), "To", to);
        let p = without(with(p, "Body", body), "OptOutType");
        let r = self.post_signed("/twilio/sms", &p).await;
        assert_eq!(r.status, 200, "{}", r.body);
        sid
    }

    /// The alert texts the carrier took for `to` (an agent's phone), bodies in order.
    pub fn alerts_to(&self, to: &str) -> Vec<String> {
        self.fake
            .messages()
            .into_iter()
            .filter(|m| m.to == to)
            .map(|m| m.body)
            .collect()
    }

    /// How many alert texts were asked of the carrier (all agents).
    pub fn staff_texts(&self) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| is_staff_text(r))
            .count()
    }
}

/// Gives the agent `email` of brokerage `slug` a login with `password` (as `textback user add`
/// does). Returns the agent's id.
pub async fn add_login(pool: &PgPool, slug: &str, email: &str, password: &str) -> i64 {
    let mut conn = pool.acquire().await.expect("conn");
    let brokerage = textback::store::brokerages::by_slug(&mut conn, slug)
        .await
        .expect("brokerage")
        .expect("the brokerage exists");
    let agent = textback::store::users::agent_by_email(&mut conn, brokerage, email)
        .await
        .expect("agent")
        .expect("the agent is in the setup file");
    let hash = textback::http::auth::hash_password(password).expect("hash");
    textback::store::users::set_login(
        &mut conn,
        brokerage,
        agent.agent_id,
        email,
        &hash,
        chrono::Utc::now(),
    )
    .await
    .expect("login");
    agent.agent_id
}

/// The password every test login gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// A person logged in to the pages, as a browser without JavaScript would be: the session
/// cookie, and the CSRF token of the last page read. Redirects are not followed.
pub struct Person {
    pub base_url: String,
    pub http: reqwest::Client,
    pub cookie: String,
    pub csrf: String,
}

/// The value of `name="csrf"` in a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let rest = html.get(at..)?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// `name=value` of a `Set-Cookie` named `name`, if the response set one.
pub fn set_cookie(resp: &Resp, name: &str) -> Option<String> {
    resp.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// GETs the login form of the server at `base_url`; returns its pre-session cookie
/// (`name=value`) and token.
pub async fn login_form_at(base_url: &str) -> (String, String) {
    let r = read(
        no_redirects()
            .get(format!("{base_url}/login"))
            .send()
            .await
            .expect("login form"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = set_cookie(&r, "tb_login")
        .or_else(|| set_cookie(&r, "__Host-tb_login"))
        .expect("a login cookie");
    let pair = cookie.split(';').next().unwrap_or_default().to_owned();
    (pair, csrf_of(&r.body).expect("a token"))
}

/// Posts the login form of the server at `base_url` as a browser would; the raw answer.
pub async fn try_login_at(base_url: &str, email: &str, password: &str) -> Resp {
    let (cookie, csrf) = login_form_at(base_url).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("email", email),
        ("password", password),
    ];
    read(
        no_redirects()
            .post(format!("{base_url}/login"))
            .header("cookie", cookie)
            .form(&form)
            .send()
            .await
            .expect("login"),
    )
    .await
}

/// Logs `email` in at `base_url` (its login must exist); panics unless it works.
pub async fn log_in_at(base_url: &str, email: &str, password: &str) -> Person {
    let r = try_login_at(base_url, email, password).await;
    assert_eq!(r.status, 303, "login of {email}: {}", r.body);
    let cookie = set_cookie(&r, "tb_session")
        .or_else(|| set_cookie(&r, "__Host-tb_session"))
        .expect("a session cookie");
    let mut person = Person {
        base_url: base_url.to_owned(),
        http: no_redirects(),
        cookie: cookie.split(';').next().unwrap_or_default().to_owned(),
        csrf: String::new(),
    };
    let inbox = person.get("/inbox").await;
    assert_eq!(inbox.status, 200, "{}", inbox.body);
    person
}

impl TestApp {
    /// GETs the login form; returns its pre-session cookie (`name=value`) and token.
    pub async fn login_form(&self) -> (String, String) {
        login_form_at(&self.base_url).await
    }

    /// Posts the login form as a browser would; the raw answer.
    pub async fn try_login(&self, email: &str, password: &str) -> Resp {
        try_login_at(&self.base_url, email, password).await
    }

    /// Logs `email` in (its login must exist); panics unless it works.
    pub async fn log_in(&self, email: &str, password: &str) -> Person {
        log_in_at(&self.base_url, email, password).await
    }

    /// A login for `email` of the demo brokerage (or `slug`), logged in.
    pub async fn person(&self, slug: &str, email: &str) -> Person {
        add_login(&self.db.pool, slug, email, PASSWORD).await;
        self.log_in(email, PASSWORD).await
    }
}

impl Person {
    /// GET with the session; remembers the page's CSRF token.
    pub async fn get(&mut self, path: &str) -> Resp {
        let r = read(
            self.http
                .get(format!("{}{path}", self.base_url))
                .header("cookie", &self.cookie)
                .send()
                .await
                .expect("get"),
        )
        .await;
        if let Some(t) = csrf_of(&r.body) {
            self.csrf = t;
        }
        r
    }

    /// POSTs a form with the session and its CSRF token.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let mut all: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(form);
        let all: Vec<(String, String)> = all
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let r = self.post_raw(path, &all, &[]).await;
        if let Some(t) = csrf_of(&r.body) {
            self.csrf = t;
        }
        r
    }

    /// POSTs a `multipart/form-data` form with the session and its CSRF token, and a file
    /// (field name, file name, content type, bytes) as a browser sends one.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        file: Option<(&str, &str, &str, &[u8])>,
    ) -> Resp {
        let boundary = "----textbackTestBoundary7MA4YWxkTrZu0gW";
        let mut body: Vec<u8> = Vec::new();
        let csrf = self.csrf.clone();
        for (k, v) in std::iter::once(("csrf", csrf.as_str())).chain(form.iter().copied()) {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((name, filename, content_type, bytes)) = file {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let r = read(
            self.http
                .post(format!("{}{path}", self.base_url))
                .header("cookie", &self.cookie)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body)
                .send()
                .await
                .expect("post"),
        )
        .await;
        if let Some(t) = csrf_of(&r.body) {
            self.csrf = t;
        }
        r
    }

    /// POSTs exactly `form` (no token added) with extra headers.
    pub async fn post_raw(
        &self,
        path: &str,
        form: &[(String, String)],
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header("cookie", &self.cookie)
            .form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.send().await.expect("post")).await
    }
}

/// A second server process's worth of app on the same database (another instance behind the
/// same load balancer): its own pool, router and listener. Returns its base URL.
pub async fn second_instance(app: &TestApp) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let vars: HashMap<&str, String> = HashMap::from([
        ("TWILIO_API_BASE", app.fake.base_url()),
        ("TWILIO_LOOKUP_BASE", app.fake.base_url()),
        ("DATABASE_URL", app.db.url.clone()),
        ("TEXTBACK_BIND", addr.to_string()),
        ("TEXTBACK_PUBLIC_URL", format!("http://{addr}")),
        ("TWILIO_AUTH_TOKEN", TOKEN.to_owned()),
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID.to_owned()),
        ("TEXTBACK_SPOOL_DIR", spool_dir()),
    ]);
    let config = Config::from_lookup(move |k| vars.get(k).cloned()).expect("config");
    let built = textback::build_with(
        config,
        app.db.another_pool().await,
        app.clock.clone(),
        textback::scheduler::Timing::fast(),
    )
    .expect("build");
    let server = tokio::spawn(async move {
        let _ = textback::serve(listener, built, std::future::pending()).await;
    });
    (format!("http://{addr}"), server)
}
