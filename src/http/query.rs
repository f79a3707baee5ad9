//! Owns the strict reading of query strings: every name and value must be
//! valid UTF-8 once percent-decoded, or the request gets 400 naming the
//! parameter. Lossy decoding would turn `%ff` and `%fe` alike into U+FFFD,
//! so distinct ids (`?user=%ff` and `?user=%fe`) would collide.
//!
//! Routes check the whole query once with `check_utf8`; the decoders used
//! after it (`serde_urlencoded`) then decode losslessly.

use percent_encoding::percent_decode;

use super::error::ApiError;

/// 400 when a name or value of `query` is not UTF-8 after decoding.
pub fn check_utf8(query: &str) -> Result<(), ApiError> {
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name).map_err(|()| {
            ApiError::BadRequest("a query parameter name is not UTF-8 once decoded".into())
        })?;
        decode(value)
            .map_err(|()| ApiError::bad_parameter(&name, "is not UTF-8 once percent-decoded"))?;
    }
    Ok(())
}

/// One form-urlencoded component (`+` is a space), strictly decoded.
fn decode(component: &str) -> Result<String, ()> {
    let spaced = component.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_refused_and_names_the_parameter() {
        let err = check_utf8("user=%ff%fe").unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.to_string().contains("user"), "{err}");
        assert!(check_utf8("%ff=1").is_err());
    }

    #[test]
    fn valid_queries_pass() {
        assert!(check_utf8("").is_ok());
        assert!(check_utf8("user=%C3%A9l%C3%A9onore&name=A+B&flag&&x=").is_ok());
    }
}
