//! Reading `showConfig ["firewall","ipv4","forward","filter"]`, and writing it back.

use serde_json::{Map, Value};

use super::model::{ForwardFilter, from_leaves, leaves};
use crate::leaf;
use crate::nat::LeafValue;

/// Why a `showConfig` answer could not be read as a forward filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A node that should be an object is not.
    #[error("expected a JSON object at {at}")]
    NotAnObject {
        /// Where (space-joined path).
        at: String,
    },
    /// A rule key is not a number in `1..=999999`.
    #[error("rule key {key:?} is not a firewall rule number")]
    RuleNumber {
        /// The key as the router sent it.
        key: String,
    },
    /// A value that is not a string, a list of strings or `{}`.
    #[error("{at}: values must be strings, lists of strings or {{}}")]
    NotAString {
        /// Where (space-joined path).
        at: String,
    },
    /// A known leaf with the wrong shape.
    #[error("{at}: expected {expected}")]
    Shape {
        /// Where (space-joined path).
        at: String,
        /// What VyOS renders there.
        expected: &'static str,
    },
}

fn number(key: &str) -> Result<u32, ParseError> {
    match key.parse::<u32>() {
        Ok(n) if (1..=999_999).contains(&n) && !key.starts_with('0') => Ok(n),
        _ => Err(ParseError::RuleNumber {
            key: key.to_owned(),
        }),
    }
}

fn string(v: &Value, at: &str) -> Result<String, ParseError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| ParseError::Shape {
            at: at.to_owned(),
            expected: "a string",
        })
}

/// Parses the `data` of `showConfig ["firewall","ipv4","forward","filter"]`. `null` or
/// `{}` (the "path is empty" answer, as the client passes it on) is an empty chain with
/// VyOS's default action.
pub fn parse_forward_filter(data: &Value) -> Result<ForwardFilter, ParseError> {
    let mut out = ForwardFilter::default();
    let top = match data {
        Value::Null => return Ok(out),
        Value::Object(m) => m,
        _ => {
            return Err(ParseError::NotAnObject {
                at: "firewall ipv4 forward filter".to_owned(),
            });
        }
    };
    if let Some(a) = top.get("default-action") {
        out.default_action = Some(string(a, "default-action")?);
    }
    out.default_log = top.contains_key("default-log");
    if let Some(d) = top.get("description") {
        out.description = Some(string(d, "description")?);
    }
    let Some(rules) = top.get("rule") else {
        return Ok(out);
    };
    let rules = rules.as_object().ok_or_else(|| ParseError::NotAnObject {
        at: "rule".to_owned(),
    })?;
    for (key, body) in rules {
        let n = number(key)?;
        let body = body.as_object().ok_or_else(|| ParseError::NotAnObject {
            at: format!("rule {key}"),
        })?;
        let flat = leaf::flatten(body).map_err(|p| ParseError::NotAString {
            at: format!("rule {key} {p}"),
        })?;
        out.rules.insert(n, from_leaves(n, flat)?);
    }
    Ok(out)
}

/// The chain in the shape `showConfig` returns (the inverse of [`parse_forward_filter`]).
pub fn forward_filter_to_json(filter: &ForwardFilter) -> Value {
    let mut top = Map::new();
    if let Some(a) = &filter.default_action {
        top.insert("default-action".to_owned(), Value::String(a.clone()));
    }
    if filter.default_log {
        top.insert("default-log".to_owned(), Value::Object(Map::new()));
    }
    if let Some(d) = &filter.description {
        top.insert("description".to_owned(), Value::String(d.clone()));
    }
    if !filter.rules.is_empty() {
        let rules = filter
            .rules
            .iter()
            .map(|(n, r)| {
                let ls = leaves(r);
                let body = if ls.is_empty() {
                    leaf::to_json([(Vec::new(), LeafValue::Flag)])
                } else {
                    leaf::to_json(ls)
                };
                (n.to_string(), body)
            })
            .collect();
        top.insert("rule".to_owned(), Value::Object(rules));
    }
    Value::Object(top)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::Protocol;
    use serde_json::json;

    #[test]
    fn reads_the_idioms() {
        let data = json!({
            "default-action": "drop",
            "rule": {
                "10": {"action": "accept", "state": ["established", "related"]},
                "20": {"action": "accept", "connection-status": {"nat": "destination"},
                       "description": "vmnet:dnat"},
                "100": {"action": "accept", "protocol": "tcp",
                        "destination": {"address": "10.0.0.5", "port": "22"},
                        "source": {"group": {"network-group": "VMNET-100"}},
                        "jump-target": "X", "log": {}}
            }
        });
        let f = parse_forward_filter(&data).unwrap();
        assert_eq!(f.effective_default_action(), "drop");
        assert_eq!(f.rules[&10].state.len(), 2);
        assert_eq!(
            f.rules[&20].connection_status_nat.as_deref(),
            Some("destination")
        );
        let r = &f.rules[&100];
        assert_eq!(r.protocol, Some(Protocol::Tcp));
        assert_eq!(r.destination.port.as_deref(), Some("22"));
        assert_eq!(r.source.group.network_group.as_deref(), Some("VMNET-100"));
        assert!(r.log);
        assert_eq!(r.extra.len(), 1);
        assert_eq!(forward_filter_to_json(&f), data);
        assert_eq!(
            parse_forward_filter(&json!({}))
                .unwrap()
                .effective_default_action(),
            "accept"
        );
        assert!(parse_forward_filter(&json!({"rule": {"0": {}}})).is_err());
        assert!(parse_forward_filter(&json!({"rule": {"1": {"log": "x"}}})).is_err());
    }
}
