//! Scope registry at scale: 100,000 scopes up to depth 10, saved to and loaded from a real
//! database, and expanded. Run: `cargo bench --bench registry` (SQLite; set
//! SCOPEGATE_BENCH_POSTGRES_URL to a database URL to measure PostgreSQL too).
#![allow(clippy::expect_used)]

use scopegate::domain::event::Actor;
use scopegate::domain::scope::Scope;
use scopegate::domain::scope_tree::ScopeTree;
use scopegate::services::registry::Registry;
use scopegate::storage::{self, Database};
use std::time::{Duration, Instant};

const SCOPES: usize = 100_000;
const ROOTS: usize = 4;
const BRANCHING: usize = 3;

/// Four roots, every other scope the child of `(i - ROOTS) / BRANCHING`: depth 10.
fn large_registry() -> Vec<Scope> {
    (0..SCOPES)
        .map(|index| {
            let mut scope = Scope::new(format!("s{index}"), format!("Scope number {index}"));
            scope.parent = (index >= ROOTS).then(|| format!("s{}", (index - ROOTS) / BRANCHING));
            scope.position = (index % BRANCHING) as u32;
            scope
        })
        .collect()
}

fn depth(tree: &ScopeTree, name: &str) -> usize {
    tree.ancestors(name).count() + 1
}

fn best_of<T>(runs: usize, mut work: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let value = work();
        best = best.min(started.elapsed());
        last = Some(value);
    }
    (best, last.expect("at least one run"))
}

fn measure(backend: &str, database_url: &str) -> anyhow::Result<()> {
    let db = Database::connect(database_url, 2)?;
    let mut connection = db.get()?;
    storage::run_migrations(&mut connection)?;
    let tree = ScopeTree::from_scopes(large_registry())?;
    let deepest = tree.iter().map(|scope| depth(&tree, &scope.name)).max().unwrap_or(0);

    let registry = Registry::load(&mut connection)?;
    let started = Instant::now();
    let document = tree.export();
    // One audit event per created scope is written in the same transaction, and measured.
    let counts = registry.import(&mut connection, &document, &Actor::Cli, chrono::Utc::now())?;
    let saved = started.elapsed();

    let (loaded, registry) = best_of(3, || Registry::load(&mut connection));
    let registry = registry?;
    let snapshot = registry.snapshot();
    let (expanded_in, expanded) = best_of(20, || snapshot.tree.expand(["s0"]));
    let per_thousand = expanded_in.as_secs_f64() * 1e3 / (expanded.len() as f64 / 1000.0);
    println!(
        "{backend:<10} {} scopes (depth {deepest}): import {:>7.0} ms ({} rows), load {:>6.0} ms, \
         expand s0 -> {} scopes in {:.2} ms ({per_thousand:.3} ms per 1000)",
        snapshot.tree.len(),
        saved.as_secs_f64() * 1e3,
        counts.created,
        loaded.as_secs_f64() * 1e3,
        expanded.len(),
        expanded_in.as_secs_f64() * 1e3,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let (in_memory, tree) = best_of(3, || ScopeTree::from_scopes(large_registry()));
    println!("in memory  {} scopes: build the tree {:.0} ms", tree?.len(), in_memory.as_secs_f64() * 1e3);
    let dir = tempfile::tempdir()?;
    measure("SQLite", &format!("sqlite://{}", dir.path().join("bench.db").display()))?;
    if let Ok(url) = std::env::var("SCOPEGATE_BENCH_POSTGRES_URL") {
        measure("PostgreSQL", &url)?;
    }
    Ok(())
}
