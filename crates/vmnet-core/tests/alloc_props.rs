//! Properties of the allocators: never the same thing twice, counts add up, rebuilds do not
//! depend on order, exclusions hold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use vmnet_core::alloc::{
    AddressPool, AddressPoolSpec, AddressRequest, AllocError, Claimant, OutsideReason,
    PortAllocation, PortPool, PortPoolSpec, PortProtocol, PortRequest, RuleNumbers,
};

fn claimant(i: u8) -> Claimant {
    Claimant::new("VmNetwork", "ns", format!("vm{i}"))
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

/// A small pool inside 10.0.0.0/24: a CIDR or a range, plus exclusions.
fn pool_strategy() -> impl Strategy<Value = AddressPoolSpec> {
    (
        prop_oneof![
            (0u8..=8).prop_map(|bits| format!("10.0.0.0/{}", 24 + bits)),
            (0u8..200, 0u8..50).prop_map(|(a, n)| format!("10.0.0.{a}-10.0.0.{}", a + n)),
        ],
        proptest::collection::vec((0u8..=255, 0u8..4), 0..4),
        any::<bool>(),
    )
        .prop_map(|(entry, excl, include)| AddressPoolSpec {
            addresses: vec![entry],
            exclude: excl
                .into_iter()
                .map(|(a, n)| format!("10.0.0.{a}-10.0.0.{}", a.saturating_add(n)))
                .collect(),
            include_network_and_broadcast: include,
            ..Default::default()
        })
}

#[derive(Debug, Clone)]
enum Op {
    Auto(u8),
    Fixed(u8, u8),
    Release(u8),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            3 => (0u8..40).prop_map(Op::Auto),
            2 => (0u8..40, any::<u8>()).prop_map(|(c, a)| Op::Fixed(c, a)),
            2 => (0u8..40).prop_map(Op::Release),
        ],
        0..120,
    )
}

fn run(pool: &mut AddressPool, ops: &[Op]) {
    for op in ops {
        let _ = match *op {
            Op::Auto(c) => pool.allocate(&claimant(c), AddressRequest::ANY).map(|_| ()),
            Op::Fixed(c, a) => pool
                .allocate(&claimant(c), AddressRequest::Fixed(v4(a)))
                .map(|_| ()),
            Op::Release(c) => {
                pool.release(&claimant(c));
                Ok(())
            }
        };
    }
}

fn check_invariants(pool: &AddressPool) {
    let all: Vec<_> = pool.allocations().collect();
    let distinct: HashSet<IpAddr> = all.iter().map(|(_, ip)| *ip).collect();
    assert_eq!(distinct.len(), all.len(), "two claimants share an address");
    let owners: HashSet<&Claimant> = all.iter().map(|(c, _)| *c).collect();
    assert_eq!(owners.len(), all.len(), "a claimant holds two addresses");
    let n = pool.counts();
    assert_eq!(n.used + n.free, n.total);
    assert_eq!(
        n.used as usize,
        all.len(),
        "every live allocation is inside the pool"
    );
    for (c, ip) in all {
        assert_eq!(pool.get(c), Some(ip));
        assert_eq!(pool.holder_of(ip), Some(c));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_two_live_allocations_are_equal(spec in pool_strategy(), ops in ops()) {
        let mut pool = AddressPool::new("p", spec).unwrap();
        run(&mut pool, &ops);
        check_invariants(&pool);
    }

    #[test]
    fn allocate_all_then_release_all_is_empty(spec in pool_strategy()) {
        let mut pool = AddressPool::new("p", spec).unwrap();
        let total = pool.counts().total;
        let mut i = 0u32;
        loop {
            let c = Claimant::new("VmNetwork", "ns", format!("c{i}"));
            match pool.allocate(&c, AddressRequest::ANY) {
                Ok(_) => i += 1,
                Err(AllocError::Exhausted { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        prop_assert_eq!(u128::from(i), total);
        prop_assert_eq!(pool.counts().free, 0);
        check_invariants(&pool);
        for j in 0..i {
            let c = Claimant::new("VmNetwork", "ns", format!("c{j}"));
            prop_assert!(pool.release(&c).is_some());
        }
        prop_assert!(pool.is_empty());
        prop_assert_eq!(pool.counts().used, 0);
        prop_assert_eq!(pool.counts().free, total);
    }

    #[test]
    fn rebuild_does_not_depend_on_order(
        spec in pool_strategy(),
        claims in proptest::collection::vec((0u8..30, any::<u8>()), 0..60),
        keys in proptest::collection::vec(any::<u64>(), 60),
    ) {
        // Claims may contest addresses and lie outside the pool: still order-independent.
        let claims: Vec<(Claimant, IpAddr)> =
            claims.into_iter().map(|(c, a)| (claimant(c), v4(a))).collect();
        let mut shuffled: Vec<_> = claims.iter().cloned().zip(keys).collect();
        shuffled.sort_by_key(|(_, k)| *k);
        let shuffled: Vec<_> = shuffled.into_iter().map(|(c, _)| c).collect();

        let mut a = AddressPool::new("p", spec.clone()).unwrap();
        let mut b = AddressPool::new("p", spec).unwrap();
        let ra = a.rebuild(claims);
        let rb = b.rebuild(shuffled);
        prop_assert_eq!(ra, rb);
        let la: Vec<_> = a.allocations().map(|(c, ip)| (c.clone(), ip)).collect();
        let lb: Vec<_> = b.allocations().map(|(c, ip)| (c.clone(), ip)).collect();
        prop_assert_eq!(la, lb);
        prop_assert_eq!(a.counts(), b.counts());
        prop_assert_eq!(a.out_of_range(), b.out_of_range());
    }

    #[test]
    fn rebuild_of_a_live_set_restores_it(spec in pool_strategy(), ops in ops(), keys in proptest::collection::vec(any::<u64>(), 40)) {
        let mut live = AddressPool::new("p", spec.clone()).unwrap();
        run(&mut live, &ops);
        let mut claims: Vec<_> = live.allocations().map(|(c, ip)| (c.clone(), ip)).collect();
        claims.sort_by_key(|(c, _)| keys[c.name[2..].parse::<usize>().unwrap() % keys.len()]);
        let mut rebuilt = AddressPool::new("p", spec).unwrap();
        let report = rebuilt.rebuild(claims);
        prop_assert!(report.is_clean());
        let la: Vec<_> = live.allocations().map(|(c, ip)| (c.clone(), ip)).collect();
        let lb: Vec<_> = rebuilt.allocations().map(|(c, ip)| (c.clone(), ip)).collect();
        prop_assert_eq!(la, lb);
        prop_assert_eq!(live.counts(), rebuilt.counts());
    }

    #[test]
    fn fixed_requests_inside_exclusions_are_refused(
        bits in 0u8..=8,
        at in any::<u8>(),
        n in 0u8..4,
        include in any::<bool>(),
    ) {
        let size = 1u16 << (8 - bits);
        let first = (u16::from(at) % size) as u8;
        let last = first.saturating_add(n);
        let spec = AddressPoolSpec {
            addresses: vec![format!("10.0.0.0/{}", 24 + bits)],
            exclude: vec![format!("10.0.0.{first}-10.0.0.{last}")],
            include_network_and_broadcast: include,
            ..Default::default()
        };
        let mut pool = AddressPool::new("p", spec).unwrap();
        for a in first..=last {
            prop_assume!(pool.covers(v4(a)));
            let err = pool.allocate(&claimant(1), AddressRequest::Fixed(v4(a))).unwrap_err();
            let is_excluded = matches!(err, AllocError::OutsidePool { reason: OutsideReason::Excluded, .. });
            prop_assert!(is_excluded, "{err}");
        }
        prop_assert!(pool.is_empty());
    }

    #[test]
    fn port_pools_with_tcp_udp_never_double_book(
        ranges in proptest::collection::vec((1u16..60, 0u16..10), 1..4),
        excl in proptest::collection::vec(1u16..70, 0..4),
        ops in proptest::collection::vec((0u8..30, 0u8..3, 0u8..3, 1u16..70, 1u16..4), 0..150),
    ) {
        let spec = PortPoolSpec {
            ports: ranges.iter().map(|(a, n)| format!("{a}-{}", a + n)).collect(),
            exclude: excl.iter().map(u16::to_string).collect(),
            ..Default::default()
        };
        let mut pool = PortPool::new("pp", spec).unwrap();
        let total = pool.counts().total;
        for (c, kind, proto, port, count) in ops {
            let protocol = [PortProtocol::Tcp, PortProtocol::Udp, PortProtocol::TcpUdp][proto as usize];
            let who = claimant(c);
            let _ = match kind {
                0 => pool.allocate(&who, PortRequest::Auto { protocol, count }).map(|_| ()),
                1 => pool.allocate(&who, PortRequest::Fixed { protocol, first: port, last: port + count - 1 }).map(|_| ()),
                _ => { pool.release(&who); Ok(()) }
            };
        }
        // Brute force over the tiny space: no port is held twice in one protocol space.
        let mut tcp = BTreeSet::new();
        let mut udp = BTreeSet::new();
        for (_, a) in pool.allocations() {
            let PortAllocation { protocol, first, last } = a;
            for p in first..=last {
                if matches!(protocol, PortProtocol::Tcp | PortProtocol::TcpUdp) {
                    prop_assert!(tcp.insert(p), "tcp {p} twice");
                }
                if matches!(protocol, PortProtocol::Udp | PortProtocol::TcpUdp) {
                    prop_assert!(udp.insert(p), "udp {p} twice");
                }
            }
        }
        let n = pool.counts();
        prop_assert_eq!(n.total, total);
        prop_assert_eq!(n.used + n.free, n.total);
        prop_assert_eq!(n.tcp_used, tcp.len() as u128);
        prop_assert_eq!(n.udp_used, udp.len() as u128);
        prop_assert_eq!(n.used, tcp.union(&udp).count() as u128);
        // Rebuilding the live set in reverse gives the same state.
        let claims: Vec<_> = pool.allocations().into_iter().rev().map(|(c, a)| (c.clone(), a)).collect();
        let mut again = pool.clone();
        prop_assert!(again.rebuild(claims).is_clean());
        prop_assert_eq!(again.counts(), n);
        prop_assert_eq!(again.allocations(), pool.allocations());
    }

    #[test]
    fn rule_numbers_are_unique_and_stable(names in proptest::collection::btree_set("[a-z]{1,8}", 1..40), start in 1u32..999_000, len in 1u32..60) {
        let mut r = RuleNumbers::new("r", start, start + len - 1).unwrap();
        let mut got = BTreeSet::new();
        for n in &names {
            let c = Claimant::new("PortRule", "ns", n.clone());
            match r.allocate(&c) {
                Ok(x) => {
                    prop_assert!((start..start + len).contains(&x));
                    prop_assert!(got.insert(x));
                    prop_assert_eq!(r.allocate(&c).unwrap(), x);
                }
                Err(e) => prop_assert_eq!(e.reason(), "PoolExhausted"),
            }
        }
        let n = r.counts();
        prop_assert_eq!(n.used + n.free, n.total);
        let claims: Vec<_> = r.allocations().map(|(c, x)| (c.clone(), x)).collect();
        let mut again = RuleNumbers::new("r", start, start + len - 1).unwrap();
        prop_assert!(again.rebuild(claims.into_iter().rev()).is_clean());
        prop_assert_eq!(again.allocations().collect::<Vec<_>>(), r.allocations().collect::<Vec<_>>());
    }
}
