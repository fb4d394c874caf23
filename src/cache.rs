//! Verdict cache with single-flight (DESIGN.md, PullImage path step 5).
//!
//! Verdicts are keyed by what was verified, not by what was asked for: the target
//! digest, the policy generation and the trust-policy statement. A reloaded policy
//! bumps the generation, so an old verdict can never answer for a new policy; tags
//! never reach the key, so a moved tag cannot reuse the verdict of its old target.
//!
//! Concurrent callers for one key share one verification. The verification runs
//! inline in the first caller's (the leader's) future, and its result is published
//! through a `tokio::sync::watch` channel whose sender lives in a [`FlightGuard`].
//! If the leader's future is dropped (the kubelet gave up on its `PullImage`) or its
//! verification panics, the guard releases the key and drops the sender; every
//! waiter sees the closed channel, looks again, and exactly one of them becomes the
//! new leader and runs its own verification. Nothing is cached in that case, so a
//! panic or a cancellation never poisons a key.
//!
//! The clock is `tokio::time::Instant`, so tests drive expiry with a paused clock.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lru::LruCache;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::reference::Digest;

/// Verifications registered for sharing at one time. The kubelet pulls one image at
/// a time by default (`serializeImagePulls`) and a handful with
/// `maxParallelImagePulls`, so a node never comes near this; it only bounds the map
/// against a misbehaving client. Past it, a caller verifies on its own (its result
/// is still cached), which costs work but neither memory in the map nor correctness.
pub const MAX_IN_FLIGHT: usize = 1024;

/// Sizes and lifetimes of cached verdicts (`[cache]` in pullgate's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Cached verdicts kept at most; the least recently used is evicted first.
    /// Default 4096: a node holds a few hundred images, and an entry is a digest, a
    /// statement name and a verdict, well under a KiB. 0 disables caching (callers
    /// still share concurrent verifications).
    pub max_entries: usize,
    /// How long an allow is reused. Default 1 h: a signature, once verified for a
    /// digest under a given policy, stays valid until the policy changes (which
    /// bypasses the cache) or a certificate is revoked; an hour bounds the latter.
    pub allow_ttl: Duration,
    /// How long a permanent denial is reused. Default 30 s: the kubelet's back-off
    /// retries of a refused pull must not hammer the registry, but a signature pushed
    /// to fix the denial is picked up soon.
    pub deny_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 4096,
            allow_ttl: Duration::from_secs(60 * 60),
            deny_ttl: Duration::from_secs(30),
        }
    }
}

/// What a verdict was computed for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The resolved target digest (never the tag).
    pub digest: Digest,
    /// The policy generation the verdict was computed under; bumped on every reload.
    pub policy_generation: u64,
    /// Name of the trust-policy statement that applied.
    pub statement: String,
}

/// A verification's result, and whether it may be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cacheable<V> {
    /// An allow: reused for `allow_ttl`.
    Allow(V),
    /// An allow whose grounds end after the given time from now (a signature's
    /// `io.cncf.notary.expiry`, a certificate's notAfter checked against the clock):
    /// reused for that or `allow_ttl`, whichever is shorter, so a cached allow never
    /// outlives what it was based on. Zero: not cached.
    AllowUntil(V, Duration),
    /// A permanent denial (unsigned, untrusted, ...): reused for `deny_ttl`.
    Deny(V),
    /// A failure that may go away on retry (registry down, timeout): handed to the
    /// callers that shared this run, never cached.
    Transient(V),
}

impl<V> Cacheable<V> {
    /// The value and how long it may be reused (`None`: not at all).
    fn into_parts(self, config: &CacheConfig) -> (V, Option<Duration>) {
        match self {
            Cacheable::Allow(value) => (value, Some(config.allow_ttl)),
            Cacheable::AllowUntil(value, left) => (value, Some(config.allow_ttl.min(left))),
            Cacheable::Deny(value) => (value, Some(config.deny_ttl)),
            Cacheable::Transient(value) => (value, None),
        }
    }
}

/// Where a caller's value came from (the metrics' hit/miss label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// A fresh cached verdict; nothing ran.
    Hit,
    /// This caller ran the verification.
    Miss,
    /// This caller waited for a verification another caller ran.
    Joined,
}

impl Lookup {
    /// The value in the audit line and the metrics' `cache` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
            Lookup::Joined => "joined",
        }
    }
}

/// Bounded verdict cache with single-flight verification. Cheap to clone; clones
/// share one cache.
pub struct VerdictCache<V: Clone + Send + Sync + 'static> {
    inner: Arc<Inner<V>>,
}

struct Inner<V> {
    config: CacheConfig,
    state: Mutex<State<V>>,
}

struct State<V> {
    /// `None` when `max_entries` is 0.
    entries: Option<LruCache<CacheKey, Entry<V>>>,
    in_flight: HashMap<CacheKey, Flight<V>>,
    /// Tells a guard whether the flight registered under its key is still its own.
    next_flight: u64,
    /// Results of older generations that finish after a reload are not stored.
    min_generation: u64,
}

struct Entry<V> {
    value: V,
    expires: Instant,
}

struct Flight<V> {
    id: u64,
    /// `None` until the leader publishes; closed without a value if it went away.
    result: watch::Receiver<Option<V>>,
}

/// What a caller does next, decided under the lock.
enum Step<V: Clone + Send + Sync + 'static> {
    Hit(V),
    Join(watch::Receiver<Option<V>>),
    Lead(FlightGuard<V>),
    /// The in-flight map is full: verify without sharing.
    Alone,
}

impl<V: Clone + Send + Sync + 'static> Clone for VerdictCache<V> {
    fn clone(&self) -> Self {
        VerdictCache {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<V: Clone + Send + Sync + 'static> fmt::Debug for VerdictCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("VerdictCache")
            .field("config", &self.inner.config)
            .field("entries", &state.entries.as_ref().map_or(0, LruCache::len))
            .field("in_flight", &state.in_flight.len())
            .finish()
    }
}

impl<V: Clone + Send + Sync + 'static> VerdictCache<V> {
    pub fn new(config: CacheConfig) -> Self {
        let entries = NonZeroUsize::new(config.max_entries).map(LruCache::new);
        VerdictCache {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State {
                    entries,
                    in_flight: HashMap::new(),
                    next_flight: 0,
                    min_generation: 0,
                }),
            }),
        }
    }

    /// Returns the cached value for `key` if fresh; otherwise runs `verify` — but
    /// concurrent callers for the same key share ONE run (single-flight) and all get
    /// its result. Allow results are cached for `allow_ttl`, Deny for `deny_ttl`,
    /// Transient not at all.
    ///
    /// `verify` runs at most once, and only if this caller leads. If the leader is
    /// cancelled or its `verify` panics, the waiters retry and one of them leads with
    /// its own `verify`; the panic itself propagates to the leader's caller only.
    pub async fn get_or_verify<F, Fut>(&self, key: CacheKey, verify: F) -> (V, Lookup)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Cacheable<V>> + Send,
    {
        let guard = loop {
            match self.step(&key) {
                Step::Hit(value) => return (value, Lookup::Hit),
                Step::Join(result) => {
                    if let Some(value) = shared_result(result).await {
                        return (value, Lookup::Joined);
                    }
                    // The leader went away without a result: look again.
                }
                Step::Lead(guard) => break Some(guard),
                Step::Alone => break None,
            }
        };
        let (value, ttl) = verify().await.into_parts(&self.inner.config);
        match guard {
            Some(guard) => guard.publish(value.clone(), ttl),
            None => self.inner.lock().store(key, value.clone(), ttl),
        }
        (value, Lookup::Miss)
    }

    /// Cached verdicts, counting expired ones not yet evicted.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.as_ref().map_or(0, LruCache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry of older policy generations (called on reload), and keeps
    /// verifications of older generations still running from storing their result.
    /// Generations only grow: a lower `generation` than seen before changes nothing.
    pub fn retain_generation(&self, generation: u64) {
        let mut state = self.inner.lock();
        state.min_generation = state.min_generation.max(generation);
        let min_generation = state.min_generation;
        if let Some(entries) = state.entries.as_mut() {
            entries.retain(|key, _| key.policy_generation >= min_generation);
        }
    }

    fn step(&self, key: &CacheKey) -> Step<V> {
        let now = Instant::now();
        let mut state = self.inner.lock();
        if let Some(entries) = state.entries.as_mut() {
            match entries.get(key).map(|e| (e.expires > now, e.value.clone())) {
                Some((true, value)) => return Step::Hit(value),
                Some((false, _)) => {
                    entries.pop(key);
                }
                None => {}
            }
        }
        if let Some(flight) = state.in_flight.get(key) {
            return Step::Join(flight.result.clone());
        }
        if state.in_flight.len() >= MAX_IN_FLIGHT {
            return Step::Alone;
        }
        let id = state.next_flight;
        state.next_flight = id.wrapping_add(1);
        let (sender, result) = watch::channel(None);
        state.in_flight.insert(key.clone(), Flight { id, result });
        Step::Lead(FlightGuard {
            inner: Arc::clone(&self.inner),
            key: key.clone(),
            id,
            sender,
            published: false,
        })
    }
}

impl<V> Inner<V> {
    fn lock(&self) -> MutexGuard<'_, State<V>> {
        // The state is consistent whenever the lock is released: nothing user-supplied
        // runs under it, so a poisoned lock still guards a usable cache.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<V> State<V> {
    fn store(&mut self, key: CacheKey, value: V, ttl: Option<Duration>) {
        let Some(ttl) = ttl.filter(|ttl| !ttl.is_zero()) else {
            return;
        };
        if key.policy_generation < self.min_generation {
            return;
        }
        // A TTL too large to represent is not cached at all rather than forever.
        let Some(expires) = Instant::now().checked_add(ttl) else {
            return;
        };
        if let Some(entries) = self.entries.as_mut() {
            entries.put(key, Entry { value, expires });
        }
    }
}

/// Held by the leader for the duration of its verification. Dropping it without
/// publishing (cancellation, panic) frees the key and closes the channel, which
/// wakes the waiters to retry.
struct FlightGuard<V: Clone + Send + Sync + 'static> {
    inner: Arc<Inner<V>>,
    key: CacheKey,
    id: u64,
    sender: watch::Sender<Option<V>>,
    published: bool,
}

impl<V: Clone + Send + Sync + 'static> FlightGuard<V> {
    fn publish(mut self, value: V, ttl: Option<Duration>) {
        {
            let mut state = self.inner.lock();
            state.store(self.key.clone(), value.clone(), ttl);
            release(&mut state, &self.key, self.id);
        }
        self.published = true;
        // With the flight released first, a caller arriving now either hits the
        // stored entry or, for a transient result, starts a fresh run.
        self.sender.send_replace(Some(value));
    }
}

impl<V: Clone + Send + Sync + 'static> Drop for FlightGuard<V> {
    fn drop(&mut self) {
        if !self.published {
            release(&mut self.inner.lock(), &self.key, self.id);
        }
        // `sender` drops after this, closing the channel for waiters.
    }
}

fn release<V>(state: &mut State<V>, key: &CacheKey, id: u64) {
    if state
        .in_flight
        .get(key)
        .is_some_and(|flight| flight.id == id)
    {
        state.in_flight.remove(key);
    }
}

/// The leader's published value, or `None` if it went away without one.
async fn shared_result<V: Clone>(mut result: watch::Receiver<Option<V>>) -> Option<V> {
    match result.wait_for(Option::is_some).await {
        Ok(value) => value.clone(),
        Err(_closed) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::DigestAlgorithm;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::task::JoinSet;
    use tokio::time::{advance, sleep, timeout};

    type Verify = Pin<Box<dyn Future<Output = Cacheable<&'static str>> + Send>>;

    fn key(n: u8, generation: u64) -> CacheKey {
        CacheKey {
            digest: Digest::of(DigestAlgorithm::Sha256, &[n]),
            policy_generation: generation,
            statement: "prod".to_string(),
        }
    }

    /// A verification that counts its runs, takes `delay`, and returns `outcome`.
    fn verify(
        runs: &Arc<AtomicUsize>,
        delay: Duration,
        outcome: Cacheable<&'static str>,
    ) -> impl FnOnce() -> Verify + Send + 'static {
        let runs = Arc::clone(runs);
        move || {
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                sleep(delay).await;
                outcome
            })
        }
    }

    fn allow(runs: &Arc<AtomicUsize>, value: &'static str) -> impl FnOnce() -> Verify {
        verify(runs, Duration::ZERO, Cacheable::Allow(value))
    }

    fn panicking(runs: &Arc<AtomicUsize>, delay: Duration) -> impl FnOnce() -> Verify {
        let runs = Arc::clone(runs);
        move || {
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                sleep(delay).await;
                panic!("verifier bug (deliberate, from a test)");
            })
        }
    }

    fn cache() -> VerdictCache<&'static str> {
        VerdictCache::new(CacheConfig::default())
    }

    const BOUND: Duration = Duration::from_secs(600);

    /// The intercept runs inside tonic handlers, which need `Send` futures.
    #[test]
    fn get_or_verify_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        assert_send(&cache.get_or_verify(key(1, 1), allow(&runs, "ok")));
    }

    #[tokio::test]
    async fn hit_after_miss() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        assert_eq!(
            cache.get_or_verify(key(1, 1), allow(&runs, "ok")).await,
            ("ok", Lookup::Miss)
        );
        assert_eq!(
            cache.get_or_verify(key(1, 1), allow(&runs, "other")).await,
            ("ok", Lookup::Hit)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn allow_expires_after_allow_ttl() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        assert_eq!(
            cache.get_or_verify(key(1, 1), allow(&runs, "a")).await,
            ("a", Lookup::Miss)
        );
        advance(Duration::from_secs(3599)).await;
        assert_eq!(
            cache.get_or_verify(key(1, 1), allow(&runs, "b")).await,
            ("a", Lookup::Hit)
        );
        advance(Duration::from_secs(1)).await;
        assert_eq!(
            cache.get_or_verify(key(1, 1), allow(&runs, "c")).await,
            ("c", Lookup::Miss)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    /// Issue 9 item 3: an allow based on a signature expiring in 2 s was reused for
    /// the whole `allow_ttl` (1 h).
    #[tokio::test(start_paused = true)]
    async fn allow_expiring_before_allow_ttl_is_not_reused_past_it() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let until = |value| {
            verify(
                &runs,
                Duration::ZERO,
                Cacheable::AllowUntil(value, Duration::from_secs(2)),
            )
        };
        assert_eq!(
            cache.get_or_verify(key(1, 1), until("a")).await,
            ("a", Lookup::Miss)
        );
        advance(Duration::from_millis(1999)).await;
        assert_eq!(
            cache.get_or_verify(key(1, 1), until("b")).await,
            ("a", Lookup::Hit)
        );
        advance(Duration::from_millis(1)).await;
        assert_eq!(
            cache
                .get_or_verify(
                    key(1, 1),
                    verify(&runs, Duration::ZERO, Cacheable::Deny("expired"))
                )
                .await,
            ("expired", Lookup::Miss)
        );
        // A later bound than allow_ttl does not extend it.
        let long = |value| {
            verify(
                &runs,
                Duration::ZERO,
                Cacheable::AllowUntil(value, Duration::from_secs(7200)),
            )
        };
        assert_eq!(
            cache.get_or_verify(key(2, 1), long("c")).await,
            ("c", Lookup::Miss)
        );
        advance(Duration::from_secs(3600)).await;
        assert_eq!(
            cache.get_or_verify(key(2, 1), long("d")).await,
            ("d", Lookup::Miss)
        );
        // Already over: not cached at all.
        let over = |value| {
            verify(
                &runs,
                Duration::ZERO,
                Cacheable::AllowUntil(value, Duration::ZERO),
            )
        };
        assert_eq!(
            cache.get_or_verify(key(3, 1), over("e")).await,
            ("e", Lookup::Miss)
        );
        assert_eq!(
            cache.get_or_verify(key(3, 1), over("f")).await,
            ("f", Lookup::Miss)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn deny_expires_after_deny_ttl() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let deny = |value| verify(&runs, Duration::ZERO, Cacheable::Deny(value));
        assert_eq!(
            cache.get_or_verify(key(1, 1), deny("unsigned")).await,
            ("unsigned", Lookup::Miss)
        );
        advance(Duration::from_secs(29)).await;
        assert_eq!(
            cache.get_or_verify(key(1, 1), deny("other")).await,
            ("unsigned", Lookup::Hit)
        );
        advance(Duration::from_secs(1)).await;
        assert_eq!(
            cache
                .get_or_verify(key(1, 1), allow(&runs, "signed now"))
                .await,
            ("signed now", Lookup::Miss)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn transient_is_never_cached() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        for value in ["registry down", "still down"] {
            let transient = verify(&runs, Duration::ZERO, Cacheable::Transient(value));
            assert_eq!(
                cache.get_or_verify(key(1, 1), transient).await,
                (value, Lookup::Miss)
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn new_generation_or_statement_runs_again() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        cache.get_or_verify(key(1, 1), allow(&runs, "gen1")).await;
        assert_eq!(
            cache.get_or_verify(key(1, 2), allow(&runs, "gen2")).await,
            ("gen2", Lookup::Miss)
        );
        let other_statement = CacheKey {
            statement: "staging".to_string(),
            ..key(1, 2)
        };
        assert_eq!(
            cache
                .get_or_verify(other_statement, allow(&runs, "staging"))
                .await,
            ("staging", Lookup::Miss)
        );
        assert_eq!(
            cache.get_or_verify(key(1, 1), allow(&runs, "x")).await,
            ("gen1", Lookup::Hit)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn lru_bound_evicts_least_recently_used() {
        let cache = VerdictCache::new(CacheConfig {
            max_entries: 2,
            ..CacheConfig::default()
        });
        let runs = Arc::new(AtomicUsize::new(0));
        cache.get_or_verify(key(1, 1), allow(&runs, "a")).await;
        cache.get_or_verify(key(2, 1), allow(&runs, "b")).await;
        // Touch a, so b is the least recently used when c arrives.
        assert_eq!(
            cache.get_or_verify(key(1, 1), allow(&runs, "x")).await,
            ("a", Lookup::Hit)
        );
        cache.get_or_verify(key(3, 1), allow(&runs, "c")).await;
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.get_or_verify(key(1, 1), allow(&runs, "x")).await,
            ("a", Lookup::Hit)
        );
        assert_eq!(
            cache.get_or_verify(key(3, 1), allow(&runs, "x")).await,
            ("c", Lookup::Hit)
        );
        assert_eq!(
            cache
                .get_or_verify(key(2, 1), allow(&runs, "b again"))
                .await,
            ("b again", Lookup::Miss)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn zero_max_entries_caches_nothing() {
        let cache = VerdictCache::new(CacheConfig {
            max_entries: 0,
            ..CacheConfig::default()
        });
        let runs = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            assert_eq!(
                cache.get_or_verify(key(1, 1), allow(&runs, "ok")).await,
                ("ok", Lookup::Miss)
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(cache.is_empty());
    }

    /// Spawns `n` callers for `key`; each verifies with `make(i)`.
    fn spawn_callers<F>(
        cache: &VerdictCache<&'static str>,
        tasks: &mut JoinSet<(&'static str, Lookup)>,
        key: &CacheKey,
        n: usize,
        make: impl Fn(usize) -> F,
    ) where
        F: FnOnce() -> Verify + Send + 'static,
    {
        for i in 0..n {
            let (cache, key, verify) = (cache.clone(), key.clone(), make(i));
            tasks.spawn(async move { cache.get_or_verify(key, verify).await });
        }
    }

    async fn outcomes(mut tasks: JoinSet<(&'static str, Lookup)>) -> Vec<(&'static str, Lookup)> {
        let mut all = Vec::new();
        while let Some(joined) = timeout(BOUND, tasks.join_next()).await.expect("no hang") {
            all.push(joined.expect("caller task finished"));
        }
        all
    }

    fn count(outcomes: &[(&'static str, Lookup)], lookup: Lookup) -> usize {
        outcomes.iter().filter(|(_, l)| *l == lookup).count()
    }

    #[tokio::test(start_paused = true)]
    async fn fifty_concurrent_callers_share_one_run() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        spawn_callers(&cache, &mut tasks, &key(1, 1), 50, |_| {
            verify(&runs, Duration::from_secs(10), Cacheable::Allow("verified"))
        });
        let all = outcomes(tasks).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(all.len(), 50);
        assert!(all.iter().all(|(value, _)| *value == "verified"));
        assert_eq!(count(&all, Lookup::Miss), 1);
        assert_eq!(count(&all, Lookup::Joined), 49);
        assert_eq!(
            cache.get_or_verify(key(1, 1), allow(&runs, "x")).await,
            ("verified", Lookup::Hit)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_a_transient_result_but_do_not_cache_it() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        spawn_callers(&cache, &mut tasks, &key(1, 1), 5, |_| {
            verify(
                &runs,
                Duration::from_secs(10),
                Cacheable::Transient("timeout"),
            )
        });
        let all = outcomes(tasks).await;
        assert!(all.iter().all(|(value, _)| *value == "timeout"));
        assert_eq!(
            (count(&all, Lookup::Miss), count(&all, Lookup::Joined)),
            (1, 4)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(cache.is_empty());
        assert_eq!(
            cache.get_or_verify(key(1, 1), allow(&runs, "back")).await,
            ("back", Lookup::Miss)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn aborted_leader_hands_over_to_exactly_one_waiter() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let leader = {
            let (cache, verify) = (
                cache.clone(),
                verify(&runs, Duration::from_secs(10), Cacheable::Allow("leader")),
            );
            tokio::spawn(async move { cache.get_or_verify(key(1, 1), verify).await })
        };
        // Let the leader register before the waiters arrive.
        sleep(Duration::from_secs(1)).await;
        let mut tasks = JoinSet::new();
        spawn_callers(&cache, &mut tasks, &key(1, 1), 5, |_| {
            verify(&runs, Duration::from_secs(10), Cacheable::Allow("waiter"))
        });
        sleep(Duration::from_secs(1)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        leader.abort();
        assert!(leader.await.expect_err("aborted").is_cancelled());

        let all = outcomes(tasks).await;
        assert!(all.iter().all(|(value, _)| *value == "waiter"));
        assert_eq!(
            (count(&all, Lookup::Miss), count(&all, Lookup::Joined)),
            (1, 4)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(
            cache.get_or_verify(key(1, 1), allow(&runs, "x")).await,
            ("waiter", Lookup::Hit)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn leader_future_dropped_by_timeout_does_not_strand_a_waiter() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let leader = cache.get_or_verify(
            key(1, 1),
            verify(&runs, Duration::from_secs(10), Cacheable::Allow("leader")),
        );
        let waiter = async {
            // Arrive while the leader is running.
            sleep(Duration::from_secs(1)).await;
            cache
                .get_or_verify(
                    key(1, 1),
                    verify(&runs, Duration::from_secs(10), Cacheable::Allow("waiter")),
                )
                .await
        };
        let (leader, waiter) = tokio::join!(timeout(Duration::from_secs(2), leader), async {
            timeout(BOUND, waiter).await
        });
        assert!(leader.is_err(), "the leader's future was dropped at 2 s");
        assert_eq!(waiter.expect("no hang"), ("waiter", Lookup::Miss));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn panic_in_verify_is_not_cached_and_runs_again() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let panicked = {
            let (cache, verify) = (cache.clone(), panicking(&runs, Duration::ZERO));
            tokio::spawn(async move { cache.get_or_verify(key(1, 1), verify).await })
        };
        assert!(panicked.await.expect_err("verify panicked").is_panic());
        assert!(cache.is_empty());
        assert_eq!(
            cache.get_or_verify(key(1, 1), allow(&runs, "ok")).await,
            ("ok", Lookup::Miss)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn panic_in_leader_hands_over_to_a_waiter() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let leader = {
            let (cache, verify) = (cache.clone(), panicking(&runs, Duration::from_secs(10)));
            tokio::spawn(async move { cache.get_or_verify(key(1, 1), verify).await })
        };
        sleep(Duration::from_secs(1)).await;
        let mut tasks = JoinSet::new();
        spawn_callers(&cache, &mut tasks, &key(1, 1), 3, |_| {
            verify(&runs, Duration::from_secs(10), Cacheable::Allow("waiter"))
        });
        assert!(leader.await.expect_err("verify panicked").is_panic());
        let all = outcomes(tasks).await;
        assert!(all.iter().all(|(value, _)| *value == "waiter"));
        assert_eq!(
            (count(&all, Lookup::Miss), count(&all, Lookup::Joined)),
            (1, 2)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn retain_generation_drops_old_entries() {
        let cache = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        for generation in 1..=3 {
            cache
                .get_or_verify(key(1, generation), allow(&runs, "old"))
                .await;
        }
        // A generation-3 verification still running when generation 4 arrives.
        let late = {
            let (cache, verify) = (
                cache.clone(),
                verify(&runs, Duration::from_secs(10), Cacheable::Allow("late")),
            );
            tokio::spawn(async move { cache.get_or_verify(key(2, 3), verify).await })
        };
        sleep(Duration::from_secs(1)).await;
        cache.retain_generation(2);
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.get_or_verify(key(1, 2), allow(&runs, "x")).await,
            ("old", Lookup::Hit)
        );
        cache.retain_generation(4);
        assert!(cache.is_empty());
        assert_eq!(late.await.expect("late caller"), ("late", Lookup::Miss));
        assert!(cache.is_empty(), "a pre-reload result is not stored");
        // Generations only grow: going back does not re-admit old ones.
        cache.retain_generation(1);
        cache.get_or_verify(key(1, 3), allow(&runs, "stale")).await;
        assert!(cache.is_empty());
        assert_eq!(runs.load(Ordering::SeqCst), 5);
    }
}
