//! Several instances behind pgbouncer in transaction-pooling mode. `tests/run` starts Debian's
//! pgbouncer (1.18) in front of the test cluster with 4 server connections per database, so
//! the clients of every instance share them, and sets SCOPEGATE_TEST_PGBOUNCER_URL. Without it,
//! or without the cluster's own URL, these tests say so and pass.

use crate::helpers::{cli_json, fresh_postgres_database, run_cli_with_env, ServerProcess, TestClient};
use crate::limits::concurrent_introspections;
use diesel::connection::{CacheSize, SimpleConnection};
use diesel::prelude::*;
use futures_util::future::join_all;
use scopegate::config::Settings;
use scopegate::storage::{schema, Database, DbConnection};
use serde_json::{json, Value};
use std::path::Path;
use tempfile::TempDir;

/// What every process behind the bouncer needs: no named prepared statements.
const NO_STATEMENT_CACHE: &[(&str, &str)] = &[("SCOPEGATE_POSTGRES_STATEMENT_CACHE", "false")];

/// A fresh database, reachable directly (for setup and checks) and through pgbouncer.
struct BouncedDatabase {
    direct_url: String,
    settings: Settings,
    _dir: TempDir,
}

/// A fresh database behind the bouncer, or `None` (with a note) when there is no bouncer.
fn bounced_database() -> Option<BouncedDatabase> {
    let setting = |key: &str| std::env::var(key).ok().filter(|url| !url.is_empty());
    let (Some(cluster), Some(bouncer)) =
        (setting("SCOPEGATE_TEST_POSTGRES_URL"), setting("SCOPEGATE_TEST_PGBOUNCER_URL"))
    else {
        eprintln!("skipped: set SCOPEGATE_TEST_POSTGRES_URL and SCOPEGATE_TEST_PGBOUNCER_URL (tests/run does)");
        return None;
    };
    let direct_url = fresh_postgres_database(&cluster);
    let (_, name) = direct_url.rsplit_once('/').unwrap();
    let (bouncer_base, _) = bouncer.rsplit_once('/').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        database_url: format!("{bouncer_base}/{name}"),
        bind: "127.0.0.1:0".into(),
        keys_dir: dir.path().join("keys"),
        pool_size: 4,
        postgres_statement_cache: false,
        ..Settings::default()
    };
    Some(BouncedDatabase { direct_url, settings, _dir: dir })
}

impl BouncedDatabase {
    fn direct(&self) -> PgConnection {
        PgConnection::establish(&self.direct_url).unwrap()
    }

    /// A connection through the bouncer, with or without diesel's statement cache.
    fn bounced(&self, statement_cache: bool) -> PgConnection {
        let mut connection = PgConnection::establish(&self.settings.database_url).unwrap();
        if !statement_cache {
            connection.set_prepared_statement_cache_size(CacheSize::Disabled);
        }
        connection
    }

    /// How many advisory locks anyone holds in this database: a leaked migration lock shows here.
    fn advisory_locks(&self) -> i64 {
        diesel::sql_query(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .get_result::<Count>(&mut self.direct())
        .unwrap()
        .n
    }

    fn applied_migrations(&self) -> i64 {
        diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
            .get_result::<Count>(&mut self.direct())
            .unwrap()
            .n
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn postgres_migration_count() -> i64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    std::fs::read_dir(dir).unwrap().filter(|entry| entry.as_ref().unwrap().path().is_dir()).count() as i64
}

#[tokio::test]
async fn concurrent_migrations_through_pgbouncer_apply_each_migration_once_and_leave_no_lock() {
    let Some(database) = bounced_database() else { return };
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let settings = database.settings.clone();
            std::thread::spawn(move || run_cli_with_env(&settings, &["migrate"], None, NO_STATEMENT_CACHE))
        })
        .collect();
    let applied: i64 =
        runs.into_iter().map(|run| cli_json(&run.join().unwrap())["migrations_applied"].as_i64().unwrap()).sum();
    assert_eq!(applied, postgres_migration_count(), "each migration is applied by exactly one process");
    assert_eq!(database.applied_migrations(), postgres_migration_count());
    assert_eq!(database.advisory_locks(), 0, "the migration lock is released with its transaction");
}

#[tokio::test]
async fn a_failing_migration_behind_pgbouncer_rolls_back_every_migration_of_its_run() {
    let Some(database) = bounced_database() else { return };
    let source = tempfile::tempdir().unwrap();
    let migration = |name: &str, up: &str| {
        let dir = source.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("up.sql"), up).unwrap();
        std::fs::write(dir.join("down.sql"), "SELECT 1;").unwrap();
    };
    migration("2000-01-01-000001_good", "CREATE TABLE probe_good (id INTEGER);");
    migration("2000-01-01-000002_bad", "CREATE TABLE probe_bad (id INTEGER); SELECT no_such_function();");
    let migrations = || diesel_migrations::FileBasedMigrations::from_path(source.path()).unwrap();

    let error = scopegate::storage::run_postgres_migrations(&mut database.bounced(false), migrations()).unwrap_err();
    assert!(format!("{error:#}").contains("no_such_function"), "{error:#}");
    let tables: Vec<String> = diesel::sql_query(
        "SELECT tablename AS name FROM pg_tables WHERE tablename IN ('probe_good', 'probe_bad', '__diesel_schema_migrations')",
    )
    .load::<TableName>(&mut database.direct())
    .unwrap()
    .into_iter()
    .map(|table| table.name)
    .collect();
    assert!(tables.is_empty(), "the failed run left {tables:?} behind");
    assert_eq!(database.advisory_locks(), 0, "the lock went with the rollback");

    // Mended, the same run goes through from the start.
    std::fs::write(source.path().join("2000-01-01-000002_bad/up.sql"), "CREATE TABLE probe_bad (id INTEGER);").unwrap();
    let applied = scopegate::storage::run_postgres_migrations(&mut database.bounced(false), migrations()).unwrap();
    assert_eq!(applied, 2);
}

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// pgbouncer 1.18 in transaction mode passes protocol-level prepared statements to whichever
/// server connection is free, and never clears them. diesel's cache names its statements
/// `__diesel_stmt_0`, `__diesel_stmt_1`, … on every connection, so with more clients than
/// server connections (5 > 4), two clients' first statements meet on one server connection:
/// "prepared statement already exists" (or, on another connection than the one it was
/// prepared on, "does not exist"). Without the cache every query is an unnamed statement,
/// parsed and executed in one round trip, and all succeed. (pgbouncer 1.21 and later can
/// track prepared statements with `max_prepared_statements`; this pins what tests/run starts.)
#[tokio::test]
async fn behind_pgbouncer_named_prepared_statements_fail_and_unnamed_ones_work() {
    let Some(database) = bounced_database() else { return };
    scopegate::storage::run_migrations(&mut DbConnection::Postgresql(database.bounced(false))).unwrap();
    // A query diesel caches (a static query type), as most of ours are.
    let count_clients = |connection: &mut PgConnection| schema::clients::table.count().get_result::<i64>(connection);

    let mut cached: Vec<PgConnection> = (0..5).map(|_| database.bounced(true)).collect();
    let failures: Vec<String> = cached
        .iter_mut()
        .flat_map(|connection| (0..3).map(|_| count_clients(connection)).collect::<Vec<_>>())
        .filter_map(|result| result.err().map(|error| error.to_string()))
        .collect();
    assert!(!failures.is_empty(), "named prepared statements all worked through pgbouncer");
    assert!(failures.iter().all(|error| error.contains("prepared statement")), "{failures:?}");

    let mut unnamed: Vec<PgConnection> = (0..5).map(|_| database.bounced(false)).collect();
    for _ in 0..3 {
        for connection in &mut unnamed {
            assert_eq!(count_clients(connection).unwrap(), 0);
        }
    }

    // Every checkout runs the pool's health check, a query too: with the setting it passes.
    let pool =
        Database::connect_with(&database.settings.database_url, 8, database.settings.connection_setup()).unwrap();
    for _ in 0..4 {
        let mut held: Vec<_> = (0..8).map(|_| pool.get().unwrap()).collect();
        for connection in &mut held {
            connection.batch_execute("SELECT 1").unwrap();
        }
    }
}

/// Two instances start at once on a fresh database through the bouncer (both migrate), then
/// serve real traffic through it, and a counted scope stays exact across both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_behind_pgbouncer_start_together_and_count_exactly() {
    let Some(database) = bounced_database() else { return };
    let settings = &database.settings;
    // The shared keys directory exists beforehand, as in a deployment: two instances creating
    // it at the same moment race on its files, which is not what this test is about.
    scopegate::secrets::SecretHasher::load_or_create(&settings.keys_dir).unwrap();
    scopegate::keys::load_or_create(&settings.keys_dir, chrono::Utc::now()).unwrap();
    let (first, second) = futures_util::join!(
        ServerProcess::start_with_env(settings, NO_STATEMENT_CACHE),
        ServerProcess::start_with_env(settings, NO_STATEMENT_CACHE)
    );
    assert_eq!(database.applied_migrations(), postgres_migration_count());
    assert_eq!(database.advisory_locks(), 0);

    // An administrator, made by the CLI through the bouncer, sets up the rest over HTTP.
    let admin = cli_json(&run_cli_with_env(
        settings,
        &["client", "create", "--name", "Ops", "--admin"],
        None,
        NO_STATEMENT_CACHE,
    ));
    let admin = TestClient {
        id: admin["client_id"].as_str().unwrap().into(),
        secret: admin["client_secret"].as_str().unwrap().into(),
    };
    let http = reqwest::Client::new();
    let admin_token = token(&http, &first.url, &admin, "scopegate:admin").await;
    let admin_call = |server: &str, path: &str, body: Value| {
        http.post(format!("{server}/admin/v1/{path}")).bearer_auth(&admin_token).json(&body).send()
    };
    for scope in [
        json!({"name": "profile", "short_description": "Profile", "user_authorization_required": false}),
        json!({"name": "metered", "short_description": "Counted", "max_access_count": 60}),
    ] {
        let response = admin_call(&second.url, "scopes", scope).await.unwrap();
        assert_eq!(response.status(), 201);
    }
    let mut clients = Vec::new();
    for body in [json!({"name": "Machine"}), json!({"name": "Bank API", "can_introspect": true})] {
        let response = admin_call(&first.url, "clients", body).await.unwrap();
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.unwrap();
        clients.push(TestClient {
            id: created["client_id"].as_str().unwrap().into(),
            secret: created["client_secret"].as_str().unwrap().into(),
        });
    }
    let (machine, bank_api) = (&clients[0], &clients[1]);
    // The first instance learns of the second's new scopes by its registry poll.
    let started = std::time::Instant::now();
    while http
        .get(format!("{}/admin/v1/scopes/metered", first.url))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(started.elapsed().as_secs() < 10, "the first instance never saw the new scope");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Tokens from both instances at once; each introspects active on the other.
    let servers = [first.url.clone(), second.url.clone()];
    let issued = join_all((0..20).map(|i| token(&http, &servers[i % 2], machine, "profile"))).await;
    for (i, issued) in issued.iter().enumerate() {
        let answer = introspect(&http, &servers[(i + 1) % 2], bank_api, issued).await;
        assert_eq!((answer["active"].as_bool(), answer["scope"].as_str()), (Some(true), Some("profile")), "{answer}");
    }

    // 100 counted introspections split over both: exactly 60 report the scope.
    let metered = token(&http, &second.url, machine, "metered profile").await;
    let reported = concurrent_introspections(&servers, bank_api, &metered, 100, "metered").await;
    assert_eq!(reported, 60);
    let stored = Database::connect(&database.direct_url, 1).unwrap();
    let grants = scopegate::storage::grants::list(&mut stored.get().unwrap(), None, Some(&machine.id)).unwrap();
    let count = grants.iter().find(|(_, grant)| grant.scope_name == "metered").unwrap().1.access_count;
    assert_eq!(count, 60);
}

async fn token(http: &reqwest::Client, server: &str, client: &TestClient, scope: &str) -> String {
    let response = http
        .post(format!("{server}/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn introspect(http: &reqwest::Client, server: &str, caller: &TestClient, token: &str) -> Value {
    let response = http
        .post(format!("{server}/introspect"))
        .basic_auth(&caller.id, Some(&caller.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}
