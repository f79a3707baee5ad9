//! Owns `GET /api/v1/sessions/export`: live and ended sessions connected in
//! a range, as RFC 4180 CSV (CRLF, quoted where needed) or NDJSON, streamed
//! in batches so a large history never sits in memory as one file.
//!
//! CSV cells that a spreadsheet would read as a formula (beginning with
//! `=`, `+`, `-`, `@`, a tab or a carriage return) get a leading `'`, as
//! OWASP advises against CSV injection: a user named `=HYPERLINK(...)`
//! must not run in the admin's spreadsheet. NDJSON is left as it is.

use std::sync::Arc;

use super::query::{parse_pairs, text, time};
use super::sessions::live_sessions;
use super::tabular::{csv_table, ndjson_lines, send_chunk};
use super::{AdminContext, audit_outcome};
use crate::audit::Caller;
use crate::history::SessionFilter;
use crate::http::error::ApiError;
use crate::http::streamed::{BodySender, streamed_response};
use crate::model::{AuditAction, AuditTarget};
use crate::model::{SessionView, format_rfc3339};

/// The CSV header row, as the contract names it.
pub const CSV_HEADER: [&str; 21] = [
    "session_id",
    "user_id",
    "name",
    "org",
    "node_id",
    "transport",
    "status",
    "connected_at",
    "ended_at",
    "end_cause",
    "duration_s",
    "ip",
    "platform",
    "device_type",
    "browser",
    "app_name",
    "app_version",
    "page",
    "email",
    "team",
    "meta",
];

/// Sessions read from history per batch.
const BATCH: usize = 500;

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180 CSV.
    Csv,
    /// One Session JSON per line.
    Ndjson,
}

/// `GET /api/v1/sessions/export`, recorded in the audit trail with its
/// query as the reason.
pub async fn export_sessions(
    hub: Arc<AdminContext>,
    query: &str,
    caller: &Caller,
) -> Result<warp::reply::Response, ApiError> {
    let auditor = hub.clone();
    let outcome = start_export(hub, query).await;
    audit_outcome(
        &auditor,
        AuditAction::SessionsExport,
        caller,
        AuditTarget::default(),
        Some(query.to_string()),
        &outcome,
    );
    outcome
}

async fn start_export(
    hub: Arc<AdminContext>,
    query: &str,
) -> Result<warp::reply::Response, ApiError> {
    let pairs = parse_pairs(query)?;
    let format = match text(&pairs, "format").as_deref() {
        None | Some("csv") => Format::Csv,
        Some("ndjson") => Format::Ndjson,
        Some(other) => {
            return Err(ApiError::bad_parameter(
                "format",
                format!("{other:?} is not csv or ndjson"),
            ));
        }
    };
    // v1: only the range filters the export, and `to` before `from` is an
    // empty export, not an error; v1.1 adds `email`, `team`.
    let filter = SessionFilter {
        from: time(&pairs, "from")?,
        to: time(&pairs, "to")?,
        email: text(&pairs, "email"),
        team: text(&pairs, "team"),
        meta: super::query::meta_criteria(&pairs)?,
        ..SessionFilter::default()
    };
    let live = live_sessions(&hub, filter.clone()).await?;
    let (response, body) = match format {
        Format::Csv => streamed_response("text/csv; charset=utf-8", Some("sessions.csv")),
        Format::Ndjson => streamed_response("application/x-ndjson", Some("sessions.ndjson")),
    };
    tokio::spawn(async move {
        if let Err(err) = write_export(&hub, format, filter, live, &body).await {
            tracing::debug!(error = %err, "export stopped");
        }
    });
    Ok(response)
}

async fn write_export(
    hub: &AdminContext,
    format: Format,
    filter: SessionFilter,
    live: Vec<SessionView>,
    body: &BodySender,
) -> Result<(), String> {
    if format == Format::Csv {
        send_chunk(body, csv_rows(&[], true)?).await?;
    }
    send_chunk(body, encode(format, &live)?).await?;
    let mut cursor = 0;
    loop {
        let (batch, next) = hub
            .history
            .scan(filter.clone(), cursor, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        send_chunk(body, encode(format, &batch)?).await?;
        match next {
            Some(next) => cursor = next,
            None => return Ok(()),
        }
    }
}

fn encode(format: Format, sessions: &[SessionView]) -> Result<Vec<u8>, String> {
    match format {
        Format::Csv => csv_rows(sessions, false),
        Format::Ndjson => ndjson_lines(sessions),
    }
}

/// CSV rows for `sessions` (with the header row first when asked).
pub fn csv_rows(sessions: &[SessionView], header: bool) -> Result<Vec<u8>, String> {
    csv_table(
        header.then_some(&CSV_HEADER[..]),
        sessions.iter().map(csv_record),
    )
}

fn csv_record(s: &SessionView) -> [String; 21] {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let app = s.app.clone().unwrap_or_default();
    [
        s.session_id.to_string(),
        s.user_id.to_string(),
        text(&s.name),
        text(&s.org),
        s.node_id.to_string(),
        s.transport.as_str().to_string(),
        s.status.as_str().to_string(),
        format_rfc3339(s.connected_at),
        s.ended_at.map(format_rfc3339).unwrap_or_default(),
        s.end_cause
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        format!("{:.3}", s.duration_s),
        text(&s.ip),
        text(&s.device.platform),
        text(&s.device.device_type),
        text(&s.device.browser),
        text(&app.name),
        text(&app.version),
        text(&s.page),
        text(&s.email),
        text(&s.team),
        s.meta
            .as_ref()
            .map(|m| serde_json::Value::Object(m.clone()).to_string())
            .unwrap_or_default(),
    ]
}
