//! Owns the `WHERE` clause of a `SessionFilter` in the SQL stores: the
//! conditions both databases write alike, with the text search (`q`) and
//! the `meta.<key>=<value>` criteria left to the store's `Dialect`.

use sqlx::encode::Encode;
use sqlx::{Database, QueryBuilder, Type};

use super::Dialect;
use crate::history::SessionFilter;

/// Pushes ` WHERE ...` for `filter` (always a `WHERE`, so callers may add
/// `AND ...`). `DB` pushes its own condition for `q` and for each
/// `meta.<key>=<value>`.
pub(super) fn push_where<DB>(query: &mut QueryBuilder<DB>, filter: &SessionFilter)
where
    DB: Dialect,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    query.push(" WHERE TRUE");
    for (column, value) in [
        ("user_id", &filter.user_id),
        ("org", &filter.org),
        ("node_id", &filter.node_id),
        ("email", &filter.email),
        ("team", &filter.team),
    ] {
        if let Some(value) = value {
            query.push(format_args!(" AND {column} = "));
            query.push_bind(value.clone());
        }
    }
    if let Some(from) = filter.from {
        query.push(" AND connected_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        query.push(" AND connected_at < ").push_bind(to);
    }
    if let Some(since) = filter.active_since {
        // Recorded sessions have all ended; `ended_at` is never null here.
        query.push(" AND (ended_at >= ").push_bind(since);
        query.push(" OR connected_at >= ").push_bind(since);
        query.push(")");
    }
    if let Some(q) = filter.q.as_deref().filter(|q| !q.is_empty()) {
        query.push(" AND ");
        DB::push_text(query, q);
    }
    for criterion in &filter.meta {
        query.push(" AND ");
        DB::push_meta(query, criterion);
    }
}

/// The expressions `q` searches, lowercased where the search ignores case.
/// PostgreSQL's `sessions_search` trigram index covers exactly these
/// (`migrations/postgres/0003_search_identity.sql`), so changing one takes
/// a migration.
const SEARCHED: [&str; 6] = [
    "lower(user_id)",
    "lower(coalesce(name, ''))",
    "lower(coalesce(ip, ''))",
    "session_id",
    "lower(coalesce(email, ''))",
    "lower(coalesce(team, ''))",
];

/// Pushes `(... OR ...)`: `condition` pushes the match of one searched
/// expression.
pub(in crate::history) fn push_searched<DB: Database>(
    query: &mut QueryBuilder<DB>,
    mut condition: impl FnMut(&mut QueryBuilder<DB>, &str),
) {
    query.push("(");
    for (i, column) in SEARCHED.into_iter().enumerate() {
        if i > 0 {
            query.push(" OR ");
        }
        condition(query, column);
    }
    query.push(")");
}
