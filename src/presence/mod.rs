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
mod resume;
mod rooms;
mod schedule;
mod snapshot;
mod state;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use crate::model::{Change, SessionEvent};
pub use command::{
    Command, HeartbeatOutcome, HeartbeatRequest, Offer, RemoteCommand, RemoteRequest,
    ReplicaUpdate, RoomRequest, Taken,
};
pub use engine::{Engine, Outboxes};
pub use liveness::{SessionLiveness, TerminateReason};
pub use queries::{LiveCounts, LiveStats};
use resume::ConnectStep;
pub use resume::Connected;
pub use rooms::{RoomDelivery, RoomFrame, WatchHandle};
pub use state::{NewSession, Peak, Renewal};

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

    /// Publishes an alert (raised, or cleared) on the admin feed and to the
    /// observers, numbered among the other changes.
    pub async fn publish_alert(&self, alert: crate::model::Alert) -> Result<(), EngineStopped> {
        self.send(Command::Alert(Box::new(alert))).await
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

    /// Applies a room request of a client session.
    pub async fn room(&self, request: RoomRequest) -> Result<(), EngineStopped> {
        self.send(Command::Room(request)).await
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

    /// Attaches a new WebSocket: takes over the session `resume` names when
    /// it is live, local and the same user's, else opens `session` (§9).
    pub async fn connect(
        &self,
        session: Box<NewSession>,
        liveness: Arc<SessionLiveness>,
        resume: Option<String>,
    ) -> Result<Connected, EngineStopped> {
        let user = session.user_id.clone();
        let mut step = self
            .ask(|reply| Command::Connect {
                session,
                liveness,
                resume,
                reply,
            })
            .await?;
        let mut asked: Option<crate::model::NodeId> = None;
        let started = tokio::time::Instant::now();
        loop {
            let (owner, token, session, liveness, in_transit) = match step {
                ConnectStep::Done(connected) => return Ok(connected),
                ConnectStep::Elsewhere {
                    owner,
                    token,
                    session,
                    liveness,
                    in_transit,
                } => (owner, token, session, liveness, in_transit),
            };
            let already_asked = asked.as_ref() == Some(&owner);
            if already_asked && should_wait_for_transit(started.elapsed(), in_transit) {
                // The owner said no and may be shutting down: its offer of
                // the session to another node (perhaps this one) is on its
                // way. Look again shortly.
                tokio::time::sleep(TRANSIT_POLL).await;
                step = self
                    .ask(|reply| Command::Connect {
                        session,
                        liveness,
                        resume: Some(token),
                        reply,
                    })
                    .await?;
                continue;
            }
            // Asked that owner already: it said no, so a new session.
            let view = if already_asked {
                None
            } else {
                // The owner hands the session over through the replicator
                // (or says no, or does not answer within the request
                // deadline).
                self.ask(|reply| Command::RequestHandover {
                    owner: owner.clone(),
                    token: token.clone(),
                    user: user.clone(),
                    reply,
                })
                .await?
            };
            if view.is_some() || asked.is_some() {
                return self
                    .ask(|reply| Command::Adopt {
                        view: view.map(Box::new),
                        session,
                        liveness,
                        reply,
                    })
                    .await;
            }
            // The session may have moved meanwhile (its node shut down and
            // handed it on): look once more.
            asked = Some(owner);
            step = self
                .ask(|reply| Command::Connect {
                    session,
                    liveness,
                    resume: Some(token),
                    reply,
                })
                .await?;
        }
    }

    /// Another node asks for the session `token` resumes; answers the
    /// session as handed over (now owned by `to`), or None.
    pub async fn hand_over(
        &self,
        token: String,
        user: UserId,
        to: crate::model::NodeId,
    ) -> Result<Option<crate::model::SessionView>, EngineStopped> {
        self.ask(|reply| Command::HandOver {
            token,
            user,
            to,
            reply,
        })
        .await
    }

    /// The socket behind `liveness` is gone at `at`. A resumable drop keeps
    /// the session `reconnecting` for the resume grace; any other ends it.
    pub async fn dropped(
        &self,
        id: SessionId,
        liveness: Arc<SessionLiveness>,
        cause: EndCause,
        resumable: bool,
        at: Millis,
    ) -> Result<(), EngineStopped> {
        self.send(Command::Dropped {
            id,
            liveness,
            cause,
            resumable,
            at,
        })
        .await
    }

    /// A new token for a live session (`auth`): name, org and expiry.
    pub async fn renew(&self, id: SessionId, renewal: Renewal) -> Result<(), EngineStopped> {
        self.send(Command::Renew { id, renewal }).await
    }

    /// Ends every local session with cause `shutdown` and tells their
    /// connections to close. In a cluster with a resume grace the WebSocket
    /// sessions are handed on to other nodes instead (each waits there,
    /// `reconnecting`, for its tab); this waits for those answers (bounded
    /// by the cross-node request deadline).
    pub async fn shutdown(&self) -> Result<(), EngineStopped> {
        let moves = self.ask(|reply| Command::Shutdown { reply }).await?;
        for command::PendingMove { offered, answer } in moves {
            let taken = answer.await.ok().flatten();
            self.send(Command::Moved { offered, taken }).await?;
        }
        Ok(())
    }

    /// A node that shuts down hands a batch of its dropped sessions on;
    /// answers which this node took.
    pub async fn take_over_dropped(
        &self,
        offers: Vec<Offer>,
    ) -> Result<Option<Taken>, EngineStopped> {
        self.ask(|reply| Command::TakeOverDropped { offers, reply })
            .await
    }
}

/// How often a resume whose owner said no looks again for a session in
/// transit between nodes.
const TRANSIT_POLL: Duration = Duration::from_millis(25);
/// How long it looks while the session does not show as `reconnecting`
/// (the owner's drop may not have replicated yet).
const TRANSIT_UNSEEN_WAIT: Duration = Duration::from_millis(300);
/// How long it looks for a session that shows as `reconnecting`.
const TRANSIT_WAIT: Duration = Duration::from_secs(2);

/// True while a resume refused by the session's owner should keep looking
/// for the session to arrive from that owner's shutdown.
fn should_wait_for_transit(waited: Duration, in_transit: bool) -> bool {
    let limit = if in_transit {
        TRANSIT_WAIT
    } else {
        TRANSIT_UNSEEN_WAIT
    };
    waited < limit
}
