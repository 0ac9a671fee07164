//! The bounded worker pool that runs verification off the async runtime.
//!
//! A fixed number of rayon threads. [`Pool::map`] runs synchronous work: each request
//! submits one job that scores its items in parallel. [`Pool::map_async`] runs futures (step
//! scorers are async): each item's future is *polled* on the pool, so its CPU work runs there,
//! and while it waits (on a model, a server, a timer) it holds no pool thread: its waker
//! puts the next poll back on the pool. So a scorer that waits on another server, or on work
//! queued behind it on the same pool, cannot deadlock the pool the way blocking on its future
//! would. Futures are polled inside the caller's Tokio runtime context, so the I/O and timers
//! they create register with that runtime.
//!
//! When the request's deadline passes, the work is told to stop starting (or polling) items
//! and the request answers with what finished; the rest get the fallback. A panic while
//! scoring one item is caught and reported for that item. Queues stay bounded: a request
//! puts at most one pool job per item in flight, and requests are limited by admission.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
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
    pool: Arc<rayon::ThreadPool>,
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
        Ok(Self {
            pool: Arc::new(pool),
            threads,
        })
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
        take_outcomes(&slots)
    }

    /// Runs the future `f(item)` of every item on the pool (see the module docs), returning
    /// by `deadline` at the latest. Call it inside a Tokio runtime: the futures are polled in
    /// its context.
    pub async fn map_async<T, R, F, Fut>(
        &self,
        items: Vec<T>,
        mut f: F,
        deadline: Instant,
    ) -> Vec<Outcome<R>>
    where
        R: Send + 'static,
        F: FnMut(T) -> Fut,
        Fut: Future<Output = R> + Send + 'static,
    {
        let n = items.len();
        if n == 0 {
            return Vec::new();
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let batch = Arc::new(Batch {
            pool: Arc::clone(&self.pool),
            runtime: tokio::runtime::Handle::try_current().ok(),
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            left: AtomicUsize::new(n),
            cancel: AtomicBool::new(false),
            done: Mutex::new(Some(tx)),
        });
        let tasks: Vec<Arc<Task<R>>> = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                let future: BoxFuture<R> = Box::pin(f(item));
                Arc::new(Task {
                    index,
                    batch: Arc::clone(&batch),
                    state: AtomicU8::new(SCHEDULED),
                    future: Mutex::new(Some(future)),
                })
            })
            .collect();
        for t in &tasks {
            Arc::clone(t).schedule();
        }
        let finished = tokio::time::timeout_at(deadline, rx).await.is_ok();
        if !finished {
            batch.cancel.store(true, Ordering::Relaxed);
            // Drop the futures of items that are not being polled right now; the others
            // drop theirs when their poll returns.
            for t in &tasks {
                if let Ok(mut fut) = t.future.try_lock() {
                    fut.take();
                }
            }
        }
        take_outcomes(&batch.slots)
    }
}

/// The outcome in each slot; an empty slot was cut off by the deadline.
fn take_outcomes<R>(slots: &[Mutex<Option<Outcome<R>>>]) -> Vec<Outcome<R>> {
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

type BoxFuture<R> = Pin<Box<dyn Future<Output = R> + Send + 'static>>;

/// What the tasks of one [`Pool::map_async`] call share.
struct Batch<R> {
    pool: Arc<rayon::ThreadPool>,
    runtime: Option<tokio::runtime::Handle>,
    slots: Vec<Mutex<Option<Outcome<R>>>>,
    /// Items not finished yet.
    left: AtomicUsize,
    cancel: AtomicBool,
    /// Told when the last item finished.
    done: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl<R> Batch<R> {
    fn finish(&self, index: usize, out: Outcome<R>) {
        if let Ok(mut s) = self.slots[index].lock() {
            *s = Some(out);
        }
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(tx) = self.done.lock().ok().and_then(|mut d| d.take())
        {
            let _ = tx.send(());
        }
    }
}

// Task states: waiting for a wake-up, queued on the pool, being polled, woken while being
// polled (poll again), finished.
const IDLE: u8 = 0;
const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
const NOTIFIED: u8 = 3;
const DONE: u8 = 4;

/// One item's future; its waker puts the next poll on the pool.
struct Task<R> {
    index: usize,
    batch: Arc<Batch<R>>,
    state: AtomicU8,
    /// Only the one poller in state RUNNING (or the canceller) touches it.
    future: Mutex<Option<BoxFuture<R>>>,
}

impl<R: Send + 'static> Task<R> {
    fn schedule(self: Arc<Self>) {
        let pool = Arc::clone(&self.batch.pool);
        pool.spawn(move || self.run());
    }

    fn run(self: Arc<Self>) {
        self.state.store(RUNNING, Ordering::Release);
        if self.poll_once().is_ready() {
            self.state.store(DONE, Ordering::Release);
            return;
        }
        if self
            .state
            .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Woken while it was being polled: poll again, after what is queued already.
            self.state.store(SCHEDULED, Ordering::Release);
            self.schedule();
        }
    }

    /// Polls the future once; ready when the item is finished (or cancelled).
    fn poll_once(self: &Arc<Self>) -> Poll<()> {
        let Ok(mut slot) = self.future.lock() else {
            self.batch.finish(self.index, Outcome::Panicked);
            return Poll::Ready(());
        };
        let Some(fut) = slot.as_mut() else {
            return Poll::Ready(());
        };
        if self.batch.cancel.load(Ordering::Relaxed) {
            *slot = None;
            return Poll::Ready(());
        }
        let waker = Waker::from(Arc::clone(self));
        let mut cx = Context::from_waker(&waker);
        let _runtime = self.batch.runtime.as_ref().map(|h| h.enter());
        let out = match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(r)) => Outcome::Done(r),
            Err(_) => Outcome::Panicked,
        };
        *slot = None;
        self.batch.finish(self.index, out);
        Poll::Ready(())
    }
}

impl<R: Send + 'static> Wake for Task<R> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let next = match state {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                _ => return,
            };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if next == SCHEDULED {
                        Arc::clone(self).schedule();
                    }
                    return;
                }
                Err(actual) => state = actual,
            }
        }
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

    fn on_pool_thread() -> bool {
        std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("stepwise-verify-"))
    }

    #[tokio::test]
    async fn async_items_are_polled_on_the_pool_in_order() {
        let p = Pool::new(2).unwrap();
        let out = p
            .map_async(
                (0..50u64).collect(),
                |x| async move {
                    tokio::task::yield_now().await;
                    (x * 2, on_pool_thread())
                },
                Instant::now() + Duration::from_secs(10),
            )
            .await;
        let want: Vec<_> = (0..50u64).map(|x| Outcome::Done((x * 2, true))).collect();
        assert_eq!(out, want);
        assert!(
            p.map_async(Vec::<u64>::new(), |x| async move { x }, Instant::now())
                .await
                .is_empty()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn waiting_items_hold_no_pool_thread() {
        // One pool thread, 20 items that each wait 100 ms on a timer: blocking on them would
        // take 2 s; awaiting them takes about one wait.
        let p = Pool::new(1).unwrap();
        let t0 = std::time::Instant::now();
        let out = p
            .map_async(
                (0..20u64).collect(),
                |x| async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    x
                },
                Instant::now() + Duration::from_secs(30),
            )
            .await;
        assert!(out.iter().all(|o| matches!(o, Outcome::Done(_))));
        assert!(
            t0.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t0.elapsed()
        );
    }

    #[tokio::test]
    async fn an_item_waiting_on_a_later_item_does_not_deadlock() {
        // Item 0 waits for what item 1 sends; with one pool thread, blocking on item 0
        // would never let item 1 run.
        let p = Pool::new(1).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
        let mut rx = Some(rx);
        let mut tx = Some(tx);
        let out = p
            .map_async(
                vec![0u64, 1],
                move |i| {
                    let rx = if i == 0 { rx.take() } else { None };
                    let tx = if i == 1 { tx.take() } else { None };
                    async move {
                        match (rx, tx) {
                            (Some(rx), _) => rx.await.unwrap_or(0),
                            (_, Some(tx)) => {
                                let _ = tx.send(7);
                                1
                            }
                            _ => 0,
                        }
                    }
                },
                Instant::now() + Duration::from_secs(10),
            )
            .await;
        assert_eq!(out, vec![Outcome::Done(7), Outcome::Done(1)]);
    }

    #[tokio::test]
    async fn async_panics_are_caught_per_item() {
        let p = Pool::new(2).unwrap();
        let out = p
            .map_async(
                (0..4u64).collect(),
                |x| async move {
                    tokio::task::yield_now().await;
                    if x == 1 {
                        panic!("scorer bug");
                    }
                    x
                },
                Instant::now() + Duration::from_secs(60),
            )
            .await;
        let want: Vec<_> = (0..4u64)
            .map(|x| {
                if x == 1 {
                    Outcome::Panicked
                } else {
                    Outcome::Done(x)
                }
            })
            .collect();
        assert_eq!(out, want);
    }

    #[tokio::test]
    async fn async_deadline_cuts_off_waiting_items() {
        let p = Pool::new(2).unwrap();
        let t0 = std::time::Instant::now();
        let out = p
            .map_async(
                vec![0u64, 1],
                |x| async move {
                    if x == 0 {
                        std::future::pending::<()>().await;
                    }
                    x
                },
                Instant::now() + Duration::from_millis(500),
            )
            .await;
        assert_eq!(out, vec![Outcome::TimedOut, Outcome::Done(1)]);
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
}
