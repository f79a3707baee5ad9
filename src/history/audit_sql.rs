//! Owns the audit trail in the SQL stores (`audit_events`, migration
//! 0002): how an `AuditEvent` is stored as columns and read back, and the
//! `WHERE` clause of an `AuditFilter`. `SqliteHistory` and
//! `PostgresHistory` implement `AuditStore` with these; the dialects differ
//! only in their placeholders, which `QueryBuilder` writes.
//!
//! `actor` is stored as its three columns; an event whose three actor
//! columns are all null reads back with `actor` null (the hub never records
//! an actor without at least its IP).

use sqlx::encode::Encode;
use sqlx::{Database, QueryBuilder, Type};

use crate::audit::store::{AuditError, AuditFilter};
use crate::model::{AuditAction, AuditActor, AuditEvent, AuditTarget};

/// The columns `INSERT` writes and `SELECT` reads, in `AuditRow`'s order.
pub(super) const AUDIT_COLUMNS: &str = "id, at, action, actor_user_id, actor_role, actor_ip, \
     target_user_id, target_session_id, reason, node_id, result";

/// Rows per `INSERT`: 11 parameters each.
pub(super) const AUDIT_INSERT_CHUNK: usize = 500;

/// One stored event, as `SELECT {AUDIT_COLUMNS}` returns it.
pub(super) type AuditRow = (
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
);

/// Pushes `VALUES (...), (...)` for `events`.
pub(super) fn push_events<DB>(query: &mut QueryBuilder<DB>, events: &[AuditEvent])
where
    DB: Database,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    query.push_values(events, |mut row, event| {
        let actor = event.actor.as_ref();
        row.push_bind(event.id.clone())
            .push_bind(event.at)
            .push_bind(event.action.as_str().to_string())
            .push_bind(actor.and_then(|a| a.user_id.clone()))
            .push_bind(actor.and_then(|a| a.role.clone()))
            .push_bind(actor.and_then(|a| a.ip.clone()))
            .push_bind(event.target.user_id.clone())
            .push_bind(event.target.session_id.clone())
            .push_bind(event.reason.clone())
            .push_bind(event.node_id.clone())
            .push_bind(event.result.clone());
    });
}

/// Pushes ` WHERE ...` for `filter`.
pub(super) fn push_audit_where<DB>(query: &mut QueryBuilder<DB>, filter: &AuditFilter)
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    query.push(" WHERE TRUE");
    if let Some(action) = filter.action {
        query
            .push(" AND action = ")
            .push_bind(action.as_str().to_string());
    }
    if let Some(actor) = &filter.actor {
        query.push(" AND actor_user_id = ").push_bind(actor.clone());
    }
    if let Some(user) = &filter.user_id {
        query.push(" AND target_user_id = ").push_bind(user.clone());
    }
    if let Some(from) = filter.from {
        query.push(" AND at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        query.push(" AND at < ").push_bind(to);
    }
}

/// The order of `AuditStore::find`: newest first, ties by id descending
/// (as `MemoryAudit` sorts).
pub(super) const AUDIT_ORDER: &str = " ORDER BY at DESC, id DESC";

/// An event read back; a row with an action this binary does not know is
/// skipped with a warning.
pub(super) fn audit_event(row: AuditRow) -> Option<AuditEvent> {
    let (
        id,
        at,
        action,
        actor_user_id,
        actor_role,
        actor_ip,
        user_id,
        session_id,
        reason,
        node_id,
        result,
    ) = row;
    let Some(action) = AuditAction::parse(&action) else {
        tracing::warn!(
            action,
            "skipping a stored audit event with an unknown action"
        );
        return None;
    };
    let actor = (actor_user_id.is_some() || actor_role.is_some() || actor_ip.is_some()).then_some(
        AuditActor {
            user_id: actor_user_id,
            role: actor_role,
            ip: actor_ip,
        },
    );
    Some(AuditEvent {
        id,
        at,
        action,
        actor,
        target: AuditTarget {
            user_id,
            session_id,
        },
        reason,
        node_id,
        result,
    })
}

/// A failed audit query.
pub(super) fn audit_error(err: &sqlx::Error) -> AuditError {
    AuditError::Store(err.to_string())
}
