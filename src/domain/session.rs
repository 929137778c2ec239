//! When a browser session still counts (SPEC Part 2, "Sessions"): an idle timeout that every
//! request renews, and an absolute lifetime that nothing extends.

use chrono::{DateTime, Duration, Utc};

/// How long a signed-in session lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetimes {
    /// Without a request for this long, the session ends.
    pub idle: Duration,
    /// This long after sign-in, the session ends however active it was.
    pub max: Duration,
}

/// What a session is at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStanding {
    /// In force. `record_activity` says that its last activity, as stored, is stale enough
    /// that this request should store the new one.
    Live { record_activity: bool },
    /// No request for the idle timeout.
    Idle,
    /// Past the absolute lifetime.
    Expired,
}

/// The most a stored last activity may lag behind the real one: writing it on every request
/// would make every page view a database write.
const ACTIVITY_RESOLUTION_SECONDS: i64 = 60;

impl SessionLifetimes {
    pub fn from_seconds(idle: i64, max: i64) -> Self {
        Self { idle: Duration::seconds(idle), max: Duration::seconds(max) }
    }

    /// The session started at `created_at` and last seen (as stored) at `last_seen_at`.
    pub fn standing(
        &self,
        created_at: DateTime<Utc>,
        last_seen_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> SessionStanding {
        if now >= created_at + self.max {
            SessionStanding::Expired
        } else if now >= last_seen_at + self.idle {
            SessionStanding::Idle
        } else {
            SessionStanding::Live { record_activity: now - last_seen_at >= self.activity_resolution() }
        }
    }

    /// How stale the stored last activity may get before a request writes it: a minute, or a
    /// thirtieth of the idle timeout when that is shorter. A session therefore ends at most
    /// that much before a full idle timeout after its last request (a minute of 30), and a
    /// busy session costs one write a minute, not one per request.
    pub fn activity_resolution(&self) -> Duration {
        Duration::seconds(ACTIVITY_RESOLUTION_SECONDS).min(self.idle / 30)
    }

    /// Sessions last active before the first instant, or started before the second, have
    /// ended: their rows can go.
    pub fn ended_before(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        (now - self.idle, now - self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    const DEFAULTS: SessionLifetimes =
        SessionLifetimes { idle: Duration::seconds(1800), max: Duration::seconds(43200) };

    #[test]
    fn a_session_lives_until_it_is_idle_for_the_idle_timeout() {
        assert_eq!(DEFAULTS.standing(at(0), at(0), at(1799)), SessionStanding::Live { record_activity: true });
        assert_eq!(DEFAULTS.standing(at(0), at(0), at(1800)), SessionStanding::Idle);
        // Activity renews it: last seen at 1000, it lives until 2800.
        assert_eq!(DEFAULTS.standing(at(0), at(1000), at(2799)), SessionStanding::Live { record_activity: true });
        assert_eq!(DEFAULTS.standing(at(0), at(1000), at(2800)), SessionStanding::Idle);
    }

    #[test]
    fn no_activity_extends_a_session_past_its_absolute_lifetime() {
        assert_eq!(DEFAULTS.standing(at(0), at(43199), at(43199)), SessionStanding::Live { record_activity: false });
        assert_eq!(DEFAULTS.standing(at(0), at(43199), at(43200)), SessionStanding::Expired);
        // Both over: the absolute lifetime is the reason given.
        assert_eq!(DEFAULTS.standing(at(0), at(0), at(50000)), SessionStanding::Expired);
    }

    #[test]
    fn activity_is_written_at_most_once_a_minute() {
        assert_eq!(DEFAULTS.activity_resolution(), Duration::seconds(60));
        assert_eq!(DEFAULTS.standing(at(0), at(100), at(159)), SessionStanding::Live { record_activity: false });
        assert_eq!(DEFAULTS.standing(at(0), at(100), at(160)), SessionStanding::Live { record_activity: true });
        // A short idle timeout shortens the resolution with it (tests use seconds).
        let short = SessionLifetimes::from_seconds(60, 600);
        assert_eq!(short.activity_resolution(), Duration::seconds(2));
        assert_eq!(short.standing(at(0), at(0), at(1)), SessionStanding::Live { record_activity: false });
        assert_eq!(short.standing(at(0), at(0), at(2)), SessionStanding::Live { record_activity: true });
    }

    #[test]
    fn ended_sessions_are_those_before_the_cutoffs() {
        assert_eq!(DEFAULTS.ended_before(at(50000)), (at(50000 - 1800), at(50000 - 43200)));
    }

    proptest! {
        /// Whatever the times, a live session is younger than its lifetime and was seen within
        /// the idle timeout, and only a stored activity older than the resolution is rewritten.
        #[test]
        fn a_live_session_is_within_both_limits(
            idle in 1i64..100_000, max in 1i64..1_000_000, created in 0i64..1_000_000,
            seen_after in 0i64..1_000_000, now_after in 0i64..2_000_000,
        ) {
            let lifetimes = SessionLifetimes::from_seconds(idle, max);
            let (created, seen) = (at(created), at(created + seen_after));
            let now = seen + Duration::seconds(now_after);
            if let SessionStanding::Live { record_activity } = lifetimes.standing(created, seen, now) {
                prop_assert!(now - created < lifetimes.max);
                prop_assert!(now - seen < lifetimes.idle);
                prop_assert_eq!(record_activity, now - seen >= lifetimes.activity_resolution());
            }
            prop_assert!(lifetimes.activity_resolution() <= Duration::seconds(60));
        }
    }
}
