//! Usage limits in words, as the consent and account pages show them. When a limit is reached
//! is decided in `entitlement` (`grant_state`).

use super::scope::Scope;

/// Whether the scope sets any limit (introspection reports `scope_limits` only for these).
pub fn has_limits(scope: &Scope) -> bool {
    scope.fields.access_duration_days > 0 || scope.fields.max_access_count > 0 || scope.fields.max_accesses_per_day > 0
}

/// The limits in words, as the consent and account pages show them: "for 90 days",
/// "up to 100 accesses", "up to 4 accesses a day".
pub fn describe(scope: &Scope) -> Option<String> {
    let days = match scope.fields.access_duration_days {
        0 => None,
        1 => Some("for 1 day".to_string()),
        n => Some(format!("for {n} days")),
    };
    let accesses = match scope.fields.max_access_count {
        0 => None,
        1 => Some("up to 1 access".to_string()),
        n => Some(format!("up to {n} accesses")),
    };
    let per_day = match scope.fields.max_accesses_per_day {
        0 => None,
        1 => Some("up to 1 access a day".to_string()),
        n => Some(format!("up to {n} accesses a day")),
    };
    let parts: Vec<String> = [days, accesses, per_day].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(days: u32, max: u32) -> Scope {
        Scope::new("s", "S").with_fields(|fields| {
            fields.access_duration_days = days;
            fields.max_access_count = max;
        })
    }

    #[test]
    fn limits_read_in_words() {
        assert_eq!(describe(&scope(90, 0)).as_deref(), Some("for 90 days"));
        assert_eq!(describe(&scope(0, 100)).as_deref(), Some("up to 100 accesses"));
        assert_eq!(describe(&scope(1, 5)).as_deref(), Some("for 1 day, up to 5 accesses"));
        assert_eq!(describe(&scope(0, 0)), None);
        let daily = Scope::new("s", "S").with_fields(|fields| {
            fields.access_duration_days = 90;
            fields.max_accesses_per_day = 4;
        });
        assert_eq!(describe(&daily).as_deref(), Some("for 90 days, up to 4 accesses a day"));
    }
}
