//! Owns the admin API's query parameters: parsing, defaults and bounds, with
//! a 400 that names the parameter for anything out of range.

use std::collections::HashMap;

use crate::history::SessionFilter;
use crate::http::error::ApiError;
use crate::model::time::parse_rfc3339;
use crate::model::{MetaCriterion, Millis, UserStatus};

/// Largest page the API returns.
pub const MAX_PAGE_SIZE: usize = 500;
/// Page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// Raw `name -> value` pairs of a query string; the first of a repeated
/// name wins, as it does for `token`, `user`, `name` and `org`.
pub fn parse_pairs(query: &str) -> Result<HashMap<String, String>, ApiError> {
    crate::http::query::check_utf8(query)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|err| ApiError::BadRequest(format!("invalid query string: {err}")))?;
    let mut first = HashMap::new();
    for (name, value) in pairs {
        first.entry(name).or_insert(value);
    }
    Ok(first)
}

/// Which page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// 1-based page number.
    pub page: usize,
    /// Items per page (1..=500).
    pub page_size: usize,
}

impl Paging {
    /// Reads `page` and `page_size`.
    pub fn parse(pairs: &HashMap<String, String>) -> Result<Self, ApiError> {
        let page = number(pairs, "page", 1)?;
        if page == 0 {
            return Err(ApiError::bad_parameter("page", "must be 1 or more"));
        }
        let page_size = number(pairs, "page_size", DEFAULT_PAGE_SIZE)?;
        if page_size == 0 || page_size > MAX_PAGE_SIZE {
            return Err(ApiError::bad_parameter(
                "page_size",
                format!("must be 1 to {MAX_PAGE_SIZE}"),
            ));
        }
        Ok(Self { page, page_size })
    }

    /// Index of the first item of the page.
    pub fn offset(&self) -> usize {
        (self.page - 1).saturating_mul(self.page_size)
    }

    /// Items needed from the start to fill the page.
    pub fn end(&self) -> usize {
        self.offset().saturating_add(self.page_size)
    }

    /// The page's slice of a sorted list.
    pub fn slice<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .skip(self.offset())
            .take(self.page_size)
            .collect()
    }
}

fn number(pairs: &HashMap<String, String>, name: &str, default: usize) -> Result<usize, ApiError> {
    match pairs.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| ApiError::bad_parameter(name, format!("{text:?} is not a whole number"))),
    }
}

/// A non-empty text parameter.
pub fn text(pairs: &HashMap<String, String>, name: &str) -> Option<String> {
    pairs
        .get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// An RFC 3339 time parameter.
pub fn time(pairs: &HashMap<String, String>, name: &str) -> Result<Option<Millis>, ApiError> {
    match text(pairs, name) {
        None => Ok(None),
        Some(value) => parse_rfc3339(&value).map(Some).ok_or_else(|| {
            ApiError::bad_parameter(name, format!("{value:?} is not an RFC 3339 time"))
        }),
    }
}

/// `status` of `/api/v1/users`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatusFilter {
    /// Any online user.
    Online,
    /// Exactly this status.
    Is(UserStatus),
}

impl UserStatusFilter {
    /// Reads `status` (online, active, idle or away).
    pub fn parse(pairs: &HashMap<String, String>) -> Result<Option<Self>, ApiError> {
        Ok(match text(pairs, "status").as_deref() {
            None => None,
            Some("online") => Some(Self::Online),
            Some("active") => Some(Self::Is(UserStatus::Active)),
            Some("idle") => Some(Self::Is(UserStatus::Idle)),
            Some("away") => Some(Self::Is(UserStatus::Away)),
            Some(other) => {
                return Err(ApiError::bad_parameter(
                    "status",
                    format!("{other:?} is not one of online, active, idle, away"),
                ));
            }
        })
    }

    /// True when a user with `status` passes.
    pub fn admits(self, status: UserStatus) -> bool {
        match self {
            Self::Online => status != UserStatus::Offline,
            Self::Is(wanted) => status == wanted,
        }
    }
}

/// `status` of `/api/v1/sessions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionScope {
    /// Live sessions (the default).
    Live,
    /// Ended sessions from history.
    Ended,
    /// Both.
    All,
}

impl SessionScope {
    /// Reads `status` (live, ended or all).
    pub fn parse(pairs: &HashMap<String, String>) -> Result<Self, ApiError> {
        match text(pairs, "status").as_deref() {
            None | Some("live") => Ok(Self::Live),
            Some("ended") => Ok(Self::Ended),
            Some("all") => Ok(Self::All),
            Some(other) => Err(ApiError::bad_parameter(
                "status",
                format!("{other:?} is not one of live, ended, all"),
            )),
        }
    }
}

/// The session filter of `/api/v1/sessions` and the export.
pub fn session_filter(pairs: &HashMap<String, String>) -> Result<SessionFilter, ApiError> {
    let filter = SessionFilter {
        user_id: text(pairs, "user_id"),
        org: text(pairs, "org"),
        node_id: text(pairs, "node_id"),
        email: text(pairs, "email"),
        team: text(pairs, "team"),
        q: text(pairs, "q").map(|q| q.to_lowercase()),
        from: time(pairs, "from")?,
        to: time(pairs, "to")?,
        meta: meta_criteria(pairs)?,
        ..SessionFilter::default()
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(ApiError::bad_parameter("to", "must not be before from"));
    }
    Ok(filter)
}

/// The `meta.<key>=<value>` parameters (v1.1 §10), sorted by key; a bad
/// key is 400 naming the whole parameter.
pub fn meta_criteria(pairs: &HashMap<String, String>) -> Result<Vec<MetaCriterion>, ApiError> {
    let mut criteria = Vec::new();
    for (name, value) in pairs {
        let Some(key) = name.strip_prefix("meta.") else {
            continue;
        };
        if !MetaCriterion::valid_key(key) {
            return Err(ApiError::bad_parameter(
                name,
                "the key after meta. must be 1 to 128 ASCII letters, digits, '_', '-' or '.'",
            ));
        }
        criteria.push(MetaCriterion {
            key: key.to_string(),
            value: value.clone(),
        });
    }
    criteria.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(criteria)
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> HashMap<String, String> {
        parse_pairs(query).unwrap()
    }

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(
            Paging::parse(&pairs("")).unwrap(),
            Paging {
                page: 1,
                page_size: 20
            }
        );
        assert_eq!(
            Paging::parse(&pairs("page=3&page_size=500"))
                .unwrap()
                .offset(),
            1000
        );
        for bad in [
            "page=0",
            "page_size=0",
            "page_size=501",
            "page=x",
            "page_size=-1",
        ] {
            let err = Paging::parse(&pairs(bad)).unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
            assert!(
                err.to_string().contains(bad.split('=').next().unwrap()),
                "{err}"
            );
        }
    }

    #[test]
    fn statuses_are_checked() {
        assert_eq!(
            UserStatusFilter::parse(&pairs("status=online")).unwrap(),
            Some(UserStatusFilter::Online)
        );
        assert!(UserStatusFilter::parse(&pairs("status=offline")).is_err());
        assert_eq!(SessionScope::parse(&pairs("")).unwrap(), SessionScope::Live);
        assert!(SessionScope::parse(&pairs("status=dead")).is_err());
    }

    #[test]
    fn times_must_be_rfc3339_and_ordered() {
        assert!(session_filter(&pairs("from=2026-01-01T00:00:00Z")).is_ok());
        let err = session_filter(&pairs("from=yesterday")).unwrap_err();
        assert!(err.to_string().contains("from"));
        assert!(
            session_filter(&pairs("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z")).is_err()
        );
    }
}
