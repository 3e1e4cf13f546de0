//! Reading `showConfig` JSON into rules, and writing rules back in that shape.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::NatKind;
use super::model::{LeafValue, NatRule, leaves, take_leaf};

/// Why a `showConfig` answer could not be read as NAT rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The subtree or a rule is not a JSON object.
    #[error("expected a JSON object at {at}")]
    NotAnObject {
        /// Where (space-joined path).
        at: String,
    },
    /// A rule key is not a number in `1..=999999`.
    #[error("rule key {key:?} is not a NAT rule number")]
    RuleNumber {
        /// The key as the router sent it.
        key: String,
    },
    /// A value that is not a string, a list of strings or `{}`.
    #[error("rule {rule}: {path}: values must be strings, lists of strings or {{}}")]
    NotAString {
        /// The rule number.
        rule: u32,
        /// The leaf path under the rule (space-joined).
        path: String,
    },
    /// A known leaf with the wrong shape.
    #[error("rule {rule}: {path}: expected {expected}")]
    Shape {
        /// The rule number.
        rule: u32,
        /// The leaf path under the rule (space-joined).
        path: String,
        /// What VyOS renders there.
        expected: &'static str,
    },
    /// A firewall group (or one of its values) with the wrong shape.
    #[error("{at}: expected {expected}")]
    GroupShape {
        /// Where (space-joined path).
        at: String,
        /// What VyOS renders there.
        expected: &'static str,
    },
}

/// Whether a VyOS error text is `showConfig`'s "nothing configured here" answer
/// (`Configuration under specified path is empty`), which means "no rules".
pub fn is_empty_path_error(text: &str) -> bool {
    text.contains("Configuration under specified path is empty")
}

/// Parses the `data` of `showConfig ["nat", "<kind>"]` into rules keyed by number.
///
/// Accepts VyOS's rendering: rule numbers as string keys, valueless leaves as `{}`,
/// a one-value multi leaf as a string. `null` or `{}` (what a client substitutes for
/// the "path is empty" error, see [`is_empty_path_error`]) give no rules. Keys beside
/// `rule` are ignored.
pub fn parse_rules(kind: NatKind, data: &Value) -> Result<BTreeMap<u32, NatRule>, ParseError> {
    parse_rules_owned(kind, data.clone())
}

/// [`parse_rules`], taking the answer by value: its strings move into the rules, and the
/// tree is freed as it is read (at 10,000 rules, about half the time of reading a copy).
pub fn parse_rules_owned(kind: NatKind, data: Value) -> Result<BTreeMap<u32, NatRule>, ParseError> {
    let mut out = BTreeMap::new();
    let mut top = match data {
        Value::Null => return Ok(out),
        Value::Object(m) => m,
        _ => {
            return Err(ParseError::NotAnObject {
                at: kind.config_path().join(" "),
            });
        }
    };
    let rules = match top.remove("rule") {
        None => return Ok(out),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(ParseError::NotAnObject {
                at: format!("nat {kind} rule"),
            });
        }
    };
    for (key, body) in rules {
        let number = parse_number(&key)?;
        let Value::Object(body) = body else {
            return Err(ParseError::NotAnObject {
                at: format!("nat {kind} rule {key}"),
            });
        };
        // Each leaf goes to the rule as it is read (an empty node, `{}`, has no leaves
        // under it, so none of `from_leaves`' sorting is needed here).
        let mut rule = NatRule::new(kind, number);
        take_leaves(&mut rule, &mut Vec::new(), body)?;
        out.insert(number, rule);
    }
    Ok(out)
}

fn parse_number(key: &str) -> Result<u32, ParseError> {
    match key.parse::<u32>() {
        Ok(n) if (1..=999_999).contains(&n) && !key.starts_with('0') => Ok(n),
        _ => Err(ParseError::RuleNumber {
            key: key.to_owned(),
        }),
    }
}

/// Adds the leaves under `node` (at `prefix` in the rule) to `rule`.
fn take_leaves(
    rule: &mut NatRule,
    prefix: &mut Vec<String>,
    node: Map<String, Value>,
) -> Result<(), ParseError> {
    for (key, value) in node {
        prefix.push(key);
        let bad = |prefix: &[String]| ParseError::NotAString {
            rule: rule.number,
            path: prefix.join(" "),
        };
        let leaf = match value {
            Value::Object(m) if m.is_empty() => LeafValue::Flag,
            Value::Object(m) => {
                take_leaves(rule, prefix, m)?;
                prefix.pop();
                continue;
            }
            Value::String(s) => LeafValue::One(s),
            Value::Array(items) if !items.is_empty() => {
                let mut vals = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => vals.push(s),
                        _ => return Err(bad(prefix)),
                    }
                }
                LeafValue::Many(vals)
            }
            _ => return Err(bad(prefix)),
        };
        take_leaf(rule, prefix, leaf)?;
        prefix.pop();
    }
    Ok(())
}

/// Renders rules in the shape `showConfig ["nat", "<kind>"]` returns (the inverse of
/// [`parse_rules`]): `{"rule": {"100": {...}}}`, `{}` when there are no rules.
/// Defaults are left out, as VyOS does; a one-value multi leaf becomes a string.
pub fn rules_to_json(rules: &BTreeMap<u32, NatRule>) -> Value {
    if rules.is_empty() {
        return Value::Object(Map::new());
    }
    let mut by_number = Map::new();
    for (number, rule) in rules {
        let mut body = Map::new();
        for (path, value) in leaves(rule) {
            crate::leaf::insert(&mut body, &path, value);
        }
        by_number.insert(number.to_string(), Value::Object(body));
    }
    let mut top = Map::new();
    top.insert("rule".to_owned(), Value::Object(by_number));
    Value::Object(top)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::Protocol;
    use serde_json::json;

    #[test]
    fn parses_the_reference_example() {
        let data = json!({"rule": {
            "100": {"description": "vmnet:default/web-https",
                    "destination": {"address": "203.0.113.10", "port": "443"},
                    "inbound-interface": {"name": "eth0"},
                    "protocol": "tcp",
                    "source": {"address": "!198.51.100.0/24"},
                    "translation": {"address": "10.20.0.5", "port": "8443"}},
            "110": {"destination": {"port": "2222"}, "disable": {}, "log": {},
                    "inbound-interface": {"name": "eth0"}, "protocol": "tcp_udp",
                    "load-balance": {"hash": ["destination-port", "source-address"],
                                     "backend": {"10.20.0.6": {"weight": "50"},
                                                 "10.20.0.7": {"weight": "50"}}},
                    "translation": {"port": "22"}}
        }});
        let rules = parse_rules(NatKind::Destination, &data).unwrap();
        assert_eq!(rules.len(), 2);
        let r100 = &rules[&100];
        assert_eq!(r100.protocol, Some(Protocol::Tcp));
        assert_eq!(r100.destination.port.as_deref(), Some("443"));
        assert_eq!(r100.inbound_interface.name.as_deref(), Some("eth0"));
        assert_eq!(r100.translation.port.as_deref(), Some("8443"));
        assert!(r100.extra.is_empty());
        let r110 = &rules[&110];
        assert!(r110.disabled && r110.log && !r110.exclude);
        assert_eq!(r110.load_balance.hash.len(), 2);
        assert_eq!(
            r110.load_balance.backends.get("10.20.0.6"),
            Some(&Some("50".to_owned()))
        );
        // The hash is a set: rendered sorted (the reference lists it the other way).
        assert_eq!(rules_to_json(&rules), data);
    }

    #[test]
    fn one_value_multi_leaf_is_a_string() {
        let data = json!({"rule": {"5": {"load-balance": {"hash": "source-address"}}}});
        let rules = parse_rules(NatKind::Source, &data).unwrap();
        assert!(rules[&5].load_balance.hash.contains("source-address"));
        assert_eq!(rules_to_json(&rules), data);
    }

    #[test]
    fn unknown_leaves_are_kept() {
        let data = json!({"rule": {"7": {
            "destination": {"geoip": {"country-code": ["de", "fr"]}},
            "inbound-interface": "eth0",
            "translation": {"address": "10.0.0.1"}
        }}});
        let rules = parse_rules(NatKind::Destination, &data).unwrap();
        assert_eq!(rules[&7].extra.len(), 2);
        assert_eq!(rules_to_json(&rules), data);
    }

    #[test]
    fn empty_and_errors() {
        assert!(
            parse_rules(NatKind::Source, &Value::Null)
                .unwrap()
                .is_empty()
        );
        assert!(parse_rules(NatKind::Source, &json!({})).unwrap().is_empty());
        assert!(is_empty_path_error(
            "Configuration under specified path is empty\n"
        ));
        assert!(matches!(
            parse_rules(NatKind::Source, &json!({"rule": {"abc": {}}})),
            Err(ParseError::RuleNumber { .. })
        ));
        assert!(matches!(
            parse_rules(NatKind::Source, &json!({"rule": {"0": {}}})),
            Err(ParseError::RuleNumber { .. })
        ));
        assert!(matches!(
            parse_rules(NatKind::Source, &json!({"rule": {"1": {"protocol": 6}}})),
            Err(ParseError::NotAString { .. })
        ));
        assert!(matches!(
            parse_rules(NatKind::Source, &json!({"rule": {"1": {"disable": "yes"}}})),
            Err(ParseError::Shape { .. })
        ));
        assert!(matches!(
            parse_rules(
                NatKind::Source,
                &json!({"rule": {"1": {"protocol": ["tcp", "udp"]}}})
            ),
            Err(ParseError::Shape { .. })
        ));
    }
}
