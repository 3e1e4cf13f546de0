//! Every IpPool, and the addresses held outside all of them.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::{
    AddressPool, AddressPoolSpec, AddressRequest, AllocError, Claimant, OutOfRange, OutsideReason,
    RebuildReport, choose_pools,
};

/// A value and the pool it came from (`None`: a fixed value that no pool covers; the
/// registries still track those, so two claimants never hold one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned<T> {
    /// The pool's name.
    pub pool: Option<String>,
    /// The value.
    pub value: T,
}

/// Where a claimant's address is held.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    /// In this IpPool.
    Pool(String),
    /// Outside every IpPool (a fixed address no pool covers).
    Unpooled(IpAddr),
}

/// Every IpPool, which pool each claimant's address came from, and the fixed addresses
/// that no pool covers (held all the same: one address, one holder).
#[derive(Debug, Clone, Default)]
pub struct AddressPools {
    pools: BTreeMap<String, AddressPool>,
    holders: HashMap<Claimant, Held>,
    unpooled: BTreeMap<IpAddr, Claimant>,
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

    fn held_pool(&self, claimant: &Claimant) -> Option<String> {
        match self.holders.get(claimant) {
            Some(Held::Pool(p)) => Some(p.clone()),
            _ => None,
        }
    }

    /// Gives `claimant` an address from `pool_ref`, else from the pools chosen by
    /// [`choose_pools`] (exhausted ones are skipped). A fixed address with no `pool_ref` is
    /// taken from the pool that covers it (which must allow the namespace), or, if none does,
    /// held outside the pools (`pool: None`) unless another claimant holds it there. A
    /// claimant keeps what it holds unless the request changed; a changed request moves it
    /// only once the new address is held.
    pub fn allocate(
        &mut self,
        claimant: &Claimant,
        pool_ref: Option<&str>,
        request: AddressRequest,
    ) -> Result<Assigned<IpAddr>, AllocError> {
        let held = self.held_pool(claimant);
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
                    return self.hold_unpooled(claimant, ip);
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
                    if let Some(Held::Unpooled(old)) = self.holders.get(claimant) {
                        self.unpooled.remove(old);
                    }
                    self.holders
                        .insert(claimant.clone(), Held::Pool(name.clone()));
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

    /// Holds `ip`, which no pool covers, for `claimant`, unless someone else holds it.
    fn hold_unpooled(
        &mut self,
        claimant: &Claimant,
        ip: IpAddr,
    ) -> Result<Assigned<IpAddr>, AllocError> {
        if let Some(holder) = self.unpooled.get(&ip).filter(|h| *h != claimant) {
            return Err(AllocError::conflict(
                format!("address {ip} (in no IpPool)"),
                holder,
                claimant.clone(),
            ));
        }
        self.release(claimant);
        self.unpooled.insert(ip, claimant.clone());
        self.holders.insert(claimant.clone(), Held::Unpooled(ip));
        Ok(Assigned {
            pool: None,
            value: ip,
        })
    }

    /// Frees the claimant's address wherever it is.
    pub fn release(&mut self, claimant: &Claimant) -> Option<Assigned<IpAddr>> {
        match self.holders.remove(claimant)? {
            Held::Pool(name) => {
                let value = self.pools.get_mut(&name)?.release(claimant)?;
                Some(Assigned {
                    pool: Some(name),
                    value,
                })
            }
            Held::Unpooled(ip) => {
                self.unpooled.remove(&ip);
                Some(Assigned {
                    pool: None,
                    value: ip,
                })
            }
        }
    }

    /// The claimant's address and pool.
    pub fn lookup(&self, claimant: &Claimant) -> Option<Assigned<IpAddr>> {
        match self.holders.get(claimant)? {
            Held::Pool(name) => Some(Assigned {
                pool: Some(name.clone()),
                value: self.pools.get(name)?.get(claimant)?,
            }),
            Held::Unpooled(ip) => Some(Assigned {
                pool: None,
                value: *ip,
            }),
        }
    }

    /// Who holds `ip`, in a pool or outside every pool.
    pub fn holder(&self, ip: IpAddr) -> Option<&Claimant> {
        self.pools
            .values()
            .filter(|p| p.covers(ip))
            .find_map(|p| p.holder_of(ip))
            .or_else(|| self.unpooled.get(&ip))
    }

    /// Puts `claimant` back to exactly `before` (what [`AddressPools::lookup`] said before a
    /// change that could not be completed): what it holds now is released, and `before`, if
    /// any, is held again as it was. Returns false if someone else took it meanwhile.
    pub fn restore(&mut self, claimant: &Claimant, before: Option<&Assigned<IpAddr>>) -> bool {
        self.release(claimant);
        let Some(before) = before else {
            return true;
        };
        match &before.pool {
            Some(name) => {
                let Some(pool) = self.pools.get_mut(name) else {
                    return false;
                };
                if !pool.restore(claimant, before.value) {
                    return false;
                }
                self.holders
                    .insert(claimant.clone(), Held::Pool(name.clone()));
                true
            }
            None => self.hold_unpooled(claimant, before.value).is_ok(),
        }
    }

    /// Forgets every allocation and imports `(pool, claimant, address)` claims in any order
    /// (`pool: None` for an address outside every pool). Claims naming a missing pool are
    /// reported (`PoolMissing`); a claimant found in two pools keeps the one whose name sorts
    /// first, and the other is reported; of two claimants of one unpooled address, the one
    /// that sorts first keeps it.
    pub fn rebuild(
        &mut self,
        claims: impl IntoIterator<Item = (Option<String>, Claimant, IpAddr)>,
    ) -> RebuildReport {
        let mut by_pool: BTreeMap<String, Vec<(Claimant, IpAddr)>> = BTreeMap::new();
        let mut unpooled: Vec<(IpAddr, Claimant)> = Vec::new();
        for (p, c, ip) in claims {
            match p {
                Some(p) => by_pool.entry(p).or_default().push((c, ip)),
                None => unpooled.push((ip, c)),
            }
        }
        let mut report = RebuildReport::default();
        self.holders.clear();
        self.unpooled.clear();
        for (name, pool) in &mut self.pools {
            let claims = by_pool.remove(name).unwrap_or_default();
            report.merge(pool.rebuild(claims));
            let mine: Vec<Claimant> = pool.allocations().map(|(c, _)| c.clone()).collect();
            for c in mine {
                if let Some(Held::Pool(first)) = self.holders.get(&c) {
                    report.conflicts.push(AllocError::invalid(format!(
                        "{c} holds addresses in IpPool {first:?} and IpPool {name:?}; kept the first"
                    )));
                    pool.release(&c);
                } else {
                    self.holders.insert(c, Held::Pool(name.clone()));
                }
            }
        }
        unpooled.sort();
        unpooled.dedup();
        for (ip, c) in unpooled {
            if self.holders.contains_key(&c) {
                report.conflicts.push(AllocError::invalid(format!(
                    "{c} claims {ip} outside every IpPool and another address too; kept the other"
                )));
            } else if let Err(e) = self.hold_unpooled(&c, ip) {
                report.conflicts.push(e);
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
