//! Webhooks (SPEC, "Administration"): what a receiver may be registered with, how each delivery
//! is signed, and when a failed one is tried again.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::event::EventType;

/// The longest URL and secret a registration may carry.
const MAX_URL_BYTES: usize = 2048;
const MAX_SECRET_BYTES: usize = 512;
/// A signing secret shorter than this is too easy to guess from signed bodies.
pub const MIN_SECRET_BYTES: usize = 16;

/// Deliveries one webhook may have pending. Beyond it, new events are not queued for it (they
/// stay in the audit trail): anyone can cause `login.failed` events, and a receiver that is
/// down must not let a flood of them grow the outbox without end.
pub const MAX_PENDING_DELIVERIES: i64 = 10_000;

/// A receiver, checked: an http(s) URL, at least one known event type, a signing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRegistration {
    pub url: String,
    /// Sorted, without duplicates.
    pub events: Vec<EventType>,
    pub secret: String,
}

impl WebhookRegistration {
    /// Checks what an administrator sent. The error names the field and says what is wrong;
    /// it never repeats the secret.
    pub fn new(url: &str, events: &[String], secret: &str) -> Result<Self, String> {
        validate_url(url)?;
        if events.is_empty() {
            return Err("events: at least one event type".into());
        }
        let mut kinds = Vec::with_capacity(events.len());
        for name in events {
            let kind = EventType::parse(name).ok_or_else(|| format!("events: unknown event type {name:?}"))?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        kinds.sort_by_key(|kind| kind.as_str());
        if secret.len() < MIN_SECRET_BYTES || secret.len() > MAX_SECRET_BYTES {
            return Err(format!("secret: between {MIN_SECRET_BYTES} and {MAX_SECRET_BYTES} bytes"));
        }
        if secret.chars().any(char::is_control) {
            return Err("secret: no control characters".into());
        }
        Ok(Self { url: url.to_string(), events: kinds, secret: secret.to_string() })
    }
}

/// `https://…`, or plain `http://…` for receivers inside the bank's own network. No user
/// information (credentials would be shown by every listing: the secret is what authenticates
/// a delivery), no fragment, no spaces or control characters.
fn validate_url(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > MAX_URL_BYTES {
        return Err(format!("url: between 1 and {MAX_URL_BYTES} bytes"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("url: no spaces or control characters".into());
    }
    let url = url::Url::parse(text).map_err(|_| format!("url: {text:?} is not an absolute URL"))?;
    if !matches!(url.scheme(), "https" | "http") || !text[url.scheme().len()..].starts_with("://") {
        return Err(format!("url: {text:?} must be an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("url: {text:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() || text.contains('@') {
        return Err("url: must not carry credentials (user@host); the secret signs each delivery".into());
    }
    if url.fragment().is_some() {
        return Err(format!("url: {text:?} must not have a fragment"));
    }
    Ok(())
}

/// The `Scopegate-Signature` header of a delivery sent at `t` (unix seconds):
/// `t=<t>,v1=<hex HMAC-SHA-256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    // RFC 2104's key block, built here so that no fallible constructor is needed: a key longer
    // than SHA-256's 64-byte block is hashed first, a shorter one padded with zeros.
    let mut block = [0u8; 64];
    if secret.len() > block.len() {
        block[..32].copy_from_slice(&<Sha256 as sha2::Digest>::digest(secret));
    } else {
        block[..secret.len()].copy_from_slice(secret);
    }
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not delivered yet; tried again at `next_attempt_at`.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Given up: no 2xx within the retry period.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed].into_iter().find(|state| state.as_str() == text)
    }
}

/// Exponential backoff: the first retry `base` after the first failure, doubling, at most
/// `cap` apart, until `give_up_after` from when the delivery was enqueued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub give_up_after: Duration,
}

impl RetryPolicy {
    /// SPEC: retried for 24 hours; here 5 s doubling, at most an hour apart.
    pub fn with_base_seconds(base_seconds: i64) -> Self {
        Self { base: Duration::seconds(base_seconds), cap: Duration::hours(1), give_up_after: Duration::hours(24) }
    }

    /// After `attempts` failed attempts (the one that just failed included), when to try
    /// again, or `None` to give up.
    pub fn next_attempt(&self, created_at: DateTime<Utc>, attempts: i32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
        let delay = self.base.checked_mul(1 << doublings).map_or(self.cap, |delay| delay.min(self.cap));
        let next = now + delay;
        (next <= created_at + self.give_up_after).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(url: &str) -> Result<WebhookRegistration, String> {
        WebhookRegistration::new(url, &["scope.created".into()], "0123456789abcdef")
    }

    #[test]
    fn http_and_https_urls_with_a_host_are_accepted_and_others_refused() {
        for url in ["https://hooks.bank.example/scopegate", "http://10.1.2.3:8080/in", "http://[::1]:9/x?q=1"] {
            assert!(registration(url).is_ok(), "{url}");
        }
        for url in [
            "",
            "ftp://example.com/",
            "javascript:alert(1)",
            "https:/example.com",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "https://example.com/a b",
            "file:///etc/passwd",
            "example.com/hook",
        ] {
            let error = registration(url).unwrap_err();
            assert!(error.starts_with("url:"), "{url}: {error}");
        }
    }

    #[test]
    fn event_types_must_be_known_and_are_kept_once_in_order() {
        let names = ["token.revoked".to_string(), "grant.exhausted".into(), "token.revoked".into()];
        let registration = WebhookRegistration::new("https://x.example", &names, "0123456789abcdef").unwrap();
        assert_eq!(registration.events, [EventType::GrantExhausted, EventType::TokenRevoked]);
        let error =
            WebhookRegistration::new("https://x.example", &["token.stolen".into()], "0123456789abcdef").unwrap_err();
        assert!(error.contains("token.stolen"), "{error}");
        assert!(WebhookRegistration::new("https://x.example", &[], "0123456789abcdef").is_err());
    }

    #[test]
    fn a_short_secret_is_refused_without_being_repeated() {
        let error = WebhookRegistration::new("https://x.example", &["scope.created".into()], "hunter2").unwrap_err();
        assert!(error.starts_with("secret:") && !error.contains("hunter2"), "{error}");
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body_in_hex() {
        // Checked against the hmac crate's own key handling.
        let header = signature(b"key", 1_700_000_000, br#"{"id":1}"#);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(br#"1700000000.{"id":1}"#);
        assert_eq!(header, format!("t=1700000000,v1={}", hex::encode(mac.finalize().into_bytes())));
        assert_ne!(header, signature(b"other", 1_700_000_000, br#"{"id":1}"#));
        let long_key = [7u8; 100];
        let mut mac = Hmac::<Sha256>::new_from_slice(&long_key).unwrap();
        mac.update(b"5.x");
        assert_eq!(signature(&long_key, 5, b"x"), format!("t=5,v1={}", hex::encode(mac.finalize().into_bytes())));
    }

    #[test]
    fn retries_double_from_the_base_up_to_the_cap_and_stop_after_a_day() {
        let policy = RetryPolicy::with_base_seconds(5);
        let created = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let delays: Vec<i64> = (1..=12)
            .map(|attempts| (policy.next_attempt(created, attempts, created).unwrap() - created).num_seconds())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]);
        assert_eq!(policy.next_attempt(created, 1000, created).map(|next| (next - created).num_seconds()), Some(3600));
        let late = created + Duration::hours(23) + Duration::minutes(30);
        assert_eq!(policy.next_attempt(created, 20, late), None, "an hour more would pass the 24 hours");
        assert!(policy.next_attempt(created, 1, late).is_some(), "5 s more is still within them");
    }
}
