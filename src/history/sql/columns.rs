//! Owns how an ended session is stored in the SQL stores: the columns of
//! `sessions` (`Columns`, read from the contract's Session JSON) and the
//! values one row binds, in `INSERT_COLUMNS` order.

use serde_json::Value;
use sqlx::encode::Encode;
use sqlx::query_builder::Separated;
use sqlx::{Database, Type};

use crate::history::HistoryError;
use crate::model::SessionView;

/// Rows per `INSERT`: 29 parameters each, well inside SQLite's 32,766 and
/// PostgreSQL's 65,535.
pub(super) const INSERT_CHUNK: usize = 200;

/// The columns of `sessions` that `INSERT` writes, in `push_row`'s order.
pub(super) const INSERT_COLUMNS: &str = "session_id, user_id, name, org, email, team, node_id, \
     transport, ip, user_agent, platform, device_type, browser, app_name, app_version, page, \
     meta, connected_at, last_activity, ended_at, end_cause, duration_s, msgs_in, msgs_out, \
     bytes_in, bytes_out, rtt_ms, timeline, view";

/// One ended session as stored: the contract's Session JSON (`view`, read
/// back as is) plus every field a query filters, sorts or aggregates on.
/// Fields the model does not carry yet (`email`, `team`, `traffic`,
/// `rtt_ms`) are taken from the JSON when present, so they fill in as the
/// model gains them.
pub(super) struct Columns {
    text: [Option<String>; 16],
    meta: Option<String>,
    times: [i64; 3],
    end_cause: Option<String>,
    duration_s: f64,
    traffic: [Option<i64>; 4],
    rtt_ms: Option<f64>,
    timeline: Option<String>,
    view: String,
}

fn text_at(value: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl Columns {
    pub(super) fn of(session: &SessionView) -> Result<Self, HistoryError> {
        let value =
            serde_json::to_value(session).map_err(|e| HistoryError::Store(e.to_string()))?;
        let at = |path: &[&str]| text_at(&value, path);
        let number = |key: &str| value.get("traffic").and_then(|t| t.get(key)?.as_i64());
        Ok(Self {
            text: [
                Some(session.session_id.to_string()),
                Some(session.user_id.as_str().to_string()),
                session.name.clone(),
                session.org.clone(),
                at(&["email"]),
                at(&["team"]),
                Some(session.node_id.to_string()),
                at(&["transport"]),
                session.ip.clone(),
                session.user_agent.clone(),
                at(&["device", "platform"]),
                at(&["device", "device_type"]),
                at(&["device", "browser"]),
                at(&["app", "name"]),
                at(&["app", "version"]),
                session.page.clone(),
            ],
            meta: session
                .meta
                .as_ref()
                .map(|meta| Value::Object(meta.clone()).to_string()),
            times: [
                session.connected_at,
                session.last_activity,
                session.ended_at.unwrap_or(session.connected_at),
            ],
            end_cause: at(&["end_cause"]),
            duration_s: session.duration_s,
            traffic: [
                number("msgs_in"),
                number("msgs_out"),
                number("bytes_in"),
                number("bytes_out"),
            ],
            rtt_ms: value.get("rtt_ms").and_then(Value::as_f64),
            timeline: session
                .timeline
                .as_ref()
                .and_then(|t| serde_json::to_string(t).ok()),
            view: value.to_string(),
        })
    }
}

/// Pushes one row's values in `INSERT_COLUMNS` order; `json_cast` follows
/// the `meta` placeholder (`::jsonb` on PostgreSQL).
pub(super) fn push_row<DB>(row: &mut Separated<'_, DB, &'static str>, c: &Columns, json_cast: &str)
where
    DB: Database,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> f64: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<f64>: Encode<'t, DB> + Type<DB>,
{
    for text in &c.text {
        row.push_bind(text.clone());
    }
    row.push_bind(c.meta.clone()).push_unseparated(json_cast);
    for time in c.times {
        row.push_bind(time);
    }
    row.push_bind(c.end_cause.clone());
    row.push_bind(c.duration_s);
    for count in c.traffic {
        row.push_bind(count);
    }
    row.push_bind(c.rtt_ms);
    row.push_bind(c.timeline.clone())
        .push_unseparated(json_cast);
    row.push_bind(c.view.clone());
}
