//! PortRule → VyOS destination-NAT rule, and which router rules are ours.
//!
//! One renderer for everything that turns a declared rule into router config (the writer's
//! commits and any preview), so the two can never disagree. Pure: no I/O.

use vmnet_api::{PortRule, RuleProtocol, RuleRange, VyosRouterSpec};
use vyos_client::nat::{NatKind, NatRule, NetworkGroup, Protocol, validate};

/// Every description the operator writes starts with this marker, followed by
/// `<namespace>/<name>` of the PortRule. Together with the router's owned rule-number range
/// it is what makes a rule ours; a rule without it is never touched.
pub const MARKER: &str = "vmnet:";

/// The description written on the router: the marker, the PortRule's key and the user's
/// own description, if any (at most 6 + 63 + 1 + 63 + 1 + 100 characters, within VyOS's 255).
pub fn description(namespace: &str, name: &str, user: Option<&str>) -> String {
    match user {
        Some(d) if !d.is_empty() => format!("{MARKER}{namespace}/{name} {d}"),
        _ => format!("{MARKER}{namespace}/{name}"),
    }
}

/// The `(namespace, name)` a description's marker names, if it carries one.
pub fn owner_of(description: Option<&str>) -> Option<(&str, &str)> {
    let rest = description?.strip_prefix(MARKER)?;
    let key = rest.split(' ').next()?;
    let (ns, name) = key.split_once('/')?;
    (!ns.is_empty() && !name.is_empty()).then_some((ns, name))
}

/// Whether a rule read from the router is the operator's: inside the owned range and
/// carrying the marker.
pub fn is_owned(rule: &NatRule, range: &RuleRange) -> bool {
    range.contains(rule.number) && owner_of(rule.description.as_deref()).is_some()
}

/// The name of the network-group that holds the source ranges of rule `number`, when it
/// has several (VyOS group names: at most 31 characters, no leading `!` or `-`).
pub fn group_name(number: u32) -> String {
    format!("VMNET-{number}")
}

/// The rule number a network-group name of the operator's form names (`VMNET-<n>`).
pub fn group_number(name: &str) -> Option<u32> {
    let n: u32 = name.strip_prefix("VMNET-")?.parse().ok()?;
    (group_name(n) == name).then_some(n)
}

/// The rule number of one of the operator's groups: named by [`group_name`] for a number
/// in the owned range, and carrying the marker. Other groups are never touched.
pub fn owned_group(name: &str, group: &NetworkGroup, range: &RuleRange) -> Option<u32> {
    let n = group_number(name)?;
    (range.contains(n) && owner_of(group.description.as_deref()).is_some()).then_some(n)
}

/// Whether a PortRule's sources need a network-group: it lists several.
pub fn uses_group(rule: &PortRule) -> bool {
    rule.spec
        .source_ranges
        .as_ref()
        .is_some_and(|s| s.len() > 1)
}

/// The network-group a PortRule with several `sourceRanges` needs (a single address as a
/// `/32`), described with the same marker as its rule; `None` for one range or none.
pub fn source_group(rule: &PortRule) -> Option<NetworkGroup> {
    if !uses_group(rule) {
        return None;
    }
    let ranges = rule.spec.source_ranges.as_deref()?;
    Some(NetworkGroup {
        description: Some(description(
            rule.metadata.namespace.as_deref().unwrap_or_default(),
            rule.metadata.name.as_deref().unwrap_or_default(),
            None,
        )),
        networks: ranges
            .iter()
            .map(|r| {
                if r.contains('/') {
                    r.clone()
                } else {
                    format!("{r}/32")
                }
            })
            .collect(),
    })
}

/// Why a PortRule cannot be rendered; becomes a `Stalled` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason for the condition and the Event.
    pub reason: crate::conditions::Reason,
    /// What is wrong and what to do, naming the field.
    pub message: String,
}

impl Refusal {
    /// A refusal with `reason` and `message`.
    pub fn new(reason: crate::conditions::Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Renders `rule` as destination-NAT rule `number` on a router with `router` spec, and
/// checks it with the same rules VyOS's NAT commit applies, so a bad rule is refused with
/// the field named before any request is sent.
pub fn render(rule: &PortRule, router: &VyosRouterSpec, number: u32) -> Result<NatRule, Refusal> {
    let nat = build(rule, router, number)?;
    check(&nat).map(|()| nat)
}

/// VyOS's commit checks on a rendered rule.
fn check(nat: &NatRule) -> Result<(), Refusal> {
    validate(nat).map_err(|errors| {
        Refusal::new(
            crate::conditions::Reason::InvalidRule,
            format!("VyOS would reject this rule: {}", errors_text(&errors)),
        )
    })
}

/// The rule `render` checks.
fn build(rule: &PortRule, router: &VyosRouterSpec, number: u32) -> Result<NatRule, Refusal> {
    let spec = &rule.spec;
    let namespace = rule.metadata.namespace.as_deref().unwrap_or_default();
    let name = rule.metadata.name.as_deref().unwrap_or_default();
    if !router.rule_range.contains(number) {
        return Err(Refusal::new(
            crate::conditions::Reason::RuleNumberOutOfRange,
            format!(
                "status.ruleNumber {number} is outside the router's ruleRange {}-{}",
                router.rule_range.start, router.rule_range.end
            ),
        ));
    }
    let mut nat = NatRule::new(NatKind::Destination, number);
    nat.description = Some(description(namespace, name, spec.description.as_deref()));
    nat.disabled = spec.enabled == Some(false);
    nat.log = spec.log == Some(true);
    nat.protocol = match spec.protocol {
        RuleProtocol::Tcp => Some(Protocol::Tcp),
        RuleProtocol::Udp => Some(Protocol::Udp),
        RuleProtocol::TcpUdp => Some(Protocol::TcpUdp),
        RuleProtocol::All => None,
    };
    nat.inbound_interface.name = spec
        .inbound_interface
        .clone()
        .or_else(|| router.default_inbound_interface.clone());
    nat.destination.address = spec.external_address.clone();
    nat.destination.port = match (spec.external_port, spec.external_port_end) {
        (Some(p), Some(e)) if e > p => Some(format!("{p}-{e}")),
        (Some(p), _) => Some(p.to_string()),
        (None, _) => None,
    };
    match spec.source_ranges.as_deref() {
        None | Some([]) => {}
        Some([one]) => nat.source.address = Some(one.clone()),
        // Several: the rule names a network-group holding them (see `source_group`).
        Some(_) => nat.source.group.network_group = Some(group_name(number)),
    }
    nat.translation.address = Some(spec.internal_address.clone());
    nat.translation.port = match (
        spec.internal_port,
        spec.external_port,
        spec.external_port_end,
    ) {
        (Some(i), Some(p), Some(e)) if e > p => {
            Some(format!("{i}-{}", u32::from(i) + u32::from(e - p)))
        }
        (Some(i), _, _) => Some(i.to_string()),
        (None, _, _) => None,
    };
    Ok(nat)
}

/// The rendered rules of one router, kept from one pass to the next and shared (an
/// `Arc`) with the pass's desired state and target, so that a pass renders and checks
/// again only the PortRules whose spec, rule number or router changed. At 10,000 rules,
/// rendering every rule at every pass (a dozen strings each, and VyOS's checks for both
/// versions) while one of them changed was most of a pass's planning time, and each pass
/// held two fresh copies of every rule (the desired state's and the target's): one kept
/// copy, shared, costs less memory than those did.
#[derive(Debug, Default)]
pub struct Renderings {
    kept: std::sync::Mutex<std::collections::HashMap<crate::desired::Key, Kept>>,
}

#[derive(Debug)]
struct Kept {
    /// What the rendering was of (see [`Renderings::stamp`]).
    stamp: u64,
    /// Used since the last sweep.
    used: bool,
    rendered: Result<std::sync::Arc<NatRule>, Refusal>,
}

impl Renderings {
    /// What a rendering depends on besides the PortRule's key: the object (its uid: a
    /// PortRule deleted and made again starts at generation 1 again), its spec (its
    /// generation), its number and the parts of the router's spec that `render` reads.
    fn stamp(rule: &PortRule, router: &VyosRouterSpec, number: u32) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let uid = rule.metadata.uid.as_deref()?;
        let generation = rule.metadata.generation?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (uid, generation, number).hash(&mut h);
        (router.rule_range.start, router.rule_range.end).hash(&mut h);
        router.default_inbound_interface.hash(&mut h);
        Some(h.finish())
    }

    /// [`render`], shared: the rendering kept for `key` when it was for the same stamp,
    /// else a new one, kept. A PortRule without a uid or a generation (not from the API
    /// server) is rendered every time.
    pub fn render(
        &self,
        rule: &PortRule,
        router: &VyosRouterSpec,
        number: u32,
        key: &crate::desired::Key,
    ) -> Result<std::sync::Arc<NatRule>, Refusal> {
        let Some(stamp) = Self::stamp(rule, router, number) else {
            return render(rule, router, number).map(std::sync::Arc::new);
        };
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(k) = kept.get_mut(key)
            && k.stamp == stamp
        {
            k.used = true;
            return k.rendered.clone();
        }
        let rendered = render(rule, router, number).map(std::sync::Arc::new);
        kept.insert(
            key.clone(),
            Kept {
                stamp,
                used: true,
                rendered: rendered.clone(),
            },
        );
        rendered
    }

    /// Forgets the renderings no call used since the last sweep (PortRules deleted, or no
    /// longer on this router).
    pub fn sweep(&self) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.retain(|_, k| std::mem::take(&mut k.used));
    }

    /// How many renderings are kept.
    pub fn len(&self) -> usize {
        self.kept.lock().map_or(0, |k| k.len())
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// VyOS's verdicts on a rule as one line: `field: message; field: message`.
pub fn errors_text(errors: &[vyos_client::nat::RuleError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A short, stable fingerprint of a rendered rule and its group, if any (FNV-1a over
/// their config ops), for `status.appliedHash`: it changes exactly when what is programmed
/// changes.
pub fn rule_hash(
    rule: &NatRule,
    group: Option<&NetworkGroup>,
    hairpin: Option<&crate::hairpin::Hairpin>,
) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let group_ops = group
        .map(|g| vyos_client::nat::render_network_group(&group_name(rule.number), g))
        .unwrap_or_default();
    let hairpin_ops = hairpin
        .into_iter()
        .flat_map(crate::hairpin::Hairpin::rules)
        .flat_map(vyos_client::nat::render_rule);
    for op in vyos_client::nat::render_rule(rule)
        .into_iter()
        .chain(group_ops)
        .chain(hairpin_ops)
    {
        for part in op
            .path
            .iter()
            .map(String::as_str)
            .chain(op.value.as_deref())
        {
            for b in part.bytes().chain(std::iter::once(0xff)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use vmnet_api::PortRuleSpec;

    use crate::fixtures::router;

    fn rule(spec: serde_json::Value) -> PortRule {
        let spec: PortRuleSpec = serde_json::from_value(spec).unwrap();
        let mut r = PortRule::new("web-ssh", spec);
        r.metadata.namespace = Some("lab".into());
        r
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "router": "edge", "protocol": "tcp", "externalAddress": "203.0.113.10",
            "externalPort": 2222, "internalAddress": "10.0.0.5", "internalPort": 22
        })
    }

    #[test]
    fn renders_a_lean_rule_with_marker_and_default_interface() {
        let nat = render(&rule(base()), &router(), 150).unwrap();
        assert_eq!(nat.number, 150);
        assert_eq!(nat.description.as_deref(), Some("vmnet:lab/web-ssh"));
        assert_eq!(nat.inbound_interface.name.as_deref(), Some("eth0"));
        assert_eq!(nat.destination.port.as_deref(), Some("2222"));
        assert_eq!(nat.translation.port.as_deref(), Some("22"));
        assert!(!nat.disabled && !nat.log);
        assert!(is_owned(&nat, &router().rule_range));
    }

    #[test]
    fn port_ranges_map_onto_a_translated_range_of_the_same_size() {
        let mut s = base();
        s["externalPortEnd"] = 2230.into();
        s["internalPort"] = 8000.into();
        let nat = render(&rule(s), &router(), 100).unwrap();
        assert_eq!(nat.destination.port.as_deref(), Some("2222-2230"));
        assert_eq!(nat.translation.port.as_deref(), Some("8000-8008"));
    }

    #[test]
    fn user_description_follows_the_marker_and_owner_is_recovered() {
        let mut s = base();
        s["description"] = "jump host".into();
        let nat = render(&rule(s), &router(), 100).unwrap();
        assert_eq!(
            nat.description.as_deref(),
            Some("vmnet:lab/web-ssh jump host")
        );
        assert_eq!(
            owner_of(nat.description.as_deref()),
            Some(("lab", "web-ssh"))
        );
        assert_eq!(owner_of(Some("hand made")), None);
        assert_eq!(owner_of(Some("vmnet:broken")), None);
    }

    #[test]
    fn rules_outside_the_range_or_without_marker_are_foreign() {
        let mut nat = render(&rule(base()), &router(), 100).unwrap();
        nat.number = 200;
        assert!(!is_owned(&nat, &router().rule_range));
        nat.number = 100;
        nat.description = Some("set by hand".into());
        assert!(!is_owned(&nat, &router().rule_range));
    }

    #[test]
    fn out_of_range_numbers_are_refused_and_several_sources_go_through_a_group() {
        let e = render(&rule(base()), &router(), 99).unwrap_err();
        assert_eq!(e.reason, crate::conditions::Reason::RuleNumberOutOfRange);
        let mut s = base();
        s["sourceRanges"] = serde_json::json!(["198.51.100.0/24"]);
        let one = rule(s);
        let nat = render(&one, &router(), 100).unwrap();
        assert_eq!(nat.source.address.as_deref(), Some("198.51.100.0/24"));
        assert_eq!(source_group(&one), None);

        let mut s = base();
        s["sourceRanges"] = serde_json::json!(["198.51.100.0/24", "192.0.2.7"]);
        let two = rule(s);
        let nat = render(&two, &router(), 100).unwrap();
        assert_eq!(nat.source.address, None);
        assert_eq!(nat.source.group.network_group.as_deref(), Some("VMNET-100"));
        let g = source_group(&two).unwrap();
        assert_eq!(
            g.networks.iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["192.0.2.7/32", "198.51.100.0/24"]
        );
        let range = router().rule_range;
        assert_eq!(owned_group("VMNET-100", &g, &range), Some(100));
        assert_eq!(
            owned_group("VMNET-0100", &g, &range),
            None,
            "not our spelling"
        );
        assert_eq!(
            owned_group("VMNET-99", &g, &range),
            None,
            "outside the range"
        );
        let by_hand = NetworkGroup {
            description: Some("office".into()),
            ..g.clone()
        };
        assert_eq!(
            owned_group("VMNET-100", &by_hand, &range),
            None,
            "no marker"
        );
        assert_ne!(rule_hash(&nat, Some(&g), None), rule_hash(&nat, None, None));
    }

    #[test]
    fn protocol_all_renders_no_protocol_and_no_ports() {
        let r = rule(serde_json::json!({
            "router": "edge", "protocol": "all", "externalAddress": "203.0.113.10",
            "internalAddress": "10.0.0.5", "enabled": false, "log": true
        }));
        let nat = render(&r, &router(), 100).unwrap();
        assert_eq!(nat.protocol, None);
        assert_eq!(nat.destination.port, None);
        assert!(nat.disabled && nat.log);
    }

    #[test]
    fn the_hash_follows_the_content() {
        let a = render(&rule(base()), &router(), 100).unwrap();
        let mut s = base();
        s["internalPort"] = 23.into();
        let b = render(&rule(s), &router(), 100).unwrap();
        assert_eq!(rule_hash(&a, None, None), rule_hash(&a.clone(), None, None));
        assert_ne!(rule_hash(&a, None, None), rule_hash(&b, None, None));
    }
}
