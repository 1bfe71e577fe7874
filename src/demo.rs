//! `textback demo`: the real server and scheduler, the fake carrier in-process, the demo
//! brokerage, and a scripted morning played through the real, signed webhooks (README.md "The
//! demo"). It needs only PostgreSQL.
//!
//! The server runs on an offset clock that starts at 10:00 on a weekday in the brokerage's
//! zone, so the demo shows the same whenever it runs. Each step is printed as it happens, from
//! what the database records.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::Context as _;
use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use sqlx::PgPool;
use url::Url;

use crate::clock::{OffsetClock, SharedClock};
use crate::config::Config;
use crate::domain::phone::mask;
use crate::store::{BrokerageId, feed};
use textback_fake_twilio::{
    CallPlan, DialResult, FakeTwilio, FakeTwilioConfig, Player, new_call_sid, new_message_sid,
};

pub const DEMO_SETUP: &str = include_str!("../fixtures/demo.toml");
const MAIN_ST: &str = "+15555550100";
const ELM_ST: &str = "+15555550110";
const SAM: &str = "+15555550101";
const JO: &str = "+15555550111";
const AVA: &str = "+15555550102";
const HARBOR_WAY: &str = "+15555550120";
const QUINN: &str = "+16175550129";

/// The demo's callers (fictional 555 numbers).
const JORDAN: &str = "+16175550123";
const PAT_LANDLINE: &str = "+16175550124";
const CASEY: &str = "+16175550125";
const MORGAN: &str = "+16175550126";
const DREW: &str = "+16175550127";
const ALEX: &str = "+16175550128";
/// A lead from Harbor's website, through the lead API (docs/leads.md).
const TAYLOR: &str = "+16175550150";
/// A lead who writes in Spanish, with a photo (README.md "Spanish", "Pictures").
const LUCIA: &str = "+16175550151";
/// The photo Lucía sends.
const HOUSE_PNG: &[u8] = include_bytes!("../fixtures/media/house.png");

/// The demo's logins: Downtown's manager and the brokerage's admin (fixtures/demo.toml).
const LOGINS: [(&str, &str); 2] = [
    ("morgan@harbor.example", "manager of the Downtown office"),
    ("riley@harbor.example", "admin: the whole brokerage"),
];

/// A password a person can type: 12 letters and digits without look-alikes, in groups of 4.
fn demo_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let bytes = rand::random::<[u8; 12]>();
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Creates the demo's logins; returns (email, what they see, password).
async fn demo_logins(
    pool: &PgPool,
    brokerage: BrokerageId,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(&'static str, &'static str, String)>> {
    let mut out = Vec::new();
    for (email, what) in LOGINS {
        let password = demo_password();
        let hash = {
            let p = password.clone();
            tokio::task::spawn_blocking(move || crate::http::auth::hash_password(&p)).await??
        };
        let mut conn = pool.acquire().await?;
        let agent = crate::store::users::agent_by_email(&mut conn, brokerage, email)
            .await?
            .context("the demo setup file lists its login agents")?;
        crate::store::users::set_login(&mut conn, brokerage, agent.agent_id, email, &hash, now)
            .await?;
        out.push((email, what, password));
    }
    Ok(out)
}

/// 10:00 local on `now`'s date in `tz` when that is a weekday, else on the next Monday.
pub fn demo_start(now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let mut date = now.with_timezone(&tz).date_naive();
    while matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
        date = date.succ_opt().unwrap_or(date);
    }
    let ten = NaiveTime::from_hms_opt(10, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&date.and_time(ten)).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => now,
    }
}

/// A database beside `DATABASE_URL`'s, on the same server: its name + `_suffix`
/// (`textback_demo` for the default URL and `demo`), so a demo never touches the real database
/// and two demos against different databases (a test's and yours) never share one.
fn database_beside(database_url: &str, suffix: &str) -> anyhow::Result<(String, String)> {
    let mut url = Url::parse(database_url).context("DATABASE_URL")?;
    let name = match url.path().trim_start_matches('/') {
        "" => "textback".to_owned(),
        name => name.to_owned(),
    };
    anyhow::ensure!(
        !name.is_empty()
            && name.len() <= 50
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "DATABASE_URL: needs a database name of letters, digits and underscores (this command uses NAME_{suffix})"
    );
    let beside = format!("{name}_{suffix}");
    url.set_path(&format!("/{beside}"));
    // A `dbname` parameter would override the path (and could name your real database).
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "dbname")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((beside, url.to_string()))
}

/// A fresh database `NAME_suffix` beside `database_url`'s, dropped and created again, migrated:
/// its name, its URL and a pool. The demo and the benchmarks run on one, never on
/// `DATABASE_URL`'s own.
pub async fn fresh_database(
    database_url: &str,
    suffix: &str,
) -> anyhow::Result<(String, String, PgPool)> {
    // With several hosts, beside the database on the one that takes writes now.
    let primary = crate::db::primary_url(database_url).await?;
    let (db_name, db_url) = database_beside(&primary, suffix)?;
    let admin = {
        let mut u = Url::parse(&db_url)?;
        u.set_path("/postgres");
        u.to_string()
    };
    // The demo's own database is made beside DATABASE_URL's, through the server's maintenance
    // database; an error names the URL the person gave, not that one.
    let admin_pool = crate::db::pool_raw(&admin).await.map_err(|e| {
        anyhow::anyhow!(
            "this command makes its database `{db_name}` beside DATABASE_URL's, on the same server, and {}",
            crate::db::advice(&e, database_url)
        )
    })?;
    // The name is letters, digits and underscores (checked above), quoted.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists \"{db_name}\" with (force)"
    )))
    .execute(&admin_pool)
    .await?;
    admin_pool.close().await;
    let pool = crate::db::prepare(&db_url).await?;
    Ok((db_name, db_url, pool))
}

/// What the demo and `textback-bench pipeline` run on.
pub struct Stage {
    /// The database's name and URL.
    pub db_name: String,
    pub pool: PgPool,
    pub brokerage: BrokerageId,
    pub clock: SharedClock,
    pub fake: FakeTwilio,
    /// The server's base URL: `listener`'s address, also `TEXTBACK_PUBLIC_URL`.
    pub public: String,
    /// What `app` was built with (a second instance reuses it with its own address).
    pub config: Config,
    pub app: crate::App,
}

/// A fresh database `NAME_suffix` beside `database_url`'s (dropped and created again) with
/// `setup` applied; the fake carrier with random credentials, on an offset clock that starts at
/// 10:00 on a weekday in `tz`; and the app built for `listener`, with the fake as its carrier.
pub async fn stage(
    database_url: &str,
    suffix: &str,
    setup: &str,
    tz: Tz,
    listener: &tokio::net::TcpListener,
) -> anyhow::Result<Stage> {
    let (db_name, db_url, pool) = fresh_database(database_url, suffix).await?;
    let file = crate::setup::parse(setup).map_err(|p| anyhow::anyhow!("setup file: {p:?}"))?;
    let applied = crate::store::setup::apply(&pool, &file)
        .await
        .map_err(|e| anyhow::anyhow!("applying the setup file: {e}"))?;

    let clock: SharedClock = Arc::new(OffsetClock::starting_at(demo_start(Utc::now(), tz)));
    let token = hex::encode(rand::random::<[u8; 16]>());
    let account = format!("AC{}", hex::encode(rand::random::<[u8; 16]>()));
    let fake = FakeTwilio::start(FakeTwilioConfig {
        account_sid: account.clone(),
        auth_token: token.clone(),
        clock: clock.clone(),
    })
    .await?;
    let addr = listener.local_addr()?;
    let public = format!("http://{addr}");
    // The demo's spool starts empty with its fresh database (README.md "When the database goes
    // away").
    let spool_dir = std::env::var("TEXTBACK_SPOOL_DIR").map_or_else(
        |_| std::env::temp_dir().join(format!("textback-demo-spool-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let _ = std::fs::remove_file(spool_dir.join("spool.log"));
    let vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", db_url),
        ("TEXTBACK_SPOOL_DIR", spool_dir.display().to_string()),
        ("TEXTBACK_BIND", addr.to_string()),
        ("TEXTBACK_PUBLIC_URL", public.clone()),
        ("TWILIO_ACCOUNT_SID", account),
        ("TWILIO_AUTH_TOKEN", token),
        ("TWILIO_API_BASE", fake.base_url()),
        ("TWILIO_LOOKUP_BASE", fake.base_url()),
    ]);
    let config = Config::from_lookup(move |k| vars.get(k).cloned())?;
    let app = crate::build(config.clone(), pool.clone(), clock.clone())?;
    Ok(Stage {
        db_name,
        pool,
        brokerage: BrokerageId(applied.brokerage_id),
        clock,
        fake,
        public,
        config,
        app,
    })
}

/// Harbor Realty's zone (`fixtures/demo.toml`).
pub fn harbor_zone() -> Tz {
    chrono_tz::America::New_York
}

pub async fn run() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let tz = harbor_zone();
    let bind = config.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (TEXTBACK_BIND)"))?;
    // A fresh database every time, so the demo always shows the same thing.
    let Stage {
        db_name,
        pool,
        brokerage,
        clock,
        fake,
        public,
        app,
        ..
    } = stage(&config.database_url, "demo", &demo_setup(), tz, &listener).await?;
    fake.set_line_type(PAT_LANDLINE, "landline");
    // The fake carrier plays every callback textback places: the agent's phone answers and
    // presses 1, the lead answers and they talk (README.md "The call side").
    fake.set_default_call_plan(Some(CallPlan::connects(95)));

    println!(
        "textback demo — Harbor Realty, a fake carrier on {}, the server on {public}",
        fake.base_url()
    );
    println!(
        "database: {db_name} (fresh; applied fixtures/demo.toml). Times are the demo clock's (Harbor's zone, America/New_York)."
    );
    let logins = demo_logins(&pool, brokerage, clock.now()).await?;
    println!("Open {public}/login to watch the inbox and the dashboard as the morning happens:");
    for (email, what, password) in &logins {
        println!("  {email:<24} password {password}   ({what})");
    }
    println!();

    // A key to the lead API, as `textback api-key create` makes one: the script's website
    // sends a lead with it, and a newcomer can send one too.
    let web = crate::context::tokens::new_api_key()?;
    crate::store::web_leads::create_key(
        &mut *pool.acquire().await?,
        brokerage,
        "website",
        &web.prefix,
        &web.hash,
        clock.now(),
    )
    .await?;
    println!("The lead API's key for Harbor's website (README.md \"Leads from your website\"):");
    println!(
        "  curl -X POST {public}/api/v1/leads -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' \\",
        web.key
    );
    println!(
        "    -d '{{\"phone\": \"(617) 555-0160\", \"name\": \"Robin\", \"consent\": {{\"text\": \"I agree to receive texts from Harbor Realty.\", \"url\": \"https://harbor.example/contact\", \"at\": \"{}\", \"ip\": \"203.0.113.7\"}}}}'",
        clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    println!("Harbor's hosted lead form (try it on a phone): {public}/f/harbor/contact");
    println!();

    let player = fake.player(&public);
    let watcher = tokio::spawn(watch(pool.clone(), brokerage, clock.clone(), tz));
    let site = Website {
        url: format!("{public}/api/v1/leads"),
        key: web.key,
    };
    let script = tokio::spawn(script(player, fake.clone(), clock.clone(), tz, site));
    let server = crate::run(listener, app, crate::shutdown_signal());
    let result = server.await;
    script.abort();
    watcher.abort();
    println!();
    println!("demo stopped. The database {db_name} keeps what happened (psql -d {db_name}).");
    result.context("the server stopped with an error")
}

fn local(clock: &SharedClock, tz: Tz) -> String {
    clock
        .now()
        .with_timezone(&tz)
        .format("%H:%M:%S")
        .to_string()
}

fn say(clock: &SharedClock, tz: Tz, line: &str) {
    println!("{}  {line}", local(clock, tz));
}

async fn pause(secs: u64) {
    tokio::time::sleep(StdDuration::from_secs(secs)).await;
}

/// Harbor's morning.
/// The demo's setup: `fixtures/demo.toml` with voicemail on the 42 Elm St line.
fn demo_setup() -> String {
    DEMO_SETUP
        .replace(
            "listing = \"42 Elm St\"\n",
            "listing = \"42 Elm St\"\nvoicemail = true\n",
        )
        .replace(
            "[text_back]\n",
            "[[numbers]]                        # the open-house sign at 7 Harbor Way: first to claim\n\
             number = \"+15555550120\"\n\
             office = \"downtown\"\n\
             listing = \"7 Harbor Way\"\n\
             ring = [\"sam@harbor.example\", \"ava@harbor.example\"]\n\
             routing = \"first_to_claim\"\n\n\
             [[saved_replies]]\n\
             name = \"Showing\"\n\
             text = \"Hi {first_name|there}, {agent_first_name} here. When would suit you for a showing of {listing|the home}?\"\n\n\
             [text_back]\n",
        )
}

/// Harbor's website, sending its contact form's leads to the lead API.
struct Website {
    url: String,
    key: String,
}

async fn script(player: Player, fake: FakeTwilio, clock: SharedClock, tz: Tz, site: Website) {
    if let Err(e) = play(&player, &fake, &clock, tz, &site).await {
        say(&clock, tz, &format!("the script stopped: {e:#}"));
    }
}

async fn play(
    player: &Player,
    fake: &FakeTwilio,
    clock: &SharedClock,
    tz: Tz,
    site: &Website,
) -> anyhow::Result<()> {
    pause(1).await;
    // 1. A missed call that becomes a text-back.
    say(
        clock,
        tz,
        &format!(
            "☎  {} calls the 123 Main St line; Sam and Ava's phones ring …",
            mask(JORDAN)
        ),
    );
    missed_call(player, JORDAN, MAIN_ST).await?;
    say(
        clock,
        tz,
        "   nobody takes it: the caller hears \"Sorry we missed you. We will text you in a moment.\"",
    );
    pause(3).await;

    // 2. A call an agent answers (the screen: the agent presses 1).
    say(
        clock,
        tz,
        &format!(
            "☎  {} calls the 42 Elm St line; Jo's phone rings",
            mask(CASEY)
        ),
    );
    let sid = new_call_sid();
    player.incoming_call(&sid, CASEY, ELM_ST).await?;
    let leg = new_call_sid();
    player.screen(&leg, &sid, JO, CASEY).await?;
    player.screen_answer(&leg, &sid, JO, CASEY, "1").await?;
    player
        .dial_result(&sid, CASEY, ELM_ST, DialResult::answered(95))
        .await?;
    say(
        clock,
        tz,
        "   Jo presses 1 and takes the call: answered, nothing to text",
    );
    pause(3).await;

    // 3. A landline caller: a callback task, no text.
    say(
        clock,
        tz,
        &format!(
            "☎  {} calls the 123 Main St line from a landline; nobody answers",
            mask(PAT_LANDLINE)
        ),
    );
    missed_call(player, PAT_LANDLINE, MAIN_ST).await?;
    pause(3).await;

    // 4. A caller who reconnects within the hold: the text-back is cancelled.
    say(
        clock,
        tz,
        &format!(
            "☎  {} calls the 42 Elm St line; nobody answers",
            mask(MORGAN)
        ),
    );
    missed_call(player, MORGAN, ELM_ST).await?;
    pause(3).await;

    // 5. Another missed caller, who will not want texts.
    say(
        clock,
        tz,
        &format!(
            "☎  {} calls the 123 Main St line; nobody answers",
            mask(DREW)
        ),
    );
    missed_call(player, DREW, MAIN_ST).await?;
    pause(3).await;
    say(
        clock,
        tz,
        &format!("☎  {} calls again; this time Sam takes it", mask(MORGAN)),
    );
    let again = new_call_sid();
    player.incoming_call(&again, MORGAN, MAIN_ST).await?;
    let leg = new_call_sid();
    player.screen(&leg, &again, SAM, MORGAN).await?;
    player.screen_answer(&leg, &again, SAM, MORGAN, "1").await?;
    player
        .dial_result(&again, MORGAN, MAIN_ST, DialResult::answered(240))
        .await?;
    pause(20).await;

    // 6. The first caller replies to the text-back: it lands in the conversation.
    say(
        clock,
        tz,
        &format!(
            "💬 {} replies: \"Yes! Is the 3 bed on Main St still available? Could I see it Saturday around 11?\"",
            mask(JORDAN)
        ),
    );
    player
        .inbound_sms(
            &new_message_sid(),
            JORDAN,
            MAIN_ST,
            "Yes! Is the 3 bed on Main St still available? Could I see it Saturday around 11?",
            0,
            None,
        )
        .await?;
    pause(3).await;

    // 7. The other caller answers the text-back with STOP.
    say(clock, tz, &format!("💬 {} replies: \"STOP\"", mask(DREW)));
    player
        .inbound_sms(&new_message_sid(), DREW, MAIN_ST, "STOP", 0, Some("STOP"))
        .await?;
    pause(3).await;

    // 7b. Sam answers the first caller from his phone, by text: relayed from the 123 Main St line.
    say(
        clock,
        tz,
        "📱 Sam texts back from his phone: \"#1 Yes, it is! Saturday at 11 works. See you at 123 Main St.\" (#1 picks the conversation: he has two open alerts)",
    );
    player
        .inbound_sms(
            &new_message_sid(),
            SAM,
            MAIN_ST,
            "#1 Yes, it is! Saturday at 11 works. See you at 123 Main St.",
            0,
            None,
        )
        .await?;
    say(
        clock,
        tz,
        &format!(
            "   relayed to {} from the 123 Main St line (through the gate), shown in the thread as Sam's reply",
            mask(JORDAN)
        ),
    );
    pause(3).await;

    // 7c. A first-to-claim line: the lead is offered to Sam and Ava; Ava claims it by text.
    say(
        clock,
        tz,
        &format!(
            "☎  {} calls the 7 Harbor Way open-house line (first to claim); nobody answers",
            mask(QUINN)
        ),
    );
    missed_call(player, QUINN, HARBOR_WAY).await?;
    pause(3).await;
    say(clock, tz, "📱 Ava texts back: \"CLAIM\"");
    player
        .inbound_sms(&new_message_sid(), AVA, HARBOR_WAY, "CLAIM", 0, None)
        .await?;
    say(
        clock,
        tz,
        "   Ava owns the lead; Sam is told who claimed it, and the text-back says Ava",
    );
    pause(3).await;

    // 7d. A lead from Harbor's website: stored with the consent the visitor ticked, routed, and
    // texted at once from the 123 Main St line.
    say(
        clock,
        tz,
        &format!(
            "🌐 Harbor's website sends a lead: Taylor ({}) asks about 9 Ocean Ave and ticks \"I agree to receive texts\"",
            mask(TAYLOR)
        ),
    );
    let consent_at = clock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let answer = reqwest::Client::new()
        .post(&site.url)
        .bearer_auth(&site.key)
        .header("idempotency-key", "harbor-site-form-1001")
        .json(&serde_json::json!({
            "phone": "(617) 555-0150",
            "name": "Taylor Reed",
            "source": "harbor.example",
            "listing": "9 Ocean Ave",
            "message": "Hi! Is 9 Ocean Ave still on the market? Could we see it this week?",
            "consent": {
                "text": "I agree to receive texts from Harbor Realty about my inquiry. Reply STOP to opt out.",
                "url": "https://harbor.example/listings/9-ocean-ave",
                "at": consent_at,
                "ip": "203.0.113.24",
            },
        }))
        .send()
        .await?;
    say(
        clock,
        tz,
        &format!(
            "   the lead API answers {}: the lead and its written consent are recorded, Sam is alerted, and Taylor is texted at once",
            answer.status().as_u16()
        ),
    );
    pause(3).await;

    // 7e. A lead who writes in Spanish, with a photo of the yard sign's house: her language is
    // detected, Ava (who speaks Spanish) gets the lead, the photo is fetched from the carrier.
    say(
        clock,
        tz,
        &format!(
            "💬 {} texts the 123 Main St line in Spanish, with a photo: \"Hola, vi el letrero de esta casa. ¿Todavía está disponible?\"",
            mask(LUCIA)
        ),
    );
    let photo = fake.add_media(fake.account_sid(), "image/png", HOUSE_PNG.to_vec());
    player
        .inbound_mms(
            &new_message_sid(),
            LUCIA,
            MAIN_ST,
            "Hola, vi el letrero de esta casa. ¿Todavía está disponible?",
            &[(photo, "image/png".to_owned())],
        )
        .await?;
    say(
        clock,
        tz,
        "   her language is detected (Español), the lead goes to Ava (she speaks Spanish), the photo is fetched and shown in the thread; Ava's alert says [photo]",
    );
    pause(3).await;

    // 8. A caller who leaves a voicemail on the 42 Elm St line.
    say(
        clock,
        tz,
        &format!(
            "☎  {} calls the 42 Elm St line; nobody answers, and they leave a voicemail",
            mask(ALEX)
        ),
    );
    let sid = new_call_sid();
    player.incoming_call(&sid, ALEX, ELM_ST).await?;
    player
        .dial_result(&sid, ALEX, ELM_ST, DialResult::no_answer())
        .await?;
    fake.voicemail(
        player,
        &sid,
        ALEX,
        ELM_ST,
        23,
        Some("Hi, this is Alex. I'm calling about 42 Elm Street. Is there an open house this weekend? You can call me back at this number."),
    )
    .await?;
    pause(3).await;
    say(
        clock,
        tz,
        "That was the morning: missed calls became texts, a reconnect cancelled one, a landline became a task, a STOP ended the texts to one number, Sam answered by text from his phone, Ava claimed the open-house lead, a web lead was texted with its consent on record, a Spanish-speaking lead's photo reached Ava, a voicemail waits in the inbox.",
    );
    say(
        clock,
        tz,
        "Press \"Call back\" on a conversation: the fake carrier rings your (fake) phone, presses 1 and connects the lead; the thread shows the call.",
    );
    say(
        clock,
        tz,
        "Log in and try a saved reply in a thread, or set yourself away on your page (\"Me\" in the top bar). Ctrl-C stops the demo.",
    );
    Ok(())
}

async fn missed_call(player: &Player, from: &str, to: &str) -> anyhow::Result<()> {
    let sid = new_call_sid();
    player.incoming_call(&sid, from, to).await?;
    player
        .dial_result(&sid, from, to, DialResult::no_answer())
        .await?;
    Ok(())
}

/// Prints what the database records, as it happens: text-backs and what became of them,
/// deliveries, callback tasks, replies, and the alerts texted to agents.
async fn watch(pool: PgPool, brokerage: BrokerageId, clock: SharedClock, tz: Tz) {
    let (mut last_transition, mut last_task, mut last_delivery, mut last_inbound, mut last_alert) =
        (0, 0, 0, 0, 0);
    loop {
        tokio::time::sleep(StdDuration::from_millis(200)).await;
        let Ok(mut conn) = pool.acquire().await else {
            continue;
        };
        for t in feed::text_back_transitions(&mut conn, brokerage, last_transition)
            .await
            .unwrap_or_default()
        {
            last_transition = t.id;
            let who = t.phone.as_deref().map(mask).unwrap_or_default();
            let line = match (
                t.from_state.as_deref(),
                t.to_state.as_str(),
                t.reason.as_deref(),
            ) {
                (None, "scheduled", _) => format!(
                    "   missed call from {who} → text-back held {} s",
                    (t.run_at - t.at).num_seconds().max(0)
                ),
                (Some("scheduled"), "scheduled", Some("rearmed")) => {
                    format!("   another miss from {who} → the text-back waits again")
                }
                (_, "cancelled", Some(r)) => {
                    format!("   text-back to {who} cancelled: {}", plain(r))
                }
                (_, "skipped", Some(r)) => format!("   no text to {who}: {}", plain(r)),
                (_, "sent", _) => format!(
                    "✉  text-back to {who} accepted by the carrier: \"{}\"",
                    t.body.unwrap_or_default()
                ),
                (_, "dead", r) => {
                    format!("   text-back to {who} failed: {}", r.unwrap_or("unknown"))
                }
                _ => continue,
            };
            say(&clock, tz, &line);
        }
        for task in feed::tasks(&mut conn, brokerage, last_task)
            .await
            .unwrap_or_default()
        {
            last_task = task.id;
            say(
                &clock,
                tz,
                &format!(
                    "☑  callback task for {}: call back {} ({}) about {}",
                    task.agents.unwrap_or_else(|| "the agents".into()),
                    mask(&task.phone),
                    task.detail.unwrap_or_else(|| "cannot take texts".into()),
                    task.listing.unwrap_or_else(|| "their call".into())
                ),
            );
        }
        for (id, to) in feed::deliveries(&mut conn, brokerage, last_delivery)
            .await
            .unwrap_or_default()
        {
            last_delivery = id;
            say(&clock, tz, &format!("   delivered to {}", mask(&to)));
        }
        for (id, from, class) in feed::inbound(&mut conn, brokerage, last_inbound)
            .await
            .unwrap_or_default()
        {
            last_inbound = id;
            let line = match class.as_deref() {
                Some("opt_out") => format!(
                    "   {} opted out: no text will go to this number again, from any office (the carrier confirms it)",
                    mask(&from)
                ),
                _ => format!(
                    "   reply from {} stored in its conversation; pending automation stopped; the agent is alerted",
                    mask(&from)
                ),
            };
            say(&clock, tz, &line);
        }
        for (id, agent, body) in feed::alerts(&mut conn, brokerage, last_alert)
            .await
            .unwrap_or_default()
        {
            last_alert = id;
            say(
                &clock,
                tz,
                &format!("📟 alert texted to {agent}: \"{body}\""),
            );
        }
    }
}

fn plain(reason: &str) -> String {
    match reason {
        "answered_call" => "the caller reconnected and an agent answered".into(),
        "inbound_text" => "the caller wrote first".into(),
        "line_type" => "a landline cannot take texts".into(),
        "opted_out" => "the number opted out".into(),
        other => other.replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_day_starts_at_ten_on_a_weekday() {
        let tz: Tz = "America/New_York".parse().expect("tz");
        let table = [
            ("2026-11-23T03:00:00Z", "2026-11-23T15:00:00Z"), // Sunday evening local → Monday 10:00 EST
            ("2026-11-25T20:00:00Z", "2026-11-25T15:00:00Z"), // Wednesday → the same day, 10:00 EST
            ("2026-11-28T15:00:00Z", "2026-11-30T15:00:00Z"), // Saturday → Monday
            ("2026-07-15T12:00:00Z", "2026-07-15T14:00:00Z"), // summer: 10:00 EDT
        ];
        for (now, start) in table {
            let now = DateTime::parse_from_rfc3339(now)
                .expect("now")
                .with_timezone(&Utc);
            let start = DateTime::parse_from_rfc3339(start)
                .expect("start")
                .with_timezone(&Utc);
            assert_eq!(demo_start(now, tz), start, "{now}");
        }
    }

    #[test]
    fn the_demo_database_sits_beside_database_urls() {
        let ok = [
            (
                "postgres://postgres@localhost:5432/textback",
                "textback_demo",
                "postgres://postgres@localhost:5432/textback_demo",
            ),
            (
                "postgres://postgres@localhost:5432",
                "textback_demo",
                "postgres://postgres@localhost:5432/textback_demo",
            ),
            (
                "postgres://u@db/crm?sslmode=require&dbname=prod",
                "crm_demo",
                "postgres://u@db/crm_demo?sslmode=require",
            ),
            (
                "postgres://u@db/crm?dbname=prod",
                "crm_demo",
                "postgres://u@db/crm_demo",
            ),
        ];
        for (given, name, url) in ok {
            assert_eq!(
                database_beside(given, "demo").ok(),
                Some((name.to_owned(), url.to_owned())),
                "{given}"
            );
        }
        for bad in [
            "postgres://u@db/my-db",
            "postgres://u@db/a%22b",
            "not a url",
        ] {
            assert!(database_beside(bad, "demo").is_err(), "{bad}");
        }
    }
}
