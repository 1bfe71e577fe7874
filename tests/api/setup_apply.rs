//! `setup apply` against a real database: all or nothing, idempotent, edits in place,
//! removals deactivate (README.md "The setup file"; docs/security.md §3 rows 31–34).

use textback::store::setup::{ApplyError, apply};

use crate::helpers::*;

async fn counts(db: &TestDb) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for t in [
        "brokerage",
        "office",
        "agent",
        "number",
        "number_ring",
        "follow_up_step",
    ] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {t}")))
            .fetch_one(&db.pool)
            .await
            .expect("count");
        out.push((t.to_owned(), n));
    }
    out
}

#[tokio::test]
async fn the_demo_file_applies_and_a_second_apply_changes_nothing() {
    let db = TestDb::new().await;
    let first = apply_setup(&db.pool, DEMO).await;
    assert!(!first.is_unchanged());
    assert!(
        first
            .changes
            .iter()
            .any(|c| c == "brokerage harbor (Harbor Realty): created"),
        "{:?}",
        first.changes
    );
    let expected: Vec<(String, i64)> = [
        ("brokerage", 1),
        ("office", 2),
        ("agent", 5),
        ("number", 2),
        ("number_ring", 3),
        ("follow_up_step", 1),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_owned(), n))
    .collect();
    assert_eq!(counts(&db).await, expected);

    let before = snapshot(&db.pool).await;
    let second = apply_setup(&db.pool, DEMO).await;
    assert!(second.is_unchanged(), "{:?}", second.changes);
    assert_eq!(
        snapshot(&db.pool).await,
        before,
        "not even updated_at moves"
    );
}

#[tokio::test]
async fn the_stored_settings_are_the_files() {
    let db = TestDb::new().await;
    apply_setup(&db.pool, DEMO).await;
    let (delay, templates, escalate, after_hours, tz): (i32, serde_json::Value, i32, String, String) = sqlx::query_as(
        "select text_back_delay_secs, text_back_templates, escalate_after_secs, after_hours, time_zone from brokerage",
    )
    .fetch_one(&db.pool)
    .await
    .expect("brokerage");
    assert_eq!(
        (delay, escalate, after_hours.as_str(), tz.as_str()),
        (20, 600, "defer", "America/New_York")
    );
    assert!(
        templates[0]
            .as_str()
            .is_some_and(|t| t.starts_with("Hi {first_name|there}"))
    );
    let ring: Vec<String> = sqlx::query_scalar(
        "select a.email from number_ring r join agent a using (agent_id) join number n using (number_id)
          where n.e164 = '+15555550100' order by r.position",
    )
    .fetch_all(&db.pool)
    .await
    .expect("ring");
    assert_eq!(ring, vec!["sam@harbor.example", "ava@harbor.example"]);
}

#[tokio::test]
async fn an_edited_file_updates_in_place_and_removals_deactivate() {
    let db = TestDb::new().await;
    apply_setup(&db.pool, DEMO).await;
    let sam_before: i64 =
        sqlx::query_scalar("select agent_id from agent where email = 'sam@harbor.example'")
            .fetch_one(&db.pool)
            .await
            .expect("sam");

    // Sam renamed, Jo removed (the Elm St number now rings Sam), the delay changed, the
    // follow-up dropped.
    let jo = "[[agents]]\nemail = \"jo@harbor.example\"\nname = \"Jo Alvarez\"\nphone = \"+15555550111\"\noffice = \"waterfront\"\nrole = \"agent\"\n\n";
    let edited = DEMO
        .replace("name = \"Sam Rivera\"", "name = \"Samantha Rivera\"")
        .replace(jo, "")
        .replace(
            "ring = [\"jo@harbor.example\"]",
            "ring = [\"sam@harbor.example\"]",
        )
        .replace("delay_secs = 20", "delay_secs = 45");
    let edited = edited[..edited.find("[[follow_ups]]").expect("follow-ups")].to_owned()
        + "[inbox]\nescalate_after = \"10m\"\n";
    assert!(!edited.contains("jo@"), "the edit removed Jo");
    let summary = apply_setup(&db.pool, &edited).await;
    for expected in [
        "brokerage harbor (Harbor Realty): settings updated",
        "agent sam@harbor.example: updated",
        "agent jo@harbor.example: deactivated (no longer in the file; history kept)",
        "number +15555550110: ring list set to sam@harbor.example",
        "follow-up #1: removed",
    ] {
        assert!(
            summary.changes.iter().any(|c| c == expected),
            "{expected:?} not in {:#?}",
            summary.changes
        );
    }
    let (sam_after, name): (i64, String) =
        sqlx::query_as("select agent_id, name from agent where email = 'sam@harbor.example'")
            .fetch_one(&db.pool)
            .await
            .expect("sam");
    assert_eq!(
        (sam_after, name.as_str()),
        (sam_before, "Samantha Rivera"),
        "same row, updated"
    );
    let jo_active: bool =
        sqlx::query_scalar("select is_active from agent where email = 'jo@harbor.example'")
            .fetch_one(&db.pool)
            .await
            .expect("jo kept");
    assert!(!jo_active);
    let delay: i32 = sqlx::query_scalar("select text_back_delay_secs from brokerage")
        .fetch_one(&db.pool)
        .await
        .expect("delay");
    assert_eq!(delay, 45);
    assert!(
        apply_setup(&db.pool, &edited).await.is_unchanged(),
        "the edited file is idempotent too"
    );

    // Putting Jo back reactivates the same row.
    let back = apply_setup(&db.pool, DEMO).await;
    assert!(
        back.changes
            .iter()
            .any(|c| c == "agent jo@harbor.example: updated"),
        "{:?}",
        back.changes
    );
    assert_eq!(counts(&db).await[2], ("agent".to_owned(), 5));
}

#[tokio::test]
async fn a_removed_number_is_deactivated_and_no_longer_answers() {
    let app = spawn_app().await;
    let without_elm = {
        let start = DEMO
            .find("[[numbers]]                        # the waterfront")
            .expect("elm number");
        let end = DEMO.find("[text_back]").expect("text_back");
        format!("{}{}", &DEMO[..start], &DEMO[end..])
    };
    let summary = apply_setup(&app.db.pool, &without_elm).await;
    assert!(
        summary
            .changes
            .iter()
            .any(|c| c == "number +15555550110: deactivated (no longer in the file; history kept)"),
        "{:?}",
        summary.changes
    );
    let call = with(
        with(fixture("voice-incoming.txt"), "To", "+15555550110"),
        "Called",
        "+15555550110",
    );
    let r = app.post_signed("/twilio/voice", &call).await;
    assert!(twiml_verbs(&r.body).is_empty(), "{}", r.body);
    assert_eq!(app.count("call").await, 0);

    // A text to it is still stored: a lead's STOP must never be lost.
    let stop = with(fixture("sms-inbound-stop.txt"), "To", "+15555550110");
    assert_eq!(app.post_signed("/twilio/sms", &stop).await.status, 200);
    let to: String = sqlx::query_scalar(
        "select n.e164 from message m join number n using (brokerage_id, number_id)",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("stored");
    assert_eq!(to, "+15555550110");
}

/// docs/security.md §3 row 32: one number in two brokerages; nothing is applied.
#[tokio::test]
async fn a_number_cannot_belong_to_two_brokerages_and_nothing_is_applied() {
    let db = TestDb::new().await;
    apply_setup(&db.pool, DEMO).await;
    let before = snapshot(&db.pool).await;
    let other = DEMO
        .replace("slug = \"harbor\"", "slug = \"bayside\"")
        .replace("name = \"Harbor Realty\"", "name = \"Bayside Homes\"")
        .replace("from Harbor Realty about", "from Bayside Homes about");
    let file = textback::setup::parse(&other).expect("valid on its own");
    match apply(&db.pool, &file).await {
        Err(ApplyError::Problems(problems)) => {
            assert_eq!(problems.len(), 2, "{problems:?}");
            assert_eq!(problems[0].line, 55);
            assert!(
                problems[0]
                    .message
                    .contains("+15555550100 already belongs to brokerage `harbor`"),
                "{}",
                problems[0]
            );
        }
        other => panic!("expected problems, got {other:?}"),
    }
    assert_eq!(snapshot(&db.pool).await, before, "all or nothing");
}

#[tokio::test]
async fn concurrent_applies_of_one_file_give_one_set_of_rows() {
    let db = TestDb::new().await;
    let other = db.another_pool().await;
    let file = textback::setup::parse(DEMO).expect("valid");
    let (a, b) = tokio::join!(apply(&db.pool, &file), apply(&other, &file));
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert!(
        a.is_unchanged() != b.is_unchanged(),
        "one created, the other found everything in place"
    );
    assert_eq!(counts(&db).await[2], ("agent".to_owned(), 5));
}
