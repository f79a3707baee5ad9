//! Owns a connection's side of token lifetime (contract v1.1 §9): asking
//! for a new token inside the refresh window (`auth_required`) and applying
//! the one an `auth` frame brings.

use tokio::time::Instant;

use super::{Connection, Outcome};
use crate::auth::DevIdentity;
use crate::client::protocol::{FrameError, ServerMessage};
use crate::client::rooms::RoomAccess;
use crate::metrics::OutFrame;
use crate::model::time::format_rfc3339;
use crate::model::{EndCause, Millis};
use crate::presence::Renewal;

impl Connection {
    /// Sends `auth_required` once the token is inside its refresh window.
    pub(super) async fn ask_for_token_if_due(&mut self) -> Option<Outcome> {
        let expires_at = self.token.take_due(Instant::now())?;
        let frame = ServerMessage::AuthRequired {
            expires_at: format_rfc3339(expires_at),
        };
        if self
            .send_text(frame.to_text(), OutFrame::Status)
            .await
            .is_err()
        {
            return Some(Outcome::Drop(EndCause::ClientClosed));
        }
        None
    }

    /// An `auth` frame: a valid token of the same user renews the session.
    pub(super) async fn on_auth(&mut self, token: &str, now: Millis) -> Option<Outcome> {
        let principal = self
            .ctx
            .auth
            .client(Some(token), &DevIdentity::default())
            .ok()
            .filter(|p| p.user_id == self.user && p.expires_at.is_some());
        let Some(principal) = principal else {
            let error = FrameError::AuthForbidden(
                "the token is invalid, expired or for another user; the old expiry stands".into(),
            );
            return Box::pin(self.reject_frame(&error, now)).await;
        };
        let expires_at = principal.expires_at;
        let org = principal.org.map(crate::client::clip);
        *self.access = RoomAccess {
            org: org.clone(),
            grant: principal.rooms.clone(),
        };
        let renewal = Renewal {
            name: principal.name.map(crate::client::clip),
            org,
            expires_at,
            rooms: principal.rooms,
        };
        let _ = Box::pin(self.ctx.presence.renew(self.id, renewal)).await;
        Box::pin(self.leave_disallowed_rooms()).await;
        self.token.renew(expires_at);
        self.arm_timer();
        let frame = ServerMessage::AuthOk {
            expires_at: expires_at.map(format_rfc3339).unwrap_or_default(),
        };
        if self
            .send_text(frame.to_text(), OutFrame::Status)
            .await
            .is_err()
        {
            return Some(Outcome::Drop(EndCause::ClientClosed));
        }
        None
    }
}
