//! Rules to `set` operations.

use std::collections::BTreeMap;

use super::ConfigOp;
use super::model::{NatRule, leaves};
use crate::leaf::push_set;

/// The `set` operations that create `rule` from nothing: one per leaf value, in a
/// fixed order, with no leaves that restate VyOS defaults. A rule without leaves is
/// one `set` of its node.
pub fn render_rule(rule: &NatRule) -> Vec<ConfigOp> {
    let base = rule.kind.rule_path(rule.number);
    let mut ops = Vec::new();
    for (rel, value) in leaves(rule) {
        push_set(&mut ops, &base, &rel, &value);
    }
    if ops.is_empty() {
        ops.push(ConfigOp::set_node(base));
    }
    ops
}

/// [`render_rule`] for every rule, in rule-number order.
pub fn render_rules(rules: &BTreeMap<u32, NatRule>) -> Vec<ConfigOp> {
    rules.values().flat_map(render_rule).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::{NatKind, OpKind, Protocol};

    #[test]
    fn lean_dnat_rule() {
        let mut r = NatRule::new(NatKind::Destination, 100);
        r.description = Some("vmnet:ns/vm/ssh".into());
        r.protocol = Some(Protocol::Tcp);
        r.inbound_interface.name = Some("eth0".into());
        r.destination.port = Some("2222".into());
        r.translation.address = Some("10.0.0.5".into());
        r.translation.port = Some("22".into());
        r.translation.port_mapping = Some("none".into()); // default: not rendered
        let ops = render_rule(&r);
        let text: Vec<String> = ops.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "set nat destination rule 100 description 'vmnet:ns/vm/ssh'",
                "set nat destination rule 100 protocol 'tcp'",
                "set nat destination rule 100 inbound-interface name 'eth0'",
                "set nat destination rule 100 destination port '2222'",
                "set nat destination rule 100 translation address '10.0.0.5'",
                "set nat destination rule 100 translation port '22'",
            ]
        );
        assert!(ops.iter().all(|o| o.op == OpKind::Set));
        let json = serde_json::to_value(&ops[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"op": "set",
                "path": ["nat", "destination", "rule", "100", "protocol"], "value": "tcp"})
        );
    }

    #[test]
    fn flags_and_empty_rule() {
        let mut r = NatRule::new(NatKind::Source, 5);
        assert_eq!(
            render_rule(&r),
            vec![ConfigOp::set_node(NatKind::Source.rule_path(5))]
        );
        r.disabled = true;
        r.protocol = Some(Protocol::All);
        let ops = render_rule(&r);
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].path.last().map(String::as_str), Some("disable"));
        assert_eq!(ops[0].value, None);
        let json = serde_json::to_string(&ops[0]).unwrap();
        assert_eq!(
            json,
            r#"{"op":"set","path":["nat","source","rule","5","disable"]}"#
        );
    }
}
