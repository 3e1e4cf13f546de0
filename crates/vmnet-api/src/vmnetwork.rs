//! `VmNetwork`: one VM's network identity.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cel;
use crate::common::{CommonStatus, PortProtocol};

/// One VM's network identity: its internal address (fixed, or from an IpPool) and the
/// named ports forwarded to it from external ports (fixed, or from a PortPool). The operator
/// creates and owns one PortRule per port.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vmnet.dev",
    version = "v1alpha1",
    kind = "VmNetwork",
    plural = "vmnetworks",
    shortname = "vmn",
    category = "vmnet",
    namespaced,
    status = "VmNetworkStatus",
    printcolumn(name = "Router", type_ = "string", json_path = ".spec.router"),
    printcolumn(name = "Address", type_ = "string", json_path = ".status.address"),
    printcolumn(name = "Endpoints", type_ = "string", json_path = ".status.endpoints"),
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
    validation = kube::core::Rule::new("size(self.metadata.name) <= 47").message("metadata.name: at most 47 characters, so that '<name>-<port name>' names a PortRule")
)]
#[serde(rename_all = "camelCase")]
pub struct VmNetworkSpec {
    /// The VyosRouter that forwards this VM's ports. Immutable.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    #[x_kube(validation = cel::immutable("the VM's rules are programmed on that router; delete and re-create the VmNetwork to move it"))]
    pub router: String,

    /// The VM this identity belongs to (informational; e.g. a KubeVirt VirtualMachine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_ref: Option<VmRef>,

    /// A fixed internal address (IPv4). With `ipPoolRef` it is claimed in that pool (so no
    /// other VM gets it); without, in the IpPool that contains it, if any. Absent: one is
    /// allocated from `ipPoolRef`, or from an auto-assign IpPool this namespace may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 15))]
    #[x_kube(validation = kube::core::Rule::new(cel::is_ipv4("self")).message("must be an IPv4 address such as 10.20.0.5 (VyOS destination NAT translates to IPv4)"))]
    pub address: Option<String>,

    /// The IpPool the internal address comes from (allocated, or `address` claimed in it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub ip_pool_ref: Option<String>,

    /// The VM's MAC address: the router's DHCP server gets a static mapping of this MAC to
    /// the VM's address, in the router's DHCP subnet that contains the address (the
    /// subnet must exist; see docs/dhcp.md). The VmNetwork is Ready once the mapping is in
    /// place.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"))]
    pub mac: Option<String>,

    /// The VM's forwarded ports, each by name (`ssh`, `https`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    #[x_kube(validation = kube::core::Rule::new(
        "self.all(p, self.filter(q, q.port == p.port && (p.protocol == q.protocol || p.protocol == 'tcp_udp' || q.protocol == 'tcp_udp')).size() == 1)"
    ).message("two ports forward to the same internal port and protocol; each internal port/protocol may appear once"))]
    #[x_kube(validation = kube::core::Rule::new(
        "self.all(p, !has(p.externalPort) || self.filter(q, has(q.externalPort) && q.externalPort == p.externalPort && (p.protocol == q.protocol || p.protocol == 'tcp_udp' || q.protocol == 'tcp_udp')).size() == 1)"
    ).message("two ports ask for the same external port and protocol"))]
    pub ports: Option<Vec<VmPort>>,

    /// `Delete` (default) removes the VM's rules from the router when the VmNetwork is
    /// deleted; `Orphan` leaves them there and gives up their ownership, so no later pass
    /// removes them (its PortRules carry the same policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<crate::DeletionPolicy>,
}

/// The VM a VmNetwork belongs to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VmRef {
    /// Kind, e.g. `VirtualMachine`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub kind: Option<String>,
    /// Name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// One forwarded port of a VM.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VmPort {
    /// The port's name: lowercase letters, digits and '-', at most 15 characters (`ssh`).
    #[schemars(
        length(min = 1, max = 15),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// The port on the VM (1–65535).
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// `tcp`, `udp` or `tcp_udp`.
    pub protocol: PortProtocol,
    /// A fixed external port (1–65535). With `portPoolRef` it is claimed in that pool (and
    /// gets the pool's external address); without, in the router's PortPool that contains
    /// it, if any. Absent: one is allocated from `portPoolRef`, or from an auto-assign
    /// PortPool of the router that this namespace may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub external_port: Option<u16>,
    /// The PortPool the external port comes from (allocated, or `externalPort` claimed in it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub port_pool_ref: Option<String>,
    /// Only these source addresses or networks may connect. Absent: any source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::cel::source_ranges", length(min = 1))]
    pub source_ranges: Option<Vec<String>>,
    /// NAT reflection for this port: inside clients that use its external endpoint reach the
    /// VM (passed on to the port's PortRule as its `spec.hairpin`). Absent: the router's
    /// `spec.hairpin.default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hairpin: Option<bool>,
    /// When this port's forward closes by itself: an RFC 3339 date-time with a time zone,
    /// such as `2026-12-06T10:00:00Z` (passed on to the port's PortRule as its
    /// `spec.expiresAt`). The port keeps its external port while expired, so moving this into
    /// the future (or removing it) brings the forward back on the same endpoint. Absent: the
    /// forward never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    // `format: date-time` is checked by the apiserver (an RFC 3339 date-time with a zone, as
    // Go's strfmt reads it); CEL then sees the field as a timestamp, not a string.
    #[schemars(length(max = 40), extend("format" = "date-time"))]
    pub expires_at: Option<String>,
}

/// Where a VM can be reached.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VmNetworkStatus {
    /// Conditions and the generation they describe.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The VM's internal address (fixed or allocated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The IpPool the address came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_pool: Option<String>,
    /// One line for people: `ssh=203.0.113.10:30022/tcp, ...` (`*` for the address when
    /// the rule takes the router's inbound interface on any address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<String>,
    /// Each port's external endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<VmPortStatus>>,
    /// The DHCP static mapping of `spec.mac` (written by the router's writer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<DhcpStatus>,
}

/// A VmNetwork's DHCP static mapping on its router.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DhcpStatus {
    /// `Programmed` (on the router) or `Refused` (the message says why).
    pub state: String,
    /// Where: `shared-network-name <N> subnet <S> static-mapping <name>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
    /// The MAC it maps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The address it maps to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Why it is refused, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The reason (`Conflict`, `DhcpSubnetMissing`, `InvalidRule`, `CommitFailed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The external endpoint of one port.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VmPortStatus {
    /// The port's name.
    pub name: String,
    /// The external address, when the pool or router has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_address: Option<String>,
    /// The external port (fixed or allocated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_port: Option<u16>,
    /// The protocol the external port is held in (`tcp`, `udp` or `tcp_udp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<PortProtocol>,
    /// The PortPool the external port came from (absent: a fixed port outside every pool,
    /// held on the router all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_pool: Option<String>,
    /// The PortRule that programs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_rule: Option<String>,
    /// Whether its rule is in place on the router.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// Whether its forward has expired (`expiresAt` passed): the rule is off the router, the
    /// external port is still held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired: Option<bool>,
}
