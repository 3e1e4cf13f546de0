//! Properties of the pool registries (many pools, fixed and automatic requests, every
//! protocol, values inside and outside the pools): two claimants never hold one address,
//! and never one port in one protocol space on one router, wherever it is held.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use vmnet_core::alloc::{
    AddressPoolSpec, AddressPools, AddressRequest, AllocError, Claimant, PoolPolicy,
    PortAllocation, PortPoolSpec, PortPools, PortProtocol, PortRequest,
};

fn claimant(i: u8) -> Claimant {
    Claimant::new("VmNetwork", format!("ns{}", i % 3), format!("vm{i}"))
}

fn auto_policy() -> PoolPolicy {
    PoolPolicy {
        auto_assign: true,
        ..Default::default()
    }
}

fn protocol(i: u8) -> PortProtocol {
    match i % 3 {
        0 => PortProtocol::Tcp,
        1 => PortProtocol::Udp,
        _ => PortProtocol::TcpUdp,
    }
}

/// Two routers; on each a pool of ports 100-119 with no protocols named (so all three),
/// and on router `a` a tcp-only pool of 200-209. Ports 1-99 and 120-199 lie outside.
fn port_pools() -> PortPools {
    let mut p = PortPools::new();
    for router in ["a", "b"] {
        p.upsert(
            &format!("{router}-main"),
            PortPoolSpec {
                router: router.into(),
                ports: vec!["100-119".into()],
                policy: auto_policy(),
                ..Default::default()
            },
        )
        .unwrap();
    }
    p.upsert(
        "a-tcp",
        PortPoolSpec {
            router: "a".into(),
            ports: vec!["200-209".into()],
            protocols: vec![PortProtocol::Tcp],
            policy: auto_policy(),
            ..Default::default()
        },
    )
    .unwrap();
    p
}

#[derive(Debug, Clone)]
enum PortOp {
    Auto {
        who: u8,
        router: bool,
        proto: u8,
    },
    Fixed {
        who: u8,
        router: bool,
        proto: u8,
        port: u16,
    },
    Release(u8),
}

fn port_ops() -> impl Strategy<Value = Vec<PortOp>> {
    proptest::collection::vec(
        prop_oneof![
            3 => (0u8..30, any::<bool>(), any::<u8>())
                .prop_map(|(who, router, proto)| PortOp::Auto { who, router, proto }),
            4 => (0u8..30, any::<bool>(), any::<u8>(), 90u16..215)
                .prop_map(|(who, router, proto, port)| PortOp::Fixed { who, router, proto, port }),
            2 => (0u8..30).prop_map(PortOp::Release),
        ],
        0..150,
    )
}

/// Every holding, from the registry's own answers.
fn holdings(p: &PortPools, who: &[Claimant]) -> Vec<(String, Claimant, PortAllocation)> {
    let mut out = Vec::new();
    for c in who {
        if let Some(a) = p.lookup(c) {
            let router = match &a.pool {
                Some(name) => p.get(name).unwrap().spec().router.clone(),
                None => ["a", "b"]
                    .into_iter()
                    .find(|r| p.unpooled(r).iter().any(|(h, _)| *h == c))
                    .unwrap()
                    .to_owned(),
            };
            out.push((router, c.clone(), a.value));
        }
    }
    out
}

fn spaces(a: &PortAllocation) -> Vec<&'static str> {
    match a.protocol {
        PortProtocol::Tcp => vec!["tcp"],
        PortProtocol::Udp => vec!["udp"],
        PortProtocol::TcpUdp => vec!["tcp", "udp"],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_port_is_held_twice_in_one_space_on_one_router(ops in port_ops()) {
        let mut p = port_pools();
        let who: Vec<Claimant> = (0..30).map(claimant).collect();
        for op in ops {
            match op {
                PortOp::Auto { who: w, router, proto } => {
                    let r = if router { "a" } else { "b" };
                    let _ = p.allocate(&who[w as usize], r, None, PortRequest::auto(protocol(proto)));
                }
                PortOp::Fixed { who: w, router, proto, port } => {
                    let r = if router { "a" } else { "b" };
                    let got = p.allocate(&who[w as usize], r, None, PortRequest::fixed(protocol(proto), port));
                    // A port inside a pool that does not offer the protocol is refused,
                    // never handed out beside the pool.
                    if router && (200..=209).contains(&port) && protocol(proto) != PortProtocol::Tcp {
                        prop_assert!(matches!(got, Err(AllocError::InvalidRequest { .. })), "{got:?}");
                    }
                    if let Ok(a) = &got {
                        let inside = (100..=119).contains(&port) || (router && (200..=209).contains(&port));
                        prop_assert_eq!(a.pool.is_some(), inside, "{:?}", a);
                    }
                }
                PortOp::Release(w) => {
                    p.release(&who[w as usize]);
                }
            }
            let mut seen: BTreeMap<(String, &str, u16), Claimant> = BTreeMap::new();
            for (router, c, a) in holdings(&p, &who) {
                for space in spaces(&a) {
                    for port in a.first..=a.last {
                        if let Some(other) = seen.insert((router.clone(), space, port), c.clone()) {
                            prop_assert!(false, "{space} port {port} on {router} held by {other} and {c}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn no_address_is_held_twice(ops in proptest::collection::vec((0u8..30, 0u8..3, 0u8..24), 0..150)) {
        let mut pools = AddressPools::new();
        pools.upsert("lab", AddressPoolSpec {
            addresses: vec!["10.0.0.0-10.0.0.9".into()],
            policy: auto_policy(),
            ..Default::default()
        }).unwrap();
        let who: Vec<Claimant> = (0..30).map(claimant).collect();
        for (w, kind, last) in ops {
            let c = &who[w as usize];
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, last));
            match kind {
                0 => { let _ = pools.allocate(c, None, AddressRequest::ANY); }
                1 => { let _ = pools.allocate(c, None, AddressRequest::Fixed(ip)); }
                _ => { pools.release(c); }
            }
            let mut seen: BTreeMap<IpAddr, &Claimant> = BTreeMap::new();
            for c in &who {
                if let Some(a) = pools.lookup(c) {
                    prop_assert_eq!(pools.holder(a.value), Some(c));
                    if let Some(other) = seen.insert(a.value, c) {
                        prop_assert!(false, "{} held by {other} and {c}", a.value);
                    }
                }
            }
        }
    }
}

#[test]
fn a_pool_that_names_no_protocols_serves_tcp_udp_and_claims_a_fixed_one() {
    let mut p = port_pools();
    let (x, y) = (claimant(1), claimant(2));
    let fixed = p
        .allocate(&x, "a", None, PortRequest::fixed(PortProtocol::TcpUdp, 100))
        .unwrap();
    assert_eq!(fixed.pool.as_deref(), Some("a-main"), "claimed in the pool");
    // The next automatic tcp port skips 100: it is taken in the tcp space too.
    let auto = p
        .allocate(
            &y,
            "a",
            Some("a-main"),
            PortRequest::auto(PortProtocol::Tcp),
        )
        .unwrap();
    assert_ne!(auto.value.first, 100);
    let auto_udp = p
        .allocate(
            &claimant(3),
            "a",
            None,
            PortRequest::auto(PortProtocol::TcpUdp),
        )
        .unwrap();
    assert_eq!(auto_udp.pool.as_deref(), Some("a-main"));
}

#[test]
fn no_auto_pool_for_a_protocol_says_so() {
    let mut p = PortPools::new();
    p.upsert(
        "edge-1-public",
        PortPoolSpec {
            router: "edge-1".into(),
            ports: vec!["30000-30099".into()],
            protocols: vec![PortProtocol::Tcp, PortProtocol::Udp],
            policy: auto_policy(),
            ..Default::default()
        },
    )
    .unwrap();
    let e = p
        .allocate(
            &claimant(1),
            "edge-1",
            None,
            PortRequest::auto(PortProtocol::TcpUdp),
        )
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("offers tcp_udp"), "{text}");
    assert!(text.contains("\"edge-1-public\" offers tcp, udp"), "{text}");
    assert!(!text.contains("no PortPool has autoAssign"), "{text}");
    let e = p
        .allocate(
            &claimant(1),
            "edge-2",
            None,
            PortRequest::auto(PortProtocol::Tcp),
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("VyosRouter \"edge-2\" has no PortPool with autoAssign"),
        "{e}"
    );
    // A fixed tcp_udp port inside that pool is refused, naming the pool.
    let e = p
        .allocate(
            &claimant(2),
            "edge-1",
            None,
            PortRequest::fixed(PortProtocol::TcpUdp, 30022),
        )
        .unwrap_err();
    assert_eq!(e.reason(), "InvalidRequest");
    assert!(e.to_string().contains("PortPool \"edge-1-public\""), "{e}");
}

#[test]
fn fixed_values_outside_every_pool_are_held_once() {
    let mut p = port_pools();
    let (x, y) = (claimant(1), claimant(2));
    let a = p
        .allocate(&x, "a", None, PortRequest::fixed(PortProtocol::TcpUdp, 50))
        .unwrap();
    assert_eq!(a.pool, None);
    let e = p
        .allocate(&y, "a", None, PortRequest::fixed(PortProtocol::Udp, 50))
        .unwrap_err();
    assert_eq!(e.reason(), "Conflict");
    assert!(e.to_string().contains("in no PortPool"), "{e}");
    // Another router, or another space, is free.
    assert!(
        p.allocate(&y, "b", None, PortRequest::fixed(PortProtocol::Udp, 50))
            .is_ok()
    );
    p.release(&x);
    assert!(
        p.allocate(&y, "a", None, PortRequest::fixed(PortProtocol::Udp, 50))
            .is_ok()
    );

    let mut ips = AddressPools::new();
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    assert_eq!(
        ips.allocate(&x, None, AddressRequest::Fixed(ip))
            .unwrap()
            .pool,
        None
    );
    assert_eq!(ips.holder(ip), Some(&x));
    let e = ips
        .allocate(&y, None, AddressRequest::Fixed(ip))
        .unwrap_err();
    assert_eq!(e.reason(), "Conflict");
    assert_eq!(ips.holder(ip), Some(&x), "the conflict changed nothing");
}

#[test]
fn restore_puts_back_exactly_what_was_held() {
    let mut p = port_pools();
    let x = claimant(1).with_item("ssh");
    let before = p
        .allocate(&x, "a", None, PortRequest::fixed(PortProtocol::Tcp, 105))
        .unwrap();
    p.allocate(&x, "a", None, PortRequest::fixed(PortProtocol::Tcp, 60))
        .unwrap();
    assert!(p.restore(&x, "a", Some(&before)));
    assert_eq!(p.lookup(&x), Some(before));
    assert!(p.restore(&x, "a", None));
    assert_eq!(p.lookup(&x), None);
    assert_eq!(p.get("a-main").unwrap().counts().used, 0);

    let mut ips = AddressPools::new();
    ips.upsert(
        "lab",
        AddressPoolSpec {
            addresses: vec!["10.0.0.0/24".into()],
            policy: auto_policy(),
            ..Default::default()
        },
    )
    .unwrap();
    let vm = claimant(1);
    let held = ips.allocate(&vm, None, AddressRequest::ANY).unwrap();
    ips.allocate(
        &vm,
        None,
        AddressRequest::Fixed("192.0.2.1".parse().unwrap()),
    )
    .unwrap();
    assert!(ips.restore(&vm, Some(&held)));
    assert_eq!(ips.lookup(&vm), Some(held));
    assert_eq!(ips.holder("192.0.2.1".parse().unwrap()), None);
}

#[test]
fn held_by_finds_every_port_of_one_object() {
    let mut p = port_pools();
    let vm = claimant(4);
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        p.allocate(
            &vm.clone().with_item(name),
            "a",
            None,
            PortRequest::fixed(PortProtocol::Tcp, 100 + i as u16),
        )
        .unwrap();
    }
    p.allocate(
        &claimant(5).with_item("a"),
        "a",
        None,
        PortRequest::auto(PortProtocol::Tcp),
    )
    .unwrap();
    p.allocate(
        &vm.clone().with_item("far"),
        "a",
        None,
        PortRequest::fixed(PortProtocol::Tcp, 7),
    )
    .unwrap();
    let items: Vec<String> = p.held_by(&vm).into_iter().filter_map(|c| c.item).collect();
    assert_eq!(items, ["a", "b", "c", "far"]);
}
