//! Choosing among many pools, and the registries that hold them.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::{
    AddressPool, AddressPoolSpec, AddressRequest, AllocError, Claimant, OutOfRange, OutsideReason,
    PortAllocation, PortPool, PortPoolSpec, PortRequest, RebuildReport,
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

/// A value and the pool it came from (`None`: a fixed value that no pool covers, which the
/// allocators do not track).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned<T> {
    /// The pool's name.
    pub pool: Option<String>,
    /// The value.
    pub value: T,
}

/// Every IpPool, and which pool each claimant's address came from.
#[derive(Debug, Clone, Default)]
pub struct AddressPools {
    pools: BTreeMap<String, AddressPool>,
    holders: HashMap<Claimant, String>,
}

impl AddressPools {
    /// No pools.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates or edits the pool `name`. An edit keeps every allocation; the report lists
    /// those it leaves outside the pool.
    pub fn upsert(
        &mut self,
        name: &str,
        spec: AddressPoolSpec,
    ) -> Result<RebuildReport, AllocError> {
        match self.pools.get_mut(name) {
            Some(pool) => pool.reconfigure(spec),
            None => {
                self.pools
                    .insert(name.to_owned(), AddressPool::new(name, spec)?);
                Ok(RebuildReport::default())
            }
        }
    }

    /// Drops the pool `name` with its allocations (callers keep a pool in use alive with a
    /// finalizer; see [`AddressPool::is_empty`]).
    pub fn remove(&mut self, name: &str) -> Option<AddressPool> {
        let pool = self.pools.remove(name)?;
        for (c, _) in pool.allocations() {
            self.holders.remove(c);
        }
        Some(pool)
    }

    /// The pool `name`.
    pub fn get(&self, name: &str) -> Option<&AddressPool> {
        self.pools.get(name)
    }

    /// Every pool, by name.
    pub fn pools(&self) -> impl Iterator<Item = &AddressPool> + '_ {
        self.pools.values()
    }

    /// Gives `claimant` an address from `pool_ref`, else from the pools chosen by
    /// [`choose_pools`] (exhausted ones are skipped). A fixed address with no `pool_ref` is
    /// taken from the pool that covers it (which must allow the namespace), or, if none does,
    /// returned untracked with `pool: None`. A claimant keeps what it holds unless the request
    /// changed; a changed request moves it only once the new address is held.
    pub fn allocate(
        &mut self,
        claimant: &Claimant,
        pool_ref: Option<&str>,
        request: AddressRequest,
    ) -> Result<Assigned<IpAddr>, AllocError> {
        let held = self.holders.get(claimant).cloned();
        let candidates: Vec<String> = match (pool_ref, request, &held) {
            (Some(_), _, _) | (None, AddressRequest::Auto { .. }, None) => {
                let policies = self
                    .pools
                    .iter()
                    .map(|(n, p)| (n.as_str(), &p.spec().policy));
                choose_pools("IpPool", policies, pool_ref, &claimant.namespace)?
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            }
            (None, AddressRequest::Auto { .. }, Some(p)) => vec![p.clone()],
            (None, AddressRequest::Fixed(ip), _) => {
                let covering: Vec<String> = self
                    .pools
                    .values()
                    .filter(|p| p.covers(ip))
                    .map(|p| p.name().to_owned())
                    .collect();
                if covering.is_empty() {
                    self.release(claimant);
                    return Ok(Assigned {
                        pool: None,
                        value: ip,
                    });
                }
                covering
            }
        };
        // Stay in the pool already held when it is a candidate: idempotent, or an in-pool move.
        let mut order = candidates.clone();
        if let Some(p) = &held
            && let Some(i) = order.iter().position(|c| c == p)
        {
            let first = order.remove(i);
            order.insert(0, first);
        }
        let searched = order.join(", ");
        let mut last_exhausted = None;
        let mut closing = Vec::new();
        for name in order {
            let Some(pool) = self.pools.get_mut(&name) else {
                continue;
            };
            if pool.spec().policy.closing && held.as_deref() != Some(name.as_str()) {
                closing.push(name);
                continue;
            }
            match pool.allocate(claimant, request) {
                Ok(ip) => {
                    if let Some(old) = held.as_ref().filter(|p| **p != name)
                        && let Some(old_pool) = self.pools.get_mut(old)
                    {
                        old_pool.release(claimant);
                    }
                    self.holders.insert(claimant.clone(), name.clone());
                    return Ok(Assigned {
                        pool: Some(name),
                        value: ip,
                    });
                }
                Err(AllocError::Exhausted { wanted, .. }) if pool_ref.is_none() => {
                    last_exhausted = Some(wanted);
                }
                Err(e) => return Err(e),
            }
        }
        if last_exhausted.is_none() && !closing.is_empty() {
            return Err(AllocError::closing("IpPool", &closing));
        }
        Err(AllocError::Exhausted {
            pool: format!(
                "every IpPool namespace {:?} may use ({searched})",
                claimant.namespace
            ),
            wanted: last_exhausted.unwrap_or_else(|| "free address".to_owned()),
        })
    }

    /// Frees the claimant's address wherever it is.
    pub fn release(&mut self, claimant: &Claimant) -> Option<Assigned<IpAddr>> {
        let name = self.holders.remove(claimant)?;
        let value = self.pools.get_mut(&name)?.release(claimant)?;
        Some(Assigned {
            pool: Some(name),
            value,
        })
    }

    /// The claimant's address and pool.
    pub fn lookup(&self, claimant: &Claimant) -> Option<Assigned<IpAddr>> {
        let name = self.holders.get(claimant)?;
        let value = self.pools.get(name)?.get(claimant)?;
        Some(Assigned {
            pool: Some(name.clone()),
            value,
        })
    }

    /// Forgets every allocation and imports `(pool, claimant, address)` claims in any order.
    /// Claims naming a missing pool are reported (`PoolMissing`); a claimant found in two
    /// pools keeps the one whose name sorts first, and the other is reported.
    pub fn rebuild(
        &mut self,
        claims: impl IntoIterator<Item = (String, Claimant, IpAddr)>,
    ) -> RebuildReport {
        let mut by_pool: BTreeMap<String, Vec<(Claimant, IpAddr)>> = BTreeMap::new();
        for (p, c, ip) in claims {
            by_pool.entry(p).or_default().push((c, ip));
        }
        let mut report = RebuildReport::default();
        self.holders.clear();
        for (name, pool) in &mut self.pools {
            let claims = by_pool.remove(name).unwrap_or_default();
            report.merge(pool.rebuild(claims));
            let mine: Vec<Claimant> = pool.allocations().map(|(c, _)| c.clone()).collect();
            for c in mine {
                if let Some(first) = self.holders.get(&c) {
                    report.conflicts.push(AllocError::invalid(format!(
                        "{c} holds addresses in IpPool {first:?} and IpPool {name:?}; kept the first"
                    )));
                    pool.release(&c);
                } else {
                    self.holders.insert(c, name.clone());
                }
            }
        }
        for (name, claims) in by_pool {
            for (claimant, ip) in claims {
                report.out_of_range.push(OutOfRange {
                    claimant,
                    resource: format!("{ip} (IpPool {name:?})"),
                    reason: OutsideReason::PoolMissing,
                });
            }
        }
        report
    }
}

/// Every PortPool, and which pool each claimant's ports came from.
#[derive(Debug, Clone, Default)]
pub struct PortPools {
    pools: BTreeMap<String, PortPool>,
    holders: HashMap<Claimant, String>,
}

impl PortPools {
    /// No pools.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates or edits the pool `name`; see [`AddressPools::upsert`].
    pub fn upsert(&mut self, name: &str, spec: PortPoolSpec) -> Result<RebuildReport, AllocError> {
        match self.pools.get_mut(name) {
            Some(pool) => pool.reconfigure(spec),
            None => {
                self.pools
                    .insert(name.to_owned(), PortPool::new(name, spec)?);
                Ok(RebuildReport::default())
            }
        }
    }

    /// Drops the pool `name` with its allocations.
    pub fn remove(&mut self, name: &str) -> Option<PortPool> {
        let pool = self.pools.remove(name)?;
        for (c, _) in pool.allocations() {
            self.holders.remove(c);
        }
        Some(pool)
    }

    /// The pool `name`.
    pub fn get(&self, name: &str) -> Option<&PortPool> {
        self.pools.get(name)
    }

    /// Every pool, by name.
    pub fn pools(&self) -> impl Iterator<Item = &PortPool> + '_ {
        self.pools.values()
    }

    /// Gives `claimant` ports on `router`: from `pool_ref`, else from the auto-assign pools
    /// of that router that offer the protocol, by [`choose_pools`] order. A fixed request
    /// with no `pool_ref` is taken from a pool of the router that covers it, or returned
    /// untracked with `pool: None`. Same idempotence and move rules as
    /// [`AddressPools::allocate`].
    pub fn allocate(
        &mut self,
        claimant: &Claimant,
        router: &str,
        pool_ref: Option<&str>,
        request: PortRequest,
    ) -> Result<Assigned<PortAllocation>, AllocError> {
        let held = self.holders.get(claimant).cloned();
        let protocol = request.protocol();
        if let Some(name) = pool_ref
            && let Some(p) = self.pools.get(name)
            && p.spec().router != router
        {
            return Err(AllocError::invalid(format!(
                "PortPool {name:?} is on VyosRouter {:?}, not {router:?}",
                p.spec().router
            )));
        }
        let on_router = |p: &&PortPool| p.spec().router == router && p.offers(protocol);
        let candidates: Vec<String> = match (pool_ref, request, &held) {
            (Some(_), _, _) | (None, PortRequest::Auto { .. }, None) => {
                let policies = self
                    .pools
                    .values()
                    .filter(|p| pool_ref.is_some() || on_router(p))
                    .map(|p| (p.name(), &p.spec().policy));
                choose_pools("PortPool", policies, pool_ref, &claimant.namespace)?
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            }
            (None, PortRequest::Auto { .. }, Some(p)) => vec![p.clone()],
            (
                None,
                PortRequest::Fixed {
                    protocol,
                    first,
                    last,
                },
                _,
            ) => {
                let covering: Vec<String> = self
                    .pools
                    .values()
                    .filter(|p| on_router(p) && p.covers(first, last))
                    .map(|p| p.name().to_owned())
                    .collect();
                if covering.is_empty() {
                    self.release(claimant);
                    let value = PortAllocation {
                        protocol,
                        first,
                        last,
                    };
                    return Ok(Assigned { pool: None, value });
                }
                covering
            }
        };
        let mut order = candidates;
        if let Some(p) = &held
            && let Some(i) = order.iter().position(|c| c == p)
        {
            let first = order.remove(i);
            order.insert(0, first);
        }
        let searched = order.join(", ");
        let mut last_exhausted = None;
        let mut closing = Vec::new();
        for name in order {
            let Some(pool) = self.pools.get_mut(&name) else {
                continue;
            };
            if pool.spec().policy.closing && held.as_deref() != Some(name.as_str()) {
                closing.push(name);
                continue;
            }
            match pool.allocate(claimant, request) {
                Ok(value) => {
                    if let Some(old) = held.as_ref().filter(|p| **p != name)
                        && let Some(old_pool) = self.pools.get_mut(old)
                    {
                        old_pool.release(claimant);
                    }
                    self.holders.insert(claimant.clone(), name.clone());
                    return Ok(Assigned {
                        pool: Some(name),
                        value,
                    });
                }
                Err(AllocError::Exhausted { wanted, .. }) if pool_ref.is_none() => {
                    last_exhausted = Some(wanted);
                }
                Err(e) => return Err(e),
            }
        }
        if last_exhausted.is_none() && !closing.is_empty() {
            return Err(AllocError::closing("PortPool", &closing));
        }
        Err(AllocError::Exhausted {
            pool: format!(
                "every PortPool on VyosRouter {router:?} namespace {:?} may use ({searched})",
                claimant.namespace
            ),
            wanted: last_exhausted.unwrap_or_else(|| format!("free {protocol} port")),
        })
    }

    /// Frees the claimant's ports wherever they are.
    pub fn release(&mut self, claimant: &Claimant) -> Option<Assigned<PortAllocation>> {
        let name = self.holders.remove(claimant)?;
        let value = self.pools.get_mut(&name)?.release(claimant)?;
        Some(Assigned {
            pool: Some(name),
            value,
        })
    }

    /// The claimant's ports and pool.
    pub fn lookup(&self, claimant: &Claimant) -> Option<Assigned<PortAllocation>> {
        let name = self.holders.get(claimant)?;
        let value = self.pools.get(name)?.get(claimant)?;
        Some(Assigned {
            pool: Some(name.clone()),
            value,
        })
    }

    /// Forgets every allocation and imports `(pool, claimant, ports)` claims in any order;
    /// see [`AddressPools::rebuild`].
    pub fn rebuild(
        &mut self,
        claims: impl IntoIterator<Item = (String, Claimant, PortAllocation)>,
    ) -> RebuildReport {
        let mut by_pool: BTreeMap<String, Vec<(Claimant, PortAllocation)>> = BTreeMap::new();
        for (p, c, a) in claims {
            by_pool.entry(p).or_default().push((c, a));
        }
        let mut report = RebuildReport::default();
        self.holders.clear();
        for (name, pool) in &mut self.pools {
            let claims = by_pool.remove(name).unwrap_or_default();
            report.merge(pool.rebuild(claims));
            let mine: Vec<Claimant> = pool
                .allocations()
                .into_iter()
                .map(|(c, _)| c.clone())
                .collect();
            for c in mine {
                if let Some(first) = self.holders.get(&c) {
                    report.conflicts.push(AllocError::invalid(format!(
                        "{c} holds ports in PortPool {first:?} and PortPool {name:?}; kept the first"
                    )));
                    pool.release(&c);
                } else {
                    self.holders.insert(c, name.clone());
                }
            }
        }
        for (name, claims) in by_pool {
            for (claimant, a) in claims {
                report.out_of_range.push(OutOfRange {
                    claimant,
                    resource: format!("{a} (PortPool {name:?})"),
                    reason: OutsideReason::PoolMissing,
                });
            }
        }
        report
    }
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
