//! Owns `GET /api/v1/audit` (the audit trail, filtered and paged, newest
//! first) and `GET /api/v1/audit/export` (CSV or NDJSON, streamed).

use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use warp::reply::Reply;

use super::AdminContext;
use super::query::{Paging, parse_pairs, text, time};
use super::tabular::{csv_table, ndjson_lines, send_chunk};
use crate::audit::store::{AuditError, AuditFilter};
use crate::http::error::ApiError;
use crate::http::streamed::{BodySender, streamed_response};
use crate::model::{AuditAction, AuditEvent, format_rfc3339};

/// The CSV columns of the audit export, in order.
pub const CSV_HEADER: [&str; 11] = [
    "id",
    "at",
    "action",
    "actor_user_id",
    "actor_role",
    "actor_ip",
    "target_user_id",
    "target_session_id",
    "reason",
    "node_id",
    "result",
];

/// Events read from the store per export batch.
const BATCH: usize = 1_000;

#[derive(Serialize)]
struct AuditList {
    events: Vec<AuditEvent>,
    total: usize,
    page: usize,
    page_size: usize,
}

impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> Self {
        tracing::warn!(error = %error, "audit trail unavailable");
        ApiError::Unavailable("the audit trail is unavailable right now; retry shortly".into())
    }
}

/// `GET /api/v1/audit`.
pub async fn list_audit(
    hub: &AdminContext,
    query: &str,
) -> Result<warp::reply::Response, ApiError> {
    let pairs = parse_pairs(query)?;
    let filter = AuditFilter {
        action: action(&pairs)?,
        actor: text(&pairs, "actor"),
        user_id: text(&pairs, "user_id"),
        ..time_range(&pairs)?
    };
    let paging = Paging::parse(&pairs)?;
    let page = hub
        .audit
        .find(filter, paging.offset(), paging.page_size)
        .await?;
    Ok(warp::reply::json(&AuditList {
        events: page.events,
        total: page.total,
        page: paging.page,
        page_size: paging.page_size,
    })
    .into_response())
}

/// `GET /api/v1/audit/export?format=csv|ndjson&from=&to=`, newest first.
pub fn export_audit(
    hub: Arc<AdminContext>,
    query: &str,
) -> Result<warp::reply::Response, ApiError> {
    let pairs = parse_pairs(query)?;
    let csv = match text(&pairs, "format").as_deref() {
        None | Some("csv") => true,
        Some("ndjson") => false,
        Some(other) => {
            return Err(ApiError::bad_parameter(
                "format",
                format!("{other:?} is not csv or ndjson"),
            ));
        }
    };
    let filter = time_range(&pairs)?;
    let (response, body) = if csv {
        streamed_response("text/csv; charset=utf-8", Some("audit.csv"))
    } else {
        streamed_response("application/x-ndjson", Some("audit.ndjson"))
    };
    tokio::spawn(async move {
        if let Err(err) = write_export(&hub, csv, filter, &body).await {
            tracing::debug!(error = %err, "audit export stopped");
        }
    });
    Ok(response)
}

fn action(pairs: &HashMap<String, String>) -> Result<Option<AuditAction>, ApiError> {
    text(pairs, "action")
        .map(|name| {
            AuditAction::parse(&name).ok_or_else(|| {
                let known: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
                ApiError::bad_parameter(
                    "action",
                    format!("{name:?} is not one of {}", known.join(", ")),
                )
            })
        })
        .transpose()
}

fn time_range(pairs: &HashMap<String, String>) -> Result<AuditFilter, ApiError> {
    let filter = AuditFilter {
        from: time(pairs, "from")?,
        to: time(pairs, "to")?,
        ..AuditFilter::default()
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(ApiError::bad_parameter("to", "must not be before from"));
    }
    Ok(filter)
}

async fn write_export(
    hub: &AdminContext,
    csv: bool,
    filter: AuditFilter,
    body: &BodySender,
) -> Result<(), String> {
    if csv {
        send_chunk(body, csv_rows(&[], true)?).await?;
    }
    let mut offset = 0;
    loop {
        let page = hub
            .audit
            .find(filter.clone(), offset, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        let chunk = if csv {
            csv_rows(&page.events, false)?
        } else {
            ndjson_lines(&page.events)?
        };
        send_chunk(body, chunk).await?;
        offset += page.events.len();
        if page.events.len() < BATCH {
            return Ok(());
        }
    }
}

/// CSV rows for `events` (with the header row first when asked); absent
/// values are empty cells.
pub fn csv_rows(events: &[AuditEvent], header: bool) -> Result<Vec<u8>, String> {
    csv_table(
        header.then_some(&CSV_HEADER[..]),
        events.iter().map(csv_record),
    )
}

fn csv_record(event: &AuditEvent) -> [String; 11] {
    let actor = event.actor.as_ref();
    let cell = |value: Option<&str>| value.unwrap_or("").to_string();
    [
        event.id.clone(),
        format_rfc3339(event.at),
        event.action.as_str().to_string(),
        cell(actor.and_then(|a| a.user_id.as_deref())),
        cell(actor.and_then(|a| a.role.as_deref())),
        cell(actor.and_then(|a| a.ip.as_deref())),
        cell(event.target.user_id.as_deref()),
        cell(event.target.session_id.as_deref()),
        cell(event.reason.as_deref()),
        event.node_id.clone(),
        event.result.clone(),
    ]
}
