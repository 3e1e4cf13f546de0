//! The outcomes of an allocation that did not give the caller what it asked for.

use std::fmt;

use super::Claimant;

/// Why a request could not be satisfied.
///
/// Every variant is an outcome a person must act on (free something, fix the spec, grant
/// the namespace): the controller turns it into a `Stalled` condition and an Event, whose
/// reason is [`AllocError::reason`] and whose message is the `Display` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// No free value is left (or no run of free values long enough for a block).
    #[error("{pool} has no {wanted} left: release an allocation or add to the pool")]
    Exhausted {
        /// The pool (or pools, or router) that was searched, e.g. `IpPool "lab"`.
        pool: String,
        /// What was asked for, e.g. `free address` or `10 contiguous free tcp ports`.
        wanted: String,
    },

    /// The pool's `allowedNamespaces` does not list the claimant's namespace.
    #[error(
        "namespace {namespace:?} may not use {pool}: it is not in the pool's allowedNamespaces"
    )]
    NotAllowedForNamespace {
        /// The pool, e.g. `IpPool "lab"`.
        pool: String,
        /// The namespace that asked.
        namespace: String,
    },

    /// The value is already held by someone else. Never resolved silently: both are named.
    #[error("{resource} is already held by {holder}, so {claimant} cannot have it")]
    Conflict {
        /// What both want, e.g. `address 10.0.0.5 in IpPool "lab"`.
        resource: String,
        /// Who holds it now (boxed to keep the error small).
        holder: Box<Claimant>,
        /// Who asked for it (or claimed it too, during a rebuild).
        claimant: Box<Claimant>,
    },

    /// A fixed request for a value the pool cannot hand out.
    #[error("{resource} {reason} {pool}")]
    OutsidePool {
        /// The pool, e.g. `IpPool "lab"`.
        pool: String,
        /// The value asked for, e.g. `address 10.0.0.0`.
        resource: String,
        /// Why the pool cannot hand it out.
        reason: OutsideReason,
    },

    /// Every pool that could serve the request is being deleted: each keeps the allocations
    /// it has until they are released, and hands out nothing new.
    #[error(
        "{pools} being deleted: existing allocations stay until released, but no new ones are handed out; name another pool"
    )]
    PoolDeleting {
        /// The pool or pools, e.g. `IpPool "lab" is`, `PortPools "a", "b" are`.
        pools: String,
    },

    /// The request or the pool definition is malformed; the message names the field/value.
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What is wrong, and what would be right.
        message: String,
    },
}

impl AllocError {
    /// A fixed, CamelCase word for the condition reason, the Event reason and the metric
    /// label: `PoolExhausted`, `NamespaceNotAllowed`, `Conflict`, `OutsidePool`,
    /// `PoolDeleting` or `InvalidRequest`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Exhausted { .. } => "PoolExhausted",
            Self::NotAllowedForNamespace { .. } => "NamespaceNotAllowed",
            Self::Conflict { .. } => "Conflict",
            Self::OutsidePool { .. } => "OutsidePool",
            Self::PoolDeleting { .. } => "PoolDeleting",
            Self::InvalidRequest { .. } => "InvalidRequest",
        }
    }

    /// The same word as [`AllocError::reason`]; the name the other layers' errors use.
    pub fn category(&self) -> &'static str {
        self.reason()
    }

    /// Always false: none of these clears by retrying; each waits for a change (a release,
    /// a spec edit, a pool edit).
    pub fn is_transient(&self) -> bool {
        false
    }

    pub(crate) fn conflict(resource: String, holder: &Claimant, claimant: Claimant) -> Self {
        Self::Conflict {
            resource,
            holder: Box::new(holder.clone()),
            claimant: Box::new(claimant),
        }
    }

    pub(crate) fn closing(kind: &str, names: &[String]) -> Self {
        let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        let pools = match quoted.as_slice() {
            [one] => format!("{kind} {one} is"),
            many => format!("{kind}s {} are", many.join(", ")),
        };
        Self::PoolDeleting { pools }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
        }
    }
}

/// Why a value is not one the pool can hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutsideReason {
    /// No entry of the pool contains it.
    NotInPool,
    /// The pool's `exclude` list contains it.
    Excluded,
    /// It is the network or broadcast address of an IPv4 CIDR of the pool, and the pool
    /// does not set `includeNetworkAndBroadcast`.
    NetworkOrBroadcast,
    /// The pool it was recorded against no longer exists (rebuild reports only).
    PoolMissing,
}

impl fmt::Display for OutsideReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotInPool => "is not in",
            Self::Excluded => "is excluded from",
            Self::NetworkOrBroadcast => {
                "is a network or broadcast address (set includeNetworkAndBroadcast to hand it out) in"
            }
            Self::PoolMissing => "was recorded against the missing",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_fixed_reason_and_a_message() {
        let who = Claimant::new("VmNetwork", "ns", "a");
        let cases = [
            (
                AllocError::Exhausted {
                    pool: "IpPool \"p\"".into(),
                    wanted: "free address".into(),
                },
                "PoolExhausted",
            ),
            (
                AllocError::NotAllowedForNamespace {
                    pool: "IpPool \"p\"".into(),
                    namespace: "ns".into(),
                },
                "NamespaceNotAllowed",
            ),
            (
                AllocError::conflict("address 10.0.0.1".into(), &who, who.clone()),
                "Conflict",
            ),
            (
                AllocError::OutsidePool {
                    pool: "IpPool \"p\"".into(),
                    resource: "address 10.0.0.1".into(),
                    reason: OutsideReason::Excluded,
                },
                "OutsidePool",
            ),
            (
                AllocError::closing("IpPool", &["p".to_owned()]),
                "PoolDeleting",
            ),
            (AllocError::invalid("bad"), "InvalidRequest"),
        ];
        for (err, reason) in cases {
            assert_eq!(err.reason(), reason);
            assert_eq!(err.category(), reason);
            assert!(!err.is_transient());
            assert!(!err.to_string().is_empty());
        }
    }
}
