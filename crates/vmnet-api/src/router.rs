//! `VyosRouter`: how to reach one VyOS router, and which part of its NAT config is ours.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::CommonStatus;

/// One member of a router as the writer and the probe reach it.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// Its name (the first member is named as the VyosRouter).
    pub name: String,
    /// Its endpoint.
    pub endpoint: String,
    /// Its API key's Secret.
    pub credentials_secret_ref: SecretKeyRef,
    /// Its TLS settings.
    pub tls: Option<RouterTls>,
}

impl VyosRouter {
    /// Every member, the first (`spec.endpoint`) first, then `spec.members` in order.
    pub fn members(&self) -> Vec<Member> {
        let spec = &self.spec;
        let first = Member {
            name: self.metadata.name.clone().unwrap_or_default(),
            endpoint: spec.endpoint.clone(),
            credentials_secret_ref: spec.credentials_secret_ref.clone(),
            tls: spec.tls.clone(),
        };
        std::iter::once(first)
            .chain(spec.members.iter().flatten().map(|m| {
                Member {
                    name: m.name.clone(),
                    endpoint: m.endpoint.clone(),
                    credentials_secret_ref: m
                        .credentials_secret_ref
                        .clone()
                        .unwrap_or_else(|| spec.credentials_secret_ref.clone()),
                    tls: m.tls.clone().or_else(|| spec.tls.clone()),
                }
            }))
            .collect()
    }

    /// This router as seen through `member`: the same spec with the member's endpoint,
    /// credentials and TLS (what a client for that member is made from).
    pub fn as_member(&self, member: &Member) -> VyosRouter {
        let mut r = self.clone();
        r.spec.endpoint = member.endpoint.clone();
        r.spec.credentials_secret_ref = member.credentials_secret_ref.clone();
        r.spec.tls = member.tls.clone();
        r
    }
}

/// The lowest and highest NAT rule numbers VyOS accepts.
pub const VYOS_RULE_MIN: u32 = 1;
/// See [`VYOS_RULE_MIN`].
pub const VYOS_RULE_MAX: u32 = 999_999;

/// How to reach one VyOS router over its HTTP API, and the slice of its destination-NAT rule
/// numbers that vmnet-operator owns there. Rules outside that range, or without the
/// operator's marker in their description, are never touched.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vmnet.dev",
    version = "v1alpha1",
    kind = "VyosRouter",
    plural = "vyosrouters",
    shortname = "vyos",
    shortname = "vr",
    category = "vmnet",
    status = "VyosRouterStatus",
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".spec.endpoint"),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.vyosVersion"),
    printcolumn(
        name = "Reachable",
        type_ = "boolean",
        description = "Whether the router's API answered the last health probe or pass",
        json_path = ".status.reachable"
    ),
    printcolumn(
        name = "Up",
        type_ = "date",
        description = "Time since the router last booted (from its uptime)",
        json_path = ".status.bootTime"
    ),
    printcolumn(name = "Owned", type_ = "integer", json_path = ".status.ownedRules"),
    printcolumn(
        name = "Drifted",
        type_ = "integer",
        json_path = ".status.driftedRules"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        description = "The reason of the condition that is True (exactly one is)",
        json_path = ".status.conditions[?(@.status==\"True\")].reason"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.status==\"True\")].message"
    ),
    printcolumn(
        name = "Progress",
        type_ = "string",
        priority = 1,
        json_path = ".status.syncProgress"
    ),
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.lastSyncTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = kube::core::Rule::new(
    "!self.endpoint.startsWith('http://') || (has(self.tls) && has(self.tls.insecurePlainHttp) && self.tls.insecurePlainHttp)"
).message("spec.endpoint: http:// sends the API key in clear text; use https://, or set spec.tls.insecurePlainHttp: true to accept that explicitly").field_path(".endpoint"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.firewall) || self.firewall.mode != 'per-rule' || !has(self.firewall.ruleRange) || self.firewall.ruleRange.end - self.firewall.ruleRange.start >= self.ruleRange.end - self.ruleRange.start"
).message("firewall.ruleRange: per-rule mode needs as many rule numbers as spec.ruleRange (one accept rule per NAT rule)").field_path(".firewall.ruleRange"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.hairpin) || self.hairpin.ruleRange.end < self.ruleRange.start || self.hairpin.ruleRange.start > self.ruleRange.end"
).message("hairpin.ruleRange: must not overlap spec.ruleRange (both name nat destination rules)").field_path(".hairpin.ruleRange"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.hairpin) || self.hairpin.ruleRange.end - self.hairpin.ruleRange.start >= self.ruleRange.end - self.ruleRange.start"
).message("hairpin.ruleRange: needs as many rule numbers as spec.ruleRange (the hairpin rules of NAT rule n are numbered hairpin.ruleRange.start + (n - ruleRange.start))").field_path(".hairpin.ruleRange"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(oldSelf.hairpin) || has(self.hairpin)"
).message("hairpin: cannot be removed once set, because the operator finds its hairpin rules through hairpin.ruleRange; set hairpin.default: false and drop hairpin from the PortRules and VmNetwork ports (their hairpin rules leave the router), and keep this block").field_path(".hairpin"))]
#[serde(rename_all = "camelCase")]
pub struct VyosRouterSpec {
    /// The router's HTTP API base URL, e.g. `https://192.0.2.1` or `https://vyos.example.net:8443`.
    /// The API is enabled on the router with `set service https api keys id <id> key <key>`
    /// (VyOS 1.5 also needs `set service https api rest`).
    #[schemars(
        length(min = 8, max = 2048),
        regex(pattern = r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    )]
    pub endpoint: String,

    /// The Secret that holds the API key. Key rotation is picked up without a restart.
    pub credentials_secret_ref: SecretKeyRef,

    /// How the router's certificate is verified. TLS is verified against the system roots
    /// unless a CA bundle is given; skipping verification must be asked for explicitly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouterTls>,

    /// The NAT rule numbers this operator owns on the router (`nat destination rule N`).
    /// It may grow, never shrink or move: rules programmed outside a new range would be
    /// orphaned.
    #[x_kube(validation = kube::core::Rule::new(
        "self.start <= oldSelf.start && self.end >= oldSelf.end"
    ).message("may only grow: shrinking or moving it would orphan rules already programmed on the router; create a new VyosRouter to move to other rule numbers"))]
    pub rule_range: RuleRange,

    /// Inbound interface for rules that name none themselves, e.g. `eth0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 15), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._*@-]*$"))]
    pub default_inbound_interface: Option<String>,

    /// How often the router's NAT rules are read back and hand edits reverted, as a
    /// duration such as `30s`, `5m` or `1h`. Default: `5m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = r"^([0-9]+(s|m|h))+$"))]
    #[x_kube(validation = kube::core::Rule::new("duration(self) >= duration('10s') && duration(self) <= duration('24h')").message("must be between 10s and 24h"))]
    pub drift_check_interval: Option<String>,

    /// How often the router is probed (reachable, latency, version, uptime), also while
    /// nothing changes, as a duration such as `30s` or `2m`. A router whose uptime went
    /// backwards rebooted and lost its unsaved changes: the operator re-converges it at
    /// once and emits a `RouterRebooted` Warning Event. Default: `30s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = r"^([0-9]+(s|m|h))+$"))]
    #[x_kube(validation = kube::core::Rule::new("duration(self) >= duration('5s') && duration(self) <= duration('1h')").message("must be between 5s and 1h"))]
    pub health_check_interval: Option<String>,

    /// Commit with commit-confirm: the router reverts a change that is not confirmed within
    /// this many minutes (VyOS 1.5 from mid-2025; the revert reboots the router to its saved
    /// config). Off unless set. VyOS 1.4 has no commit-confirm: there changes are committed
    /// without it, and the router's Ready condition says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60))]
    pub commit_confirm_minutes: Option<u32>,

    /// The router's `service https request-body-size-limit`, in MiB (VyOS: 1-256, default
    /// 1). Requests to the router are cut to stay under it; set it when the router's limit
    /// was raised, so large changes take fewer requests. Default: 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub request_body_size_limit: Option<u32>,

    /// Save the running config to boot (`/config-file save`) after each convergence.
    /// Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_config: Option<bool>,

    /// What to do with owned rules (in the range and carrying the marker) that nothing
    /// declares: `sync` deletes them, `upsert-only` never deletes. Default: `sync`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orphan_policy: Option<OrphanPolicy>,

    /// Periodic backups of the router's whole config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,

    /// Accept rules in the router's IPv4 forward filter for the forwarded traffic (VyOS
    /// 1.4+ firewalls often drop forwarded traffic by default). Off unless set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<FirewallSpec>,

    /// NAT reflection (hairpin): clients on the inside network that connect to a rule's
    /// external address and port reach its VM. Off unless set; which rules get it is their
    /// own `hairpin` (or `hairpin.default` here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hairpin: Option<HairpinSpec>,

    /// More routers that get the same owned rules: the other halves of an HA (VRRP) pair.
    /// The router at `endpoint` is the first member (named as the VyosRouter); these
    /// follow in list order. Members are written one after the other, the next only once
    /// the previous converged and still answers, so two members never commit at once. A
    /// member that is down does not hold up the others and is caught up when it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 7))]
    #[x_kube(validation = kube::core::Rule::new("self.all(m, self.exists_one(o, o.name == m.name))").message("member names must be unique"))]
    #[x_kube(validation = kube::core::Rule::new("self.all(m, self.exists_one(o, o.endpoint == m.endpoint))").message("member endpoints must be unique"))]
    pub members: Option<Vec<RouterMember>>,
}

/// Forward-filter accept rules the operator owns (`firewall ipv4 forward filter rule N`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = kube::core::Rule::new("self.mode == 'off' || has(self.ruleRange)").message("ruleRange: the forward-filter rule numbers the operator owns are required unless mode is off"))]
#[serde(rename_all = "camelCase")]
pub struct FirewallSpec {
    /// `per-rule`: one accept rule per programmed PortRule, for exactly its protocol,
    /// internal address and port and its source ranges (the firewall carries the NAT
    /// rule's source restriction); `nat-accept`: one rule accepting every
    /// destination-NATed connection; `off`: none (owned rules are removed).
    pub mode: FirewallMode,
    /// The forward-filter rule numbers the operator owns. With `per-rule` the rule of
    /// NAT rule `n` is `start + (n - spec.ruleRange.start)`, so it must hold as many
    /// numbers as `spec.ruleRange`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_range: Option<RuleRange>,
}

/// NAT reflection (hairpin): for each rule that has it, a second destination rule whose
/// inbound interface is the inside one, and a source rule that masquerades the inside
/// network towards the VM, so the VM's answers go back through the router.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HairpinSpec {
    /// The interface the inside clients (and the VMs) are on, e.g. `eth1`.
    #[schemars(
        length(min = 1, max = 15),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    )]
    pub inside_interface: String,
    /// The inside network whose clients are reflected, e.g. `10.20.0.0/16`: their
    /// connections to the VM are masqueraded to the router's inside address.
    #[schemars(length(min = 9, max = 18))]
    #[x_kube(validation = kube::core::Rule::new(crate::cel::is_ipv4_network("self")).message("must be an IPv4 CIDR written with its network address, such as 10.20.0.0/16"))]
    pub inside_network: String,
    /// The rule numbers of the hairpin rules, used in both `nat destination` and
    /// `nat source`: NAT rule `n` gets hairpin rules `start + (n - spec.ruleRange.start)`.
    /// Its start is fixed once set; its end may grow.
    #[x_kube(validation = kube::core::Rule::new(
        "self.start == oldSelf.start && self.end >= oldSelf.end"
    ).message("start is fixed and end may only grow: the hairpin rules already on the router are numbered from start"))]
    pub rule_range: RuleRange,
    /// Hairpin for every rule that does not say (`hairpin` unset on the PortRule or the
    /// VmNetwork port) and has an external address whose sources, if restricted, include
    /// `insideNetwork`. Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

/// Which forward-filter rules the operator writes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum FirewallMode {
    /// None; owned rules are removed.
    #[serde(rename = "off")]
    Off,
    /// One rule accepting destination-NATed connections.
    #[serde(rename = "nat-accept")]
    NatAccept,
    /// One rule per programmed PortRule.
    #[serde(rename = "per-rule")]
    PerRule,
}

/// One more member of a router (an HA pair's second router).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = kube::core::Rule::new(
    "!self.endpoint.startsWith('http://') || (has(self.tls) && has(self.tls.insecurePlainHttp) && self.tls.insecurePlainHttp)"
).message("endpoint: http:// sends the API key in clear text; use https://, or set tls.insecurePlainHttp: true to accept that explicitly").field_path(".endpoint"))]
#[serde(rename_all = "camelCase")]
pub struct RouterMember {
    /// The member's name, as status and metrics show it, e.g. `edge-1b`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Its HTTP API base URL, as `spec.endpoint`.
    #[schemars(
        length(min = 8, max = 2048),
        regex(pattern = r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    )]
    pub endpoint: String,
    /// The Secret with its API key (default: `spec.credentialsSecretRef`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretKeyRef>,
    /// How its certificate is verified (default: `spec.tls`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouterTls>,
}

/// A key in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// The Secret's namespace (VyosRouter is cluster-scoped, so it must be named).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: String,
    /// The key in the Secret's data. Default: `api-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: Option<String>,
}

/// TLS settings for the router's API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = kube::core::Rule::new(
    "!(has(self.caBundle) && has(self.insecureSkipVerify) && self.insecureSkipVerify)"
).message("caBundle and insecureSkipVerify: true contradict each other; keep one"))]
#[serde(rename_all = "camelCase")]
pub struct RouterTls {
    /// PEM-encoded CA certificates that sign the router's certificate (VyOS serves a
    /// self-signed one unless configured otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    #[x_kube(validation = kube::core::Rule::new("self.contains('-----BEGIN CERTIFICATE-----')").message("must hold PEM certificates (-----BEGIN CERTIFICATE-----)"))]
    pub ca_bundle: Option<String>,
    /// Do not verify the router's certificate. Anyone on the path can then read the API
    /// key. The operator reports this on the router's status and in its log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// Allow an `http://` endpoint (no TLS at all). For test peers such as vyos-sim only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure_plain_http: Option<bool>,
}

/// A range of VyOS NAT rule numbers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[x_kube(validation = kube::core::Rule::new("self.start <= self.end").message("start must not be after end"))]
pub struct RuleRange {
    /// First rule number (1–999999).
    #[schemars(range(min = 1, max = 999999))]
    pub start: u32,
    /// Last rule number (1–999999), at least `start`.
    #[schemars(range(min = 1, max = 999999))]
    pub end: u32,
}

impl RuleRange {
    /// How many rule numbers the range holds.
    pub fn len(&self) -> u32 {
        self.end.saturating_sub(self.start).saturating_add(1)
    }

    /// Never true for a valid range; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }

    /// Whether `n` is in the range.
    pub fn contains(&self, n: u32) -> bool {
        (self.start..=self.end).contains(&n)
    }
}

/// What happens to owned rules that nothing declares.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum OrphanPolicy {
    /// Delete them.
    #[default]
    #[serde(rename = "sync")]
    Sync,
    /// Never delete anything on the router.
    #[serde(rename = "upsert-only")]
    UpsertOnly,
}

/// Backups of the router's whole running config, each stored in a Secret in the operator's
/// namespace (the config holds secrets: user hashes, keys). A config identical to one
/// already stored is not stored again; that backup's last-seen time moves instead.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = kube::core::Rule::new("has(self.schedule) || (has(self.beforeChanges) && self.beforeChanges)").message("set schedule, or beforeChanges: true, or both: otherwise no backup is ever taken"))]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// When to take a backup: a cron schedule of five numeric fields (minute, hour,
    /// day of month, month, day of week; `*`, lists, ranges and steps), in UTC,
    /// e.g. `0 3 * * *` for 03:00 every day.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 9, max = 200),
        regex(
            pattern = r"^(\*|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[1-9][0-9]?)?(,(\*|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[1-9][0-9]?)?)*\s+(\*|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[1-9][0-9]?)?(,(\*|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[1-9][0-9]?)?)*\s+(\*|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]?)?(,(\*|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]?)?)*\s+(\*|(0?[1-9]|1[0-2])(-(0?[1-9]|1[0-2]))?)(/[1-9][0-9]?)?(,(\*|(0?[1-9]|1[0-2])(-(0?[1-9]|1[0-2]))?)(/[1-9][0-9]?)?)*\s+(\*|[0-7](-[0-7])?)(/[1-9][0-9]?)?(,(\*|[0-7](-[0-7])?)(/[1-9][0-9]?)?)*$"
        )
    )]
    pub schedule: Option<String>,
    /// How many backups to keep, and for how long. The newest is never pruned.
    pub retention: BackupRetention,
    /// Take a backup before the first request of any pass that writes to the router, at
    /// most once per `minInterval`. Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_changes: Option<bool>,
    /// The least time between two `beforeChanges` backups, as a duration such as `10m`.
    /// Default: `1h`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = r"^([0-9]+(s|m|h))+$"))]
    #[x_kube(validation = kube::core::Rule::new("duration(self) >= duration('10s') && duration(self) <= duration('720h')").message("must be between 10s and 720h"))]
    pub min_interval: Option<String>,
}

/// Which backups are kept: at most `count`, none older than `maxAge` (by when it was
/// last seen on the router); at least one of the two. The newest is always kept.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = kube::core::Rule::new("has(self.count) || has(self.maxAge)").message("set count, maxAge or both"))]
#[serde(rename_all = "camelCase")]
pub struct BackupRetention {
    /// Keep at most this many backups of the router (1-1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub count: Option<u32>,
    /// Prune backups last seen longer ago than this, as a duration such as `720h`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = r"^([0-9]+(s|m|h))+$"))]
    #[x_kube(validation = kube::core::Rule::new("duration(self) >= duration('1m')").message("must be at least 1m"))]
    pub max_age: Option<String>,
}

/// The backup a router has most recently stored (or found already stored).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    /// When the config was read from the router.
    pub time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// The Secret that holds it (in the operator's namespace).
    pub name: String,
    /// SHA-256 of the config text, hex.
    pub checksum: String,
    /// Size of the config text, in bytes.
    pub size: i64,
}

/// Backups of one router, as the operator last saw them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// The newest backup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<BackupRecord>,
    /// Backups of the router kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// The last backup that failed, and why (cleared by the next success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<BackupFailure>,
    /// When the next scheduled backup is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_scheduled: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// A backup that failed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupFailure {
    /// When.
    pub time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// Why, and what to do.
    pub message: String,
}

/// What the operator last saw of the router.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VyosRouterStatus {
    /// Conditions and the generation they describe.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Whether the router's API answered the last health probe or sync pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reachable: Option<bool>,
    /// When the router last booted, from the uptime it reported (written only when it
    /// moves, so a probe that finds the same boot writes nothing). A later boot than the
    /// one recorded means the router rebooted and lost what it had not saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// The VyOS version the router reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vyos_version: Option<String>,
    /// When a pass last brought the router's rules in line with what the cluster declares
    /// (a pass that finds them in place already leaves this as it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Rules on the router in the owned range that carry the operator's marker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owned_rules: Option<i64>,
    /// Rules the cluster declares for this router.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_rules: Option<i64>,
    /// Owned rules found changed by hand at the last drift check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drifted_rules: Option<i64>,
    /// Progress of a sync that spans several requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_progress: Option<String>,
    /// Set/delete ops the next pass would send (while paused: what waits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_ops: Option<i64>,
    /// The value of the `vmnet.dev/reconcile-requested-at` annotation that the last pass
    /// answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// The last change made to the router.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_change: Option<LastChange>,
    /// Config backups (`spec.backup`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupStatus>,
    /// The forward-filter rules (`spec.firewall`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<FirewallStatus>,
    /// Each member of an HA router (`spec.members`), by name; the first member is named as
    /// the VyosRouter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<std::collections::BTreeMap<String, MemberStatus>>,
}

/// The forward-filter rules as the last pass left them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FirewallStatus {
    /// Owned forward-filter rules on the router.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owned_rules: Option<i64>,
    /// Why nothing is written, or what went wrong (e.g. the forward filter accepts by
    /// default, so no accept rule is needed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What the operator last saw of one member.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Its endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Whether it answered its last probe or pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reachable: Option<bool>,
    /// Whether it holds what the cluster declares (as of the last pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synced: Option<bool>,
    /// Owned rules on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owned_rules: Option<i64>,
    /// Why it lags, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Its VyOS version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vyos_version: Option<String>,
    /// When it last booted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// One change made to a router: what the audit log line says, on the object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastChange {
    /// When it finished.
    pub time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// Set/delete ops sent.
    pub ops: i64,
    /// Configure requests sent.
    pub requests: i64,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// Rules added, changed, removed or orphaned.
    pub rules: i64,
    /// `Succeeded`, `PartiallyFailed` (some rules refused by the router) or `Failed`.
    pub outcome: String,
}
