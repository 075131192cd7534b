//! A replica's circuit breaker: closed (calls go), open (no call goes, for `open_for`),
//! half-open (one trial call goes; its outcome closes or opens it again). Fed by the calls the
//! replica serves (passive outlier detection) and by its health checks (active).

use std::time::Instant;

use crate::config::BreakerConfig;

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Calls go; `failures` in a row so far.
    Closed { failures: u32 },
    /// No call goes until `until`.
    Open { until: Instant },
    /// One trial call goes; `trial` says whether it went.
    HalfOpen { trial: bool },
}

/// A circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    state: State,
    config: BreakerConfig,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            state: State::Closed { failures: 0 },
            config,
        }
    }

    /// `closed`, `open` or `half-open`.
    pub fn name(&self) -> &'static str {
        match self.state {
            State::Closed { .. } => "closed",
            State::Open { until } if Instant::now() < until => "open",
            State::Open { .. } | State::HalfOpen { .. } => "half-open",
        }
    }

    /// Whether a call could go now (without taking the trial).
    pub fn available(&self) -> bool {
        match self.state {
            State::Closed { .. } => true,
            State::Open { until } => Instant::now() >= until,
            State::HalfOpen { trial } => !trial,
        }
    }

    /// A call goes now, if one may: in half-open, the one trial.
    pub fn admit(&mut self) -> bool {
        match self.state {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                self.state = State::HalfOpen { trial: true };
                true
            }
            State::Open { .. } => false,
            State::HalfOpen { trial: false } => {
                self.state = State::HalfOpen { trial: true };
                true
            }
            State::HalfOpen { trial: true } => false,
        }
    }

    /// A call succeeded: closed.
    pub fn succeeded(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    /// A call failed; returns whether that opened the breaker.
    pub fn failed(&mut self) -> bool {
        match self.state {
            State::Closed { failures } if failures + 1 < self.config.failures => {
                self.state = State::Closed { failures: failures + 1 };
                false
            }
            State::Open { .. } => false,
            _ => {
                self.open();
                true
            }
        }
    }

    /// A health check passed: closes an open breaker whose time is up (the check was its trial).
    pub fn health_passed(&mut self) {
        match self.state {
            State::Open { until } if Instant::now() >= until => self.succeeded(),
            State::HalfOpen { .. } => self.succeeded(),
            _ => {}
        }
    }

    /// A health check failed: open.
    pub fn health_failed(&mut self) {
        self.open();
    }

    fn open(&mut self) {
        self.state = State::Open {
            until: Instant::now() + self.config.open_for,
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn breaker(failures: u32, open_for: Duration) -> Breaker {
        Breaker::new(BreakerConfig { failures, open_for })
    }

    #[test]
    fn failures_in_a_row_open_it_and_a_success_in_between_resets_the_count() {
        let mut b = breaker(3, Duration::from_secs(60));
        assert!(!b.failed());
        assert!(!b.failed());
        b.succeeded();
        assert!(!b.failed());
        assert!(!b.failed());
        assert_eq!(b.name(), "closed");
        assert!(b.failed(), "the third in a row opens it");
        assert_eq!(b.name(), "open");
        assert!(!b.available());
        assert!(!b.admit());
    }

    #[test]
    fn after_open_for_one_trial_goes_and_its_outcome_decides() {
        let mut b = breaker(1, Duration::ZERO);
        assert!(b.failed());
        assert_eq!(b.name(), "half-open", "its time is up at once");
        assert!(b.admit(), "the trial");
        assert!(!b.admit(), "one trial at a time");
        assert!(b.failed(), "a failed trial opens it again");
        assert!(b.admit());
        b.succeeded();
        assert_eq!(b.name(), "closed");
        assert!(b.admit() && b.admit());
    }

    #[test]
    fn health_checks_open_it_and_close_it_once_its_time_is_up() {
        let mut b = breaker(5, Duration::from_secs(60));
        b.health_failed();
        assert_eq!(b.name(), "open");
        b.health_passed();
        assert_eq!(b.name(), "open", "not before open_for");
        let mut b = breaker(5, Duration::ZERO);
        b.health_failed();
        b.health_passed();
        assert_eq!(b.name(), "closed");
    }
}
