//! Address pools: IPv4 and IPv6 CIDRs, ranges and single addresses.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::ranges::RangeSet;
use super::space::{Space, wrap_search};
use super::{AllocError, Claimant, OutOfRange, OutsideReason, PoolPolicy, RebuildReport};

/// IPv4 addresses live at `::ffff:a.b.c.d` (the IPv4-mapped block) in the shared `u128`
/// space, so one pool can hold both families without collisions.
const V4_BASE: u128 = 0xffff_0000_0000;
const V4_END: u128 = V4_BASE + u32::MAX as u128;

/// An address family, to ask a dual-stack pool for one kind of address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpFamily {
    fn windows(family: Option<Self>) -> &'static [(u128, u128)] {
        match family {
            None => &[(0, u128::MAX)],
            Some(Self::V4) => &[(V4_BASE, V4_END)],
            Some(Self::V6) => &[(0, V4_BASE - 1), (V4_END + 1, u128::MAX)],
        }
    }
}

/// What an IpPool declares (the allocator's view of `IpPool.spec`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPoolSpec {
    /// Entries: `10.0.0.0/24`, `10.0.0.10-10.0.0.20`, `10.0.0.7`, `2001:db8::/64`, ...
    pub addresses: Vec<String>,
    /// Entries never handed out, in the same syntax.
    pub exclude: Vec<String>,
    /// Hand out the first and last address of IPv4 CIDRs (prefixes up to /30) too.
    pub include_network_and_broadcast: bool,
    /// Who may use the pool, and whether it auto-assigns.
    pub policy: PoolPolicy,
}

/// What to allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRequest {
    /// Any free address (of `family`, when given).
    Auto {
        /// Restrict to one family; `None` takes the next free address of either.
        family: Option<IpFamily>,
    },
    /// Exactly this address.
    Fixed(IpAddr),
}

impl AddressRequest {
    /// Any free address.
    pub const ANY: Self = Self::Auto { family: None };
}

/// Pool usage for status. `used + free == total` always; none of them enumerates the pool.
/// Status writes `total` and `free` as decimal strings (an IPv6 pool exceeds 64 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolCounts {
    /// Values the pool can hand out (entries minus exclusions minus skipped addresses).
    pub total: u128,
    /// Of those, how many are allocated. Allocations outside the pool are not counted.
    pub used: u128,
    /// `total - used`.
    pub free: u128,
}

/// One IpPool: its addresses and who holds which.
///
/// Allocation and release cost `O(log n)` in the number of allocations; memory is
/// proportional to the allocations and the number of spec entries, never to the pool size.
#[derive(Debug, Clone)]
pub struct AddressPool {
    name: String,
    label: String,
    spec: AddressPoolSpec,
    /// Everything the entries cover (before skips and exclusions).
    entries: RangeSet,
    excluded: RangeSet,
    space: Space,
    holders: HashMap<Claimant, u128>,
    cursor: u128,
}

impl AddressPool {
    /// Builds the pool `name` from `spec`, or says which entry is malformed.
    pub fn new(name: impl Into<String>, spec: AddressPoolSpec) -> Result<Self, AllocError> {
        let name = name.into();
        let mut entries = RangeSet::default();
        let mut skipped_union = RangeSet::default();
        for e in &spec.addresses {
            let (lo, hi, cidr_v4) = parse_entry(e)?;
            entries.insert(lo, hi);
            let mut own = RangeSet::default();
            own.insert(lo, hi);
            if cidr_v4 && !spec.include_network_and_broadcast && hi - lo >= 3 {
                own.remove(lo, lo);
                own.remove(hi, hi);
            }
            for (a, b) in own.runs() {
                skipped_union.insert(a, b);
            }
        }
        let mut excluded = RangeSet::default();
        for e in &spec.exclude {
            let (lo, hi, _) = parse_entry(e)?;
            excluded.insert(lo, hi);
        }
        let avail = skipped_union.difference(&excluded);
        let cursor = avail.runs().next().map_or(0, |(lo, _)| lo);
        Ok(Self {
            label: format!("IpPool {name:?}"),
            name,
            spec,
            entries,
            excluded,
            space: Space::new(avail),
            holders: HashMap::new(),
            cursor,
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The spec the pool was built from.
    pub fn spec(&self) -> &AddressPoolSpec {
        &self.spec
    }

    /// Total, used and free, in `O(1)`.
    pub fn counts(&self) -> PoolCounts {
        let total = self.space.total();
        let used = self.space.used();
        PoolCounts {
            total,
            used,
            free: total - used.min(total),
        }
    }

    /// Whether any entry of the pool covers `ip` (exclusions and skips aside).
    pub fn covers(&self, ip: IpAddr) -> bool {
        self.entries.contains(offset(ip))
    }

    /// Gives `claimant` an address. Asking again returns the same address; a changed
    /// request (another fixed address, another family) moves the claimant only once the new
    /// address is held, so a failed move keeps the old one.
    pub fn allocate(
        &mut self,
        claimant: &Claimant,
        request: AddressRequest,
    ) -> Result<IpAddr, AllocError> {
        if !self.spec.policy.allows(&claimant.namespace) {
            return Err(AllocError::NotAllowedForNamespace {
                pool: self.label.clone(),
                namespace: claimant.namespace.clone(),
            });
        }
        let Some(&held) = self.holders.get(claimant) else {
            return self.allocate_new(claimant, request);
        };
        let satisfied = match request {
            AddressRequest::Fixed(ip) => offset(ip) == held,
            AddressRequest::Auto { family } => IpFamily::windows(family)
                .iter()
                .any(|&(lo, hi)| (lo..=hi).contains(&held)),
        };
        if satisfied {
            return Ok(address(held));
        }
        self.release(claimant);
        self.allocate_new(claimant, request).inspect_err(|_| {
            self.space.insert(held, held, claimant.clone());
            self.holders.insert(claimant.clone(), held);
        })
    }

    fn allocate_new(
        &mut self,
        claimant: &Claimant,
        request: AddressRequest,
    ) -> Result<IpAddr, AllocError> {
        let v = match request {
            AddressRequest::Fixed(ip) => {
                let v = offset(ip);
                if let Some(reason) = self.outside_reason(v) {
                    return Err(AllocError::OutsidePool {
                        pool: self.label.clone(),
                        resource: format!("address {}", address(v)),
                        reason,
                    });
                }
                if let Some((_, _, holder)) = self.space.holder(v, v) {
                    return Err(AllocError::conflict(
                        self.resource(v),
                        holder,
                        claimant.clone(),
                    ));
                }
                v
            }
            AddressRequest::Auto { family } => {
                let found = IpFamily::windows(family).iter().find_map(|&w| {
                    wrap_search(self.cursor, w, |a, b| self.space.find_from(1, a, b))
                });
                let Some(v) = found else {
                    let wanted = match family {
                        None => "free address",
                        Some(IpFamily::V4) => "free IPv4 address",
                        Some(IpFamily::V6) => "free IPv6 address",
                    };
                    return Err(AllocError::Exhausted {
                        pool: self.label.clone(),
                        wanted: wanted.to_owned(),
                    });
                };
                self.cursor = v.wrapping_add(1);
                v
            }
        };
        self.space.insert(v, v, claimant.clone());
        self.holders.insert(claimant.clone(), v);
        Ok(address(v))
    }

    /// Frees the claimant's address, returning it.
    pub fn release(&mut self, claimant: &Claimant) -> Option<IpAddr> {
        let v = self.holders.remove(claimant)?;
        self.space.remove(v);
        Some(address(v))
    }

    /// Gives `claimant` back exactly `ip`, as it held it before (inside the pool or, after
    /// an edit of the pool, outside it), unless someone else holds it now. For rolling back
    /// a change that could not be completed; returns whether it holds `ip` afterwards.
    pub(crate) fn restore(&mut self, claimant: &Claimant, ip: IpAddr) -> bool {
        self.release(claimant);
        let v = offset(ip);
        if self.space.holder(v, v).is_some() {
            return false;
        }
        self.space.insert(v, v, claimant.clone());
        self.holders.insert(claimant.clone(), v);
        true
    }

    /// The claimant's address, if it holds one.
    pub fn get(&self, claimant: &Claimant) -> Option<IpAddr> {
        self.holders.get(claimant).map(|&v| address(v))
    }

    /// Who holds `ip`, if anyone.
    pub fn holder_of(&self, ip: IpAddr) -> Option<&Claimant> {
        let v = offset(ip);
        self.space.holder(v, v).map(|(_, _, c)| c)
    }

    /// Every allocation, in address order.
    pub fn allocations(&self) -> impl Iterator<Item = (&Claimant, IpAddr)> + '_ {
        self.space.blocks().map(|(v, _, c)| (c, address(v)))
    }

    /// How many allocations the pool holds (inside or outside its addresses).
    pub fn len(&self) -> usize {
        self.space.block_count()
    }

    /// True when nothing is allocated.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every allocation and imports `claims` (in any order) instead.
    ///
    /// The result does not depend on the order of `claims`: they are sorted (by address,
    /// then claimant), so when two claim one address the claimant that sorts first keeps it
    /// and the other is reported as a conflict naming both. Claims outside the pool are kept and
    /// reported (never moved).
    pub fn rebuild(
        &mut self,
        claims: impl IntoIterator<Item = (Claimant, IpAddr)>,
    ) -> RebuildReport {
        self.space.clear();
        self.holders.clear();
        self.cursor = self.space.avail().runs().next().map_or(0, |(lo, _)| lo);
        // Sorting by value first keeps the comparisons cheap (u128 before strings).
        let mut claims: Vec<(u128, Claimant)> =
            claims.into_iter().map(|(c, ip)| (offset(ip), c)).collect();
        claims.sort_unstable();
        claims.dedup();
        let mut report = RebuildReport::default();
        for (v, claimant) in claims {
            if let Some(&held) = self.holders.get(&claimant) {
                report.conflicts.push(AllocError::invalid(format!(
                    "{claimant} claims both {} and {} in {}; kept {}",
                    address(held),
                    address(v),
                    self.label,
                    address(held)
                )));
                continue;
            }
            if let Some((_, _, holder)) = self.space.holder(v, v) {
                report
                    .conflicts
                    .push(AllocError::conflict(self.resource(v), holder, claimant));
                continue;
            }
            if let Some(reason) = self.outside_reason(v) {
                report.out_of_range.push(OutOfRange {
                    claimant: claimant.clone(),
                    resource: address(v).to_string(),
                    reason,
                });
            }
            self.space.insert(v, v, claimant.clone());
            self.holders.insert(claimant, v);
        }
        report
    }

    /// Applies an edited spec, keeping every allocation (those now outside are reported).
    pub fn reconfigure(&mut self, spec: AddressPoolSpec) -> Result<RebuildReport, AllocError> {
        let mut next = Self::new(self.name.clone(), spec)?;
        let claims: Vec<_> = self.allocations().map(|(c, ip)| (c.clone(), ip)).collect();
        let report = next.rebuild(claims);
        *self = next;
        Ok(report)
    }

    /// Allocations the pool would not hand out today (for `status.outOfRange`).
    pub fn out_of_range(&self) -> Vec<OutOfRange> {
        self.space
            .blocks()
            .filter_map(|(v, _, c)| {
                self.outside_reason(v).map(|reason| OutOfRange {
                    claimant: c.clone(),
                    resource: address(v).to_string(),
                    reason,
                })
            })
            .collect()
    }

    fn outside_reason(&self, v: u128) -> Option<OutsideReason> {
        if self.space.avail().contains(v) {
            None
        } else if !self.entries.contains(v) {
            Some(OutsideReason::NotInPool)
        } else if self.excluded.contains(v) {
            Some(OutsideReason::Excluded)
        } else {
            Some(OutsideReason::NetworkOrBroadcast)
        }
    }

    fn resource(&self, v: u128) -> String {
        format!("address {} in {}", address(v), self.label)
    }
}

/// The `u128` offset of an address. IPv4-mapped IPv6 addresses are the same as IPv4 ones.
fn offset(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => V4_BASE | u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn address(v: u128) -> IpAddr {
    if (V4_BASE..=V4_END).contains(&v) {
        // The mask keeps the low 32 bits, so the cast is exact.
        IpAddr::V4(Ipv4Addr::from((v & u128::from(u32::MAX)) as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

/// Parses one pool entry into `(first, last, is_ipv4_cidr)`.
fn parse_entry(entry: &str) -> Result<(u128, u128, bool), AllocError> {
    let bad = |why: &str| AllocError::invalid(format!("pool entry {entry:?}: {why}"));
    let s = entry.trim();
    let (lo, hi, cidr_v4, v6) = if s.contains('/') {
        let net: IpNet = s
            .parse()
            .map_err(|_| bad("not a CIDR such as 10.0.0.0/24 or 2001:db8::/64"))?;
        if net.network() != net.addr() {
            return Err(bad(&format!(
                "write the CIDR with its network address ({})",
                net.trunc()
            )));
        }
        let v4 = matches!(net, IpNet::V4(_));
        (offset(net.network()), offset(net.broadcast()), v4, !v4)
    } else if let Some((a, b)) = s.split_once('-') {
        let a: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| bad("the start of the range is not an address"))?;
        let b: IpAddr = b
            .trim()
            .parse()
            .map_err(|_| bad("the end of the range is not an address"))?;
        if a.is_ipv4() != b.is_ipv4() {
            return Err(bad("both ends of a range must be of one family"));
        }
        if offset(a) > offset(b) {
            return Err(bad("a range must run from low to high"));
        }
        (offset(a), offset(b), false, a.is_ipv6())
    } else {
        let a: IpAddr = s
            .parse()
            .map_err(|_| bad("not an address, a CIDR or a range low-high"))?;
        (offset(a), offset(a), false, a.is_ipv6())
    };
    if v6 && lo <= V4_END && hi >= V4_BASE {
        return Err(bad(
            "IPv4-mapped IPv6 addresses (::ffff:0:0/96) must be written as IPv4",
        ));
    }
    Ok((lo, hi, cidr_v4))
}

#[cfg(test)]
#[path = "address_tests.rs"]
mod tests;
