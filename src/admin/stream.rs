//! Owns one admin stream: the snapshot, then every matching event numbered
//! 1, 2, 3, ... without gaps. A subscriber the feed dropped for lagging is
//! closed with 4009 after what was queued for it, so it is never silently
//! skipped; it reconnects for a fresh snapshot. One that stops reading
//! altogether (a write misses `PRESENCE_WRITE_TIMEOUT`) is dropped and
//! counted as a lag close too.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::Instrument;

use super::AdminContext;
use crate::feed::Subscription;
use crate::http::websocket::{UpgradedSocket, close, write_within};
use crate::model::CloseCode;

type AdminSocket = UpgradedSocket;

/// The snapshot is one frame of every live session (about 700 bytes each),
/// so the write buffer must hold a frame of any size; the per-subscriber
/// event queue, not this buffer, is what bounds a slow admin.
fn admin_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024))
}

/// Serves one admin stream until it closes.
pub async fn serve_admin_stream(
    io: TokioIo<Upgraded>,
    hub: Arc<AdminContext>,
    org: Option<String>,
) {
    let span = tracing::debug_span!("admin", org = org.as_deref().unwrap_or(""));
    async move {
        let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(admin_config())).await;
        let Ok(subscription) = hub.presence.subscribe(org).await else {
            close(&mut ws, CloseCode::GoingAway, "shutdown").await;
            return;
        };
        hub.metrics.admin_subscribers.inc();
        tracing::debug!("admin subscribed");
        let end = stream_events(&mut ws, subscription, &hub).await;
        match end {
            StreamEnd::Close(code, reason) => {
                if code == CloseCode::Lagging {
                    hub.metrics.admin_lag_closes.inc();
                }
                close(&mut ws, code, reason).await;
            }
            StreamEnd::Stalled => {
                hub.metrics.admin_lag_closes.inc();
                tracing::info!("admin stream stopped reading and is dropped");
            }
            StreamEnd::Gone => {}
        }
        hub.metrics.admin_subscribers.dec();
        tracing::debug!(?end, "admin stream closed");
    }
    .instrument(span)
    .await;
}

/// How an admin stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEnd {
    /// Close it with this code and reason.
    Close(CloseCode, &'static str),
    /// The client is gone already.
    Gone,
    /// A write missed its deadline: the client stopped reading.
    Stalled,
}

impl StreamEnd {
    fn of_write_error(error: &tokio_tungstenite::tungstenite::Error) -> Self {
        if crate::http::websocket::is_write_timeout(error) {
            Self::Stalled
        } else {
            Self::Gone
        }
    }
}

/// Sends the snapshot and events, every write within the deadline; says
/// how the stream ended.
async fn stream_events(
    ws: &mut AdminSocket,
    mut subscription: Subscription,
    hub: &AdminContext,
) -> StreamEnd {
    let deadline = hub.write_timeout;
    let snapshot = std::mem::take(&mut subscription.snapshot);
    if let Err(error) = write_within(deadline, ws.send(Message::text(snapshot))).await {
        return StreamEnd::of_write_error(&error);
    }
    let mut seq: u64 = 0;
    loop {
        tokio::select! {
            biased;
            () = hub.closing.cancelled() => return StreamEnd::Close(CloseCode::GoingAway, "shutdown"),
            event = subscription.events.recv() => match event {
                Some(frame) => {
                    seq += 1;
                    let text = Message::text(frame.to_text(seq));
                    if let Err(error) = write_within(deadline, ws.feed(text)).await {
                        return StreamEnd::of_write_error(&error);
                    }
                    hub.metrics.ops.admin_fanout_delay.observe(frame.age().as_secs_f64());
                    if subscription.events.is_empty()
                        && let Err(error) = write_within(deadline, ws.flush()).await
                    {
                        return StreamEnd::of_write_error(&error);
                    }
                }
                None if subscription.has_lagged() => return StreamEnd::Close(CloseCode::Lagging, "lagging: reconnect for a fresh snapshot"),
                None => return StreamEnd::Close(CloseCode::GoingAway, "shutdown"),
            },
            incoming = ws.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return StreamEnd::Gone,
                Some(Ok(_)) => {
                    if let Err(error) = write_within(deadline, ws.flush()).await {
                        return StreamEnd::of_write_error(&error);
                    }
                }
            },
        }
    }
}
