//! Group commit: one thread makes writes durable, many requests wait for it.
//!
//! A single flusher thread makes everything committed so far durable (the engine's
//! [`Syncer`]: sled's flush and fsyncs, or one synchronous PostgreSQL commit), and only then
//! wakes every request whose write happened before it began. While one flush runs, the next
//! batch of writers queues up behind it: one flush serves many.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::watch;

use super::StoreError;
use super::engine::Syncer;
use crate::metrics::FlushMetrics;

/// What the flusher has finished, in tickets: ticket `n` is covered once `durable >= n`.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    /// Every ticket up to this one is on disk.
    durable: u64,
    /// Every ticket up to this one was in a flush that failed (unless `durable` has passed it).
    failed: u64,
}

/// Requests for the flusher, guarded by a std mutex: it is held for a few instructions, never across `.await`.
#[derive(Default)]
struct Requests {
    /// The newest ticket handed out.
    issued: u64,
    /// Set once the store closes: flush what is left, then end the thread.
    stop: bool,
}

struct Shared {
    requests: Mutex<Requests>,
    wake: Condvar,
    /// Set (under `requests`) while the flusher waits on `wake`: a waiter that finds it unset
    /// need not wake it, which saves a system call per request while the flusher is busy.
    asleep: AtomicBool,
    progress: watch::Sender<Progress>,
    metrics: FlushMetrics,
}

/// Owns the flusher thread; dropping it flushes whatever is left and joins the thread.
pub struct Durability {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Durability {
    /// Starts the flusher, which calls `syncer`.
    pub fn start(syncer: Syncer) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Requests::default()),
            wake: Condvar::new(),
            asleep: AtomicBool::new(false),
            progress: watch::Sender::new(Progress::default()),
            metrics: FlushMetrics::default(),
        });
        let thread = std::thread::Builder::new().name("flusher".into()).spawn({
            let shared = shared.clone();
            move || run_flusher(&shared, syncer)
        })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// The flusher's batch sizes and durations, for `/metrics`.
    pub fn metrics(&self) -> &FlushMetrics {
        &self.shared.metrics
    }

    /// A place in the flush order for every write committed before this call. The flusher is
    /// woken when someone waits on it: a batch of hundreds of writes then asks for one flush.
    pub fn ticket(&self) -> Ticket {
        let number = {
            let mut requests = lock(&self.shared.requests);
            requests.issued += 1;
            requests.issued
        };
        Ticket {
            shared: self.shared.clone(),
            number,
        }
    }
}

/// Everything committed before the ticket was issued; [`Ticket::wait`] resolves once it is on disk.
pub struct Ticket {
    shared: Arc<Shared>,
    number: u64,
}

impl Ticket {
    /// Resolves once the writes this ticket covers are on disk (or their flush failed).
    pub async fn wait(self) -> Result<(), StoreError> {
        // A flusher that is not asleep finds the ticket when it looks at `issued` again, before
        // it sleeps; one that looked before the ticket was issued went to sleep (under the lock
        // `ticket` took) before it was, so this sees `asleep` set.
        if self.shared.asleep.load(Ordering::SeqCst) {
            self.shared.wake.notify_one();
        }
        let mut progress = self.shared.progress.subscribe();
        let done = progress
            .wait_for(|p| p.durable >= self.number || p.failed >= self.number)
            .await
            .map_err(|_| StoreError::Closed)?;
        if done.durable >= self.number {
            Ok(())
        } else {
            Err(StoreError::Flush)
        }
    }

    /// The later of two tickets covers everything the earlier one does.
    pub fn later(self, other: Ticket) -> Ticket {
        if other.number > self.number {
            other
        } else {
            self
        }
    }
}

impl Drop for Durability {
    fn drop(&mut self) {
        lock(&self.shared.requests).stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A poisoned lock only means another thread panicked mid-update of two integers; they are still usable.
fn lock(m: &Mutex<Requests>) -> std::sync::MutexGuard<'_, Requests> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run_flusher(shared: &Shared, mut syncer: Syncer) {
    let mut flushed_through = 0;
    loop {
        let (target, stop) = {
            let mut requests = lock(&shared.requests);
            while requests.issued == flushed_through && !requests.stop {
                shared.asleep.store(true, Ordering::SeqCst);
                requests = shared
                    .wake
                    .wait(requests)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                shared.asleep.store(false, Ordering::SeqCst);
            }
            (requests.issued, requests.stop)
        };
        // On stop, flush once more even with no waiters: sled's own background flush may be behind.
        let started = Instant::now();
        match syncer.sync() {
            Ok(()) => {
                shared
                    .metrics
                    .observe(target - flushed_through, started.elapsed());
                shared.progress.send_modify(|p| p.durable = target);
            }
            Err(error) => {
                tracing::error!(%error, "flushing the database failed; the waiting writes are not acknowledged");
                shared.progress.send_modify(|p| p.failed = target);
            }
        }
        flushed_through = target;
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::engine::sled_engine::Sled;

    fn durability() -> (tempfile::TempDir, Sled, Durability) {
        let dir = tempfile::tempdir().unwrap();
        let sled = Sled::open(dir.path(), 1 << 20).unwrap();
        let syncer = Syncer::Sled(Box::new(sled.syncer().unwrap()));
        (dir, sled, Durability::start(syncer).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_waiters_at_once_are_each_answered_and_none_is_refused() {
        let (_dir, _sled, durability) = durability();
        let waits: Vec<_> = (0..200)
            .map(|_| tokio::spawn(durability.ticket().wait()))
            .collect();
        for wait in waits {
            assert!(wait.await.unwrap().is_ok());
        }
        // A ticket already covered answers at once; one taken later needs a flush of its own.
        let early = durability.ticket();
        let late = durability.ticket();
        assert!(late.wait().await.is_ok());
        assert!(early.wait().await.is_ok());
    }

    #[tokio::test]
    async fn a_ticket_taken_before_the_store_closes_is_flushed_by_the_last_flush() {
        let (_dir, _sled, durability) = durability();
        let ticket = durability.ticket();
        drop(durability);
        assert!(ticket.wait().await.is_ok());
    }
}
