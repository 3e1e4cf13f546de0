//! Port pools: external port ranges on one address, with separate TCP and UDP spaces.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ranges::{RangeSet, span};
use super::space::{Space, wrap_search};
use super::{AllocError, Claimant, OutOfRange, OutsideReason, PoolPolicy, RebuildReport};

const PORT_WINDOW: (u128, u128) = (1, 65535);

/// The protocol of a forwarded port. TCP and UDP are separate spaces; `tcp_udp` takes the
/// port in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PortProtocol {
    /// TCP only.
    #[serde(rename = "tcp")]
    Tcp,
    /// UDP only.
    #[serde(rename = "udp")]
    Udp,
    /// The same port in both TCP and UDP.
    #[serde(rename = "tcp_udp")]
    TcpUdp,
}

impl PortProtocol {
    /// The word VyOS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::TcpUdp => "tcp_udp",
        }
    }

    pub(crate) fn tcp(self) -> bool {
        matches!(self, Self::Tcp | Self::TcpUdp)
    }

    pub(crate) fn udp(self) -> bool {
        matches!(self, Self::Udp | Self::TcpUdp)
    }
}

impl fmt::Display for PortProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a PortPool declares (the allocator's view of `PortPool.spec`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortPoolSpec {
    /// The VyosRouter the ports are on.
    pub router: String,
    /// The external address (or interface) the ports are on; used in messages.
    pub external_address: Option<String>,
    /// Ranges: `30000-32767`, `8080`.
    pub ports: Vec<String>,
    /// Ports never handed out, in the same syntax.
    pub exclude: Vec<String>,
    /// Protocols that may take ports; empty means tcp, udp and tcp_udp.
    pub protocols: Vec<PortProtocol>,
    /// Who may use the pool, and whether it auto-assigns.
    pub policy: PoolPolicy,
}

/// What to allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRequest {
    /// Exactly `first..=last`.
    Fixed {
        /// The protocol space(s).
        protocol: PortProtocol,
        /// First port.
        first: u16,
        /// Last port (equal to `first` for one port).
        last: u16,
    },
    /// Any `count` contiguous free ports.
    Auto {
        /// The protocol space(s).
        protocol: PortProtocol,
        /// How many contiguous ports (1 for a single port).
        count: u16,
    },
}

impl PortRequest {
    /// One fixed port.
    pub fn fixed(protocol: PortProtocol, port: u16) -> Self {
        Self::Fixed {
            protocol,
            first: port,
            last: port,
        }
    }

    /// Any one free port.
    pub fn auto(protocol: PortProtocol) -> Self {
        Self::Auto { protocol, count: 1 }
    }

    /// The protocol asked for.
    pub fn protocol(&self) -> PortProtocol {
        match *self {
            Self::Fixed { protocol, .. } | Self::Auto { protocol, .. } => protocol,
        }
    }

    fn satisfied_by(&self, a: &PortAllocation) -> bool {
        match *self {
            Self::Fixed {
                protocol,
                first,
                last,
            } => a.protocol == protocol && a.first == first && a.last == last,
            Self::Auto { protocol, count } => a.protocol == protocol && a.len() == count,
        }
    }
}

/// Ports held by one claimant: `first..=last` in `protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortAllocation {
    /// The protocol space(s).
    pub protocol: PortProtocol,
    /// First port.
    pub first: u16,
    /// Last port.
    pub last: u16,
}

impl PortAllocation {
    /// How many ports.
    pub fn len(&self) -> u16 {
        self.last - self.first + 1
    }

    /// Never true; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }
}

impl fmt::Display for PortAllocation {
    /// `30000/tcp` or `30000-30009/tcp_udp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}/{}", self.first, self.protocol)
        } else {
            write!(f, "{}-{}/{}", self.first, self.last, self.protocol)
        }
    }
}

/// Port pool usage. `used` counts port numbers in use in either space (a `tcp_udp`
/// allocation counts once), `free` those in use in neither, so `used + free == total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortCounts {
    /// Ports the pool can hand out (per protocol space).
    pub total: u128,
    /// Ports in use in TCP or UDP or both.
    pub used: u128,
    /// Ports free in both spaces (what a `tcp_udp` request can still get).
    pub free: u128,
    /// Ports in use in the TCP space.
    pub tcp_used: u128,
    /// Ports in use in the UDP space.
    pub udp_used: u128,
}

impl PortCounts {
    /// Ports still free in the fuller of the two spaces.
    pub fn free_in_fuller_space(&self) -> u128 {
        self.total - self.tcp_used.max(self.udp_used).min(self.total)
    }
}

/// One PortPool: its ranges on one external address, and who holds which ports.
#[derive(Debug, Clone)]
pub struct PortPool {
    name: String,
    label: String,
    spec: PortPoolSpec,
    entries: RangeSet,
    tcp: Space,
    udp: Space,
    /// `|tcp ∩ udp ∩ avail|`, so that the union is counted in `O(1)`.
    overlap: u128,
    holders: HashMap<Claimant, PortAllocation>,
    cursor: u128,
}

impl PortPool {
    /// Builds the pool `name` from `spec`, or says which entry is malformed.
    pub fn new(name: impl Into<String>, spec: PortPoolSpec) -> Result<Self, AllocError> {
        let name = name.into();
        let mut entries = RangeSet::default();
        for e in &spec.ports {
            let (lo, hi) = parse_ports(e)?;
            entries.insert(lo, hi);
        }
        let mut excluded = RangeSet::default();
        for e in &spec.exclude {
            let (lo, hi) = parse_ports(e)?;
            excluded.insert(lo, hi);
        }
        let avail = entries.difference(&excluded);
        let cursor = avail.runs().next().map_or(1, |(lo, _)| lo);
        let label = match &spec.external_address {
            Some(a) => format!("PortPool {name:?} on {a}"),
            None => format!("PortPool {name:?}"),
        };
        Ok(Self {
            name,
            label,
            spec,
            entries,
            tcp: Space::new(avail.clone()),
            udp: Space::new(avail),
            overlap: 0,
            holders: HashMap::new(),
            cursor,
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The spec the pool was built from.
    pub fn spec(&self) -> &PortPoolSpec {
        &self.spec
    }

    /// Whether the pool hands out ports of `protocol`.
    pub fn offers(&self, protocol: PortProtocol) -> bool {
        self.spec.protocols.is_empty() || self.spec.protocols.contains(&protocol)
    }

    /// Whether the pool's ranges cover every port of `first..=last` (exclusions aside).
    pub fn covers(&self, first: u16, last: u16) -> bool {
        first <= last && self.entries.contains_all(first.into(), last.into())
    }

    /// Total, used and free, in `O(1)`.
    pub fn counts(&self) -> PortCounts {
        let total = self.tcp.total();
        let (tcp_used, udp_used) = (self.tcp.used(), self.udp.used());
        let used = (tcp_used + udp_used).saturating_sub(self.overlap);
        PortCounts {
            total,
            used,
            free: total - used.min(total),
            tcp_used,
            udp_used,
        }
    }

    /// Gives `claimant` ports. Asking again returns the same ports; a changed request moves
    /// the claimant only once the new ports are held, so a failed move keeps the old ones.
    pub fn allocate(
        &mut self,
        claimant: &Claimant,
        request: PortRequest,
    ) -> Result<PortAllocation, AllocError> {
        if !self.spec.policy.allows(&claimant.namespace) {
            return Err(AllocError::NotAllowedForNamespace {
                pool: self.label.clone(),
                namespace: claimant.namespace.clone(),
            });
        }
        let protocol = request.protocol();
        if !self.offers(protocol) {
            return Err(AllocError::invalid(format!(
                "{} does not offer {protocol} ports (its protocols: {}): add {protocol} to its \
                 spec.protocols, or use another pool",
                self.label,
                self.protocols_text()
            )));
        }
        let Some(held) = self.holders.get(claimant).copied() else {
            return self.allocate_new(claimant, request);
        };
        if request.satisfied_by(&held) {
            return Ok(held);
        }
        self.release(claimant);
        self.allocate_new(claimant, request).inspect_err(|_| {
            self.insert(held, claimant.clone());
        })
    }

    fn allocate_new(
        &mut self,
        claimant: &Claimant,
        request: PortRequest,
    ) -> Result<PortAllocation, AllocError> {
        let a = match request {
            PortRequest::Fixed {
                protocol,
                first,
                last,
            } => {
                if first == 0 || first > last {
                    return Err(AllocError::invalid(format!(
                        "ports {first}-{last}: a port range must run from low to high within 1-65535"
                    )));
                }
                let a = PortAllocation {
                    protocol,
                    first,
                    last,
                };
                if let Some(reason) = self.outside_reason(a.first.into(), a.last.into()) {
                    return Err(AllocError::OutsidePool {
                        pool: self.label.clone(),
                        resource: format!("port {a}"),
                        reason,
                    });
                }
                if let Some((holder, space)) = self.holder(&a) {
                    return Err(AllocError::conflict(
                        self.resource(&a, space),
                        holder,
                        claimant.clone(),
                    ));
                }
                a
            }
            PortRequest::Auto { protocol, count } => {
                if count == 0 {
                    return Err(AllocError::invalid("a port block needs at least one port"));
                }
                let len = u128::from(count);
                let found = wrap_search(self.cursor, PORT_WINDOW, |from, to| {
                    self.find_common(protocol, len, from, to)
                });
                let Some(lo) = found else {
                    let wanted = if count == 1 {
                        format!("free {protocol} port")
                    } else {
                        format!("{count} contiguous free {protocol} ports")
                    };
                    return Err(AllocError::Exhausted {
                        pool: self.label.clone(),
                        wanted,
                    });
                };
                self.cursor = lo + len;
                // `find_common` stays within 1..=65535, so these fit in u16.
                PortAllocation {
                    protocol,
                    first: port(lo),
                    last: port(lo + len - 1),
                }
            }
        };
        self.insert(a, claimant.clone());
        Ok(a)
    }

    /// The first start at or after `from` free for `len` ports in every space of `protocol`.
    fn find_common(&self, protocol: PortProtocol, len: u128, from: u128, to: u128) -> Option<u128> {
        match protocol {
            PortProtocol::Tcp => self.tcp.find_from(len, from, to),
            PortProtocol::Udp => self.udp.find_from(len, from, to),
            PortProtocol::TcpUdp => {
                let mut c = from;
                loop {
                    let t = self.tcp.find_from(len, c, to)?;
                    let u = self.udp.find_from(len, t, to)?;
                    if t == u {
                        return Some(t);
                    }
                    c = u;
                }
            }
        }
    }

    /// Frees the claimant's ports, returning them.
    pub fn release(&mut self, claimant: &Claimant) -> Option<PortAllocation> {
        let a = self.holders.remove(claimant)?;
        let (lo, hi) = (u128::from(a.first), u128::from(a.last));
        if a.protocol.udp() {
            self.udp.remove(lo);
            self.overlap = self.overlap.saturating_sub(self.tcp.used_within(lo, hi));
        }
        if a.protocol.tcp() {
            self.tcp.remove(lo);
            self.overlap = self.overlap.saturating_sub(self.udp.used_within(lo, hi));
        }
        Some(a)
    }

    fn insert(&mut self, a: PortAllocation, claimant: Claimant) {
        let (lo, hi) = (u128::from(a.first), u128::from(a.last));
        if a.protocol.tcp() {
            self.overlap += self.udp.used_within(lo, hi);
            self.tcp.insert(lo, hi, claimant.clone());
        }
        if a.protocol.udp() {
            self.overlap += self.tcp.used_within(lo, hi);
            self.udp.insert(lo, hi, claimant.clone());
        }
        self.holders.insert(claimant, a);
    }

    /// Gives `claimant` back exactly `a`, as it held it before, unless someone else holds
    /// one of those ports now; see [`super::AddressPool`]'s `restore`.
    pub(crate) fn restore(&mut self, claimant: &Claimant, a: PortAllocation) -> bool {
        self.release(claimant);
        if self.holder(&a).is_some() {
            return false;
        }
        self.insert(a, claimant.clone());
        true
    }

    /// The protocols the pool offers, for messages (`tcp, udp, tcp_udp` when it names none).
    pub fn protocols_text(&self) -> String {
        if self.spec.protocols.is_empty() {
            return "tcp, udp, tcp_udp".to_owned();
        }
        let words: Vec<&str> = self.spec.protocols.iter().map(|p| p.as_str()).collect();
        words.join(", ")
    }

    /// The claimant's ports, if it holds any.
    pub fn get(&self, claimant: &Claimant) -> Option<PortAllocation> {
        self.holders.get(claimant).copied()
    }

    /// Who holds `port` in `protocol` (for `tcp_udp`: in either space), if anyone.
    pub fn holder_of(&self, protocol: PortProtocol, port: u16) -> Option<&Claimant> {
        let a = PortAllocation {
            protocol,
            first: port,
            last: port,
        };
        self.holder(&a).map(|(c, _)| c)
    }

    fn holder(&self, a: &PortAllocation) -> Option<(&Claimant, PortProtocol)> {
        let (lo, hi) = (u128::from(a.first), u128::from(a.last));
        let tcp = a.protocol.tcp().then(|| self.tcp.holder(lo, hi)).flatten();
        let udp = a.protocol.udp().then(|| self.udp.holder(lo, hi)).flatten();
        tcp.map(|(_, _, c)| (c, PortProtocol::Tcp))
            .or_else(|| udp.map(|(_, _, c)| (c, PortProtocol::Udp)))
    }

    /// Every allocation, ordered by first port then protocol.
    pub fn allocations(&self) -> Vec<(&Claimant, PortAllocation)> {
        let mut all: Vec<_> = self.holders.iter().map(|(c, a)| (c, *a)).collect();
        all.sort_unstable_by_key(|&(c, a)| (a.first, a.protocol, c));
        all
    }

    /// How many allocations the pool holds.
    pub fn len(&self) -> usize {
        self.holders.len()
    }

    /// True when nothing is allocated.
    pub fn is_empty(&self) -> bool {
        self.holders.is_empty()
    }

    /// Forgets every allocation and imports `claims` (in any order) instead. As for
    /// [`super::AddressPool::rebuild`]: order-independent (claims are sorted by first port,
    /// last port, protocol, then claimant), the claim that sorts first keeps a contested port
    /// and the other is reported as a conflict naming both; claims outside the pool are kept
    /// and reported.
    pub fn rebuild(
        &mut self,
        claims: impl IntoIterator<Item = (Claimant, PortAllocation)>,
    ) -> RebuildReport {
        self.tcp.clear();
        self.udp.clear();
        self.overlap = 0;
        self.holders.clear();
        self.cursor = self.tcp.avail().runs().next().map_or(1, |(lo, _)| lo);
        let mut claims: Vec<_> = claims
            .into_iter()
            .map(|(c, a)| ((a.first, a.last, a.protocol), c))
            .collect();
        claims.sort_unstable();
        claims.dedup();
        let mut report = RebuildReport::default();
        for ((first, last, protocol), claimant) in claims {
            let a = PortAllocation {
                protocol,
                first,
                last,
            };
            if a.first == 0 || a.first > a.last {
                report.conflicts.push(AllocError::invalid(format!(
                    "{claimant} claims ports {}-{} in {}, which is not a valid range",
                    a.first, a.last, self.label
                )));
                continue;
            }
            if let Some(held) = self.holders.get(&claimant) {
                report.conflicts.push(AllocError::invalid(format!(
                    "{claimant} claims both {held} and {a} in {}; kept {held}",
                    self.label
                )));
                continue;
            }
            if let Some((holder, space)) = self.holder(&a) {
                report.conflicts.push(AllocError::conflict(
                    self.resource(&a, space),
                    holder,
                    claimant,
                ));
                continue;
            }
            if let Some(reason) = self.outside_reason(a.first.into(), a.last.into()) {
                report.out_of_range.push(OutOfRange {
                    claimant: claimant.clone(),
                    resource: a.to_string(),
                    reason,
                });
            }
            self.insert(a, claimant);
        }
        report
    }

    /// Applies an edited spec, keeping every allocation (those now outside are reported).
    pub fn reconfigure(&mut self, spec: PortPoolSpec) -> Result<RebuildReport, AllocError> {
        let mut next = Self::new(self.name.clone(), spec)?;
        let claims: Vec<_> = self.holders.iter().map(|(c, a)| (c.clone(), *a)).collect();
        let report = next.rebuild(claims);
        *self = next;
        Ok(report)
    }

    /// Allocations the pool would not hand out today (for `status.outOfRange`).
    pub fn out_of_range(&self) -> Vec<OutOfRange> {
        self.allocations()
            .into_iter()
            .filter_map(|(c, a)| {
                self.outside_reason(a.first.into(), a.last.into())
                    .map(|reason| OutOfRange {
                        claimant: c.clone(),
                        resource: a.to_string(),
                        reason,
                    })
            })
            .collect()
    }

    fn outside_reason(&self, lo: u128, hi: u128) -> Option<OutsideReason> {
        if self.tcp.avail().contains_all(lo, hi) {
            None
        } else if !self.entries.contains_all(lo, hi) {
            Some(OutsideReason::NotInPool)
        } else {
            Some(OutsideReason::Excluded)
        }
    }

    fn resource(&self, a: &PortAllocation, space: PortProtocol) -> String {
        let ports = if a.first == a.last {
            format!("{space} port {}", a.first)
        } else {
            format!("{space} ports {}-{}", a.first, a.last)
        };
        format!("{ports} in {}", self.label)
    }
}

/// A port offset back to a port; offsets here are always within 1..=65535.
fn port(v: u128) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// Parses `8080` or `30000-32767` into an inclusive range of offsets.
fn parse_ports(entry: &str) -> Result<(u128, u128), AllocError> {
    let bad = || {
        AllocError::invalid(format!(
            "port entry {entry:?}: must be a port 1-65535 or a range low-high within 1-65535"
        ))
    };
    let one = |s: &str| -> Result<u128, AllocError> {
        match s.trim().parse::<u16>() {
            Ok(p) if p >= 1 => Ok(p.into()),
            _ => Err(bad()),
        }
    };
    let (lo, hi) = match entry.split_once('-') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let p = one(entry)?;
            (p, p)
        }
    };
    if lo > hi || span(lo, hi) == 0 {
        return Err(bad());
    }
    Ok((lo, hi))
}

#[cfg(test)]
#[path = "port_tests.rs"]
mod tests;
