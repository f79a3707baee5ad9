//! Owns one admin stream: the snapshot, then every matching event numbered
//! 1, 2, 3, ... without gaps. A subscriber the feed dropped for lagging is
//! closed with 4009 after what was queued for it, so it is never silently
//! skipped; it reconnects for a fresh snapshot.

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
use crate::http::websocket::{UpgradedSocket, close};
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
        let (code, reason) = stream_events(&mut ws, subscription, &hub).await;
        if code == Some(CloseCode::Lagging) {
            hub.metrics.admin_lag_closes.inc();
        }
        if let Some(code) = code {
            close(&mut ws, code, reason).await;
        }
        hub.metrics.admin_subscribers.dec();
        tracing::debug!(code = code.map(CloseCode::as_u16), "admin stream closed");
    }
    .instrument(span)
    .await;
}

/// Sends the snapshot and events; returns the close code to send (`None`
/// when the client is already gone).
async fn stream_events(
    ws: &mut AdminSocket,
    mut subscription: Subscription,
    hub: &AdminContext,
) -> (Option<CloseCode>, &'static str) {
    let snapshot = std::mem::take(&mut subscription.snapshot);
    if ws.send(Message::text(snapshot)).await.is_err() {
        return (None, "");
    }
    let mut seq: u64 = 0;
    loop {
        tokio::select! {
            biased;
            () = hub.closing.cancelled() => return (Some(CloseCode::GoingAway), "shutdown"),
            event = subscription.events.recv() => match event {
                Some(frame) => {
                    seq += 1;
                    if ws.feed(Message::text(frame.to_text(seq))).await.is_err() {
                        return (None, "");
                    }
                    hub.metrics.ops.admin_fanout_delay.observe(frame.age().as_secs_f64());
                    if subscription.events.is_empty() && ws.flush().await.is_err() {
                        return (None, "");
                    }
                }
                None if subscription.has_lagged() => return (Some(CloseCode::Lagging), "lagging: reconnect for a fresh snapshot"),
                None => return (Some(CloseCode::GoingAway), "shutdown"),
            },
            incoming = ws.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return (None, ""),
                Some(Ok(_)) => {
                    let _ = ws.flush().await;
                }
            },
        }
    }
}
