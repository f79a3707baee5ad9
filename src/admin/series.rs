//! Owns `GET /api/v1/stats/series`: the online series kept in the records
//! store (`crate::series` samples it), over a range of at most 24 h. The
//! range is `from`..=`to` (RFC 3339), or the `window` (seconds, default one
//! hour) ending at `to` (default now); anything else is a 400 naming the
//! parameter.

use std::collections::HashMap;

use serde_json::json;
use warp::reply::Reply;

use super::AdminContext;
use super::query::{parse_pairs, text, time};
use crate::history::series::SERIES_RETENTION_MS;
use crate::http::error::ApiError;
use crate::model::time::now_millis;
use crate::model::{Millis, format_rfc3339};

/// The window when none is asked for: the last hour.
const DEFAULT_WINDOW_S: i64 = 3_600;
/// The shortest window: one bucket.
const MIN_WINDOW_S: i64 = 10;
/// The longest range: what is kept.
const MAX_RANGE_MS: Millis = SERIES_RETENTION_MS;

/// `GET /api/v1/stats/series?from=&to=&window=`.
pub async fn series(hub: &AdminContext, query: &str) -> Result<warp::reply::Response, ApiError> {
    let pairs = parse_pairs(query)?;
    let (from, to) = range(&pairs, now_millis())?;
    let points = hub.history.series(from, to).await?;
    let points: Vec<_> = points
        .iter()
        .map(|p| json!({"at": format_rfc3339(p.at), "users": p.users, "sessions": p.sessions}))
        .collect();
    let interval_ms = u64::try_from(hub.series_interval.as_millis()).unwrap_or(u64::MAX);
    Ok(warp::reply::json(&json!({
        "interval_ms": interval_ms,
        "from": format_rfc3339(from),
        "to": format_rfc3339(to),
        "points": points,
    }))
    .into_response())
}

/// The range asked for, checked.
fn range(pairs: &HashMap<String, String>, now: Millis) -> Result<(Millis, Millis), ApiError> {
    let window = window_ms(pairs)?;
    let (from, to) = match (time(pairs, "from")?, time(pairs, "to")?) {
        (Some(_), _) if window.is_some() => {
            return Err(ApiError::bad_parameter("window", "is not taken with from"));
        }
        (Some(from), Some(to)) => (from, to),
        (Some(from), None) => (from, now.min(from.saturating_add(MAX_RANGE_MS)).max(from)),
        (None, to) => {
            let to = to.unwrap_or(now);
            let window = window.unwrap_or(DEFAULT_WINDOW_S * 1_000);
            (to.saturating_sub(window), to)
        }
    };
    if from > to {
        return Err(ApiError::bad_parameter("to", "must not be before from"));
    }
    if to - from > MAX_RANGE_MS {
        return Err(ApiError::bad_parameter(
            "from",
            "the range from..to is at most 24 h (what is kept)",
        ));
    }
    Ok((from, to))
}

/// `window` in milliseconds, when given.
fn window_ms(pairs: &HashMap<String, String>) -> Result<Option<Millis>, ApiError> {
    let Some(value) = text(pairs, "window") else {
        return Ok(None);
    };
    let max_s = MAX_RANGE_MS / 1_000;
    match value.parse::<i64>() {
        Ok(seconds) if (MIN_WINDOW_S..=max_s).contains(&seconds) => Ok(Some(seconds * 1_000)),
        _ => Err(ApiError::bad_parameter(
            "window",
            format!("{value:?} is not a whole number of seconds from {MIN_WINDOW_S} to {max_s}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_800_000_000_000;
    const HOUR: Millis = 3_600_000;

    fn pairs(query: &str) -> HashMap<String, String> {
        parse_pairs(query).unwrap_or_default()
    }

    fn refused(query: &str) -> String {
        match range(&pairs(query), NOW) {
            Err(ApiError::BadParameter { name, .. }) => name,
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn the_default_is_the_last_hour() {
        assert_eq!(range(&pairs(""), NOW).ok(), Some((NOW - HOUR, NOW)));
        assert_eq!(
            range(&pairs("window=60"), NOW).ok(),
            Some((NOW - 60_000, NOW))
        );
    }

    #[test]
    fn from_alone_reaches_to_now_or_24_hours() {
        let from = format_rfc3339(NOW - HOUR);
        assert_eq!(
            range(&pairs(&format!("from={from}")), NOW).ok(),
            Some((NOW - HOUR, NOW))
        );
        let old = format_rfc3339(NOW - 30 * 24 * HOUR);
        let (a, b) = range(&pairs(&format!("from={old}")), NOW).unwrap_or_default();
        assert_eq!(b - a, 24 * HOUR);
    }

    #[test]
    fn bad_ranges_name_the_parameter() {
        assert_eq!(refused("window=9"), "window");
        assert_eq!(refused("window=86401"), "window");
        assert_eq!(refused("window=ten"), "window");
        assert_eq!(refused("from=yesterday"), "from");
        let (early, late) = (format_rfc3339(NOW - 25 * HOUR), format_rfc3339(NOW));
        assert_eq!(refused(&format!("from={early}&to={late}")), "from");
        assert_eq!(refused(&format!("from={late}&to={early}")), "to");
        assert_eq!(refused(&format!("from={late}&window=60")), "window");
    }
}
