//! Tenant safety: a PortRule may forward only to an address its namespace may use. Pure.

use std::net::IpAddr;

use vmnet_api::PortRule;
use vmnet_core::alloc::Claimant;

use crate::render::Refusal;

/// Whether `rule` may forward to its internal address.
///
/// `holder(ip)` is who the allocators say holds the address (a VmNetwork's address from an
/// IpPool, or a fixed address outside every pool, held all the same): only an address
/// actually given to a VmNetwork counts as that VmNetwork's, never one it merely asks for
/// in its spec (a request for another tenant's address is a `Conflict` and gets nothing).
/// The address must be held by a VmNetwork of the rule's own namespace, or be held by
/// nobody and lie in an IpPool the namespace may use (`pool_allows(address, namespace)`).
/// Otherwise one namespace could expose another's VM.
pub fn check<'a>(
    rule: &PortRule,
    holder: &dyn Fn(IpAddr) -> Option<&'a Claimant>,
    pool_allows: &dyn Fn(IpAddr, &str) -> bool,
) -> Result<(), Refusal> {
    let ns = rule.metadata.namespace.as_deref().unwrap_or_default();
    let target = rule.spec.internal_address.as_str();
    let Ok(ip) = target.parse::<IpAddr>() else {
        return Err(Refusal::new(
            crate::conditions::Reason::InvalidRule,
            format!("spec.internalAddress {target:?} is not an IP address"),
        ));
    };
    match holder(ip) {
        Some(c) if c.namespace == ns => Ok(()),
        Some(c) => Err(Refusal::new(
            crate::conditions::Reason::NamespaceNotAllowed,
            format!(
                "spec.internalAddress {target} belongs to a {} in namespace {:?}; a PortRule \
                 may only forward to VMs of its own namespace ({ns:?})",
                c.kind, c.namespace
            ),
        )),
        None if pool_allows(ip, ns) => Ok(()),
        None => Err(Refusal::new(
            crate::conditions::Reason::NamespaceNotAllowed,
            format!(
                "spec.internalAddress {target} is held by no VmNetwork in namespace {ns:?} and \
                 lies in no IpPool that namespace may use; a PortRule may only forward to its \
                 own namespace's VMs"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn pr(ns: &str, to: &str) -> PortRule {
        let spec = serde_json::from_value(serde_json::json!({
            "router": "edge", "protocol": "tcp", "externalAddress": "203.0.113.10",
            "externalPort": 80, "internalAddress": to
        }))
        .unwrap();
        let mut r = PortRule::new("r", spec);
        r.metadata.namespace = Some(ns.into());
        r
    }

    fn vm(ns: &str) -> Claimant {
        Claimant::new("VmNetwork", ns, "vm")
    }

    #[test]
    fn own_namespace_vm_addresses_are_allowed() {
        let a = vm("a");
        let held = |ip: IpAddr| (ip.to_string() == "10.0.0.1").then_some(&a);
        let no_pool = |_: IpAddr, _: &str| false;
        assert!(check(&pr("a", "10.0.0.1"), &held, &no_pool).is_ok());
        assert!(check(&pr("a", "10.0.0.2"), &held, &no_pool).is_err());
    }

    #[test]
    fn another_namespaces_vm_is_refused_even_inside_an_allowed_pool() {
        let b = vm("b");
        let held = |ip: IpAddr| (ip.to_string() == "10.0.0.9").then_some(&b);
        let pool_for_a = |ip: IpAddr, ns: &str| ns == "a" && ip.to_string().starts_with("10.0.0.");
        let e = check(&pr("a", "10.0.0.9"), &held, &pool_for_a).unwrap_err();
        assert_eq!(e.reason, crate::conditions::Reason::NamespaceNotAllowed);
        assert!(e.message.contains("namespace \"b\""), "{}", e.message);
        // A pool the namespace may use covers free addresses, not another namespace's VM.
        assert!(check(&pr("a", "10.0.0.7"), &held, &pool_for_a).is_ok());
        assert!(check(&pr("c", "10.0.0.7"), &held, &pool_for_a).is_err());
    }

    proptest! {
        /// Over many VMs and rules: a rule passes only if its namespace holds the address,
        /// or nobody holds it and a pool lets the namespace use it. What VMs merely request
        /// never enters: the check sees holdings only.
        #[test]
        fn only_holdings_decide(
            holdings in proptest::collection::btree_map(0u8..32, 0u8..4, 0..24),
            pools in proptest::collection::btree_set((0u8..4, 0u8..2), 0..6),
            rules in proptest::collection::vec((0u8..4, 0u8..32), 1..40),
        ) {
            let addr = |i: u8| format!("10.0.{}.{}", i / 16, i % 16);
            let by_ip: BTreeMap<String, Claimant> = holdings
                .iter()
                .map(|(i, ns)| (addr(*i), vm(&format!("ns{ns}"))))
                .collect();
            let holder = |ip: IpAddr| by_ip.get(&ip.to_string());
            // Pool (namespace, half): the namespace may use 10.0.<half>.0/28.
            let allows = |ip: IpAddr, ns: &str| {
                let s = ip.to_string();
                pools.iter().any(|(n, half)| format!("ns{n}") == ns && s.starts_with(&format!("10.0.{half}.")))
            };
            for (ns, i) in rules {
                let ns = format!("ns{ns}");
                let target = addr(i);
                let ok = check(&pr(&ns, &target), &holder, &allows).is_ok();
                let expected = match by_ip.get(&target) {
                    Some(c) => c.namespace == ns,
                    None => allows(target.parse().unwrap(), &ns),
                };
                prop_assert_eq!(ok, expected, "{} -> {}", ns, target);
            }
        }
    }
}
