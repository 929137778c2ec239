//! The current time, passed into the rules instead of read deep inside them.

use chrono::{DateTime, Utc};

/// The server's clock. Rules take a `DateTime<Utc>` argument; handlers read it here once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    /// Seconds added to the system time. Only ever non-zero in tests, and in builds with the
    /// `test-clock` feature, so black-box tests can move past expiry times.
    offset_seconds: i64,
}

/// The variable a `test-clock` build reads its offset from.
pub const CLOCK_OFFSET_VARIABLE: &str = "SCOPEGATE_CLOCK_OFFSET_SECONDS";

impl Clock {
    pub fn system() -> Self {
        Self { offset_seconds: 0 }
    }

    /// With the `test-clock` feature, `SCOPEGATE_CLOCK_OFFSET_SECONDS` shifts the clock;
    /// default builds ignore it.
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        if cfg!(feature = "test-clock") {
            if let Some(offset) = lookup(CLOCK_OFFSET_VARIABLE).and_then(|v| v.trim().parse().ok()) {
                return Self { offset_seconds: offset };
            }
        }
        Self::system()
    }

    /// A clock running `seconds` ahead of the system's: for tests that must pass an expiry.
    pub fn ahead_by(seconds: i64) -> Self {
        Self { offset_seconds: seconds }
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.offset_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset_of(value: &str) -> i64 {
        Clock::from_lookup(|key| (key == CLOCK_OFFSET_VARIABLE).then(|| value.to_string())).offset_seconds
    }

    #[cfg(not(feature = "test-clock"))]
    #[test]
    fn a_default_build_ignores_the_clock_offset_variable() {
        assert_eq!(offset_of("86400"), 0);
    }

    #[cfg(feature = "test-clock")]
    #[test]
    fn a_test_clock_build_shifts_the_clock_by_the_variable() {
        assert_eq!(offset_of("86400"), 86400);
        assert_eq!(offset_of("not a number"), 0);
        let ahead = Clock::from_lookup(|_| Some("3600".into())).now() - Utc::now();
        assert!((ahead.num_seconds() - 3600).abs() <= 1);
    }
}
