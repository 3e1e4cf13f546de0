//! Which watch events wake a router's writer: only those that change what a pass would
//! read of the object. Status writes that only say how things stand (the writer's own
//! `Programmed`, the PortRule controller's `Programming`, a VmNetwork's `Reconciling`) do
//! not: each such wake used to restart the writer's quiet period, so one change (a VmNetwork
//! edit, its PortRule, then their status writes) waited for two or three debounce periods,
//! and every pass that wrote statuses was followed by a pass with nothing to do.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::json;
use vmnet_api::{PortRule, VmNetwork};
use vmnet_plan::conditions::Reason;
use vmnet_plan::plan::PAUSED;

/// What of a PortRule the writer's pass reads: its spec and generation, its deletion and
/// finalizers, the pause annotation and its owners (a paused VmNetwork holds its rules), its
/// rule number, and whether it says it expired (an expired rule keeps its endpoint).
pub fn portrule_fingerprint(r: &PortRule) -> u64 {
    let m = &r.metadata;
    let status = r.status.as_ref();
    let expired = status
        .and_then(|s| s.common.conditions.as_deref())
        .into_iter()
        .flatten()
        .any(|c| c.status == "True" && c.reason == Reason::Expired.as_str());
    hash(&json!([
        r.spec,
        m.generation,
        m.deletion_timestamp,
        m.finalizers,
        m.annotations.as_ref().and_then(|a| a.get(PAUSED)),
        m.owner_references
            .iter()
            .flatten()
            .map(|o| (&o.kind, &o.name))
            .collect::<Vec<_>>(),
        status.and_then(|s| s.rule_number),
        expired,
    ]))
}

/// What of a VmNetwork the writer's pass reads: its router and MAC (the DHCP step), its
/// deletion, the pause annotation, the address it holds (the tenant check and the
/// mapping), and whether it has a mapping to clear.
pub fn vmnetwork_fingerprint(v: &VmNetwork) -> u64 {
    let m = &v.metadata;
    let status = v.status.as_ref();
    hash(&json!([
        v.spec.router,
        v.spec.mac,
        m.deletion_timestamp,
        m.annotations.as_ref().and_then(|a| a.get(PAUSED)),
        status.and_then(|s| s.address.as_ref()),
        status.is_some_and(|s| s.dhcp.is_some()),
    ]))
}

fn hash(v: &serde_json::Value) -> u64 {
    let mut h = DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}

/// The last fingerprint seen of each object of one kind.
#[derive(Debug, Default)]
pub struct Seen {
    last: HashMap<(String, String), u64>,
    /// Past this many entries, those of objects gone from the cache are dropped.
    limit: usize,
}

impl Seen {
    /// Records `fingerprint` for the object `namespace/name`; whether it differs from the
    /// last one seen (a first sighting differs). When the entries outgrow twice the objects
    /// in the cache (`live` counts them; called only then), they are dropped and the next
    /// sightings count as first ones: a wake-up too many, never one too few.
    pub fn changed(
        &mut self,
        namespace: &str,
        name: &str,
        fingerprint: u64,
        live: impl FnOnce() -> usize,
    ) -> bool {
        let key = (namespace.to_owned(), name.to_owned());
        let changed = self.last.insert(key, fingerprint) != Some(fingerprint);
        if self.last.len() > self.limit.max(1024) {
            let live = live();
            if self.last.len() > 2 * live {
                self.last.clear();
            }
            self.limit = 2 * live;
        }
        changed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use vmnet_api::{PortRuleSpec, PortRuleStatus};

    fn rule() -> PortRule {
        let spec: PortRuleSpec = serde_json::from_value(json!({
            "router": "edge", "protocol": "tcp", "externalAddress": "203.0.113.10",
            "externalPort": 30022, "internalAddress": "10.0.0.5"
        }))
        .unwrap();
        let mut r = PortRule::new("ssh", spec);
        r.metadata.namespace = Some("lab".into());
        r.metadata.generation = Some(1);
        r
    }

    #[test]
    fn status_that_only_says_how_things_stand_does_not_wake_the_writer() {
        let r = rule();
        let fp = portrule_fingerprint(&r);
        let mut said = r.clone();
        said.status = Some(PortRuleStatus {
            common: vmnet_api::CommonStatus {
                observed_generation: Some(1),
                conditions: Some(vmnet_plan::conditions::conditions(
                    None,
                    vmnet_plan::conditions::State::Ready,
                    Reason::Programmed,
                    "rule 100 on router edge",
                    Some(1),
                )),
            },
            applied_hash: Some("abc".into()),
            external: Some("203.0.113.10:30022".into()),
            ..PortRuleStatus::default()
        });
        assert_eq!(portrule_fingerprint(&said), fp);

        // What a pass reads does.
        let mut numbered = said.clone();
        numbered.status.as_mut().unwrap().rule_number = Some(100);
        let mut edited = r.clone();
        edited.spec.external_port = Some(30023);
        let mut paused = r.clone();
        paused.metadata.annotations = Some([(PAUSED.to_owned(), "true".to_owned())].into());
        let mut deleted = r.clone();
        deleted.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        let mut expired = said.clone();
        expired.status.as_mut().unwrap().common.conditions =
            Some(vmnet_plan::conditions::conditions(
                None,
                vmnet_plan::conditions::State::Reconciling,
                Reason::Expired,
                "expired",
                Some(1),
            ));
        for (what, o) in [
            ("rule number", numbered),
            ("spec", edited),
            ("pause", paused),
            ("deletion", deleted),
            ("expiry", expired),
        ] {
            assert_ne!(portrule_fingerprint(&o), fp, "{what}");
        }
    }

    #[test]
    fn seen_reports_first_sightings_and_changes_only() {
        let mut s = Seen::default();
        assert!(s.changed("lab", "a", 1, || 1));
        assert!(!s.changed("lab", "a", 1, || 1));
        assert!(s.changed("lab", "a", 2, || 1));
        assert!(s.changed("lab", "b", 2, || 2));
        // Entries of objects long gone are dropped, and what follows counts as new.
        for i in 0..1100 {
            s.changed("lab", &format!("gone-{i}"), 1, || 2);
        }
        assert!(s.last.len() < 1100, "{}", s.last.len());
        assert!(s.changed("lab", "a", 2, || 2));
    }
}
