//! NAT reflection (hairpin), the pure part: which rules get it, the two rules that make it,
//! which router rules are the operator's, and the ops. No I/O.
//!
//! A forward whose PortRule has `hairpin` (or falls under the router's
//! `spec.hairpin.default`) gets, besides its destination rule `n`, two companions numbered
//! `h = hairpin.ruleRange.start + (n - ruleRange.start)`:
//!
//! - `nat destination rule h`: the forward itself with the inside interface as its inbound
//!   interface, so a client on the inside network that connects to the external address
//!   and port is translated to the VM too;
//! - `nat source rule h`: masquerades connections from the inside network to the VM's
//!   address and port, going out of the inside interface, so the VM answers the router
//!   (which undoes both translations) rather than the client directly.
//!
//! That is VyOS's documented NAT reflection recipe, narrowed to one forward: the recipe's
//! destination rule matches the port on any address (its forward arrives on a dynamic
//! PPPoE address); this one also matches the rule's external address, so inside clients'
//! connections to that port elsewhere are left alone. The recipe's source rule matches the
//! whole inside network as destination; this one matches the VM's address and port, so
//! only reflected connections are masqueraded. The companions go in the same NAT request
//! as their rule, keyed under its number in the plan's ops: added, changed and removed
//! with it, in one commit.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use vmnet_api::{PortRule, VyosRouterSpec};
use vyos_client::nat::{ConfigOp, NatKind, NatRule, diff, validate};

use crate::conditions::Reason;
use crate::render::{Refusal, is_owned};

/// The hairpin companions of one rule, as declared (both set) or as found on the router
/// (either may be missing, deleted by hand).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hairpin {
    /// `nat destination rule h`.
    pub destination: Option<NatRule>,
    /// `nat source rule h`.
    pub source: Option<NatRule>,
}

impl Hairpin {
    /// The companions as `(table, rule)`, destination first.
    pub fn rules(&self) -> impl Iterator<Item = &NatRule> {
        self.destination.iter().chain(self.source.iter())
    }
}

/// The hairpin rule number of NAT rule `n` on a router with `spec` (`None`: the router has
/// no `spec.hairpin`, or its range is too small).
pub fn number(spec: &VyosRouterSpec, n: u32) -> Option<u32> {
    let hp = spec.hairpin.as_ref()?;
    n.checked_sub(spec.rule_range.start)
        .and_then(|off| hp.rule_range.start.checked_add(off))
        .filter(|h| hp.rule_range.contains(*h))
}

/// The NAT rule whose companion hairpin rule `h` is.
pub fn main_number(spec: &VyosRouterSpec, h: u32) -> Option<u32> {
    let hp = spec.hairpin.as_ref()?;
    if !hp.rule_range.contains(h) {
        return None;
    }
    (h - hp.rule_range.start)
        .checked_add(spec.rule_range.start)
        .filter(|n| spec.rule_range.contains(*n))
}

/// A router's hairpin rules split by ownership: the operator's by the number of the rule
/// they belong to, and the others in the hairpin range (never touched), by the number of
/// the rule they keep from its hairpin, with what they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// The operator's (in the hairpin range, carrying the marker).
    pub owned: BTreeMap<u32, Hairpin>,
    /// The others in the hairpin range, e.g. `nat source rule 2100`.
    pub foreign: BTreeMap<u32, String>,
}

/// Sorts the router's `nat destination` and `nat source` rules into the operator's hairpin
/// companions and foreign rules in the hairpin range; rules outside it are not looked at.
pub fn classify(
    spec: &VyosRouterSpec,
    destination: &BTreeMap<u32, NatRule>,
    source: &BTreeMap<u32, NatRule>,
) -> Found {
    let mut out = Found::default();
    let Some(hp) = spec.hairpin.as_ref() else {
        return out;
    };
    for (kind, rules) in [
        (NatKind::Destination, destination),
        (NatKind::Source, source),
    ] {
        for (h, r) in rules.range(hp.rule_range.start..=hp.rule_range.end) {
            let Some(n) = main_number(spec, *h) else {
                continue;
            };
            if is_owned(r, &hp.rule_range) {
                let e = out.owned.entry(n).or_default();
                match kind {
                    NatKind::Destination => e.destination = Some(r.clone()),
                    NatKind::Source => e.source = Some(r.clone()),
                }
            } else {
                out.foreign
                    .entry(n)
                    .or_insert_with(|| format!("nat {kind} rule {h}"));
            }
        }
    }
    out
}

/// The companions of `rule`, rendered as destination rule `main` on a router with
/// `router`: `Ok(None)` when it has no hairpin. A PortRule that asks for hairpin itself and
/// cannot have it is refused naming why; the router's default passes over a rule it cannot
/// apply to (no external address, or sources that leave the inside network out).
pub fn render(
    rule: &PortRule,
    main: &NatRule,
    router: &VyosRouterSpec,
) -> Result<Option<Hairpin>, Refusal> {
    let asked = rule.spec.hairpin;
    let by_default = router
        .hairpin
        .as_ref()
        .is_some_and(|h| h.default == Some(true));
    let explicit = match asked {
        Some(false) => return Ok(None),
        Some(true) => true,
        None if by_default => false,
        None => return Ok(None),
    };
    let refuse = |reason: Reason, why: String| -> Result<Option<Hairpin>, Refusal> {
        if explicit {
            Err(Refusal::new(reason, why))
        } else {
            Ok(None)
        }
    };
    let Some(hp) = router.hairpin.as_ref() else {
        return refuse(
            Reason::InvalidRequest,
            format!(
                "spec.hairpin: router {} has no spec.hairpin (insideInterface, insideNetwork, \
                 ruleRange), so there is nowhere to reflect from; add it to the VyosRouter or \
                 drop hairpin",
                rule.spec.router
            ),
        );
    };
    let Some(external) = main.destination.address.clone() else {
        return refuse(
            Reason::InvalidRequest,
            "spec.hairpin: needs spec.externalAddress, the address inside clients connect to \
             (for a VmNetwork port, a PortPool with an externalAddress); set it or drop hairpin"
                .to_owned(),
        );
    };
    if let Some(ranges) = rule.spec.source_ranges.as_deref()
        && !ranges.iter().any(|r| covers(r, &hp.inside_network))
    {
        return refuse(
            Reason::InvalidRequest,
            format!(
                "spec.hairpin: the hairpin rule carries spec.sourceRanges, and none of them \
                 includes the inside network {}; add it to spec.sourceRanges or drop hairpin",
                hp.inside_network
            ),
        );
    }
    let Some(h) = number(router, main.number) else {
        return Err(Refusal::new(
            Reason::RuleNumberOutOfRange,
            format!(
                "no hairpin rule number for rule {}: the router's spec.hairpin.ruleRange \
                 {}-{} holds fewer numbers than its spec.ruleRange",
                main.number, hp.rule_range.start, hp.rule_range.end
            ),
        ));
    };
    let mut dnat = main.clone();
    dnat.number = h;
    dnat.inbound_interface = vyos_client::nat::InterfaceMatch {
        name: Some(hp.inside_interface.clone()),
        group: None,
    };
    dnat.destination.address = Some(external);

    let mut snat = NatRule::new(NatKind::Source, h);
    snat.description = main.description.clone();
    snat.disabled = main.disabled;
    snat.log = main.log;
    snat.protocol = main.protocol.clone();
    snat.outbound_interface.name = Some(hp.inside_interface.clone());
    snat.source.address = Some(hp.inside_network.clone());
    snat.destination.address = main.translation.address.clone();
    if main.protocol.as_ref().is_some_and(|p| p.allows_ports()) {
        snat.destination.port = main
            .translation
            .port
            .clone()
            .or_else(|| main.destination.port.clone());
    }
    snat.translation.address = Some("masquerade".to_owned());

    for r in [&dnat, &snat] {
        if let Err(errors) = validate(r) {
            return Err(Refusal::new(
                Reason::InvalidRule,
                format!(
                    "VyOS would reject its hairpin rule (nat {} rule {h}): {}",
                    r.kind,
                    crate::render::errors_text(&errors)
                ),
            ));
        }
    }
    Ok(Some(Hairpin {
        destination: Some(dnat),
        source: Some(snat),
    }))
}

/// Whether the IPv4 address or network `outer` includes the network `inner`.
fn covers(outer: &str, inner: &str) -> bool {
    let parse = |s: &str| -> Option<(u32, u32)> {
        let (a, p) = s.split_once('/').unwrap_or((s, "32"));
        let a: Ipv4Addr = a.parse().ok()?;
        let p: u32 = p.parse().ok().filter(|p| *p <= 32)?;
        Some((u32::from(a), p))
    };
    let (Some((o, op)), Some((i, ip))) = (parse(outer), parse(inner)) else {
        return false;
    };
    let mask = if op == 0 { 0 } else { u32::MAX << (32 - op) };
    op <= ip && (o & mask) == (i & mask)
}

/// The ops that bring the companions `from` to `to`, by the number of the rule they belong
/// to (so they go in that rule's request): destination first, then source.
pub fn ops(
    from: &BTreeMap<u32, Hairpin>,
    to: &BTreeMap<u32, Hairpin>,
) -> BTreeMap<u32, Vec<ConfigOp>> {
    let mut out: BTreeMap<u32, Vec<ConfigOp>> = BTreeMap::new();
    let numbers: std::collections::BTreeSet<u32> = from.keys().chain(to.keys()).copied().collect();
    for n in numbers {
        let (a, b) = (from.get(&n), to.get(&n));
        if a == b {
            continue;
        }
        let side = |h: Option<&Hairpin>, kind: NatKind| -> BTreeMap<u32, NatRule> {
            h.and_then(|h| match kind {
                NatKind::Destination => h.destination.clone(),
                NatKind::Source => h.source.clone(),
            })
            .map(|r| (r.number, r))
            .into_iter()
            .collect()
        };
        let mut ops = Vec::new();
        for kind in [NatKind::Destination, NatKind::Source] {
            ops.extend(diff(kind, &side(a, kind), &side(b, kind)));
        }
        if !ops.is_empty() {
            out.insert(n, ops);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use vmnet_api::{HairpinSpec, PortRuleSpec, RuleRange};
    use vyos_client::nat::render_rule;

    fn router(default: Option<bool>) -> VyosRouterSpec {
        let mut s = crate::fixtures::router();
        s.hairpin = Some(HairpinSpec {
            inside_interface: "eth1".into(),
            inside_network: "10.20.0.0/16".into(),
            rule_range: RuleRange {
                start: 2000,
                end: 2999,
            },
            default,
        });
        s
    }

    fn rule(extra: serde_json::Value) -> PortRule {
        let mut spec = serde_json::json!({
            "router": "edge", "protocol": "tcp", "externalAddress": "203.0.113.10",
            "externalPort": 3389, "internalAddress": "10.20.0.40"
        });
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        let spec: PortRuleSpec = serde_json::from_value(spec).unwrap();
        let mut r = PortRule::new("rdp", spec);
        r.metadata.namespace = Some("lab".into());
        r
    }

    fn main_rule(r: &PortRule, router: &VyosRouterSpec, n: u32) -> NatRule {
        crate::render::render(r, router, n).unwrap()
    }

    /// The rule's `set` lines, sorted (as VyOS shows them; their order does not matter).
    fn set_lines(r: &NatRule) -> Vec<String> {
        let mut lines: Vec<String> = render_rule(r).iter().map(ToString::to_string).collect();
        lines.sort();
        lines
    }

    #[test]
    fn the_companions_are_the_documented_reflection_recipe_for_one_forward() {
        let spec = router(None);
        let r = rule(serde_json::json!({ "hairpin": true }));
        let main = main_rule(&r, &spec, 100);
        let hp = render(&r, &main, &spec).unwrap().unwrap();
        let d = hp.destination.unwrap();
        let s = hp.source.unwrap();
        assert_eq!(
            set_lines(&d),
            vec![
                "set nat destination rule 2000 description 'vmnet:lab/rdp'",
                "set nat destination rule 2000 destination address '203.0.113.10'",
                "set nat destination rule 2000 destination port '3389'",
                "set nat destination rule 2000 inbound-interface name 'eth1'",
                "set nat destination rule 2000 protocol 'tcp'",
                "set nat destination rule 2000 translation address '10.20.0.40'",
            ]
        );
        assert_eq!(
            set_lines(&s),
            vec![
                "set nat source rule 2000 description 'vmnet:lab/rdp'",
                "set nat source rule 2000 destination address '10.20.0.40'",
                "set nat source rule 2000 destination port '3389'",
                "set nat source rule 2000 outbound-interface name 'eth1'",
                "set nat source rule 2000 protocol 'tcp'",
                "set nat source rule 2000 source address '10.20.0.0/16'",
                "set nat source rule 2000 translation address 'masquerade'",
            ]
        );
    }

    #[test]
    fn a_translated_port_is_what_the_source_rule_matches() {
        let spec = router(None);
        let r =
            rule(serde_json::json!({ "hairpin": true, "externalPort": 30022, "internalPort": 22 }));
        let hp = render(&r, &main_rule(&r, &spec, 105), &spec)
            .unwrap()
            .unwrap();
        let d = hp.destination.unwrap();
        assert_eq!(d.number, 2005);
        assert_eq!(d.destination.port.as_deref(), Some("30022"));
        assert_eq!(d.translation.port.as_deref(), Some("22"));
        assert_eq!(hp.source.unwrap().destination.port.as_deref(), Some("22"));
    }

    #[test]
    fn who_gets_hairpin() {
        let on = router(Some(true));
        let off = router(None);
        let plain = rule(serde_json::json!({}));
        let asked = rule(serde_json::json!({ "hairpin": true }));
        let declined = rule(serde_json::json!({ "hairpin": false }));
        let has = |r: &PortRule, s: &VyosRouterSpec| {
            render(r, &main_rule(r, s, 100), s).unwrap().is_some()
        };
        assert!(!has(&plain, &off));
        assert!(has(&plain, &on), "the router's default");
        assert!(has(&asked, &off));
        assert!(!has(&declined, &on), "the rule's own false wins");
    }

    #[test]
    fn a_rule_that_asks_and_cannot_is_refused_the_default_passes_over_it() {
        let on = router(Some(true));
        let cases = [
            (
                serde_json::json!({ "externalAddress": null, "inboundInterface": "eth0" }),
                "spec.externalAddress",
            ),
            (
                serde_json::json!({ "sourceRanges": ["198.51.100.0/24"] }),
                "10.20.0.0/16",
            ),
        ];
        for (extra, says) in cases {
            let mut asked = extra.clone();
            asked["hairpin"] = serde_json::json!(true);
            let r = rule(asked);
            let why = render(&r, &main_rule(&r, &on, 100), &on).unwrap_err();
            assert_eq!(why.reason, Reason::InvalidRequest);
            assert!(why.message.contains(says), "{}", why.message);
            let by_default = rule(extra);
            assert_eq!(
                render(&by_default, &main_rule(&by_default, &on, 100), &on).unwrap(),
                None
            );
        }
        // Sources that include the inside network are fine, and carried.
        let r = rule(serde_json::json!({ "hairpin": true, "sourceRanges": ["10.0.0.0/8"] }));
        let hp = render(&r, &main_rule(&r, &on, 100), &on).unwrap().unwrap();
        assert_eq!(
            hp.destination.unwrap().source.address.as_deref(),
            Some("10.0.0.0/8")
        );
        // A router without spec.hairpin.
        let r = rule(serde_json::json!({ "hairpin": true }));
        let plain = crate::fixtures::router();
        let why = render(&r, &main_rule(&r, &plain, 100), &plain).unwrap_err();
        assert!(why.message.contains("no spec.hairpin"), "{}", why.message);
    }

    #[test]
    fn covers_is_prefix_containment() {
        assert!(covers("10.0.0.0/8", "10.20.0.0/16"));
        assert!(covers("10.20.0.0/16", "10.20.0.0/16"));
        assert!(covers("0.0.0.0/0", "10.20.0.0/16"));
        assert!(!covers("10.20.0.0/24", "10.20.0.0/16"));
        assert!(!covers("10.20.0.5", "10.20.0.0/16"));
        assert!(!covers("11.0.0.0/8", "10.20.0.0/16"));
    }

    #[test]
    fn numbers_map_both_ways_and_classify_splits_by_marker() {
        let spec = router(None);
        assert_eq!(number(&spec, 100), Some(2000));
        assert_eq!(number(&spec, 199), Some(2099));
        assert_eq!(main_number(&spec, 2099), Some(199));
        assert_eq!(main_number(&spec, 1999), None);
        let r = rule(serde_json::json!({ "hairpin": true }));
        let hp = render(&r, &main_rule(&r, &spec, 101), &spec)
            .unwrap()
            .unwrap();
        let mut dst: BTreeMap<u32, NatRule> = BTreeMap::new();
        let mut src: BTreeMap<u32, NatRule> = BTreeMap::new();
        let d = hp.destination.clone().unwrap();
        dst.insert(d.number, d);
        let mut hand = NatRule::new(NatKind::Source, 2003);
        hand.description = Some("by hand".into());
        src.insert(2003, hand);
        let mut outside = hp.source.clone().unwrap();
        outside.number = 10;
        src.insert(10, outside);
        let found = classify(&spec, &dst, &src);
        assert_eq!(found.owned.len(), 1);
        assert_eq!(found.owned[&101].destination, hp.destination);
        assert_eq!(found.owned[&101].source, None, "deleted by hand");
        assert_eq!(
            found.foreign,
            BTreeMap::from([(103, "nat source rule 2003".to_owned())])
        );
    }

    #[test]
    fn ops_add_and_remove_exactly_the_two_rules_under_the_main_number() {
        let spec = router(None);
        let r = rule(serde_json::json!({ "hairpin": true }));
        let hp = render(&r, &main_rule(&r, &spec, 100), &spec)
            .unwrap()
            .unwrap();
        let want = BTreeMap::from([(100, hp)]);
        let add = ops(&BTreeMap::new(), &want);
        assert_eq!(add.keys().copied().collect::<Vec<_>>(), vec![100]);
        assert_eq!(
            add[&100].len(),
            13,
            "6 destination leaves + 7 source leaves"
        );
        let remove = ops(&want, &BTreeMap::new());
        let lines: Vec<String> = remove[&100].iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "delete nat destination rule 2000",
                "delete nat source rule 2000"
            ]
        );
        assert!(ops(&want, &want).is_empty());
    }
}
