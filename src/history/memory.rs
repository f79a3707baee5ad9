//! Owns the single-node history: ended sessions in memory, every one inside
//! the retention window (no count cap: retention pruning bounds it), and,
//! when `PRESENCE_HISTORY_FILE` is set, appended to a JSON-lines file that is
//! replayed at start. A torn or corrupt line is skipped with a warning, never
//! a failed start. Pruning rewrites the file without the pruned records.
//! The online series is kept in memory only (bounded, `series.rs`): the
//! file holds sessions in the v1 format, and the series starts empty after
//! a restart.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::series::SeriesBuffer;
use super::{Day, HistoryError, HistoryStore, Page, ScanBatch, SeriesPoint, SessionFilter, day_of};
use crate::model::{Millis, SessionId, SessionView, UserId};

#[derive(Debug, Default)]
struct Records {
    /// In the order they ended (recorded).
    sessions: VecDeque<SessionView>,
    /// Absolute position of each kept session.
    positions: HashMap<SessionId, usize>,
    /// Absolute position of `sessions[0]`.
    base: usize,
    /// Kept sessions by the UTC day they started.
    started: BTreeMap<Day, u64>,
}

impl Records {
    fn push(&mut self, session: SessionView) -> bool {
        if self.positions.contains_key(&session.session_id) {
            return false;
        }
        *self
            .started
            .entry(day_of(session.connected_at))
            .or_insert(0) += 1;
        self.positions
            .insert(session.session_id, self.base + self.sessions.len());
        self.sessions.push_back(session);
        true
    }

    fn pop_oldest(&mut self) -> Option<SessionView> {
        let session = self.sessions.pop_front()?;
        self.positions.remove(&session.session_id);
        self.base += 1;
        let day = day_of(session.connected_at);
        if let Some(count) = self.started.get_mut(&day) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.started.remove(&day);
            }
        }
        Some(session)
    }
}

/// In-memory history, optionally mirrored to an append-only file.
#[derive(Debug)]
pub struct MemoryHistory {
    records: RwLock<Records>,
    series: Mutex<SeriesBuffer>,
    file: Option<Mutex<HistoryFile>>,
}

#[derive(Debug)]
struct HistoryFile {
    path: PathBuf,
    writer: BufWriter<File>,
}

impl Default for MemoryHistory {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryHistory {
    /// An empty in-memory history.
    pub fn new() -> Self {
        Self {
            records: RwLock::new(Records::default()),
            series: Mutex::new(SeriesBuffer::default()),
            file: None,
        }
    }

    /// A history replayed from `path` (created when missing) and appended to.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        let mut history = Self::new();
        let replayed = history.replay(path)?;
        let writer = BufWriter::new(OpenOptions::new().create(true).append(true).open(path)?);
        history.file = Some(Mutex::new(HistoryFile {
            path: path.to_path_buf(),
            writer,
        }));
        tracing::info!(path = %path.display(), sessions = replayed, "history replayed");
        Ok(history)
    }

    fn replay(&mut self, path: &Path) -> Result<usize, HistoryError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(err.into()),
        };
        let mut records = Records::default();
        for (number, line) in BufReader::new(file).split(b'\n').enumerate() {
            let line = line?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<SessionView>(&line) {
                Ok(session) => {
                    records.push(session);
                }
                Err(err) => tracing::warn!(
                    path = %path.display(),
                    line = number + 1,
                    error = %err,
                    "skipping an unreadable history line (torn write?)"
                ),
            }
        }
        let count = records.sessions.len();
        self.records = RwLock::new(records);
        // A torn last line has no newline: start appends on a fresh line.
        let mut file = OpenOptions::new().append(true).open(path)?;
        if std::fs::read(path)?.last().is_some_and(|b| *b != b'\n') {
            file.write_all(b"\n")?;
        }
        Ok(count)
    }

    fn append_to_file(&self, session: &SessionView) -> Result<(), HistoryError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut line =
            serde_json::to_vec(session).map_err(|e| HistoryError::Store(e.to_string()))?;
        line.push(b'\n');
        let mut file = file
            .lock()
            .map_err(|_| HistoryError::Store("history file lock poisoned".into()))?;
        file.writer.write_all(&line)?;
        Ok(())
    }

    fn rewrite_file(&self) -> Result<(), HistoryError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut file = file
            .lock()
            .map_err(|_| HistoryError::Store("history file lock poisoned".into()))?;
        file.writer.flush()?;
        let temporary = file.path.with_extension("compacting");
        {
            let mut out = BufWriter::new(File::create(&temporary)?);
            let records = self.read()?;
            for session in &records.sessions {
                serde_json::to_writer(&mut out, session)
                    .map_err(|e| HistoryError::Store(e.to_string()))?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        std::fs::rename(&temporary, &file.path)?;
        file.writer = BufWriter::new(OpenOptions::new().append(true).open(&file.path)?);
        Ok(())
    }

    fn series_now<T>(&self, f: impl FnOnce(&mut SeriesBuffer) -> T) -> Result<T, HistoryError> {
        let mut series = self
            .series
            .lock()
            .map_err(|_| HistoryError::Store("series lock poisoned".into()))?;
        Ok(f(&mut series))
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Records>, HistoryError> {
        self.records
            .read()
            .map_err(|_| HistoryError::Store("history lock poisoned".into()))
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Records>, HistoryError> {
        self.records
            .write()
            .map_err(|_| HistoryError::Store("history lock poisoned".into()))
    }

    fn record_now(&self, session: SessionView) -> Result<(), HistoryError> {
        let mut records = self.write()?;
        if records.positions.contains_key(&session.session_id) {
            return Ok(());
        }
        self.append_to_file(&session)?;
        records.push(session);
        Ok(())
    }

    fn find_now(&self, filter: &SessionFilter, limit: usize) -> Result<Page, HistoryError> {
        let records = self.read()?;
        let mut matches: Vec<&SessionView> = records
            .sessions
            .iter()
            .filter(|s| filter.matches(s))
            .collect();
        let total = matches.len();
        matches.sort_by(|a, b| {
            b.connected_at
                .cmp(&a.connected_at)
                .then(b.session_id.cmp(&a.session_id))
        });
        Ok(Page {
            sessions: matches.into_iter().take(limit).cloned().collect(),
            total,
        })
    }

    fn scan_now(
        &self,
        filter: &SessionFilter,
        cursor: usize,
        batch: usize,
    ) -> Result<ScanBatch, HistoryError> {
        let records = self.read()?;
        let start = cursor.max(records.base) - records.base;
        let mut found = Vec::new();
        for (offset, session) in records.sessions.iter().enumerate().skip(start) {
            if found.len() == batch {
                return Ok((found, Some(records.base + offset)));
            }
            if filter.matches(session) {
                found.push(session.clone());
            }
        }
        Ok((found, None))
    }

    fn prune_now(&self, before: Millis) -> Result<usize, HistoryError> {
        let mut pruned = 0;
        {
            let mut records = self.write()?;
            while records
                .sessions
                .front()
                .is_some_and(|s| s.ended_at.unwrap_or(0) < before)
            {
                records.pop_oldest();
                pruned += 1;
            }
        }
        if pruned > 0 {
            self.rewrite_file()?;
        }
        Ok(pruned)
    }
}

impl HistoryStore for MemoryHistory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn record(&self, session: SessionView) -> BoxFuture<'_, Result<(), HistoryError>> {
        std::future::ready(self.record_now(session)).boxed()
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), HistoryError>> {
        let result = match &self.file {
            None => Ok(()),
            Some(file) => file
                .lock()
                .map_err(|_| HistoryError::Store("history file lock poisoned".into()))
                .and_then(|mut file| file.writer.flush().map_err(HistoryError::from)),
        };
        std::future::ready(result).boxed()
    }

    fn get(&self, id: SessionId) -> BoxFuture<'_, Result<Option<SessionView>, HistoryError>> {
        let result = self.read().map(|records| {
            let position = records.positions.get(&id)?;
            records
                .sessions
                .get(position.checked_sub(records.base)?)
                .cloned()
        });
        std::future::ready(result).boxed()
    }

    fn find(
        &self,
        filter: SessionFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page, HistoryError>> {
        std::future::ready(self.find_now(&filter, limit)).boxed()
    }

    fn scan(
        &self,
        filter: SessionFilter,
        cursor: usize,
        batch: usize,
    ) -> BoxFuture<'_, Result<ScanBatch, HistoryError>> {
        std::future::ready(self.scan_now(&filter, cursor, batch.max(1))).boxed()
    }

    fn last_of_user(
        &self,
        user: UserId,
    ) -> BoxFuture<'_, Result<Option<SessionView>, HistoryError>> {
        let result = self.read().map(|records| {
            records
                .sessions
                .iter()
                .rev()
                .find(|s| s.user_id == user)
                .cloned()
        });
        std::future::ready(result).boxed()
    }

    fn started_by_day(
        &self,
        since: Day,
    ) -> BoxFuture<'_, Result<BTreeMap<Day, u64>, HistoryError>> {
        let result = self.read().map(|records| {
            records
                .started
                .range(since..)
                .map(|(d, n)| (*d, *n))
                .collect()
        });
        std::future::ready(result).boxed()
    }

    fn save_series_point(&self, point: SeriesPoint) -> BoxFuture<'_, Result<(), HistoryError>> {
        std::future::ready(self.series_now(|series| series.save(point))).boxed()
    }

    fn series(
        &self,
        from: Millis,
        to: Millis,
    ) -> BoxFuture<'_, Result<Vec<SeriesPoint>, HistoryError>> {
        std::future::ready(self.series_now(|series| series.range(from, to))).boxed()
    }

    fn prune_series(&self, before: Millis) -> BoxFuture<'_, Result<usize, HistoryError>> {
        std::future::ready(self.series_now(|series| series.prune(before))).boxed()
    }

    fn prune(&self, before: Millis) -> BoxFuture<'_, Result<usize, HistoryError>> {
        std::future::ready(self.prune_now(before)).boxed()
    }

    fn count(&self) -> BoxFuture<'_, Result<usize, HistoryError>> {
        std::future::ready(self.read().map(|records| records.sessions.len())).boxed()
    }
}

#[cfg(test)]
mod tests;
