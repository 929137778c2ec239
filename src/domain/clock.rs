//! The current time, passed into the rules instead of read deep inside them.

use chrono::{DateTime, Utc};

/// The server's clock. Rules take a `DateTime<Utc>` argument; handlers read it here once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    /// Seconds added to the system time. Only ever non-zero in builds with the `test-clock`
    /// feature, so black-box tests can move past expiry times.
    offset_seconds: i64,
}

impl Clock {
    pub fn system() -> Self {
        Self { offset_seconds: 0 }
    }

    /// With the `test-clock` feature, `SCOPEGATE_CLOCK_OFFSET_SECONDS` shifts the clock;
    /// default builds ignore it.
    pub fn from_env() -> Self {
        #[cfg(feature = "test-clock")]
        {
            if let Some(offset) = std::env::var("SCOPEGATE_CLOCK_OFFSET_SECONDS").ok().and_then(|v| v.parse().ok()) {
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
