//! Brute-force brakes for login and password changes, checked before any password is hashed.
//!
//! Per username: 5 failures in 15 minutes lock that name until the oldest failure ages out.
//! Per client address: failures (not attempts) are counted; past 60 in a minute the address is
//! *hot*. A whole team often shares one address (a carrier's NAT, an office, a proxy nobody told
//! the server about), so a hot address does not lock everyone out: a name with no recent failure
//! may still try, from a small separate budget of 20 failures a minute for that address (an
//! attempt holds a place in it until it ends; a success gives it back). A client spraying wrong
//! passwords from one address therefore costs at most 80 password hashes a minute, and the
//! people behind that address who type their own password right still get in.
//! Kept in memory: a restart forgives, which is acceptable.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const USER_FAILURES: usize = 5;
const USER_WINDOW: Duration = Duration::from_secs(15 * 60);
const ADDRESS_FAILURES: usize = 60;
const ADDRESS_WINDOW: Duration = Duration::from_secs(60);
const CLEAN_BUDGET: usize = 20;
/// Past this many tracked names or addresses, expired entries are swept so memory stays bounded.
const SWEEP_AT: usize = 10_000;

/// What one address has done lately.
#[derive(Default)]
struct Address {
    failures: VecDeque<Instant>,
    /// Failures of names admitted while the address was hot.
    clean_failures: VecDeque<Instant>,
    /// Attempts admitted while hot that have not ended yet.
    clean_pending: usize,
}

#[derive(Default)]
pub struct LoginThrottle {
    names: Mutex<HashMap<String, VecDeque<Instant>>>,
    addresses: Mutex<HashMap<IpAddr, Address>>,
}

/// An admitted attempt. Report how it ended with `failed` or `succeeded`; dropped unreported
/// (a server fault), it counts as neither.
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

impl LoginThrottle {
    /// Admits an attempt for `name` (`None`: a name that breaks the username rules, which is
    /// never tracked by name) from `address`, or says how long to wait.
    pub fn admit(
        &self,
        name: Option<&str>,
        address: IpAddr,
        now: Instant,
    ) -> Result<Attempt<'_>, Duration> {
        let name_failures = match name {
            Some(name) => {
                let mut names = lock(&self.names);
                let failures = recent(&mut names, name.to_owned(), now, USER_WINDOW);
                if failures.len() >= USER_FAILURES {
                    return Err(retry_after(failures, now, USER_WINDOW));
                }
                failures.len()
            }
            None => 0,
        };
        let mut addresses = lock(&self.addresses);
        sweep(&mut addresses, now);
        let state = addresses.entry(address).or_default();
        prune(&mut state.failures, now, ADDRESS_WINDOW);
        let hot = state.failures.len() >= ADDRESS_FAILURES;
        if hot {
            prune(&mut state.clean_failures, now, ADDRESS_WINDOW);
            let budget_left = state.clean_failures.len() + state.clean_pending < CLEAN_BUDGET;
            if name.is_none() || name_failures > 0 || !budget_left {
                let wait = if budget_left {
                    &state.failures
                } else {
                    &state.clean_failures
                };
                return Err(retry_after(wait, now, ADDRESS_WINDOW));
            }
            state.clean_pending += 1;
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
        if let Some(name) = self.name.take() {
            let mut names = lock(&self.throttle.names);
            recent(&mut names, name, now, USER_WINDOW).push_back(now);
        }
        let mut addresses = lock(&self.throttle.addresses);
        let state = addresses.entry(self.address).or_default();
        state.failures.push_back(now);
        if self.clean {
            state.clean_failures.push_back(now);
        }
        self.end(state);
    }

    /// The right password: the name's failures are forgiven.
    pub fn succeeded(mut self) {
        if let Some(name) = self.name.take() {
            lock(&self.throttle.names).remove(&name);
        }
        let mut addresses = lock(&self.throttle.addresses);
        let state = addresses.entry(self.address).or_default();
        self.end(state);
    }

    fn end(&mut self, state: &mut Address) {
        if self.clean && !self.ended {
            state.clean_pending = state.clean_pending.saturating_sub(1);
        }
        self.ended = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.clean && !self.ended {
            let mut addresses = lock(&self.throttle.addresses);
            if let Some(state) = addresses.get_mut(&self.address) {
                state.clean_pending = state.clean_pending.saturating_sub(1);
            }
        }
    }
}

/// Drops times older than `window` from the front.
fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        times.pop_front();
    }
}

/// The entry for `key` with everything older than `window` dropped.
fn recent(
    map: &mut HashMap<String, VecDeque<Instant>>,
    key: String,
    now: Instant,
    window: Duration,
) -> &mut VecDeque<Instant> {
    if map.len() >= SWEEP_AT {
        map.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.duration_since(*t) < window)
        });
    }
    let times = map.entry(key).or_default();
    prune(times, now, window);
    times
}

/// Forgets addresses with nothing recent and nothing pending once there are many.
fn sweep(addresses: &mut HashMap<IpAddr, Address>, now: Instant) {
    if addresses.len() < SWEEP_AT {
        return;
    }
    addresses.retain(|_, state| {
        state.clean_pending > 0
            || [&state.failures, &state.clean_failures]
                .iter()
                .any(|times| {
                    times
                        .back()
                        .is_some_and(|t| now.duration_since(*t) < ADDRESS_WINDOW)
                })
    });
}

fn retry_after(times: &VecDeque<Instant>, now: Instant, window: Duration) -> Duration {
    let oldest = times.front().copied().unwrap_or(now);
    (oldest + window)
        .saturating_duration_since(now)
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

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
