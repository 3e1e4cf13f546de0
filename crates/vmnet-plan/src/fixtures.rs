//! What the unit tests of this crate share.
#![allow(clippy::unwrap_used)]

use vmnet_api::{RuleRange, SecretKeyRef, VyosRouterSpec};

/// A router owning rules 100–199 with `eth0` as its default inbound interface.
pub fn router() -> VyosRouterSpec {
    VyosRouterSpec {
        endpoint: "https://192.0.2.1".into(),
        credentials_secret_ref: SecretKeyRef {
            name: "k".into(),
            namespace: "ns".into(),
            key: None,
        },
        tls: None,
        rule_range: RuleRange {
            start: 100,
            end: 199,
        },
        default_inbound_interface: Some("eth0".into()),
        drift_check_interval: None,
        health_check_interval: None,
        commit_confirm_minutes: None,
        request_body_size_limit: None,
        save_config: None,
        orphan_policy: None,
        backup: None,
        firewall: None,
        hairpin: None,
        members: None,
    }
}
