//! The bounded worker pool that runs verification off the async runtime.
//!
//! A fixed number of rayon threads; each request submits one job that scores its
//! items in parallel. When the request's deadline passes, the job is told to stop
//! starting new items and the request answers with what finished; the rest get the
//! fallback. A panic while scoring one item is caught and reported for that item.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// What happened to one item.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<R> {
    Done(R),
    /// The deadline passed before the item was scored.
    TimedOut,
    /// Scoring panicked (a bug in a scorer; the item is reported, the server lives on).
    Panicked,
}

/// A fixed-size pool of verification threads.
pub struct Pool {
    pool: rayon::ThreadPool,
    threads: usize,
}

impl Pool {
    /// A pool of `threads` workers (0: one per CPU core).
    pub fn new(threads: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("stepwise-verify-{i}"))
            .build()?;
        Ok(Self { pool, threads })
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Applies `f` to every item on the pool, returning by `deadline` at the latest.
    pub async fn map<T, R, F>(&self, items: Vec<T>, f: F, deadline: Instant) -> Vec<Outcome<R>>
    where
        T: Send + Sync + 'static,
        R: Send + 'static,
        F: Fn(&T) -> R + Send + Sync + 'static,
    {
        use rayon::prelude::*;
        let n = items.len();
        let slots: Arc<Vec<Mutex<Option<Outcome<R>>>>> =
            Arc::new((0..n).map(|_| Mutex::new(None)).collect());
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        {
            let slots = Arc::clone(&slots);
            let cancel = Arc::clone(&cancel);
            self.pool.spawn(move || {
                items.par_iter().enumerate().for_each(|(i, item)| {
                    if cancel.load(Ordering::Relaxed) {
                        return;
                    }
                    let out = match catch_unwind(AssertUnwindSafe(|| f(item))) {
                        Ok(r) => Outcome::Done(r),
                        Err(_) => Outcome::Panicked,
                    };
                    if let Ok(mut s) = slots[i].lock() {
                        *s = Some(out);
                    }
                });
                let _ = tx.send(());
            });
        }
        let finished = tokio::time::timeout_at(deadline, rx).await.is_ok();
        if !finished {
            cancel.store(true, Ordering::Relaxed);
        }
        slots
            .iter()
            .map(|s| {
                s.lock()
                    .ok()
                    .and_then(|mut g| g.take())
                    .unwrap_or(Outcome::TimedOut)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn maps_in_order() {
        let p = Pool::new(2).unwrap();
        let out = p
            .map(
                (0..100u64).collect(),
                |x| x * 2,
                Instant::now() + Duration::from_secs(10),
            )
            .await;
        let want: Vec<_> = (0..100u64).map(|x| Outcome::Done(x * 2)).collect();
        assert_eq!(out, want);
    }

    #[tokio::test]
    async fn deadline_cuts_off() {
        let p = Pool::new(1).unwrap();
        let out = p
            .map(
                (0..50u64).collect(),
                |&x| {
                    std::thread::sleep(Duration::from_millis(20));
                    x
                },
                Instant::now() + Duration::from_millis(100),
            )
            .await;
        let done = out.iter().filter(|o| matches!(o, Outcome::Done(_))).count();
        let timed = out.iter().filter(|o| **o == Outcome::TimedOut).count();
        assert!((1..50).contains(&done), "done {done}");
        assert_eq!(done + timed, 50);
    }

    #[tokio::test]
    async fn panics_are_caught_per_item() {
        let p = Pool::new(2).unwrap();
        let out = p
            .map(
                (0..10u64).collect(),
                |&x| {
                    if x == 3 {
                        panic!("scorer bug");
                    }
                    x
                },
                Instant::now() + Duration::from_secs(60),
            )
            .await;
        for (i, o) in out.iter().enumerate() {
            if i == 3 {
                assert_eq!(*o, Outcome::Panicked);
            } else {
                assert_eq!(*o, Outcome::Done(i as u64));
            }
        }
    }
}
