//! Logins, sessions, CSRF, throttling and headers of the people's pages (docs/security.md §2 and
//! §3 rows 20–25, 30), against the real server.

use chrono::Duration;

use crate::helpers::*;

const PAGES: &[&str] = &[
    "/login",
    "/inbox",
    "/dashboard",
    "/inbox/c/999999",
    "/static/app.css",
];

#[tokio::test]
async fn a_stored_password_is_an_argon2id_hash_with_the_defaults_of_security_md() {
    let app = spawn_app().await;
    add_login(&app.db.pool, "harbor", "sam@harbor.example", PASSWORD).await;
    let hash: String = sqlx::query_scalar("select password_hash from app_user")
        .fetch_one(&app.db.pool)
        .await
        .expect("hash");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(PASSWORD));
}

#[tokio::test]
async fn a_login_sets_a_new_http_only_lax_session_cookie_and_logout_ends_it() {
    let app = spawn_app().await;
    add_login(&app.db.pool, "harbor", "sam@harbor.example", PASSWORD).await;
    let r = app.try_login("sam@harbor.example", PASSWORD).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.headers.get("location").and_then(|v| v.to_str().ok()),
        Some("/inbox")
    );
    // Plain http (the demo, these tests): `tb_session`, no Secure, no Domain (docs/security.md §2).
    let cookie = set_cookie(&r, "tb_session").expect("session cookie");
    let attrs: Vec<&str> = cookie.split("; ").skip(1).collect();
    assert!(
        attrs.contains(&"HttpOnly") && attrs.contains(&"SameSite=Lax") && attrs.contains(&"Path=/"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let value = cookie
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_start_matches("tb_session=")
        .to_owned();
    assert_eq!(value.len(), 43, "256 bits, base64url");
    // Only a hash of it is stored.
    let stored: i64 = sqlx::query_scalar("select count(*) from user_session where encode(session_hash, 'escape') like '%' || $1 || '%'")
        .bind(&value)
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(stored, 0);
    // A second login gets another id.
    let mut sam = app.log_in("sam@harbor.example", PASSWORD).await;
    assert_ne!(sam.cookie, format!("tb_session={value}"));
    let old = sam.cookie.clone();
    assert_eq!(sam.get("/inbox").await.status, 200);
    let out = sam.post("/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert!(set_cookie(&out, "tb_session").is_some_and(|c| c.contains("Max-Age=0")));
    // The old cookie is worth nothing now.
    sam.cookie = old;
    let r = sam.get("/inbox").await;
    assert_eq!(
        (
            r.status,
            r.headers.get("location").and_then(|v| v.to_str().ok())
        ),
        (303, Some("/login"))
    );
}

#[tokio::test]
async fn behind_https_the_cookie_is_host_prefixed_and_secure_with_hsts() {
    let app = spawn_app_with(AppOptions {
        public_url: Some("https://textback.example".into()),
        ..AppOptions::default()
    })
    .await;
    add_login(&app.db.pool, "harbor", "sam@harbor.example", PASSWORD).await;
    let r = app.try_login("sam@harbor.example", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = set_cookie(&r, "__Host-tb_session").expect("__Host- cookie");
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.split("; ").any(|a| a == attr), "{attr} in {cookie}");
    }
    assert!(!cookie.contains("Domain"));
    let page = app.get("/login").await;
    assert_eq!(
        page.headers
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000")
    );
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_page() {
    let app = spawn_app().await;
    add_login(&app.db.pool, "harbor", "sam@harbor.example", PASSWORD).await;
    let (cookie, csrf) = app.login_form().await;
    let attempt = |email: &'static str, password: String| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        let url = format!("{}/login", app.base_url);
        async move {
            read(
                no_redirects()
                    .post(url)
                    .header("cookie", cookie)
                    .form(&[
                        ("csrf", csrf.as_str()),
                        ("email", email),
                        ("password", password.as_str()),
                    ])
                    .send()
                    .await
                    .expect("post"),
            )
            .await
        }
    };
    let wrong = attempt("sam@harbor.example", "not the password".into()).await;
    let unknown = attempt("nobody@harbor.example", "not the password".into()).await;
    assert_eq!(wrong.status, 401);
    assert_eq!((wrong.status, &wrong.body), (unknown.status, &unknown.body));
    assert!(wrong.body.contains("Email or password is incorrect."));
    // docs/security.md §3 row 21: the same page, and nothing else happens.
    let before = app.snapshot().await;
    let odd: [(&'static str, String); 3] = [
        ("sam@harbor.example", "x".repeat(10_000)),
        ("sam\u{0}@harbor.example", PASSWORD.to_owned()),
        ("' OR 1=1 --", PASSWORD.to_owned()),
    ];
    for (email, password) in odd {
        let r = attempt(email, password).await;
        assert_eq!(
            (r.status, &r.body),
            (wrong.status, &wrong.body),
            "{email:?}"
        );
    }
    assert_eq!(app.snapshot().await, before);
    let sessions = app.count("user_session").await;
    assert_eq!(sessions, 0);
}

#[tokio::test]
async fn a_login_without_its_pre_session_token_or_from_another_site_is_refused() {
    let app = spawn_app().await;
    add_login(&app.db.pool, "harbor", "sam@harbor.example", PASSWORD).await;
    let (cookie, csrf) = app.login_form().await;
    let post = |cookie: Option<&str>, csrf: &str, origin: Option<&str>| {
        let mut req = no_redirects()
            .post(format!("{}/login", app.base_url))
            .form(&[
                ("csrf", csrf),
                ("email", "sam@harbor.example"),
                ("password", PASSWORD),
            ]);
        if let Some(c) = cookie {
            req = req.header("cookie", c.to_owned());
        }
        if let Some(o) = origin {
            req = req.header("origin", o.to_owned());
        }
        async move { read(req.send().await.expect("post")).await }
    };
    assert_eq!(post(None, &csrf, None).await.status, 403, "no cookie");
    assert_eq!(post(Some(&cookie), "", None).await.status, 403, "no token");
    assert_eq!(
        post(Some(&cookie), "x".repeat(43).as_str(), None)
            .await
            .status,
        403,
        "another token"
    );
    assert_eq!(
        post(Some(&cookie), &csrf, Some("https://evil.example"))
            .await
            .status,
        403,
        "cross-site"
    );
    assert_eq!(app.count("user_session").await, 0);
    assert_eq!(
        post(Some(&cookie), &csrf, Some(&app.base_url)).await.status,
        303,
        "our own origin"
    );
}

#[tokio::test]
async fn thirty_rapid_attempts_are_throttled_across_two_instances() {
    let app = spawn_app().await;
    add_login(&app.db.pool, "harbor", "sam@harbor.example", PASSWORD).await;
    let (second, _server) = second_instance(&app).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..30 {
        // Different (unknown) accounts: the per-address limit, not the per-account one.
        let base = if i % 2 == 0 {
            app.base_url.clone()
        } else {
            second.clone()
        };
        let r = read(
            no_redirects()
                .get(format!("{base}/login"))
                .send()
                .await
                .expect("form"),
        )
        .await;
        let cookie = set_cookie(&r, "tb_login").expect("cookie");
        let csrf = csrf_of(&r.body).expect("token");
        let email = format!("guess{i}@harbor.example");
        let r = read(
            no_redirects()
                .post(format!("{base}/login"))
                .header(
                    "cookie",
                    cookie.split(';').next().unwrap_or_default().to_owned(),
                )
                // An untrusted peer's X-Forwarded-For is not believed: it changes nothing.
                .header("x-forwarded-for", format!("203.0.113.{i}"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", email.as_str()),
                    ("password", "wrong password"),
                ])
                .send()
                .await
                .expect("post"),
        )
        .await;
        if r.status == 429 {
            retry_after = r
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
        }
        statuses.push(r.status);
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    assert!(
        retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "{retry_after:?}"
    );
    // A minute later the address may try again.
    app.clock.advance(Duration::seconds(61));
    assert_eq!(
        app.try_login("sam@harbor.example", PASSWORD).await.status,
        303
    );
}

#[tokio::test]
async fn five_failures_lock_an_account_for_fifteen_minutes() {
    let app = spawn_app().await;
    add_login(&app.db.pool, "harbor", "sam@harbor.example", PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(
            app.try_login("sam@harbor.example", "wrong password")
                .await
                .status,
            401
        );
    }
    // Even the right password waits now.
    let r = app.try_login("sam@harbor.example", PASSWORD).await;
    assert_eq!(r.status, 429);
    let wait: u64 = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("retry-after");
    assert!((850..=900).contains(&wait), "{wait}");
    app.clock.advance(Duration::minutes(15));
    assert_eq!(
        app.try_login("sam@harbor.example", PASSWORD).await.status,
        303
    );
}

#[tokio::test]
async fn a_session_ends_after_eight_idle_hours_and_after_seven_days() {
    let app = spawn_app().await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    app.clock
        .advance(Duration::hours(7) + Duration::minutes(59));
    assert_eq!(
        sam.get("/inbox").await.status,
        200,
        "still active: the idle clock restarts"
    );
    app.clock
        .advance(Duration::hours(7) + Duration::minutes(59));
    assert_eq!(sam.get("/inbox").await.status, 200);
    app.clock.advance(Duration::hours(8));
    assert_eq!(sam.get("/inbox").await.status, 303, "8 h idle");
    // Seven days, however active.
    let mut ava = app.person("harbor", "ava@harbor.example").await;
    for _ in 0..23 {
        app.clock.advance(Duration::hours(7));
        assert_eq!(ava.get("/inbox").await.status, 200);
    }
    app.clock
        .advance(Duration::hours(6) + Duration::minutes(59));
    assert_eq!(
        ava.get("/inbox").await.status,
        200,
        "a minute before 7 days"
    );
    app.clock.advance(Duration::minutes(1));
    assert_eq!(ava.get("/inbox").await.status, 303, "7 days after login");
    assert_eq!(
        app.count("user_session").await,
        0,
        "ended sessions are deleted"
    );
}

#[tokio::test]
async fn removing_a_person_ends_their_sessions() {
    let app = spawn_app().await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let mut ava = app.person("harbor", "ava@harbor.example").await;
    // Sam leaves the setup file: his session ends, his conversations become unassigned.
    apply_setup(
        &app.db.pool,
        &DEMO
            .replace("ring = [\"sam@harbor.example\", \"ava@harbor.example\"]", "ring = [\"ava@harbor.example\"]")
            .replace(
                "[[agents]]\nemail = \"sam@harbor.example\"\nname = \"Sam Rivera\"\nphone = \"+15555550101\"\noffice = \"downtown\"\nrole = \"agent\"\n",
                "",
            ),
    )
    .await;
    assert_eq!(sam.get("/inbox").await.status, 303);
    assert_eq!(
        app.try_login("sam@harbor.example", PASSWORD).await.status,
        401
    );
    // Ava's login is removed with the CLI's call: hers ends too.
    assert_eq!(ava.get("/inbox").await.status, 200);
    let mut conn = app.db.pool.acquire().await.expect("conn");
    let harbor = textback::store::brokerages::by_slug(&mut conn, "harbor")
        .await
        .expect("b")
        .expect("harbor");
    assert!(
        textback::store::users::remove_login(&mut conn, harbor, "ava@harbor.example")
            .await
            .expect("remove")
    );
    assert_eq!(ava.get("/inbox").await.status, 303);
}

#[tokio::test]
async fn a_tampered_or_unknown_session_cookie_goes_to_the_login() {
    let app = spawn_app().await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let good = sam.cookie.clone();
    for bad in [
        format!("{}x", good),
        good.replace("tb_session=", "tb_session=A"),
        "tb_session=".to_owned(),
        format!("tb_session={}", "A".repeat(43)),
        "tb_session=' OR 1=1 --".to_owned(),
    ] {
        sam.cookie = bad.clone();
        let r = sam.get("/inbox").await;
        assert_eq!(r.status, 303, "{bad}");
        assert_eq!(
            r.headers.get("location").and_then(|v| v.to_str().ok()),
            Some("/login")
        );
    }
}

#[tokio::test]
async fn forms_without_the_sessions_token_or_from_another_site_change_nothing() {
    let app = spawn_app().await;
    app.text_in(
        "+16175550123",
        "+15555550100",
        "Is 123 Main still available?",
    )
    .await;
    app.drain().await;
    let conversation: i64 = sqlx::query_scalar("select conversation_id from conversation")
        .fetch_one(&app.db.pool)
        .await
        .expect("conversation");
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    let mut ava = app.person("harbor", "ava@harbor.example").await;
    sam.get("/inbox").await;
    ava.get("/inbox").await;
    let path = format!("/inbox/c/{conversation}/note");
    let before = app.count("note").await;
    let form = |token: &str| {
        vec![
            ("csrf".to_owned(), token.to_owned()),
            ("body".to_owned(), "hello".to_owned()),
        ]
    };
    let no_token = vec![("body".to_owned(), "hello".to_owned())];
    assert_eq!(
        sam.post_raw(&path, &no_token, &[]).await.status,
        403,
        "no token"
    );
    assert_eq!(
        sam.post_raw(&path, &form(&ava.csrf), &[]).await.status,
        403,
        "another session's token"
    );
    assert_eq!(
        sam.post_raw(
            &path,
            &form(&sam.csrf),
            &[("origin", "https://evil.example")]
        )
        .await
        .status,
        403,
        "cross-site origin"
    );
    assert_eq!(
        sam.post_raw(&path, &form(&sam.csrf), &[("sec-fetch-site", "cross-site")])
            .await
            .status,
        403,
        "cross-site fetch"
    );
    assert_eq!(app.count("note").await, before);
    assert_eq!(
        sam.post_raw(&path, &form(&sam.csrf), &[("origin", &app.base_url)])
            .await
            .status,
        303
    );
    assert_eq!(app.count("note").await, before + 1);
}

#[tokio::test]
async fn state_changes_answer_get_with_405() {
    let app = spawn_app().await;
    let mut sam = app.person("harbor", "sam@harbor.example").await;
    for path in POST_ROUTES {
        let path = path
            .replace("{c}", "1")
            .replace("{t}", "1")
            .replace("{a}", "1");
        assert_eq!(sam.get(&path).await.status, 405, "{path}");
    }
}

/// Every route that changes something (`{c}` a conversation, `{t}` a task, `{a}` an alert).
const POST_ROUTES: &[&str] = &[
    "/logout",
    "/inbox/search",
    "/inbox/c/{c}/reply",
    "/inbox/c/{c}/note",
    "/inbox/c/{c}/assign",
    "/inbox/c/{c}/close",
    "/inbox/c/{c}/reopen",
    "/inbox/c/{c}/takeover",
    "/inbox/c/{c}/do-not-text",
    "/inbox/c/{c}/review",
    "/inbox/c/{c}/name",
    "/inbox/c/{c}/merge",
    "/inbox/c/{c}/delete",
    "/inbox/c/{c}/tasks/{t}/done",
    "/dashboard/alerts/{a}/dismiss",
];

/// A logged-in person's own forms, each posted without its token (as a forged cross-site form
/// would be, with every field otherwise right): 403 on every route, and nothing changes.
#[tokio::test]
async fn every_state_change_needs_the_pages_token() {
    let app = spawn_app().await;
    // A landline's missed call: a conversation with an open callback task; an alert to dismiss.
    app.fake.set_line_type("+16175550177", "landline");
    app.missed_call("+16175550177", "+15555550100").await;
    app.clock.advance(chrono::Duration::seconds(30));
    app.drain().await;
    let (c, t): (i64, i64) = sqlx::query_as(
        "select cv.conversation_id, t.task_id from conversation cv join task t using (contact_id)",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("conversation and task");
    let a: i64 = sqlx::query_scalar(
        "insert into alert (brokerage_id, audience, reason, detail, created_at)
         select brokerage_id, 'admins', 'carrier_configuration', '21408', now() from brokerage
          where slug = 'harbor' returning alert_id",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("alert");
    let mut riley = app.person("harbor", "riley@harbor.example").await;
    riley.get(&format!("/inbox/c/{c}")).await;
    let fields: &[(&str, &str)] = &[
        ("body", "hello"),
        ("phone", "+16175550177"),
        ("agent", "1"),
        ("decision", "opt_out"),
        ("name", "Pat"),
        ("into", "1"),
        ("confirm", "yes"),
    ];
    let form: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let before = (
        app.snapshot().await,
        app.count("note").await,
        app.count("consent_event").await,
    );
    for path in POST_ROUTES {
        let path = path
            .replace("{c}", &c.to_string())
            .replace("{t}", &t.to_string())
            .replace("{a}", &a.to_string());
        let r = riley.post_raw(&path, &form, &[]).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        let wrong = [form.clone(), vec![("csrf".to_owned(), "x".repeat(43))]].concat();
        assert_eq!(
            riley.post_raw(&path, &wrong, &[]).await.status,
            403,
            "{path}"
        );
    }
    assert_eq!(
        (
            app.snapshot().await,
            app.count("note").await,
            app.count("consent_event").await
        ),
        before
    );
    // The session is still good: the same form with the token goes through.
    let r = riley
        .post(&format!("/inbox/c/{c}/tasks/{t}/done"), &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let app = spawn_app().await;
    let mut morgan = app.person("harbor", "morgan@harbor.example").await;
    app.text_in("+16175550123", "+15555550100", "Hello").await;
    app.drain().await;
    let c: i64 = sqlx::query_scalar("select conversation_id from conversation")
        .fetch_one(&app.db.pool)
        .await
        .expect("conversation");
    let mut responses = Vec::new();
    for path in PAGES {
        // The login form as someone not logged in sees it; the rest as a manager.
        let r = if *path == "/login" {
            app.get(path).await
        } else {
            morgan.get(path).await
        };
        responses.push((path.to_string(), r));
    }
    // The live fragments, the exports, and the refusals.
    for path in [
        format!("/inbox/c/{c}"),
        format!("/inbox/c/{c}/thread"),
        "/inbox/list?filter=open".to_owned(),
        "/dashboard/export.csv?period=today".to_owned(),
        "/dashboard/suppressions.csv".to_owned(),
    ] {
        let r = morgan.get(&path).await;
        assert_eq!(r.status, 200, "{path}");
        responses.push((path, r));
    }
    let note = format!("/inbox/c/{c}/note");
    let bad = morgan.post(&note, &[("body", "")]).await;
    assert_eq!(bad.status, 400);
    responses.push(("400".to_owned(), bad));
    let forged = morgan
        .post_raw(&note, &[("body".to_owned(), "x".to_owned())], &[])
        .await;
    assert_eq!(forged.status, 403);
    responses.push(("403".to_owned(), forged));
    add_login(&app.db.pool, "harbor", "sam@harbor.example", PASSWORD).await;
    for _ in 0..5 {
        app.try_login("sam@harbor.example", "wrong password").await;
    }
    let locked = app.try_login("sam@harbor.example", PASSWORD).await;
    assert_eq!(locked.status, 429);
    responses.push(("429".to_owned(), locked));
    for (path, r) in &responses {
        let h = |name: &str| {
            r.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            h("content-security-policy").as_deref(),
            Some(
                "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
            ),
            "{path}"
        );
        assert_eq!(
            h("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            h("referrer-policy").as_deref(),
            Some("same-origin"),
            "{path}"
        );
        assert_eq!(
            h("cross-origin-opener-policy").as_deref(),
            Some("same-origin"),
            "{path}"
        );
        assert!(
            h("content-type").is_some_and(|c| c.contains("charset=utf-8")),
            "{path}: {:?}",
            h("content-type")
        );
        assert!(
            h("strict-transport-security").is_none(),
            "no HSTS on plain http"
        );
        if path != "/static/app.css" {
            assert_eq!(h("cache-control").as_deref(), Some("no-store"), "{path}");
        }
        // No inline script or style: the CSP forbids them, and the pages do without.
        assert!(
            path.ends_with(".csv") || !r.body.contains("<script>") && !r.body.contains("style="),
            "{path}"
        );
    }
}

#[tokio::test]
async fn pages_without_a_session_go_to_the_login() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/inbox",
        "/inbox/c/1",
        "/dashboard",
        "/dashboard/export.csv",
        "/inbox/events",
    ] {
        let r = read(
            no_redirects()
                .get(format!("{}{path}", app.base_url))
                .send()
                .await
                .expect("get"),
        )
        .await;
        assert_eq!(r.status, 303, "{path}");
        let to = r
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(to == "/login" || to == "/inbox", "{path} → {to}");
    }
}

/// Issue 18 §5: a phone adds the inbox to its home screen from the web app manifest, which it
/// reads without the session's cookie, like the icons it names; every page with a head links it.
#[tokio::test]
async fn the_web_app_manifest_and_its_icons_are_served_without_a_session() {
    let app = spawn_app().await;
    let get = |path: String| {
        let url = format!("{}{path}", app.base_url);
        async move { no_redirects().get(url).send().await.expect("get") }
    };
    let r = read(get("/manifest.webmanifest".to_owned()).await).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), "application/manifest+json");
    let csp = r
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        csp.starts_with("default-src 'self';"),
        "the CSP's default-src 'self' admits the manifest: {csp}"
    );
    let manifest: serde_json::Value = serde_json::from_str(&r.body).expect("the manifest is JSON");
    assert_eq!(manifest["name"], "textback");
    assert!(manifest["short_name"].is_string());
    assert_eq!(manifest["start_url"], "/inbox");
    assert_eq!(manifest["display"], "standalone");
    // Its colours are the stylesheet's: the page's ground, and the top bar's (the meta tag's).
    let css = include_str!("../../static/app.css");
    let background = manifest["background_color"].as_str().expect("a colour");
    assert!(
        css.contains(&format!("--bg: {background};")),
        "{background}"
    );
    let theme = manifest["theme_color"]
        .as_str()
        .expect("a colour")
        .to_owned();
    let icons = manifest["icons"].as_array().expect("icons");
    let mut sizes = Vec::new();
    for icon in icons {
        let src = icon["src"].as_str().expect("src");
        let kind = icon["type"].as_str().expect("type");
        let r = get(src.to_owned()).await;
        assert_eq!(r.status().as_u16(), 200, "{src}");
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(content_type.starts_with("image/"), "{src}: {content_type}");
        assert_eq!(content_type, kind, "{src}");
        let body = r.bytes().await.expect("body");
        if kind == "image/png" {
            assert!(body.starts_with(b"\x89PNG\r\n\x1a\n"), "{src} is a PNG");
            let side = |at: usize| {
                u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]])
            };
            let (w, h) = (side(16), side(20));
            assert_eq!(icon["sizes"], format!("{w}x{h}"), "{src}");
            sizes.push(w);
        } else {
            assert!(String::from_utf8_lossy(&body).starts_with("<svg"), "{src}");
        }
    }
    assert!(sizes.contains(&192) && sizes.contains(&512), "{sizes:?}");
    // The pages with a head (the login page here; the others share templates/base.html) link
    // the manifest, the colour and an icon for iOS's home screen, itself served.
    let login = app.get("/login").await;
    for tag in [
        "<link rel=\"manifest\" href=\"/manifest.webmanifest\">".to_owned(),
        format!("<meta name=\"theme-color\" content=\"{theme}\">"),
        "<link rel=\"apple-touch-icon\" href=\"/static/icon-192.png\">".to_owned(),
    ] {
        assert!(login.body.contains(&tag), "{tag}");
    }
    assert_eq!(
        get("/static/icon-192.png".to_owned())
            .await
            .status()
            .as_u16(),
        200
    );
}
