//! Logins, sessions and login attempts (docs/security.md §2). A login belongs to one agent of the
//! setup file; the agent row keeps the role and office.
//!
//! Two lookups here are not scoped to a brokerage, because they are how a request finds its
//! brokerage: a login by email (the login form) and a session by the hash of its cookie.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{BrokerageId, Result};

/// The agent of the setup file that `user add` gives a login to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentForLogin {
    pub agent_id: i64,
    pub is_active: bool,
    pub role: String,
    pub name: String,
}

pub async fn agent_by_email(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    email: &str,
) -> Result<Option<AgentForLogin>> {
    Ok(sqlx::query_as::<_, AgentForLogin>(
        "select agent_id, is_active, role, name from agent where brokerage_id = $1 and email = $2",
    )
    .bind(brokerage)
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

/// The slug of the brokerage where `email` already has a login, if any.
pub async fn login_brokerage(conn: &mut PgConnection, email: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "select b.slug from app_user u join brokerage b using (brokerage_id) where u.email = $1",
    )
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

/// Creates the agent's login, or replaces its password (and then ends its sessions). Returns
/// true when the login is new.
pub async fn set_login(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    agent_id: i64,
    email: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let (user_id, created): (i64, bool) = sqlx::query_as(
        "insert into app_user (brokerage_id, agent_id, email, password_hash, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $5)
         on conflict (agent_id) do update set password_hash = excluded.password_hash, updated_at = excluded.updated_at
         returning user_id, (xmax = 0)",
    )
    .bind(brokerage)
    .bind(agent_id)
    .bind(email)
    .bind(password_hash)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    if !created {
        end_sessions(conn, user_id).await?;
    }
    Ok(created)
}

/// Removes a login (its sessions go with it). Returns false when there was none.
pub async fn remove_login(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    email: &str,
) -> Result<bool> {
    let user: Option<i64> = sqlx::query_scalar(
        "delete from app_user where brokerage_id = $1 and email = $2 returning user_id",
    )
    .bind(brokerage)
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(user.is_some())
}

/// What the login form checks: the password hash, and whether the person may still log in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Login {
    pub user_id: i64,
    pub brokerage_id: BrokerageId,
    pub password_hash: String,
    pub agent_active: bool,
}

/// The login for an email (lower-cased by the caller). Not scoped: it finds the brokerage.
pub async fn login_by_email(conn: &mut PgConnection, email: &str) -> Result<Option<Login>> {
    Ok(sqlx::query_as::<_, Login>(
        "select u.user_id, u.brokerage_id, u.password_hash, a.is_active as agent_active
           from app_user u join agent a on a.brokerage_id = u.brokerage_id and a.agent_id = u.agent_id
          where u.email = $1",
    )
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

/// A new hash of the same password (the parameters changed since it was stored).
pub async fn rehash(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
    user_id: i64,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("update app_user set password_hash = $3, updated_at = $4 where brokerage_id = $1 and user_id = $2")
        .bind(brokerage)
        .bind(user_id)
        .bind(password_hash)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn create_session(
    conn: &mut PgConnection,
    user_id: i64,
    session_hash: &[u8],
    csrf_token: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into user_session (session_hash, user_id, csrf_token, created_at, last_seen_at)
         values ($1, $2, $3, $4, $4)",
    )
    .bind(session_hash)
    .bind(user_id)
    .bind(csrf_token)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A session with the person behind it, as every page needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub user_id: i64,
    pub brokerage_id: BrokerageId,
    pub agent_id: i64,
    pub office_id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub agent_active: bool,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub brokerage_name: String,
    pub time_zone: String,
    pub office_name: String,
}

/// The session whose cookie hashes to `session_hash`. Not scoped: it finds the brokerage.
pub async fn session(conn: &mut PgConnection, session_hash: &[u8]) -> Result<Option<Session>> {
    Ok(sqlx::query_as::<_, Session>(
        "select s.user_id, u.brokerage_id, a.agent_id, a.office_id, u.email, a.name, a.role,
                a.is_active as agent_active, s.csrf_token, s.created_at, s.last_seen_at,
                b.name as brokerage_name, b.time_zone, o.name as office_name
           from user_session s
           join app_user u using (user_id)
           join agent a on a.brokerage_id = u.brokerage_id and a.agent_id = u.agent_id
           join office o on o.brokerage_id = a.brokerage_id and o.office_id = a.office_id
           join brokerage b on b.brokerage_id = u.brokerage_id
          where s.session_hash = $1",
    )
    .bind(session_hash)
    .fetch_optional(conn)
    .await?)
}

pub async fn touch_session(
    conn: &mut PgConnection,
    session_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("update user_session set last_seen_at = $2 where session_hash = $1")
        .bind(session_hash)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_session(conn: &mut PgConnection, session_hash: &[u8]) -> Result<()> {
    sqlx::query("delete from user_session where session_hash = $1")
        .bind(session_hash)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn end_sessions(conn: &mut PgConnection, user_id: i64) -> Result<u64> {
    Ok(sqlx::query("delete from user_session where user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?
        .rows_affected())
}

/// Ends the sessions of the brokerage's agents that the setup file no longer lists.
pub async fn end_sessions_of_inactive(
    conn: &mut PgConnection,
    brokerage: BrokerageId,
) -> Result<u64> {
    // Their sign-in links go too: a forwarded alert text is worth nothing once they are gone.
    sqlx::query(
        "delete from signin_link l using app_user u, agent a
          where l.user_id = u.user_id and a.brokerage_id = u.brokerage_id and a.agent_id = u.agent_id
            and u.brokerage_id = $1 and not a.is_active",
    )
    .bind(brokerage)
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query(
        "delete from user_session s using app_user u, agent a
          where s.user_id = u.user_id and a.brokerage_id = u.brokerage_id and a.agent_id = u.agent_id
            and u.brokerage_id = $1 and not a.is_active",
    )
    .bind(brokerage)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Serialises the throttle's count-and-record for one email and one client address until
/// the end of the transaction, so that parallel attempts cannot all pass a limit of N.
pub async fn lock_attempts(conn: &mut PgConnection, email: &str, client_ip: &str) -> Result<()> {
    sqlx::query(
        "select pg_advisory_xact_lock(hashtext('textback:login-ip'), hashtext($2)),
                pg_advisory_xact_lock(hashtext('textback:login-email'), hashtext($1))",
    )
    .bind(email)
    .bind(client_ip)
    .execute(conn)
    .await?;
    Ok(())
}

/// The account's failures since its last success within `since`, and the address's attempts
/// since `ip_since`, each newest first.
pub async fn recent_attempts(
    conn: &mut PgConnection,
    email: &str,
    client_ip: &str,
    since: DateTime<Utc>,
    ip_since: DateTime<Utc>,
) -> Result<(Vec<DateTime<Utc>>, Vec<DateTime<Utc>>)> {
    let failures: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "select at from login_attempt
          where email = $1 and at > $2 and succeeded is not true
            and at > coalesce((select max(at) from login_attempt where email = $1 and succeeded), '-infinity')
          order by at desc limit 50",
    )
    .bind(email)
    .bind(since)
    .fetch_all(&mut *conn)
    .await?;
    let from_ip: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "select at from login_attempt where client_ip = $1::inet and at > $2 order by at desc limit 50",
    )
    .bind(client_ip)
    .bind(ip_since)
    .fetch_all(conn)
    .await?;
    Ok((failures, from_ip))
}

/// Records an attempt whose password is about to be checked.
pub async fn begin_attempt(
    conn: &mut PgConnection,
    email: &str,
    client_ip: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "insert into login_attempt (email, client_ip, at) values ($1, $2::inet, $3) returning login_attempt_id",
    )
    .bind(email)
    .bind(client_ip)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

pub async fn end_attempt(conn: &mut PgConnection, attempt_id: i64, succeeded: bool) -> Result<()> {
    sqlx::query("update login_attempt set succeeded = $2 where login_attempt_id = $1")
        .bind(attempt_id)
        .bind(succeeded)
        .execute(conn)
        .await?;
    Ok(())
}

/// Attempts older than a day count for nothing any more.
pub async fn prune_attempts(conn: &mut PgConnection, before: DateTime<Utc>) -> Result<u64> {
    Ok(sqlx::query("delete from login_attempt where at < $1")
        .bind(before)
        .execute(conn)
        .await?
        .rows_affected())
}
