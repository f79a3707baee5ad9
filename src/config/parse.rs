//! Owns parsing the configuration's compound values: durations, origin
//! lists, trusted proxies, the Redis URL, webhook URLs, event types and
//! optional rates, each with an error that names its variable.

use super::*;

/// Parses a duration such as `500ms`, `2s`, `5m`, `1h` or `30d`.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|err| format!("{err} (use e.g. 500ms, 2s, 5m, 1h, 30d)"))
}

/// `PRESENCE_REDIS_URL` (unset or empty: single node), checked here so a
/// wrong one stops the hub with exit 2 before anything starts. The value
/// in the message has its password hidden.
pub(super) fn parse_redis_url(text: Option<&str>) -> Result<Option<String>, ConfigError> {
    let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    match crate::redis_access::Deployment::parse(text) {
        Ok(_) => Ok(Some(text.to_string())),
        Err(err) => Err(ConfigError::Invalid {
            variable: "PRESENCE_REDIS_URL",
            value: without_password(text),
            reason: format!(
                "not a Redis URL ({err}); use redis://HOST:PORT, rediss://HOST:PORT, redis+unix:///PATH, or redis+cluster://HOST:PORT,HOST:PORT,... for a Redis Cluster"
            ),
        }),
    }
}

/// `text` with the password of a URL replaced by `***`.
pub(super) fn without_password(text: &str) -> String {
    match reqwest::Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => text.to_string(),
        // A cluster URL (several hosts) is no URL to the parser.
        Err(_) => mask_userinfo_password(text),
    }
}

/// `scheme://user:***@rest` for `scheme://user:password@rest`, found by
/// hand (the last `@` before the path).
fn mask_userinfo_password(text: &str) -> String {
    let Some(start) = text.find("://").map(|at| at + 3) else {
        return text.to_string();
    };
    let authority_end = text[start..]
        .find(['/', '?'])
        .map_or(text.len(), |at| start + at);
    let Some(at) = text[start..authority_end].rfind('@').map(|at| start + at) else {
        return text.to_string();
    };
    match text[start..at].find(':').map(|colon| start + colon) {
        Some(colon) => format!("{}:***{}", &text[..colon], &text[at..]),
        None => text.to_string(),
    }
}

/// A rate such as `10/s` or `600/m`, or `0` for no limit.
pub(super) fn optional_rate(
    variable: &'static str,
    text: &str,
) -> Result<Option<RateLimit>, ConfigError> {
    if text.trim() == "0" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|reason| ConfigError::Invalid {
            variable,
            value: text.to_string(),
            reason,
        })
}

/// The `PRESENCE_ALLOWED_ORIGINS` list, normalised (lowercase, no trailing
/// `/`). A value naming no origin (`""`, `",,,"`) is an error rather than
/// "allow any", and so is an entry that is not `*`, `null` or
/// `scheme://host[:port]`.
pub(super) fn parse_origins(
    variable: &'static str,
    list: Option<&str>,
) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(list) = list else {
        return Ok(None);
    };
    let invalid = |reason: &str| ConfigError::Invalid {
        variable,
        value: list.to_string(),
        reason: reason.to_string(),
    };
    let origins: Vec<String> = list
        .split(',')
        .map(|origin| origin.trim().trim_end_matches('/').to_ascii_lowercase())
        .filter(|origin| !origin.is_empty())
        .collect();
    if origins.is_empty() {
        return Err(invalid(
            "names no origin; list origins such as https://app.example, or unset it",
        ));
    }
    if let Some(bad) = origins.iter().find(|origin| {
        !(*origin == "*"
            || *origin == "null"
            || origin
                .split_once("://")
                .is_some_and(|(scheme, host)| !scheme.is_empty() && !host.is_empty()))
    }) {
        return Err(invalid(&format!(
            "{bad:?} is not an origin (scheme://host[:port], *, or null)"
        )));
    }
    Ok(Some(origins))
}

pub(super) fn parse_webhook_url(text: &str) -> Result<reqwest::Url, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        variable: "PRESENCE_WEBHOOK_URLS",
        value: text.to_string(),
        reason: reason.to_string(),
    };
    let url = reqwest::Url::parse(text).map_err(|err| invalid(&err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("a host is required"));
    }
    Ok(url)
}

pub(super) fn parse_event_types(list: &str) -> Result<Vec<EventType>, ConfigError> {
    let mut events = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = EventType::parse(name).ok_or_else(|| ConfigError::Invalid {
            variable: "PRESENCE_WEBHOOK_EVENTS",
            value: name.to_string(),
            reason: "expected user.online, user.offline, session.started, session.ended or alert"
                .into(),
        })?;
        if !events.contains(&kind) {
            events.push(kind);
        }
    }
    Ok(events)
}

pub(super) fn parse_proxies(list: &str) -> Result<Vec<IpNet>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| ConfigError::Invalid {
                    variable: "PRESENCE_TRUSTED_PROXIES",
                    value: item.to_string(),
                    reason: "expected an IP address or CIDR".into(),
                })
        })
        .collect()
}
