//! Owns the two history tasks: recording ended sessions as the engine hands
//! them over (flushing whenever the queue runs dry), and pruning sessions
//! older than the retention period in the background.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::HistoryStore;
use crate::metrics::Metrics;
use crate::model::SessionView;
use crate::model::time::millis_of;
use crate::model::time::now_millis;

/// Ended sessions waiting to be recorded; the engine waits when it is full.
pub const ENDED_QUEUE: usize = 4096;

/// Ended sessions held for a retry while the store is unreachable.
const RETRY_LIMIT: usize = 100_000;

/// Records every ended session until the engine drops its sender. When the
/// store fails (Redis down), sessions wait in a bounded retry queue and are
/// recorded once it answers again; the engine is never held up.
pub async fn record_ended(
    mut ended: mpsc::Receiver<SessionView>,
    store: Arc<dyn HistoryStore>,
    metrics: Metrics,
) {
    let mut retry: VecDeque<SessionView> = VecDeque::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            session = ended.recv() => match session {
                Some(session) => {
                    metrics
                        .sessions_ended
                        .with_label_values(&[session.end_cause.map_or("unknown", |c| c.as_str())])
                        .inc();
                    retry.push_back(session);
                }
                None => break,
            },
            _ = tick.tick(), if !retry.is_empty() => {}
        }
        if ended.is_empty() {
            record_all(store.as_ref(), &mut retry, &metrics).await;
            flush(store.as_ref(), &metrics).await;
        }
    }
    record_all(store.as_ref(), &mut retry, &metrics).await;
    flush(store.as_ref(), &metrics).await;
    tracing::debug!("history writer stopped");
}

/// Records queued sessions in order; stops at the first failure.
async fn record_all(
    store: &dyn HistoryStore,
    queue: &mut VecDeque<SessionView>,
    metrics: &Metrics,
) {
    while let Some(session) = queue.pop_front() {
        if let Err(err) = store.record(session.clone()).await {
            tracing::warn!(error = %err, waiting = queue.len() + 1, "recording ended sessions failed; will retry");
            metrics.redis_errors.inc();
            queue.push_front(session);
            while queue.len() > RETRY_LIMIT {
                if let Some(dropped) = queue.pop_front() {
                    tracing::error!(session_id = %dropped.session_id, "history retry queue full; ended session dropped");
                }
            }
            return;
        }
    }
}

async fn flush(store: &dyn HistoryStore, metrics: &Metrics) {
    if let Err(err) = store.flush().await {
        tracing::error!(error = %err, "flushing history failed");
    }
    if let Ok(len) = store.count().await {
        metrics
            .history_size
            .set(i64::try_from(len).unwrap_or(i64::MAX));
    }
}

/// How often the pruner runs for a retention period.
pub fn prune_interval(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Drops sessions older than `retention` every so often until `stop`.
pub async fn prune_expired(
    store: Arc<dyn HistoryStore>,
    retention: Duration,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(prune_interval(retention));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        let before = now_millis() - millis_of(retention);
        match store.prune(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "history pruned"),
            Err(err) => tracing::warn!(error = %err, "pruning history failed"),
        }
    }
}
