//! CEL rules shared by the custom resources (`x-kubernetes-validations`).
//!
//! The apiserver runs them at `kubectl apply`, so a bad manifest is refused before the
//! operator sees it. Every rule carries a message that says what is allowed; the apiserver
//! prefixes it with the path of the field the rule sits on.
//!
//! Expressions are built from small string helpers so that one definition of "an IPv4
//! address" or "an address range" serves every field (the apiserver's CEL has no `cel.bind`, so
//! sub-expressions repeat).

use kube::core::{Message, Rule};
use schemars::{Schema, json_schema};

/// `e` is an IPv4 address (no leading zeros, no prefix).
pub fn is_ipv4(e: &str) -> String {
    format!("(isIP({e}) && ip({e}).family() == 4)")
}

/// `e` is an IPv4 CIDR written with its network address (VyOS refuses host bits).
pub fn is_ipv4_network(e: &str) -> String {
    format!("(isCIDR({e}) && cidr({e}).ip().family() == 4 && cidr({e}) == cidr({e}).masked())")
}

/// `e` is an address or network of either family, written with its network address.
pub fn is_network(e: &str) -> String {
    format!("(isIP({e}) || (isCIDR({e}) && cidr({e}) == cidr({e}).masked()))")
}

/// The 32-bit value of the dotted IPv4 address `e` (a string expression).
fn v4_value(e: &str) -> String {
    let o = |i: usize| format!("int({e}.split('.')[{i}])");
    format!(
        "({} * 16777216 + {} * 65536 + {} * 256 + {})",
        o(0),
        o(1),
        o(2),
        o(3)
    )
}

/// The IPv6 address `e` (a string expression that `isIP` has accepted) written out as
/// 32 lowercase hex digits, a key that sorts as the addresses do.
///
/// Kubernetes' CEL cannot order IP values, so the text is split at the `::`, each of the
/// eight hextets padded to four digits, and the gap filled with zeros by index arithmetic.
/// Everything is written inline and concatenated with `+`: the apiserver's cost estimate
/// loses the size bounds of values bound through a comprehension (the stand-in for the
/// `cel.bind` it lacks) and of `join`, and then exceeds the CRD budget.
fn v6_key(e: &str) -> String {
    let pad = |s: String| format!("('0000'.substring(size({s})) + {s})");
    let half = |n: usize| format!("({e}.lowerAscii() + '::').split('::')[{n}]");
    let count = |n: usize| format!("({} == '' ? 0 : size({}.split(':')))", half(n), half(n));
    let (nl, nr) = (count(0), count(1));
    let hextets: Vec<String> = (0..8)
        .map(|i| {
            format!(
                "({nl} > {i} ? {} : ({nr} >= {} ? {} : '0000'))",
                pad(format!("{}.split(':')[{i}]", half(0))),
                8 - i,
                pad(format!("{}.split(':')[{i} - 8 + {nr}]", half(1))),
            )
        })
        .collect();
    format!("({})", hextets.join(" + "))
}

/// `e` is `a-b` with `a` and `b` addresses of one family and `a <= b`.
pub fn is_range(e: &str) -> String {
    let lo = format!("{e}.split('-')[0]");
    let hi = format!("{e}.split('-')[1]");
    format!(
        "({e}.contains('-') && {e}.split('-').size() == 2 && isIP({lo}) && isIP({hi}) \
         && ip({lo}).family() == ip({hi}).family() \
         && (ip({lo}).family() == 4 ? {} <= {} : {} <= {}))",
        v4_value(&lo),
        v4_value(&hi),
        v6_key(&lo),
        v6_key(&hi)
    )
}

/// `e` is an address, a network or a range (what a pool or a source range may hold).
pub fn is_pool_entry(e: &str) -> String {
    format!("({} || {})", is_network(e), is_range(e))
}

/// The schema of a list of strings whose every item must pass `check` (written with `self`
/// for the item). The rule sits on the items, so the apiserver names the offending index
/// and value (`spec.addresses[2]: Invalid value: "10.0.0.300": ...`).
pub fn string_list(max_items: u32, max_len: u32, check: &str, message: &str) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": max_items,
        "items": {
            "type": "string",
            "minLength": 1,
            "maxLength": max_len,
            "x-kubernetes-validations": [{ "rule": check, "message": message }]
        }
    })
}

/// A rule that refuses any change to a field, with the reason in the message.
pub fn immutable(why: &str) -> Rule {
    Rule::new("self == oldSelf").message(Message::Message(format!("is immutable: {why}")))
}

/// A VyOS-safe free-text value: no quotes, no newline or other control characters.
pub fn vyos_text() -> Rule {
    Rule::new("!self.matches('[\\'\"\\\\x00-\\\\x1f\\\\x7f]')").message(
        "must not contain quotes, newlines or other control characters: VyOS refuses them \
         in any value",
    )
}

/// The schema of `sourceRanges`: IPv4 addresses or networks. One is written on the NAT
/// rule itself; several go into a firewall network-group that the rule names.
pub fn source_ranges(g: &mut schemars::SchemaGenerator) -> Schema {
    let _ = g;
    string_list(
        16,
        18,
        &format!("{} || {}", is_ipv4("self"), is_ipv4_network("self")),
        "must be an IPv4 address or an IPv4 CIDR written with its network address (198.51.100.0/24)",
    )
}
