//! `IpPool` and `PortPool`: where internal addresses and external ports come from.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cel;
use crate::common::{CommonStatus, PortProtocol};

fn pool_entries(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let _ = g;
    cel::string_list(
        64,
        100,
        &cel::is_pool_entry("self"),
        "must be an address (10.0.0.7), a CIDR written with its network address (10.0.0.0/24, \
         2001:db8::/64) or a range low-high of one family (10.0.0.10-10.0.0.20)",
    )
}

fn port_entries(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let _ = g;
    cel::string_list(
        64,
        11,
        "self.matches('^[0-9]{1,5}(-[0-9]{1,5})?$') && self.split('-').all(p, int(p) >= 1 && int(p) <= 65535) \
         && (self.split('-').size() == 1 || int(self.split('-')[0]) <= int(self.split('-')[1]))",
        "must be a port 1-65535 or a range low-high within 1-65535 (30000-32767)",
    )
}

fn namespace_names(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let _ = g;
    cel::string_list(
        256,
        63,
        "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
        "must be a namespace name (lowercase letters, digits and '-')",
    )
}

/// A set of internal addresses that VmNetworks can be given. Editing a pool never moves an
/// address in use: allocations left outside it are reported in status, and a pool that
/// still has allocations keeps its finalizer until they are released.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vmnet.dev",
    version = "v1alpha1",
    kind = "IpPool",
    plural = "ippools",
    shortname = "ipp",
    category = "vmnet",
    status = "IpPoolStatus",
    printcolumn(name = "Addresses", type_ = "string", json_path = ".spec.addresses"),
    printcolumn(name = "Total", type_ = "string", json_path = ".status.total"),
    printcolumn(name = "Used", type_ = "integer", json_path = ".status.used"),
    printcolumn(name = "Free", type_ = "string", json_path = ".status.free"),
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
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct IpPoolSpec {
    /// Addresses in the pool: CIDRs (`10.20.0.0/24`, `2001:db8:1::/64`), ranges
    /// (`10.20.1.10-10.20.1.50`) and single addresses, IPv4 and IPv6.
    #[schemars(schema_with = "pool_entries", length(min = 1))]
    pub addresses: Vec<String>,

    /// Addresses never handed out (e.g. the gateway): addresses, CIDRs or ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "pool_entries")]
    pub exclude: Option<Vec<String>>,

    /// Also hand out the network and broadcast addresses of IPv4 CIDRs. Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_network_and_broadcast: Option<bool>,

    /// Namespaces whose VmNetworks may take addresses from this pool. Absent: every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "namespace_names")]
    pub allowed_namespaces: Option<Vec<String>>,

    /// Hand out addresses to VmNetworks that name no pool. Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_assign: Option<bool>,

    /// Among auto-assign pools, the highest priority is tried first (ties by name).
    /// Default: 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -1000, max = 1000))]
    pub priority: Option<i32>,
}

/// Usage of an IpPool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IpPoolStatus {
    /// Conditions and the generation they describe.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Addresses the pool can hand out (a decimal string: an IPv6 pool can exceed 64 bits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<String>,
    /// Addresses in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<i64>,
    /// Addresses still free (a decimal string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free: Option<String>,
    /// Allocations that an edit left outside the pool: still in use, never moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_range: Option<Vec<String>>,
}

/// External ports on one router that VmNetworks can be given, on an external address or an
/// inbound interface.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vmnet.dev",
    version = "v1alpha1",
    kind = "PortPool",
    plural = "portpools",
    shortname = "pp",
    category = "vmnet",
    status = "PortPoolStatus",
    printcolumn(name = "Router", type_ = "string", json_path = ".spec.router"),
    printcolumn(
        name = "External",
        type_ = "string",
        json_path = ".spec.externalAddress"
    ),
    printcolumn(name = "Ports", type_ = "string", json_path = ".spec.ports"),
    printcolumn(name = "Total", type_ = "integer", json_path = ".status.total"),
    printcolumn(name = "Ports Used", type_ = "integer", json_path = ".status.used"),
    printcolumn(
        name = "Allocations",
        type_ = "integer",
        json_path = ".status.allocations"
    ),
    printcolumn(name = "Free", type_ = "integer", json_path = ".status.free"),
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
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = kube::core::Rule::new("has(self.externalAddress) || has(self.inboundInterface)").message("set spec.externalAddress, spec.inboundInterface or both: a forwarded port needs somewhere to arrive"))]
#[serde(rename_all = "camelCase")]
pub struct PortPoolSpec {
    /// The VyosRouter these ports are on. Immutable.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    #[x_kube(validation = cel::immutable("ports allocated from this pool are programmed on that router; create a new pool for another router"))]
    pub router: String,

    /// The external IPv4 address the ports are on (the rule's destination address).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 15))]
    #[x_kube(validation = kube::core::Rule::new(cel::is_ipv4("self")).message("must be an IPv4 address such as 203.0.113.10 (VyOS destination NAT is IPv4)"))]
    pub external_address: Option<String>,

    /// The router interface the traffic arrives on, e.g. `eth0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 15), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._*@-]*$"))]
    pub inbound_interface: Option<String>,

    /// Port ranges in the pool, e.g. `30000-32767` or `8080`.
    #[schemars(schema_with = "port_entries", length(min = 1))]
    pub ports: Vec<String>,

    /// Ports never handed out: ports or ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "port_entries")]
    pub exclude: Option<Vec<String>>,

    /// Protocols that may take ports from this pool. Absent: tcp, udp and tcp_udp.
    /// TCP and UDP are separate spaces; tcp_udp takes the port in both.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 3))]
    pub protocols: Option<Vec<PortProtocol>>,

    /// Namespaces whose VmNetworks may take ports from this pool. Absent: every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "namespace_names")]
    pub allowed_namespaces: Option<Vec<String>>,

    /// Hand out ports to VmNetwork ports that name no pool. Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_assign: Option<bool>,

    /// Among auto-assign pools, the highest priority is tried first (ties by name).
    /// Default: 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -1000, max = 1000))]
    pub priority: Option<i32>,
}

/// Usage of a PortPool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortPoolStatus {
    /// Conditions and the generation they describe.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Ports the pool can hand out (per protocol space).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    /// Port numbers in use in either space: a port held for tcp by one VM and for udp by
    /// another counts once here, and a tcp_udp allocation counts once (see `allocations`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<i64>,
    /// Allocations held in the pool (one per VM port or PortRule, whatever its protocol).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocations: Option<i64>,
    /// Ports free in both the TCP and the UDP space (what a tcp_udp request can still get).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free: Option<i64>,
    /// Allocations that an edit left outside the pool: still in use, never moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_range: Option<Vec<String>>,
}
