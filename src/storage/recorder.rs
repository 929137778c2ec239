//! Group commit of issued access tokens. Every issued token is stored before it is handed out,
//! but a commit per token made SQLite write the same table and index pages (six b-trees) once
//! per token while every other writer queued behind it. Here one writer thread takes all the
//! rows waiting at that moment, stores them in one transaction, and then answers each request:
//! the rows are as durable as before (nothing is answered before its commit), and under load a
//! commit carries dozens of tokens.
//!
//! A row whose consent was deleted after the request read it (a revocation racing the
//! issuance) is not stored: its request learns `ConsentGone` and starts over, and finds the
//! revocation. On PostgreSQL the batch holds a key-share lock on the consents it stores under,
//! so a revocation waits for the batch and then ends its tokens too.

use diesel::prelude::*;
use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};

use super::schema::{access_tokens, consents};
use super::tokens::AccessTokenRow;
use super::{write_transaction, DbConnection, DbPool, StorageError};

/// How a row fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Stored,
    /// The row's consent no longer exists; nothing was stored.
    ConsentGone,
}

/// Rows taken into one transaction at most; more wait for the next one.
const BATCH: usize = 256;
/// Requests that may wait for the writer; beyond that a request waits to be queued.
const QUEUE: usize = 4096;

struct Job {
    row: AccessTokenRow,
    done: tokio::sync::oneshot::Sender<Result<Recorded, StorageError>>,
}

/// The handle requests use; the writer thread ends when the last handle is dropped.
pub struct TokenRecorder {
    queue: SyncSender<Job>,
}

impl TokenRecorder {
    pub fn start(pool: DbPool) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new().name("token-recorder".into()).spawn(move || write_batches(&pool, &jobs))?;
        Ok(Self { queue })
    }

    /// Stores `row`; returns once it is committed (or refused).
    pub async fn record(&self, row: AccessTokenRow) -> Result<Recorded, StorageError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let queue = self.queue.clone();
        // A full queue blocks: wait for room on the blocking pool, never on an async worker.
        match queue.try_send(Job { row, done }) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(job)) => {
                actix_web::web::block(move || queue.send(job))
                    .await
                    .map_err(|error| StorageError::Interrupted(error.to_string()))?
                    .map_err(|_| stopped())?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(stopped()),
        }
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StorageError {
    StorageError::Interrupted("the token recorder stopped".into())
}

fn write_batches(pool: &DbPool, jobs: &Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let outcome = pool.get().map_err(StorageError::from).and_then(|mut connection| {
            let rows: Vec<&AccessTokenRow> = batch.iter().map(|job| &job.row).collect();
            write_transaction(&mut connection, |connection| store(connection, &rows))
        });
        match outcome {
            Ok(fates) => {
                for (job, fate) in batch.into_iter().zip(fates) {
                    let _ = job.done.send(Ok(fate));
                }
            }
            Err(error) => {
                tracing::warn!(%error, rows = batch.len(), "storing issued tokens failed");
                let message = error.to_string();
                for job in batch {
                    let _ = job.done.send(Err(StorageError::Unreachable(message.clone())));
                }
            }
        }
    }
}

/// Inserts the rows whose consent still exists, in one transaction; returns each row's fate.
fn store(connection: &mut DbConnection, rows: &[&AccessTokenRow]) -> Result<Vec<Recorded>, StorageError> {
    let mut wanted: Vec<&str> = rows.iter().filter_map(|row| row.consent_id.as_deref()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let query = consents::table.filter(consents::id.eq_any(&wanted)).select(consents::id);
    let living: HashSet<String> = match connection {
        DbConnection::Postgresql(pg) => query.for_key_share().load(pg)?,
        DbConnection::Sqlite(sqlite) => query.load(sqlite)?,
    }
    .into_iter()
    .collect();
    let mut fates = Vec::with_capacity(rows.len());
    for row in rows {
        if row.consent_id.as_ref().is_some_and(|id| !living.contains(id)) {
            fates.push(Recorded::ConsentGone);
            continue;
        }
        // `serialize_as` columns make only an owned row insertable.
        diesel::insert_into(access_tokens::table).values((*row).clone()).execute(connection)?;
        fates.push(Recorded::Stored);
    }
    Ok(fates)
}
