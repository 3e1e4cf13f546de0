//! Choosing among many pools (the registries that hold them: `address_pools`, `port_pools`).

use super::AllocError;
#[cfg(test)]
use super::{
    AddressPoolSpec, AddressPools, AddressRequest, Assigned, Claimant, PortAllocation,
    PortPoolSpec, PortPools, PortRequest,
};

/// Who may use a pool and whether it serves requests that name no pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolPolicy {
    /// Serve requests that name no pool.
    pub auto_assign: bool,
    /// Among auto-assign pools, higher is tried first (ties by name).
    pub priority: i32,
    /// Namespaces that may allocate; empty means every namespace.
    pub allowed_namespaces: Vec<String>,
    /// The pool is being deleted: claimants keep what they hold in it, and nobody gets
    /// anything new from it.
    pub closing: bool,
}

impl PoolPolicy {
    /// Whether `namespace` may allocate from the pool.
    pub fn allows(&self, namespace: &str) -> bool {
        self.allowed_namespaces.is_empty() || self.allowed_namespaces.iter().any(|n| n == namespace)
    }
}

/// The pools to try, in order, for a request from `namespace`.
///
/// With `explicit`, exactly that pool (it must exist and allow the namespace). Without, the
/// auto-assign pools that allow the namespace, highest priority first, then by name. `kind`
/// (`IpPool`, `PortPool`) only words the messages.
pub fn choose_pools<'a>(
    kind: &str,
    pools: impl IntoIterator<Item = (&'a str, &'a PoolPolicy)>,
    explicit: Option<&str>,
    namespace: &str,
) -> Result<Vec<&'a str>, AllocError> {
    if let Some(wanted) = explicit {
        let Some((name, policy)) = pools.into_iter().find(|(n, _)| *n == wanted) else {
            return Err(AllocError::invalid(format!(
                "there is no {kind} named {wanted:?}"
            )));
        };
        if !policy.allows(namespace) {
            return Err(AllocError::NotAllowedForNamespace {
                pool: format!("{kind} {name:?}"),
                namespace: namespace.to_owned(),
            });
        }
        return Ok(vec![name]);
    }
    let auto: Vec<(&str, &PoolPolicy)> = pools.into_iter().filter(|(_, p)| p.auto_assign).collect();
    if auto.is_empty() {
        return Err(AllocError::invalid(format!(
            "no {kind} is named and no {kind} has autoAssign: name a pool"
        )));
    }
    let mut allowed: Vec<_> = auto.iter().filter(|(_, p)| p.allows(namespace)).collect();
    if allowed.is_empty() {
        let names: Vec<&str> = auto.iter().map(|(n, _)| *n).collect();
        return Err(AllocError::NotAllowedForNamespace {
            pool: format!("any auto-assign {kind} ({})", names.join(", ")),
            namespace: namespace.to_owned(),
        });
    }
    allowed.sort_by(|(an, ap), (bn, bp)| bp.priority.cmp(&ap.priority).then(an.cmp(bn)));
    Ok(allowed.into_iter().map(|(n, _)| *n).collect())
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
