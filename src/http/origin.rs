//! Owns the `Origin` check of WebSocket upgrades (`/ws` and `/admin/ws`):
//! a browser page on an origin outside `PRESENCE_ALLOWED_ORIGINS` gets 403.

use warp::http::HeaderMap;

use super::error::ApiError;

/// 403 when `Origin` is set and not on the allow-list (when there is one).
pub fn check_origin(headers: &HeaderMap, allowed: Option<&[String]>) -> Result<(), ApiError> {
    let (Some(allowed), Some(origin)) = (allowed, headers.get(warp::http::header::ORIGIN)) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_ascii_lowercase();
    if allowed
        .iter()
        .any(|candidate| *candidate == origin || candidate == "*")
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "origin {origin:?} is not allowed"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_origins_pass_and_others_get_403() {
        let allowed = vec!["https://app.example".to_string()];
        let mut headers = HeaderMap::new();
        assert!(
            check_origin(&headers, Some(&allowed)).is_ok(),
            "no Origin: not a browser"
        );
        headers.insert("origin", "https://APP.example".parse().unwrap());
        assert!(check_origin(&headers, Some(&allowed)).is_ok());
        headers.insert("origin", "https://evil.example".parse().unwrap());
        assert_eq!(
            check_origin(&headers, Some(&allowed)).unwrap_err().status(),
            403
        );
        assert!(check_origin(&headers, None).is_ok(), "no list: any origin");
    }
}
