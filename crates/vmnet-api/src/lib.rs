//! The `vmnet.dev/v1alpha1` API: the custom resources of vmnet-operator.
//!
//! Cluster-scoped: [`VyosRouter`], [`IpPool`], [`PortPool`]. Namespaced: [`VmNetwork`],
//! [`PortRule`]. Validation that the apiserver can do (structural schema and CEL rules) is
//! part of the generated CRDs, so bad input is refused at `kubectl apply`.

// `#[kube(printcolumn(...))]` repeats `type_ = ...` by design; clippy reads that as a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

pub mod cel;
pub mod common;
pub mod pools;
pub mod portrule;
pub mod router;
pub mod vmnetwork;

pub use common::{CommonStatus, DeletionPolicy, PortProtocol, RuleProtocol, parse_duration};
pub use pools::{IpPool, IpPoolSpec, IpPoolStatus, PortPool, PortPoolSpec, PortPoolStatus};
pub use portrule::{PortRule, PortRuleSpec, PortRuleStatus};
pub use router::{
    BackupFailure, BackupRecord, BackupRetention, BackupSpec, BackupStatus, FirewallMode,
    FirewallSpec, FirewallStatus, HairpinSpec, LastChange, Member, MemberStatus, OrphanPolicy,
    RouterMember, RouterTls, RuleRange, SecretKeyRef, VyosRouter, VyosRouterSpec, VyosRouterStatus,
};
pub use vmnetwork::{
    DhcpStatus, VmNetwork, VmNetworkSpec, VmNetworkStatus, VmPort, VmPortStatus, VmRef,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};
use kube::CustomResourceExt;

/// The API group.
pub const GROUP: &str = "vmnet.dev";
/// The API version.
pub const VERSION: &str = "v1alpha1";
/// The finalizer the operator puts on objects whose removal needs router work.
pub const FINALIZER: &str = "vmnet.dev/cleanup";
/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "vmnet-operator";

/// Every CRD, with the file name it is committed under in `crds/`.
pub fn crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("vyosrouters.yaml", tidy(VyosRouter::crd())),
        ("ippools.yaml", tidy(IpPool::crd())),
        ("portpools.yaml", tidy(PortPool::crd())),
        ("vmnetworks.yaml", tidy(VmNetwork::crd())),
        ("portrules.yaml", tidy(PortRule::crd())),
    ]
}

/// Removes what schemars writes but the apiserver only warns about: integer formats it does
/// not know (`uint16`, `uint32`), which `kubectl apply` would print as warnings.
fn tidy(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(s: &mut JSONSchemaProps) {
        if matches!(
            s.format.as_deref(),
            Some("uint16" | "uint32" | "uint64" | "uint8")
        ) {
            s.format = None;
        }
        for p in s.properties.iter_mut().flat_map(|m| m.values_mut()) {
            walk(p);
        }
        if let Some(JSONSchemaPropsOrArray::Schema(items)) = s.items.as_mut() {
            walk(items);
        }
    }
    for v in &mut crd.spec.versions {
        if let Some(s) = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            walk(s);
        }
    }
    crd
}
