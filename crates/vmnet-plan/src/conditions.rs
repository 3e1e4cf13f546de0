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

macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident $(router_wide $wide:literal)?,)*) => {
        /// The reasons the writer puts on conditions (CamelCase, as Kubernetes asks).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Reason {
            $($(#[$doc])* $name,)*
        }

        impl Reason {
            /// The reason as the condition carries it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name),)*
                }
            }

            /// The reason a condition carries, if it is one of these.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $(stringify!($name) => Some(Reason::$name),)*
                    _ => None,
                }
            }

            /// Whether a failed pass spreads this reason over every rule of the router
            /// (it is the router's trouble, not the rule's).
            pub fn router_wide(self) -> bool {
                match self {
                    $($(Reason::$name => $wide,)?)*
                    _ => false,
                }
            }
        }
    };
}

reasons! {
    /// The router holds what the cluster declares.
    Synced,
    /// The rule is on the router.
    Programmed,
    /// A new generation is on its way to the router.
    Programming,
    /// The object (or its router) is paused by the `vmnet.dev/paused` annotation.
    Paused,
    /// The router refused the rule's commit.
    CommitFailed,
    /// The router cannot be reached.
    RouterUnreachable router_wide true,
    /// A configure request got no answer in time: it may have committed; the router is
    /// read again before anything is sent.
    CommitUnconfirmed router_wide true,
    /// The router refused the API key.
    AuthFailed router_wide true,
    /// The router's certificate is not trusted.
    TLSError router_wide true,
    /// The router's configuration is invalid.
    InvalidConfig router_wide true,
    /// The API key Secret lacks the key.
    SecretMissing router_wide true,
    /// The API key Secret could not be read.
    SecretUnreadable router_wide true,
    /// The API key Secret is in a namespace the operator may not read.
    SecretNamespaceNotAllowed router_wide true,
    /// The router answered with something that is not its API's JSON.
    MalformedResponse,
    /// The router refused a value before commit.
    Rejected,
    /// Another commit held the router's config lock.
    RouterBusy,
    /// The router failed in another way.
    RouterError,
    /// Another PortRule holds the endpoint or number (or another claimant the value).
    Conflict,
    /// The PortRule's namespace may not use the address (or the pool).
    NamespaceNotAllowed,
    /// The object is being deleted and waits for something.
    Deleting,
    /// A rule number (or an address, ports) was allocated; the router is next.
    Allocated,
    /// The VyosRouter the object names does not exist.
    RouterNotFound,
    /// A pool is loaded and serving.
    Loaded,
    /// A pool's new ranges leave out values that are held.
    AllocationsOutOfRange,
    /// The request cannot be satisfied as written.
    InvalidRequest,
    /// The rule would be refused by VyOS (a field is invalid there).
    InvalidRule,
    /// Not allowed for another reason the message gives.
    NotAllowed,
    /// The rule number is outside the router's ruleRange.
    RuleNumberOutOfRange,
    /// Every value of the pool is held.
    PoolExhausted,
    /// The value asked for lies outside the pool.
    OutsidePool,
    /// The pool is being deleted.
    PoolDeleting,
    /// A child object is not Ready yet.
    Waiting,
    /// No DHCP subnet on the router contains the VM's address.
    DhcpSubnetMissing,
    /// The forward's `spec.expiresAt` has passed: its rule is off the router, its number
    /// and endpoint kept. `Reconciling`, like `Paused`: not an error, and nothing to retry;
    /// moving `expiresAt` brings it back.
    Expired,
}

impl From<&vmnet_core::alloc::AllocError> for Reason {
    fn from(e: &vmnet_core::alloc::AllocError) -> Self {
        use vmnet_core::alloc::AllocError as E;
        match e {
            E::Exhausted { .. } => Reason::PoolExhausted,
            E::NotAllowedForNamespace { .. } => Reason::NamespaceNotAllowed,
            E::Conflict { .. } => Reason::Conflict,
            E::OutsidePool { .. } => Reason::OutsidePool,
            E::PoolDeleting { .. } => Reason::PoolDeleting,
            E::InvalidRequest { .. } => Reason::InvalidRequest,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three conditions for `state` with `reason` and `message`, keeping the transition
/// time of any condition whose status did not change.
pub fn conditions(
    previous: Option<&[Condition]>,
    state: State,
    reason: Reason,
    message: &str,
    generation: Option<i64>,
) -> Vec<Condition> {
    let reason = reason.as_str();
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
    reason: Reason,
    message: &str,
    generation: Option<i64>,
) -> bool {
    holding(conds, state, reason, generation, Some(message))
}

/// Whether `conds` already say `state` for `reason` at `generation`, whatever the message:
/// progress within one state (which of several parts is done) is not a change of state.
pub fn same_state(
    conds: Option<&[Condition]>,
    state: State,
    reason: Reason,
    generation: Option<i64>,
) -> bool {
    holding(conds, state, reason, generation, None)
}

fn holding(
    conds: Option<&[Condition]>,
    state: State,
    reason: Reason,
    generation: Option<i64>,
    message: Option<&str>,
) -> bool {
    let reason = reason.as_str();
    let want = match state {
        State::Ready => READY,
        State::Reconciling => RECONCILING,
        State::Stalled => STALLED,
    };
    conds.is_some_and(|cs| {
        cs.len() == 3
            && cs.iter().all(|c| c.observed_generation == generation)
            && cs.iter().any(|c| {
                c.type_ == want
                    && c.status == "True"
                    && c.reason == reason
                    && message.is_none_or(|m| c.message == m)
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
            let cs = conditions(None, state, Reason::Waiting, "because", Some(3));
            assert_eq!(cs.iter().filter(|c| c.status == "True").count(), 1);
            assert!(cs.iter().all(|c| c.observed_generation == Some(3)));
            assert!(same(Some(&cs), state, Reason::Waiting, "because", Some(3)));
            assert!(!same(Some(&cs), state, Reason::Waiting, "other", Some(3)));
            assert!(!same(Some(&cs), state, Reason::Waiting, "because", Some(4)));
        }
    }

    #[test]
    fn every_reason_reads_back_as_itself() {
        for r in [
            Reason::Synced,
            Reason::Paused,
            Reason::SecretNamespaceNotAllowed,
            Reason::Waiting,
            Reason::Expired,
        ] {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::parse("NotAReason"), None);
        assert!(Reason::AuthFailed.router_wide() && !Reason::Conflict.router_wide());
    }

    #[test]
    fn transition_time_survives_an_unchanged_status() {
        let mut first = conditions(None, State::Reconciling, Reason::Waiting, "", Some(1));
        let old = Time(k8s_openapi::jiff::Timestamp::from_second(1_000_000).unwrap());
        for c in &mut first {
            c.last_transition_time = old.clone();
        }
        let next = conditions(
            Some(&first),
            State::Ready,
            Reason::Programmed,
            "ok",
            Some(1),
        );
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
