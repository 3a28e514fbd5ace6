//! Brute-force brakes for login, checked before any password is hashed.
//!
//! Per username: 5 failures in 15 minutes lock that name until the oldest failure ages out.
//! Per client address: a coarse cap on attempts per minute. The address alone is not enough (a
//! whole team often shares one carrier or office address), so the cap is generous and the
//! per-username limit does the real work. Kept in memory: a restart forgives, which is acceptable.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const USER_FAILURES: usize = 5;
const USER_WINDOW: Duration = Duration::from_secs(15 * 60);
const ADDRESS_ATTEMPTS: usize = 300;
const ADDRESS_WINDOW: Duration = Duration::from_secs(60);
/// Past this many tracked names or addresses, expired entries are swept so memory stays bounded.
const SWEEP_AT: usize = 10_000;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    attempts: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl LoginThrottle {
    /// Counts an attempt from `address` for `username`; `Err(retry_after)` if either is over its limit.
    pub fn check(&self, username: &str, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let from_address = recent(&mut attempts, address, now, ADDRESS_WINDOW);
        if from_address.len() >= ADDRESS_ATTEMPTS {
            return Err(retry_after(from_address, now, ADDRESS_WINDOW));
        }
        from_address.push_back(now);
        drop(attempts);
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let for_name = recent(&mut failures, username.to_owned(), now, USER_WINDOW);
        if for_name.len() >= USER_FAILURES {
            return Err(retry_after(for_name, now, USER_WINDOW));
        }
        Ok(())
    }

    /// Records a wrong password (or unknown name) for `username`.
    pub fn failed(&self, username: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        recent(&mut failures, username.to_owned(), now, USER_WINDOW).push_back(now);
    }

    /// A successful login clears the name's failures.
    pub fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(username);
    }
}

/// The entry for `key` with everything older than `window` dropped.
fn recent<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, VecDeque<Instant>>,
    key: K,
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
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        times.pop_front();
    }
    times
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
            assert!(throttle.check("wei", HOME, start).is_ok(), "attempt {i}");
            throttle.failed("wei", start + Duration::from_secs(i));
        }
        let wait = throttle
            .check("wei", HOME, start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, USER_WINDOW - Duration::from_secs(10));
        assert!(
            throttle.check("li", HOME, start).is_ok(),
            "another name is not affected"
        );
        assert!(throttle.check("wei", HOME, start + USER_WINDOW).is_ok());
    }

    #[test]
    fn a_success_forgives_earlier_failures() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..4 {
            throttle.failed("wei", now);
        }
        throttle.succeeded("wei");
        throttle.failed("wei", now);
        assert!(throttle.check("wei", HOME, now).is_ok());
    }

    #[test]
    fn one_address_is_capped_per_minute() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..ADDRESS_ATTEMPTS {
            assert!(throttle.check(&format!("user{i}"), HOME, now).is_ok());
        }
        assert!(throttle.check("another", HOME, now).is_err());
        assert!(
            throttle
                .check("another", HOME, now + ADDRESS_WINDOW)
                .is_ok()
        );
    }
}
