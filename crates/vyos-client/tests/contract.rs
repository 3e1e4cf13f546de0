//! Contract tests: every client operation and every error class against vyos-sim.
//!
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use vyos_client::nat::{self, NatKind, NatRule, Protocol};
use vyos_client::{ClientConfig, VyosClient, VyosError};
use vyos_sim::{Faults, SimOptions, Version};

const KEY: &str = "contract-key";

async fn sim(version: Version, tls: bool) -> vyos_sim::Sim {
    let mut opts = SimOptions::for_tests();
    opts.version = version;
    opts.tls = tls;
    opts.api_keys = vec![KEY.to_owned()];
    vyos_sim::start(opts).await.unwrap()
}

fn client(sim: &vyos_sim::Sim) -> VyosClient {
    let mut cfg = ClientConfig::new(sim.url(), KEY);
    cfg.ca_bundle_pem = sim.ca_pem();
    cfg.timeout = Duration::from_secs(5);
    cfg.read_retries = 1;
    VyosClient::new(cfg).unwrap()
}

fn dnat(n: u32, port: &str) -> NatRule {
    let mut r = NatRule::new(NatKind::Destination, n);
    r.description = Some(format!("vmnet:test/{n}"));
    r.protocol = Some(Protocol::Tcp);
    r.inbound_interface.name = Some("eth0".into());
    r.destination.port = Some(port.into());
    r.translation.address = Some("10.0.0.5".into());
    r.translation.port = Some("22".into());
    r
}

fn rules(rs: Vec<NatRule>) -> BTreeMap<u32, NatRule> {
    rs.into_iter().map(|r| (r.number, r)).collect()
}

#[tokio::test]
async fn read_write_diff_round_trip_on_both_versions() {
    for version in [Version::V1_4, Version::V1_5] {
        let sim = sim(version, true).await;
        let c = client(&sim);
        assert!(c.nat_rules(NatKind::Destination).await.unwrap().is_empty());
        let want = rules(vec![dnat(100, "2222"), dnat(101, "2223")]);
        let empty: BTreeMap<u32, NatRule> = BTreeMap::new();
        c.configure(&nat::diff(NatKind::Destination, &empty, &want))
            .await
            .unwrap();
        let got = c.nat_rules(NatKind::Destination).await.unwrap();
        assert_eq!(got, want);

        let mut next = want.clone();
        next.get_mut(&100).unwrap().translation.port = Some("2022".into());
        next.remove(&101);
        let ops = nat::diff(NatKind::Destination, &got, &next);
        assert_eq!(ops.len(), 2);
        c.configure(&ops).await.unwrap();
        assert_eq!(c.nat_rules(NatKind::Destination).await.unwrap(), next);

        let whole = c.show_config(&[]).await.unwrap();
        assert!(whole["nat"]["destination"]["rule"]["100"].is_object());
        // A real router's save prints nothing (vyos-save-config.py): data is "".
        assert_eq!(c.save().await.unwrap(), "");
        assert_eq!(sim.saved_config(), sim.running_config());
        let v = c.version().await.unwrap();
        assert_eq!(v.is_1_4(), version == Version::V1_4);
        sim.stop().await;
    }
}

#[tokio::test]
async fn commit_confirm_on_1_5() {
    let sim = sim(Version::V1_5, true).await;
    let c = client(&sim);
    assert!(c.version().await.unwrap().supports_commit_confirm());
    let out = c
        .configure_confirm(&nat::render_rule(&dnat(5, "2000")), 5)
        .await
        .unwrap();
    assert!(out.unwrap_or_default().contains("commit-confirm"));
    let err = c
        .configure_confirm(&nat::render_rule(&dnat(6, "2001")), 5)
        .await
        .unwrap_err();
    assert!(matches!(err, VyosError::ConfirmPending { .. }), "{err:?}");
    c.confirm().await.unwrap();
    sim.stop().await;
}

/// 1.5's commit-confirm texts as the router sends them (the commit's output, `\n`, then
/// config-mgmt's line with its own `\n`; `Another confirm is pending\n`, `No confirm
/// pending\n`) are still told apart by the client.
#[tokio::test]
async fn commit_confirm_texts_classify_with_their_newlines() {
    let sim = sim(Version::V1_5, false).await;
    let c = client(&sim);
    let out = c
        .configure_confirm(&nat::render_rule(&dnat(5, "2000")), 3)
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(
        out,
        "\nInitialized commit-confirm; 3 minutes to confirm before reboot\n"
    );
    let err = c
        .configure_confirm(&nat::render_rule(&dnat(6, "2001")), 3)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VyosError::ConfirmPending { message } if message == "Another confirm is pending"),
        "{err:?}"
    );
    assert!(err.outcome_unknown(), "the commit itself was applied");
    assert!(
        c.nat_rules(NatKind::Destination)
            .await
            .unwrap()
            .contains_key(&6)
    );
    assert_eq!(c.confirm().await.unwrap(), "Reboot timer stopped\n");
    let again = c.confirm().await.unwrap();
    assert_eq!(again, "No confirm pending\n");
    assert!(again.contains("No confirm pending"));
    sim.stop().await;
}

#[tokio::test]
async fn wrong_key_and_key_rotation() {
    let sim = sim(Version::V1_5, true).await;
    sim.set_api_keys(vec!["rotated".into()]);
    let err = client(&sim)
        .nat_rules(NatKind::Destination)
        .await
        .unwrap_err();
    assert_eq!(err.category(), "AuthFailed");
    assert!(!format!("{err:?}").contains(KEY));
    sim.stop().await;
}

#[tokio::test]
async fn tls_with_an_unknown_ca() {
    let sim = sim(Version::V1_4, true).await;
    let mut cfg = ClientConfig::new(sim.url(), KEY);
    cfg.read_retries = 0;
    let err = VyosClient::new(cfg)
        .unwrap()
        .show_config(&[])
        .await
        .unwrap_err();
    assert_eq!(err.category(), "TLSError", "{err:?}");
    sim.stop().await;
}

#[tokio::test]
async fn timeouts_and_resets() {
    let sim = sim(Version::V1_5, false).await;
    let mut cfg = ClientConfig::new(sim.url(), KEY);
    cfg.timeout = Duration::from_millis(300);
    cfg.read_retries = 0;
    let c = VyosClient::new(cfg).unwrap();
    sim.set_faults(Faults {
        timeout_rate: 1.0,
        ..Faults::default()
    });
    let err = c.nat_rules(NatKind::Destination).await.unwrap_err();
    assert!(matches!(err, VyosError::Timeout { .. }), "{err:?}");
    sim.set_faults(Faults {
        reset_rate: 1.0,
        ..Faults::default()
    });
    let err = c.nat_rules(NatKind::Destination).await.unwrap_err();
    assert_eq!(err.category(), "RouterUnreachable");
    assert!(err.is_transient());
    sim.stop().await;
}

#[tokio::test]
async fn validation_and_commit_failures() {
    for version in [Version::V1_4, Version::V1_5] {
        let sim = sim(version, false).await;
        let c = client(&sim);
        // Set-time: a value that fails its validator.
        let mut bad = dnat(100, "2222");
        bad.translation.port = Some("99999".into());
        assert!(nat::validate(&bad).is_err());
        let err = c.configure(&nat::render_rule(&bad)).await.unwrap_err();
        assert!(
            matches!(&err, VyosError::Rejected { message } if message.contains("99999")),
            "{err:?}"
        );
        // Commit-time: ports without a protocol.
        let mut bad = dnat(100, "2222");
        bad.protocol = None;
        let err = c.configure(&nat::render_rule(&bad)).await.unwrap_err();
        assert_eq!(err.category(), "CommitFailed", "{err:?}");
        if version == Version::V1_5 {
            assert_eq!(err.failed_nat_rule(), Some(100));
        }
        // Injected commit failure, then lock contention.
        sim.set_faults(Faults {
            fail_commits: true,
            ..Faults::default()
        });
        let err = c
            .configure(&nat::render_rule(&dnat(7, "2007")))
            .await
            .unwrap_err();
        assert_eq!(err.category(), "CommitFailed");
        assert!(c.nat_rules(NatKind::Destination).await.unwrap().is_empty());
        sim.set_faults(Faults::default());
        sim.stop().await;
    }
}

#[tokio::test]
async fn lock_contention_is_busy_and_nothing_is_applied() {
    let sim = sim(Version::V1_5, false).await;
    let c = client(&sim);
    // A person committing at the CLI holds VyOS's commit lock.
    sim.set_faults(Faults {
        locked_by_cli: true,
        ..Faults::default()
    });
    let err = c
        .configure(&nat::render_rule(&dnat(1, "2001")))
        .await
        .unwrap_err();
    assert_eq!(err.category(), "RouterBusy", "{err:?}");
    assert!(err.is_transient());
    assert!(c.nat_rules(NatKind::Destination).await.unwrap().is_empty());
    // Overlapping writes from this API wait for each other (VyOS's global lock): both
    // commit, one after the other.
    sim.set_faults(Faults::default());
    let (ops2, ops3) = (
        nat::render_rule(&dnat(2, "2002")),
        nat::render_rule(&dnat(3, "2003")),
    );
    let (a, b) = tokio::join!(c.configure(&ops2), c.configure(&ops3));
    a.unwrap();
    b.unwrap();
    assert_eq!(c.nat_rules(NatKind::Destination).await.unwrap().len(), 2);
    assert_eq!(sim.counters().commits, 2);
    sim.stop().await;
}

/// Groups from a seed: names, descriptions and networks drawn from small pools, so that
/// two seeds share some and differ in others.
fn groups_from(seed: u64) -> BTreeMap<String, nat::NetworkGroup> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut out = BTreeMap::new();
    for g in 0..next(4) {
        let mut networks = std::collections::BTreeSet::new();
        for _ in 0..=next(4) {
            networks.insert(format!("198.51.{}.0/24", next(6)));
        }
        let description = (next(3) > 0).then(|| format!("vmnet:test/g{}", next(2)));
        out.insert(
            format!("VMNET-{}", 1000 + g * 7 % 5),
            nat::NetworkGroup {
                description,
                networks,
            },
        );
    }
    out
}

#[tokio::test]
async fn network_groups_round_trip_and_their_diff_gives_the_target() {
    let sim = sim(Version::V1_5, false).await;
    let c = client(&sim);
    assert!(c.network_groups().await.unwrap().is_empty());
    let mut now = BTreeMap::new();
    for seed in 1..40 {
        let want = groups_from(seed);
        c.configure(&nat::diff_network_groups(&now, &want))
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        now = c.network_groups().await.unwrap();
        assert_eq!(now, want, "seed {seed}");
    }

    // A NAT rule that uses a group: the group cannot go while the rule names it.
    let g: BTreeMap<String, nat::NetworkGroup> = [(
        "VMNET-100".to_owned(),
        nat::NetworkGroup {
            description: None,
            networks: ["192.0.2.0/24".to_owned(), "203.0.113.7/32".to_owned()].into(),
        },
    )]
    .into();
    let mut rule = dnat(100, "2222");
    rule.source.group.network_group = Some("VMNET-100".into());
    let mut ops = nat::diff_network_groups(&now, &g);
    ops.extend(nat::diff(
        NatKind::Destination,
        &BTreeMap::<u32, NatRule>::new(),
        &rules(vec![rule.clone()]),
    ));
    c.configure(&ops).await.unwrap();
    assert_eq!(c.nat_rules(NatKind::Destination).await.unwrap()[&100], rule);
    let e = c
        .configure(&nat::diff_network_groups(&g, &BTreeMap::new()))
        .await
        .unwrap_err();
    assert!(
        e.vyos_message()
            .is_some_and(|m| m.contains("Invalid network-group \"VMNET-100\" on nat rule")),
        "{e}"
    );
    assert_eq!(
        c.network_groups().await.unwrap(),
        g,
        "a failed commit changed nothing"
    );

    // Values the router refuses at set time.
    for (bad, why) in [
        ("192.0.2.1/24", "is not a valid IPv4 prefix"),
        ("192.0.2.1-192.0.2.9", "is not a valid IPv4 prefix"),
    ] {
        let op = nat::ConfigOp::set(
            [nat::network_group_path("VMNET-100"), vec!["network".into()]].concat(),
            bad,
        );
        let e = c.configure(&[op]).await.unwrap_err();
        assert!(e.to_string().contains(why), "{bad}: {e}");
    }
}

/// DHCP static mappings and forward-filter rules: what the client writes (its diff ops)
/// reads back the same, on both versions' schemas; a changed MAC is one op; a refused
/// commit reads as each version words it.
#[tokio::test]
async fn dhcp_mappings_and_forward_rules_round_trip_on_both_versions() {
    use vyos_client::{dhcp, firewall};
    use vyos_sim::SimOp;
    for version in [Version::V1_4, Version::V1_5] {
        let schema = match version {
            Version::V1_4 => nat::SchemaVersion::V1_4,
            Version::V1_5 => nat::SchemaVersion::V1_5,
        };
        let sim = sim(version, false).await;
        let c = client(&sim);
        assert!(c.dhcp_server().await.unwrap().mappings.is_empty());
        // The admin's part: an interface and a served subnet.
        let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let subnet = "service dhcp-server shared-network-name LAN subnet 192.0.2.0/24";
        let mut admin = vec![
            SimOp::Set(words("interfaces ethernet eth1 address 192.0.2.1/24")),
            SimOp::Set(words(&format!("{subnet} range r start 192.0.2.100"))),
            SimOp::Set(words(&format!("{subnet} range r stop 192.0.2.199"))),
        ];
        if version == Version::V1_5 {
            admin.push(SimOp::Set(words(&format!("{subnet} subnet-id 1"))));
        }
        sim.third_party_edit(admin).unwrap();

        let server = c.dhcp_server().await.unwrap();
        let key = dhcp::MappingKey::new("LAN", "192.0.2.0/24", "vm1");
        let mut m = dhcp::StaticMapping::new(&key);
        m.ip_address = Some("192.0.2.10".into());
        m.mac = Some("52:54:00:00:00:01".into());
        if version == Version::V1_5 {
            m.description = Some("vmnet:ns/vm1".into());
        }
        let mut want = server.mappings.clone();
        want.insert(key.clone(), m.clone());
        assert_eq!(
            dhcp::validate_mappings(&server, &want, schema),
            Ok(()),
            "{version:?}"
        );
        c.configure(&dhcp::diff_mappings(&server.mappings, &want, schema))
            .await
            .unwrap();
        let now = c.dhcp_server().await.unwrap();
        assert_eq!(now.mappings, want, "{version:?}");
        let mut next = want.clone();
        next.get_mut(&key).unwrap().mac = Some("52:54:00:00:00:02".into());
        let ops = dhcp::diff_mappings(&now.mappings, &next, schema);
        assert_eq!(ops.len(), 1);
        c.configure(&ops).await.unwrap();
        assert_eq!(c.dhcp_server().await.unwrap().mappings, next);
        // A second mapping with the same address: the client says why; so does 1.5.
        let mut dup = m.clone();
        dup.name = "vm2".into();
        let mut bad = next.clone();
        bad.insert(dup.key(), dup);
        let why = "Configured IP address for static mapping \"vm2\" already exists on another static mapping";
        let errs = dhcp::validate_mappings(&now, &bad, schema).unwrap_err();
        assert!(errs.iter().any(|e| e.message == why), "{errs:?}");
        let e = c
            .configure(&dhcp::diff_mappings(&next, &bad, schema))
            .await
            .unwrap_err();
        assert!(matches!(e, VyosError::CommitFailed { .. }), "{e}");
        let text = e.vyos_message().unwrap_or_default().replace('\n', " ");
        assert_eq!(text.contains(why), version == Version::V1_5, "{text}");

        // The forward filter: VyOS's default action until one is set.
        assert_eq!(
            c.forward_filter().await.unwrap().effective_default_action(),
            "accept"
        );
        let mut rule = firewall::ForwardRule::new(20);
        rule.action = Some("accept".into());
        rule.connection_status_nat = Some("destination".into());
        rule.description = Some("vmnet:dnat".into());
        let want: BTreeMap<u32, firewall::ForwardRule> = [(20, rule)].into();
        assert_eq!(firewall::validate_rule_for(&want[&20], schema), Ok(()));
        c.configure(&firewall::diff_rules(&BTreeMap::new(), &want))
            .await
            .unwrap();
        assert_eq!(c.forward_filter().await.unwrap().rules, want);
        let mut no_action = firewall::ForwardRule::new(30);
        no_action.description = Some("x".into());
        let e = c
            .configure(&firewall::render_rule(&no_action))
            .await
            .unwrap_err();
        assert!(matches!(e, VyosError::CommitFailed { .. }), "{e}");
    }
}
