//! Owns serving the admin panel and the browser client (`web/`), embedded in
//! the binary so the hub is one self-contained file. No token is needed for
//! these static files; the panel asks for one and the data routes check it.
//!
//! Every file is sent with a Content-Security-Policy that allows only this
//! origin's scripts, styles and connections (no inline script, no eval, no
//! framing), `X-Frame-Options: DENY` for browsers without
//! `frame-ancestors`, and `X-Content-Type-Options: nosniff`.

use include_dir::{Dir, include_dir};
use warp::Filter;
use warp::http::{Response, header};
use warp::reply::Reply;

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web");

/// The panel's Content-Security-Policy. `connect-src 'self'` covers the
/// page's own `ws:`/`wss:` origin (CSP level 3); `blob:` images and
/// downloads are the CSV export.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The embedded file at `path` (`index.html` for the root), if any.
fn asset(path: &str) -> Option<&'static include_dir::File<'static>> {
    let path = if path.is_empty() { "index.html" } else { path };
    if path.starts_with("test/") || path.contains("..") {
        return None;
    }
    WEB.get_file(path)
}

/// `GET /` and `GET /<file>` for every file under `web/` (and `HEAD`, which
/// hyper answers with the same headers and no body).
pub fn routes() -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone
{
    // Not `warp::get()`: its 405 would outrank a more specific rejection
    // (413, 400) from the API route that really matched the path.
    warp::method()
        .and_then(|method: warp::http::Method| async move {
            if method == warp::http::Method::GET || method == warp::http::Method::HEAD {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(warp::path::tail())
        .and_then(|tail: warp::path::Tail| async move {
            let file = asset(tail.as_str()).ok_or_else(warp::reject::not_found)?;
            let mime = mime_guess::from_path(file.path()).first_or_octet_stream();
            Response::builder()
                .header(header::CONTENT_TYPE, mime.as_ref())
                .header(header::CACHE_CONTROL, "no-cache")
                .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
                .header(header::X_FRAME_OPTIONS, "DENY")
                .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
                .body(file.contents())
                .map(Reply::into_response)
                .map_err(|_| warp::reject::not_found())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_panel_and_tests_are_not_served() {
        assert!(asset("").is_some());
        assert!(asset("test/anything.mjs").is_none());
        assert!(asset("../Cargo.toml").is_none());
    }
}
