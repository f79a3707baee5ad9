//! Owns history in Redis (cluster mode): each ended session stored once
//! under its id (`SET NX`, so several nodes recording the same loss keep one
//! record), indexed by `connected_at` and `ended_at`, with per-day start
//! counts, surviving restarts of every hub node. The online series is a
//! sorted set of `at:users:sessions` scored by the bucket `at`: a point
//! replaces its bucket's in one script, so nodes sampling the same bucket
//! leave one, and the set is trimmed by score (24 h, `series.rs`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use redis::Script;

use crate::redis_access::{Deployment, LazyConn, RedisConn};

use super::series::MAX_SERIES_POINTS;
use super::{Day, HistoryError, HistoryStore, Page, ScanBatch, SeriesPoint, SessionFilter, day_of};
use crate::keyspace::Keys;
use crate::model::{Millis, SessionId, SessionView, UserId};

/// Sessions fetched per round trip when filtering.
const FETCH_BATCH: usize = 500;

/// KEYS: session, by_connected, by_ended, started, last_by_user.
/// ARGV: id, json, connected_at, ended_at, day, user.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], ARGV[2], 'NX') then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
  redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
  redis.call('HSET', KEYS[5], ARGV[6], ARGV[2])
  return 1
end
return 0
",
    )
});

/// KEYS: by_connected, by_ended, started, last_by_user. ARGV: prefix,
/// cutoff, batch. A user's last session goes with it when it is pruned.
static PRUNE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local pruned = 0
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  local json = redis.call('GET', key)
  if json then
    redis.call('DEL', key)
    local day = math.floor(tonumber(redis.call('ZSCORE', KEYS[1], id) or '0') / 86400000)
    local left = redis.call('HINCRBY', KEYS[3], tostring(day), -1)
    if left <= 0 then redis.call('HDEL', KEYS[3], tostring(day)) end
    local ok, session = pcall(cjson.decode, json)
    if ok and type(session) == 'table' and session.user_id then
      local last = redis.call('HGET', KEYS[4], session.user_id)
      if last then
        local ok_last, kept = pcall(cjson.decode, last)
        if ok_last and type(kept) == 'table' and kept.session_id == id then
          redis.call('HDEL', KEYS[4], session.user_id)
        end
      end
    end
    pruned = pruned + 1
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return pruned
",
    )
});

/// KEYS: series. ARGV: at, member, most points kept. The bucket's point is
/// replaced; past the bound the oldest go.
static SAVE_POINT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1) end
return 1
",
    )
});

/// A series point as its member is stored (`at:users:sessions`).
fn point_member(point: &SeriesPoint) -> String {
    format!("{}:{}:{}", point.at, point.users, point.sessions)
}

/// A series member read back (`at:users:sessions`); anything else is
/// skipped.
fn parse_point(member: &str) -> Option<SeriesPoint> {
    let mut parts = member.split(':');
    let point = SeriesPoint {
        at: parts.next()?.parse().ok()?,
        users: parts.next()?.parse().ok()?,
        sessions: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(point)
}

/// History shared by every node through Redis.
#[derive(Clone)]
pub struct RedisHistory {
    conn: LazyConn,
    keys: Keys,
}

impl std::fmt::Debug for RedisHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHistory").finish_non_exhaustive()
    }
}

fn store_error(err: &redis::RedisError) -> HistoryError {
    HistoryError::Store(err.to_string())
}

impl RedisHistory {
    /// A history under `namespace`, through a reconnecting connection that
    /// is opened on first use (a hub starts even while Redis is down).
    pub fn connect(url: &str, namespace: &str) -> Result<Self, HistoryError> {
        let deployment = Deployment::parse(url).map_err(HistoryError::Store)?;
        let keys = if deployment.is_cluster() {
            Keys::sharded(namespace)
        } else {
            Keys::new(namespace)
        };
        let conn = deployment.lazy().map_err(|e| store_error(&e))?;
        Ok(Self { conn, keys })
    }

    /// The connection, connected first if needed.
    async fn conn(&self) -> Result<RedisConn, HistoryError> {
        self.conn.get().await.map_err(|e| store_error(&e))
    }

    async fn record_now(&self, session: SessionView) -> Result<(), HistoryError> {
        let mut conn = self.conn().await?;
        let id = session.session_id.to_string();
        let json = crate::model::json::to_json(&session);
        RECORD
            .key(self.keys.history_session(&id))
            .key(self.keys.history_by_connected())
            .key(self.keys.history_by_ended())
            .key(self.keys.history_started())
            .key(self.keys.history_last_by_user())
            .arg(&id)
            .arg(json)
            .arg(session.connected_at)
            .arg(session.ended_at.unwrap_or(session.connected_at))
            .arg(day_of(session.connected_at))
            .arg(session.user_id.as_str())
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(())
    }

    async fn fetch(&self, ids: &[String]) -> Result<Vec<SessionView>, HistoryError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let keys: Vec<String> = ids.iter().map(|id| self.keys.history_session(id)).collect();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(values
            .into_iter()
            .flatten()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect())
    }

    /// Ids by `connected_at`, newest first, in index range `start..=stop`.
    async fn ids_newest_first(
        &self,
        start: usize,
        stop: usize,
    ) -> Result<Vec<String>, HistoryError> {
        let mut conn = self.conn().await?;
        redis::cmd("ZREVRANGE")
            .arg(self.keys.history_by_connected())
            .arg(start)
            .arg(stop)
            .query_async(&mut conn)
            .await
            .map_err(|e| store_error(&e))
    }

    async fn find_now(&self, filter: SessionFilter, limit: usize) -> Result<Page, HistoryError> {
        let mut page = Page::default();
        let mut start = 0;
        loop {
            let ids = self
                .ids_newest_first(start, start + FETCH_BATCH - 1)
                .await?;
            if ids.is_empty() {
                return Ok(page);
            }
            start += ids.len();
            for session in self.fetch(&ids).await? {
                if filter.matches(&session) {
                    page.total += 1;
                    if page.sessions.len() < limit {
                        page.sessions.push(session);
                    }
                }
            }
        }
    }

    async fn scan_now(
        &self,
        filter: SessionFilter,
        cursor: usize,
        batch: usize,
    ) -> Result<ScanBatch, HistoryError> {
        let mut conn = self.conn().await?;
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.history_by_connected())
            .arg(cursor)
            .arg(cursor + batch - 1)
            .query_async(&mut conn)
            .await
            .map_err(|e| store_error(&e))?;
        let next = (ids.len() == batch).then_some(cursor + batch);
        let sessions = self
            .fetch(&ids)
            .await?
            .into_iter()
            .filter(|s| filter.matches(s))
            .collect();
        Ok((sessions, next))
    }
}

impl HistoryStore for RedisHistory {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn record(&self, session: SessionView) -> BoxFuture<'_, Result<(), HistoryError>> {
        self.record_now(session).boxed()
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), HistoryError>> {
        std::future::ready(Ok(())).boxed()
    }

    fn get(&self, id: SessionId) -> BoxFuture<'_, Result<Option<SessionView>, HistoryError>> {
        async move { Ok(self.fetch(&[id.to_string()]).await?.pop()) }.boxed()
    }

    fn find(
        &self,
        filter: SessionFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, HistoryError>> {
        self.find_now(filter, limit).boxed()
    }

    fn scan(
        &self,
        filter: SessionFilter,
        cursor: usize,
        batch: usize,
    ) -> BoxFuture<'_, Result<ScanBatch, HistoryError>> {
        self.scan_now(filter, cursor, batch.max(1)).boxed()
    }

    fn last_of_user(
        &self,
        user: UserId,
    ) -> BoxFuture<'_, Result<Option<SessionView>, HistoryError>> {
        async move {
            let mut conn = self.conn().await?;
            let json: Option<String> = redis::cmd("HGET")
                .arg(self.keys.history_last_by_user())
                .arg(user.as_str())
                .query_async(&mut conn)
                .await
                .map_err(|e| store_error(&e))?;
            Ok(json.and_then(|json| serde_json::from_str(&json).ok()))
        }
        .boxed()
    }

    fn started_by_day(
        &self,
        since: Day,
    ) -> BoxFuture<'_, Result<BTreeMap<Day, u64>, HistoryError>> {
        async move {
            let mut conn = self.conn().await?;
            let counts: Vec<(String, i64)> = redis::cmd("HGETALL")
                .arg(self.keys.history_started())
                .query_async(&mut conn)
                .await
                .map_err(|e| store_error(&e))?;
            Ok(counts
                .into_iter()
                .filter_map(|(day, n)| Some((day.parse::<Day>().ok()?, u64::try_from(n).ok()?)))
                .filter(|(day, _)| *day >= since)
                .collect())
        }
        .boxed()
    }

    fn prune(&self, before: Millis) -> BoxFuture<'_, Result<usize, HistoryError>> {
        async move {
            let mut conn = self.conn().await?;
            let mut total = 0;
            loop {
                let pruned: usize = PRUNE
                    .key(self.keys.history_by_connected())
                    .key(self.keys.history_by_ended())
                    .key(self.keys.history_started())
                    .key(self.keys.history_last_by_user())
                    .arg(self.keys.history_session(""))
                    .arg(before)
                    .arg(FETCH_BATCH)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| store_error(&e))?;
                total += pruned;
                if pruned < FETCH_BATCH {
                    return Ok(total);
                }
            }
        }
        .boxed()
    }

    fn save_series_point(&self, point: SeriesPoint) -> BoxFuture<'_, Result<(), HistoryError>> {
        async move {
            let mut conn = self.conn().await?;
            let member = point_member(&point);
            SAVE_POINT
                .key(self.keys.history_series())
                .arg(point.at)
                .arg(member)
                .arg(MAX_SERIES_POINTS)
                .invoke_async::<i64>(&mut conn)
                .await
                .map_err(|e| store_error(&e))?;
            Ok(())
        }
        .boxed()
    }

    fn series(
        &self,
        from: Millis,
        to: Millis,
    ) -> BoxFuture<'_, Result<Vec<SeriesPoint>, HistoryError>> {
        async move {
            let mut conn = self.conn().await?;
            let members: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(self.keys.history_series())
                .arg(from)
                .arg(to)
                .query_async(&mut conn)
                .await
                .map_err(|e| store_error(&e))?;
            Ok(members.iter().filter_map(|m| parse_point(m)).collect())
        }
        .boxed()
    }

    fn prune_series(&self, before: Millis) -> BoxFuture<'_, Result<usize, HistoryError>> {
        async move {
            let mut conn = self.conn().await?;
            redis::cmd("ZREMRANGEBYSCORE")
                .arg(self.keys.history_series())
                .arg("-inf")
                .arg(format!("({before}"))
                .query_async(&mut conn)
                .await
                .map_err(|e| store_error(&e))
        }
        .boxed()
    }

    fn count(&self) -> BoxFuture<'_, Result<usize, HistoryError>> {
        async move {
            let mut conn = self.conn().await?;
            redis::cmd("ZCARD")
                .arg(self.keys.history_by_connected())
                .query_async(&mut conn)
                .await
                .map_err(|e| store_error(&e))
        }
        .boxed()
    }
}

#[cfg(test)]
mod properties;
