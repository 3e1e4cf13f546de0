//! Which watch events wake a router's writer: only those that change what a pass would
//! read of the object. Status writes that only say how things stand (the writer's own
//! `Programmed`, the PortRule controller's `Programming`, a VmNetwork's `Reconciling`) do
//! not: each such wake used to restart the writer's quiet period, so one change (a VmNetwork
//! edit, its PortRule, then their status writes) waited for two or three debounce periods,
//! and every pass that wrote statuses was followed by a pass with nothing to do.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

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

/// When recently edited VmNetworks were seen with a spec their controller has not acted on
/// yet (`metadata.generation` ahead of `status.observedGeneration`): a PortRule that one of
/// them then writes is a change made at the edit, and the writer's quiet period counts from
/// there rather than from the PortRule's arrival one controller hop later.
#[derive(Debug)]
pub struct Causes {
    at: HashMap<(String, String), Instant>,
    /// How long an edit stays a PortRule's cause: one debounce period (an older one would
    /// not shorten the wait anyway).
    within: Duration,
    /// Past this many entries, those older than `within` are dropped.
    limit: usize,
}

impl Causes {
    /// Causes kept for `within` (the debounce period).
    pub fn new(within: Duration) -> Self {
        Self {
            at: HashMap::new(),
            within,
            limit: 256,
        }
    }

    /// Records that the VmNetwork `namespace/name` was seen at `now` with a spec its
    /// controller has yet to act on (a later sighting moves the cause later, never earlier).
    pub fn edited(&mut self, namespace: &str, name: &str, now: Instant) {
        if self.at.len() >= self.limit {
            let within = self.within;
            self.at.retain(|_, t| now.duration_since(*t) <= within);
            // A burst of edits within one period keeps them all: look again when twice
            // as many, so each edit costs O(1) on the whole.
            self.limit = (2 * self.at.len()).max(256);
        }
        self.at.insert((namespace.to_owned(), name.to_owned()), now);
    }

    /// When the change that a PortRule of `namespace` owned by `owners` shows, seen at
    /// `now`, was made: the edit of its VmNetwork within the last period, else `now`.
    pub fn of<'a>(
        &self,
        namespace: &str,
        owners: impl IntoIterator<Item = &'a str>,
        now: Instant,
    ) -> Instant {
        owners
            .into_iter()
            .filter_map(|o| self.at.get(&(namespace.to_owned(), o.to_owned())))
            .filter(|t| now.duration_since(**t) <= self.within)
            .min()
            .copied()
            .unwrap_or(now)
    }
}

/// Whether the VmNetwork's spec is ahead of what its controller has acted on (a create, or
/// an edit not yet reconciled).
pub fn vmnetwork_edited(v: &VmNetwork) -> bool {
    let observed = v.status.as_ref().and_then(|s| s.common.observed_generation);
    v.metadata.generation.is_some() && observed != v.metadata.generation
}

/// The names of the VmNetworks that own `r`.
pub fn vmnetwork_owners(r: &PortRule) -> impl Iterator<Item = &str> {
    r.metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|o| o.kind == "VmNetwork")
        .map(|o| o.name.as_str())
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

    #[test]
    fn a_portrule_counts_from_the_edit_of_its_vmnetwork_within_one_period() {
        let period = Duration::from_millis(300);
        let t0 = Instant::now();
        let mut c = Causes::new(period);
        c.edited("lab", "vm-a", t0);
        let later = t0 + Duration::from_millis(40);
        assert_eq!(c.of("lab", ["vm-a"], later), t0);
        // Another namespace, another owner, no owner: the PortRule's own arrival.
        assert_eq!(c.of("other", ["vm-a"], later), later);
        assert_eq!(c.of("lab", ["vm-b"], later), later);
        assert_eq!(c.of("lab", [], later), later);
        // An edit older than one period is no longer the cause.
        let much_later = t0 + Duration::from_millis(301);
        assert_eq!(c.of("lab", ["vm-a"], much_later), much_later);
        // Old causes are dropped as new ones come.
        for i in 0..300 {
            c.edited("lab", &format!("vm-{i}"), t0);
        }
        for i in 0..300 {
            c.edited("lab", &format!("vm-new-{i}"), much_later);
        }
        c.edited("lab", "vm-new", much_later);
        assert!(c.at.len() <= 301, "{}", c.at.len());
        assert_eq!(c.of("lab", ["vm-new"], much_later), much_later);
        let soon = much_later + Duration::from_millis(10);
        assert_eq!(c.of("lab", ["vm-new"], soon), much_later);

        let spec: vmnet_api::VmNetworkSpec = serde_json::from_value(json!({
            "router": "edge", "ipPool": "pool", "ports": []
        }))
        .unwrap();
        let mut v = VmNetwork::new("vm-a", spec);
        assert!(
            !vmnetwork_edited(&v),
            "no generation: not from the apiserver"
        );
        v.metadata.generation = Some(2);
        assert!(vmnetwork_edited(&v));
        v.status = Some(vmnet_api::VmNetworkStatus::default());
        v.status.as_mut().unwrap().common.observed_generation = Some(2);
        assert!(!vmnetwork_edited(&v), "acted on");

        let mut r = rule();
        assert_eq!(vmnetwork_owners(&r).count(), 0);
        r.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                kind: "VmNetwork".into(),
                name: "vm-a".into(),
                ..Default::default()
            },
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                kind: "Other".into(),
                name: "x".into(),
                ..Default::default()
            },
        ]);
        assert_eq!(vmnetwork_owners(&r).collect::<Vec<_>>(), ["vm-a"]);
    }
}
