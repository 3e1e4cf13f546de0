//! Allocator timings against their targets. Run: `cargo bench -p vmnet-core --bench allocators`.
//!
//! A plain `main` (no harness): each case runs a few times and prints the best time, the
//! target and the ratio (below 1.0 is within target).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use vmnet_core::alloc::{
    AddressPool, AddressPoolSpec, AddressRequest, Claimant, PortPool, PortPoolSpec, PortProtocol,
    PortRequest,
};

const RUNS: usize = 5;

fn claimants(n: usize) -> Vec<Claimant> {
    (0..n)
        .map(|i| Claimant::new("VmNetwork", format!("ns{}", i % 50), format!("vm-{i}")))
        .collect()
}

fn address_pool(cidr: &str) -> AddressPool {
    let spec = AddressPoolSpec {
        addresses: vec![cidr.to_owned()],
        ..AddressPoolSpec::default()
    };
    AddressPool::new("bench", spec).unwrap()
}

fn best<T>(mut setup: impl FnMut() -> T, mut run: impl FnMut(T)) -> Duration {
    (0..RUNS)
        .map(|_| {
            let input = setup();
            let t = Instant::now();
            run(input);
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn report(name: &str, took: Duration, target: Duration) {
    let ratio = took.as_secs_f64() / target.as_secs_f64();
    let verdict = if ratio < 1.0 { "ok" } else { "SLOW" };
    println!(
        "{name:<48} {:>10.3} ms   target {:>7.1} ms   ratio {ratio:>7.4}  {verdict}",
        took.as_secs_f64() * 1e3,
        target.as_secs_f64() * 1e3,
    );
}

fn main() {
    let people = claimants(100_000);

    let took = best(
        || address_pool("10.0.0.0/16"),
        |mut pool| {
            for c in &people[..10_000] {
                black_box(pool.allocate(c, AddressRequest::ANY).unwrap());
            }
        },
    );
    report(
        "10,000 address allocations from a /16",
        took,
        Duration::from_millis(50),
    );

    let took = best(
        || {
            let spec = PortPoolSpec {
                ports: vec!["1-65535".to_owned()],
                ..PortPoolSpec::default()
            };
            PortPool::new("bench", spec).unwrap()
        },
        |mut pool| {
            for (i, c) in people[..10_000].iter().enumerate() {
                let protocol = [PortProtocol::Tcp, PortProtocol::Udp, PortProtocol::TcpUdp][i % 3];
                black_box(pool.allocate(c, PortRequest::auto(protocol)).unwrap());
            }
        },
    );
    report(
        "10,000 port allocations from a 64k-port pool",
        took,
        Duration::from_millis(50),
    );

    // Release every other address then allocate again: the search must skip holes quickly.
    let took = best(
        || {
            let mut pool = address_pool("10.0.0.0/16");
            for c in &people[..20_000] {
                pool.allocate(c, AddressRequest::ANY).unwrap();
            }
            for c in people[..20_000].iter().step_by(2) {
                pool.release(c);
            }
            pool
        },
        |mut pool| {
            for c in &people[20_000..30_000] {
                black_box(pool.allocate(c, AddressRequest::ANY).unwrap());
            }
        },
    );
    report(
        "10,000 allocations into a fragmented /16",
        took,
        Duration::from_millis(50),
    );

    // The status of 100,000 VmNetworks, shuffled, imported into a /8.
    let mut claims: Vec<(Claimant, IpAddr)> = {
        let mut pool = address_pool("10.0.0.0/8");
        for c in &people {
            pool.allocate(c, AddressRequest::ANY).unwrap();
        }
        pool.allocations().map(|(c, ip)| (c.clone(), ip)).collect()
    };
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..claims.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        claims.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let took = best(
        || (address_pool("10.0.0.0/8"), claims.clone()),
        |(mut pool, claims)| {
            let r = pool.rebuild(claims);
            assert!(r.is_clean());
            black_box(pool.counts());
        },
    );
    report(
        "rebuild of 100,000 allocations (shuffled)",
        took,
        Duration::from_millis(500),
    );

    let mut v6 = address_pool("2001:db8::/64");
    for c in &people[..1_000] {
        v6.allocate(c, AddressRequest::ANY).unwrap();
    }
    let t = Instant::now();
    for _ in 0..1_000 {
        black_box(black_box(&v6).counts());
    }
    let per = t.elapsed() / 1_000;
    let n = v6.counts();
    report(
        "counts on a /64 IPv6 pool (per call)",
        per,
        Duration::from_millis(1),
    );
    println!("    /64: total {} used {} free {}", n.total, n.used, n.free);
}
