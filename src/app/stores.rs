//! Owns opening the records store `PRESENCE_DATABASE_URL` names (and the
//! revocations it keeps), and looking up end records for the replicator.

use super::*;

/// The deny entries the records store kept (none when it keeps none).
pub(super) async fn load_revoked(history: &dyn HistoryStore, revocations: &Revocations) {
    let now = chrono::Utc::now().timestamp();
    match history.load_revoked(now).await {
        Ok(entries) => {
            for revoked in entries {
                revocations.insert(revoked.user_id, revoked.deny, now);
            }
        }
        Err(err) => tracing::warn!(error = %err, "revoked users not loaded from the records store"),
    }
}

/// The store `PRESENCE_DATABASE_URL` names. `memory:` keeps v1's choice:
/// Redis in cluster mode, else memory mirrored to `PRESENCE_HISTORY_FILE`
/// when set. Beside a database, that file is imported at start and appended
/// to from then on.
pub(super) async fn open_history(settings: &Settings) -> Result<Arc<dyn HistoryStore>, StartError> {
    let store: Arc<dyn HistoryStore> = match &settings.database {
        DatabaseUrl::Memory => {
            if let Some(url) = &settings.redis_url {
                let store = RedisHistory::connect(url, &settings.namespace)
                    .map_err(StartError::RedisRecords)?;
                return Ok(Arc::new(store));
            }
            return Ok(match &settings.history_file {
                Some(path) => Arc::new(MemoryHistory::open(path)?),
                None => Arc::new(MemoryHistory::new()),
            });
        }
        DatabaseUrl::Sqlite(path) => Arc::new(
            SqliteHistory::open(path)
                .await
                .map_err(StartError::Database)?,
        ),
        DatabaseUrl::Postgres(_) => {
            let url = settings.database.postgres_url().unwrap_or_default();
            Arc::new(
                PostgresHistory::connect(url)
                    .await
                    .map_err(StartError::Database)?,
            )
        }
    };
    let Some(path) = &settings.history_file else {
        return Ok(store);
    };
    let since = crate::model::time::now_millis()
        - crate::model::time::millis_of(settings.history_retention);
    mirror::import(store.as_ref(), path, since).await?;
    Ok(Arc::new(FileMirror::open(store, path)?))
}

/// The replicator looks up how vanished replicas ended in history.
impl EndRecords for Arc<dyn HistoryStore> {
    fn end_record(&self, id: SessionId) -> BoxFuture<'_, Option<SessionView>> {
        Box::pin(async move { self.get(id).await.ok().flatten() })
    }
}
