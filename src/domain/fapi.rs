//! The FAPI 2.0 rule for sensitive scopes (SPEC "Security levels meet FAPI"): a request that
//! would obtain a scope of a level in `fapi_security_levels` (or any scope, under
//! `profile = "fapi2"`) must come through PAR, from a client authenticating with
//! `private_key_jwt`, and gets a DPoP-bound token. The one place that decides it: `/authorize`
//! and `/par` ask it about the channel and the client, `/token` about the client and the
//! binding, and a refusal names the rule it applied.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::client::AuthMethod;
use super::scope::SecurityLevel;

/// `profile`: plain OAuth 2.0 with the level rule, or FAPI 2.0 for every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Oauth2,
    Fapi2,
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "oauth2" => Ok(Self::Oauth2),
            "fapi2" => Ok(Self::Fapi2),
            other => Err(format!("profile must be oauth2 or fapi2, not {other:?}")),
        }
    }
}

/// The settings the rule reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FapiPolicy {
    pub levels: BTreeSet<SecurityLevel>,
    pub profile: Profile,
}

/// How a request reached us, as far as the rule looks. `None` where a step does not decide
/// it: the channel is known at `/authorize` and `/par`, the binding at `/token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    pub pushed: Option<bool>,
    /// Whether the authorization request names its `redirect_uri` (FAPI 2.0 §5.3.2.2 requires
    /// it in a pushed request, where RFC 6749 lets a client with one registered URI leave it out).
    pub names_redirect_uri: Option<bool>,
    pub client_auth: AuthMethod,
    pub dpop_bound: Option<bool>,
}

/// The refusal: which requirement was missing, and why it applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {requirement}")]
pub struct FapiRefusal {
    reason: String,
    requirement: &'static str,
}

impl FapiPolicy {
    /// Why the rule applies to a request for scopes of these levels, if it does.
    fn applies(&self, scopes: &[(&str, SecurityLevel)]) -> Option<String> {
        if self.profile == Profile::Fapi2 {
            return Some("profile = \"fapi2\" applies FAPI 2.0 to every request".into());
        }
        let (name, level) = scopes.iter().find(|(_, level)| self.levels.contains(level))?;
        let levels: Vec<&str> = self.levels.iter().map(|level| level.as_str()).collect();
        Some(format!(
            "scope {name} is of security level {level}, and levels {} follow FAPI 2.0 (fapi_security_levels)",
            levels.join(", ")
        ))
    }

    /// Whether a request for `scopes` (name and level) presented as `presentation` may go on.
    pub fn check(&self, scopes: &[(&str, SecurityLevel)], presentation: Presentation) -> Result<(), FapiRefusal> {
        let Some(reason) = self.applies(scopes) else {
            return Ok(());
        };
        let requirement = if presentation.pushed == Some(false) {
            "the authorization request must come through PAR (POST /par, RFC 9126)"
        } else if presentation.names_redirect_uri == Some(false) {
            "the pushed request must name its redirect_uri (FAPI 2.0 §5.3.2.2)"
        } else if presentation.client_auth != AuthMethod::PrivateKeyJwt {
            "the client must authenticate with private_key_jwt (RFC 7523)"
        } else if presentation.dpop_bound == Some(false) {
            "the token must be DPoP-bound: send a DPoP proof (RFC 9449)"
        } else {
            return Ok(());
        };
        Err(FapiRefusal { reason, requirement })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SecurityLevel::*;

    fn policy(profile: Profile) -> FapiPolicy {
        FapiPolicy { levels: [A, B].into(), profile }
    }

    const FAPI: Presentation = Presentation {
        pushed: Some(true),
        names_redirect_uri: Some(true),
        client_auth: AuthMethod::PrivateKeyJwt,
        dpop_bound: Some(true),
    };

    #[test]
    fn sensitive_levels_need_par_private_key_jwt_and_dpop() {
        let payments = [("accounts", C), ("payments.transfer", A)];
        let policy = policy(Profile::Oauth2);
        assert_eq!(policy.check(&payments, FAPI), Ok(()));
        let front = Presentation { pushed: Some(false), ..FAPI };
        let error = policy.check(&payments, front).unwrap_err().to_string();
        assert!(error.contains("payments.transfer is of security level A") && error.contains("PAR"), "{error}");
        let unnamed = Presentation { names_redirect_uri: Some(false), ..FAPI };
        let error = policy.check(&payments, unnamed).unwrap_err().to_string();
        assert!(error.contains("redirect_uri"), "{error}");
        assert_eq!(policy.check(&[("accounts", C)], unnamed), Ok(()), "level C is not held to it");
        let secret = Presentation { client_auth: AuthMethod::ClientSecretBasic, ..FAPI };
        assert!(policy.check(&payments, secret).unwrap_err().to_string().contains("private_key_jwt"));
        let bearer = Presentation { dpop_bound: Some(false), ..FAPI };
        assert!(policy.check(&payments, bearer).unwrap_err().to_string().contains("DPoP"));
        let unknown_steps = Presentation { pushed: None, dpop_bound: None, ..FAPI };
        assert_eq!(policy.check(&payments, unknown_steps), Ok(()));
    }

    #[test]
    fn other_levels_are_free_unless_the_profile_is_fapi2() {
        let accounts = [("accounts", C)];
        let plain = Presentation {
            pushed: Some(false),
            names_redirect_uri: Some(true),
            client_auth: AuthMethod::ClientSecretBasic,
            dpop_bound: Some(false),
        };
        assert_eq!(policy(Profile::Oauth2).check(&accounts, plain), Ok(()));
        let error = policy(Profile::Fapi2).check(&accounts, plain).unwrap_err().to_string();
        assert!(error.contains("profile = \"fapi2\""), "{error}");
        assert_eq!(policy(Profile::Fapi2).check(&[], FAPI), Ok(()));
    }
}
