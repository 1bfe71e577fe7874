//! The `textback` binary: help, exit codes, configuration errors, `migrate`, `setup apply`
//! from the command line, and `serve` end to end (logs masked, graceful SIGTERM).

use std::io::Read as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

pub(crate) fn textback() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_textback"));
    // A clean environment: only what each test sets.
    for var in [
        "DATABASE_URL",
        "TEXTBACK_BIND",
        "TEXTBACK_PUBLIC_URL",
        "TEXTBACK_TRUSTED_PROXIES",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_API_BASE",
        "TWILIO_LOOKUP_BASE",
        "TWILIO_MESSAGING_BASE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "info");
    cmd
}

pub(crate) fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("the binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

pub(crate) fn write_temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "textback-cli-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

#[test]
fn help_lists_the_commands() {
    let (code, out, _) = run(textback().arg("--help"));
    assert_eq!(code, 0);
    for cmd in ["serve", "migrate", "setup"] {
        assert!(out.contains(cmd), "{cmd} in {out}");
    }
    for args in [
        &["serve", "--help"][..],
        &["migrate", "--help"],
        &["setup", "--help"],
        &["setup", "apply", "--help"],
    ] {
        let (code, out, _) = run(textback().args(args));
        assert_eq!(code, 0, "{args:?}");
        assert!(!out.is_empty());
    }
    let (code, _, err) = run(textback().arg("frobnicate"));
    assert_eq!(code, 2, "an unknown command is bad input: {err}");
}

#[test]
fn serve_without_an_auth_token_exits_2_naming_it() {
    let (code, _, err) = run(textback().arg("serve"));
    assert_eq!(code, 2);
    assert!(err.contains("TWILIO_AUTH_TOKEN"), "{err}");
    let (code, _, err) = run(&mut textback());
    assert_eq!(code, 2, "serve is the default");
    assert!(err.contains("TWILIO_AUTH_TOKEN"), "{err}");
}

#[test]
fn malformed_configuration_exits_2_naming_the_variable() {
    for (var, value) in [
        ("TEXTBACK_BIND", "nowhere"),
        ("TEXTBACK_PUBLIC_URL", "ftp://x"),
        ("DATABASE_URL", "mysql://x/y"),
        ("TWILIO_ACCOUNT_SID", "nope"),
    ] {
        let (code, _, err) = run(textback()
            .arg("serve")
            .env("TWILIO_AUTH_TOKEN", TOKEN)
            .env(var, value));
        assert_eq!(code, 2, "{var}={value}");
        assert!(err.contains(var), "{var} named in: {err}");
    }
}

#[tokio::test]
async fn migrate_creates_the_database() {
    let name = format!(
        "tbtest_{}_cli_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let url = format!("{}/{name}", pg_server());
    let (code, out, err) = run(textback().arg("migrate").env("DATABASE_URL", &url));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("migrations applied"));
    let pool = sqlx::PgPool::connect(&url)
        .await
        .expect("the database exists");
    let tables: i64 = sqlx::query_scalar("select count(*) from information_schema.tables where table_name in ('brokerage', 'call', 'message', 'job')")
        .fetch_one(&pool)
        .await
        .expect("tables");
    assert_eq!(tables, 4);
    pool.close().await;
    let (code, _, _) = run(textback().arg("migrate").env("DATABASE_URL", &url));
    assert_eq!(code, 0, "migrating twice is fine");
    let admin = sqlx::PgPool::connect(&format!("{}/postgres", pg_server()))
        .await
        .expect("admin");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database \"{name}\" with (force)"
    )))
    .execute(&admin)
    .await
    .expect("drop");
}

#[tokio::test]
async fn setup_apply_reports_every_problem_with_its_line_and_applies_nothing() {
    let db = TestDb::new().await;
    let bad = DEMO
        .replace("phone = \"+15555550101\"", "phone = \"+1555\"")
        .replace("{agent_first_name}", "{agent_firstname}")
        .replace("delay_secs = 20", "delay_secs = 3601")
        .replace(
            "ring = [\"jo@harbor.example\"]",
            "ring = [\"nobody@harbor.example\"]",
        );
    let path = write_temp("bad.toml", bad.as_bytes());
    let before = snapshot(&db.pool).await;
    let (code, out, err) = run(textback()
        .args(["setup", "apply"])
        .arg(&path)
        .env("DATABASE_URL", &db.url));
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    let shown = path.display().to_string();
    assert!(
        err.contains("7 problems found; nothing was applied"),
        "{err}"
    );
    for (line, text) in [
        (21, "[[agents]] #1 phone"),
        (67, "[[numbers]] #2 ring"),
        (70, "[text_back] delay_secs"),
        (74, "unknown field `{agent_firstname}`"),
        (76, "[text_back] template_es"),
        (80, "[[follow_ups]] #1 template"),
        (81, "[[follow_ups]] #1 template_es"),
    ] {
        assert!(
            err.contains(&format!("{shown}:{line}: ")) && err.contains(text),
            "{shown}:{line} {text} in:\n{err}"
        );
    }
    assert_eq!(snapshot(&db.pool).await, before);
}

/// Issue 15 §11: a `\u0000` escape in a string exited 1 with PostgreSQL's error; it is a
/// problem of the file like any other (exit 2, its line), and nothing is applied.
#[tokio::test]
async fn setup_apply_refuses_a_control_character_with_its_line() {
    let db = TestDb::new().await;
    let bad = DEMO
        .replace("name = \"Sam Rivera\"", "name = \"Sam\\u0000Rivera\"")
        .replace(
            "listing = \"123 Main St\"",
            "listing = \"123 Main\\u001bSt\"",
        );
    assert_ne!(bad, DEMO);
    let path = write_temp("nul.toml", bad.as_bytes());
    let before = snapshot(&db.pool).await;
    let (code, out, err) = run(textback()
        .args(["setup", "apply"])
        .arg(&path)
        .env("DATABASE_URL", &db.url));
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    let shown = path.display().to_string();
    for (line, text) in [
        (20, "[[agents]] #1 name: holds a control character (U+0000)"),
        (
            57,
            "[[numbers]] #1 listing: holds a control character (U+001B)",
        ),
    ] {
        assert!(
            err.contains(&format!("{shown}:{line}: {text}")),
            "{shown}:{line} {text} in:\n{err}"
        );
    }
    assert_eq!(snapshot(&db.pool).await, before);
}

/// Issue 15 §6: a brokerage on its own Twilio account. The file names where the server reads
/// the token, never the token; `setup apply` stores only that, and notes a secret it cannot
/// read in its own environment (the server may run elsewhere) without refusing the file.
#[tokio::test]
async fn setup_apply_stores_where_a_subaccounts_token_is_never_the_token() {
    let db = TestDb::new().await;
    let file = format!(
        "{DEMO}\n[twilio]\naccount_sid = \"AC0b5ce0b5ce0b5ce0b5ce0b5ce0b5ce01\"\nauth_token_env = \"HARBOR_TWILIO_AUTH_TOKEN_FOR_THIS_TEST\"\n"
    );
    let path = write_temp("subaccount.toml", file.as_bytes());
    let (code, _out, err) = run(textback()
        .args(["setup", "apply"])
        .arg(&path)
        .env("DATABASE_URL", &db.url)
        .env_remove("HARBOR_TWILIO_AUTH_TOKEN_FOR_THIS_TEST"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("note: the auth token of account AC0b5ce0b5ce0b5ce0b5ce0b5ce0b5ce01 cannot be read here (HARBOR_TWILIO_AUTH_TOKEN_FOR_THIS_TEST is not set)"),
        "{err}"
    );
    let (sid, secrets): (Option<String>, Option<serde_json::Value>) =
        sqlx::query_as("select twilio_account_sid, twilio_secrets from brokerage")
            .fetch_one(&db.pool)
            .await
            .expect("brokerage");
    assert_eq!(sid.as_deref(), Some("AC0b5ce0b5ce0b5ce0b5ce0b5ce0b5ce01"));
    assert_eq!(
        secrets.map(|s| s["auth_token"].clone()),
        Some(serde_json::json!({ "env": "HARBOR_TWILIO_AUTH_TOKEN_FOR_THIS_TEST" }))
    );
    // With the variable set, no note.
    let (code, _out, err) = run(textback()
        .args(["setup", "apply"])
        .arg(&path)
        .env("DATABASE_URL", &db.url)
        .env("HARBOR_TWILIO_AUTH_TOKEN_FOR_THIS_TEST", "5b5b5b"));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("cannot be read here"), "{err}");
}

/// Issue 15 §16: with `DATABASE_URL` on a dead port the demo named the maintenance database
/// instead of the person's URL, and a wrong role was "PostgreSQL must be running". Each error
/// now says what is wrong, names the URL given, and what to do.
#[tokio::test]
async fn database_errors_name_the_url_given_and_what_is_wrong() {
    let dead = format!("postgres://postgres@127.0.0.1:{}/textback", {
        // A port nothing listens on: bound, then released.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    });
    let server = pg_server();
    let host_port = server
        .trim_start_matches("postgres://")
        .split('@')
        .nth(1)
        .unwrap_or("localhost:5432")
        .to_owned();
    let wrong_role = format!("postgres://nosuchrole_tb@{host_port}/textback");
    for (url, expected) in [
        (dead.as_str(), "nothing answers at 127.0.0.1:"),
        (
            wrong_role.as_str(),
            "refused the login of role `nosuchrole_tb`",
        ),
    ] {
        for command in [&["migrate"][..], &["demo"][..]] {
            let (code, _out, err) = run(textback()
                .args(command)
                .env("DATABASE_URL", url)
                .env("TEXTBACK_BIND", "127.0.0.1:0")
                .env("TEXTBACK_SPOOL_DIR", spool_dir()));
            assert_eq!(code, 1, "{command:?} {url}: {err}");
            assert!(err.contains(expected), "{command:?} {url}: {err}");
            assert!(err.contains(url), "names the URL given: {err}");
            assert!(
                !err.contains(&url.replace("/textback", "/postgres")),
                "not the maintenance database: {err}"
            );
            assert!(!err.contains("must be running"), "{err}");
        }
    }
}

/// docs/compliance.md R10: a text-back that does not name the brokerage fails apply, changing nothing.
#[tokio::test]
async fn setup_apply_refuses_a_template_without_the_brokerage() {
    let db = TestDb::new().await;
    let bad = DEMO.replace(" at {brokerage}. Sorry", ". Sorry");
    assert_ne!(bad, DEMO);
    let path = write_temp("anonymous.toml", bad.as_bytes());
    let before = snapshot(&db.pool).await;
    let (code, out, err) = run(textback()
        .args(["setup", "apply"])
        .arg(&path)
        .env("DATABASE_URL", &db.url));
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    let shown = path.display().to_string();
    assert!(
        err.contains("1 problem found; nothing was applied")
            && err.contains(&format!(
                "{shown}:74: [text_back] template: names neither `{{brokerage}}` nor `Harbor Realty`"
            )),
        "{err}"
    );
    assert_eq!(snapshot(&db.pool).await, before);
}

/// docs/compliance.md R10: a non-GSM-7 character warns on stderr, with line and key; the file applies.
#[tokio::test]
async fn setup_apply_prints_warnings_and_applies() {
    let db = TestDb::new().await;
    let curly = DEMO.replace(
        "Sorry we missed your call",
        "We’re sorry we missed your call",
    );
    assert_ne!(curly, DEMO);
    let path = write_temp("curly.toml", curly.as_bytes());
    let (code, out, err) = run(textback()
        .args(["setup", "apply"])
        .arg(&path)
        .env("DATABASE_URL", &db.url));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("applied to brokerage `harbor`"), "{out}");
    let shown = path.display().to_string();
    assert!(
        err.contains(&format!(
            "{shown}: 1 warning; the file is applied all the same:"
        )) && err.contains(&format!(
            "{shown}:74: [text_back] template: renders with a character outside GSM-7: `’` (U+2019)"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn setup_apply_refuses_files_that_are_not_setup_files() {
    let db = TestDb::new().await;
    let huge = vec![b'#'; 5 * 1024 * 1024];
    let mut non_utf8 = DEMO.as_bytes().to_vec();
    non_utf8.extend_from_slice(b"\n# caf\xe9\n");
    let duplicate = DEMO.replace(
        "name = \"Harbor Realty\"",
        "name = \"Harbor Realty\"\nname = \"Harbour\"",
    );
    for (name, bytes, expect) in [
        ("huge.toml", huge, "larger than 1 MiB"),
        ("latin1.toml", non_utf8, "not valid UTF-8"),
        ("dup.toml", duplicate.into_bytes(), "TOML:"),
    ] {
        let path = write_temp(name, &bytes);
        let (code, _, err) = run(textback()
            .args(["setup", "apply"])
            .arg(&path)
            .env("DATABASE_URL", &db.url));
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
    }
    let (code, _, err) = run(textback()
        .args(["setup", "apply", "/nonexistent/setup.toml"])
        .env("DATABASE_URL", &db.url));
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/setup.toml"), "{err}");
    assert_eq!(
        snapshot(&db.pool).await.iter().map(|t| t.1).sum::<i64>(),
        0,
        "nothing applied"
    );
}

#[tokio::test]
async fn setup_apply_twice_reports_no_changes_the_second_time() {
    let db = TestDb::new().await;
    let demo = format!("{}/fixtures/demo.toml", env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = run(textback()
        .args(["setup", "apply", &demo])
        .env("DATABASE_URL", &db.url));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("applied to brokerage `harbor`")
            && out.contains("agent sam@harbor.example: created"),
        "{out}"
    );
    let before = snapshot(&db.pool).await;
    let (code, out, _) = run(textback()
        .args(["setup", "apply", &demo])
        .env("DATABASE_URL", &db.url));
    assert_eq!(code, 0);
    assert!(out.contains("no changes"), "{out}");
    assert_eq!(snapshot(&db.pool).await, before);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `serve` as an operator runs it: logs carry masked numbers only, never the token, a
/// signature or a message body (docs/security.md §2 "logs"), and SIGTERM stops it cleanly.
#[tokio::test]
async fn serve_logs_masked_numbers_and_stops_cleanly_on_sigterm() {
    let db = TestDb::new().await;
    apply_setup(&db.pool, DEMO).await;
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let mut child = textback()
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("TEXTBACK_BIND", format!("127.0.0.1:{port}"))
        .env("TEXTBACK_SPOOL_DIR", spool_dir())
        .env("TEXTBACK_PUBLIC_URL", &public)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    // Read the logs as they come: a full pipe would block the server's writes.
    let mut stderr = child.stderr.take().expect("stderr");
    let logs = std::thread::spawn(move || {
        let mut logs = String::new();
        stderr.read_to_string(&mut logs).map(|_| logs)
    });
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{public}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let post = |path: &'static str, params: Vec<(String, String)>| {
        let http = http.clone();
        let url = format!("{public}{path}");
        let sig = textback::twilio::signature::compute(TOKEN.as_bytes(), &url, &params);
        async move {
            http.post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-twilio-signature", sig)
                .body(textback::twilio::form::encode(&params))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post("/twilio/voice", fixture("voice-incoming.txt")).await,
        200
    );
    assert_eq!(
        post(
            "/twilio/voice/dial",
            fixture("voice-dial-action-no-answer.txt")
        )
        .await,
        200
    );
    assert_eq!(
        post("/twilio/sms", fixture("sms-inbound-reply.txt")).await,
        200
    );
    assert_eq!(
        post(
            "/twilio/sms",
            with(fixture("sms-inbound-reply.txt"), "To", "+15555550999")
        )
        .await,
        200
    );
    let forged = http
        .post(format!("{public}/twilio/voice"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", "Zm9yZ2VkIHNpZ25hdHVyZQ==")
        .body("From=%2B16175550123")
        .send()
        .await
        .expect("request");
    assert_eq!(forged.status().as_u16(), 403);

    // The people's pages on the served binary: a failed login, then an admin's day's work.
    // Their logs carry the login's id, never an email, name, note, reply or token.
    add_login(&db.pool, "harbor", "riley@harbor.example", PASSWORD).await;
    let failed = try_login_at(&public, "nobody@secret.example", "wrong horse battery").await;
    assert_eq!(failed.status, 401);
    let mut riley = log_in_at(&public, "riley@harbor.example", PASSWORD).await;
    let c: i64 = sqlx::query_scalar("select conversation_id from conversation")
        .fetch_one(&db.pool)
        .await
        .expect("the reply's conversation");
    assert_eq!(riley.get(&format!("/inbox/c/{c}")).await.status, 200);
    let session = riley
        .cookie
        .split('=')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let csrf = riley.csrf.clone();
    for (path, form) in [
        ("note", vec![("body", "Secret note about the kiwi orchard")]),
        ("name", vec![("name", "Zebedee Quux")]),
        (
            "reply",
            vec![("body", "Secret reply about the mango house")],
        ),
        ("close", vec![]),
    ] {
        let r = riley.post(&format!("/inbox/c/{c}/{path}"), &form).await;
        assert_eq!(r.status, 303, "{path}: {}", r.body);
    }
    assert_eq!(riley.post("/logout", &[]).await.status, 303);

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "a clean stop exits 0: {status:?}");

    let logs = logs.join().expect("the log reader").expect("logs");
    assert!(
        logs.contains("+1617***0123"),
        "numbers appear masked:\n{logs}"
    );
    assert!(logs.contains("stopped cleanly"), "{logs}");
    for line in [
        "login failed",
        "logged in",
        "note added",
        "contact name set",
        "conversation closed or reopened",
        "agent reply queued",
        "logged out",
    ] {
        assert!(logs.contains(line), "{line:?} is logged:\n{logs}");
    }
    assert!(
        logs.contains("rejected a webhook with a missing or invalid X-Twilio-Signature"),
        "{logs}"
    );
    for secret in [
        "+16175550123",
        "16175550123",
        "+15555550999",
        TOKEN,
        "Zm9yZ2VkIHNpZ25hdHVyZQ==",
        "Is the 3 bed on Main St",
        "3+bed",
        "nobody@secret.example",
        "riley@harbor.example",
        "wrong horse battery",
        PASSWORD,
        "kiwi orchard",
        "Zebedee",
        "mango house",
        session.as_str(),
        csrf.as_str(),
    ] {
        assert!(
            !logs.contains(secret),
            "{secret:?} leaked into the logs:\n{logs}"
        );
    }
}

/// `textback demo` as a newcomer runs it: missed calls become texts, a reconnect cancels one,
/// a landline becomes a task, a reply lands; Ctrl-C stops it cleanly.
#[tokio::test]
async fn the_demo_plays_its_morning_and_stops_on_ctrl_c() {
    use std::io::BufRead as _;
    let port = free_port();
    // Its own database (the demo uses NAME_demo), so a demo you run meanwhile is not disturbed;
    // the tbtest_PID_ prefix lets a later run clear it if this one crashes.
    let name = format!(
        "tbtest_{}_demo{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let mut child = textback()
        .arg("demo")
        .env("TEXTBACK_BIND", format!("127.0.0.1:{port}"))
        .env("TEXTBACK_SPOOL_DIR", spool_dir())
        .env("DATABASE_URL", format!("{}/{name}", pg_server()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("demo starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !seen
        .iter()
        .any(|l: &String| l.contains("That was the morning"))
    {
        assert!(
            Instant::now() < deadline,
            "the demo did not finish its morning:\n{}",
            seen.join("\n")
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(line);
        }
    }
    let output = seen.join("\n");
    for expected in [
        "10:00:0",
        "missed call from +1617***0123 → text-back held 20 s",
        "text-back to +1617***0123 accepted by the carrier: \"Hi there, this is Sam at Harbor Realty.",
        "delivered to +1617***0123",
        "text-back to +1617***0126 cancelled: the caller reconnected",
        "callback task for Sam and Ava: call back +1617***0124 (landline) about 123 Main St",
        "reply from +1617***0123 stored in its conversation",
        "/login to watch the inbox and the dashboard",
        "morgan@harbor.example",
        "riley@harbor.example",
        "📟 alert texted to Sam: \"Harbor Realty #3: call back +1617***0124 (landline) about 123 Main St.",
        "📟 alert texted to Sam: \"Harbor Realty #1: +1617***0123 replied about 123 Main St:",
        "+1617***0127 opted out: no text will go to this number again",
        // Routing and agents on their phones: a reply texted by Sam reaches the lead, Ava claims
        // the open-house lead and Sam hears who did.
        "relayed to +1617***0123 from the 123 Main St line",
        "new lead +1617***0129 about 7 Harbor Way, offered to you and others.",
        "📟 alert texted to Sam: \"Harbor Realty: #9 +1617***0129 was claimed by Ava Chen.\"",
        "📟 alert texted to Ava: \"Harbor Realty: #9 +1617***0129 is yours. Reply here to text them.\"",
    ] {
        assert!(output.contains(expected), "{expected:?} not in:\n{output}");
    }
    assert!(
        !output.contains("+16175550123"),
        "numbers are shown masked:\n{output}"
    );
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let _ = Command::new("psql")
        .args([
            &format!("{}/postgres", pg_server()),
            "-qc",
            &format!("drop database if exists \"{name}_demo\" with (force)"),
        ])
        .status();
}

/// `textback user add` with `password` on standard input.
fn user_add(db: &TestDb, email: &str, slug: &str, password: &str) -> (i32, String, String) {
    use std::io::Write as _;
    let mut child = textback()
        .args(["user", "add", "--email", email, "--brokerage", slug])
        .env("DATABASE_URL", &db.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("user add starts");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{password}\n").as_bytes());
    }
    let out = child.wait_with_output().expect("user add ends");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// docs/security.md §2 password policy and README.md "The command line": an agent of the setup file, a
/// password from stdin checked for length and against the common list, argon2id.
#[tokio::test]
async fn user_add_gives_an_agent_of_the_file_a_login() {
    let db = TestDb::new().await;
    apply_setup(&db.pool, DEMO).await;
    apply_setup(&db.pool, OTHER_BROKERAGE).await;
    let refused = [
        (
            "sam@harbor.example",
            "harbor",
            "short12",
            "at least 8 characters",
        ),
        (
            "sam@harbor.example",
            "harbor",
            "baseball",
            "most common passwords",
        ),
        (
            "sam@harbor.example",
            "harbor",
            "Password1",
            "most common passwords",
        ),
        (
            "sam@harbor.example",
            "harbor",
            &"x".repeat(129),
            "at most 128 characters",
        ),
        (
            "nobody@harbor.example",
            "harbor",
            "a fine password",
            "not an agent of `harbor`",
        ),
        (
            "sam@harbor.example",
            "nowhere",
            "a fine password",
            "no brokerage `nowhere`",
        ),
        (
            "lee@bayside.example",
            "harbor",
            "a fine password",
            "not an agent of `harbor`",
        ),
    ];
    for (email, slug, password, why) in refused {
        let (code, _, err) = user_add(&db, email, slug, password);
        assert_eq!(code, 2, "{email} {password:?}: {err}");
        assert!(err.contains(why), "{why} in {err}");
    }
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from app_user")
            .fetch_one(&db.pool)
            .await
            .expect("count"),
        0,
        "nothing was created"
    );
    let (code, out, err) = user_add(&db, "Sam@Harbor.example", "harbor", &"p".repeat(128));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("sam@harbor.example can now log in to `harbor` as Sam Rivera (agent)"),
        "{out}"
    );
    let hash: String =
        sqlx::query_scalar("select password_hash from app_user where email = 'sam@harbor.example'")
            .fetch_one(&db.pool)
            .await
            .expect("hash");
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    // Again: a new password, and the old sessions end.
    sqlx::query(
        "insert into user_session (session_hash, user_id, csrf_token, created_at, last_seen_at)
         select sha256('x'::bytea), user_id, repeat('c', 43), now(), now() from app_user",
    )
    .execute(&db.pool)
    .await
    .expect("a session");
    let (code, out, _) = user_add(&db, "sam@harbor.example", "harbor", "a new fine password");
    assert_eq!(code, 0);
    assert!(
        out.contains("password was changed; their open sessions were ended"),
        "{out}"
    );
    let sessions: i64 = sqlx::query_scalar("select count(*) from user_session")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(sessions, 0);
    // The password never appears on the command line or in the output.
    assert!(!out.contains("a new fine password"));
    // `user remove`.
    let (code, out, _) = run(textback()
        .args([
            "user",
            "remove",
            "--email",
            "sam@harbor.example",
            "--brokerage",
            "harbor",
        ])
        .env("DATABASE_URL", &db.url));
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = run(textback()
        .args([
            "user",
            "remove",
            "--email",
            "sam@harbor.example",
            "--brokerage",
            "harbor",
        ])
        .env("DATABASE_URL", &db.url));
    assert_eq!(code, 2);
    assert!(err.contains("has no login"), "{err}");
}
