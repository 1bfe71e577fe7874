//! Issue 15 §6 and §7: a brokerage on its own Twilio subaccount (its token from the
//! environment or a file, never the setup file), webhooks refused when their account is not
//! the number's brokerage's, and webhooks signed with a shared key (HMAC-SHA256 or -SHA1).

use chrono::Duration;
use textback::twilio::signature::Algorithm;
use textback_fake_twilio::{DialResult, Signer, new_call_sid, new_message_sid};

use crate::helpers::*;

/// Bayside Homes' own subaccount.
const SUB_SID: &str = "AC0b5ce0b5ce0b5ce0b5ce0b5ce0b5ce01";
const SUB_TOKEN: &str = "5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b";
const BAYSIDE: &str = "+15555550200";
const MAIN_ST: &str = "+15555550100";
const LEAD: &str = "+16175550161";

fn bayside_on_its_subaccount(token_source: &str) -> String {
    format!("{OTHER_BROKERAGE}\n[twilio]\naccount_sid = \"{SUB_SID}\"\n{token_source}\n")
}

/// Bayside on its subaccount, its token read from `BAYSIDE_TWILIO_AUTH_TOKEN`; the player of
/// its webhooks.
async fn bayside_from_env(app: &TestApp) -> textback_fake_twilio::Player {
    apply_setup(
        &app.db.pool,
        &bayside_on_its_subaccount("auth_token_env = \"BAYSIDE_TWILIO_AUTH_TOKEN\""),
    )
    .await;
    app.fake.add_account(SUB_SID, SUB_TOKEN);
    app.fake.player_for(&app.public_url, SUB_SID)
}

/// A missed call to `to` played by `player`, then the hold: returns the call's sid.
async fn miss(app: &TestApp, player: &textback_fake_twilio::Player, to: &str) -> u16 {
    let call = new_call_sid();
    let r = player.incoming_call(&call, LEAD, to).await.expect("voice");
    if r.status != 200 {
        return r.status;
    }
    let r = player
        .dial_result(&call, LEAD, to, DialResult::no_answer())
        .await
        .expect("dial");
    app.clock.advance(Duration::seconds(20));
    app.drain().await;
    r.status
}

async fn messages_stored(app: &TestApp) -> i64 {
    app.count("message").await
}

#[tokio::test]
async fn a_brokerage_on_its_own_subaccount_is_checked_and_sends_with_its_credentials() {
    for token_source in ["env", "file"] {
        let token_file =
            std::env::temp_dir().join(format!("tb-sub-token-{}", rand::random::<u64>()));
        std::fs::write(&token_file, format!("{SUB_TOKEN}\n")).expect("token file");
        let app = spawn_app_with(AppOptions {
            env: vec![("BAYSIDE_TWILIO_AUTH_TOKEN", SUB_TOKEN.to_owned())],
            ..Default::default()
        })
        .await;
        let source = match token_source {
            "env" => "auth_token_env = \"BAYSIDE_TWILIO_AUTH_TOKEN\"".to_owned(),
            _ => format!("auth_token_file = \"{}\"", token_file.display()),
        };
        apply_setup(&app.db.pool, &bayside_on_its_subaccount(&source)).await;
        app.fake.add_account(SUB_SID, SUB_TOKEN);
        let bayside = app.fake.player_for(&app.public_url, SUB_SID);

        // Bayside's webhooks, signed with the subaccount's token, are taken; its text-back is
        // sent from the subaccount (its path and Basic credentials), and the status callbacks
        // the fake signs with the subaccount's token are taken too.
        assert_eq!(miss(&app, &bayside, BAYSIDE).await, 200, "{token_source}");
        let sent = app.fake.messages();
        assert_eq!(sent.len(), 1, "{token_source}");
        assert_eq!(sent[0].account_sid, SUB_SID);
        let create = app
            .fake
            .requests()
            .into_iter()
            .find(|r| r.method == "POST" && r.path.ends_with("/Messages.json"))
            .expect("a create");
        assert!(create.path.contains(SUB_SID), "{}", create.path);
        app.fake.settle().await;
        let status: Option<String> =
            sqlx::query_scalar("select carrier_status from message where direction = 'outbound'")
                .fetch_one(&app.db.pool)
                .await
                .expect("status");
        assert_eq!(status.as_deref(), Some("delivered"), "{token_source}");

        // The deployment's account cannot act on Bayside's number, nor Bayside's on Harbor's.
        let before = app.snapshot().await;
        let deployment = app.fake.player(&app.public_url);
        let r = deployment
            .inbound_sms(&new_message_sid(), LEAD, BAYSIDE, "STOP", 0, None)
            .await
            .expect("sms");
        assert_eq!(
            r.status, 403,
            "{token_source}: the deployment's account on Bayside's number"
        );
        let r = bayside
            .inbound_sms(&new_message_sid(), LEAD, MAIN_ST, "hello", 0, None)
            .await
            .expect("sms");
        assert_eq!(
            r.status, 403,
            "{token_source}: Bayside's account on Harbor's number"
        );
        assert_eq!(app.webhook_count("/twilio/sms", "foreign_account"), 2);
        // Naming the subaccount but signed with the deployment's token: a bad signature.
        let mut forged = deployment.clone();
        forged.account_sid = SUB_SID.to_owned();
        let r = forged
            .inbound_sms(&new_message_sid(), LEAD, BAYSIDE, "STOP", 0, None)
            .await
            .expect("sms");
        assert_eq!(r.status, 403);
        assert_eq!(app.webhook_count("/twilio/sms", "bad_signature"), 1);
        assert_eq!(app.snapshot().await, before, "nothing stored");
        let _ = std::fs::remove_file(&token_file);
    }
}

/// With no `TWILIO_ACCOUNT_SID`, the deployment's numbers still take only the deployment's
/// key: a webhook Bayside's subaccount signs for Harbor's number is refused (what counts is
/// whose key checked the signature, not what the body says), whatever `AccountSid` it names.
#[tokio::test]
async fn a_subaccount_cannot_act_on_the_numbers_of_a_deployment_without_an_account_sid() {
    let app = spawn_app_with(AppOptions {
        env: vec![("BAYSIDE_TWILIO_AUTH_TOKEN", SUB_TOKEN.to_owned())],
        unset: vec!["TWILIO_ACCOUNT_SID"],
        ..Default::default()
    })
    .await;
    let bayside = bayside_from_env(&app).await;
    let before = app.snapshot().await;
    let r = bayside
        .inbound_sms(&new_message_sid(), LEAD, MAIN_ST, "STOP", 0, None)
        .await
        .expect("sms");
    assert_eq!(r.status, 403, "Bayside's key on Harbor's number");
    assert_eq!(app.webhook_count("/twilio/sms", "foreign_account"), 1);
    assert_eq!(app.snapshot().await, before, "nothing stored");
    // Bayside's own number and Harbor's, each with its own key, are taken.
    assert_eq!(miss(&app, &bayside, BAYSIDE).await, 200);
    let harbor = app.fake.player(&app.public_url);
    let r = harbor
        .inbound_sms(&new_message_sid(), LEAD, MAIN_ST, "hello", 0, None)
        .await
        .expect("sms");
    assert_eq!(r.status, 200);
    assert_eq!(app.webhook_count("/twilio/sms", "foreign_account"), 1);
}

/// The subaccount's token is not where the setup file says: its webhooks are refused (and the
/// log says why), and a send ends `dead` with the reason for the admins, never with the
/// deployment's credentials.
#[tokio::test]
async fn a_subaccount_whose_token_is_missing_sends_nothing_and_says_why() {
    let app = spawn_app().await;
    let bayside = bayside_from_env(&app).await;
    assert_eq!(miss(&app, &bayside, BAYSIDE).await, 403);
    assert_eq!(messages_stored(&app).await, 0);
    // A webhook the deployment's account signs for Bayside's number is refused too, so the
    // missed call is recorded only through Harbor's own numbers: play one there and check
    // Harbor still works.
    let harbor = app.fake.player(&app.public_url);
    assert_eq!(miss(&app, &harbor, MAIN_ST).await, 200);
    assert_eq!(app.fake.messages().len(), 1, "Harbor's text-back went");
    // A Bayside job that reaches the carrier without credentials: dead, with the reason.
    let mut conn = app.db.pool.acquire().await.expect("conn");
    let bay = textback::store::brokerages::by_slug(&mut conn, "bayside")
        .await
        .expect("b")
        .expect("bayside");
    drop(conn);
    let why = app
        .state
        .credentials(bay)
        .await
        .expect("the database answers")
        .err()
        .unwrap_or_default();
    assert!(
        why.contains(SUB_SID) && why.contains("BAYSIDE_TWILIO_AUTH_TOKEN is not set"),
        "{why}"
    );
}

/// Twilio can sign webhooks with a shared key (HMAC-SHA256, or -SHA1) named in
/// `X-Twilio-Webhooks-Signature-Settings`. With the key configured (the deployment's
/// `TWILIO_WEBHOOK_KEYS`, or a subaccount's `webhook_keys_file`), such webhooks and status
/// callbacks are taken; without it, or with another key, they get 403.
#[tokio::test]
async fn webhooks_signed_with_a_shared_key_are_checked_with_that_key() {
    let app = spawn_app_with(AppOptions {
        env: vec![(
            "TWILIO_WEBHOOK_KEYS",
            "whk_old=oldsecret,whk_new=s3cret=+/".to_owned(),
        )],
        ..Default::default()
    })
    .await;
    for (key, secret, algorithm) in [
        ("whk_new", "s3cret=+/", Algorithm::HmacSha256),
        ("whk_old", "oldsecret", Algorithm::HmacSha1),
    ] {
        app.fake
            .sign_webhooks_with(ACCOUNT_SID, Signer::shared_key(key, secret, algorithm));
        let player = app.fake.player(&app.public_url);
        assert_eq!(miss(&app, &player, MAIN_ST).await, 200, "{key}");
        app.fake.settle().await;
    }
    // The text-back and the repeat-call alert; every status callback, signed with the shared
    // key of its moment, was taken.
    let (outbound, delivered): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where carrier_status = 'delivered') from message where direction = 'outbound'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("delivered");
    assert_eq!((outbound, delivered), (2, 2));
    let before = app.snapshot().await;
    for signer in [
        Signer::shared_key("whk_unknown", "s3cret=+/", Algorithm::HmacSha256),
        Signer::shared_key("whk_new", "wrong", Algorithm::HmacSha256),
        // The right secret but the header says SHA-1: the signature does not match.
        Signer {
            algorithm: Algorithm::HmacSha256,
            key: "s3cret=+/".into(),
            settings: Some("key=whk_new,algorithm=HMAC_SHA1".into()),
        },
        Signer {
            algorithm: Algorithm::HmacSha256,
            key: "s3cret=+/".into(),
            settings: Some("key=whk_new,algorithm=HMAC_SHA512".into()),
        },
        // The auth token's signature under a shared-key header is not the key's.
        Signer {
            algorithm: Algorithm::HmacSha1,
            key: TOKEN.into(),
            settings: Some("key=whk_new,algorithm=HMAC_SHA1".into()),
        },
    ] {
        let player = app
            .fake
            .player(&app.public_url)
            .signing_with(signer.clone());
        let r = player
            .inbound_sms(&new_message_sid(), LEAD, MAIN_ST, "STOP", 0, None)
            .await
            .expect("sms");
        assert_eq!(r.status, 403, "{:?}", signer.settings);
    }
    assert_eq!(app.snapshot().await, before);

    // A deployment without TWILIO_WEBHOOK_KEYS refuses a shared-key signature.
    let plain = spawn_app().await;
    plain.fake.sign_webhooks_with(
        ACCOUNT_SID,
        Signer::shared_key("whk_new", "s3cret=+/", Algorithm::HmacSha256),
    );
    let player = plain.fake.player(&plain.public_url);
    let r = player
        .inbound_sms(&new_message_sid(), LEAD, MAIN_ST, "STOP", 0, None)
        .await
        .expect("sms");
    assert_eq!(r.status, 403);
    assert_eq!(plain.webhook_count("/twilio/sms", "bad_signature"), 1);
    assert_eq!(plain.count("message").await, 0);
}

/// A subaccount's shared keys come from where its setup file says (`webhook_keys_file`).
#[tokio::test]
async fn a_subaccounts_shared_keys_come_from_its_file() {
    let keys = std::env::temp_dir().join(format!("tb-sub-keys-{}", rand::random::<u64>()));
    std::fs::write(&keys, "# Bayside's webhook keys\nwhk_bay=baysecret\n").expect("keys");
    let app = spawn_app_with(AppOptions {
        env: vec![("BAYSIDE_TWILIO_AUTH_TOKEN", SUB_TOKEN.to_owned())],
        ..Default::default()
    })
    .await;
    apply_setup(
        &app.db.pool,
        &bayside_on_its_subaccount(&format!(
            "auth_token_env = \"BAYSIDE_TWILIO_AUTH_TOKEN\"\nwebhook_keys_file = \"{}\"",
            keys.display()
        )),
    )
    .await;
    app.fake.add_account(SUB_SID, SUB_TOKEN);
    app.fake.sign_webhooks_with(
        SUB_SID,
        Signer::shared_key("whk_bay", "baysecret", Algorithm::HmacSha256),
    );
    let bayside = app.fake.player_for(&app.public_url, SUB_SID);
    assert_eq!(miss(&app, &bayside, BAYSIDE).await, 200);
    assert_eq!(app.fake.messages().len(), 1);
    // The deployment's keys are not Bayside's.
    app.fake.sign_webhooks_with(
        SUB_SID,
        Signer::shared_key("whk_bay", "baysecret-but-wrong", Algorithm::HmacSha256),
    );
    let bayside = app.fake.player_for(&app.public_url, SUB_SID);
    let r = bayside
        .inbound_sms(&new_message_sid(), LEAD, BAYSIDE, "hello", 0, None)
        .await
        .expect("sms");
    assert_eq!(r.status, 403);
    let _ = std::fs::remove_file(&keys);
}
