//! Owns responses whose body is produced while it is sent (exports). warp
//! 0.4 has no public streaming body, so a handler attaches a `StreamedBody`
//! to an empty response and the connection layer (`server.rs`) swaps it in.
//! The channel is bounded: a slow downloader slows the producer, and memory
//! stays flat however large the export.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{Either, StreamBody};
use tokio::sync::mpsc;
use warp::http::{Response, header};

/// Chunks that may wait between the producer and the socket.
pub const CHUNKS_IN_FLIGHT: usize = 16;

/// A body produced by a task, attached to a response as an extension.
#[derive(Clone, Debug)]
pub struct StreamedBody(Arc<Mutex<Option<mpsc::Receiver<Bytes>>>>);

/// Where the producer writes; dropping it ends the body.
pub type BodySender = mpsc::Sender<Bytes>;

/// A 200 response with `content_type` whose body is whatever is sent.
pub fn streamed_response(
    content_type: &str,
    filename: Option<&str>,
) -> (warp::reply::Response, BodySender) {
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let mut response = Response::new(warp::hyper::body::Bytes::new().into());
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    if let Some(name) = filename
        && let Ok(value) = format!("attachment; filename=\"{name}\"").parse()
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
        .extensions_mut()
        .insert(StreamedBody(Arc::new(Mutex::new(Some(receiver)))));
    (response, sender)
}

/// Swaps in a streamed body when the handler attached one.
pub fn into_hub_response<B>(
    mut response: Response<B>,
) -> Response<Either<B, StreamBody<ReceiverFrames>>> {
    let streamed = response
        .extensions_mut()
        .remove::<StreamedBody>()
        .and_then(|StreamedBody(slot)| slot.lock().ok().and_then(|mut slot| slot.take()));
    let (parts, body) = response.into_parts();
    match streamed {
        None => Response::from_parts(parts, Either::Left(body)),
        Some(receiver) => Response::from_parts(
            parts,
            Either::Right(StreamBody::new(ReceiverFrames(receiver))),
        ),
    }
}

/// A receiver of chunks as a stream of body frames.
#[derive(Debug)]
pub struct ReceiverFrames(mpsc::Receiver<Bytes>);

impl futures_util::Stream for ReceiverFrames {
    type Item = Result<hyper::body::Frame<Bytes>, std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
    }
}
