//! Owns reading request bodies with a size limit and a deadline: a declared
//! `Content-Length` over the limit is refused before reading, and a chunked
//! body is refused as soon as it passes the limit (413 either way). The
//! whole body must arrive within the deadline, which sets a minimum rate
//! (the limit in 10 s); a body still arriving then gets 408 and the
//! connection is closed. JSON routes also need `Content-Type:
//! application/json` (415), so a cross-site form or `no-cors` fetch, which
//! can only send `text/plain` and the like, is refused before any body is
//! read.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use warp::Filter;

use super::error::ApiError;

/// A JSON body: `Content-Type: application/json`, then `limited_body`.
pub fn json_body(
    limit: u64,
    deadline: Duration,
) -> impl Filter<Extract = (Bytes,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and_then(|content_type: Option<String>| async move {
            if content_type.as_deref().is_some_and(is_json) {
                Ok(())
            } else {
                Err(warp::reject::custom(ApiError::UnsupportedMediaType))
            }
        })
        .untuple_one()
        .and(limited_body(limit, deadline))
}

/// `application/json`, with or without parameters such as `charset`.
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The whole body, at most `limit` bytes, within `deadline`.
pub fn limited_body(
    limit: u64,
    deadline: Duration,
) -> impl Filter<Extract = (Bytes,), Error = warp::Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and_then(move |declared: Option<u64>| async move {
            if declared.is_some_and(|length| length > limit) {
                Err(warp::reject::custom(ApiError::PayloadTooLarge))
            } else {
                Ok(())
            }
        })
        .untuple_one()
        .and(warp::body::stream())
        .and_then(move |stream| async move {
            tokio::time::timeout(deadline, collect(stream, limit))
                .await
                .unwrap_or_else(|_| {
                    Err(warp::reject::custom(ApiError::RequestTimeout {
                        after: deadline,
                    }))
                })
        })
}

async fn collect<S, B>(stream: S, limit: u64) -> Result<Bytes, warp::Rejection>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    futures_util::pin_mut!(stream);
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| {
            warp::reject::custom(ApiError::BadRequest("unreadable request body".into()))
        })?;
        if (body.len() + chunk.remaining()) as u64 > limit {
            return Err(warp::reject::custom(ApiError::PayloadTooLarge));
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            let n = piece.len();
            body.extend_from_slice(piece);
            chunk.advance(n);
        }
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_may_carry_parameters() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/jsonp"));
        assert!(!is_json("multipart/form-data; boundary=x"));
    }
}
