//! The observe step of a pass: the router's client (from the API-key Secret, rebuilt when
//! the key, endpoint or CA changes) and what the router holds in the operator's part of its
//! config, as a [`vmnet_plan::plan::Observed`]. Reads only.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use vmnet_api::{RuleRange, VyosRouter, VyosRouterSpec};
use vmnet_plan::plan::Observed;
use vmnet_plan::render::{is_owned, owned_group};
use vyos_client::nat::{NatKind, NatRule};
use vyos_client::{ClientConfig, VyosClient, VyosError};

use super::PassError;

/// The destination-NAT rules of a router, split by ownership.
#[derive(Debug, Clone, Default)]
pub struct Read {
    /// In the owned range and carrying the marker.
    pub owned: BTreeMap<u32, NatRule>,
    /// In the owned range without the marker: never touched.
    pub foreign: BTreeMap<u32, NatRule>,
}

/// Sorts destination-NAT rules by ownership in `range` (those outside it are dropped).
/// The maps are collected from sorted runs, which fills their nodes (inserted one by one in
/// order, a node of rules is left about half empty); the owned run is sized for every rule
/// read at once (grown by doubling, it held up to twice the rules at the writer's peak).
pub fn split(rules: BTreeMap<u32, NatRule>, range: &RuleRange) -> Read {
    let mut owned = Vec::with_capacity(rules.len());
    let mut foreign = Vec::new();
    for (n, r) in rules {
        if !range.contains(n) {
            continue;
        }
        if is_owned(&r, range) {
            owned.push((n, r));
        } else {
            foreign.push((n, r));
        }
    }
    Read {
        owned: owned.into_iter().collect(),
        foreign: foreign.into_iter().collect(),
    }
}

/// Reads the router's destination-NAT rules (one request).
pub async fn read(client: &VyosClient, range: &RuleRange) -> Result<Read, VyosError> {
    Ok(split(client.nat_rules(NatKind::Destination).await?, range))
}

/// Reads the rules (one request), when `groups` is set the network-groups (a second), and
/// when the router has `spec.hairpin` its source-NAT rules (a third): a router whose rules
/// use no group and no hairpin costs one read a pass.
pub async fn observe(
    client: &VyosClient,
    spec: &VyosRouterSpec,
    groups: bool,
) -> Result<Observed, VyosError> {
    let range = &spec.rule_range;
    let destination = client.nat_rules(NatKind::Destination).await?;
    let mut out = Observed::default();
    if spec.hairpin.is_some() {
        let source = client.nat_rules(NatKind::Source).await?;
        let found = vmnet_plan::hairpin::classify(spec, &destination, &source);
        out.owned_hairpin = found.owned;
        out.foreign_hairpin = found.foreign;
    }
    let Read { owned, foreign } = split(destination, range);
    out.owned = owned;
    out.foreign = foreign;
    if groups {
        for (name, g) in client.network_groups().await? {
            match owned_group(&name, &g, range) {
                Some(n) => {
                    out.owned_groups.insert(n, g);
                }
                None => {
                    out.foreign_groups.insert(name);
                }
            }
        }
    }
    Ok(out)
}

/// A router's client and what it reported of itself, kept between passes.
#[derive(Debug, Default)]
pub struct Connection {
    client: Option<(String, VyosClient)>,
    /// What the client was made from: the router's endpoint and TLS, and the Secret's
    /// resourceVersion. While neither changed, a pass reads no Secret.
    made_from: Option<(String, String)>,
    /// The VyOS version, read once per client.
    pub version: Option<String>,
}

/// Where the operator may read API-key Secrets (`None`: anywhere) and how long a request
/// to a router may take.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// `--credentials-namespaces`.
    pub namespaces: Option<&'a [String]>,
    /// Deadline of each request.
    pub timeout: std::time::Duration,
    /// The resourceVersion the Secret watch last saw of the router's Secret (`None`: not
    /// seen, so it is read each pass).
    pub secret_version: Option<&'a str>,
    /// Told of every request the client makes (the latency histogram).
    pub observer: Option<&'a vyos_client::Observer>,
}

impl Connection {
    /// The client for `router`, from its Secret; a rotated key or a new CA takes effect on
    /// the next pass, without a restart. The key itself is never logged or reported.
    pub async fn client(
        &mut self,
        kube: &Client,
        access: Access<'_>,
        router: &VyosRouter,
    ) -> Result<VyosClient, PassError> {
        let name = router.metadata.name.as_deref().unwrap_or_default();
        let spec = &router.spec;
        let sref = &spec.credentials_secret_ref;
        if let Some(allowed) = access.namespaces
            && !allowed.contains(&sref.namespace)
        {
            return Err(PassError::SecretElsewhere(format!(
                "spec.credentialsSecretRef names namespace {:?}, but the operator reads API-key \
                 Secrets only in {} (its --credentials-namespaces, the Helm chart's \
                 credentials.namespaces): move the Secret there, or add the namespace",
                sref.namespace,
                allowed
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let key_name = sref.key.clone().unwrap_or_else(|| "api-key".to_owned());
        let tls = spec.tls.clone().unwrap_or(vmnet_api::RouterTls {
            ca_bundle: None,
            insecure_skip_verify: None,
            insecure_plain_http: None,
        });
        let target = format!(
            "{}|{:?}|{:?}|{}/{}|{key_name}",
            spec.endpoint,
            tls.ca_bundle.as_deref().map(fnv),
            tls.insecure_skip_verify,
            sref.namespace,
            sref.name
        );
        if let (Some((_, c)), Some((t, v)), Some(seen)) =
            (&self.client, &self.made_from, access.secret_version)
            && *t == target
            && v == seen
        {
            return Ok(c.clone());
        }
        let secrets: Api<Secret> = Api::namespaced(kube.clone(), &sref.namespace);
        let secret = secrets.get_opt(&sref.name).await.map_err(PassError::Kube)?;
        let read_version = secret
            .as_ref()
            .and_then(|s| s.metadata.resource_version.clone());
        let key = secret
            .as_ref()
            .and_then(|s| s.data.as_ref())
            .and_then(|d| d.get(&key_name))
            .map(|b| String::from_utf8_lossy(&b.0).trim().to_owned())
            .filter(|k| !k.is_empty());
        let Some(key) = key else {
            // A Secret deleted together with everything else (`kubectl delete -f`) must
            // not strand the rules on the router: keep the last key that worked.
            if let Some((_, c)) = &self.client {
                tracing::warn!(router = %name, secret = %format!("{}/{}", sref.namespace, sref.name), "the API key Secret is gone; using the last key read");
                return Ok(c.clone());
            }
            return Err(PassError::Secret(format!(
                "Secret {}/{} has no key {key_name:?} (spec.credentialsSecretRef)",
                sref.namespace, sref.name
            )));
        };
        let fingerprint = format!(
            "{}|{:x}|{:?}|{:?}",
            spec.endpoint,
            fnv(&key),
            tls.ca_bundle.as_deref().map(fnv),
            tls.insecure_skip_verify
        );
        self.made_from = read_version.map(|v| (target, v));
        if let Some((fp, c)) = &self.client
            && *fp == fingerprint
        {
            return Ok(c.clone());
        }
        let mut cfg = ClientConfig::new(spec.endpoint.clone(), key);
        cfg.ca_bundle_pem = tls.ca_bundle.clone();
        cfg.insecure_skip_verify = tls.insecure_skip_verify == Some(true);
        cfg.timeout = access.timeout;
        cfg.read_retries = 1;
        cfg.observer = access.observer.cloned();
        let client = VyosClient::new(cfg).map_err(PassError::Vyos)?;
        self.client = Some((fingerprint, client.clone()));
        self.version = None;
        Ok(client)
    }

    /// The router's VyOS version (one request for each new client).
    pub async fn version(&mut self, client: &VyosClient) -> Result<String, PassError> {
        if let Some(v) = &self.version {
            return Ok(v.clone());
        }
        let v = client.version().await.map_err(PassError::Vyos)?.version;
        self.version = Some(v.clone());
        Ok(v)
    }
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
