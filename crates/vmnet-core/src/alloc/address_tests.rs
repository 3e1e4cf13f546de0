#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn c(name: &str) -> Claimant {
    Claimant::new("VmNetwork", "web", name)
}

fn pool(addresses: &[&str], exclude: &[&str]) -> AddressPool {
    let spec = AddressPoolSpec {
        addresses: addresses.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        ..AddressPoolSpec::default()
    };
    AddressPool::new("lab", spec).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn skips_network_and_broadcast_by_default() {
    let mut p = pool(&["10.0.0.0/30"], &[]);
    assert_eq!(p.counts().total, 2);
    assert_eq!(
        p.allocate(&c("a"), AddressRequest::ANY).unwrap(),
        ip("10.0.0.1")
    );
    assert_eq!(
        p.allocate(&c("b"), AddressRequest::ANY).unwrap(),
        ip("10.0.0.2")
    );
    let err = p.allocate(&c("c"), AddressRequest::ANY).unwrap_err();
    assert_eq!(err.reason(), "PoolExhausted");
    assert_eq!(
        err.to_string(),
        "IpPool \"lab\" has no free address left: release an allocation or add to the pool"
    );
    let err = p
        .allocate(&c("c"), AddressRequest::Fixed(ip("10.0.0.3")))
        .unwrap_err();
    assert!(matches!(
        err,
        AllocError::OutsidePool {
            reason: OutsideReason::NetworkOrBroadcast,
            ..
        }
    ));
    assert!(
        err.to_string().contains("includeNetworkAndBroadcast"),
        "{err}"
    );
}

#[test]
fn include_network_and_broadcast_hands_out_the_edges() {
    let spec = AddressPoolSpec {
        addresses: vec!["10.0.0.0/30".into()],
        include_network_and_broadcast: true,
        ..AddressPoolSpec::default()
    };
    let mut p = AddressPool::new("lab", spec).unwrap();
    assert_eq!(p.counts().total, 4);
    assert_eq!(
        p.allocate(&c("first"), AddressRequest::ANY).unwrap(),
        ip("10.0.0.0")
    );
    assert_eq!(
        p.allocate(&c("last"), AddressRequest::Fixed(ip("10.0.0.3")))
            .unwrap(),
        ip("10.0.0.3")
    );
}

#[test]
fn slash_31_and_32_and_ranges_keep_every_address() {
    assert_eq!(pool(&["10.0.0.0/31"], &[]).counts().total, 2);
    assert_eq!(pool(&["10.0.0.9/32"], &[]).counts().total, 1);
    assert_eq!(pool(&["10.0.0.0-10.0.0.255"], &[]).counts().total, 256);
}

#[test]
fn single_address_pool() {
    let mut p = pool(&["192.0.2.7"], &[]);
    assert_eq!(
        p.allocate(&c("a"), AddressRequest::ANY).unwrap(),
        ip("192.0.2.7")
    );
    assert_eq!(
        p.counts(),
        PoolCounts {
            total: 1,
            used: 1,
            free: 0
        }
    );
    assert_eq!(
        p.allocate(&c("b"), AddressRequest::ANY)
            .unwrap_err()
            .reason(),
        "PoolExhausted"
    );
    assert_eq!(p.release(&c("a")), Some(ip("192.0.2.7")));
    assert_eq!(
        p.allocate(&c("b"), AddressRequest::ANY).unwrap(),
        ip("192.0.2.7")
    );
}

#[test]
fn first_and_last_address_of_the_space() {
    let mut p = pool(
        &[
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ],
        &[],
    );
    for a in [
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ] {
        assert_eq!(
            p.allocate(&c(a), AddressRequest::Fixed(ip(a))).unwrap(),
            ip(a)
        );
    }
    assert_eq!(p.counts().free, 0);
}

#[test]
fn ipv6_ranges_and_families() {
    let mut p = pool(
        &["2001:db8::10-2001:db8::12", "10.1.0.5"],
        &["2001:db8::11"],
    );
    assert_eq!(p.counts().total, 3);
    let v6 = AddressRequest::Auto {
        family: Some(IpFamily::V6),
    };
    assert_eq!(p.allocate(&c("a"), v6).unwrap(), ip("2001:db8::10"));
    assert_eq!(p.allocate(&c("b"), v6).unwrap(), ip("2001:db8::12"));
    assert_eq!(
        p.allocate(&c("x"), v6).unwrap_err().reason(),
        "PoolExhausted"
    );
    let v4 = AddressRequest::Auto {
        family: Some(IpFamily::V4),
    };
    assert_eq!(p.allocate(&c("c"), v4).unwrap(), ip("10.1.0.5"));
    // An IPv4-mapped IPv6 address is the same address.
    assert_eq!(p.holder_of(ip("::ffff:10.1.0.5")), Some(&c("c")));
}

#[test]
fn counts_on_a_slash_64_are_instant() {
    let mut p = pool(&["2001:db8::/64", "2001:db8:1::/48"], &["2001:db8::/120"]);
    let total = (1u128 << 64) + (1u128 << 80) - 256;
    assert_eq!(p.counts().total, total);
    p.allocate(&c("a"), AddressRequest::ANY).unwrap();
    let n = p.counts();
    assert_eq!((n.used, n.free), (1, total - 1));
    let slash64 = pool(&["2001:db8::/64"], &[]).counts();
    assert_eq!(slash64.total.to_string(), "18446744073709551616");
}

#[test]
fn exclusions_refuse_fixed_requests() {
    let mut p = pool(&["10.0.0.0/24"], &["10.0.0.1", "10.0.0.100-10.0.0.110"]);
    let err = p
        .allocate(&c("a"), AddressRequest::Fixed(ip("10.0.0.105")))
        .unwrap_err();
    assert_eq!(err.reason(), "OutsidePool");
    assert_eq!(
        err.to_string(),
        "address 10.0.0.105 is excluded from IpPool \"lab\""
    );
    assert_eq!(
        p.allocate(&c("a"), AddressRequest::ANY).unwrap(),
        ip("10.0.0.2")
    );
    let err = p
        .allocate(&c("b"), AddressRequest::Fixed(ip("10.9.0.1")))
        .unwrap_err();
    assert_eq!(err.to_string(), "address 10.9.0.1 is not in IpPool \"lab\"");
}

#[test]
fn conflict_names_both() {
    let mut p = pool(&["10.0.0.0/24"], &[]);
    p.allocate(&c("a"), AddressRequest::Fixed(ip("10.0.0.5")))
        .unwrap();
    let err = p
        .allocate(&c("b"), AddressRequest::Fixed(ip("10.0.0.5")))
        .unwrap_err();
    assert_eq!(err.reason(), "Conflict");
    assert_eq!(
        err.to_string(),
        "address 10.0.0.5 in IpPool \"lab\" is already held by VmNetwork web/a, so VmNetwork web/b cannot have it"
    );
}

#[test]
fn namespace_not_allowed() {
    let spec = AddressPoolSpec {
        addresses: vec!["10.0.0.0/24".into()],
        policy: PoolPolicy {
            allowed_namespaces: vec!["prod".into()],
            ..PoolPolicy::default()
        },
        ..AddressPoolSpec::default()
    };
    let mut p = AddressPool::new("lab", spec).unwrap();
    let err = p.allocate(&c("a"), AddressRequest::ANY).unwrap_err();
    assert_eq!(err.reason(), "NamespaceNotAllowed");
    assert!(
        err.to_string()
            .starts_with("namespace \"web\" may not use IpPool \"lab\""),
        "{err}"
    );
    let ok = Claimant::new("VmNetwork", "prod", "a");
    assert!(p.allocate(&ok, AddressRequest::ANY).is_ok());
}

#[test]
fn invalid_entries_are_named() {
    for bad in [
        "10.0.0.5/24",
        "10.0.0.9-10.0.0.1",
        "10.0.0.1-2001:db8::1",
        "nope",
        "::ffff:10.0.0.0/120",
    ] {
        let err = AddressPool::new(
            "x",
            AddressPoolSpec {
                addresses: vec![bad.into()],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.reason(), "InvalidRequest");
        assert!(err.to_string().contains(bad), "{err}");
    }
}

#[test]
fn idempotent_and_atomic_moves() {
    let mut p = pool(&["10.0.0.0/24"], &[]);
    let a = p.allocate(&c("a"), AddressRequest::ANY).unwrap();
    assert_eq!(p.allocate(&c("a"), AddressRequest::ANY).unwrap(), a);
    assert_eq!(p.allocate(&c("a"), AddressRequest::Fixed(a)).unwrap(), a);
    p.allocate(&c("b"), AddressRequest::Fixed(ip("10.0.0.50")))
        .unwrap();
    // A move onto a held address fails and keeps the old one.
    assert!(
        p.allocate(&c("a"), AddressRequest::Fixed(ip("10.0.0.50")))
            .is_err()
    );
    assert_eq!(p.get(&c("a")), Some(a));
    assert_eq!(
        p.allocate(&c("a"), AddressRequest::Fixed(ip("10.0.0.60")))
            .unwrap(),
        ip("10.0.0.60")
    );
    assert_eq!(p.holder_of(a), None);
    assert_eq!(p.counts().used, 2);
}

#[test]
fn next_fit_does_not_reuse_a_just_released_address() {
    let mut p = pool(&["10.0.0.0/29"], &[]);
    let a = p.allocate(&c("a"), AddressRequest::ANY).unwrap();
    p.release(&c("a"));
    assert_ne!(p.allocate(&c("b"), AddressRequest::ANY).unwrap(), a);
}

#[test]
fn rebuild_reports_conflicts_and_out_of_range_and_keeps_them() {
    let mut p = pool(&["10.0.0.0/24"], &["10.0.0.9"]);
    let report = p.rebuild([
        (c("b"), ip("10.0.0.5")),
        (c("a"), ip("10.0.0.5")),
        (c("z"), ip("10.0.1.1")),
        (c("y"), ip("10.0.0.9")),
    ]);
    assert_eq!(report.conflicts.len(), 1);
    match &report.conflicts[0] {
        AllocError::Conflict {
            holder, claimant, ..
        } => {
            assert_eq!(**holder, c("a"));
            assert_eq!(**claimant, c("b"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.out_of_range.len(), 2);
    assert_eq!(p.out_of_range(), {
        let mut v = report.out_of_range.clone();
        v.sort_by(|a, b| a.resource.cmp(&b.resource));
        v
    });
    // Out-of-range allocations are not counted as used.
    assert_eq!(p.counts().used, 1);
    assert_eq!(p.len(), 3);
}

#[test]
fn reconfigure_never_moves() {
    let mut p = pool(&["10.0.0.0/24"], &[]);
    p.allocate(&c("a"), AddressRequest::Fixed(ip("10.0.0.200")))
        .unwrap();
    let spec = AddressPoolSpec {
        addresses: vec!["10.0.0.0/25".into()],
        ..Default::default()
    };
    let report = p.reconfigure(spec).unwrap();
    assert_eq!(report.out_of_range.len(), 1);
    assert_eq!(
        report.out_of_range[0].to_string(),
        "10.0.0.200 (VmNetwork web/a; not in the pool)"
    );
    assert_eq!(p.get(&c("a")), Some(ip("10.0.0.200")));
    assert_eq!(
        p.allocate(&c("a"), AddressRequest::ANY).unwrap(),
        ip("10.0.0.200")
    );
}
