#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn c(name: &str) -> Claimant {
    Claimant::new("VmNetwork", "web", name).with_item("ssh")
}

fn pool(ports: &[&str], exclude: &[&str]) -> PortPool {
    let spec = PortPoolSpec {
        router: "edge".into(),
        external_address: Some("203.0.113.10".into()),
        ports: ports.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        ..PortPoolSpec::default()
    };
    PortPool::new("pp", spec).unwrap()
}

use PortProtocol::{Tcp, TcpUdp, Udp};

#[test]
fn tcp_and_udp_are_separate_spaces() {
    let mut p = pool(&["1000"], &[]);
    assert_eq!(
        p.allocate(&c("a"), PortRequest::auto(Tcp))
            .unwrap()
            .to_string(),
        "1000/tcp"
    );
    assert_eq!(
        p.allocate(&c("b"), PortRequest::auto(Udp))
            .unwrap()
            .to_string(),
        "1000/udp"
    );
    let n = p.counts();
    assert_eq!(
        (n.total, n.used, n.free, n.tcp_used, n.udp_used),
        (1, 1, 0, 1, 1)
    );
    let err = p.allocate(&c("x"), PortRequest::auto(Tcp)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "PortPool \"pp\" on 203.0.113.10 has no free tcp port left: release an allocation or add to the pool"
    );
}

#[test]
fn tcp_udp_takes_both_and_conflicts_with_either() {
    let mut p = pool(&["1000-1002"], &[]);
    p.allocate(&c("t"), PortRequest::fixed(Tcp, 1000)).unwrap();
    p.allocate(&c("u"), PortRequest::fixed(Udp, 1001)).unwrap();
    let err = p
        .allocate(&c("b"), PortRequest::fixed(TcpUdp, 1001))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "udp port 1001 in PortPool \"pp\" on 203.0.113.10 is already held by VmNetwork web/u port ssh, so VmNetwork web/b port ssh cannot have it"
    );
    assert_eq!(
        p.allocate(&c("b"), PortRequest::auto(TcpUdp))
            .unwrap()
            .first,
        1002
    );
    let n = p.counts();
    assert_eq!((n.used, n.free, n.tcp_used, n.udp_used), (3, 0, 2, 2));
    assert_eq!(n.free_in_fuller_space(), 1);
    assert_eq!(p.holder_of(Tcp, 1002), Some(&c("b")));
    p.release(&c("b"));
    assert_eq!(p.counts().used, 2);
}

#[test]
fn tcp_udp_search_skips_ports_taken_in_one_space() {
    let mut p = pool(&["1-6"], &[]);
    p.allocate(&c("t1"), PortRequest::fixed(Tcp, 1)).unwrap();
    p.allocate(&c("u2"), PortRequest::fixed(Udp, 2)).unwrap();
    p.allocate(&c("t4"), PortRequest::fixed(Tcp, 4)).unwrap();
    let a = p
        .allocate(
            &c("b"),
            PortRequest::Auto {
                protocol: TcpUdp,
                count: 2,
            },
        )
        .unwrap();
    assert_eq!((a.first, a.last), (5, 6));
}

#[test]
fn contiguous_blocks() {
    let mut p = pool(&["30000-30100"], &["30005"]);
    let a = p
        .allocate(
            &c("a"),
            PortRequest::Auto {
                protocol: Tcp,
                count: 10,
            },
        )
        .unwrap();
    assert_eq!(a.to_string(), "30006-30015/tcp");
    assert_eq!(a.len(), 10);
    let err = p
        .allocate(
            &c("b"),
            PortRequest::Auto {
                protocol: Tcp,
                count: 200,
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("200 contiguous free tcp ports"),
        "{err}"
    );
    let err = p
        .allocate(
            &c("b"),
            PortRequest::Fixed {
                protocol: Tcp,
                first: 30000,
                last: 30009,
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "port 30000-30009/tcp is excluded from PortPool \"pp\" on 203.0.113.10"
    );
    let err = p
        .allocate(
            &c("b"),
            PortRequest::Fixed {
                protocol: Tcp,
                first: 30010,
                last: 30020,
            },
        )
        .unwrap_err();
    assert_eq!(err.reason(), "Conflict");
}

#[test]
fn port_edges_1_and_65535() {
    let mut p = pool(&["1", "65535"], &[]);
    assert_eq!(p.counts().total, 2);
    assert_eq!(
        p.allocate(&c("a"), PortRequest::auto(Tcp)).unwrap().first,
        1
    );
    assert_eq!(
        p.allocate(&c("b"), PortRequest::auto(Tcp)).unwrap().first,
        65535
    );
    assert_eq!(
        p.allocate(&c("x"), PortRequest::auto(Tcp))
            .unwrap_err()
            .reason(),
        "PoolExhausted"
    );
    let mut full = pool(&["1-65535"], &[]);
    let a = full
        .allocate(
            &c("all"),
            PortRequest::Auto {
                protocol: TcpUdp,
                count: 65535,
            },
        )
        .unwrap();
    assert_eq!((a.first, a.last), (1, 65535));
    assert_eq!(full.counts().free, 0);
}

#[test]
fn invalid_entries_and_requests() {
    for bad in ["0", "70000", "20-10", "x", "1-"] {
        let spec = PortPoolSpec {
            ports: vec![bad.into()],
            ..Default::default()
        };
        let err = PortPool::new("pp", spec).unwrap_err();
        assert_eq!(err.reason(), "InvalidRequest", "{bad}");
        assert!(err.to_string().contains(bad));
    }
    let mut p = pool(&["100-200"], &[]);
    let err = p
        .allocate(
            &c("a"),
            PortRequest::Auto {
                protocol: Tcp,
                count: 0,
            },
        )
        .unwrap_err();
    assert_eq!(err.reason(), "InvalidRequest");
    let err = p
        .allocate(
            &c("a"),
            PortRequest::Fixed {
                protocol: Tcp,
                first: 150,
                last: 140,
            },
        )
        .unwrap_err();
    assert_eq!(err.reason(), "InvalidRequest");
    let spec = PortPoolSpec {
        ports: vec!["100".into()],
        protocols: vec![Tcp],
        ..Default::default()
    };
    let mut tcp_only = PortPool::new("t", spec).unwrap();
    let err = tcp_only
        .allocate(&c("a"), PortRequest::auto(Udp))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid request: PortPool \"t\" does not offer udp ports (its protocols: tcp): add udp to its spec.protocols, or use another pool"
    );
}

#[test]
fn idempotent_and_moves_when_the_request_changes() {
    let mut p = pool(&["100-200"], &[]);
    let a = p
        .allocate(
            &c("a"),
            PortRequest::Auto {
                protocol: Tcp,
                count: 3,
            },
        )
        .unwrap();
    assert_eq!(
        p.allocate(
            &c("a"),
            PortRequest::Auto {
                protocol: Tcp,
                count: 3
            }
        )
        .unwrap(),
        a
    );
    // Growing a block in place works: the old block is set aside while searching.
    let f = PortRequest::Fixed {
        protocol: Tcp,
        first: 100,
        last: 104,
    };
    assert_eq!(p.allocate(&c("a"), f).unwrap().len(), 5);
    assert_eq!(p.counts().tcp_used, 5);
}

#[test]
fn rebuild_and_reconfigure() {
    let mut p = pool(&["100-200"], &[]);
    let at = |first, last, protocol| PortAllocation {
        protocol,
        first,
        last,
    };
    let report = p.rebuild([
        (c("b"), at(150, 150, TcpUdp)),
        (c("a"), at(150, 150, Udp)),
        (c("t"), at(150, 150, Tcp)),
        (c("z"), at(300, 301, Tcp)),
    ]);
    // Sorted by port then protocol: t (tcp) and a (udp) get in, b (tcp_udp) conflicts.
    assert_eq!(report.conflicts.len(), 1);
    assert!(report.conflicts[0].to_string().starts_with(
        "tcp port 150 in PortPool \"pp\" on 203.0.113.10 is already held by VmNetwork web/t port ssh, so VmNetwork web/b port ssh"
    ));
    assert_eq!(report.out_of_range.len(), 1);
    assert_eq!(p.counts().used, 1);
    let spec = PortPoolSpec {
        ports: vec!["100-120".into()],
        ..Default::default()
    };
    let report = p.reconfigure(spec).unwrap();
    assert_eq!(report.out_of_range.len(), 3);
    assert_eq!(p.len(), 3);
}
