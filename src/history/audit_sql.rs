//! Owns the audit trail in the SQL stores (`audit_events`, migration
//! 0002): how an `AuditEvent` is stored as columns and read back, the
//! `WHERE` clause of an `AuditFilter`, and `AuditStore` implemented once
//! for every `SqlBacked` store (`SqliteHistory`, `PostgresHistory`); the
//! dialects differ only in their placeholders, which `QueryBuilder` writes,
//! and in the pause between prune batches.
//!
//! `actor` is stored as its three columns; an event whose three actor
//! columns are all null reads back with `actor` null (the hub never records
//! an actor without at least its IP).

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::decode::Decode;
use sqlx::encode::Encode;
use sqlx::{ColumnIndex, Database, Executor, IntoArguments, QueryBuilder, Type};

use super::sql::{SqlBacked, prune_in_batches, to_i64, to_usize};
use crate::audit::store::{AuditError, AuditFilter, AuditPage, AuditStore};
use crate::model::{AuditAction, AuditActor, AuditEvent, AuditTarget, Millis};

/// The columns `INSERT` writes and `SELECT` reads, in `AuditRow`'s order.
const AUDIT_COLUMNS: &str = "id, at, action, actor_user_id, actor_role, actor_ip, \
     target_user_id, target_session_id, reason, node_id, result";

/// Rows per `INSERT`: 11 parameters each.
const AUDIT_INSERT_CHUNK: usize = 500;

/// One stored event, as `SELECT {AUDIT_COLUMNS}` returns it.
type AuditRow = (
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
fn push_events<DB>(query: &mut QueryBuilder<DB>, events: &[AuditEvent])
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
fn push_audit_where<DB>(query: &mut QueryBuilder<DB>, filter: &AuditFilter)
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
const AUDIT_ORDER: &str = " ORDER BY at DESC, id DESC";

/// An event read back; a row with an action this binary does not know is
/// skipped with a warning.
fn audit_event(row: AuditRow) -> Option<AuditEvent> {
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
fn audit_error(err: &sqlx::Error) -> AuditError {
    AuditError::Store(err.to_string())
}

impl<S> AuditStore for S
where
    S: SqlBacked,
    for<'c> &'c mut <S::Db as Database>::Connection: Executor<'c, Database = S::Db>,
    <S::Db as Database>::Arguments: IntoArguments<S::Db>,
    usize: ColumnIndex<<S::Db as Database>::Row>,
    for<'t> String: Encode<'t, S::Db> + Decode<'t, S::Db> + Type<S::Db>,
    for<'t> i64: Encode<'t, S::Db> + Decode<'t, S::Db> + Type<S::Db>,
    for<'t> Option<String>: Encode<'t, S::Db>,
{
    fn record(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, Result<(), AuditError>> {
        async move {
            let mut tx = self
                .pools()
                .writer
                .begin()
                .await
                .map_err(|e| audit_error(&e))?;
            for chunk in events.chunks(AUDIT_INSERT_CHUNK) {
                let mut insert = QueryBuilder::<S::Db>::new(format!(
                    "INSERT INTO audit_events ({AUDIT_COLUMNS}) "
                ));
                push_events(&mut insert, chunk);
                insert.push(" ON CONFLICT (id) DO NOTHING");
                insert
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| audit_error(&e))?;
            }
            tx.commit().await.map_err(|e| audit_error(&e))
        }
        .boxed()
    }

    fn find(
        &self,
        filter: AuditFilter,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<AuditPage, AuditError>> {
        async move {
            let reader = &self.pools().reader;
            let mut count = QueryBuilder::<S::Db>::new("SELECT count(*) FROM audit_events");
            push_audit_where(&mut count, &filter);
            let total: i64 = count
                .build_query_scalar()
                .fetch_one(reader)
                .await
                .map_err(|e| audit_error(&e))?;
            let mut select =
                QueryBuilder::<S::Db>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_events"));
            push_audit_where(&mut select, &filter);
            select
                .push(AUDIT_ORDER)
                .push(" LIMIT ")
                .push_bind(to_i64(limit))
                .push(" OFFSET ")
                .push_bind(to_i64(offset));
            let rows: Vec<AuditRow> = select
                .build_query_as()
                .fetch_all(reader)
                .await
                .map_err(|e| audit_error(&e))?;
            Ok(AuditPage {
                events: rows.into_iter().filter_map(audit_event).collect(),
                total: to_usize(total),
            })
        }
        .boxed()
    }

    fn prune(&self, before: Millis) -> BoxFuture<'_, Result<usize, AuditError>> {
        async move {
            prune_in_batches(&self.pools().writer, "audit_events", "at", before)
                .await
                .map_err(|e| audit_error(&e))
        }
        .boxed()
    }
}
