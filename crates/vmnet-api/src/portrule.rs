//! `PortRule`: one destination-NAT rule on a router.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cel;
use crate::common::{CommonStatus, RuleProtocol};

/// One destination-NAT (port-forward) rule on a router. VmNetworks create and own one per
/// port; standalone PortRules are allowed for advanced port management. The operator picks
/// the VyOS rule number from the router's owned range and reports it in status.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vmnet.dev",
    version = "v1alpha1",
    kind = "PortRule",
    plural = "portrules",
    shortname = "pr",
    category = "vmnet",
    namespaced,
    status = "PortRuleStatus",
    printcolumn(name = "Router", type_ = "string", json_path = ".spec.router"),
    printcolumn(name = "Protocol", type_ = "string", json_path = ".spec.protocol"),
    printcolumn(name = "External", type_ = "string", json_path = ".status.external"),
    printcolumn(name = "Internal", type_ = "string", json_path = ".status.internal"),
    printcolumn(name = "Rule", type_ = "integer", json_path = ".status.ruleNumber"),
    printcolumn(
        name = "Expires",
        // Not `date`: kubectl shows a date column as the time since, and `<invalid>` for
        // any time still to come, which an expiry nearly always is.
        type_ = "string",
        description = "When the forward closes by itself (spec.expiresAt)",
        json_path = ".spec.expiresAt"
    ),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
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
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = kube::core::Rule::new("size(self.metadata.name) <= 63").message("metadata.name: at most 63 characters, so that the rule's marker fits VyOS's 255-character description")
)]
#[x_kube(validation = kube::core::Rule::new("self.protocol != 'all' || (!has(self.externalPort) && !has(self.externalPortEnd) && !has(self.internalPort))").message("protocol all has no ports: drop externalPort, externalPortEnd and internalPort, or choose tcp, udp or tcp_udp").field_path(".protocol"))]
#[x_kube(validation = kube::core::Rule::new("self.protocol == 'all' || has(self.externalPort)").message("externalPort is required for tcp, udp and tcp_udp rules").field_path(".externalPort"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.externalPortEnd) || (has(self.externalPort) && self.externalPortEnd >= self.externalPort)").message("externalPortEnd must not be below externalPort").field_path(".externalPortEnd"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.externalPortEnd) || !has(self.internalPort) || self.internalPort + (self.externalPortEnd - self.externalPort) <= 65535").message("internalPort plus the size of the external range passes 65535").field_path(".internalPort"))]
#[x_kube(validation = kube::core::Rule::new("has(self.externalAddress) || has(self.inboundInterface)").message("set externalAddress, inboundInterface or both, so the rule matches only traffic that arrives from outside").field_path(".externalAddress"))]
#[serde(rename_all = "camelCase")]
pub struct PortRuleSpec {
    /// The VyosRouter the rule is programmed on. Immutable.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    #[x_kube(validation = cel::immutable("the rule is programmed on that router; delete and re-create the PortRule to move it"))]
    pub router: String,

    /// `tcp`, `udp`, `tcp_udp`, or `all` (a whole-address forward, without ports).
    pub protocol: RuleProtocol,

    /// The external IPv4 address the traffic is sent to (the rule's destination address).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 15))]
    #[x_kube(validation = kube::core::Rule::new(cel::is_ipv4("self")).message("must be an IPv4 address such as 203.0.113.10 (VyOS destination NAT is IPv4)"))]
    pub external_address: Option<String>,

    /// The external port (1–65535), or the first of a range ending at `externalPortEnd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub external_port: Option<u16>,

    /// The last port of an external range (1–65535, not below `externalPort`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub external_port_end: Option<u16>,

    /// The interface the traffic arrives on, e.g. `eth0`. Required unless `externalAddress`
    /// is set; absent (with an `externalAddress`), the router's `defaultInboundInterface`,
    /// if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 15), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._*@-]*$"))]
    pub inbound_interface: Option<String>,

    /// The internal IPv4 address the traffic is forwarded to.
    #[schemars(length(max = 15))]
    #[x_kube(validation = kube::core::Rule::new(cel::is_ipv4("self")).message("must be an IPv4 address such as 10.20.0.5"))]
    pub internal_address: String,

    /// The internal port (1–65535); with an external range, the first of a range of the
    /// same size. Absent: the same as the external port.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub internal_port: Option<u16>,

    /// Only these source addresses or networks may connect. Absent: any source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::cel::source_ranges", length(min = 1))]
    pub source_ranges: Option<Vec<String>>,

    /// Free text shown on the router after the operator's marker (at most 100 characters;
    /// no quotes, newlines or control characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    #[x_kube(validation = cel::vyos_text())]
    pub description: Option<String>,

    /// Program the rule enabled. `false` keeps it on the router as `disable`d. Default: true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,

    /// Log packets matching the rule. Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<bool>,

    /// NAT reflection: clients on the router's inside network (its `spec.hairpin`) that
    /// connect to `externalAddress` and the external port reach the internal side too. Needs
    /// `externalAddress`; with `sourceRanges`, one of them must include the inside network
    /// (the hairpin rule carries the same source restriction). Absent: the router's
    /// `spec.hairpin.default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hairpin: Option<bool>,

    /// When the forward closes by itself: an RFC 3339 date-time with a time zone, such as
    /// `2026-12-06T10:00:00Z`. From that instant the rule leaves the router (within a few
    /// seconds) and the PortRule says `Expired`; the PortRule stays, and keeps its rule
    /// number and endpoint. Moving it into the future (or removing it) brings the rule back
    /// at once. Absent: the forward never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    // `format: date-time` is checked by the apiserver (an RFC 3339 date-time with a zone, as
    // Go's strfmt reads it); CEL then sees the field as a timestamp, not a string.
    #[schemars(length(max = 40), extend("format" = "date-time"))]
    pub expires_at: Option<String>,

    /// `Delete` (default) removes the rule from the router when the PortRule is deleted;
    /// `Orphan` leaves it there and gives up its ownership, so no later pass removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<crate::DeletionPolicy>,
}

/// What the operator programmed for this rule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortRuleStatus {
    /// Conditions and the generation they describe.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The VyOS rule number this rule owns (`nat destination rule N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_number: Option<u32>,
    /// A hash of the rule as last applied to the router.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_hash: Option<String>,
    /// The external side, for people: `203.0.113.10:30022` or `eth0:30022`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
    /// The internal side, for people: `10.20.0.5:22`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal: Option<String>,
}
