//! Owns sampling the online series (the panel's "last hour" chart and
//! `GET /api/v1/stats/series`): at every bucket boundary of the interval
//! (10 s; `PRESENCE_SERIES_INTERVAL` only for tests) the online users and
//! live sessions of the presence map (the cluster's, the figures of
//! `GET /api/v1/stats`) are read through `PresenceHandle` and kept in the
//! records store as the bucket's point; points older than 24 h are pruned.
//! Every node of a cluster samples; the bucket is the key, so one point is
//! kept per bucket. A node that is not ready (Redis or the database
//! unreachable) writes nothing, so a partial view never replaces a
//! complete one. The engine never waits on this.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cluster::Readiness;
use crate::history::HistoryStore;
use crate::history::series::{SERIES_RETENTION_MS, SeriesPoint, bucket_of};
use crate::model::SessionStatus;
use crate::model::time::now_millis;
use crate::presence::PresenceHandle;

/// What the sampler reads from and writes to.
pub struct Sampler {
    /// The records store the points go to.
    pub store: Arc<dyn HistoryStore>,
    /// The presence map the figures come from.
    pub presence: PresenceHandle,
    /// Whether this node sees the whole cluster now.
    pub readiness: Readiness,
    /// The bucket length.
    pub interval: Duration,
}

impl Sampler {
    /// Samples at every bucket boundary until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let interval_ms = i64::try_from(self.interval.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        loop {
            let next = bucket_of(now_millis(), interval_ms).saturating_add(interval_ms);
            let wait = u64::try_from(next.saturating_sub(now_millis())).unwrap_or(0);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(wait)) => {}
                () = stop.cancelled() => return,
            }
            if self.readiness.problem().is_some() {
                continue;
            }
            let Some(point) = self.sample(interval_ms).await else {
                return;
            };
            if let Err(err) = self.store.save_series_point(point).await {
                tracing::warn!(error = %err, "saving a point of the online series failed");
                continue;
            }
            if let Err(err) = self
                .store
                .prune_series(point.at - SERIES_RETENTION_MS)
                .await
            {
                tracing::warn!(error = %err, "pruning the online series failed");
            }
        }
    }

    /// The point of the bucket now; `None` once the engine has stopped.
    async fn sample(&self, interval_ms: i64) -> Option<SeriesPoint> {
        let counts = self.presence.live_counts().await.ok()?;
        let live = [
            SessionStatus::Active,
            SessionStatus::Idle,
            SessionStatus::Away,
        ]
        .iter()
        .map(|status| counts.counters.by_status.get(status).copied().unwrap_or(0))
        .sum::<usize>();
        Some(SeriesPoint {
            at: bucket_of(now_millis(), interval_ms),
            users: u64::try_from(counts.online_users).unwrap_or(u64::MAX),
            sessions: u64::try_from(live).unwrap_or(u64::MAX),
        })
    }
}
