#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::net::IpAddr;

use crate::alloc::{OutsideReason, PortProtocol};

fn policy(auto: bool, priority: i32, ns: &[&str]) -> PoolPolicy {
    PoolPolicy {
        auto_assign: auto,
        priority,
        allowed_namespaces: ns.iter().map(|s| s.to_string()).collect(),
        closing: false,
    }
}

fn spec(addr: &str, p: PoolPolicy) -> AddressPoolSpec {
    AddressPoolSpec {
        addresses: vec![addr.into()],
        policy: p,
        ..Default::default()
    }
}

#[test]
fn choose_by_priority_then_name() {
    let (a, b, c, d) = (
        policy(true, 0, &[]),
        policy(true, 5, &[]),
        policy(true, 0, &[]),
        policy(false, 9, &[]),
    );
    let pools = [
        ("b-pool", &a),
        ("z-pool", &b),
        ("a-pool", &c),
        ("manual", &d),
    ];
    assert_eq!(
        choose_pools("IpPool", pools, None, "ns").unwrap(),
        vec!["z-pool", "a-pool", "b-pool"]
    );
    assert_eq!(
        choose_pools("IpPool", pools, Some("manual"), "ns").unwrap(),
        vec!["manual"]
    );
    let err = choose_pools("IpPool", pools, Some("nope"), "ns").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid request: there is no IpPool named \"nope\""
    );
}

#[test]
fn choose_respects_namespaces() {
    let only_prod = policy(true, 0, &["prod"]);
    let pools = [("p", &only_prod)];
    let err = choose_pools("IpPool", pools, None, "dev").unwrap_err();
    assert_eq!(err.reason(), "NamespaceNotAllowed");
    let err = choose_pools("IpPool", pools, Some("p"), "dev").unwrap_err();
    assert_eq!(err.reason(), "NamespaceNotAllowed");
    assert_eq!(
        choose_pools("IpPool", pools, None, "prod").unwrap(),
        vec!["p"]
    );
    let none: [(&str, &PoolPolicy); 0] = [];
    assert_eq!(
        choose_pools("IpPool", none, None, "prod")
            .unwrap_err()
            .reason(),
        "InvalidRequest"
    );
}

#[test]
fn address_pools_fall_through_exhausted_pools_and_stay_put() {
    let mut r = AddressPools::new();
    r.upsert("small", spec("10.0.0.1", policy(true, 10, &[])))
        .unwrap();
    r.upsert("big", spec("10.1.0.0/24", policy(true, 0, &[])))
        .unwrap();
    let a = Claimant::new("VmNetwork", "ns", "a");
    let b = Claimant::new("VmNetwork", "ns", "b");
    let got = r.allocate(&a, None, AddressRequest::ANY).unwrap();
    assert_eq!(got.pool.as_deref(), Some("small"));
    let got_b = r.allocate(&b, None, AddressRequest::ANY).unwrap();
    assert_eq!(got_b.pool.as_deref(), Some("big"));
    // Idempotent.
    assert_eq!(r.allocate(&a, None, AddressRequest::ANY).unwrap(), got);
    // A fixed address in no pool is returned untracked.
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let c = Claimant::new("VmNetwork", "ns", "c");
    assert_eq!(
        r.allocate(&c, None, AddressRequest::Fixed(ip)).unwrap(),
        Assigned {
            pool: None,
            value: ip
        }
    );
    // A fixed address inside a pool is taken there; moving a to it releases small.
    let fixed: IpAddr = "10.1.0.77".parse().unwrap();
    assert_eq!(
        r.allocate(&a, None, AddressRequest::Fixed(fixed))
            .unwrap()
            .pool
            .as_deref(),
        Some("big")
    );
    assert_eq!(r.get("small").unwrap().counts().used, 0);
    assert_eq!(r.lookup(&a).unwrap().value, fixed);
}

#[test]
fn address_pools_exhausted_everywhere() {
    let mut r = AddressPools::new();
    r.upsert("one", spec("10.0.0.1", policy(true, 0, &[])))
        .unwrap();
    r.allocate(
        &Claimant::new("VmNetwork", "ns", "a"),
        None,
        AddressRequest::ANY,
    )
    .unwrap();
    let err = r
        .allocate(
            &Claimant::new("VmNetwork", "ns", "b"),
            None,
            AddressRequest::ANY,
        )
        .unwrap_err();
    assert_eq!(err.reason(), "PoolExhausted");
    assert_eq!(
        err.to_string(),
        "every IpPool namespace \"ns\" may use (one) has no free address left: release an allocation or add to the pool"
    );
}

#[test]
fn address_pools_rebuild() {
    let mut r = AddressPools::new();
    r.upsert("one", spec("10.0.0.0/24", policy(true, 0, &[])))
        .unwrap();
    r.upsert("two", spec("10.0.1.0/24", policy(true, 0, &[])))
        .unwrap();
    let a = Claimant::new("VmNetwork", "ns", "a");
    let report = r.rebuild([
        (
            Some("two".to_string()),
            a.clone(),
            "10.0.1.5".parse().unwrap(),
        ),
        (
            Some("one".to_string()),
            a.clone(),
            "10.0.0.5".parse().unwrap(),
        ),
        (
            Some("gone".to_string()),
            Claimant::new("VmNetwork", "ns", "b"),
            "10.9.0.5".parse().unwrap(),
        ),
    ]);
    assert_eq!(report.conflicts.len(), 1);
    assert_eq!(report.out_of_range.len(), 1);
    assert_eq!(report.out_of_range[0].reason, OutsideReason::PoolMissing);
    assert_eq!(r.lookup(&a).unwrap().pool.as_deref(), Some("one"));
    assert_eq!(r.get("two").unwrap().counts().used, 0);
}

#[test]
fn port_pools_filter_by_router_and_protocol() {
    let mut r = PortPools::new();
    let pp = |router: &str, ports: &str, protocols: Vec<PortProtocol>, prio| PortPoolSpec {
        router: router.into(),
        ports: vec![ports.into()],
        protocols,
        policy: policy(true, prio, &[]),
        ..Default::default()
    };
    r.upsert("other-router", pp("r2", "1000-2000", vec![], 100))
        .unwrap();
    r.upsert(
        "udp-only",
        pp("r1", "3000-3010", vec![PortProtocol::Udp], 50),
    )
    .unwrap();
    r.upsert("main", pp("r1", "4000-4010", vec![], 0)).unwrap();
    let a = Claimant::new("VmNetwork", "ns", "vm").with_item("ssh");
    let got = r
        .allocate(&a, "r1", None, PortRequest::auto(PortProtocol::Tcp))
        .unwrap();
    assert_eq!(got.pool.as_deref(), Some("main"));
    assert_eq!(got.value.first, 4000);
    let u = Claimant::new("VmNetwork", "ns", "vm").with_item("dns");
    let got = r
        .allocate(&u, "r1", None, PortRequest::auto(PortProtocol::Udp))
        .unwrap();
    assert_eq!(got.pool.as_deref(), Some("udp-only"));
    let err = r
        .allocate(
            &u,
            "r1",
            Some("other-router"),
            PortRequest::auto(PortProtocol::Udp),
        )
        .unwrap_err();
    assert_eq!(err.reason(), "InvalidRequest");
    // A fixed port inside a pool conflicts there.
    let b = Claimant::new("VmNetwork", "ns", "vm2").with_item("ssh");
    let err = r
        .allocate(
            &b,
            "r1",
            None,
            PortRequest::fixed(PortProtocol::TcpUdp, 4000),
        )
        .unwrap_err();
    assert_eq!(err.reason(), "Conflict");
    let report = r.rebuild([(Ok("main".to_string()), a.clone(), got_value(4005))]);
    assert!(report.is_clean());
    assert_eq!(r.lookup(&a).unwrap().value.first, 4005);
    assert!(r.release(&a).is_some());
}

fn got_value(p: u16) -> PortAllocation {
    PortAllocation {
        protocol: PortProtocol::Tcp,
        first: p,
        last: p,
    }
}

fn closing(mut p: PoolPolicy) -> PoolPolicy {
    p.closing = true;
    p
}

#[test]
fn a_closing_address_pool_keeps_its_holders_and_gives_nothing_new() {
    let mut r = AddressPools::new();
    r.upsert("old", spec("10.0.0.0/24", policy(true, 10, &[])))
        .unwrap();
    let a = Claimant::new("VmNetwork", "ns", "a");
    let held = r.allocate(&a, None, AddressRequest::ANY).unwrap();
    assert_eq!(held.pool.as_deref(), Some("old"));
    let report = r
        .upsert("old", spec("10.0.0.0/24", closing(policy(true, 10, &[]))))
        .unwrap();
    assert!(report.is_clean(), "closing moves nothing: {report:?}");

    // The holder keeps its address, by an automatic or a fixed request.
    assert_eq!(r.allocate(&a, None, AddressRequest::ANY).unwrap(), held);
    assert_eq!(
        r.allocate(&a, Some("old"), AddressRequest::Fixed(held.value))
            .unwrap(),
        held
    );

    // Newcomers are refused whichever way they ask, naming the pool.
    let b = Claimant::new("VmNetwork", "ns", "b");
    let want = "IpPool \"old\" is being deleted: existing allocations stay until released, \
                but no new ones are handed out; name another pool";
    for (pool_ref, request) in [
        (None, AddressRequest::ANY),
        (Some("old"), AddressRequest::ANY),
        (None, AddressRequest::Fixed("10.0.0.9".parse().unwrap())),
    ] {
        let err = r.allocate(&b, pool_ref, request).unwrap_err();
        assert_eq!(err.reason(), "PoolDeleting", "{pool_ref:?} {request:?}");
        assert_eq!(err.to_string(), want);
    }
    assert_eq!(r.get("old").unwrap().counts().used, 1, "nothing was taken");

    // An open auto-assign pool serves newcomers, even at a lower priority.
    r.upsert("new", spec("10.1.0.0/24", policy(true, 0, &[])))
        .unwrap();
    let got = r.allocate(&b, None, AddressRequest::ANY).unwrap();
    assert_eq!(got.pool.as_deref(), Some("new"));

    // With an open pool that is full as well, the answer is exhaustion: freeing helps.
    let mut full = AddressPools::new();
    full.upsert("x", spec("10.2.0.1", policy(true, 0, &[])))
        .unwrap();
    full.upsert("y", spec("10.3.0.0/24", closing(policy(true, 0, &[]))))
        .unwrap();
    full.allocate(&a, None, AddressRequest::ANY).unwrap();
    let err = full.allocate(&b, None, AddressRequest::ANY).unwrap_err();
    assert_eq!(err.reason(), "PoolExhausted", "{err}");
}

#[test]
fn closing_port_pools_are_named_together() {
    let mut r = PortPools::new();
    let pp = |ports: &str, p: PoolPolicy| PortPoolSpec {
        router: "r1".into(),
        ports: vec![ports.into()],
        policy: p,
        ..Default::default()
    };
    r.upsert("a", pp("1000-1010", closing(policy(true, 0, &[]))))
        .unwrap();
    r.upsert("b", pp("2000-2010", closing(policy(true, 5, &[]))))
        .unwrap();
    let c = Claimant::new("VmNetwork", "ns", "vm").with_item("ssh");
    let err = r
        .allocate(&c, "r1", None, PortRequest::auto(PortProtocol::Tcp))
        .unwrap_err();
    assert_eq!(err.reason(), "PoolDeleting");
    assert!(
        err.to_string()
            .starts_with("PortPools \"b\", \"a\" are being deleted:"),
        "{err}"
    );
    // A holder (recorded before the pools closed) keeps its port through a rebuild.
    let report = r.rebuild([(Ok("a".to_string()), c.clone(), got_value(1003))]);
    assert!(report.is_clean());
    let again = r
        .allocate(&c, "r1", None, PortRequest::fixed(PortProtocol::Tcp, 1003))
        .unwrap();
    assert_eq!(
        (again.pool.as_deref(), again.value.first),
        (Some("a"), 1003)
    );
}
