//! Every PortPool, and the fixed ports held on a router outside all of them.

use std::collections::BTreeMap;

use super::{
    AllocError, Assigned, Claimant, OutOfRange, OutsideReason, PortAllocation, PortPool,
    PortPoolSpec, PortProtocol, PortRequest, RebuildReport, choose_pools,
};

/// Where a claimant's ports are held.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    /// In this PortPool.
    Pool(String),
    /// Outside every PortPool, on this router.
    Unpooled(String, PortAllocation),
}

/// Every PortPool, which pool each claimant's ports came from, and the fixed ports that no
/// pool covers, per router (held all the same, so two forwards never take one port).
///
/// Holders are ordered by claimant, so the ports of one object are found by a range scan
/// ([`PortPools::held_by`]) rather than by walking every allocation.
#[derive(Debug, Clone, Default)]
pub struct PortPools {
    pools: BTreeMap<String, PortPool>,
    holders: BTreeMap<Claimant, Held>,
    unpooled: BTreeMap<String, BTreeMap<Claimant, PortAllocation>>,
}

/// Whether two allocations share a port in a protocol space.
fn overlap(a: &PortAllocation, b: &PortAllocation) -> bool {
    let spaces = (a.protocol.tcp() && b.protocol.tcp()) || (a.protocol.udp() && b.protocol.udp());
    spaces && a.first <= b.last && b.first <= a.last
}

impl PortPools {
    /// No pools.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates or edits the pool `name`; see [`super::AddressPools::upsert`].
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

    fn held_pool(&self, claimant: &Claimant) -> Option<String> {
        match self.holders.get(claimant) {
            Some(Held::Pool(p)) => Some(p.clone()),
            _ => None,
        }
    }

    /// Every claimant of the object `owner` (same kind, namespace and name, any item) that
    /// holds ports, in a pool or outside: `O(log n)` plus the object's own ports.
    pub fn held_by(&self, owner: &Claimant) -> Vec<Claimant> {
        let start = Claimant::new(&owner.kind, &owner.namespace, &owner.name);
        self.holders
            .range(start..)
            .map(|(c, _)| c)
            .take_while(|c| {
                c.kind == owner.kind && c.namespace == owner.namespace && c.name == owner.name
            })
            .cloned()
            .collect()
    }

    /// Why no auto-assign pool of `router` can serve `protocol`, when that is the case.
    fn no_auto_pool(&self, router: &str, protocol: PortProtocol) -> Option<AllocError> {
        let here: Vec<&PortPool> = self
            .pools
            .values()
            .filter(|p| p.spec().router == router && p.spec().policy.auto_assign)
            .collect();
        if here.is_empty() {
            return Some(AllocError::invalid(format!(
                "no PortPool is named (portPoolRef) and VyosRouter {router:?} has no PortPool \
                 with autoAssign: name a pool, or set autoAssign: true on one"
            )));
        }
        if here.iter().any(|p| p.offers(protocol)) {
            return None;
        }
        let offers: Vec<String> = here
            .iter()
            .map(|p| format!("{:?} offers {}", p.name(), p.protocols_text()))
            .collect();
        Some(AllocError::invalid(format!(
            "no auto-assign PortPool on VyosRouter {router:?} offers {protocol} ports ({}): add \
             {protocol} to the spec.protocols of one, or name a pool that offers it",
            offers.join("; ")
        )))
    }

    /// Gives `claimant` ports on `router`: from `pool_ref`, else from the auto-assign pools
    /// of that router that offer the protocol, by [`choose_pools`] order. A fixed request
    /// with no `pool_ref` is taken from the pool of the router whose ranges cover it (which
    /// must offer the protocol: a port inside a pool is never handed out beside it), or, if
    /// no pool covers it, held on the router outside the pools unless another claimant
    /// holds one of those ports there. Same idempotence and move rules as
    /// [`super::AddressPools::allocate`].
    pub fn allocate(
        &mut self,
        claimant: &Claimant,
        router: &str,
        pool_ref: Option<&str>,
        request: PortRequest,
    ) -> Result<Assigned<PortAllocation>, AllocError> {
        let held = self.held_pool(claimant);
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
                if pool_ref.is_none()
                    && let Some(e) = self.no_auto_pool(router, protocol)
                {
                    return Err(e);
                }
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
                let covering: Vec<&PortPool> = self
                    .pools
                    .values()
                    .filter(|p| p.spec().router == router && p.covers(first, last))
                    .collect();
                let value = PortAllocation {
                    protocol,
                    first,
                    last,
                };
                if covering.is_empty() {
                    return self.hold_unpooled(claimant, router, value);
                }
                if !covering.iter().any(|p| p.offers(protocol)) {
                    let names: Vec<String> = covering
                        .iter()
                        .map(|p| {
                            format!(
                                "PortPool {:?} (protocols: {})",
                                p.name(),
                                p.protocols_text()
                            )
                        })
                        .collect();
                    return Err(AllocError::invalid(format!(
                        "port {value} lies in {}, which does not offer {protocol} ports: a fixed \
                         port inside a pool's ranges is taken from that pool; add {protocol} to \
                         its spec.protocols, or choose a port outside its ranges",
                        names.join(" and ")
                    )));
                }
                covering
                    .into_iter()
                    .filter(|p| p.offers(protocol))
                    .map(|p| p.name().to_owned())
                    .collect()
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
                    self.forget_unpooled(claimant);
                    self.holders
                        .insert(claimant.clone(), Held::Pool(name.clone()));
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

    fn forget_unpooled(&mut self, claimant: &Claimant) {
        if let Some(Held::Unpooled(router, _)) = self.holders.get(claimant)
            && let Some(on) = self.unpooled.get_mut(router)
        {
            on.remove(claimant);
        }
    }

    /// Holds `value`, which no pool of `router` covers, for `claimant`, unless someone else
    /// holds one of those ports on that router.
    fn hold_unpooled(
        &mut self,
        claimant: &Claimant,
        router: &str,
        value: PortAllocation,
    ) -> Result<Assigned<PortAllocation>, AllocError> {
        if value.first == 0 || value.first > value.last {
            return Err(AllocError::invalid(format!(
                "ports {}-{}: a port range must run from low to high within 1-65535",
                value.first, value.last
            )));
        }
        let taken = self.unpooled.get(router).and_then(|on| {
            on.iter()
                .find(|(c, a)| *c != claimant && overlap(a, &value))
        });
        if let Some((holder, a)) = taken {
            return Err(AllocError::conflict(
                format!("port {a} on VyosRouter {router:?} (in no PortPool)"),
                holder,
                claimant.clone(),
            ));
        }
        self.release(claimant);
        self.unpooled
            .entry(router.to_owned())
            .or_default()
            .insert(claimant.clone(), value);
        self.holders
            .insert(claimant.clone(), Held::Unpooled(router.to_owned(), value));
        Ok(Assigned { pool: None, value })
    }

    /// Frees the claimant's ports wherever they are.
    pub fn release(&mut self, claimant: &Claimant) -> Option<Assigned<PortAllocation>> {
        match self.holders.remove(claimant)? {
            Held::Pool(name) => {
                let value = self.pools.get_mut(&name)?.release(claimant)?;
                Some(Assigned {
                    pool: Some(name),
                    value,
                })
            }
            Held::Unpooled(router, value) => {
                if let Some(on) = self.unpooled.get_mut(&router) {
                    on.remove(claimant);
                }
                Some(Assigned { pool: None, value })
            }
        }
    }

    /// The claimant's ports and pool.
    pub fn lookup(&self, claimant: &Claimant) -> Option<Assigned<PortAllocation>> {
        match self.holders.get(claimant)? {
            Held::Pool(name) => Some(Assigned {
                pool: Some(name.clone()),
                value: self.pools.get(name)?.get(claimant)?,
            }),
            Held::Unpooled(_, value) => Some(Assigned {
                pool: None,
                value: *value,
            }),
        }
    }

    /// Every fixed allocation held on `router` outside its pools.
    pub fn unpooled(&self, router: &str) -> Vec<(&Claimant, PortAllocation)> {
        self.unpooled
            .get(router)
            .map(|on| on.iter().map(|(c, a)| (c, *a)).collect())
            .unwrap_or_default()
    }

    /// Puts `claimant` back to exactly `before` (what [`PortPools::lookup`] said before a
    /// change that could not be completed), on `router`; see
    /// [`super::AddressPools::restore`].
    pub fn restore(
        &mut self,
        claimant: &Claimant,
        router: &str,
        before: Option<&Assigned<PortAllocation>>,
    ) -> bool {
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
            None => self.hold_unpooled(claimant, router, before.value).is_ok(),
        }
    }

    /// Forgets every allocation and imports `(pool, claimant, ports)` claims in any order;
    /// see [`super::AddressPools::rebuild`]. A claim outside every pool names its router
    /// instead: `(Err(router), claimant, ports)`.
    pub fn rebuild(
        &mut self,
        claims: impl IntoIterator<Item = (Result<String, String>, Claimant, PortAllocation)>,
    ) -> RebuildReport {
        let mut by_pool: BTreeMap<String, Vec<(Claimant, PortAllocation)>> = BTreeMap::new();
        let mut unpooled: Vec<(String, Claimant, PortAllocation)> = Vec::new();
        for (p, c, a) in claims {
            match p {
                Ok(p) => by_pool.entry(p).or_default().push((c, a)),
                Err(router) => unpooled.push((router, c, a)),
            }
        }
        let mut report = RebuildReport::default();
        self.holders.clear();
        self.unpooled.clear();
        for (name, pool) in &mut self.pools {
            let claims = by_pool.remove(name).unwrap_or_default();
            report.merge(pool.rebuild(claims));
            let mine: Vec<Claimant> = pool
                .allocations()
                .into_iter()
                .map(|(c, _)| c.clone())
                .collect();
            for c in mine {
                if let Some(Held::Pool(first)) = self.holders.get(&c) {
                    report.conflicts.push(AllocError::invalid(format!(
                        "{c} holds ports in PortPool {first:?} and PortPool {name:?}; kept the first"
                    )));
                    pool.release(&c);
                } else {
                    self.holders.insert(c, Held::Pool(name.clone()));
                }
            }
        }
        unpooled.sort();
        unpooled.dedup();
        for (router, c, a) in unpooled {
            if self.holders.contains_key(&c) {
                report.conflicts.push(AllocError::invalid(format!(
                    "{c} claims {a} outside every PortPool and other ports too; kept the others"
                )));
            } else if let Err(e) = self.hold_unpooled(&c, &router, a) {
                report.conflicts.push(e);
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
