//! A small pool of dedicated signing threads. Private-key work never runs on
//! the async runtime's threads; signatures queue up and are made back to back
//! (up to [`BATCH`] before their results go out), which keeps the key and the
//! bignum code hot in the cache and wakes the runtime once per batch.

use std::future::Future;
use std::thread;

use crossbeam_channel::{Sender, TrySendError, bounded};
use tokio::sync::oneshot;

/// A signature to make; it returns the delivery of its result.
type Job = Box<dyn FnOnce() -> Reply + Send>;
type Reply = Box<dyn FnOnce() + Send>;

/// Jobs waiting per thread before the pool refuses more.
const QUEUE_PER_THREAD: usize = 1024;

/// Most signatures made back to back before their results are delivered.
const BATCH: usize = 4;

pub struct SigningPool {
    jobs: Sender<Job>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    #[error("the signing pool is overloaded ({0} signatures waiting)")]
    Overloaded(usize),
    #[error("the signing thread stopped before answering")]
    Stopped,
}

impl SigningPool {
    /// Starts `threads` signing threads (at least one).
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (jobs, queue) = bounded::<Job>(threads * QUEUE_PER_THREAD);
        for index in 0..threads {
            let queue = queue.clone();
            thread::Builder::new()
                .name(format!("cfmint-sign-{index}"))
                .spawn(move || {
                    let mut replies = Vec::with_capacity(BATCH);
                    while let Ok(job) = queue.recv() {
                        replies.push(job());
                        while replies.len() < BATCH {
                            match queue.try_recv() {
                                Ok(job) => replies.push(job()),
                                Err(_) => break,
                            }
                        }
                        for reply in replies.drain(..) {
                            reply();
                        }
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Queues `work` for a signing thread now; the future is its result.
    pub fn run<T, F>(&self, work: F) -> impl Future<Output = Result<T, PoolError>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let result = work();
            Box::new(move || {
                let _ = reply.send(result);
            })
        });
        let queued = self.jobs.try_send(job).map_err(|error| match error {
            TrySendError::Full(_) => PoolError::Overloaded(self.jobs.len()),
            TrySendError::Disconnected(_) => PoolError::Stopped,
        });
        async move {
            queued?;
            result.await.map_err(|_| PoolError::Stopped)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::{PoolError, QUEUE_PER_THREAD, SigningPool};

    #[tokio::test]
    async fn results_come_back_and_a_full_queue_is_refused() {
        let pool = SigningPool::new(1).unwrap();
        assert_eq!(pool.run(|| 6 * 7).await.unwrap(), 42);

        // Hold the only thread, fill the queue, then ask for one more.
        let (release, held) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel();
        let holding = pool.run(move || {
            started.send(()).unwrap();
            held.recv().unwrap();
        });
        running.recv().unwrap();
        let waiting: Vec<_> = (0..QUEUE_PER_THREAD).map(|i| pool.run(move || i)).collect();
        let refused = pool.run(|| 0).await.unwrap_err();
        assert!(matches!(refused, PoolError::Overloaded(n) if n == QUEUE_PER_THREAD));
        release.send(()).unwrap();
        holding.await.unwrap();
        for (i, result) in waiting.into_iter().enumerate() {
            assert_eq!(result.await.unwrap(), i);
        }
    }
}
