//! Prometheus metrics (prefix `vmnet_`). Labels are fixed words and object names, never
//! Debug strings or error texts.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindResult {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouterResult {
    router: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouterLabel {
    router: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    kind: String,
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindState {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouterState {
    router: String,
    state: String,
}

/// Every metric the operator exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindResult, Counter>,
    commits: Family<RouterResult, Counter>,
    ops: Family<RouterLabel, Counter>,
    drift: Family<RouterLabel, Counter>,
    passes: Family<RouterResult, Counter>,
    pass_seconds: Family<RouterLabel, Histogram>,
    rules: Family<RouterState, Gauge>,
    leader: Gauge,
    pool_used: Family<PoolLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pool_size: Family<PoolLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    objects: Family<KindState, Gauge>,
    status_writes_failed: Family<KindLabel, Counter>,
    router_up: Family<RouterLabel, Gauge>,
    probe_seconds: Family<RouterLabel, Histogram>,
    last_probe_success: Family<RouterLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    reboots: Family<RouterLabel, Counter>,
    requests: Family<RouterEndpoint, Histogram>,
    backups: Family<RouterResult, Counter>,
    member_up: Family<RouterMember, Gauge>,
    backup_success: Family<RouterLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouterMember {
    router: String,
    member: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouterEndpoint {
    router: String,
    endpoint: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vmnet");
        let reconciles = Family::<KindResult, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by kind and result (ok, error)",
            reconciles.clone(),
        );
        let commits = Family::<RouterResult, Counter>::default();
        registry.register(
            "router_commits",
            "Configure requests (one commit each) by router and result",
            commits.clone(),
        );
        let ops = Family::<RouterLabel, Counter>::default();
        registry.register(
            "router_ops",
            "Set/delete operations sent to a router",
            ops.clone(),
        );
        let drift = Family::<RouterLabel, Counter>::default();
        registry.register(
            "drift_repaired",
            "Owned rules changed or deleted on the router by hand, and restored",
            drift.clone(),
        );
        let passes = Family::<RouterResult, Counter>::default();
        registry.register(
            "router_syncs",
            "Sync passes by router and result",
            passes.clone(),
        );
        let pass_seconds = Family::<RouterLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 14))
        });
        registry.register(
            "router_sync_duration_seconds",
            "Duration of a sync pass",
            pass_seconds.clone(),
        );
        let rules = Family::<RouterState, Gauge>::default();
        registry.register(
            "router_rules",
            "Rules per router: owned (on the router), declared, refused",
            rules.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "Whether this replica holds the leader Lease (1) or stands by (0)",
            leader.clone(),
        );
        let pool_used = Family::<PoolLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "pool_used",
            "Addresses (IpPool) or port numbers (PortPool) in use, by pool",
            pool_used.clone(),
        );
        let pool_size = Family::<PoolLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "pool_size",
            "Addresses (IpPool) or port numbers (PortPool) a pool can hand out",
            pool_size.clone(),
        );
        let objects = Family::<KindState, Gauge>::default();
        registry.register(
            "objects",
            "Objects by kind and the condition that is True (Ready, Reconciling, Stalled, or None before a first status)",
            objects.clone(),
        );
        let status_writes_failed = Family::<KindLabel, Counter>::default();
        registry.register(
            "status_writes_failed",
            "Status writes the API server refused or failed, by kind (written again on the next pass)",
            status_writes_failed.clone(),
        );
        let router_up = Family::<RouterLabel, Gauge>::default();
        registry.register(
            "router_up",
            "Whether the router's API answered its last health probe or sync pass (1) or could not be reached (0)",
            router_up.clone(),
        );
        let probe_seconds = Family::<RouterLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "router_probe_duration_seconds",
            "Duration of a router's health probe (one uptime read), answered or not",
            probe_seconds.clone(),
        );
        let last_probe_success =
            Family::<RouterLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "router_last_probe_success_timestamp_seconds",
            "When the router last answered its health probe (Unix seconds)",
            last_probe_success.clone(),
        );
        let reboots = Family::<RouterLabel, Counter>::default();
        registry.register(
            "router_reboots",
            "Reboots seen by the health probe (the router's boot time moved forward)",
            reboots.clone(),
        );
        let requests = Family::<RouterEndpoint, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "router_request_duration_seconds",
            "Duration of each HTTP request to a router's API, by endpoint (configure, retrieve, show, config-file, info) and result (answered, unanswered)",
            requests.clone(),
        );
        let backups = Family::<RouterResult, Counter>::default();
        registry.register(
            "backups",
            "Config backups by router and result: stored (a new config), unchanged (the same config seen again), error",
            backups.clone(),
        );
        let backup_success =
            Family::<RouterLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "backup_last_success_timestamp_seconds",
            "When a backup of the router last succeeded (Unix seconds)",
            backup_success.clone(),
        );
        let member_up = Family::<RouterMember, Gauge>::default();
        registry.register(
            "router_member_up",
            "Whether each member of an HA router (spec.members; the first is named as the router) answered its last probe or pass",
            member_up.clone(),
        );
        Self {
            member_up,
            backups,
            backup_success,
            requests,
            probe_seconds,
            last_probe_success,
            reboots,
            router_up,
            status_writes_failed,
            pool_used,
            pool_size,
            objects,
            registry,
            reconciles,
            commits,
            ops,
            drift,
            passes,
            pass_seconds,
            rules,
            leader,
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// A reconcile of `kind` ended.
    pub fn reconciled(&self, kind: &str, ok: bool) {
        self.reconciles
            .get_or_create(&KindResult {
                kind: kind.to_owned(),
                result: result(ok),
            })
            .inc();
    }

    /// A configure request to `router` with `ops` ops ended.
    pub fn commit(&self, router: &str, ok: bool, ops: u64) {
        self.commits
            .get_or_create(&RouterResult {
                router: router.to_owned(),
                result: result(ok),
            })
            .inc();
        self.ops
            .get_or_create(&RouterLabel {
                router: router.to_owned(),
            })
            .inc_by(ops);
    }

    /// A writer for `router` started: its counters exist from now on at 0, so that rates
    /// and alerts (`increase(...[5m]) > 0`) see the first repair or failure.
    pub fn router_started(&self, router: &str) {
        let r = RouterLabel {
            router: router.to_owned(),
        };
        drop(self.drift.get_or_create(&r));
        drop(self.reboots.get_or_create(&r));
        for result in ["stored", "unchanged", "error"] {
            drop(self.backups.get_or_create(&RouterResult {
                router: router.to_owned(),
                result: result.to_owned(),
            }));
        }
        drop(self.ops.get_or_create(&r));
        for ok in [true, false] {
            let rr = RouterResult {
                router: router.to_owned(),
                result: result(ok),
            };
            drop(self.commits.get_or_create(&rr));
            drop(self.passes.get_or_create(&rr));
        }
    }

    /// Drift on `router` was repaired.
    pub fn drift_repaired(&self, router: &str) {
        self.drift
            .get_or_create(&RouterLabel {
                router: router.to_owned(),
            })
            .inc();
    }

    /// Whether `router`'s API answered at its last pass.
    pub fn router_up(&self, router: &str, up: bool) {
        self.router_up
            .get_or_create(&RouterLabel {
                router: router.to_owned(),
            })
            .set(i64::from(up));
    }

    /// A health probe of `router` ended after `took`; `up`: the API answered.
    pub fn probe(&self, router: &str, took: Duration, up: bool) {
        let r = RouterLabel {
            router: router.to_owned(),
        };
        self.router_up(router, up);
        self.probe_seconds
            .get_or_create(&r)
            .observe(took.as_secs_f64());
        if up {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.last_probe_success.get_or_create(&r).set(now);
        }
    }

    /// A callback for the VyOS client of `router` that times each of its requests.
    pub fn request_observer(self: &std::sync::Arc<Self>, router: &str) -> vyos_client::Observer {
        let metrics = self.clone();
        let router = router.to_owned();
        vyos_client::Observer(std::sync::Arc::new(move |endpoint, took, answered| {
            metrics
                .requests
                .get_or_create(&RouterEndpoint {
                    router: router.clone(),
                    endpoint: endpoint.to_owned(),
                    result: if answered { "answered" } else { "unanswered" }.to_owned(),
                })
                .observe(took.as_secs_f64());
        }))
    }

    /// A backup of `router` ended: `stored`, `unchanged` or `error`.
    pub fn backup(&self, router: &str, result: &str) {
        self.backups
            .get_or_create(&RouterResult {
                router: router.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        if result != "error" {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.backup_success
                .get_or_create(&RouterLabel {
                    router: router.to_owned(),
                })
                .set(now);
        }
    }

    /// Whether `member` of `router` answered its last probe or pass.
    pub fn member_up(&self, router: &str, member: &str, up: bool) {
        self.member_up
            .get_or_create(&RouterMember {
                router: router.to_owned(),
                member: member.to_owned(),
            })
            .set(i64::from(up));
    }

    /// The health probe saw `router` reboot.
    pub fn router_rebooted(&self, router: &str) {
        self.reboots
            .get_or_create(&RouterLabel {
                router: router.to_owned(),
            })
            .inc();
    }

    /// A status write of a `kind` object failed.
    pub fn status_write_failed(&self, kind: &str) {
        self.status_writes_failed
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// A sync pass of `router` ended.
    pub fn observe_pass(&self, router: &str, took: Duration, ok: bool) {
        self.passes
            .get_or_create(&RouterResult {
                router: router.to_owned(),
                result: result(ok),
            })
            .inc();
        self.pass_seconds
            .get_or_create(&RouterLabel {
                router: router.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Rule counts of `router`.
    pub fn router_rules(&self, router: &str, owned: i64, declared: i64, refused: i64) {
        for (state, v) in [
            ("owned", owned),
            ("declared", declared),
            ("refused", refused),
        ] {
            self.rules
                .get_or_create(&RouterState {
                    router: router.to_owned(),
                    state: state.to_owned(),
                })
                .set(v);
        }
    }

    /// The counts of pool `pool` of `kind` (IpPool, PortPool).
    pub fn pool(&self, kind: &str, pool: &str, used: f64, size: f64) {
        let l = PoolLabel {
            kind: kind.to_owned(),
            pool: pool.to_owned(),
        };
        self.pool_used.get_or_create(&l).set(used);
        self.pool_size.get_or_create(&l).set(size);
    }

    /// A pool that is gone.
    pub fn forget_pool(&self, kind: &str, pool: &str) {
        let l = PoolLabel {
            kind: kind.to_owned(),
            pool: pool.to_owned(),
        };
        self.pool_used.remove(&l);
        self.pool_size.remove(&l);
    }

    /// How many objects of `kind` are in each state.
    pub fn objects(&self, kind: &str, counts: [(&str, i64); 4]) {
        for (state, n) in counts {
            self.objects
                .get_or_create(&KindState {
                    kind: kind.to_owned(),
                    state: state.to_owned(),
                })
                .set(n);
        }
    }

    /// Whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }
}

fn result(ok: bool) -> String {
    if ok { "ok" } else { "error" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_carry_the_prefix_and_labels() {
        let m = Metrics::new();
        m.commit("edge-1", true, 12);
        m.drift_repaired("edge-1");
        m.reconciled("PortRule", false);
        let text = m.encode();
        assert!(
            text.contains("vmnet_router_commits_total{router=\"edge-1\",result=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vmnet_router_ops_total{router=\"edge-1\"} 12"),
            "{text}"
        );
        assert!(
            text.contains("vmnet_drift_repaired_total{router=\"edge-1\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vmnet_reconciles_total{kind=\"PortRule\",result=\"error\"} 1"),
            "{text}"
        );
    }
}
