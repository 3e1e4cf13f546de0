//! Forward-filter accept rules (`spec.firewall`), the pure part: from the NAT rules a pass
//! targets, the accept rules the router's `firewall ipv4 forward filter` should hold, and
//! the ops, split by when they go.
//!
//! - `per-rule`: NAT rule `n` gets accept rule `fw.start + (n - nat.start)`, matching the
//!   connections destination NAT translated (`connection-status nat destination`) to its
//!   protocol, internal address and port, from its sources (the same `source address`, or
//!   the same network-group, as the NAT rule): the firewall carries the NAT rule's source
//!   restriction.
//! - `nat-accept`: one rule, `fw.start`, accepting every destination-NATed connection.
//! - `off`: none; owned rules are removed.
//!
//! **Order.** An accept rule matches only connections DNAT translated to its internal
//! endpoint, so it accepts nothing until its NAT rule exists: new and changed accept rules
//! go **before** the NAT request (traffic is never dropped for a rule that is there), and
//! removed ones **after** it (never accepted for a rule that is not). The exception: an
//! accept rule naming a network-group that the NAT request creates goes after it (VyOS
//! refuses a rule naming a group that does not exist).
//!
//! Ownership: inside the firewall rule range with the `vmnet:` marker in the description.
//! A router whose forward filter accepts by default needs no accept rule: nothing is
//! written, and the status says so.

use std::collections::{BTreeMap, BTreeSet};

use vmnet_api::{FirewallMode, VyosRouterSpec};
use vyos_client::firewall::{ForwardFilter, ForwardRule, diff_rules, validate_rule_for};
use vyos_client::nat::{ConfigOp, NatRule, Protocol, SchemaVersion};

use crate::render::MARKER;

/// The description of the `nat-accept` rule.
pub const NAT_ACCEPT: &str = "vmnet:nat-accept destination-NATed connections";

/// The firewall step's change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The owned accept rules the router should hold.
    pub target: BTreeMap<u32, ForwardRule>,
    /// The owned accept rules it holds.
    pub owned: BTreeMap<u32, ForwardRule>,
    /// Ops sent before the NAT request (new and changed accept rules).
    pub before_nat: Vec<ConfigOp>,
    /// Ops sent after it (removals, and rules naming a group the NAT request creates).
    pub after_nat: Vec<ConfigOp>,
    /// NAT rules whose accept rule VyOS would refuse, with why (never sent).
    pub refused: BTreeMap<u32, String>,
    /// For the router's status: why nothing is written, when that is so.
    pub note: Option<String>,
}

/// The plan for a router with `spec`, whose pass targets the NAT rules `nat`, holding the
/// forward filter `filter` and (before the NAT request) the owned network-groups `groups`.
pub fn plan<R: std::borrow::Borrow<NatRule>>(
    spec: &VyosRouterSpec,
    nat: &BTreeMap<u32, R>,
    filter: &ForwardFilter,
    groups: &BTreeSet<u32>,
    version: SchemaVersion,
) -> Plan {
    let mut out = Plan::default();
    let Some(fw) = spec.firewall.as_ref() else {
        return out;
    };
    let owned_here = |n: u32, r: &ForwardRule| {
        fw.rule_range.is_none_or(|range| range.contains(n))
            && r.description
                .as_deref()
                .is_some_and(|d| d.starts_with(MARKER))
    };
    out.owned = filter
        .rules
        .iter()
        .filter(|(n, r)| owned_here(**n, r))
        .map(|(n, r)| (*n, r.clone()))
        .collect();
    if fw.mode != FirewallMode::Off && filter.effective_default_action() == "accept" {
        out.note = Some(
            "the router's IPv4 forward filter accepts by default (no `firewall ipv4 forward filter default-action drop`), so forwarded traffic needs no accept rule: none written"
                .to_owned(),
        );
        return out;
    }
    match (fw.mode, fw.rule_range) {
        (FirewallMode::Off, _) | (_, None) => {}
        (FirewallMode::NatAccept, Some(range)) => {
            let mut r = ForwardRule::new(range.start);
            r.action = Some("accept".into());
            r.connection_status_nat = Some("destination".into());
            r.description = Some(NAT_ACCEPT.into());
            out.target.insert(range.start, r);
        }
        (FirewallMode::PerRule, Some(range)) => {
            for (n, rule) in nat {
                let rule = rule.borrow();
                let Some(fw_n) = n
                    .checked_sub(spec.rule_range.start)
                    .and_then(|off| range.start.checked_add(off))
                    .filter(|f| range.contains(*f))
                else {
                    out.refused.insert(
                        *n,
                        format!(
                            "no forward-filter rule number for NAT rule {n}: spec.firewall.ruleRange holds fewer numbers than spec.ruleRange"
                        ),
                    );
                    continue;
                };
                let accept = accept_rule(fw_n, rule);
                if let Err(errs) = validate_rule_for(&accept, version) {
                    let why: Vec<String> = errs.iter().map(ToString::to_string).collect();
                    out.refused.insert(
                        *n,
                        format!(
                            "VyOS would refuse its forward-filter rule {fw_n}: {}",
                            why.join("; ")
                        ),
                    );
                    continue;
                }
                out.target.insert(fw_n, accept);
            }
        }
    }
    // Keep what the router has beyond the operator's leaves? No: the rule is the
    // operator's, leaf by leaf, so a hand edit is drift and is put back.
    for (n, rule) in &out.target {
        let mut ops = diff_rules(
            &out.owned
                .get(n)
                .map(|r| (*n, r.clone()))
                .into_iter()
                .collect(),
            &BTreeMap::from([(*n, rule.clone())]),
        );
        let needs_new_group = rule
            .source
            .group
            .network_group
            .as_deref()
            .and_then(crate::render::group_number)
            .is_some_and(|g| !groups.contains(&g));
        if needs_new_group {
            out.after_nat.append(&mut ops);
        } else {
            out.before_nat.append(&mut ops);
        }
    }
    let gone: BTreeMap<u32, ForwardRule> = out
        .owned
        .iter()
        .filter(|(n, _)| !out.target.contains_key(n))
        .map(|(n, r)| (*n, r.clone()))
        .collect();
    out.after_nat.extend(diff_rules(&gone, &BTreeMap::new()));
    out
}

/// The accept rule for NAT rule `nat`, numbered `number`.
pub fn accept_rule(number: u32, nat: &NatRule) -> ForwardRule {
    let mut r = ForwardRule::new(number);
    r.action = Some("accept".into());
    r.connection_status_nat = Some("destination".into());
    r.description = nat.description.clone();
    r.protocol = nat.protocol.clone();
    r.destination.address = nat.translation.address.clone();
    // A port match needs a protocol that has ports (tcp, udp, tcp_udp).
    let ported = matches!(
        nat.protocol,
        Some(Protocol::Tcp | Protocol::Udp | Protocol::TcpUdp)
    );
    if ported {
        r.destination.port = nat
            .translation
            .port
            .clone()
            .or_else(|| nat.destination.port.clone());
    }
    r.source.address = nat.source.address.clone();
    r.source.group.network_group = nat.source.group.network_group.clone();
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use vmnet_api::{FirewallSpec, RuleRange};
    use vyos_client::firewall::apply_rule_ops;

    fn spec(mode: FirewallMode) -> VyosRouterSpec {
        let mut s = crate::fixtures::router();
        s.firewall = Some(FirewallSpec {
            mode,
            rule_range: Some(RuleRange {
                start: 5100,
                end: 5199,
            }),
        });
        s
    }

    fn nat(n: u32, sources: Option<&str>, group: bool) -> NatRule {
        let mut r = NatRule::new(vyos_client::nat::NatKind::Destination, n);
        r.description = Some(format!("vmnet:lab/r{n}"));
        r.protocol = Some(Protocol::Tcp);
        r.destination.port = Some("30022".into());
        r.translation.address = Some("10.20.0.5".into());
        r.translation.port = Some("22".into());
        r.source.address = sources.map(str::to_owned);
        if group {
            r.source.group.network_group = Some(crate::render::group_name(n));
        }
        r
    }

    fn drop_filter(rules: BTreeMap<u32, ForwardRule>) -> ForwardFilter {
        ForwardFilter {
            default_action: Some("drop".into()),
            rules,
            ..ForwardFilter::default()
        }
    }

    #[test]
    fn each_nat_rule_gets_an_accept_rule_for_its_endpoint_and_sources() {
        let nats = BTreeMap::from([
            (100, nat(100, Some("198.51.100.0/24"), false)),
            (101, nat(101, None, true)),
        ]);
        let p = plan(
            &spec(FirewallMode::PerRule),
            &nats,
            &drop_filter(BTreeMap::new()),
            &BTreeSet::new(),
            SchemaVersion::V1_5,
        );
        assert_eq!(p.target.keys().copied().collect::<Vec<_>>(), [5100, 5101]);
        let r = &p.target[&5100];
        assert_eq!(r.destination.address.as_deref(), Some("10.20.0.5"));
        assert_eq!(r.destination.port.as_deref(), Some("22"));
        assert_eq!(r.source.address.as_deref(), Some("198.51.100.0/24"));
        assert_eq!(r.connection_status_nat.as_deref(), Some("destination"));
        assert_eq!(
            p.target[&5101].source.group.network_group.as_deref(),
            Some("VMNET-101")
        );
        // The rule naming a group the NAT request creates goes after it; the other before.
        let mut after = BTreeMap::new();
        apply_rule_ops(&mut after, &p.before_nat).unwrap();
        assert_eq!(after.keys().copied().collect::<Vec<_>>(), [5100]);
        apply_rule_ops(&mut after, &p.after_nat).unwrap();
        assert_eq!(
            after,
            p.target.iter().map(|(n, r)| (*n, r.normalized())).collect()
        );
    }

    #[test]
    fn removals_go_after_nat_and_foreign_rules_stay() {
        let mut foreign = ForwardRule::new(5150);
        foreign.action = Some("accept".into());
        foreign.description = Some("by hand".into());
        let mut ours = accept_rule(5101, &nat(101, None, false));
        ours.number = 5101;
        let filter = drop_filter(BTreeMap::from([(5150, foreign), (5101, ours)]));
        let p = plan(
            &spec(FirewallMode::PerRule),
            &BTreeMap::<u32, NatRule>::new(),
            &filter,
            &BTreeSet::new(),
            SchemaVersion::V1_5,
        );
        assert!(p.before_nat.is_empty());
        assert_eq!(
            p.after_nat,
            vec![ConfigOp::delete(vyos_client::firewall::rule_path(5101))]
        );
        // Off removes every owned rule, and only those.
        let p = plan(
            &spec(FirewallMode::Off),
            &BTreeMap::from([(100, nat(100, None, false))]),
            &filter,
            &BTreeSet::new(),
            SchemaVersion::V1_5,
        );
        assert_eq!(p.after_nat.len(), 1);
        assert!(p.target.is_empty());
    }

    #[test]
    fn an_accepting_filter_needs_nothing_and_says_so() {
        let nats = BTreeMap::from([(100, nat(100, None, false))]);
        let p = plan(
            &spec(FirewallMode::PerRule),
            &nats,
            &ForwardFilter::default(),
            &BTreeSet::new(),
            SchemaVersion::V1_5,
        );
        assert!(p.before_nat.is_empty() && p.after_nat.is_empty());
        assert!(p.note.unwrap().contains("accepts by default"));
    }

    #[test]
    fn nat_accept_is_one_rule_and_a_changed_leaf_is_one_op() {
        let p = plan(
            &spec(FirewallMode::NatAccept),
            &BTreeMap::<u32, NatRule>::new(),
            &drop_filter(BTreeMap::new()),
            &BTreeSet::new(),
            SchemaVersion::V1_5,
        );
        assert_eq!(p.target.len(), 1);
        assert_eq!(p.target[&5100].description.as_deref(), Some(NAT_ACCEPT));
        // A per-rule rule whose translation port changed: one set.
        let before = accept_rule(5100, &nat(100, None, false));
        let mut changed = nat(100, None, false);
        changed.translation.port = Some("2222".into());
        let p = plan(
            &spec(FirewallMode::PerRule),
            &BTreeMap::from([(100, changed)]),
            &drop_filter(BTreeMap::from([(5100, before)])),
            &BTreeSet::new(),
            SchemaVersion::V1_5,
        );
        assert_eq!(p.before_nat.len(), 1, "{:?}", p.before_nat);
    }
}
