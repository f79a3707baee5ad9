//! Owns the connection to Redis: opening the command connection and the
//! subscription, reconnecting after any failure with a doubling backoff and
//! jitter, and the readiness reported meanwhile (`redis_unreachable`). While
//! Redis is out of reach, cross-node requests are refused at once.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::epoch::Connected;
use super::{ClusterError, RedisReplicator};
use crate::cluster::seal::Rejection;
use crate::cluster::{ReplicationLink, Replicator};
use crate::redis_access::{Follower, Messages, RedisConn};

/// The first wait between reconnect attempts (and after a lasting one).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A connection that lasted longer than this starts the backoff over.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// The `/readyz` reason while Redis cannot be reached.
const REDIS_UNREACHABLE: &str = "redis_unreachable";

impl Replicator for RedisReplicator {
    async fn run(self, mut link: ReplicationLink, shutdown: CancellationToken) {
        // Shown at 0 from the start, so a dashboard can alert on any increase.
        for rejection in Rejection::ALL {
            link.metrics
                .cluster_rejected
                .with_label_values(&[rejection.as_str()]);
        }
        let mut backoff = Backoff::new();
        loop {
            let started = Instant::now();
            match Connected::start(&self, &mut link, &shutdown).await {
                Ok(()) => return,
                Err(err) => report_unreachable(&link, &err),
            }
            let wait = backoff.next_wait(started.elapsed(), |most| rand::random_range(0..=most));
            if shut_down_while_waiting(wait, &mut link, &shutdown).await {
                return;
            }
        }
    }
}

/// Opens the command connection and subscribes to the delta channel (on a
/// Redis Cluster: the announcements; other nodes' channels are followed as
/// they become known), the revocation and alert channels and this node's
/// inbox.
pub(super) async fn connect(
    replicator: &RedisReplicator,
) -> Result<(RedisConn, Messages, Follower), ClusterError> {
    let keys = &replicator.keys;
    let conn = replicator.deployment.commands().await?;
    let first = if keys.is_sharded() {
        keys.announcements()
    } else {
        keys.deltas_of(&replicator.config.node_id)
    };
    let channels = [
        first,
        keys.revoked_channel(),
        keys.alerts_channel(),
        keys.inbox(&replicator.config.node_id),
    ];
    let (messages, follower) = replicator.deployment.subscribe(&channels).await?;
    Ok((conn, messages, follower))
}

fn report_unreachable(link: &ReplicationLink, err: &ClusterError) {
    link.readiness.set_problem(REDIS_UNREACHABLE);
    link.metrics.redis_errors.inc();
    tracing::warn!(error = %err, "redis unreachable; serving local clients and retrying");
}

/// Waits `wait` before the next attempt. Nobody can be asked while Redis is
/// down, so cross-node requests are answered "not found" at once. True when
/// shutdown came first.
async fn shut_down_while_waiting(
    wait: Duration,
    link: &mut ReplicationLink,
    shutdown: &CancellationToken,
) -> bool {
    let wake = tokio::time::sleep(wait);
    tokio::pin!(wake);
    loop {
        tokio::select! {
            () = &mut wake => return false,
            () = shutdown.cancelled() => return true,
            Some(command) = link.remote_commands.recv() => command.refuse(),
        }
    }
}

/// The waits between reconnect attempts: each is half the current backoff
/// plus a random part of the other half, so nodes cut off together do not
/// reconnect in step. The backoff doubles up to `MAX_BACKOFF` and starts
/// over after a connection that lasted.
#[derive(Debug)]
struct Backoff {
    current: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            current: FIRST_BACKOFF,
        }
    }

    /// The wait after a connection (attempt) that lasted `lasted`. `pick(n)`
    /// draws a number of milliseconds from `0..=n`.
    fn next_wait(&mut self, lasted: Duration, pick: impl FnOnce(u64) -> u64) -> Duration {
        if lasted > STABLE_AFTER {
            self.current = FIRST_BACKOFF;
        }
        let most = u64::try_from(self.current.as_millis()).unwrap_or(100);
        let jitter = Duration::from_millis(pick(most));
        let wait = self.current / 2 + jitter / 2;
        self.current = (self.current * 2).min(MAX_BACKOFF);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BRIEF: Duration = Duration::from_millis(5);

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn the_backoff_doubles_up_to_two_seconds() {
        let mut backoff = Backoff::new();
        let longest: Vec<Duration> = (0..7)
            .map(|_| backoff.next_wait(BRIEF, |most| most))
            .collect();
        assert_eq!(
            longest,
            [100, 200, 400, 800, 1600, 2000, 2000].map(ms).to_vec()
        );
    }

    #[test]
    fn jitter_keeps_each_wait_between_half_and_all_of_the_backoff() {
        let mut shortest = Backoff::new();
        let mut drawn = Backoff::new();
        for ceiling in [100, 200, 400, 800, 1600, 2000, 2000] {
            assert_eq!(shortest.next_wait(BRIEF, |_| 0), ms(ceiling / 2));
            let wait = drawn.next_wait(BRIEF, |most| {
                assert_eq!(most, ceiling, "jitter is drawn from 0..=backoff");
                rand::random_range(0..=most)
            });
            assert!(wait >= ms(ceiling / 2) && wait <= ms(ceiling), "{wait:?}");
        }
    }

    #[test]
    fn a_connection_that_lasted_starts_the_backoff_over() {
        let mut backoff = Backoff::new();
        for _ in 0..5 {
            backoff.next_wait(BRIEF, |most| most);
        }
        assert_eq!(
            backoff.next_wait(STABLE_AFTER, |most| most),
            ms(2000),
            "exactly ten seconds is not yet stable"
        );
        assert_eq!(
            backoff.next_wait(STABLE_AFTER + ms(1), |most| most),
            ms(100)
        );
        assert_eq!(backoff.next_wait(BRIEF, |most| most), ms(200));
    }
}
