//! Contract tests for the router's lifecycle and its config as text, against vyos-sim on
//! 1.4 and 1.5: uptime and reboot, the running config as curly text and `set` lines, and
//! loading a config.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use vyos_client::{ClientConfig, VyosClient};
use vyos_sim::{SimOptions, Version};

const KEY: &str = "lifecycle-key";

async fn sim(version: Version) -> vyos_sim::Sim {
    let mut opts = SimOptions::for_tests();
    opts.version = version;
    opts.api_keys = vec![KEY.to_owned()];
    vyos_sim::start(opts).await.unwrap()
}

fn client(sim: &vyos_sim::Sim) -> VyosClient {
    let mut cfg = ClientConfig::new(sim.url(), KEY);
    cfg.timeout = Duration::from_secs(5);
    cfg.read_retries = 1;
    VyosClient::new(cfg).unwrap()
}

#[tokio::test]
async fn uptime_counts_from_boot_and_restarts_after_a_reboot() {
    for version in [Version::V1_4, Version::V1_5] {
        let sim = sim(version).await;
        let c = client(&sim);
        let first = c.uptime().await.unwrap();
        assert!(first <= Duration::from_secs(1), "{first:?}");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let later = c.uptime().await.unwrap();
        assert!(later >= Duration::from_secs(1), "{later:?}");
        assert!(
            later <= sim.uptime(),
            "whole seconds, never ahead of the sim"
        );
        sim.reboot();
        let after = c.uptime().await.unwrap();
        assert!(
            after < later,
            "{version:?}: {after:?} after a reboot, {later:?} before"
        );
        assert_eq!(sim.counters().reboots, 1);
        sim.stop().await;
    }
}

/// The parser reads back every duration the simulator's copy of VyOS's
/// `seconds_to_human` writes.
#[test]
fn parse_uptime_inverts_seconds_to_human() {
    let mut s: u64 = 0;
    while s < 5 * 31_557_600 {
        for sep in [" ", ""] {
            let text = format!("Uptime: {}\n", vyos_sim::opmode::seconds_to_human(s, sep));
            assert_eq!(
                vyos_client::parse_uptime(&text),
                Some(Duration::from_secs(s)),
                "{text:?}"
            );
        }
        s = s * 3 + 7;
    }
}

mod config_as_text {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use proptest::sample::select;
    use vyos_client::config_text::{self, ConfigTree};
    use vyos_sim::Node;
    use vyos_sim::text::{ShowMode, render_show};

    use super::*;

    /// Values as VyOS holds them: no quotes or newlines (refused at `set`), and none that
    /// starts with `//`, which VyOS's own lexer takes for a comment when it is not quoted.
    fn value() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ./:{};*#@!$%^&()+=,?<>|~\\\\\t-]{0,12}"
            .prop_filter("VyOS reads a leading // as a comment", |v| {
                !v.starts_with("//")
            })
    }

    fn name() -> impl Strategy<Value = String> {
        select(vec![
            "rule",
            "ethernet",
            "eth0",
            "eth10",
            "vif",
            "10",
            "100",
            "20",
            "address",
            "description",
            "name",
            "destination",
            "source",
            "translation",
            "x-y",
            "shared-network-name",
            "subnet",
            "static-mapping",
            "network-group",
            "group",
        ])
        .prop_map(str::to_owned)
    }

    fn node() -> impl Strategy<Value = Node> {
        let leaf = prop_oneof![
            Just(Node::Leaf(Vec::new())),
            proptest::collection::vec(value(), 1..4).prop_map(Node::Leaf),
        ];
        leaf.prop_recursive(4, 40, 4, |inner| {
            proptest::collection::btree_map(name(), inner, 1..4).prop_map(Node::from_iter)
        })
    }

    fn tree() -> impl Strategy<Value = Node> {
        let top = select(vec![
            "firewall",
            "interfaces",
            "nat",
            "policy",
            "protocols",
            "service",
            "system",
            "vpn",
        ])
        .prop_map(str::to_owned);
        proptest::collection::btree_map(top, node(), 1..4)
            .prop_map(|m: BTreeMap<String, Node>| Node::from_iter(m))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The client's parser reads the sim's `showConfig` raw text (cli-shell-api's,
        /// with the session's diff column) into the same `set` lines as the sim's JSON.
        #[test]
        fn raw_text_and_json_give_the_same_set_lines(root in tree(), v15 in any::<bool>()) {
            let version = if v15 { Version::V1_5 } else { Version::V1_4 };
            let raw = render_show(&root, &[], version, ShowMode::Session).unwrap();
            let parsed = config_text::parse(&raw).map_err(|e| TestCaseError::fail(format!("{e}\n{raw}")))?;
            let from_json = ConfigTree::from_json(&root.render()).unwrap();
            prop_assert_eq!(config_text::set_commands(&parsed), config_text::set_commands(&from_json), "{}", raw);
        }
    }

    #[tokio::test]
    async fn running_config_text_reads_back_on_both_versions() {
        for version in [Version::V1_4, Version::V1_5] {
            let sim = sim(version).await;
            let p = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
            let mut desc = p("nat destination rule 100 description");
            desc.push("web server; {primary}".to_owned());
            sim.third_party_edit(vec![
                vyos_sim::SimOp::Set(desc),
                vyos_sim::SimOp::Set(p("nat destination rule 100 translation address 10.0.0.5")),
                vyos_sim::SimOp::Set(p("nat destination rule 20 translation address 10.0.0.6")),
                vyos_sim::SimOp::Set(p("nat destination rule 20 log")),
                vyos_sim::SimOp::Set(p("firewall group network-group LAN network 10.0.0.0/8")),
                vyos_sim::SimOp::Set(p("firewall group network-group LAN network 192.168.0.0/16")),
                vyos_sim::SimOp::Set(p("interfaces ethernet eth1 address 192.0.2.1/24")),
            ])
            .unwrap();
            let c = client(&sim);
            let text = c.running_config_text().await.unwrap();
            assert!(text.starts_with(" firewall {\n"), "{text}");
            let lines = config_text::set_commands(&config_text::parse(&text).unwrap());
            let json = c.show_config(&[]).await.unwrap();
            assert_eq!(
                lines,
                config_text::set_commands(&ConfigTree::from_json(&json).unwrap())
            );
            assert!(
                lines.contains(
                    &"set nat destination rule 100 description 'web server; {primary}'".to_owned()
                ),
                "{lines:?}"
            );
            // VyOS's own `show configuration commands` gives the same lines.
            let shown = c
                .show(&["configuration".to_owned(), "commands".to_owned()])
                .await
                .unwrap();
            assert_eq!(shown.lines().collect::<Vec<_>>(), lines);
            sim.stop().await;
        }
    }
}

mod load {
    use vyos_client::VyosError;
    use vyos_client::config_text;
    use vyos_client::nat::NatKind;

    use super::*;

    fn set(path: &str) -> vyos_sim::SimOp {
        vyos_sim::SimOp::Set(path.split(' ').map(str::to_owned).collect())
    }

    #[tokio::test]
    async fn load_config_file_restores_a_saved_config_on_both_versions() {
        for version in [Version::V1_4, Version::V1_5] {
            let sim = sim(version).await;
            let c = client(&sim);
            sim.third_party_edit(vec![set(
                "nat destination rule 10 translation address 10.0.0.5",
            )])
            .unwrap();
            c.save().await.unwrap();
            sim.third_party_edit(vec![
                vyos_sim::SimOp::Delete(vec!["nat".into()]),
                set("system host-name drifted"),
            ])
            .unwrap();
            assert_eq!(c.load_config_file("/config/config.boot").await.unwrap(), "");
            assert!(
                c.nat_rules(NatKind::Destination)
                    .await
                    .unwrap()
                    .contains_key(&10)
            );
            assert_eq!(sim.running_config(), sim.saved_config());
            let err = c
                .load_config_file("/config/missing.boot")
                .await
                .unwrap_err();
            assert!(
                matches!(&err, VyosError::Rejected { message } if message == "No such file '/config/missing.boot'"),
                "{err:?}"
            );
            sim.stop().await;
        }
    }

    #[tokio::test]
    async fn load_config_string_is_1_5_only() {
        let sim14 = sim(Version::V1_4).await;
        let err = client(&sim14)
            .load_config_string("system {\n    host-name x\n}\n")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, VyosError::Config(m) if m.contains("1.4 loads only files already on the router")),
            "{err:?}"
        );
        assert_eq!(
            sim14.counters().requests.get("/config-file"),
            None,
            "nothing sent"
        );
        sim14.stop().await;

        let sim = sim(Version::V1_5).await;
        let c = client(&sim);
        sim.third_party_edit(vec![
            set("nat destination rule 10 translation address 10.0.0.5"),
            set("system host-name r1"),
        ])
        .unwrap();
        // A backup as text, then a change, then the backup restored from the text.
        let backup = c.running_config_text().await.unwrap();
        sim.third_party_edit(vec![
            set("nat destination rule 11 translation address 10.0.0.6"),
            set("system host-name r2"),
        ])
        .unwrap();
        c.load_config_string(&backup).await.unwrap();
        let now = c.running_config_text().await.unwrap();
        assert_eq!(
            config_text::set_commands(&config_text::parse(&now).unwrap()),
            config_text::set_commands(&config_text::parse(&backup).unwrap())
        );
        let log = sim.configure_log();
        assert_eq!(log.last().unwrap().outcome, "committed");
        // A text the commit refuses changes nothing.
        let err = c
            .load_config_string("nat {\n    destination {\n        rule 5 {\n            log\n        }\n    }\n}\n")
            .await
            .unwrap_err();
        assert_eq!(err.category(), "CommitFailed", "{err:?}");
        assert_eq!(c.running_config_text().await.unwrap(), now);
        sim.stop().await;
    }
}
