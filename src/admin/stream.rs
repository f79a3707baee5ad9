//! Owns one admin stream: the snapshot, then every matching event numbered
//! 1, 2, 3, ... without gaps. A subscriber the feed dropped for lagging is
//! closed with 4009 after what was queued for it, so it is never silently
//! skipped; it reconnects for a fresh snapshot.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tracing::Instrument;

use crate::feed::Subscription;
use crate::http::HubContext;

/// The close code for a subscriber that fell behind.
pub const LAGGING_CLOSE_CODE: u16 = 4009;
/// How long a close may take before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

type AdminSocket = WebSocketStream<TokioIo<Upgraded>>;

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
pub async fn serve_admin_stream(io: TokioIo<Upgraded>, hub: Arc<HubContext>, org: Option<String>) {
    let span = tracing::debug_span!("admin", org = org.as_deref().unwrap_or(""));
    async move {
        let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(admin_config())).await;
        let Ok(subscription) = hub.presence.subscribe(org).await else {
            close(&mut ws, 1001, "shutdown").await;
            return;
        };
        hub.metrics.admin_subscribers.inc();
        tracing::debug!("admin subscribed");
        let (code, reason) = stream_events(&mut ws, subscription, &hub).await;
        if code == LAGGING_CLOSE_CODE {
            hub.metrics.admin_lag_closes.inc();
        }
        if code != 0 {
            close(&mut ws, code, reason).await;
        }
        hub.metrics.admin_subscribers.dec();
        tracing::debug!(code, "admin stream closed");
    }
    .instrument(span)
    .await;
}

/// Sends the snapshot and events; returns the close code to send (0 when
/// the client is already gone).
async fn stream_events(
    ws: &mut AdminSocket,
    mut subscription: Subscription,
    hub: &HubContext,
) -> (u16, &'static str) {
    let snapshot = std::mem::take(&mut subscription.snapshot);
    if ws.send(Message::text(snapshot)).await.is_err() {
        return (0, "");
    }
    let mut seq: u64 = 0;
    loop {
        tokio::select! {
            biased;
            () = hub.closing.cancelled() => return (1001, "shutdown"),
            event = subscription.events.recv() => match event {
                Some(frame) => {
                    seq += 1;
                    if ws.feed(Message::text(frame.to_text(seq))).await.is_err() {
                        return (0, "");
                    }
                    if subscription.events.is_empty() && ws.flush().await.is_err() {
                        return (0, "");
                    }
                }
                None if subscription.has_lagged() => return (LAGGING_CLOSE_CODE, "lagging: reconnect for a fresh snapshot"),
                None => return (1001, "shutdown"),
            },
            incoming = ws.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return (0, ""),
                Some(Ok(_)) => {
                    let _ = ws.flush().await;
                }
            },
        }
    }
}

async fn close(ws: &mut AdminSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}
