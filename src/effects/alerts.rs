//! Alerts for people and callback tasks, raised inside the event's transaction.

use crate::store::jobs::{JobPayload, Place, payload};
use sqlx::PgConnection;

use crate::store::{self, BrokerageId, alerts, tasks};

/// Who an alert is texted to, beyond being recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deliver {
    /// Recorded (and shown) only: e.g. a problem sending an alert, which must not text again.
    No,
    /// Texted to the audience: `agents` of the conversation (or of `number_id` when the
    /// contact has none), `managers` of the number's office, `admins` when the reason is a
    /// configuration alert (`domain::alerts::admin_texted`).
    Yes { number_id: Option<i64> },
    /// Texted to these people only (a first-to-claim offer's agents, a notice's one person).
    To(Vec<i64>),
}

/// Records an alert for people and queues an `agent_alert` job for each person who is to be
/// texted about it (docs/architecture.md step 9), in the caller's transaction. The rate limit is applied
/// when each job runs. Returns the alert's id (none when an alert of a once-a-day kind was
/// raised already).
pub async fn raise_alert(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    alert: &alerts::NewAlert<'_>,
    deliver: Deliver,
) -> store::Result<Option<i64>> {
    let Some(alert_id) = alerts::raise(conn, brokerage, alert).await? else {
        return Ok(None);
    };
    let number_id = match deliver {
        Deliver::No => return Ok(Some(alert_id)),
        Deliver::To(people) => {
            for agent_id in people {
                payload::AgentAlert { alert_id, agent_id }
                    .enqueue(conn, brokerage, Place::at(alert.now, alert.now))
                    .await?;
            }
            return Ok(Some(alert_id));
        }
        Deliver::Yes { number_id } => number_id,
    };
    let recipients = match alert.audience {
        "admins" if crate::domain::alerts::admin_texted(alert.reason, alert.detail) => {
            alerts::admins(conn, brokerage).await?
        }
        "agents" => alerts::agents_for(conn, brokerage, alert.contact_id, number_id).await?,
        "managers" => {
            let office = match number_id {
                Some(n) => store::numbers::get(conn, brokerage, n)
                    .await?
                    .map(|n| n.office_id),
                None => None,
            };
            match office {
                Some(office) => alerts::managers(conn, brokerage, office).await?,
                None => alerts::admins(conn, brokerage).await?,
            }
        }
        _ => Vec::new(),
    };
    for agent_id in recipients {
        payload::AgentAlert { alert_id, agent_id }
            .enqueue(conn, brokerage, Place::at(alert.now, alert.now))
            .await?;
    }
    Ok(Some(alert_id))
}

/// Opens a callback task for the number's agents unless the contact has one open, and alerts
/// them (docs/architecture.md step 8). Returns the new task's id.
pub async fn open_callback_task(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    task: &tasks::NewTask<'_>,
) -> store::Result<Option<i64>> {
    let Some(task_id) = tasks::open_callback(conn, brokerage, task).await? else {
        return Ok(None);
    };
    let detail = match task.detail {
        Some(d) => format!("{}:{d}", task.reason),
        None => task.reason.to_owned(),
    };
    raise_alert(
        conn,
        brokerage,
        &alerts::NewAlert {
            audience: "agents",
            reason: "callback_task",
            detail: Some(&detail),
            contact_id: Some(task.contact_id),
            message_id: task.message_id,
            call_id: task.call_id,
            now: task.now,
        },
        Deliver::Yes {
            number_id: Some(task.number_id),
        },
    )
    .await?;
    Ok(Some(task_id))
}

/// A one-off text to one person about a conversation (docs/routing.md): the answer to a
/// command they texted, who claimed a lead, a move of ownership. `text` is the whole message
/// after the brokerage's name; it is recorded as the alert's detail.
pub async fn notify(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    agent_id: i64,
    contact_id: Option<crate::store::ContactId>,
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> store::Result<()> {
    raise_alert(
        conn,
        brokerage,
        &alerts::NewAlert {
            audience: "agents",
            reason: "notice",
            detail: Some(text),
            contact_id,
            message_id: None,
            call_id: None,
            now,
        },
        Deliver::To(vec![agent_id]),
    )
    .await?;
    Ok(())
}
