//! The webhook delivery worker: sends what the outbox holds, at least once.
//!
//! Every instance runs one. Each poll claims due deliveries with a lease (`claim_due`: their
//! `next_attempt_at` moves the lease ahead in a short transaction of its own), POSTs them
//! concurrently, and records each attempt in a second transaction. A 2xx marks the delivery
//! delivered; anything else (another status, a refused connection, a timeout) schedules the
//! next attempt with exponential backoff, until 24 hours after the event, then `failed`.
//!
//! Deliveries are independent: up to [`IN_FLIGHT`] are under way at once, and each poll claims
//! only as many as there is room for, without waiting for the ones still under way. A receiver
//! that takes the whole timeout to answer holds one slot, not the deliveries behind it.
//!
//! At-least-once, not exactly-once: an instance that dies between a receiver's 2xx and the
//! recording of it leaves the delivery pending, and it is sent again when its lease runs out.
//! Receivers must dedupe by the event's `id`.

use chrono::Duration;

use crate::domain::clock::Clock;
use crate::domain::webhook::{signature, DeliveryState, RetryPolicy};
use crate::storage::webhooks::{self, AttemptOutcome, DueDelivery};
use crate::storage::{Database, StorageError};

/// How often an instance looks for due deliveries.
pub const POLL: std::time::Duration = std::time::Duration::from_millis(500);
/// Deliveries under way at once, per instance.
const IN_FLIGHT: usize = 32;
/// How long a claim outlasts the request timeout: time to record the attempt. A delivery in
/// flight is never claimed again by a live instance; one whose instance died is sent again
/// when its lease (the timeout plus this) runs out.
const LEASE_MARGIN: Duration = Duration::seconds(10);
/// A receiver's error text is cut to this many characters in the log.
const MAX_ERROR_CHARS: usize = 500;

pub const SIGNATURE_HEADER: &str = "Scopegate-Signature";

/// What the worker needs, and nothing more.
#[derive(Clone)]
pub struct Deliverer {
    db: Database,
    http: reqwest::Client,
    clock: Clock,
    policy: RetryPolicy,
    lease: Duration,
}

/// The attempts under way.
type Sending = tokio::task::JoinSet<Result<(), StorageError>>;

impl Deliverer {
    /// `timeout` bounds each POST, connection included. Redirects are not followed: a receiver
    /// answers 2xx itself, and a redirect could point a signed event anywhere.
    pub fn new(db: Database, clock: Clock, policy: RetryPolicy, timeout: std::time::Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("scopegate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        // The timeout is at most a minute (settings), so the conversion cannot fail.
        let lease = Duration::from_std(timeout).unwrap_or(Duration::seconds(60)) + LEASE_MARGIN;
        Ok(Self { db, http, clock, policy, lease })
    }

    /// Polls for ever; the caller aborts the task at shutdown. A delivery in flight then is
    /// sent again later (its lease runs out), which at-least-once allows.
    pub async fn run(self) {
        let mut ticker = tokio::time::interval(POLL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sending = Sending::new();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                Some(finished) = sending.join_next(), if !sending.is_empty() => report(finished),
            }
            while let Some(finished) = sending.try_join_next() {
                report(finished);
            }
            self.start_due(&mut sending).await;
        }
    }

    /// Claims due deliveries while there is room, and starts them.
    async fn start_due(&self, sending: &mut Sending) {
        while sending.len() < IN_FLIGHT {
            let room = IN_FLIGHT - sending.len();
            match self.claim(room).await {
                Ok(due) => {
                    let claimed = due.len();
                    for delivery in due {
                        let deliverer = self.clone();
                        sending.spawn(async move {
                            let outcome = deliverer.attempt(&delivery).await;
                            deliverer.record(delivery, outcome).await
                        });
                    }
                    if claimed < room {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "webhook deliveries could not be claimed");
                    return;
                }
            }
        }
    }

    /// Up to `room` due deliveries, claimed under a lease.
    async fn claim(&self, room: usize) -> Result<Vec<DueDelivery>, StorageError> {
        let now = self.clock.now();
        // A read first: an idle poll takes no write lock (on SQLite, the group writer's).
        if !self.db.read(move |connection| webhooks::any_due(connection, now)).await? {
            return Ok(Vec::new());
        }
        let (lease_until, limit) = (now + self.lease, i64::try_from(room).unwrap_or(i64::MAX));
        self.db.write(move |connection| webhooks::claim_due(connection, now, lease_until, limit)).await
    }

    /// One POST of the event's JSON, signed at the moment of sending.
    async fn attempt(&self, delivery: &DueDelivery) -> AttemptOutcome {
        let body = match serde_json::to_vec(&delivery.event) {
            Ok(body) => body,
            Err(error) => return self.outcome(delivery, None, Some(format!("cannot serialize the event: {error}"))),
        };
        let at = self.clock.now();
        let signed = signature(delivery.secret.as_bytes(), at.timestamp(), &body);
        let sent = self
            .http
            .post(&delivery.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signed)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                self.outcome(delivery, Some(i32::from(response.status().as_u16())), None)
            }
            Ok(response) => {
                let status = response.status();
                self.outcome(
                    delivery,
                    Some(i32::from(status.as_u16())),
                    Some(format!("the receiver answered {status}")),
                )
            }
            Err(error) => self.outcome(delivery, None, Some(describe(error))),
        }
    }

    /// What follows from an attempt that ended now with `status` or `error`.
    fn outcome(&self, delivery: &DueDelivery, status: Option<i32>, error: Option<String>) -> AttemptOutcome {
        let at = self.clock.now();
        if error.is_none() {
            return AttemptOutcome { at, status, error, state: DeliveryState::Delivered, next_attempt_at: None };
        }
        let next = self.policy.next_attempt(delivery.created_at, delivery.attempts + 1, at);
        let state = if next.is_some() { DeliveryState::Pending } else { DeliveryState::Failed };
        AttemptOutcome { at, status, error, state, next_attempt_at: next }
    }

    async fn record(&self, delivery: DueDelivery, outcome: AttemptOutcome) -> Result<(), StorageError> {
        let (id, webhook) = (delivery.id, delivery.webhook_id);
        log(&delivery, &outcome);
        self.db.write(move |connection| webhooks::record_attempt(connection, id, &outcome)).await.map(|recorded| {
            if !recorded {
                tracing::debug!(webhook, delivery = id, "the delivery was deleted or closed meanwhile");
            }
        })
    }
}

/// A finished attempt whose recording failed, in the log.
fn report(finished: Result<Result<(), StorageError>, tokio::task::JoinError>) {
    match finished {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "a webhook attempt could not be recorded"),
        Err(error) => tracing::warn!(%error, "a webhook attempt was interrupted"),
    }
}

/// The attempt in the server's log: ids and status, never the secret, the body or the URL
/// (which may carry a receiver's token in its query).
fn log(delivery: &DueDelivery, outcome: &AttemptOutcome) {
    let (webhook, id, event) = (delivery.webhook_id, delivery.id, delivery.event.id);
    let attempt = delivery.attempts + 1;
    match outcome.state {
        DeliveryState::Delivered => {
            tracing::debug!(webhook, delivery = id, event, attempt, status = outcome.status, "webhook delivered")
        }
        DeliveryState::Pending => tracing::info!(
            webhook,
            delivery = id,
            event,
            attempt,
            status = outcome.status,
            error = outcome.error.as_deref(),
            next_attempt_at = %outcome.next_attempt_at.map(|at| at.to_rfc3339()).unwrap_or_default(),
            "webhook delivery failed; will retry"
        ),
        DeliveryState::Failed => tracing::warn!(
            webhook,
            delivery = id,
            event,
            attempt,
            status = outcome.status,
            error = outcome.error.as_deref(),
            "webhook delivery given up after 24 hours"
        ),
    }
}

/// A transport error in words, with its causes (refused, timed out, bad certificate…) and
/// without the URL.
fn describe(error: reqwest::Error) -> String {
    let timed_out = error.is_timeout();
    let error = error.without_url();
    let mut text = if timed_out { "timed out".to_string() } else { error.to_string() };
    let mut cause = std::error::Error::source(&error);
    while let Some(current) = cause {
        text.push_str(": ");
        text.push_str(&current.to_string());
        cause = current.source();
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}
