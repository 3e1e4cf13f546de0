//! Rules to `set` operations.

use std::collections::BTreeMap;

use super::model::{ForwardRule, leaves};
use super::rule_path;
use crate::leaf::push_set;
use crate::nat::ConfigOp;

/// The `set` operations that create `rule` from nothing: one per leaf value (a multi-value
/// `state` one per value); a rule without leaves is one `set` of its node.
pub fn render_rule(rule: &ForwardRule) -> Vec<ConfigOp> {
    let base = rule_path(rule.number);
    let mut ops = Vec::new();
    for (rel, value) in leaves(rule) {
        push_set(&mut ops, &base, &rel, &value);
    }
    if ops.is_empty() {
        ops.push(ConfigOp::set_node(base));
    }
    ops
}

/// [`render_rule`] for every rule, in number order.
pub fn render_rules(rules: &BTreeMap<u32, ForwardRule>) -> Vec<ConfigOp> {
    rules.values().flat_map(render_rule).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::Protocol;

    #[test]
    fn accept_dnat_and_a_port_forward() {
        let mut r = ForwardRule::new(20);
        r.action = Some("accept".into());
        r.connection_status_nat = Some("destination".into());
        let text: Vec<String> = render_rule(&r).iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "set firewall ipv4 forward filter rule 20 action 'accept'",
                "set firewall ipv4 forward filter rule 20 connection-status nat 'destination'",
            ]
        );
        let mut r = ForwardRule::new(100);
        r.action = Some("accept".into());
        r.protocol = Some(Protocol::Tcp);
        r.destination.address = Some("10.0.0.5".into());
        r.destination.port = Some("22".into());
        r.source.address = Some("198.51.100.0/24".into());
        r.description = Some("vmnet:ns/vm/ssh".into());
        assert_eq!(render_rule(&r).len(), 6);
        assert_eq!(
            render_rule(&ForwardRule::new(7)),
            vec![ConfigOp::set_node(rule_path(7))]
        );
    }
}
