//! Group commit: the token paths' writes (an issued token's row, an introspection's counts)
//! run on one writer thread, which takes every job waiting at that moment into one
//! transaction and answers each job only after that transaction committed. Nothing is
//! answered before it is durable, as before; but under load a commit carries dozens of jobs,
//! where a commit per request made SQLite write the same pages once per request while every
//! other writer queued behind it (issue 11).
//!
//! The writer serves SQLite, whose writes run one at a time anyway (`Database::write` sends
//! PostgreSQL writes to transactions of their own). No savepoint per job: one would cost two
//! more statements, as much as the job. A job that fails after a first statement keeps that
//! statement's effect, as it did when each statement committed alone: a count may be spent
//! without being reported, never reported twice. Jobs keep every guarantee of the statements
//! they run: a count is still one conditional UPDATE, exact under any concurrency and across
//! processes. A panic fails its job alone.

use diesel::Connection;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use super::{write_transaction, DbConnection, DbPool, StorageError};

/// Jobs taken into one transaction at most; more wait for the next one.
const BATCH: usize = 256;
/// Jobs that may wait for the writer; beyond that a request waits for room.
const QUEUE: usize = 4096;
/// How long a batch waits for more jobs when the previous one carried several: under load a
/// commit then carries many jobs instead of two or three, while a lone request (an idle
/// server) never waits.
const LINGER: Duration = Duration::from_micros(500);

/// What the writer calls once the batch's transaction ended: `Ok` if it committed.
type Finisher = Box<dyn FnOnce(Result<(), StorageError>) + Send>;
/// A job runs on the batch's connection, or is told there is none (`Err`): either way it hands
/// back its finisher, so every request gets an answer.
type Job = Box<dyn FnOnce(Result<&mut DbConnection, &StorageError>) -> Finisher + Send>;

/// The handle requests use; the writer thread ends when the last handle is dropped.
pub struct GroupWriter {
    queue: SyncSender<Job>,
}

impl GroupWriter {
    pub fn start(pool: DbPool) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new().name("group-writer".into()).spawn(move || write_batches(&pool, &jobs))?;
        Ok(Self { queue })
    }

    /// Runs `work` in the next batch; returns its answer once the batch committed.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StorageError> + Send + 'static,
    {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |connection: Result<&mut DbConnection, &StorageError>| {
            let outcome = match connection {
                Ok(connection) => run_guarded(connection, work),
                Err(error) => Err(StorageError::Unreachable(error.to_string())),
            };
            Box::new(move |committed: Result<(), StorageError>| {
                let _ = done.send(committed.and(outcome));
            })
        });
        let queue = self.queue.clone();
        match queue.try_send(job) {
            Ok(()) => {}
            // A full queue blocks: wait for room on the blocking pool, never on an async worker.
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

/// Runs one job; a panic inside it fails that job alone, and the writer thread lives on.
fn run_guarded<T, F>(connection: &mut DbConnection, work: F) -> Result<T, StorageError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, StorageError>,
{
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match connection {
        DbConnection::Postgresql(_) => connection.transaction(work),
        DbConnection::Sqlite(_) => work(connection),
    }));
    ran.unwrap_or_else(|_| Err(StorageError::Interrupted("a write job panicked".into())))
}

fn stopped() -> StorageError {
    StorageError::Interrupted("the group writer stopped".into())
}

fn write_batches(pool: &DbPool, jobs: &Receiver<Job>) {
    let mut busy = false;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if busy {
            let deadline = Instant::now() + LINGER;
            while batch.len() < BATCH {
                match jobs.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        busy = batch.len() > 1;
        let mut finishers = Vec::with_capacity(batch.len());
        let committed = match pool.get() {
            Ok(mut connection) => write_transaction(&mut connection, |connection| {
                finishers.extend(batch.drain(..).map(|job| job(Ok(&mut *connection))));
                Ok::<_, StorageError>(())
            }),
            Err(error) => Err(StorageError::from(error)),
        };
        if let Err(error) = &committed {
            tracing::warn!(%error, jobs = finishers.len() + batch.len(), "a group commit failed");
            // Jobs that never ran (no connection, or BEGIN failed) still answer, with the error.
            finishers.extend(batch.drain(..).map(|job| job(Err(error))));
        }
        let message = committed.as_ref().err().map(ToString::to_string);
        for finish in finishers {
            finish(match &message {
                None => Ok(()),
                Some(message) => Err(StorageError::Unreachable(message.clone())),
            });
        }
    }
}
