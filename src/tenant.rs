//! Tenant safety: a PortRule may forward only to an address its namespace may use. Pure.

use std::net::IpAddr;

use vmnet_api::{PortRule, VmNetwork};

use crate::render::Refusal;

/// Whether `rule` may forward to its internal address: the address must be that of a
/// VmNetwork in the rule's own namespace, or lie in an IpPool the namespace may use
/// (`pool_allows(address, namespace)`). Otherwise one namespace could expose another's VM.
pub fn check<'a>(
    rule: &PortRule,
    vmnetworks: impl IntoIterator<Item = &'a VmNetwork>,
    pool_allows: &dyn Fn(IpAddr, &str) -> bool,
) -> Result<(), Refusal> {
    let ns = rule.metadata.namespace.as_deref().unwrap_or_default();
    let target = rule.spec.internal_address.as_str();
    let Ok(ip) = target.parse::<IpAddr>() else {
        return Err(Refusal::new(
            "InvalidRule",
            format!("spec.internalAddress {target:?} is not an IP address"),
        ));
    };
    let mut own_vm = false;
    let mut other: Option<String> = None;
    for v in vmnetworks {
        let holds = v.spec.address.as_deref() == Some(target)
            || v.status.as_ref().and_then(|s| s.address.as_deref()) == Some(target);
        if !holds {
            continue;
        }
        match v.metadata.namespace.as_deref() {
            Some(n) if n == ns => own_vm = true,
            n => other = Some(n.unwrap_or_default().to_owned()),
        }
    }
    if own_vm {
        return Ok(());
    }
    if let Some(other) = other {
        return Err(Refusal::new(
            "NamespaceNotAllowed",
            format!(
                "spec.internalAddress {target} belongs to a VmNetwork in namespace {other:?}; \
                 a PortRule may only forward to VMs of its own namespace ({ns:?})"
            ),
        ));
    }
    if pool_allows(ip, ns) {
        return Ok(());
    }
    Err(Refusal::new(
        "NamespaceNotAllowed",
        format!(
            "spec.internalAddress {target} belongs to no VmNetwork in namespace {ns:?} and to no \
             IpPool that namespace may use; a PortRule may only forward to its own namespace's VMs"
        ),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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

    fn vm(ns: &str, fixed: Option<&str>, allocated: Option<&str>) -> VmNetwork {
        let mut v = VmNetwork::new(
            "vm",
            serde_json::from_value(serde_json::json!({"router": "edge"})).unwrap(),
        );
        v.metadata.namespace = Some(ns.into());
        v.spec.address = fixed.map(Into::into);
        v.status = allocated.map(|a| vmnet_api::VmNetworkStatus {
            address: Some(a.into()),
            ..Default::default()
        });
        v
    }

    #[test]
    fn own_namespace_vm_addresses_are_allowed() {
        let vms = [
            vm("a", Some("10.0.0.1"), None),
            vm("a", None, Some("10.0.0.2")),
        ];
        let no_pool = |_: IpAddr, _: &str| false;
        assert!(check(&pr("a", "10.0.0.1"), &vms, &no_pool).is_ok());
        assert!(check(&pr("a", "10.0.0.2"), &vms, &no_pool).is_ok());
    }

    #[test]
    fn another_namespaces_vm_is_refused_unless_a_pool_allows() {
        let vms = [vm("b", Some("10.0.0.9"), None)];
        let e = check(&pr("a", "10.0.0.9"), &vms, &|_, _| false).unwrap_err();
        assert_eq!(e.reason, "NamespaceNotAllowed");
        assert!(e.message.contains("spec.internalAddress 10.0.0.9"));
        let pool_for_a = |ip: IpAddr, ns: &str| ns == "a" && ip.to_string().starts_with("10.0.0.");
        // A pool the namespace may use covers free addresses, not another namespace's VM.
        assert!(check(&pr("a", "10.0.0.7"), &vms, &pool_for_a).is_ok());
        let e = check(&pr("a", "10.0.0.9"), &vms, &pool_for_a).unwrap_err();
        assert!(e.message.contains("namespace \"b\""), "{}", e.message);
        assert!(check(&pr("c", "10.0.0.7"), &vms, &pool_for_a).is_err());
    }
}
