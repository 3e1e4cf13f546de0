//! The standard `Ready` / `Reconciling` / `Stalled` conditions every status carries.
//!
//! Exactly one of the three is `True` at a time: Ready (in place), Reconciling (work under
//! way, e.g. waiting for the router) or Stalled (nothing will change until a person changes
//! something: a conflict, an exhausted pool, a rule the router refuses). kstatus and Argo CD
//! read them this way.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use vmnet_api::common::condition::{READY, RECONCILING, STALLED};

/// Which of the three states an object is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Ready.
    Ready,
    /// Reconciling.
    Reconciling,
    /// Stalled.
    Stalled,
}

/// The three conditions for `state` with `reason` and `message`, keeping the transition
/// time of any condition whose status did not change.
pub fn conditions(
    previous: Option<&[Condition]>,
    state: State,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Vec<Condition> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let make = |type_: &str, on: bool| {
        let status = if on { "True" } else { "False" };
        let (reason, message) = if on {
            (reason.to_owned(), message.to_owned())
        } else {
            (format!("Not{type_}"), String::new())
        };
        let last = previous
            .and_then(|p| p.iter().find(|c| c.type_ == type_))
            .filter(|c| c.status == status)
            .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason,
            message,
            last_transition_time: last,
            observed_generation: generation,
        }
    };
    vec![
        make(READY, state == State::Ready),
        make(RECONCILING, state == State::Reconciling),
        make(STALLED, state == State::Stalled),
    ]
}

/// Whether `conds` already say `state` with `reason`, `message` and `generation`, so
/// writing them again would change nothing but timestamps.
pub fn same(
    conds: Option<&[Condition]>,
    state: State,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> bool {
    let want = match state {
        State::Ready => READY,
        State::Reconciling => RECONCILING,
        State::Stalled => STALLED,
    };
    conds.is_some_and(|cs| {
        cs.len() == 3
            && cs.iter().all(|c| c.observed_generation == generation)
            && cs.iter().any(|c| {
                c.type_ == want && c.status == "True" && c.reason == reason && c.message == message
            })
    })
}

/// The `Ready` condition's status, if any.
pub fn is_ready(conds: Option<&[Condition]>) -> bool {
    conds.is_some_and(|cs| cs.iter().any(|c| c.type_ == READY && c.status == "True"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn exactly_one_condition_is_true() {
        for state in [State::Ready, State::Reconciling, State::Stalled] {
            let cs = conditions(None, state, "Why", "because", Some(3));
            assert_eq!(cs.iter().filter(|c| c.status == "True").count(), 1);
            assert!(cs.iter().all(|c| c.observed_generation == Some(3)));
            assert!(same(Some(&cs), state, "Why", "because", Some(3)));
            assert!(!same(Some(&cs), state, "Why", "other", Some(3)));
            assert!(!same(Some(&cs), state, "Why", "because", Some(4)));
        }
    }

    #[test]
    fn transition_time_survives_an_unchanged_status() {
        let mut first = conditions(None, State::Reconciling, "Waiting", "", Some(1));
        let old = Time(k8s_openapi::jiff::Timestamp::from_second(1_000_000).unwrap());
        for c in &mut first {
            c.last_transition_time = old.clone();
        }
        let next = conditions(Some(&first), State::Ready, "Programmed", "ok", Some(1));
        let ready = next.iter().find(|c| c.type_ == READY).unwrap();
        let stalled = next.iter().find(|c| c.type_ == STALLED).unwrap();
        assert_ne!(
            ready.last_transition_time, old,
            "Ready flipped, so its time moves"
        );
        assert_eq!(stalled.last_transition_time, old, "Stalled stayed False");
        assert!(is_ready(Some(&next)));
    }
}
