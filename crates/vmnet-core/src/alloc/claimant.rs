//! Who holds an allocation.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The owner of an allocation: an object, and optionally one item of it (a named port of a
/// VmNetwork). Displayed as `VmNetwork web/vm1` or `VmNetwork web/vm1 port ssh`, so a
/// conflict message names both parties in words a person can `kubectl get`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Claimant {
    /// The object's kind, e.g. `VmNetwork` or `PortRule`.
    pub kind: String,
    /// The object's namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// One item of the object (e.g. a port name), when an object holds several values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

impl Claimant {
    /// The object `kind` `namespace`/`name`.
    pub fn new(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            item: None,
        }
    }

    /// The same object, narrowed to one item (e.g. the port named `ssh`).
    pub fn with_item(mut self, item: impl Into<String>) -> Self {
        self.item = Some(item.into());
        self
    }

    /// A stable 64-bit FNV-1a hash of the key (the same on every build and platform, unlike
    /// `std`'s hasher), used to derive preferred rule numbers.
    pub fn stable_hash(&self) -> u64 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = OFFSET;
        let parts = [
            self.kind.as_str(),
            self.namespace.as_str(),
            self.name.as_str(),
            self.item.as_deref().unwrap_or(""),
        ];
        for part in parts {
            for b in part.bytes().chain(std::iter::once(0)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(PRIME);
            }
        }
        h
    }
}

impl fmt::Display for Claimant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)?;
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)?;
        }
        if let Some(item) = &self.item {
            write!(f, " port {item}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_object_and_item() {
        let c = Claimant::new("VmNetwork", "web", "vm1");
        assert_eq!(c.to_string(), "VmNetwork web/vm1");
        assert_eq!(
            c.clone().with_item("ssh").to_string(),
            "VmNetwork web/vm1 port ssh"
        );
        assert_eq!(Claimant::new("PortPool", "", "p").to_string(), "PortPool p");
    }

    #[test]
    fn stable_hash_is_stable_and_separates_fields() {
        let a = Claimant::new("PortRule", "ns", "a");
        assert_eq!(
            a.stable_hash(),
            Claimant::new("PortRule", "ns", "a").stable_hash()
        );
        // "ns"+"a" must differ from "n"+"sa".
        assert_ne!(
            a.stable_hash(),
            Claimant::new("PortRule", "n", "sa").stable_hash()
        );
    }
}
