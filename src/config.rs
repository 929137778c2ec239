//! Settings: built-in defaults, then a TOML file, then environment variables, then flags.
//!
//! Every default lives in [`Settings::default`]; every override source is a [`SettingsLayer`]
//! of optional values applied on top in that order, so precedence is visible in one place.

use crate::domain::client::is_loopback;
use crate::domain::fapi::{FapiPolicy, Profile};
use crate::domain::scope::SecurityLevel;
use crate::domain::session::SessionLifetimes;
use crate::domain::webhook::RetryPolicy;
use crate::storage::ConnectionSetup;
use anyhow::{bail, Context};
use chrono_tz::Tz;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `sqlite://PATH` (embedded, the default) or `postgres://…`.
    pub database_url: String,
    /// Address the HTTP server listens on; port 0 picks a free port (tests).
    pub bind: String,
    /// Address of the second listener, which serves Prometheus metrics at `/metrics` and
    /// nothing else; None: no metrics are kept and nothing more listens.
    pub metrics_bind: Option<String>,
    /// The issuer identifier (RFC 8414) and the base of every URL we publish.
    pub issuer: String,
    /// Where the signing keys and the server secret live.
    pub keys_dir: PathBuf,
    pub code_lifetime_seconds: i64,
    pub access_token_lifetime_seconds: i64,
    pub refresh_token_lifetime_seconds: i64,
    /// Connections in the database pool.
    pub pool_size: u32,
    /// How often another instance's registry change is looked for (PostgreSQL, several instances).
    pub registry_poll_millis: u64,
    /// Whether PostgreSQL connections keep named prepared statements. Turn it off behind a
    /// pooler in transaction mode, such as pgbouncer, which cannot follow them.
    pub postgres_statement_cache: bool,
    /// Serve the built-in Online Bank demo app under `/demo` (SPEC Part 2: those routes exist
    /// only under `serve --demo`). Set by that flag alone, never by the file or the environment,
    /// so a production configuration cannot switch it on by accident.
    pub demo: bool,
    /// Audit events older than this are deleted by the housekeeping pass.
    pub event_retention_days: i64,
    /// A signed-in session ends after this long without a request (SPEC Part 2, "Sessions").
    pub session_idle_seconds: i64,
    /// A signed-in session ends this long after sign-in, however active.
    pub session_max_seconds: i64,
    /// Reverse proxies whose `X-Forwarded-For` is believed when they are the peer. Empty by
    /// default: anyone can send that header, and sign-in throttling counts by client address.
    pub trusted_proxies: Vec<IpAddr>,
    /// A failed webhook delivery is tried again this long after the first failure, then twice
    /// as long after each next one (at most an hour apart), for 24 hours. Tests shorten it.
    pub webhook_retry_base_seconds: i64,
    /// How long a webhook receiver has to answer (connection included) before the attempt
    /// counts as failed.
    pub webhook_timeout_seconds: i64,
    /// `/authorize` accepts only pushed requests (RFC 9126 §5): a `request_uri` from `/par`.
    pub require_pushed_authorization_requests: bool,
    /// Scopes of these levels follow FAPI 2.0: PAR, `private_key_jwt`, DPoP (`domain::fapi`).
    pub fapi_security_levels: Vec<SecurityLevel>,
    /// `fapi2` applies the FAPI 2.0 rule to every request.
    pub profile: Profile,
    /// DPoP proofs at `/token` and `/par` must carry a nonce of ours (RFC 9449 §8).
    pub dpop_nonce: bool,
    /// The IANA timezone whose calendar days `max_accesses_per_day` counts.
    pub limits_timezone: Tz,
}

const TEN_YEARS_IN_SECONDS: i64 = 10 * 366 * 24 * 3600;

/// A receiver's longest allowed answer: the webhook worker's lease on a delivery is the timeout
/// plus a margin (`services::webhook_delivery`), so a longer one would only delay redelivery
/// after a crash.
const MAX_WEBHOOK_TIMEOUT_SECONDS: i64 = 60;

/// FAPI 2.0 Security Profile §5.3.2.1: "shall require an authorization code lifetime of 60
/// seconds or less".
const FAPI2_MAX_CODE_LIFETIME_SECONDS: i64 = 60;

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://scopegate.db".into(),
            bind: "127.0.0.1:8080".into(),
            metrics_bind: None,
            issuer: "http://127.0.0.1:8080".into(),
            keys_dir: PathBuf::from("keys"),
            code_lifetime_seconds: 60,
            access_token_lifetime_seconds: 600,
            refresh_token_lifetime_seconds: 30 * 24 * 3600,
            pool_size: 10,
            registry_poll_millis: 1000,
            postgres_statement_cache: true,
            demo: false,
            event_retention_days: 365,
            session_idle_seconds: 1800,
            session_max_seconds: 12 * 3600,
            trusted_proxies: Vec::new(),
            webhook_retry_base_seconds: 5,
            webhook_timeout_seconds: 10,
            require_pushed_authorization_requests: false,
            fapi_security_levels: vec![SecurityLevel::A, SecurityLevel::B],
            profile: Profile::Oauth2,
            dpop_nonce: false,
            limits_timezone: Tz::UTC,
        }
    }
}

/// One source of overrides. The TOML file is parsed straight into it, so an unknown key
/// is refused by serde with a message that names the key.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsLayer {
    pub database_url: Option<String>,
    pub bind: Option<String>,
    pub metrics_bind: Option<String>,
    pub issuer: Option<String>,
    pub keys_dir: Option<PathBuf>,
    pub code_lifetime_seconds: Option<i64>,
    pub access_token_lifetime_seconds: Option<i64>,
    pub refresh_token_lifetime_seconds: Option<i64>,
    pub pool_size: Option<u32>,
    pub registry_poll_millis: Option<u64>,
    pub postgres_statement_cache: Option<bool>,
    pub event_retention_days: Option<i64>,
    pub session_idle_seconds: Option<i64>,
    pub session_max_seconds: Option<i64>,
    pub trusted_proxies: Option<Vec<IpAddr>>,
    pub webhook_retry_base_seconds: Option<i64>,
    pub webhook_timeout_seconds: Option<i64>,
    pub require_pushed_authorization_requests: Option<bool>,
    pub fapi_security_levels: Option<Vec<SecurityLevel>>,
    pub profile: Option<Profile>,
    pub dpop_nonce: Option<bool>,
    pub limits_timezone: Option<Tz>,
}

impl SettingsLayer {
    pub fn from_toml_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// The `SCOPEGATE_*` environment variables, read through `lookup` so tests need not
    /// touch the process environment.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let number = |key: &str| -> anyhow::Result<Option<i64>> {
            lookup(key)
                .map(|value| {
                    value.trim().parse::<i64>().with_context(|| format!("{key} must be an integer, got {value:?}"))
                })
                .transpose()
        };
        let boolean = |key: &str| -> anyhow::Result<Option<bool>> {
            lookup(key)
                .map(|value| match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" => Ok(true),
                    "false" | "0" => Ok(false),
                    _ => bail!("{key} must be true or false, got {value:?}"),
                })
                .transpose()
        };
        let addresses = |key: &str| -> anyhow::Result<Option<Vec<IpAddr>>> {
            lookup(key)
                .map(|value| {
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| {
                            item.parse::<IpAddr>().with_context(|| {
                                format!("{key} must list IP addresses separated by commas, got {item:?}")
                            })
                        })
                        .collect()
                })
                .transpose()
        };
        Ok(Self {
            database_url: lookup("SCOPEGATE_DATABASE_URL"),
            bind: lookup("SCOPEGATE_BIND"),
            // Set but empty is unset, as `SCOPEGATE_METRICS_BIND=` in a unit file reads.
            metrics_bind: lookup("SCOPEGATE_METRICS_BIND").filter(|value| !value.trim().is_empty()),
            issuer: lookup("SCOPEGATE_ISSUER"),
            keys_dir: lookup("SCOPEGATE_KEYS_DIR").map(PathBuf::from),
            code_lifetime_seconds: number("SCOPEGATE_CODE_LIFETIME_SECONDS")?,
            access_token_lifetime_seconds: number("SCOPEGATE_ACCESS_TOKEN_LIFETIME_SECONDS")?,
            refresh_token_lifetime_seconds: number("SCOPEGATE_REFRESH_TOKEN_LIFETIME_SECONDS")?,
            pool_size: number("SCOPEGATE_POOL_SIZE")?.map(|n| n as u32),
            registry_poll_millis: number("SCOPEGATE_REGISTRY_POLL_MILLIS")?.map(|n| n as u64),
            postgres_statement_cache: boolean("SCOPEGATE_POSTGRES_STATEMENT_CACHE")?,
            event_retention_days: number("SCOPEGATE_EVENT_RETENTION_DAYS")?,
            session_idle_seconds: number("SCOPEGATE_SESSION_IDLE_SECONDS")?,
            session_max_seconds: number("SCOPEGATE_SESSION_MAX_SECONDS")?,
            trusted_proxies: addresses("SCOPEGATE_TRUSTED_PROXIES")?,
            webhook_retry_base_seconds: number("SCOPEGATE_WEBHOOK_RETRY_BASE_SECONDS")?,
            webhook_timeout_seconds: number("SCOPEGATE_WEBHOOK_TIMEOUT_SECONDS")?,
            require_pushed_authorization_requests: boolean("SCOPEGATE_REQUIRE_PUSHED_AUTHORIZATION_REQUESTS")?,
            fapi_security_levels: lookup("SCOPEGATE_FAPI_SECURITY_LEVELS")
                .map(|value| {
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| {
                            item.parse::<SecurityLevel>()
                                .map_err(|error| anyhow::anyhow!("SCOPEGATE_FAPI_SECURITY_LEVELS: {error}"))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()
                })
                .transpose()?,
            profile: lookup("SCOPEGATE_PROFILE")
                .map(|value| {
                    value.trim().parse::<Profile>().map_err(|error| anyhow::anyhow!("SCOPEGATE_PROFILE: {error}"))
                })
                .transpose()?,
            dpop_nonce: boolean("SCOPEGATE_DPOP_NONCE")?,
            limits_timezone: lookup("SCOPEGATE_LIMITS_TIMEZONE")
                .map(|value| {
                    value.trim().parse::<Tz>().map_err(|_| {
                        anyhow::anyhow!(
                            "SCOPEGATE_LIMITS_TIMEZONE must be an IANA timezone such as Europe/Berlin, got {value:?}"
                        )
                    })
                })
                .transpose()?,
        })
    }
}

impl Settings {
    /// The FAPI 2.0 rule's settings.
    pub fn fapi_policy(&self) -> FapiPolicy {
        FapiPolicy { levels: self.fapi_security_levels.iter().copied().collect(), profile: self.profile }
    }

    pub fn apply(mut self, layer: SettingsLayer) -> Self {
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(value) = layer.$field { self.$field = value; } )* };
        }
        take!(
            database_url,
            bind,
            issuer,
            keys_dir,
            code_lifetime_seconds,
            access_token_lifetime_seconds,
            refresh_token_lifetime_seconds,
            pool_size,
            registry_poll_millis,
            postgres_statement_cache,
            event_retention_days,
            session_idle_seconds,
            session_max_seconds,
            trusted_proxies,
            webhook_retry_base_seconds,
            webhook_timeout_seconds,
            require_pushed_authorization_requests,
            fapi_security_levels,
            profile,
            dpop_nonce,
            limits_timezone
        );
        if let Some(metrics_bind) = layer.metrics_bind {
            self.metrics_bind = Some(metrics_bind);
        }
        self
    }

    /// Defaults, then the file, then the environment, then the flags.
    pub fn load(config_file: Option<&Path>, flags: SettingsLayer) -> anyhow::Result<Self> {
        let mut settings = Settings::default();
        if let Some(path) = config_file {
            settings = settings.apply(SettingsLayer::from_toml_file(path)?);
        }
        let settings = settings.apply(SettingsLayer::from_env(|key| std::env::var(key).ok())?).apply(flags);
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.database_url.starts_with("sqlite://")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            bail!("database_url must start with sqlite:// or postgres://, got {:?}", self.database_url);
        }
        if !(self.issuer.starts_with("http://") || self.issuer.starts_with("https://")) || self.issuer.ends_with('/') {
            bail!("issuer must be an http(s) URL without a trailing slash, got {:?}", self.issuer);
        }
        for (name, value) in [
            ("code_lifetime_seconds", self.code_lifetime_seconds),
            ("access_token_lifetime_seconds", self.access_token_lifetime_seconds),
            ("refresh_token_lifetime_seconds", self.refresh_token_lifetime_seconds),
            ("event_retention_days", self.event_retention_days),
            ("session_idle_seconds", self.session_idle_seconds),
            ("session_max_seconds", self.session_max_seconds),
            ("webhook_retry_base_seconds", self.webhook_retry_base_seconds),
            ("webhook_timeout_seconds", self.webhook_timeout_seconds),
        ] {
            if value <= 0 {
                bail!("{name} must be positive, got {value}");
            }
            // Far beyond any sensible setting, and far below where time arithmetic overflows.
            if value > TEN_YEARS_IN_SECONDS {
                bail!("{name} must be at most {TEN_YEARS_IN_SECONDS}, got {value}");
            }
        }
        if self.pool_size == 0 {
            bail!("pool_size must be at least 1");
        }
        if self.profile == Profile::Fapi2 {
            self.check_fapi2()?;
        }
        // The worker's lease on a delivery follows the timeout; after a crash, a delivery in
        // flight waits that long to be sent again.
        if self.webhook_timeout_seconds > MAX_WEBHOOK_TIMEOUT_SECONDS {
            bail!(
                "webhook_timeout_seconds must be at most {MAX_WEBHOOK_TIMEOUT_SECONDS}, got {}",
                self.webhook_timeout_seconds
            );
        }
        Ok(())
    }

    /// What FAPI 2.0 (Security Profile §5.2.1, §5.3.2.1) asks of the settings themselves: an
    /// https issuer (http only on a loopback host, for development and tests) and codes that
    /// live at most 60 seconds.
    fn check_fapi2(&self) -> anyhow::Result<()> {
        let issuer = url::Url::parse(&self.issuer).with_context(|| format!("issuer {:?} is not a URL", self.issuer))?;
        // An issuer identifier has no userinfo, query or fragment (RFC 8414 §2).
        if !issuer.username().is_empty()
            || issuer.password().is_some()
            || issuer.query().is_some()
            || issuer.fragment().is_some()
        {
            bail!("the issuer must have no userinfo, query or fragment, got {:?}", self.issuer);
        }
        if !(issuer.scheme() == "https" || issuer.scheme() == "http" && is_loopback(&issuer)) {
            bail!("profile = \"fapi2\" needs an https issuer (http only on a loopback host), got {:?}", self.issuer);
        }
        if self.code_lifetime_seconds > FAPI2_MAX_CODE_LIFETIME_SECONDS {
            bail!(
                "profile = \"fapi2\" keeps authorization codes at most {FAPI2_MAX_CODE_LIFETIME_SECONDS} s (FAPI 2.0 §5.3.2.1), got code_lifetime_seconds = {}",
                self.code_lifetime_seconds
            );
        }
        Ok(())
    }

    /// How the database pool sets up each connection.
    pub fn connection_setup(&self) -> ConnectionSetup {
        ConnectionSetup { postgres_statement_cache: self.postgres_statement_cache }
    }

    /// How long a signed-in session lasts.
    pub fn session_lifetimes(&self) -> SessionLifetimes {
        SessionLifetimes::from_seconds(self.session_idle_seconds, self.session_max_seconds)
    }

    /// When a failed webhook delivery is tried again.
    pub fn webhook_retry_policy(&self) -> RetryPolicy {
        RetryPolicy::with_base_seconds(self.webhook_retry_base_seconds)
    }

    /// Cookies get `Secure` only when the issuer is served over TLS.
    pub fn issuer_is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_fapi2_needs_an_https_issuer_and_codes_of_at_most_a_minute() {
        let fapi2 = |issuer: &str, code_lifetime_seconds: i64| {
            Settings { profile: Profile::Fapi2, issuer: issuer.into(), code_lifetime_seconds, ..Settings::default() }
                .validate()
        };
        assert!(fapi2("https://bank.example", 60).is_ok());
        assert!(fapi2("http://127.0.0.1:8080", 30).is_ok(), "loopback, for development and tests");
        assert!(fapi2("http://localhost", 60).is_ok());
        let plain = fapi2("http://bank.example", 60).unwrap_err().to_string();
        assert!(plain.contains("https issuer"), "{plain}");
        assert!(fapi2("http://127.0.0.1.evil.example", 60).is_err(), "not a loopback host");
        assert!(fapi2("http://localhost:8080@evil.example", 60).is_err(), "userinfo, and evil.example the host");
        assert!(fapi2("https://bank.example?x=1", 60).is_err(), "a query");
        assert!(fapi2("https://user@bank.example", 60).is_err(), "userinfo");
        let long = fapi2("https://bank.example", 61).unwrap_err().to_string();
        assert!(long.contains("code_lifetime_seconds = 61"), "{long}");
        let oauth2 =
            Settings { issuer: "http://bank.example".into(), code_lifetime_seconds: 600, ..Settings::default() };
        assert!(oauth2.validate().is_ok(), "the plain profile leaves both to the deployment");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused_by_name() {
        let error = toml::from_str::<SettingsLayer>("bind = \"0.0.0.0:1\"\nbindd = 3\n").unwrap_err();
        assert!(error.to_string().contains("bindd"), "{error}");
    }

    #[test]
    fn later_layers_override_earlier_ones() {
        let file: SettingsLayer = toml::from_str("bind = \"0.0.0.0:1\"\nissuer = \"https://file\"").unwrap();
        let env =
            SettingsLayer::from_env(|key| (key == "SCOPEGATE_ISSUER").then(|| "https://env".to_string())).unwrap();
        let flags = SettingsLayer { database_url: Some("postgres://flag".into()), ..Default::default() };
        let settings = Settings::default().apply(file).apply(env).apply(flags);
        assert_eq!(settings.bind, "0.0.0.0:1");
        assert_eq!(settings.issuer, "https://env");
        assert_eq!(settings.database_url, "postgres://flag");
        assert_eq!(settings.access_token_lifetime_seconds, 600);
    }

    #[test]
    fn a_non_numeric_lifetime_in_the_environment_is_an_error() {
        let error =
            SettingsLayer::from_env(|key| (key == "SCOPEGATE_ACCESS_TOKEN_LIFETIME_SECONDS").then(|| "ten".into()))
                .unwrap_err();
        assert!(error.to_string().contains("SCOPEGATE_ACCESS_TOKEN_LIFETIME_SECONDS"));
    }

    #[test]
    fn the_statement_cache_can_be_turned_off_by_file_or_environment() {
        assert!(Settings::default().postgres_statement_cache);
        let file: SettingsLayer = toml::from_str("postgres_statement_cache = false").unwrap();
        assert!(!Settings::default().apply(file).connection_setup().postgres_statement_cache);
        for (value, expected) in [("false", false), ("0", false), ("TRUE", true), ("1", true)] {
            let env =
                SettingsLayer::from_env(|key| (key == "SCOPEGATE_POSTGRES_STATEMENT_CACHE").then(|| value.to_string()))
                    .unwrap();
            assert_eq!(Settings::default().apply(env).postgres_statement_cache, expected, "{value}");
        }
        let error = SettingsLayer::from_env(|key| (key == "SCOPEGATE_POSTGRES_STATEMENT_CACHE").then(|| "off".into()))
            .unwrap_err();
        assert!(error.to_string().contains("SCOPEGATE_POSTGRES_STATEMENT_CACHE"), "{error}");
    }

    #[test]
    fn session_lifetimes_default_to_half_an_hour_idle_and_twelve_hours_in_all() {
        let settings = Settings::default();
        assert_eq!((settings.session_idle_seconds, settings.session_max_seconds), (1800, 43200));
        let file: SettingsLayer = toml::from_str("session_idle_seconds = 2\nsession_max_seconds = 5").unwrap();
        let env =
            SettingsLayer::from_env(|key| (key == "SCOPEGATE_SESSION_MAX_SECONDS").then(|| "7".to_string())).unwrap();
        let settings = Settings::default().apply(file).apply(env);
        assert_eq!((settings.session_idle_seconds, settings.session_max_seconds), (2, 7));
        assert!(Settings { session_idle_seconds: 0, ..Default::default() }.validate().is_err());
        assert!(Settings { session_max_seconds: -1, ..Default::default() }.validate().is_err());
    }

    #[test]
    fn trusted_proxies_are_ip_addresses_from_file_or_environment() {
        assert!(Settings::default().trusted_proxies.is_empty());
        let file: SettingsLayer = toml::from_str("trusted_proxies = [\"10.0.0.1\", \"::1\"]").unwrap();
        assert_eq!(Settings::default().apply(file).trusted_proxies.len(), 2);
        let env = SettingsLayer::from_env(|key| {
            (key == "SCOPEGATE_TRUSTED_PROXIES").then(|| "10.0.0.1, 10.0.0.2".to_string())
        })
        .unwrap();
        assert_eq!(
            Settings::default().apply(env).trusted_proxies,
            vec!["10.0.0.1".parse::<IpAddr>().unwrap(), "10.0.0.2".parse().unwrap()]
        );
        let error =
            SettingsLayer::from_env(|key| (key == "SCOPEGATE_TRUSTED_PROXIES").then(|| "10.0.0.1,proxy".into()))
                .unwrap_err();
        assert!(format!("{error:#}").contains("SCOPEGATE_TRUSTED_PROXIES"), "{error:#}");
    }

    #[test]
    fn metrics_bind_is_unset_by_default_and_set_by_file_environment_or_flag() {
        assert_eq!(Settings::default().metrics_bind, None);
        let file: SettingsLayer = toml::from_str("metrics_bind = \"127.0.0.1:9100\"").unwrap();
        let settings = Settings::default().apply(file);
        assert_eq!(settings.metrics_bind.as_deref(), Some("127.0.0.1:9100"));
        let env = |value: &'static str| {
            SettingsLayer::from_env(move |key| (key == "SCOPEGATE_METRICS_BIND").then(|| value.to_string())).unwrap()
        };
        assert_eq!(settings.clone().apply(env("0.0.0.0:9200")).metrics_bind.as_deref(), Some("0.0.0.0:9200"));
        assert_eq!(settings.clone().apply(env("")).metrics_bind.as_deref(), Some("127.0.0.1:9100"), "empty is unset");
        let flags = SettingsLayer { metrics_bind: Some("[::1]:9300".into()), ..Default::default() };
        assert_eq!(settings.apply(env("0.0.0.0:9200")).apply(flags).metrics_bind.as_deref(), Some("[::1]:9300"));
    }

    #[test]
    fn webhook_retries_start_five_seconds_apart_unless_configured() {
        let settings = Settings::default();
        assert_eq!((settings.webhook_retry_base_seconds, settings.webhook_timeout_seconds), (5, 10));
        let env =
            SettingsLayer::from_env(|key| (key == "SCOPEGATE_WEBHOOK_RETRY_BASE_SECONDS").then(|| "1".into())).unwrap();
        let settings = Settings::default().apply(env);
        assert_eq!(settings.webhook_retry_policy().base, chrono::Duration::seconds(1));
        assert!(Settings { webhook_retry_base_seconds: 0, ..Default::default() }.validate().is_err());
        assert!(Settings { webhook_timeout_seconds: -1, ..Default::default() }.validate().is_err());
        assert!(Settings { webhook_timeout_seconds: 61, ..Default::default() }.validate().is_err(), "beyond a minute");
    }

    #[test]
    fn bad_urls_are_refused() {
        let settings = Settings { database_url: "mysql://x".into(), ..Default::default() };
        assert!(settings.validate().is_err());
        let settings = Settings { issuer: "http://x/".into(), ..Default::default() };
        assert!(settings.validate().is_err());
        assert!(Settings::default().validate().is_ok());
    }
}
