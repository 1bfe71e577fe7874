//! The `textback` command line. Exit codes: 0 ok, 2 bad input (the reason on stderr), 1 anything else.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use textback::clock::SystemClock;
use textback::config::Config;
use textback::setup;
use textback::store::setup::ApplyError;

#[derive(Parser)]
#[command(
    name = "textback",
    version,
    about = "Turns a brokerage's unanswered calls into compliant text conversations.",
    long_about = "Turns a brokerage's unanswered calls into compliant text conversations.\n\n\
                  Configuration comes from the environment: DATABASE_URL, TEXTBACK_BIND, TEXTBACK_PUBLIC_URL, \
                  TEXTBACK_TRUSTED_PROXIES, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_API_BASE, TWILIO_LOOKUP_BASE \
                  (see README.md). Without a command, `serve` runs."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: Twilio webhooks, /healthz, /readyz, /metrics (the default).
    ///
    /// Creates the database if missing and applies migrations first. Requires TWILIO_AUTH_TOKEN.
    Serve,
    /// Create the database if missing and apply the migrations, then exit.
    Migrate,
    /// The demo: a fresh database NAME_demo beside DATABASE_URL's (textback_demo by default)
    /// with the demo brokerage, a fake carrier, and a scripted morning of calls played through
    /// the real webhooks. Needs only PostgreSQL. Ctrl-C stops it.
    Demo,
    /// Brokerage setup files.
    Setup {
        #[command(subcommand)]
        action: SetupAction,
    },
    /// Logins to the inbox and dashboard for the setup file's agents.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// The brokerage's do-not-call list (its suppressions; docs/compliance.md R1).
    Dnc {
        #[command(subcommand)]
        action: DncAction,
    },
    /// Keys to the lead API (`POST /api/v1/leads`; docs/leads.md).
    ApiKey {
        #[command(subcommand)]
        action: ApiKeyAction,
    },
    /// The brokerage's numbers at Twilio.
    Twilio {
        #[command(subcommand)]
        action: TwilioAction,
    },
    /// Check a deployment end to end and say what is wrong in plain words: the database, the
    /// public URL (a signed request to this server through it), and for each brokerage (or
    /// --brokerage) its Twilio credentials and where each number points. Exit 1 when something
    /// is wrong.
    Doctor {
        #[arg(long)]
        brokerage: Option<String>,
    },
}

#[derive(Subcommand)]
enum TwilioAction {
    /// Show how each of the brokerage's numbers must change to point at this server (voice,
    /// call status and SMS URLs, by POST), and with --apply change them through Twilio's
    /// IncomingPhoneNumbers API.
    Connect {
        #[arg(long)]
        brokerage: String,
        /// Make the changes (without it, nothing is changed).
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Subcommand)]
enum ApiKeyAction {
    /// Create a key for the brokerage. The key is printed once, on the last line; only its
    /// hash is kept.
    Create {
        /// The brokerage's slug (its setup file's `[brokerage] slug`).
        #[arg(long)]
        brokerage: String,
        /// What the key is for (`website`, `zillow`): 1 to 60 characters, unique among the
        /// brokerage's live keys.
        #[arg(long)]
        name: String,
    },
    /// List the brokerage's keys: name, prefix, created, last used, revoked.
    List {
        #[arg(long)]
        brokerage: String,
    },
    /// Revoke a key by its name: every request with it is refused (401) from now on.
    Revoke {
        #[arg(long)]
        brokerage: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Give an agent of the brokerage's setup file a login (role and office come from the
    /// file), or set a new password for one who has a login (their sessions end).
    ///
    /// The password is read from standard input (its first line) or, on a terminal, from a
    /// prompt without echo; never from the command line. 8 to 128 characters, not one of the
    /// 3,000 most common passwords.
    Add {
        /// The agent's email, as in the setup file.
        #[arg(long)]
        email: String,
        /// The brokerage's slug (its setup file's `[brokerage] slug`).
        #[arg(long)]
        brokerage: String,
    },
    /// Remove an agent's login; their sessions end at once.
    Remove {
        #[arg(long)]
        email: String,
        #[arg(long)]
        brokerage: String,
    },
}

#[derive(Subcommand)]
enum DncAction {
    /// Add the numbers of a CSV file (`phone,reason,source,at`, header row required) to the
    /// brokerage's suppression list. All or nothing: every rejected row is printed with its
    /// line and nothing is applied (exit 2). Numbers already suppressed are left as they are.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// The brokerage's slug (its setup file's `[brokerage] slug`).
        #[arg(long)]
        brokerage: String,
    },
    /// Print the brokerage's suppression list as CSV on stdout: `phone,reason,source,at,who`.
    Export {
        #[arg(long)]
        brokerage: String,
    },
}

#[derive(Subcommand)]
enum SetupAction {
    /// Validate a setup file and apply it in one transaction (all or nothing).
    ///
    /// Every problem is printed with its line, and nothing is applied (exit 2). Warnings (a
    /// text over 160 characters or with characters outside GSM-7) are printed on stderr with
    /// their line, and the file is applied all the same. Applying the same file twice changes
    /// nothing; an edited file updates in place; what the file no longer lists is deactivated,
    /// its history kept.
    Apply {
        /// The setup file (TOML), e.g. fixtures/demo.toml.
        file: PathBuf,
    },
}

/// A failure caused by the user's input (exit 2) rather than by the environment (exit 1).
#[derive(Debug)]
struct BadInput(String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Demo) => textback::telemetry::init_with_default("warn"),
        _ => textback::telemetry::init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<BadInput>() {
            Some(bad) => {
                eprintln!("{bad}");
                ExitCode::from(2)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

/// The scheduler's timing: production values, or with the `test-hooks` feature (fault tests
/// only, never a release) the short ones when `TEXTBACK_TEST_TIMING=fast`.
fn timing() -> textback::scheduler::Timing {
    #[cfg(feature = "test-hooks")]
    if std::env::var("TEXTBACK_TEST_TIMING").is_ok_and(|v| v == "fast") {
        tracing::warn!("test-hooks: fast timing knobs");
        return textback::scheduler::Timing::fast();
    }
    textback::scheduler::Timing::production()
}

/// The server's clock: the system's, or with the `test-hooks` feature (fault tests only) a
/// clock that reads `TEXTBACK_TEST_CLOCK` (RFC 3339) at start and runs at the normal rate, so
/// a test can restart the server at 23:00 and at 08:00 local (docs/reliability.md F13).
fn clock() -> anyhow::Result<textback::clock::SharedClock> {
    #[cfg(feature = "test-hooks")]
    if let Ok(start) = std::env::var("TEXTBACK_TEST_CLOCK") {
        let start = chrono::DateTime::parse_from_rfc3339(&start)
            .map_err(|e| BadInput(format!("TEXTBACK_TEST_CLOCK: {e}")))?;
        tracing::warn!(%start, "test-hooks: the clock starts at TEXTBACK_TEST_CLOCK");
        return Ok(Arc::new(textback::clock::OffsetClock::starting_at(
            start.with_timezone(&chrono::Utc),
        )));
    }
    Ok(Arc::new(SystemClock))
}

fn config() -> anyhow::Result<Config> {
    Config::from_env().map_err(|e| BadInput(format!("configuration error: {e}")).into())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Migrate => {
            let config = config()?;
            textback::db::prepare(&config.database_url).await?;
            println!("database ready: migrations applied");
            Ok(())
        }
        Command::Setup {
            action: SetupAction::Apply { file },
        } => setup_apply(&file).await,
        Command::Demo => demo().await,
        Command::User {
            action: UserAction::Add { email, brokerage },
        } => user_add(&email, &brokerage).await,
        Command::User {
            action: UserAction::Remove { email, brokerage },
        } => user_remove(&email, &brokerage).await,
        Command::Dnc {
            action: DncAction::Import { file, brokerage },
        } => dnc_import(&file, &brokerage).await,
        Command::Dnc {
            action: DncAction::Export { brokerage },
        } => dnc_export(&brokerage).await,
        Command::ApiKey { action } => api_key(action).await,
        Command::Twilio {
            action: TwilioAction::Connect { brokerage, apply },
        } => twilio_connect(&brokerage, apply).await,
        Command::Doctor { brokerage } => doctor(brokerage.as_deref()).await,
    }
}

/// The app's state for a command that talks to Twilio, with the brokerage `slug`.
async fn state_for(
    slug: Option<&str>,
) -> anyhow::Result<(
    textback::context::AppState,
    Option<textback::store::BrokerageId>,
)> {
    let mut config = config()?;
    // A command is not the server: it never touches the server's spool (README.md "When the
    // database goes away"), only an empty one of its own.
    config.spool_dir = std::env::temp_dir().join(format!("textback-cli-{}", std::process::id()));
    let pool = textback::db::prepare(&config.database_url).await?;
    let brokerage = match slug {
        None => None,
        Some(slug) => {
            let mut conn = pool.acquire().await?;
            match textback::store::brokerages::by_slug(&mut conn, slug).await? {
                Some(b) => Some(b),
                None => {
                    return Err(BadInput(format!(
                        "no brokerage `{slug}` (apply its setup file first)"
                    ))
                    .into());
                }
            }
        }
    };
    let app = textback::build(config, pool, Arc::new(SystemClock))
        .map_err(|e| BadInput(format!("configuration error: {e}")))?;
    Ok((app.state, brokerage))
}

async fn twilio_connect(slug: &str, apply: bool) -> anyhow::Result<()> {
    use textback::connect::{NumberPlan, apply as apply_plan, plan};
    let (state, brokerage) = state_for(Some(slug)).await?;
    let Some(brokerage) = brokerage else {
        return Err(BadInput(format!("no brokerage `{slug}`")).into());
    };
    let (creds, plans) = plan(&state, brokerage).await?;
    let mut missing = 0;
    let mut errors = 0;
    let mut to_change = 0;
    for p in &plans {
        match p {
            NumberPlan::Found {
                e164,
                sid,
                changes,
                trunk,
            } => {
                if changes.is_empty() {
                    println!("{e164} ({sid}): points at this server");
                } else {
                    to_change += 1;
                    println!("{e164} ({sid}):");
                    for c in changes {
                        let from = if c.from.is_empty() {
                            "(empty)"
                        } else {
                            &c.from
                        };
                        let to = if c.to.is_empty() { "(empty)" } else { &c.to };
                        println!("  {}: {from} -> {to}", c.param);
                    }
                }
                if let Some(t) = trunk {
                    println!(
                        "  note: its calls go to SIP trunk {t}, which wins over the voice URL; remove it in Twilio's console"
                    );
                }
            }
            NumberPlan::Missing { e164, account } => {
                missing += 1;
                println!(
                    "{e164}: not a number of account {account}: buy or port it there, or fix the setup file"
                );
            }
            NumberPlan::Error { e164, why } => {
                errors += 1;
                println!("{e164}: {why}");
            }
        }
    }
    if apply && to_change > 0 {
        for (e164, result) in apply_plan(&state, &creds, &plans).await {
            match result {
                None => println!("{e164}: changed"),
                Some(why) => {
                    errors += 1;
                    println!("{e164}: not changed: {why}");
                }
            }
        }
    } else if to_change > 0 {
        println!(
            "{to_change} number(s) to change; nothing was changed. Run again with --apply to change them."
        );
    }
    if missing > 0 {
        return Err(BadInput(format!(
            "{missing} number(s) of the setup file are not in the account"
        ))
        .into());
    }
    if errors > 0 {
        anyhow::bail!("{errors} number(s) could not be read or changed");
    }
    Ok(())
}

async fn doctor(slug: Option<&str>) -> anyhow::Result<()> {
    use textback::connect::{Check, check_brokerage, check_public_url};
    let (state, only) = state_for(slug).await?;
    let mut checks = vec![Check::Ok(
        "the database answers and its migrations are applied".into(),
    )];
    if !state.config.public_url.is_https() {
        checks.push(Check::Note(format!(
            "TEXTBACK_PUBLIC_URL ({}) is not https: Twilio requires https in production",
            state.config.public_url.as_str()
        )));
    }
    let mut conn = state.pool.acquire().await?;
    let brokerages = textback::store::brokerages::all(&mut conn).await?;
    drop(conn);
    let mut first_creds = None;
    for (id, bslug) in &brokerages {
        if only.is_some_and(|o| o != *id) {
            continue;
        }
        if first_creds.is_none() {
            first_creds = state.credentials(*id).await?.ok();
        }
        checks.extend(check_brokerage(&state, *id, bslug).await);
    }
    match &first_creds {
        Some(creds) => checks.insert(1, check_public_url(&state, creds).await),
        None => checks.insert(
            1,
            Check::Fail(
                "no usable Twilio credentials to sign a request to the public URL with".into(),
            ),
        ),
    }
    for c in &checks {
        println!("{}", c.line());
    }
    let failed = checks.iter().filter(|c| c.failed()).count();
    if failed > 0 {
        anyhow::bail!("{failed} problem(s) found");
    }
    println!("all checks passed");
    Ok(())
}

async fn api_key(action: ApiKeyAction) -> anyhow::Result<()> {
    use textback::store::web_leads;
    let slug = match &action {
        ApiKeyAction::Create { brokerage, .. }
        | ApiKeyAction::List { brokerage }
        | ApiKeyAction::Revoke { brokerage, .. } => brokerage.clone(),
    };
    let config = config()?;
    let pool = textback::db::prepare(&config.database_url).await?;
    let mut conn = pool.acquire().await?;
    let Some(brokerage) = textback::store::brokerages::by_slug(&mut conn, &slug).await? else {
        return Err(BadInput(format!(
            "no brokerage `{slug}` (apply its setup file first)"
        ))
        .into());
    };
    let now = textback::clock::Clock::now(&textback::clock::SystemClock);
    match action {
        ApiKeyAction::Create { name, .. } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
                return Err(BadInput(
                    "--name must be 1 to 60 characters without control characters; nothing was created".into(),
                )
                .into());
            }
            let key = textback::context::tokens::new_api_key()?;
            let created =
                web_leads::create_key(&mut conn, brokerage, name, &key.prefix, &key.hash, now)
                    .await?;
            if created.is_none() {
                return Err(BadInput(format!(
                    "`{slug}` has a live key named `{name}` already; revoke it first or choose another name"
                ))
                .into());
            }
            println!(
                "API key `{name}` created for `{slug}`. It is shown only now: keep it where your website's server reads its secrets. Send it as Authorization: Bearer KEY to {}.",
                config.public_url.join("/api/v1/leads")
            );
            println!("{}", key.key);
        }
        ApiKeyAction::List { .. } => {
            let keys = web_leads::list_keys(&mut conn, brokerage).await?;
            if keys.is_empty() {
                println!(
                    "`{slug}` has no API keys (textback api-key create --brokerage {slug} --name NAME)"
                );
            }
            for k in keys {
                let used = k.last_used_at.map_or_else(
                    || "never used".to_owned(),
                    |t| format!("last used {}", t.to_rfc3339()),
                );
                let state = k.revoked_at.map_or_else(
                    || "live".to_owned(),
                    |t| format!("revoked {}", t.to_rfc3339()),
                );
                println!(
                    "{}\t{}…\tcreated {}\t{used}\t{state}",
                    k.name,
                    k.prefix,
                    k.created_at.to_rfc3339()
                );
            }
        }
        ApiKeyAction::Revoke { name, .. } => {
            if !web_leads::revoke_key(&mut conn, brokerage, name.trim(), now).await? {
                return Err(
                    BadInput(format!("`{slug}` has no live key named `{}`", name.trim())).into(),
                );
            }
            println!(
                "API key `{}` of `{slug}` revoked: requests with it are refused from now on",
                name.trim()
            );
        }
    }
    Ok(())
}

#[cfg(feature = "demo")]
async fn demo() -> anyhow::Result<()> {
    textback::demo::run().await
}

/// A server built with `--no-default-features` has no fake carrier to play the demo with.
#[cfg(not(feature = "demo"))]
async fn demo() -> anyhow::Result<()> {
    Err(BadInput(
        "this binary was built without the demo (cargo build --no-default-features); build it with the default features to run `textback demo`".to_owned(),
    )
    .into())
}

async fn serve() -> anyhow::Result<()> {
    let config = config()?;
    config
        .require_auth_token()
        .map_err(|e| BadInput(format!("configuration error: {e}")))?;
    let bind = config.bind;
    if !config.public_url.is_https() {
        if bind.ip().is_loopback() {
            tracing::warn!(
                public_url = config.public_url.as_str(),
                "TEXTBACK_PUBLIC_URL is plain http: fine on loopback (the session cookie is tb_session, not Secure), but Twilio requires https in production"
            );
        } else {
            tracing::warn!(
                public_url = config.public_url.as_str(),
                %bind,
                "TEXTBACK_PUBLIC_URL is plain http and the server listens beyond loopback: logins and sessions travel unencrypted; put it behind https"
            );
        }
    }
    if config.twilio.account_sid.is_none() {
        tracing::warn!(
            "TWILIO_ACCOUNT_SID is not set: webhooks are accepted, but nothing can be sent through Twilio's REST API"
        );
    }
    // The compliance gate's reference data is compiled in; refuse to serve without it rather
    // than fail closed on every text.
    textback::domain::zones::check()
        .map_err(|e| anyhow::anyhow!("fixtures/nanp_tz.tsv does not load: {e}"))?;
    if let Err(e) = textback::domain::quiet_hours::profiles() {
        anyhow::bail!("fixtures/state_windows.toml does not load: {e}");
    }
    let pool = textback::db::prepare(&config.database_url).await?;
    let app = textback::build_with(config, pool, clock()?, timing())
        .map_err(|e| BadInput(format!("configuration error: {e}")))?;
    // A brokerage on its own account whose secrets this process cannot read gets no webhook
    // and sends nothing: say so now rather than at the first missed call.
    for (slug, why) in app.state.unreadable_accounts().await? {
        tracing::error!(brokerage = %slug, %why, "a brokerage's Twilio account is not usable by this server");
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (TEXTBACK_BIND)"))?;
    tracing::info!(%bind, public_url = app.state.config.public_url.as_str(), "textback is serving");
    textback::run(listener, app, textback::shutdown_signal())
        .await
        .context("the server stopped with an error")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn setup_apply(path: &std::path::Path) -> anyhow::Result<()> {
    let shown = path.display().to_string();
    let bytes = read_limited(path).map_err(|e| BadInput(format!("{shown}: {e}")))?;
    let file = setup::parse_bytes(&bytes)
        .map_err(|problems| BadInput(render_problems(&shown, &problems)))?;
    // Warnings (docs/compliance.md R10: long or non-GSM-7 texts) do not stop the apply.
    if !file.warnings.is_empty() {
        eprintln!("{}", render_warnings(&shown, &file.warnings));
    }
    // The server reads the brokerage's secrets where `[twilio]` says; this command may run
    // elsewhere, so a secret it cannot read here is worth a note, not a refusal.
    if let Some(account) = &file.twilio {
        let env: textback::twilio::credentials::Env =
            std::sync::Arc::new(|k: &str| std::env::var(k).ok());
        use textback::twilio::credentials::{read_keys, read_secret};
        let token = read_secret(&account.auth_token, &env).err();
        let keys = account
            .webhook_keys
            .as_ref()
            .and_then(|k| read_keys(k, &env).err());
        for (what, why) in [("auth token", token), ("webhook keys", keys)] {
            if let Some(why) = why {
                eprintln!(
                    "{shown}: note: the {what} of account {} cannot be read here ({why}); the server that serves this brokerage must have it",
                    account.account_sid
                );
            }
        }
    }
    let config = config()?;
    let pool = textback::db::prepare(&config.database_url).await?;
    match textback::store::setup::apply(&pool, &file).await {
        Ok(summary) if summary.is_unchanged() => {
            println!(
                "{shown}: no changes (the database already matches brokerage `{}`)",
                file.brokerage.slug
            );
            Ok(())
        }
        Ok(summary) => {
            println!("{shown}: applied to brokerage `{}`", file.brokerage.slug);
            for change in &summary.changes {
                println!("  {change}");
            }
            Ok(())
        }
        Err(ApplyError::Problems(problems)) => {
            Err(BadInput(render_problems(&shown, &problems)).into())
        }
        Err(ApplyError::Store(e)) => {
            Err(anyhow::Error::new(e)
                .context("could not apply the setup file; nothing was changed"))
        }
    }
}

/// The password for `user add`: a prompt without echo (twice) on a terminal, else the first
/// line of standard input (its line ending removed, nothing else: spaces count).
fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead as _, IsTerminal as _, Read as _};
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password (8-128 characters): ")?;
        let again = rpassword::prompt_password("The same password again: ")?;
        if first != again {
            return Err(BadInput("the two passwords differ; nothing was changed".into()).into());
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(64 * 1024)
        .read_line(&mut line)
        .map_err(|e| BadInput(format!("cannot read the password from standard input: {e}")))?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(line.to_owned())
}

async fn user_add(email: &str, slug: &str) -> anyhow::Result<()> {
    let email = email.trim().to_lowercase();
    let config = config()?;
    let pool = textback::db::prepare(&config.database_url).await?;
    let mut conn = pool.acquire().await?;
    let Some(brokerage) = textback::store::brokerages::by_slug(&mut conn, slug).await? else {
        return Err(BadInput(format!(
            "no brokerage `{slug}` (apply its setup file first)"
        ))
        .into());
    };
    let Some(agent) = textback::store::users::agent_by_email(&mut conn, brokerage, &email).await?
    else {
        return Err(BadInput(format!(
            "{email} is not an agent of `{slug}`'s setup file; add them under [[agents]] and apply it first"
        ))
        .into());
    };
    if !agent.is_active {
        return Err(BadInput(format!(
            "{email} was removed from `{slug}`'s setup file; list them again and apply it first"
        ))
        .into());
    }
    if let Some(other) = textback::store::users::login_brokerage(&mut conn, &email).await?
        && other != slug
    {
        return Err(BadInput(format!(
            "{email} already has a login in brokerage `{other}`; one email logs in to one brokerage"
        ))
        .into());
    }
    drop(conn);
    let password = read_password()?;
    textback::domain::password::check(&password)
        .map_err(|e| BadInput(format!("{e}; nothing was changed")))?;
    let hash = tokio::task::spawn_blocking(move || textback::http::auth::hash_password(&password))
        .await??;
    let clock = textback::clock::SystemClock;
    let now = textback::clock::Clock::now(&clock);
    let mut conn = pool.acquire().await?;
    let created =
        textback::store::users::set_login(&mut conn, brokerage, agent.agent_id, &email, &hash, now)
            .await?;
    if created {
        println!(
            "{email} can now log in to `{slug}` as {} ({}).",
            agent.name, agent.role
        );
    } else {
        println!("{email}'s password was changed; their open sessions were ended.");
    }
    Ok(())
}

async fn user_remove(email: &str, slug: &str) -> anyhow::Result<()> {
    let email = email.trim().to_lowercase();
    let config = config()?;
    let pool = textback::db::prepare(&config.database_url).await?;
    let mut conn = pool.acquire().await?;
    let Some(brokerage) = textback::store::brokerages::by_slug(&mut conn, slug).await? else {
        return Err(BadInput(format!("no brokerage `{slug}`")).into());
    };
    if !textback::store::users::remove_login(&mut conn, brokerage, &email).await? {
        return Err(BadInput(format!("{email} has no login in `{slug}`")).into());
    }
    println!("{email}'s login was removed and their sessions ended.");
    Ok(())
}

/// The most a DNC file may hold (the row limit, with room for long reasons).
const MAX_DNC_BYTES: u64 = 32 * 1024 * 1024;

async fn dnc_import(path: &std::path::Path, slug: &str) -> anyhow::Result<()> {
    use std::io::Read as _;
    let shown = path.display().to_string();
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_DNC_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| BadInput(format!("{shown}: {e}")))?;
    if bytes.len() as u64 > MAX_DNC_BYTES {
        return Err(BadInput(format!("{shown}: larger than 32 MiB; split the file")).into());
    }
    let text =
        String::from_utf8(bytes).map_err(|_| BadInput(format!("{shown}: not valid UTF-8")))?;
    let clock = textback::clock::SystemClock;
    let now = textback::clock::Clock::now(&clock);
    let rows = textback::domain::dnc::parse(&text, now).map_err(|rejected| {
        let mut out = format!(
            "{shown}: {} row{} rejected; nothing was imported:",
            rejected.len(),
            if rejected.len() == 1 { "" } else { "s" }
        );
        for r in &rejected {
            out.push_str(&format!("\n  {shown}:{}", r));
        }
        BadInput(out)
    })?;
    let config = config()?;
    let pool = textback::db::prepare(&config.database_url).await?;
    let mut tx = pool.begin().await?;
    let Some(brokerage) = textback::store::brokerages::by_slug(&mut tx, slug).await? else {
        return Err(BadInput(format!(
            "no brokerage `{slug}` (apply its setup file first)"
        ))
        .into());
    };
    let name = path
        .file_name()
        .map_or_else(|| shown.clone(), |n| n.to_string_lossy().into_owned());
    let (added, already) =
        textback::store::suppressions::import(&mut tx, brokerage, &rows, &name, now).await?;
    tx.commit().await?;
    println!(
        "{shown}: {added} number{} added to `{slug}`'s do-not-call list; {already} already on it",
        if added == 1 { "" } else { "s" }
    );
    Ok(())
}

async fn dnc_export(slug: &str) -> anyhow::Result<()> {
    let config = config()?;
    let pool = textback::db::prepare(&config.database_url).await?;
    let mut conn = pool.acquire().await?;
    let Some(brokerage) = textback::store::brokerages::by_slug(&mut conn, slug).await? else {
        return Err(BadInput(format!("no brokerage `{slug}`")).into());
    };
    let list = textback::store::suppressions::list(&mut conn, brokerage).await?;
    let rules = textback::store::gate::brokerage_rules(&mut conn, brokerage).await?;
    let tz: chrono_tz::Tz = rules.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let csv = textback::domain::dnc::export(list.iter().map(|s| s.exported()), false, tz)?;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(&csv)?;
    out.flush()?;
    Ok(())
}

/// Reads at most the setup-file limit (plus one byte, to tell that the file is larger).
fn read_limited(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(setup::MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn render_problems(file: &str, problems: &[setup::Problem]) -> String {
    let head = format!(
        "{file}: {} problem{} found; nothing was applied:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    render_list(file, head, problems)
}

fn render_warnings(file: &str, warnings: &[setup::Problem]) -> String {
    let head = format!(
        "{file}: {} warning{}; the file is applied all the same:",
        warnings.len(),
        if warnings.len() == 1 { "" } else { "s" }
    );
    render_list(file, head, warnings)
}

/// `head`, then one `FILE:LINE: KEY: MESSAGE` line per item.
fn render_list(file: &str, head: String, problems: &[setup::Problem]) -> String {
    let mut out = head + "\n";
    for p in problems {
        match p.line {
            0 => out.push_str(&format!("  {file}: {}\n", render_problem_body(p))),
            line => out.push_str(&format!("  {file}:{line}: {}\n", render_problem_body(p))),
        }
    }
    out.trim_end().to_owned()
}

fn render_problem_body(p: &setup::Problem) -> String {
    if p.key.is_empty() {
        p.message.clone()
    } else {
        format!("{}: {}", p.key, p.message)
    }
}
