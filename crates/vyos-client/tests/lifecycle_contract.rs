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
