//! Brute-force brakes for login and password changes, checked before any password is hashed.
//!
//! Per username: 5 failures in 15 minutes lock that name until the oldest failure ages out.
//! Per client address: failures (not attempts) are counted; past 60 in a minute the address is
//! *hot*. A whole team often shares one address (a carrier's NAT, an office, a proxy nobody told
//! the server about), so a hot address does not lock everyone out: a name with no recent failure
//! may still try, from a small separate budget of 20 failures a minute for that address. A client
//! spraying wrong passwords from one address therefore costs at most 80 password hashes a minute,
//! and the people behind that address who type their own password right still get in.
//!
//! For a name, an attempt in flight counts as a failure until it ends (a success gives its place
//! back), so a burst of simultaneous guesses is held to the same five as slow ones. For an
//! address, at most 100 attempts may be in flight at once (an office signing in together fits;
//! a burst of guesses does not), which with the counts above holds one address to about 180
//! password hashes a minute. IPv6 clients count by their /64, the block one subscriber gets.
//!
//! Failures are recorded in the store too, and taken from there before every admission
//! ([`LoginThrottle::share`]), so with several API nodes the limits count the county's failures,
//! not one node's. Attempts in flight and a hot address's separate budget are counted per node.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const USER_FAILURES: usize = 5;
const USER_WINDOW: Duration = Duration::from_secs(15 * 60);
const ADDRESS_FAILURES: usize = 60;
const ADDRESS_WINDOW: Duration = Duration::from_secs(60);
const CLEAN_BUDGET: usize = 20;
/// How long the store must keep a failure of a name or an address.
pub const NAME_WINDOW_MS: u64 = USER_WINDOW.as_millis() as u64;
pub const ADDRESS_WINDOW_MS: u64 = ADDRESS_WINDOW.as_millis() as u64;
const ADDRESS_IN_FLIGHT: usize = 100;
/// Past this many tracked names or addresses, finished entries are swept so memory stays bounded.
const SWEEP_AT: usize = 10_000;

/// Recent failures, and attempts still in flight (counted as failures until they end).
#[derive(Default)]
struct Counter {
    failures: VecDeque<Instant>,
    pending: usize,
}

impl Counter {
    /// Failures within `window` plus attempts in flight.
    fn load(&mut self, now: Instant, window: Duration) -> usize {
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.failures.pop_front();
        }
        self.failures.len() + self.pending
    }

    /// When there will be room under `limit`: when the oldest failure ages out if failures
    /// alone fill it, else in a second (an attempt in flight ends soon).
    fn retry_after(&self, now: Instant, window: Duration, limit: usize) -> Duration {
        let wait = match self.failures.front() {
            Some(oldest) if self.failures.len() >= limit => {
                (*oldest + window).saturating_duration_since(now)
            }
            _ => Duration::ZERO,
        };
        wait.max(Duration::from_secs(1))
    }

    /// Whether nothing about it matters any more.
    fn finished(&self, now: Instant, window: Duration) -> bool {
        self.pending == 0
            && self
                .failures
                .back()
                .is_none_or(|t| now.duration_since(*t) >= window)
    }

    fn end(&mut self, failed_at: Option<Instant>) {
        self.pending = self.pending.saturating_sub(1);
        self.failures.extend(failed_at);
    }
}

/// What one address has done lately.
#[derive(Default)]
struct Address {
    all: Counter,
    /// Attempts admitted while the address was hot, from its separate budget.
    clean: Counter,
}

#[derive(Default)]
pub struct LoginThrottle {
    names: Mutex<HashMap<String, Counter>>,
    addresses: Mutex<HashMap<IpAddr, Address>>,
}

/// An admitted attempt, holding its place in the counts. Report how it ended with `failed` or
/// `succeeded`; dropped unreported (a server fault), it counts as neither.
#[must_use = "report whether the attempt failed or succeeded"]
pub struct Attempt<'t> {
    throttle: &'t LoginThrottle,
    name: Option<String>,
    address: IpAddr,
    /// Admitted from a hot address's separate budget.
    clean: bool,
    ended: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The key an address is counted under: itself (an IPv4 client reaching an IPv6 listener as
/// `::ffff:a.b.c.d` counts as `a.b.c.d`), or its /64 for IPv6.
fn subscriber(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        v4 @ IpAddr::V4(_) => v4,
        IpAddr::V6(v6) => {
            let block = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(block.into())
        }
    }
}

/// The store's subject for failures of `name`.
pub fn name_subject(name: &str) -> String {
    format!("n/{name}")
}

/// The store's subject for failures from `address` (counted by subscriber, as here).
pub fn address_subject(address: IpAddr) -> String {
    format!("a/{}", subscriber(address))
}

/// Failures as ages at `now`, oldest first.
fn failures_at(ages: &[Duration], now: Instant) -> VecDeque<Instant> {
    let mut failures: VecDeque<Instant> = ages
        .iter()
        .filter_map(|age| now.checked_sub(*age))
        .collect();
    failures.make_contiguous().sort();
    failures
}

impl LoginThrottle {
    /// Takes in the failures every node recorded for `name` and `address` (how long ago each
    /// was): they replace this node's own, which they include.
    pub fn share(
        &self,
        name: Option<(&str, &[Duration])>,
        address: (IpAddr, &[Duration]),
        now: Instant,
    ) {
        if let Some((name, ages)) = name {
            let mut names = lock(&self.names);
            if !ages.is_empty() || names.contains_key(name) {
                names.entry(name.to_owned()).or_default().failures = failures_at(ages, now);
            }
        }
        let (address, ages) = address;
        let mut addresses = lock(&self.addresses);
        let key = subscriber(address);
        if !ages.is_empty() || addresses.contains_key(&key) {
            addresses.entry(key).or_default().all.failures = failures_at(ages, now);
        }
    }

    /// Admits an attempt for `name` (`None`: a name that breaks the username rules, which is
    /// never tracked by name) from `address`, or says how long to wait.
    pub fn admit(
        &self,
        name: Option<&str>,
        address: IpAddr,
        now: Instant,
    ) -> Result<Attempt<'_>, Duration> {
        let address = subscriber(address);
        // Both locks, always in this order, so a refusal by the address undoes nothing.
        let mut names = lock(&self.names);
        let mut addresses = lock(&self.addresses);
        if names.len() >= SWEEP_AT {
            names.retain(|_, counter| !counter.finished(now, USER_WINDOW));
        }
        if addresses.len() >= SWEEP_AT {
            addresses.retain(|_, state| {
                !state.all.finished(now, ADDRESS_WINDOW)
                    || !state.clean.finished(now, ADDRESS_WINDOW)
            });
        }
        let mut by_name = match name {
            Some(name) => {
                let counter = names.entry(name.to_owned()).or_default();
                if counter.load(now, USER_WINDOW) >= USER_FAILURES {
                    return Err(counter.retry_after(now, USER_WINDOW, USER_FAILURES));
                }
                Some(counter)
            }
            None => None,
        };
        let state = addresses.entry(address).or_default();
        let load = state.all.load(now, ADDRESS_WINDOW);
        if state.all.pending >= ADDRESS_IN_FLIGHT {
            return Err(Duration::from_secs(1));
        }
        // Hot by failures that happened; attempts in flight are held by the cap above.
        let hot = load - state.all.pending >= ADDRESS_FAILURES;
        if hot {
            let name_clear = by_name
                .as_mut()
                .is_some_and(|counter| counter.load(now, USER_WINDOW) == 0);
            let budget_left = state.clean.load(now, ADDRESS_WINDOW) < CLEAN_BUDGET;
            if !name_clear || !budget_left {
                return Err(if budget_left {
                    state.all.retry_after(now, ADDRESS_WINDOW, ADDRESS_FAILURES)
                } else {
                    state.clean.retry_after(now, ADDRESS_WINDOW, CLEAN_BUDGET)
                });
            }
            state.clean.pending += 1;
        }
        state.all.pending += 1;
        if let Some(counter) = by_name {
            counter.pending += 1;
        }
        Ok(Attempt {
            throttle: self,
            name: name.map(str::to_owned),
            address,
            clean: hot,
            ended: false,
        })
    }
}

impl Attempt<'_> {
    /// A wrong password, an unknown or malformed name, a disabled account.
    pub fn failed(mut self, now: Instant) {
        self.end(Some(now));
    }

    /// The right password: the name's failures are forgiven.
    pub fn succeeded(mut self) {
        self.end(None);
        if let Some(name) = &self.name {
            let mut names = lock(&self.throttle.names);
            if let Some(counter) = names.get_mut(name) {
                counter.failures.clear();
            }
        }
    }

    /// Gives back this attempt's places, recording a failure at `failed_at` if it failed.
    fn end(&mut self, failed_at: Option<Instant>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let mut names = lock(&self.throttle.names);
        let mut addresses = lock(&self.throttle.addresses);
        if let Some(counter) = self.name.as_ref().and_then(|name| names.get_mut(name)) {
            counter.end(failed_at);
        }
        if let Some(state) = addresses.get_mut(&self.address) {
            state.all.end(failed_at);
            if self.clean {
                state.clean.end(failed_at);
            }
        }
    }
}

impl Drop for Attempt<'_> {
    /// An attempt that never said how it ended (a server fault) counts as neither: it only
    /// gives its places back.
    fn drop(&mut self) {
        self.end(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn failures_recorded_by_other_nodes_count_here() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        let elsewhere = [Duration::from_secs(60); 5];
        throttle.share(Some(("wei", &elsewhere)), (HOME, &[]), now);
        let wait = throttle.admit(Some("wei"), HOME, now).err().unwrap();
        assert_eq!(wait, USER_WINDOW - Duration::from_secs(60));
        // The store forgot them (a success elsewhere): so does this node.
        throttle.share(Some(("wei", &[])), (HOME, &[]), now);
        assert!(throttle.admit(Some("wei"), HOME, now).is_ok());
    }

    #[test]
    fn five_failures_lock_the_name_until_the_first_ages_out() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..5 {
            let attempt = throttle.admit(Some("wei"), HOME, start).expect("admitted");
            attempt.failed(start + Duration::from_secs(i));
        }
        let wait = throttle
            .admit(Some("wei"), HOME, start + Duration::from_secs(10))
            .err()
            .unwrap();
        assert_eq!(wait, USER_WINDOW - Duration::from_secs(10));
        assert!(throttle.admit(Some("li"), HOME, start).is_ok());
        assert!(
            throttle
                .admit(Some("wei"), HOME, start + USER_WINDOW)
                .is_ok()
        );
    }

    #[test]
    fn a_success_forgives_earlier_failures() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..4 {
            throttle.admit(Some("wei"), HOME, now).unwrap().failed(now);
        }
        throttle.admit(Some("wei"), HOME, now).unwrap().succeeded();
        throttle.admit(Some("wei"), HOME, now).unwrap().failed(now);
        assert!(throttle.admit(Some("wei"), HOME, now).is_ok());
    }

    #[test]
    fn successful_attempts_never_heat_an_address() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..1000 {
            let attempt = throttle.admit(Some(&format!("user{i}")), HOME, now);
            attempt.expect("admitted").succeeded();
        }
        assert!(throttle.admit(Some("another"), HOME, now).is_ok());
    }

    #[test]
    fn a_hot_address_still_admits_names_without_failures_from_a_small_budget() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..ADDRESS_FAILURES {
            throttle.admit(None, HOME, now).unwrap().failed(now);
        }
        assert!(
            throttle.admit(None, HOME, now).is_err(),
            "malformed names stop"
        );
        throttle
            .admit(Some("spray0"), HOME, now)
            .unwrap()
            .failed(now);
        assert!(
            throttle.admit(Some("spray0"), HOME, now).is_err(),
            "a name with a failure stops"
        );
        // Colleagues behind the same address sign in.
        for i in 0..100 {
            let attempt = throttle.admit(Some(&format!("colleague{i}")), HOME, now);
            attempt.expect("admitted").succeeded();
        }
        // Spraying new names spends the budget, and then the address waits.
        for i in 1..CLEAN_BUDGET {
            let attempt = throttle.admit(Some(&format!("spray{i}")), HOME, now);
            attempt.expect("within the budget").failed(now);
        }
        assert!(throttle.admit(Some("colleague0"), HOME, now).is_err());
        assert!(
            throttle
                .admit(Some("colleague0"), HOME, now + ADDRESS_WINDOW)
                .is_ok()
        );
    }

    #[test]
    fn attempts_in_flight_count_as_failures_until_they_end() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        let burst: Vec<_> = (0..USER_FAILURES)
            .map(|_| throttle.admit(Some("wei"), HOME, now).expect("admitted"))
            .collect();
        assert!(
            throttle.admit(Some("wei"), HOME, now).is_err(),
            "a sixth simultaneous guess waits"
        );
        drop(burst);
        assert!(throttle.admit(Some("wei"), HOME, now).is_ok());

        // An office signing in at once: a hundred attempts in flight, none of them failed.
        let office: Vec<_> = (0..ADDRESS_IN_FLIGHT)
            .map(|i| {
                throttle
                    .admit(Some(&format!("n{i}")), HOME, now)
                    .expect("admitted")
            })
            .collect();
        assert!(
            office.iter().all(|attempt| !attempt.clean),
            "not hot: nothing failed"
        );
        let wait = throttle.admit(Some("n-late"), HOME, now).err().unwrap();
        assert_eq!(
            wait,
            Duration::from_secs(1),
            "the hundred-and-first waits a second"
        );
        office.into_iter().for_each(Attempt::succeeded);
        assert!(throttle.admit(Some("n-late"), HOME, now).is_ok());
    }

    #[test]
    fn an_ipv4_client_on_an_ipv6_listener_counts_as_itself() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        let mapped: IpAddr = "::ffff:127.0.0.20".parse().unwrap();
        for _ in 0..ADDRESS_FAILURES {
            throttle.admit(None, mapped, now).unwrap().failed(now);
        }
        assert!(throttle.admit(None, mapped, now).is_err());
        let neighbour: IpAddr = "::ffff:127.0.0.21".parse().unwrap();
        assert!(throttle.admit(None, neighbour, now).is_ok());
    }

    #[test]
    fn an_ipv6_subscriber_counts_as_one_address() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..ADDRESS_FAILURES {
            let address: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
            throttle.admit(None, address, now).unwrap().failed(now);
        }
        let neighbour: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(throttle.admit(None, neighbour, now).is_err());
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(throttle.admit(None, elsewhere, now).is_ok());
    }

    #[test]
    fn attempts_in_flight_hold_their_place_in_the_budget() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..ADDRESS_FAILURES {
            throttle.admit(None, HOME, now).unwrap().failed(now);
        }
        let held: Vec<_> = (0..CLEAN_BUDGET)
            .map(|i| throttle.admit(Some(&format!("n{i}")), HOME, now).unwrap())
            .collect();
        assert!(throttle.admit(Some("late"), HOME, now).is_err());
        drop(held);
        assert!(throttle.admit(Some("late"), HOME, now).is_ok());
    }
}
