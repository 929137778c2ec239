//! Sign-in throttling (SPEC Part 2): after 5 failed attempts for one username within 15
//! minutes, or 50 from one client address, further attempts wait, and every failure past the
//! threshold doubles the wait. The rule looks only at the username as typed, never at whether
//! it exists, so an unknown username is throttled exactly like a known one.

use chrono::{DateTime, Duration, Utc};
use std::net::IpAddr;

/// Failures older than this no longer count.
pub const WINDOW: Duration = Duration::minutes(15);
/// The wait after the threshold is reached; each further failure doubles it.
const FIRST_WAIT: Duration = Duration::minutes(1);

/// The failed attempts within [`WINDOW`] for one username or one address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentFailures {
    pub count: i64,
    pub latest: Option<DateTime<Utc>>,
}

/// How many failures one key may have within the window before attempts wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    pub threshold: i64,
}

pub const PER_USERNAME: ThrottleRule = ThrottleRule { threshold: 5 };
pub const PER_ADDRESS: ThrottleRule = ThrottleRule { threshold: 50 };

/// Whether a sign-in attempt may check its password now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Not before this many whole seconds (rounded up, at least 1): what `Retry-After` says.
    RetryAfter {
        seconds: i64,
    },
}

/// Failures at or after this instant count.
pub fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now - WINDOW
}

/// What the per-address count is kept under: an IPv4 address as it is, an IPv6 address by its
/// /64, which a single subscriber usually holds whole (counting each of its 2^64 addresses
/// apart would not limit anyone). An IPv4 address mapped into IPv6 counts as the IPv4 one.
pub fn address_key(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let prefix = std::net::Ipv6Addr::new(segments[0], segments[1], segments[2], segments[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
    }
}

impl ThrottleRule {
    /// How long attempts must still wait: the first wait after `threshold` failures, doubled
    /// for each failure beyond, counted from the latest failure and never longer than the
    /// window (by then the failures before the latest have left it), even when the latest
    /// failure is ahead of `now` (another instance's clock running fast).
    pub fn wait(&self, recent: RecentFailures, now: DateTime<Utc>) -> Option<Duration> {
        let latest = recent.latest?;
        if recent.count < self.threshold {
            return None;
        }
        // 2^10 minutes is far past the window already; the cap keeps the shift in range.
        let doublings = (recent.count - self.threshold).min(10) as u32;
        let wait = (FIRST_WAIT * (1i32 << doublings)).min(WINDOW);
        let until = latest + wait;
        (until > now).then(|| (until - now).min(WINDOW))
    }
}

/// The attempt's admission given the recent failures for its username and for its address:
/// it waits for the longer of the two waits.
pub fn admission(by_username: RecentFailures, by_address: RecentFailures, now: DateTime<Utc>) -> Admission {
    let wait = [PER_USERNAME.wait(by_username, now), PER_ADDRESS.wait(by_address, now)].into_iter().flatten().max();
    match wait {
        None => Admission::Allowed,
        Some(wait) => {
            let millis = wait.num_milliseconds();
            Admission::RetryAfter { seconds: ((millis + 999) / 1000).max(1) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn failures(count: i64, latest: i64) -> RecentFailures {
        RecentFailures { count, latest: Some(at(latest)) }
    }

    const NONE: RecentFailures = RecentFailures { count: 0, latest: None };

    #[test]
    fn four_failures_for_a_username_still_allow_an_attempt_and_five_make_it_wait_a_minute() {
        assert_eq!(admission(failures(4, 0), failures(4, 0), at(1)), Admission::Allowed);
        assert_eq!(admission(failures(5, 0), failures(5, 0), at(1)), Admission::RetryAfter { seconds: 59 });
        assert_eq!(admission(failures(5, 0), failures(5, 0), at(60)), Admission::Allowed);
    }

    #[test]
    fn each_failure_past_the_threshold_doubles_the_wait_up_to_the_window() {
        let waits: Vec<i64> =
            (5..=12).map(|count| PER_USERNAME.wait(failures(count, 0), at(0)).unwrap().num_seconds()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 900, 900, 900, 900]);
        assert_eq!(PER_USERNAME.wait(failures(1_000_000, 0), at(0)), Some(WINDOW));
    }

    #[test]
    fn fifty_failures_from_one_address_make_every_username_wait() {
        assert_eq!(admission(NONE, failures(49, 0), at(0)), Admission::Allowed);
        assert_eq!(admission(NONE, failures(50, 0), at(0)), Admission::RetryAfter { seconds: 60 });
        assert_eq!(admission(NONE, failures(51, 0), at(30)), Admission::RetryAfter { seconds: 90 });
    }

    #[test]
    fn the_longer_wait_of_username_and_address_wins_and_is_rounded_up() {
        let now = at(0) + Duration::milliseconds(500);
        assert_eq!(admission(failures(6, 0), failures(50, 0), now), Admission::RetryAfter { seconds: 120 });
        assert_eq!(admission(failures(5, 0), failures(52, 0), now), Admission::RetryAfter { seconds: 240 });
        let almost = at(60) - Duration::milliseconds(1);
        assert_eq!(admission(failures(5, 0), NONE, almost), Admission::RetryAfter { seconds: 1 });
    }

    #[test]
    fn ipv6_addresses_count_by_their_slash_64() {
        let key = |text: &str| address_key(text.parse().unwrap());
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:bbbb::9"), key("2001:db8:1:2:aaaa::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }

    #[test]
    fn the_window_starts_fifteen_minutes_back() {
        assert_eq!(window_start(at(900)), at(0));
    }

    proptest! {
        /// More failures, or a later latest failure, never shorten the wait; no wait is longer
        /// than the window; below the threshold nothing waits.
        #[test]
        fn waits_are_monotonic_and_bounded(count in 0i64..200, extra in 0i64..5, latest in 0i64..1000, now in 0i64..2000) {
            let now = at(now);
            let wait = |count, latest| PER_USERNAME.wait(failures(count, latest), now).unwrap_or_default();
            prop_assert!(wait(count, latest) <= wait(count + extra, latest));
            prop_assert!(wait(count, latest) <= wait(count, latest + extra));
            prop_assert!(wait(count, latest) <= WINDOW);
            if count < PER_USERNAME.threshold {
                prop_assert_eq!(wait(count, latest), Duration::zero());
            }
        }
    }
}
