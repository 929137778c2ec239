//! The `scopegate` command line: parses arguments and runs one command.

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config::{Settings, SettingsLayer};
use crate::domain::client::{AuthMethod, ClientRegistration, TokenFormat};
use crate::domain::clock::Clock;
use crate::domain::event::Actor;
use crate::domain::scope::{GrantType, SecurityLevel};
use crate::domain::scope_document::ScopeDocument;
use crate::keys;
use crate::services::registry::Registry;
use crate::services::{clients, demo, users};
use crate::startup::Application;
use crate::storage::{self, signing_keys, Database};

#[derive(Debug, Parser)]
#[command(name = "scopegate", version, about = "OAuth 2.0 authorization server with a hierarchical scope registry")]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// sqlite://PATH or postgres://… (env SCOPEGATE_DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Directory of the signing keys and the server secret (env SCOPEGATE_KEYS_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    keys_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate, load or create keys, and serve HTTP until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage end users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage the scope registry.
    #[command(subcommand)]
    Scope(ScopeCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
enum ScopeCommand {
    /// Upsert the scopes of a JSON or YAML tree document ({"scopes": [...]}); idempotent. A bad
    /// document is refused whole.
    Import { file: PathBuf },
    /// Print the whole registry as a JSON tree document.
    Export,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Seed the Online Bank demo (idempotent) and print where to start.
    #[arg(long)]
    demo: bool,
    /// Address to listen on (env SCOPEGATE_BIND).
    #[arg(long)]
    bind: Option<String>,
    /// Address to serve Prometheus metrics on, at /metrics (env SCOPEGATE_METRICS_BIND); unset: none.
    #[arg(long, value_name = "ADDR")]
    metrics_bind: Option<String>,
    /// Issuer URL (env SCOPEGATE_ISSUER).
    #[arg(long)]
    issuer: Option<String>,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        username: String,
        /// Read the password from stdin (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long)]
        display_name: Option<String>,
        /// An administrator, who may sign in to the console at /admin.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Register a client; prints its id and, once, its secret.
    Create(ClientCreateArgs),
}

#[derive(Debug, Args)]
struct ClientCreateArgs {
    #[arg(long)]
    name: String,
    /// A public client (no secret; must use PKCE).
    #[arg(long)]
    public: bool,
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    #[arg(long = "grant-type", value_name = "T", value_parser = parse_grant_type)]
    grant_types: Vec<GrantType>,
    #[arg(long = "scope", value_name = "S")]
    scopes: Vec<String>,
    #[arg(long, value_name = "L", value_parser = parse_level)]
    security_level: Option<SecurityLevel>,
    #[arg(long, value_name = "jwt|opaque", value_parser = parse_token_format)]
    token_format: Option<TokenFormat>,
    /// May call /introspect (a resource server).
    #[arg(long)]
    can_introspect: bool,
    /// May call the admin API.
    #[arg(long)]
    admin: bool,
    /// How the client authenticates: client_secret_basic (default), client_secret_post,
    /// private_key_jwt (with --jwks-file) or none (public clients).
    #[arg(long, value_name = "METHOD", value_parser = parse_auth_method)]
    auth_method: Option<AuthMethod>,
    /// The client's public keys, a JWK Set in JSON, for private_key_jwt.
    #[arg(long, value_name = "FILE")]
    jwks_file: Option<PathBuf>,
    /// /authorize takes this client's requests only through /par.
    #[arg(long)]
    require_par: bool,
    /// Every access token of this client is DPoP-bound.
    #[arg(long)]
    dpop_bound: bool,
}

fn parse_auth_method(value: &str) -> Result<AuthMethod, String> {
    value.parse()
}

/// The JWK Set in `path`, as JSON (its keys are checked with the rest of the registration).
fn read_jwks(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn parse_grant_type(value: &str) -> Result<GrantType, String> {
    value.parse()
}
fn parse_level(value: &str) -> Result<SecurityLevel, String> {
    value.parse()
}
fn parse_token_format(value: &str) -> Result<TokenFormat, String> {
    value.parse()
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a new current signing key; older public keys stay published until their tokens expire.
    Rotate,
}

/// Logs go to stderr (stdout is for the JSON a command returns): `SCOPEGATE_LOG` takes a
/// tracing filter (default `info`), `SCOPEGATE_LOG_FORMAT=json` writes one JSON object a line
/// for a log collector. Colours only when stderr is a terminal.
pub fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCOPEGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second initialisation (tests start several servers in one process) keeps the first.
    let _ = match std::env::var("SCOPEGATE_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().try_init(),
        Ok("text") | Err(_) => builder.try_init(),
        Ok(other) => {
            let initialised = builder.try_init();
            tracing::warn!(format = other, "SCOPEGATE_LOG_FORMAT is `text` or `json`; writing text");
            initialised
        }
    };
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut flags = SettingsLayer { database_url: cli.database_url, keys_dir: cli.keys_dir, ..Default::default() };
    if let Command::Serve(args) = &cli.command {
        flags.bind = args.bind.clone();
        flags.metrics_bind = args.metrics_bind.clone();
        flags.issuer = args.issuer.clone();
    }
    let settings = Settings::load(cli.config.as_deref(), flags)?;
    match cli.command {
        Command::Serve(args) => serve(Settings { demo: args.demo, ..settings }),
        Command::Migrate => {
            let db = Database::connect_with(&settings.database_url, 1, settings.connection_setup())?;
            let applied = storage::run_migrations(&mut *db.get()?)?;
            print_json(&json!({ "migrations_applied": applied }))
        }
        Command::User(UserCommand::Create { username, password_stdin: _, display_name, admin }) => {
            let password = read_password_from_stdin()?;
            let db = migrated_database(&settings)?;
            let new_user = users::NewUser {
                username: &username,
                password: &password,
                display_name: display_name.as_deref(),
                admin,
            };
            let user = users::create(&mut *db.get()?, new_user, &Actor::Cli, Clock::from_env().now())?;
            print_json(&user)
        }
        Command::Client(ClientCommand::Create(args)) => {
            let db = migrated_database(&settings)?;
            let hasher = crate::secrets::SecretHasher::load_or_create(&settings.keys_dir)?;
            let registration = ClientRegistration {
                name: args.name,
                public: args.public,
                redirect_uris: args.redirect_uris,
                grant_types: args.grant_types,
                security_level: args.security_level,
                token_format: args.token_format,
                can_introspect: args.can_introspect,
                admin: args.admin,
                token_endpoint_auth_method: args.auth_method,
                jwks: args.jwks_file.as_deref().map(read_jwks).transpose()?,
                require_pushed_authorization_requests: args.require_par,
                dpop_bound_access_tokens: args.dpop_bound,
            };
            let registered = clients::register(
                &mut *db.get()?,
                &hasher,
                &registration,
                &args.scopes,
                None,
                &Actor::Cli,
                Clock::from_env().now(),
            )?;
            print_json(&registered)
        }
        Command::Scope(ScopeCommand::Import { file }) => {
            let document = read_scope_document(&file)?;
            let db = migrated_database(&settings)?;
            let mut connection = db.get()?;
            let registry = Registry::load(&mut connection)?;
            let counts = registry.import(&mut connection, &document.scopes, &Actor::Cli, Clock::from_env().now())?;
            let total = registry.snapshot().tree.len();
            print_json(&json!({ "created": counts.created, "updated": counts.updated, "scopes": total }))
        }
        Command::Scope(ScopeCommand::Export) => {
            let db = migrated_database(&settings)?;
            let registry = Registry::load(&mut *db.get()?)?;
            print_json(&ScopeDocument { scopes: registry.snapshot().tree.export() })
        }
        Command::Keys(KeysCommand::Rotate) => {
            let db = migrated_database(&settings)?;
            let now = Clock::from_env().now();
            let key = keys::generate(&settings.keys_dir, now)?;
            signing_keys::register_current(&mut *db.get()?, &key.kid, &key.public_key_pem, now)?;
            eprintln!(
                "New signing key {}; running servers sharing this keys directory sign with it within seconds.",
                key.kid
            );
            print_json(&json!({ "kid": key.kid }))
        }
    }
}

fn migrated_database(settings: &Settings) -> anyhow::Result<Database> {
    let db = Database::connect_with(&settings.database_url, 2, settings.connection_setup())?;
    storage::run_migrations(&mut *db.get()?)?;
    Ok(db)
}

fn read_password_from_stdin() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).context("cannot read the password from stdin")?;
    // One trailing newline is the terminator of `echo`, not part of the password.
    let password = input.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&input);
    if password.is_empty() {
        bail!("no password on stdin");
    }
    Ok(password.to_string())
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A scope document from a file: YAML when the name says so, JSON otherwise. Parse errors
/// name the path of the bad node.
fn read_scope_document(file: &std::path::Path) -> anyhow::Result<ScopeDocument> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let is_yaml = matches!(file.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    let document = if is_yaml {
        serde_yaml_ng::from_str(&text).map_err(|error| anyhow::anyhow!("{error}"))
    } else {
        let mut deserializer = serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|error| anyhow::anyhow!("at {}: {}", error.path(), error.inner()))
    };
    document.with_context(|| format!("{} is not a valid scope document", file.display()))
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let issuer = settings.issuer.clone();
        let database = storage::redact(&settings.database_url);
        let demo = settings.demo;
        let application = Application::build(settings)?;
        if demo {
            let state = application.state();
            let seed = {
                let mut connection = state.db.get()?;
                demo::seed(&mut connection, &state.hasher, &state.registry, &issuer, state.clock.now())
                    .context("cannot seed the demo")?
            };
            println!("{}", demo::banner(&issuer, &seed));
        }
        tracing::info!(
            port = application.port(),
            metrics_port = application.metrics_port(),
            %issuer,
            %database,
            "scopegate is listening"
        );
        application.run_until_stopped().await?;
        tracing::info!("scopegate stopped");
        Ok(())
    })
}
