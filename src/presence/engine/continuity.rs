//! Owns the engine's side of session continuity (v1.1 §9): attaching a
//! new socket (a resume, or a new session), handing sessions over between
//! nodes, a dropped socket waiting for its resume, and the shutdown that
//! hands sessions on.

use super::*;
use crate::presence::command::{Offer, Taken};

/// Sessions offered to another node in one cross-node request at shutdown.
const OFFER_BATCH: usize = 256;

impl Engine {
    /// A new socket: takes over the session its token names when that is a
    /// live local WebSocket session of the same user, else opens a new one.
    pub(super) fn connect(
        &mut self,
        session: NewSession,
        liveness: Arc<SessionLiveness>,
        resume: Option<&str>,
        now: Millis,
    ) -> Connected {
        let resumable = resume.and_then(|token| self.resumable(token, &session.user_id));
        let Some(id) = resumable else {
            let id = session.id;
            self.open(session, Some(liveness), now);
            return Connected {
                session_id: id,
                resumed: false,
                resume_token: self.resume.issue(id),
            };
        };
        if let Some(record) = self.state.session(id) {
            liveness.reset_activity(record.last_activity());
        }
        if let Some(old) = self.liveness.insert(id, liveness) {
            old.request_replaced();
        }
        let renewal = Renewal::of(&session);
        let changes = self.state.take_over(id, renewal, session.meta.page, now);
        self.commit(id, changes);
        Connected {
            session_id: id,
            resumed: true,
            resume_token: self.resume.issue(id),
        }
    }

    /// Where a new socket's session is: here (opened or resumed), or on the
    /// other node that owns the session its resume token names.
    pub(super) fn connect_step(
        &mut self,
        session: Box<NewSession>,
        liveness: Arc<SessionLiveness>,
        resume: Option<String>,
        now: Millis,
    ) -> ConnectStep {
        match resume {
            Some(token) if let Some(owner) = self.owner_elsewhere(&token) => {
                let in_transit = session_of(&token).is_some_and(|id| self.state.is_dropped(id));
                ConnectStep::Elsewhere {
                    owner,
                    token,
                    session,
                    liveness,
                    in_transit,
                }
            }
            resume => ConnectStep::Done(self.connect(*session, liveness, resume.as_deref(), now)),
        }
    }

    /// Asks `owner` to hand over the session `token` names to this node.
    pub(super) fn request_handover(
        &mut self,
        owner: NodeId,
        token: String,
        user: UserId,
        reply: oneshot::Sender<Option<SessionView>>,
    ) {
        self.forward(RemoteCommand {
            node: owner,
            request: RemoteRequest::Handover {
                token,
                user_id: user,
                to: self.config.node_id.clone(),
                reply,
            },
        });
    }

    /// The live local WebSocket session of `user` that `token` resumes.
    pub(super) fn resumable(&self, token: &str, user: &UserId) -> Option<SessionId> {
        let id = self.resume.peek(token)?;
        let session = self.state.session(id)?;
        let ok =
            self.is_local(id) && session.user_id() == user && session.transport() == Transport::Ws;
        ok.then_some(id)
    }

    /// The other node that owns the session `token` names, when the token
    /// is not one of this node's.
    pub(super) fn owner_elsewhere(&self, token: &str) -> Option<NodeId> {
        if self.resume.peek(token).is_some() {
            return None;
        }
        let owner = self.state.session(session_of(token)?)?.node_id().clone();
        (owner != self.config.node_id).then_some(owner)
    }

    /// Hands a local session over to node `to`, whose socket presented its
    /// token: the old socket (if open) closes 4003 without `terminated`, the
    /// session becomes a replica owned by `to` (one admin `updated` here),
    /// and its removal from this node's published state goes out as an
    /// upsert naming the new owner. Nothing ends, nothing starts.
    pub(super) fn hand_over(
        &mut self,
        token: &str,
        user: &UserId,
        to: NodeId,
        now: Millis,
    ) -> Option<SessionView> {
        if to == self.config.node_id {
            return None;
        }
        let id = self.resumable(token, user)?;
        let mut view = self.state.session(id)?.view(now);
        if let Some(old) = self.liveness.remove(&id) {
            old.request_replaced();
        }
        self.resume.forget(id);
        self.schedule.set(id, None);
        view.node_id = to;
        view.reconnecting = false;
        let changes = self.state.upsert_replica(view.clone(), now);
        self.pending.extend(changes);
        self.replicate(&Change::Session {
            event: SessionEvent::Updated,
            session: view.clone(),
        });
        Some(view)
    }

    /// Ends the local sessions for shutdown. In a cluster with a resume
    /// grace a WebSocket session is not ended: its socket gets `terminated`
    /// `shutdown`, the session turns `reconnecting`, and it is offered to
    /// another node, which keeps it for the rest of its grace (§9). Offers
    /// go in batches of `OFFER_BATCH`, one cross-node request each.
    pub(super) fn shut_down(&mut self, now: Millis) -> Vec<PendingMove> {
        let hand_on = self.outboxes.remote.is_some() && self.state.resume_grace() > 0;
        let mut offers = Vec::new();
        for id in self.local_sessions() {
            let token = self.resume.token_of(id);
            let (true, Some(token)) = (hand_on, token) else {
                self.end_local(id, TerminateReason::Shutdown, now);
                continue;
            };
            offers.extend(self.drop_for_hand_on(id, token, now));
        }
        let mut moves = Vec::new();
        while !offers.is_empty() {
            let rest = offers.split_off(offers.len().min(OFFER_BATCH));
            let batch = std::mem::replace(&mut offers, rest);
            moves.push(self.offer(batch));
        }
        moves
    }

    /// Closes a session's socket for shutdown and marks it dropped; the
    /// offer of it to another node.
    fn drop_for_hand_on(&mut self, id: SessionId, token: String, now: Millis) -> Option<Offer> {
        if let Some(liveness) = self.liveness.remove(&id) {
            liveness.request_terminate(TerminateReason::Shutdown);
        }
        // Only the node that takes it can resume it from now on.
        self.resume.forget(id);
        let changes = self.state.mark_dropped(id, EndCause::Shutdown, now, now);
        self.commit(id, changes);
        let session = self.state.session(id)?.view(now);
        let (dropped_at, cause) = self.state.drop_of(id)?;
        Some(Offer {
            session,
            token,
            dropped_at,
            cause,
        })
    }

    /// Sends one batch of offers to another node (the replicator picks it).
    fn offer(&mut self, offers: Vec<Offer>) -> PendingMove {
        let offered = offers
            .iter()
            .map(|offer| offer.session.session_id)
            .collect();
        let (reply, answer) = oneshot::channel();
        self.forward(RemoteCommand {
            node: self.config.node_id.clone(),
            request: RemoteRequest::TakeOver { offers, reply },
        });
        PendingMove { offered, answer }
    }

    /// Where a batch offered at shutdown went: each session `taken` names
    /// becomes a replica of the taker (and leaves this node's published
    /// state); the rest end `shutdown` here.
    pub(super) fn moved(&mut self, offered: Vec<SessionId>, taken: Option<Taken>, now: Millis) {
        let (taker, kept) = match taken {
            Some(Taken { node, sessions }) if node != self.config.node_id => {
                (Some(node), sessions.into_iter().collect::<HashSet<_>>())
            }
            _ => (None, HashSet::new()),
        };
        for id in offered {
            let to = taker.as_ref().filter(|_| kept.contains(&id));
            self.move_to(id, to, now);
        }
    }

    /// One offered session: a replica of `to`, or ended `shutdown` here.
    fn move_to(&mut self, id: SessionId, to: Option<&NodeId>, now: Millis) {
        if !self.is_local(id) {
            return;
        }
        let (Some(to), Some(record)) = (to, self.state.session(id)) else {
            self.end(id, EndCause::Shutdown, now);
            return;
        };
        let mut view = record.view(now);
        view.node_id = to.clone();
        self.schedule.set(id, None);
        let changes = self.state.upsert_replica(view.clone(), now);
        self.pending.extend(changes);
        self.replicate(&Change::Session {
            event: SessionEvent::Updated,
            session: view,
        });
    }

    /// Keeps the dropped sessions of a node that shuts down; the ones
    /// taken, under this node's id (None when it took none).
    pub(super) fn take_over_offers(&mut self, offers: Vec<Offer>, now: Millis) -> Option<Taken> {
        let sessions: Vec<SessionId> = offers
            .into_iter()
            .filter_map(|offer| self.take_over_dropped(offer, now))
            .collect();
        (!sessions.is_empty()).then(|| Taken {
            node: self.config.node_id.clone(),
            sessions,
        })
    }

    /// Keeps a dropped session of a node that shuts down, `reconnecting`,
    /// for the rest of its grace: its tab may resume it here or on any
    /// node; if none does, this node ends it with the drop's cause.
    pub(super) fn take_over_dropped(&mut self, offer: Offer, now: Millis) -> Option<SessionId> {
        let Offer {
            session: mut view,
            token,
            dropped_at,
            cause,
        } = offer;
        if view.transport != Transport::Ws || self.state.resume_grace() == 0 {
            return None;
        }
        let id = view.session_id;
        view.node_id = self.config.node_id.clone();
        view.reconnecting = true;
        let changes = self.state.upsert_replica(view, now);
        self.state.restore_drop(id, cause, dropped_at);
        self.resume.register(id, &token);
        self.commit(id, changes);
        Some(id)
    }

    /// Takes over a session another node handed over: it becomes local,
    /// driven by the new socket, with the new token's facts.
    pub(super) fn adopt(
        &mut self,
        mut view: SessionView,
        session: NewSession,
        liveness: Arc<SessionLiveness>,
        now: Millis,
    ) -> Connected {
        let id = view.session_id;
        view.node_id = self.config.node_id.clone();
        view.reconnecting = false;
        liveness.reset_activity(view.last_activity);
        let mut changes = self.state.upsert_replica(view, now);
        self.liveness.insert(id, liveness);
        let renewal = Renewal::of(&session);
        changes.extend(self.state.take_over(id, renewal, session.meta.page, now));
        self.commit(id, changes);
        Connected {
            session_id: id,
            resumed: true,
            resume_token: self.resume.issue(id),
        }
    }

    /// A socket is gone. Only the session's current socket counts: one that
    /// a resume took over changes nothing.
    pub(super) fn dropped(
        &mut self,
        id: SessionId,
        liveness: &Arc<SessionLiveness>,
        cause: EndCause,
        resumable: bool,
        at: Millis,
        now: Millis,
    ) {
        let current = self
            .liveness
            .get(&id)
            .is_some_and(|l| Arc::ptr_eq(l, liveness));
        if !current {
            return;
        }
        if resumable && self.state.resume_grace() > 0 {
            self.liveness.remove(&id);
            let changes = self.state.mark_dropped(id, cause, at, now);
            self.commit(id, changes);
        } else {
            self.end(id, cause, now);
        }
    }
}
