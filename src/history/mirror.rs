//! Owns `PRESENCE_HISTORY_FILE` beside a database store (contract v1.1
//! §10): at start the file's records are imported into the database (ids
//! already there are skipped, so a second start imports nothing new), and
//! `FileMirror` appends every record written from then on to the file, so a
//! v1 installation moves to a database by setting nothing else.
//!
//! The file stays an append-only JSON-lines log in the format
//! `MemoryHistory` replays; records older than the retention period are not
//! imported. A torn or corrupt line is skipped with a warning.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::{
    DailyPeaks, Day, HistoryError, HistoryStore, Page, ScanBatch, SeriesPoint, SessionFilter,
};
use crate::model::{Millis, SessionId, SessionView, UserId};

/// Records handed to the database per transaction while importing.
const IMPORT_BATCH: usize = 1000;

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// Records read from the file (within the retention period).
    pub read: usize,
    /// Records that were not in the database yet.
    pub added: usize,
}

/// Imports the records of `path` that ended at or after `since` into `store`.
/// A missing file imports nothing.
pub async fn import(
    store: &dyn HistoryStore,
    path: &Path,
    since: Millis,
) -> Result<Imported, HistoryError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Imported::default()),
        Err(err) => return Err(err.into()),
    };
    let mut done = Imported::default();
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    for (number, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<SessionView>(&line) {
            Ok(session) if session.ended_at.unwrap_or(session.connected_at) >= since => {
                batch.push(session);
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(
                path = %path.display(),
                line = number + 1,
                error = %err,
                "skipping an unreadable history line (torn write?)"
            ),
        }
        if batch.len() == IMPORT_BATCH {
            done.read += batch.len();
            done.added += store.record_batch(&batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        done.read += batch.len();
        done.added += store.record_batch(&batch).await?;
    }
    tracing::info!(path = %path.display(), read = done.read, imported = done.added, "history file imported");
    Ok(done)
}

/// A store whose new records are also appended to a JSON-lines file.
pub struct FileMirror {
    inner: Arc<dyn HistoryStore>,
    path: PathBuf,
    file: Mutex<BufWriter<File>>,
}

impl std::fmt::Debug for FileMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileMirror")
            .field("store", &self.inner.name())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileMirror {
    /// Appends to `path` (created when missing) whatever `inner` records.
    pub fn open(inner: Arc<dyn HistoryStore>, path: &Path) -> Result<Self, HistoryError> {
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        // A torn last line has no newline: append on a fresh line.
        if std::fs::read(path)?.last().is_some_and(|b| *b != b'\n') {
            file.write_all(b"\n")?;
        }
        Ok(Self {
            inner,
            path: path.to_path_buf(),
            file: Mutex::new(BufWriter::new(file)),
        })
    }

    fn append(&self, sessions: &[SessionView]) -> Result<(), HistoryError> {
        let mut lines = Vec::new();
        for session in sessions {
            serde_json::to_writer(&mut lines, session)
                .map_err(|e| HistoryError::Store(e.to_string()))?;
            lines.push(b'\n');
        }
        let mut file = self
            .file
            .lock()
            .map_err(|_| HistoryError::Store("history file lock poisoned".into()))?;
        file.write_all(&lines).map_err(|err| {
            tracing::error!(path = %self.path.display(), error = %err, "appending to the history file failed");
            HistoryError::from(err)
        })
    }

    fn flush_file(&self) -> Result<(), HistoryError> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| HistoryError::Store("history file lock poisoned".into()))?;
        file.flush()?;
        Ok(())
    }
}

impl HistoryStore for FileMirror {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn audit(&self) -> Option<Arc<dyn crate::audit::store::AuditStore>> {
        self.inner.audit()
    }

    fn outbox(&self) -> Option<Arc<dyn super::outbox::OutboxStore>> {
        self.inner.outbox()
    }

    fn record(&self, session: SessionView) -> BoxFuture<'_, Result<(), HistoryError>> {
        async move {
            self.inner.record(session.clone()).await?;
            self.append(std::slice::from_ref(&session))
        }
        .boxed()
    }

    fn record_batch<'a>(
        &'a self,
        sessions: &'a [SessionView],
    ) -> BoxFuture<'a, Result<usize, HistoryError>> {
        async move {
            let added = self.inner.record_batch(sessions).await?;
            // The database has them: a failed append is logged, not retried.
            let _ = self.append(sessions);
            Ok(added)
        }
        .boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), HistoryError>> {
        self.inner.check()
    }

    fn save_revoked(
        &self,
        revoked: crate::revocation::Revoked,
    ) -> BoxFuture<'_, Result<(), HistoryError>> {
        self.inner.save_revoked(revoked)
    }

    fn load_revoked(
        &self,
        now_s: i64,
    ) -> BoxFuture<'_, Result<Vec<crate::revocation::Revoked>, HistoryError>> {
        self.inner.load_revoked(now_s)
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), HistoryError>> {
        async move {
            self.inner.flush().await?;
            self.flush_file()
        }
        .boxed()
    }

    fn get(&self, id: SessionId) -> BoxFuture<'_, Result<Option<SessionView>, HistoryError>> {
        self.inner.get(id)
    }

    fn find(
        &self,
        filter: SessionFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, HistoryError>> {
        self.inner.find(filter, limit)
    }

    fn scan(
        &self,
        filter: SessionFilter,
        cursor: usize,
        batch: usize,
    ) -> BoxFuture<'_, Result<ScanBatch, HistoryError>> {
        self.inner.scan(filter, cursor, batch)
    }

    fn last_of_user(
        &self,
        user: UserId,
    ) -> BoxFuture<'_, Result<Option<SessionView>, HistoryError>> {
        self.inner.last_of_user(user)
    }

    fn started_by_day(
        &self,
        since: Day,
    ) -> BoxFuture<'_, Result<BTreeMap<Day, u64>, HistoryError>> {
        self.inner.started_by_day(since)
    }

    fn ended_durations_since(
        &self,
        since: Millis,
    ) -> BoxFuture<'_, Result<(u64, f64), HistoryError>> {
        self.inner.ended_durations_since(since)
    }

    fn timeline(
        &self,
        id: SessionId,
    ) -> BoxFuture<'_, Result<Option<crate::model::timeline::Timeline>, HistoryError>> {
        self.inner.timeline(id)
    }

    fn peak(&self, day: Day) -> BoxFuture<'_, Result<Option<(u64, Millis)>, HistoryError>> {
        self.inner.peak(day)
    }

    fn save_peak(
        &self,
        day: Day,
        users: u64,
        at: Millis,
    ) -> BoxFuture<'_, Result<(), HistoryError>> {
        self.inner.save_peak(day, users, at)
    }

    fn peaks(&self, from: Day, to: Day) -> BoxFuture<'_, Result<DailyPeaks, HistoryError>> {
        self.inner.peaks(from, to)
    }

    fn save_series_point(&self, point: SeriesPoint) -> BoxFuture<'_, Result<(), HistoryError>> {
        self.inner.save_series_point(point)
    }

    fn series(
        &self,
        from: Millis,
        to: Millis,
    ) -> BoxFuture<'_, Result<Vec<SeriesPoint>, HistoryError>> {
        self.inner.series(from, to)
    }

    fn prune_series(&self, before: Millis) -> BoxFuture<'_, Result<usize, HistoryError>> {
        self.inner.prune_series(before)
    }

    fn prune(&self, before: Millis) -> BoxFuture<'_, Result<usize, HistoryError>> {
        self.inner.prune(before)
    }

    fn count(&self) -> BoxFuture<'_, Result<usize, HistoryError>> {
        self.inner.count()
    }
}
