//! `POST /introspect` as one operation (RFC 7662): the caller's authentication and the
//! token's judgement are reads, made without leaving the request's thread on SQLite; the counts
//! a limited scope takes go through the group commit, and the answer waits for its commit.
//! Each answer is counted (metrics): counted or not, active or not, and the grants whose last
//! access it took.

use std::sync::Arc;

use crate::error::AppError;
use crate::services::clients::{self, PresentedClient, PublicClients};
use crate::services::introspection::{self, ActiveToken};
use crate::state::AppState;

/// An introspection's answer, and who asked (the audience of a signed answer).
pub struct Introspected {
    pub caller: String,
    /// The active token's description, or None for an inactive one.
    pub answer: Option<ActiveToken>,
}

/// Introspects `token` for the presented client.
pub async fn respond(
    state: &Arc<AppState>,
    presented: PresentedClient,
    token: String,
) -> Result<Introspected, AppError> {
    let snapshot = state.registry.snapshot();
    let now = state.clock.now();
    let (reading, tree) = (Arc::clone(state), Arc::clone(&snapshot));
    let judged = state
        .db
        .read(move |connection| {
            let context = reading.oauth(&tree);
            let caller = clients::authenticate_presented(connection, &context, &presented, PublicClients::Refused)?;
            Ok::<_, AppError>((introspection::judge(connection, &context, &caller, &token, now)?, caller.client_id))
        })
        .await?;
    let (mut judged, caller) = match judged {
        (Some(judged), caller) => (judged, caller),
        (None, caller) => {
            state.metrics.introspected(false, false);
            return Ok(Introspected { caller, answer: None });
        }
    };
    let counted = judged.counts();
    if counted {
        let tree = Arc::clone(&snapshot);
        judged = state.db.write(move |connection| judged.count(connection, &tree.tree, now)).await?;
    }
    state.metrics.grants_exhausted(judged.exhausted_now());
    let answer = judged.answer(&state.settings.issuer, &snapshot.tree);
    state.metrics.introspected(counted, answer.is_some());
    Ok(Introspected { caller, answer })
}
