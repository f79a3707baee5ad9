use super::*;
use crate::model::{EndCause, SessionStatus};

fn ended(user: &str, connected_at: Millis, ended_at: Millis) -> SessionView {
    SessionView {
        name: Some(format!("{user} name")),
        org: Some("acme".into()),
        status: SessionStatus::Ended,
        ip: Some("10.1.2.3".into()),
        ended_at: Some(ended_at),
        end_cause: Some(EndCause::ClientClosed),
        duration_s: (ended_at - connected_at) as f64 / 1000.0,
        ..SessionView::sample(user, connected_at)
    }
}

fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("presence-history-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    dir
}

#[tokio::test]
async fn recorded_sessions_are_found_newest_first() {
    let history = MemoryHistory::new();
    let old = ended("alice", 1_000, 2_000);
    let new = ended("bob", 5_000, 6_000);
    history.record(old.clone()).await.unwrap();
    history.record(new.clone()).await.unwrap();
    history.record(new.clone()).await.unwrap();
    let page = history.find(SessionFilter::default(), 10).await.unwrap();
    assert_eq!(page.total, 2, "recording twice keeps one");
    assert_eq!(page.sessions[0].session_id, new.session_id);
    assert_eq!(history.get(old.session_id).await.unwrap(), Some(old));
}

#[tokio::test]
async fn filters_apply_to_every_field() {
    let history = MemoryHistory::new();
    history.record(ended("alice", 1_000, 2_000)).await.unwrap();
    history.record(ended("bob", 5_000, 6_000)).await.unwrap();
    let by_user = SessionFilter {
        user_id: Some("bob".into()),
        ..Default::default()
    };
    assert_eq!(history.find(by_user, 10).await.unwrap().total, 1);
    let by_text = SessionFilter {
        q: Some("alice n".into()),
        ..Default::default()
    };
    assert_eq!(history.find(by_text, 10).await.unwrap().total, 1);
    let by_range = SessionFilter {
        from: Some(1_000),
        to: Some(5_000),
        ..Default::default()
    };
    assert_eq!(
        history.find(by_range, 10).await.unwrap().sessions[0]
            .user_id
            .as_str(),
        "alice"
    );
}

#[tokio::test]
async fn nothing_is_dropped_but_by_pruning() {
    let history = MemoryHistory::new();
    // More than the 200,000 the store used to cap itself at.
    for i in 0..200_100 {
        history
            .record(ended("u", i * 1_000, i * 1_000 + 500))
            .await
            .unwrap();
    }
    assert_eq!(history.count().await.unwrap(), 200_100);
    assert_eq!(history.prune(1_600).await.unwrap(), 2);
    assert_eq!(history.count().await.unwrap(), 200_098);
    assert_eq!(
        history
            .started_by_day(0)
            .await
            .unwrap()
            .values()
            .sum::<u64>(),
        200_098
    );
}

#[tokio::test]
async fn scanning_pages_through_everything_once() {
    let history = MemoryHistory::new();
    for i in 0..7 {
        history.record(ended("u", i, i + 1)).await.unwrap();
    }
    let mut cursor = 0;
    let mut seen = 0;
    loop {
        let (batch, next) = history
            .scan(SessionFilter::default(), cursor, 3)
            .await
            .unwrap();
        seen += batch.len();
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(seen, 7);
}

#[tokio::test]
async fn the_file_is_replayed_and_a_torn_line_is_skipped() {
    let path = temp_file("replay");
    let kept = ended("alice", 1_000, 2_000);
    {
        let history = MemoryHistory::open(&path).unwrap();
        history.record(kept.clone()).await.unwrap();
        history.flush().await.unwrap();
    }
    // A crash mid-write leaves half a line.
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(br#"{"session_id":"b5c1"#).unwrap();
    drop(file);
    let history = MemoryHistory::open(&path).unwrap();
    assert_eq!(history.get(kept.session_id).await.unwrap(), Some(kept));
    let later = ended("bob", 3_000, 4_000);
    history.record(later.clone()).await.unwrap();
    history.flush().await.unwrap();
    drop(history);
    let reopened = MemoryHistory::open(&path).unwrap();
    assert_eq!(
        reopened.count().await.unwrap(),
        2,
        "the line after the torn one is intact"
    );
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn pruning_rewrites_the_file() {
    let path = temp_file("prune");
    let history = MemoryHistory::open(&path).unwrap();
    history.record(ended("old", 1_000, 2_000)).await.unwrap();
    history.record(ended("new", 9_000, 10_000)).await.unwrap();
    history.flush().await.unwrap();
    assert_eq!(history.prune(5_000).await.unwrap(), 1);
    drop(history);
    let reopened = MemoryHistory::open(&path).unwrap();
    assert_eq!(reopened.count().await.unwrap(), 1);
    let _ = std::fs::remove_file(&path);
}
