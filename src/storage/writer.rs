//! Group commit: the token paths' writes (an issued token's row, an introspection's counts)
//! run on one writer thread, which takes every job waiting at that moment into one
//! transaction and answers each job only after that transaction committed. Nothing is
//! answered before it is durable, as before; but under load a commit carries dozens of jobs,
//! where a commit per request made SQLite write the same pages once per request while every
//! other writer queued behind it (issue 11).
//!
//! On PostgreSQL each job runs in its own savepoint, because a failed statement there aborts
//! the whole transaction; on SQLite a failed statement undoes only itself, and a savepoint per
//! job (two more statements to parse and run) would cost as much as the job. Jobs keep every
//! guarantee of the statements they run: a count is still one conditional UPDATE, exact under
//! any concurrency and across instances.

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
type Job = Box<dyn FnOnce(&mut DbConnection) -> Finisher + Send>;

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
        let job: Job = Box::new(move |connection: &mut DbConnection| {
            let outcome = match connection {
                DbConnection::Postgresql(_) => connection.transaction(work),
                DbConnection::Sqlite(_) => work(connection),
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
        let committed = pool.get().map_err(StorageError::from).and_then(|mut connection| {
            write_transaction(&mut connection, |connection| {
                finishers.extend(batch.drain(..).map(|job| job(connection)));
                Ok::<_, StorageError>(())
            })
        });
        if let Err(error) = &committed {
            tracing::warn!(%error, jobs = finishers.len() + batch.len(), "a group commit failed");
        }
        let message = committed.as_ref().err().map(ToString::to_string);
        for finish in finishers {
            finish(match &message {
                None => Ok(()),
                Some(message) => Err(StorageError::Unreachable(message.clone())),
            });
        }
        // Jobs never run (no connection): dropping them drops their answer channel, which
        // their requests see as an interruption.
    }
}
