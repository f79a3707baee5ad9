//! Owns admin subscribers: connect to `/admin/ws`, check the snapshot and the
//! gap-free `seq`, and time the events that answer clients' status changes.
//!
//! Matching works through [`Pending`]: a client stores when it sent a change
//! and which manual value it set; the first `updated` event of that session
//! carrying that value is the change's arrival.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Dial, Ws};
use crate::failure::Failure;
use crate::worker::Ctx;

/// Wait between reconnects of a lost admin stream.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// One slot per (admin subscriber, client) of this worker: 0 when nothing is
/// pending, else `(sent_ns << 1) | busy`.
#[derive(Debug)]
pub struct Pending {
    slots: Vec<AtomicU64>,
    clients: u64,
}

impl Pending {
    /// Slots for `admins` subscribers times `clients` clients.
    pub fn new(admins: u32, clients: u64) -> Self {
        let len = usize::try_from(u64::from(admins) * clients).unwrap_or(0);
        Self {
            slots: (0..len).map(|_| AtomicU64::new(0)).collect(),
            clients,
        }
    }

    /// The slot of subscriber `admin` for client `local`.
    fn slot(&self, admin: u32, local: u64) -> Option<&AtomicU64> {
        let at = u64::from(admin) * self.clients + local;
        self.slots.get(usize::try_from(at).ok()?)
    }

    /// Marks a change by client `local` sent at `sent_ns`; returns how many
    /// earlier changes were still unmatched (each a missing event).
    pub fn mark(&self, admins: u32, local: u64, sent_ns: u64, busy: bool) -> u64 {
        let value = (sent_ns << 1) | u64::from(busy);
        (0..admins)
            .filter_map(|a| self.slot(a, local))
            .filter(|slot| slot.swap(value, Ordering::AcqRel) != 0)
            .count() as u64
    }

    /// Matches an event; returns the send time when it answers a pending change.
    fn matches(&self, admin: u32, local: u64, busy: bool) -> Option<u64> {
        let slot = self.slot(admin, local)?;
        let value = slot.load(Ordering::Acquire);
        if value == 0 || (value & 1 == 1) != busy {
            return None;
        }
        slot.compare_exchange(value, 0, Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|v| v >> 1)
    }

    /// Changes still unmatched.
    pub fn outstanding(&self) -> u64 {
        self.slots
            .iter()
            .filter(|s| s.load(Ordering::Acquire) != 0)
            .count() as u64
    }
}

/// The fields of an admin frame the harness reads.
#[derive(Debug, Deserialize)]
struct AdminFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default, borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    session: Option<SessionFields<'a>>,
}

/// The fields of a Session the harness reads.
#[derive(Debug, Deserialize)]
struct SessionFields<'a> {
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(default, borrow)]
    manual: Option<Cow<'a, str>>,
}

/// Opens an admin stream and reads its snapshot.
pub async fn subscribe(ctx: &Ctx) -> Result<Ws, Failure> {
    let bearer = ctx.admin_token().map_err(|_| Failure::Handshake)?;
    client::dial(Dial {
        endpoint: &ctx.plan.target.admin,
        path: "/admin/ws",
        query: String::new(),
        source: None,
        bearer,
        config: client::admin_config(),
        first_frame: "snapshot",
        timeout: ctx.plan.connect_timeout.max(Duration::from_secs(10)),
    })
    .await
    .map_err(|f| match f {
        Failure::NoWelcome => Failure::AdminNoSnapshot,
        other => other,
    })
}

/// Reads subscriber `admin`'s stream until the worker stops, reconnecting
/// when it is lost; matches events against `pending` when given.
pub async fn watch(ctx: Arc<Ctx>, admin: u32, mut ws: Ws, pending: Option<Arc<Pending>>) {
    loop {
        read_stream(&ctx, admin, &mut ws, pending.as_deref()).await;
        if ctx.stop.is_cancelled()
            || !ctx
                .sleep_until(tokio::time::Instant::now() + RECONNECT_PAUSE)
                .await
        {
            client::close(ws).await;
            return;
        }
        match subscribe(&ctx).await {
            Ok(fresh) => ws = fresh,
            Err(failure) => ctx.stats.fail(&failure),
        }
    }
}

/// Reads one stream until stop or loss.
async fn read_stream(ctx: &Ctx, admin: u32, ws: &mut Ws, pending: Option<&Pending>) {
    let mut last_seq = 0;
    read_texts(ctx, ws, |text| {
        on_event(ctx, admin, text, &mut last_seq, pending);
    })
    .await;
}

/// Hands each text frame of an admin stream to `on_text` until the worker
/// stops (true) or the stream is lost (false; counted as a failure).
pub async fn read_texts(ctx: &Ctx, ws: &mut Ws, mut on_text: impl FnMut(&str)) -> bool {
    loop {
        let message = tokio::select! {
            () = ctx.stop.cancelled() => return true,
            message = ws.next() => message,
        };
        let failure = match message {
            Some(Ok(Message::Text(text))) => {
                on_text(text.as_str());
                continue;
            }
            Some(Ok(Message::Close(frame))) => {
                Failure::Closed(frame.map_or(1005, |f| u16::from(f.code)))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => Failure::from_ws(&e),
            None => Failure::Closed(0),
        };
        ctx.stats.fail(&failure);
        return false;
    }
}

/// Checks `seq` and times a matching status change.
fn on_event(ctx: &Ctx, admin: u32, text: &str, last_seq: &mut u64, pending: Option<&Pending>) {
    let received_ns = ctx.now_ns();
    let Ok(frame) = serde_json::from_str::<AdminFrame<'_>>(text) else {
        return;
    };
    if let Some(seq) = frame.seq
        && frame.kind != "snapshot"
    {
        if seq != *last_seq + 1 {
            ctx.stats.fail(&Failure::AdminSeqGap);
        }
        *last_seq = seq;
    }
    let (Some(pending), Some(session)) = (pending, frame.session) else {
        return;
    };
    if frame.kind != "session" || frame.event.as_deref() != Some("updated") {
        return;
    }
    let Some(local) = local_index(ctx, &session.user_id) else {
        return;
    };
    let busy = session.manual.as_deref() == Some("busy");
    if let Some(sent_ns) = pending.matches(admin, local, busy) {
        ctx.stats
            .propagated(Duration::from_nanos(received_ns.saturating_sub(sent_ns)));
    }
}

/// This worker's 0-based index of the client behind `user_id`, if it is ours.
fn local_index(ctx: &Ctx, user_id: &str) -> Option<u64> {
    let index: u64 = user_id
        .strip_prefix(ctx.plan.run_id.as_str())?
        .strip_prefix('-')?
        .parse()
        .ok()?;
    let local = index.checked_sub(ctx.plan.first_client)?;
    (local < ctx.plan.clients).then_some(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_matches_once_and_only_with_its_value() {
        let pending = Pending::new(2, 3);
        assert_eq!(pending.mark(2, 1, 500, true), 0);
        assert_eq!(pending.matches(0, 1, false), None);
        assert_eq!(pending.matches(0, 1, true), Some(500));
        assert_eq!(pending.matches(0, 1, true), None);
        assert_eq!(pending.outstanding(), 1);
        assert_eq!(pending.mark(2, 1, 900, false), 1);
        assert_eq!(pending.matches(1, 1, false), Some(900));
    }
}
