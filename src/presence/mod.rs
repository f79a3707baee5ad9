//! Owns who is online and in what status: the single source of truth.
//!
//! One task, the engine (`engine.rs`), holds the pure `PresenceState` and
//! applies `Command`s in order; everyone else talks to it through the cheap
//! `PresenceHandle`. Connections never lock the map: a ping stores a time in
//! the session's `SessionLiveness` atomics and reports to the engine only
//! when an admin could see a difference.

mod command;
mod derive;
mod engine;
mod liveness;
mod queries;
mod schedule;
mod snapshot;
mod state;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

pub use crate::model::{Change, SessionEvent};
pub use command::{
    Command, HeartbeatOutcome, HeartbeatRequest, RemoteCommand, RemoteRequest, ReplicaUpdate,
};
pub use engine::{Engine, Outboxes};
pub use liveness::{SessionLiveness, TerminateReason};
pub use queries::{LiveCounts, LiveStats};
pub use state::{Counters, NewSession, Peak};

use state::PresenceState;

use crate::feed::Subscription;
use crate::model::{AuditEvent, EndCause, ManualStatus, MetaUpdate, Millis, SessionId, UserId};

/// How many commands may wait for the engine before senders wait too.
pub const COMMAND_QUEUE: usize = 65_536;

/// The engine has stopped (the hub is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the presence engine has stopped")]
pub struct EngineStopped;

/// The cheap, cloneable way to talk to the presence engine.
#[derive(Debug, Clone)]
pub struct PresenceHandle {
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl PresenceHandle {
    /// A handle and the receiver the engine reads from.
    pub fn channel() -> (Self, mpsc::Receiver<Command>) {
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        (Self { commands }, receiver)
    }

    async fn send(&self, command: Command) -> Result<(), EngineStopped> {
        self.commands.send(command).await.map_err(|_| EngineStopped)
    }

    async fn ask<R>(
        &self,
        build: impl FnOnce(oneshot::Sender<R>) -> Command,
    ) -> Result<R, EngineStopped> {
        let (reply, answer) = oneshot::channel();
        self.send(build(reply)).await?;
        answer.await.map_err(|_| EngineStopped)
    }

    /// Opens a session.
    pub async fn open(
        &self,
        session: Box<NewSession>,
        liveness: Option<Arc<SessionLiveness>>,
    ) -> Result<(), EngineStopped> {
        self.send(Command::Open { session, liveness }).await
    }

    /// Reports activity that an admin must see now (status or page change).
    pub async fn report_activity(
        &self,
        id: SessionId,
        page: Option<String>,
    ) -> Result<(), EngineStopped> {
        self.send(Command::Activity { id, page }).await
    }

    /// Reports routine activity; dropped when the engine is busy, since the
    /// liveness atomics already hold it and the engine reads them.
    pub fn offer_activity(&self, id: SessionId) {
        let _ = self.commands.try_send(Command::Activity { id, page: None });
    }

    /// Sets or clears a manual status.
    pub async fn set_manual(
        &self,
        id: SessionId,
        manual: Option<ManualStatus>,
    ) -> Result<(), EngineStopped> {
        self.send(Command::SetManual { id, manual }).await
    }

    /// Applies client metadata.
    pub async fn apply_meta(&self, id: SessionId, update: MetaUpdate) -> Result<(), EngineStopped> {
        self.send(Command::Meta {
            id,
            update: Box::new(update),
        })
        .await
    }

    /// Ends a session whose connection is over.
    pub async fn end(&self, id: SessionId, cause: EndCause) -> Result<(), EngineStopped> {
        self.send(Command::End { id, cause }).await
    }

    /// Applies an HTTP heartbeat to an existing session (on whichever node
    /// holds it).
    pub async fn heartbeat(
        &self,
        beat: HeartbeatRequest,
    ) -> Result<HeartbeatOutcome, EngineStopped> {
        self.ask(|reply| Command::Heartbeat {
            beat: Box::new(beat),
            reply,
        })
        .await
    }

    /// Counts one HTTP heartbeat exchange of a session (its traffic).
    pub async fn count_http_traffic(
        &self,
        id: SessionId,
        bytes_in: usize,
        bytes_out: usize,
    ) -> Result<(), EngineStopped> {
        self.send(Command::HttpTraffic {
            id,
            bytes_in,
            bytes_out,
        })
        .await
    }

    /// Seeds today's peak from the records store.
    pub async fn seed_peak(&self, peak: state::Peak) -> Result<(), EngineStopped> {
        self.send(Command::SeedPeak(peak)).await
    }

    /// Applies what another node published.
    pub async fn apply_replica(&self, update: ReplicaUpdate) -> Result<(), EngineStopped> {
        self.send(Command::Replica(update)).await
    }

    /// Terminates a session; false when no live session has that id.
    pub async fn terminate(
        &self,
        id: SessionId,
        reason: TerminateReason,
    ) -> Result<bool, EngineStopped> {
        self.ask(|reply| Command::Terminate { id, reason, reply })
            .await
    }

    /// Terminates every session of a user; returns how many.
    pub async fn terminate_user(
        &self,
        user: UserId,
        reason: TerminateReason,
    ) -> Result<usize, EngineStopped> {
        self.ask(|reply| Command::TerminateUser {
            user,
            reason,
            reply,
        })
        .await
    }

    /// Subscribes an admin stream.
    pub async fn subscribe(&self, org: Option<String>) -> Result<Subscription, EngineStopped> {
        self.ask(|reply| Command::Subscribe { org, reply }).await
    }

    /// Runs a read-only function over the map inside the engine; the named
    /// queries of `queries.rs` are built on it.
    async fn inspect<R: Send + 'static>(
        &self,
        look: impl FnOnce(&PresenceState, Millis) -> R + Send + 'static,
    ) -> Result<R, EngineStopped> {
        self.ask(|reply| {
            Command::Inspect(Box::new(move |state, now| {
                let _ = reply.send(look(state, now));
            }))
        })
        .await
    }

    /// Puts an audit event on the admin streams (in the order of the
    /// engine's other changes).
    pub async fn publish_audit(&self, event: AuditEvent) -> Result<(), EngineStopped> {
        self.send(Command::Audit(Box::new(event))).await
    }

    /// Ends every local session with cause `shutdown` and tells their
    /// connections to close.
    pub async fn shutdown(&self) -> Result<(), EngineStopped> {
        self.ask(|reply| Command::Shutdown { reply }).await
    }
}
