//! Owns node-to-node requests: sending the engine's requests to the owner's
//! inbox and holding each caller's reply until the answer arrives (at most
//! `REQUEST_TIMEOUT`, then "not found"), and serving the requests other
//! nodes send here, each in its own task, answering to the asker's inbox.

use std::collections::HashMap;
use std::time::Duration;

use crate::redis_access::RedisConn;
use tokio::time::Instant;

use super::ClusterError;
use super::epoch::Connected;
use crate::cluster::ReplicationLink;
use crate::cluster::seal::Seal;
use crate::cluster::wire::{self, Answer, InboxMessage};
use crate::model::NodeId;
use crate::presence::{HeartbeatOutcome, PresenceHandle, RemoteCommand, RemoteRequest};

/// How long a cross-node request waits for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

impl Connected<'_> {
    /// Publishes `command`'s request to its node's inbox; the caller's
    /// reply waits in `requests` for the answer.
    pub(super) async fn send_request(
        &mut self,
        command: RemoteCommand,
    ) -> Result<(), ClusterError> {
        let RemoteCommand { node, request } = command;
        // A session handed on at shutdown goes to any live node.
        let node = if matches!(request, RemoteRequest::TakeOver { .. }) {
            // Picked at random, so a node's sessions spread over the rest.
            let any = rand::seq::IteratorRandom::choose(self.table.nodes(), &mut rand::rng());
            match any.cloned() {
                Some(node) => node,
                None => {
                    request.refuse();
                    return Ok(());
                }
            }
        } else {
            node
        };
        let request_id = self.requests.next_id();
        let message = wire::request_text(self.node(), request_id, &request);
        self.requests
            .wait(request_id, request, Instant::now() + REQUEST_TIMEOUT);
        let (seal, inbox) = (self.seal(), self.keys().inbox(&node));
        let command = self.keys().publish_command();
        publish(&mut self.conn, command, seal, inbox, message).await?;
        Ok(())
    }

    /// Requests are served in their own task so a slow engine answer never
    /// holds up replication; answers complete the waiting caller.
    pub(super) fn on_inbox(&mut self, message: InboxMessage, link: &ReplicationLink) {
        match message {
            InboxMessage::Answer { request_id, answer } => self.requests.answer(request_id, answer),
            InboxMessage::Request {
                from,
                request_id,
                request,
            } => self.serve_in_background(&from, request_id, *request, link),
        }
    }

    fn serve_in_background(
        &self,
        from: &NodeId,
        request_id: u64,
        request: RemoteRequest,
        link: &ReplicationLink,
    ) {
        let presence = link.presence.clone();
        let mut conn = self.conn.clone();
        let seal = self.seal().clone();
        let inbox = self.keys().inbox(from);
        let command = self.keys().publish_command();
        tokio::spawn(async move {
            let answer = serve(request, request_id, &presence).await;
            if let Err(err) = publish(&mut conn, command, &seal, inbox, answer).await {
                tracing::warn!(error = %err, "answering a cross-node request failed");
            }
        });
    }
}

/// Runs a request another node sent; returns the text of the answer. If the
/// engine has stopped, the answer is "not found".
async fn serve(request: RemoteRequest, request_id: u64, presence: &PresenceHandle) -> String {
    let reply = wire::reply_name(&request);
    match request {
        RemoteRequest::Terminate {
            session_id, reason, ..
        } => {
            let found = presence
                .terminate(session_id, reason)
                .await
                .unwrap_or(false);
            wire::answer_text(request_id, Answer::new(reply, found))
        }
        RemoteRequest::TerminateUser {
            user_id, reason, ..
        } => {
            let count = presence.terminate_user(user_id, reason).await.unwrap_or(0);
            wire::answer_text(request_id, Answer::new(reply, count))
        }
        RemoteRequest::Heartbeat { beat, .. } => {
            let outcome = presence
                .heartbeat(beat)
                .await
                .unwrap_or(HeartbeatOutcome::NotFound);
            wire::answer_text(request_id, Answer::new(reply, outcome))
        }
        RemoteRequest::TakeOver { offers, .. } => {
            let taken = presence.take_over_dropped(offers).await.unwrap_or(None);
            wire::answer_text(request_id, Answer::new(reply, taken))
        }
        RemoteRequest::Handover {
            token, user_id, to, ..
        } => {
            let view = presence.hand_over(token, user_id, to).await.unwrap_or(None);
            wire::answer_text(request_id, Answer::new(reply, view))
        }
    }
}

/// Publishes `message` on an inbox `channel` with `command` (`PUBLISH`
/// or `SPUBLISH`), sealed.
async fn publish(
    conn: &mut RedisConn,
    command: &str,
    seal: &Seal,
    channel: String,
    message: String,
) -> Result<(), redis::RedisError> {
    let sealed = seal.seal(&channel, message);
    redis::cmd(command)
        .arg(channel)
        .arg(sealed)
        .query_async::<()>(conn)
        .await
}

/// Requests sent to other nodes, each holding its caller's reply until the
/// answer comes or its deadline passes.
#[derive(Debug, Default)]
pub(super) struct PendingRequests {
    last_id: u64,
    waiting: HashMap<u64, (Instant, RemoteRequest)>,
}

impl PendingRequests {
    /// A new request id (unique within the epoch).
    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Holds `request` until its answer, or until `deadline`.
    fn wait(&mut self, id: u64, request: RemoteRequest, deadline: Instant) {
        self.waiting.insert(id, (deadline, request));
    }

    /// Hands `answer` to the caller of request `id`; an answer nobody
    /// waits for any more is dropped.
    fn answer(&mut self, id: u64, answer: Answer) {
        if let Some((_, request)) = self.waiting.remove(&id) {
            wire::complete(request, answer);
        }
    }

    /// Answers "not found" to every caller whose deadline is past.
    pub(super) fn expire(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some((_, request)) = self.waiting.remove(&id) {
                request.refuse();
            }
        }
    }

    /// Answers "not found" to every waiting caller (the epoch is over).
    pub(super) fn refuse_all(&mut self) {
        for (_, (_, request)) in self.waiting.drain() {
            request.refuse();
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;
    use crate::model::SessionId;
    use crate::presence::TerminateReason;

    fn terminate() -> (RemoteRequest, oneshot::Receiver<bool>) {
        let (reply, answer) = oneshot::channel();
        let request = RemoteRequest::Terminate {
            session_id: SessionId::generate(),
            reason: TerminateReason::Admin,
            reply,
        };
        (request, answer)
    }

    fn found(value: bool) -> Answer {
        Answer {
            reply: "found".into(),
            value: serde_json::Value::Bool(value),
        }
    }

    #[test]
    fn ids_count_up_from_one() {
        let mut pending = PendingRequests::default();
        assert_eq!(
            [pending.next_id(), pending.next_id(), pending.next_id()],
            [1, 2, 3]
        );
    }

    #[test]
    fn an_answer_completes_its_own_caller_once() {
        let now = Instant::now();
        let mut pending = PendingRequests::default();
        let (first, mut first_answer) = terminate();
        let (second, mut second_answer) = terminate();
        pending.wait(1, first, now + REQUEST_TIMEOUT);
        pending.wait(2, second, now + REQUEST_TIMEOUT);
        pending.answer(2, found(true));
        pending.answer(2, found(false));
        assert_eq!(second_answer.try_recv(), Ok(true));
        assert!(first_answer.try_recv().is_err(), "still waiting");
        pending.answer(1, found(true));
        assert_eq!(first_answer.try_recv(), Ok(true));
    }

    #[test]
    fn callers_past_their_deadline_get_not_found() {
        let now = Instant::now();
        let mut pending = PendingRequests::default();
        let (due, mut due_answer) = terminate();
        let (later, mut later_answer) = terminate();
        pending.wait(1, due, now);
        pending.wait(2, later, now + REQUEST_TIMEOUT);
        pending.expire(now);
        assert_eq!(due_answer.try_recv(), Ok(false));
        assert!(later_answer.try_recv().is_err(), "still waiting");
        pending.answer(1, found(true));
        pending.refuse_all();
        assert_eq!(later_answer.try_recv(), Ok(false));
    }
}
