//! Pictures in and out (README.md "Pictures"): a lead's photo fetched from the carrier with the
//! account's credentials, checked, kept, shown only to those who may see the conversation and
//! named in the alert; bad media refused and recorded with the text kept; a failed fetch
//! retried; an agent's photo sent at an unguessable, expiring address the carrier fetches.

use chrono::Duration;

use crate::helpers::*;

const LEAD: &str = "+16175550123";
const MAIN_ST: &str = "+15555550100";
const SAM: &str = "+15555550101";

/// A PNG's signature and header, `width` × `height` (enough for the checks; nothing decodes it
/// but a browser, which shows a broken image for a header alone).
fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(b"IHDR");
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]);
    out
}

/// A text with media, signed as Twilio signs it; returns its `MessageSid`.
async fn text_with_media(app: &TestApp, body: &str, media: &[(&str, &str)]) -> String {
    let sid = new_sid("MM");
    let p = with(fixture("sms-inbound-reply.txt"), "MessageSid", &sid);
    let p = with(with(p, "SmsSid", &sid), "SmsMessageSid", &sid);
    let p = with(with(p, "From", LEAD), "To", MAIN_ST);
    let mut p = with(
        without(with(p, "Body", body), "OptOutType"),
        "NumMedia",
        &media.len().to_string(),
    );
    for (i, (url, content_type)) in media.iter().enumerate() {
        p.push((format!("MediaUrl{i}"), (*url).to_owned()));
        p.push((format!("MediaContentType{i}"), (*content_type).to_owned()));
    }
    let r = app.post_signed("/twilio/sms", &p).await;
    assert_eq!(r.status, 200, "{}", r.body);
    sid
}

async fn media_rows(app: &TestApp) -> Vec<(String, Option<String>, Option<String>)> {
    sqlx::query_as("select state, reason, content_type from media order by media_id")
        .fetch_all(&app.db.pool)
        .await
        .expect("media")
}

async fn get_bytes(base: &str, person: &Person, path: &str) -> (u16, Option<String>, Vec<u8>) {
    let r = person
        .http
        .get(format!("{base}{path}"))
        .header("cookie", &person.cookie)
        .send()
        .await
        .expect("get");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, ct, r.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn a_lead_s_photo_is_fetched_kept_shown_to_the_conversation_only_and_named_in_the_alert() {
    let app = spawn_app().await;
    apply_setup(&app.db.pool, OTHER_BROKERAGE).await;
    let photo = png(640, 480);
    let url = app
        .fake
        .add_media(app.fake.account_sid(), "image/png", photo.clone());
    text_with_media(&app, "Is this the one?", &[(&url, "image/png")]).await;
    // The text is stored with the webhook; the photo waits for its job.
    assert_eq!(app.count("message").await, 1);
    assert_eq!(media_rows(&app).await, vec![("pending".into(), None, None)]);
    app.run_until_quiet(Duration::minutes(2)).await;
    assert_eq!(
        media_rows(&app).await,
        vec![("stored".into(), None, Some("image/png".into()))]
    );
    // Fetched with the account's credentials, through Twilio's redirect to its store.
    let fetches: Vec<_> = app
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/Media/") || r.path.starts_with("/cdn/"))
        .map(|r| (r.path.starts_with("/cdn/"), r.status))
        .collect();
    assert_eq!(fetches, vec![(false, Some(307)), (true, Some(200))]);
    // Sam's alert says there is a photo.
    let alerts = app.alerts_to(SAM);
    assert!(
        alerts
            .iter()
            .any(|a| a.contains("replied about 123 Main St: \"Is this the one?\" [photo]")),
        "{alerts:?}"
    );

    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let id: i64 = sqlx::query_scalar("select conversation_id from conversation")
        .fetch_one(&app.db.pool)
        .await
        .expect("conversation");
    let media_id: i64 = sqlx::query_scalar("select media_id from media")
        .fetch_one(&app.db.pool)
        .await
        .expect("media");
    let page = sam.get(&format!("/inbox/c/{id}")).await.body;
    assert!(
        page.contains(&format!("<img src=\"/inbox/media/{media_id}\""))
            && page.contains("width=\"640\" height=\"480\""),
        "{page}"
    );
    assert!(
        !page.contains(&app.fake.base_url()) && !page.contains("/Media/"),
        "never a link to the carrier"
    );
    let (status, ct, bytes) =
        get_bytes(&app.base_url, &sam, &format!("/inbox/media/{media_id}")).await;
    assert_eq!((status, ct.as_deref()), (200, Some("image/png")));
    assert_eq!(bytes, photo);

    // Another brokerage's person, and nobody logged in: not found / not signed in.
    let lee = app.person("bayside", "lee@bayside.example").await;
    let (status, _, bytes) =
        get_bytes(&app.base_url, &lee, &format!("/inbox/media/{media_id}")).await;
    assert_eq!(status, 404);
    assert_ne!(bytes, photo);
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/inbox/media/{media_id}", app.base_url))
        .send()
        .await
        .expect("get");
    assert_ne!(anonymous.status().as_u16(), 200);
    for path in ["/inbox/media/abc", "/inbox/media/-1", "/inbox/media/99999"] {
        assert_eq!(get_bytes(&app.base_url, &sam, path).await.0, 404, "{path}");
    }
    // The conversation is deleted; the lead writes again: the old photo is not shown any more.
    app.clock.advance(Duration::minutes(1));
    let mut riley = app.person("harbor", "riley@harbor.example").await;
    riley.get(&format!("/inbox/c/{id}")).await;
    let r = riley
        .post(&format!("/inbox/c/{id}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    app.clock.advance(Duration::minutes(1));
    app.text_in(LEAD, MAIN_ST, "Hello again").await;
    let path = format!("/inbox/media/{media_id}");
    assert_eq!(get_bytes(&app.base_url, &riley, &path).await.0, 404);
}

#[tokio::test]
async fn bad_media_is_refused_and_recorded_and_the_text_is_kept() {
    let app = spawn_app().await;
    let account = app.fake.account_sid().to_owned();
    let zip = b"PK\x03\x04\x14\0\0\0\x08\0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
    let zip_url = app.fake.add_media(&account, "image/jpeg", zip);
    let bomb_url = app
        .fake
        .add_media(&account, "image/png", png(100_000, 100_000));
    let mut big = png(100, 100);
    big.resize(5 * 1024 * 1024 + 1, 0);
    let big_url = app.fake.add_media(&account, "image/png", big);
    let other_account = app.fake.base_url()
        + "/2010-04-01/Accounts/AC00000000000000000000000000000002/Messages/MM0123456789abcdef0123456789abcdef/Media/ME0123456789abcdef0123456789abcdef";
    text_with_media(
        &app,
        "Here you go",
        &[
            ("https://evil.example/house.jpg", "image/jpeg"),
            (&zip_url, "image/jpeg"),
            (&bomb_url, "image/png"),
            (&big_url, "image/png"),
            (&other_account, "image/jpeg"),
        ],
    )
    .await;
    app.run_until_quiet(Duration::minutes(2)).await;
    let rows = media_rows(&app).await;
    let reasons: Vec<(&str, Option<&str>)> = rows
        .iter()
        .map(|(s, r, _)| (s.as_str(), r.as_deref()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("refused", Some("not_twilio")),
            ("refused", Some("type:application/zip")),
            ("refused", Some("pixels:100000x100000")),
            ("refused", Some("too_large:5242881")),
            ("refused", Some("other_account")),
        ]
    );
    // The text is there, and nobody fetched the foreign addresses.
    let body: String = sqlx::query_scalar("select body from message where direction = 'inbound'")
        .fetch_one(&app.db.pool)
        .await
        .expect("text");
    assert_eq!(body, "Here you go");
    assert!(
        !app.fake
            .requests()
            .iter()
            .any(|r| r.path.contains("AC00000000000000000000000000000002")),
        "another account's media is never fetched"
    );
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let id: i64 = sqlx::query_scalar("select conversation_id from conversation")
        .fetch_one(&app.db.pool)
        .await
        .expect("conversation");
    let page = sam.get(&format!("/inbox/c/{id}")).await.body;
    for words in [
        "A photo not kept: its link was not from Twilio",
        "a application/zip file is not a photo or a PDF",
        "too large to show",
        "the file is 5.1 MB; the most is 5 MB",
    ] {
        assert!(page.contains(words), "{words} in {page}");
    }
    assert!(!page.contains("<img"), "{page}");

    // A STOP with a photo is a STOP: media never change a keyword.
    let url = app.fake.add_media(&account, "image/png", png(10, 10));
    text_with_media(&app, "STOP", &[(&url, "image/png")]).await;
    let suppressed: i64 =
        sqlx::query_scalar("select count(*) from suppression where lifted_at is null")
            .fetch_one(&app.db.pool)
            .await
            .expect("suppression");
    assert_eq!(suppressed, 1);
}

#[tokio::test]
async fn a_fetch_that_fails_is_retried_and_the_text_is_never_lost_meanwhile() {
    let app = spawn_app().await;
    let url = app
        .fake
        .add_media(app.fake.account_sid(), "image/png", png(20, 20));
    app.fake.go_down().await;
    text_with_media(&app, "", &[(&url, "image/png")]).await;
    assert_eq!(app.count("message").await, 1, "stored before any fetch");
    app.drain().await;
    let (state, attempts, last_error): (String, i32, Option<String>) =
        sqlx::query_as("select state, attempt, last_error from job where kind = 'media_fetch'")
            .fetch_one(&app.db.pool)
            .await
            .expect("job");
    assert_eq!((state.as_str(), attempts), ("scheduled", 1));
    assert!(last_error.is_some_and(|e| e.contains("could not be reached")));
    assert_eq!(media_rows(&app).await[0].0, "pending");
    app.fake.go_up().await.expect("up");
    app.run_until_quiet(Duration::hours(3)).await;
    assert_eq!(media_rows(&app).await[0].0, "stored");

    // One Twilio never gives: retried, then failed with the reason, the text still there.
    let gone = app.fake.base_url()
        + &format!(
            "/2010-04-01/Accounts/{}/Messages/MM0123456789abcdef0123456789abcdef/Media/ME0123456789abcdef0123456789abcdef",
            app.fake.account_sid()
        );
    text_with_media(&app, "and this one", &[(&gone, "image/jpeg")]).await;
    app.run_until_quiet(Duration::days(1)).await;
    let rows = media_rows(&app).await;
    assert_eq!(rows[1].0, "failed", "{rows:?}");
    assert!(
        rows[1].1.as_deref().is_some_and(|r| r.contains("404")),
        "{rows:?}"
    );
    let (state, attempt): (String, i32) = sqlx::query_as(
        "select state, attempt from job where kind = 'media_fetch' order by job_id desc limit 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("job");
    assert_eq!((state.as_str(), attempt), ("dead", 8));
    let texts: i64 = sqlx::query_scalar("select count(*) from message where direction = 'inbound'")
        .fetch_one(&app.db.pool)
        .await
        .expect("texts");
    assert_eq!(texts, 2);
}

#[tokio::test]
async fn an_agent_s_photo_goes_through_the_gate_at_an_address_the_carrier_fetches_until_it_expires()
{
    let app = spawn_app().await;
    app.text_in(LEAD, MAIN_ST, "Do you have a picture of the kitchen?")
        .await;
    app.drain().await;
    let id: i64 = sqlx::query_scalar("select conversation_id from conversation")
        .fetch_one(&app.db.pool)
        .await
        .expect("conversation");
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let page = sam.get(&format!("/inbox/c/{id}")).await.body;
    let once = page
        .split("name=\"once\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form's one-time token")
        .to_owned();
    let photo = png(800, 600);
    // Submitted twice (a double tap): one reply, one photo kept.
    for _ in 0..2 {
        let r = sam
            .post_multipart(
                &format!("/inbox/c/{id}/reply"),
                &[("body", "Here it is"), ("once", &once)],
                Some(("photo", "kitchen.png", "image/png", &photo)),
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
    }
    let kept: i64 = sqlx::query_scalar("select count(*) from media where direction = 'outbound'")
        .fetch_one(&app.db.pool)
        .await
        .expect("media");
    assert_eq!(kept, 1);
    app.drain().await;
    let sent: Vec<_> = app
        .fake
        .messages()
        .into_iter()
        .filter(|m| m.to == LEAD)
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].body.ends_with("Here it is") || sent[0].body.contains("Here it is"));
    assert_eq!(sent[0].media_urls.len(), 1);
    let url = sent[0].media_urls[0].clone();
    assert!(
        url.starts_with(&format!("{}/media/", app.base_url)),
        "{url}"
    );
    assert_eq!(
        url.len(),
        app.base_url.len() + "/media/".len() + 43,
        "{url}"
    );
    // The carrier fetched it, as Twilio does when it sends.
    app.fake.settle().await;
    let fetched = app.fake.fetched_media();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].0, sent[0].sid);
    assert_eq!(
        (fetched[0].1.status, fetched[0].1.content_type.as_deref()),
        (Some(200), Some("image/png"))
    );
    assert_eq!(fetched[0].1.bytes, photo);
    // The gate decided it like any text.
    let decisions: i64 = sqlx::query_scalar(
        "select count(*) from gate_decision where kind = 'manual' and decision = 'allow'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("decisions");
    assert_eq!(decisions, 1);
    // The thread shows it.
    let page = sam.get(&format!("/inbox/c/{id}")).await.body;
    assert!(page.contains("<img src=\"/inbox/media/"), "{page}");
    // Refused uploads change nothing: a PDF, a zip called .png, too large.
    let before = app.count("job").await;
    let pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n".to_vec();
    let zip = b"PK\x03\x04\x14\0\0\0\x08\0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
    let mut big = png(100, 100);
    big.resize(5 * 1024 * 1024 + 1, 0);
    for (name, ct, bytes, status, words) in [
        (
            "a.pdf",
            "application/pdf",
            &pdf,
            422,
            "may not show on their phone",
        ),
        ("a.png", "image/png", &zip, 422, "is not a photo or a PDF"),
        ("big.png", "image/png", &big, 422, "the most is 5 MB"),
    ] {
        sam.get(&format!("/inbox/c/{id}")).await;
        let r = sam
            .post_multipart(
                &format!("/inbox/c/{id}/reply"),
                &[("body", "Look")],
                Some(("photo", name, ct, bytes)),
            )
            .await;
        assert_eq!(r.status, status, "{name}: {}", r.body);
        assert!(r.body.contains(words), "{name}: {}", r.body);
    }
    assert_eq!(app.count("job").await, before);
    // A photo alone is a reply; without the CSRF token, nothing.
    sam.get(&format!("/inbox/c/{id}")).await;
    sam.csrf = "forged".into();
    let r = sam
        .post_multipart(
            &format!("/inbox/c/{id}/reply"),
            &[],
            Some(("photo", "a.png", "image/png", &photo)),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(app.count("job").await, before);
    // After three days (the session too) the address answers nothing.
    app.clock.advance(Duration::days(3) + Duration::minutes(1));
    let later = reqwest::get(&url).await.expect("get");
    assert_eq!(later.status().as_u16(), 404);
    let guessed = reqwest::get(format!("{}/media/{}", app.base_url, "A".repeat(43)))
        .await
        .expect("get");
    assert_eq!(guessed.status().as_u16(), 404);
}
