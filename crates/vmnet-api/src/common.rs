//! Types shared by several kinds.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The condition types every vmnet status carries.
pub mod condition {
    /// The allocation and the router rule are in place.
    pub const READY: &str = "Ready";
    /// Work is under way.
    pub const RECONCILING: &str = "Reconciling";
    /// No progress is possible without a change by a person.
    pub const STALLED: &str = "Stalled";
}

/// A protocol a forwarded port can carry.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum PortProtocol {
    /// TCP only.
    #[serde(rename = "tcp")]
    Tcp,
    /// UDP only.
    #[serde(rename = "udp")]
    Udp,
    /// Both TCP and UDP on the same port number.
    #[serde(rename = "tcp_udp")]
    TcpUdp,
}

impl PortProtocol {
    /// The word VyOS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::TcpUdp => "tcp_udp",
        }
    }
}

/// A protocol a NAT rule matches: a port protocol, or `all` for a rule without ports.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RuleProtocol {
    /// TCP only.
    #[serde(rename = "tcp")]
    Tcp,
    /// UDP only.
    #[serde(rename = "udp")]
    Udp,
    /// Both TCP and UDP.
    #[serde(rename = "tcp_udp")]
    TcpUdp,
    /// Every protocol. Ports cannot be given with it.
    #[serde(rename = "all")]
    All,
}

impl RuleProtocol {
    /// The word VyOS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::TcpUdp => "tcp_udp",
            Self::All => "all",
        }
    }
}

impl From<PortProtocol> for RuleProtocol {
    fn from(p: PortProtocol) -> Self {
        match p {
            PortProtocol::Tcp => Self::Tcp,
            PortProtocol::Udp => Self::Udp,
            PortProtocol::TcpUdp => Self::TcpUdp,
        }
    }
}

/// The status fields every vmnet kind shares.
/// What deleting a VmNetwork or PortRule does to its rules on the router.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DeletionPolicy {
    /// Remove them (the default).
    #[default]
    Delete,
    /// Leave them on the router and give up their ownership (the marker leaves their
    /// description), so that no later pass removes or changes them.
    Orphan,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// The `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling` and `Stalled`, each with a reason and a message a person can
    /// act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Option<Vec<Condition>>,
}

/// Parses a duration as the CRDs write them (`^([0-9]+(s|m|h))+$`), such as `30s`, `5m` or
/// `1h30m`; `None` for anything else, and for zero.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
    }
    (num.is_empty() && total > 0).then(|| std::time::Duration::from_secs(total))
}
