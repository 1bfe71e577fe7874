//! `textback twilio connect` and `textback doctor` (README.md "Running it for real") from the
//! binary, against the fake carrier's `IncomingPhoneNumbers` and a running server.

use crate::cli::{run, textback};
use crate::helpers::*;

const MAIN_ST: &str = "+15555550100";
const ELM_ST: &str = "+15555550110";

/// Runs the binary with the app's database, the fake carrier and `public` as the public URL,
/// in a blocking thread: the server this test runs keeps answering meanwhile (doctor calls it).
async fn cli(app: &TestApp, public: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = textback();
    cmd.env("DATABASE_URL", &app.db.url)
        .env("TEXTBACK_PUBLIC_URL", public)
        .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("TWILIO_API_BASE", app.fake.base_url())
        .env("TWILIO_LOOKUP_BASE", app.fake.base_url())
        .env("TWILIO_MESSAGING_BASE", app.fake.base_url())
        .args(args);
    tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .expect("joined")
}

fn points_at(app: &TestApp, e164: &str) -> (Option<String>, Option<String>, Option<String>) {
    let n = app
        .fake
        .numbers()
        .into_iter()
        .find(|n| n.phone_number == e164)
        .expect("the number");
    (n.voice_url, n.sms_url, n.status_callback)
}

#[tokio::test]
async fn connect_shows_then_points_the_numbers_and_doctor_says_what_is_wrong() {
    let app = spawn_app().await;
    let public = app.public_url.clone();
    // The account has the demo's numbers: one pointed at Twilio's demo, one at nothing.
    app.fake.add_number(
        ACCOUNT_SID,
        MAIN_ST,
        Some("https://demo.twilio.com/welcome/voice/"),
    );
    app.fake.add_number(ACCOUNT_SID, ELM_ST, None);

    // doctor: the public URL and the credentials work, both numbers point elsewhere.
    let (code, out, err) = cli(&app, &public, &["doctor"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!("ok    {public}/twilio/ping reaches textback")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "ok    harbor: the credentials of account {ACCOUNT_SID} work"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("FAIL  harbor: {MAIN_ST} does not point at this server: VoiceUrl is https://demo.twilio.com/welcome/voice/, needs {public}/twilio/voice;")),
        "{out}"
    );
    assert!(
        out.contains("run `textback twilio connect --brokerage harbor --apply`"),
        "{out}"
    );
    assert!(err.contains("2 problem(s) found"), "{err}");

    // connect without --apply: what would change, nothing changed.
    let (code, out, err) = cli(
        &app,
        &public,
        &["twilio", "connect", "--brokerage", "harbor"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "  VoiceUrl: https://demo.twilio.com/welcome/voice/ -> {public}/twilio/voice"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("  SmsUrl: (empty) -> {public}/twilio/sms")),
        "{out}"
    );
    assert!(out.contains("Run again with --apply"), "{out}");
    assert_eq!(
        points_at(&app, MAIN_ST).0.as_deref(),
        Some("https://demo.twilio.com/welcome/voice/")
    );

    // --apply: both numbers point at the server; a second run has nothing to do.
    let (code, out, err) = cli(
        &app,
        &public,
        &["twilio", "connect", "--brokerage", "harbor", "--apply"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    for e164 in [MAIN_ST, ELM_ST] {
        assert!(out.contains(&format!("{e164}: changed")), "{out}");
        assert_eq!(
            points_at(&app, e164),
            (
                Some(format!("{public}/twilio/voice")),
                Some(format!("{public}/twilio/sms")),
                Some(format!("{public}/twilio/voice/status"))
            )
        );
    }
    let (code, out, _) = cli(
        &app,
        &public,
        &["twilio", "connect", "--brokerage", "harbor"],
    )
    .await;
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("{MAIN_ST} (PN")) && out.contains("points at this server"),
        "{out}"
    );
    assert!(!out.contains("--apply"), "{out}");

    // doctor: all well.
    let (code, out, err) = cli(&app, &public, &["doctor"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("all checks passed"), "{out}");
    assert!(
        out.contains(&format!(
            "note  harbor: {MAIN_ST} is in no Messaging Service"
        )),
        "{out}"
    );

    // In a Messaging Service that keeps the inbound texts for itself, with a campaign still
    // in review: replies would never arrive, and texts are blocked meanwhile.
    app.fake.add_messaging_service(
        "Harbor texts",
        &[MAIN_ST, ELM_ST],
        false,
        Some("https://old-crm.example/sms"),
        Some("IN_PROGRESS"),
    );
    let (code, out, _) = cli(&app, &public, &["doctor"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("FAIL  harbor: {MAIN_ST} is in Messaging Service Harbor texts, which sends its inbound texts to https://old-crm.example/sms, not textback")),
        "{out}"
    );
    assert!(
        out.contains(
            "note  harbor: Messaging Service Harbor texts's A2P 10DLC campaign is IN_PROGRESS"
        ),
        "{out}"
    );
    assert_eq!(
        out.matches("A2P 10DLC campaign is").count(),
        1,
        "one line per service: {out}"
    );

    // A public URL that is not where requests arrive: the signature does not check out.
    let wrong = format!("{public}/textback");
    let (code, out, _) = cli(&app, &wrong, &["doctor"]).await;
    assert_eq!(code, 1);
    assert!(out.contains("FAIL"), "{out}");
    // A public URL nothing answers at.
    let (code, out, _) = cli(&app, "http://127.0.0.1:9", &["doctor"]).await;
    assert_eq!(code, 1);
    assert!(out.contains("cannot be reached from here"), "{out}");
    // The ping changes nothing and is refused unsigned.
    let r = app
        .post_raw(
            "/twilio/ping",
            b"Ping=1".to_vec(),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn connect_refuses_an_unknown_brokerage_and_names_a_number_the_account_lacks() {
    let app = spawn_app().await;
    let public = app.public_url.clone();
    app.fake.add_number(ACCOUNT_SID, MAIN_ST, None);
    let (code, _, err) = cli(
        &app,
        &public,
        &["twilio", "connect", "--brokerage", "nowhere"],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no brokerage `nowhere`"), "{err}");
    let (code, out, err) = cli(
        &app,
        &public,
        &["twilio", "connect", "--brokerage", "harbor", "--apply"],
    )
    .await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains(&format!("{ELM_ST}: not a number of account {ACCOUNT_SID}")),
        "{out}"
    );
    assert!(out.contains(&format!("{MAIN_ST}: changed")), "{out}");
}

/// doctor checks the brokerage's webhooks and Follow Up Boss: a secret that is not set, a
/// secret that is not a `whsec_` one, and a working one, each said in plain words.
#[tokio::test]
async fn doctor_checks_the_webhooks_and_follow_up_boss_secrets() {
    let setup = format!(
        "{DEMO}\n[[webhooks]]\nname = \"crm\"\nurl = \"https://crm.example/hooks\"\nevents = [\"*\"]\nsecret_env = \"HARBOR_WEBHOOK_SECRET\"\n\n[[webhooks]]\nname = \"sheet\"\nurl = \"https://sheet.example/hooks\"\nevents = [\"lead.created\"]\nsecret_env = \"HARBOR_SHEET_SECRET\"\n\n[follow_up_boss]\napi_key_env = \"HARBOR_FUB_KEY\"\n"
    );
    let app = spawn_app_with(AppOptions {
        setup: Some(setup),
        ..AppOptions::default()
    })
    .await;
    let public = app.public_url.clone();
    app.fake.add_number(ACCOUNT_SID, MAIN_ST, None);
    app.fake.add_number(ACCOUNT_SID, ELM_ST, None);
    let mut cmd = textback();
    cmd.env("DATABASE_URL", &app.db.url)
        .env("TEXTBACK_PUBLIC_URL", &public)
        .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("TWILIO_API_BASE", app.fake.base_url())
        .env("TWILIO_LOOKUP_BASE", app.fake.base_url())
        .env("TWILIO_MESSAGING_BASE", app.fake.base_url())
        .env("HARBOR_SHEET_SECRET", "not-a-whsec-secret")
        .env("HARBOR_FUB_KEY", "fub-key")
        .env_remove("HARBOR_WEBHOOK_SECRET")
        .args(["doctor"]);
    let (code, out, err) = tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .expect("joined");
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("FAIL  harbor: webhook crm: HARBOR_WEBHOOK_SECRET is not set"),
        "{out}"
    );
    assert!(
        out.contains("FAIL  harbor: webhook sheet: the signing secret must start with whsec_"),
        "{out}"
    );
    assert!(
        out.contains("ok    harbor: Follow Up Boss at https://api.followupboss.com is set up"),
        "{out}"
    );
}
