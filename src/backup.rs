//! Config backups, the I/O part: read a router's whole running config, keep it in a Secret
//! in the operator's namespace (a config holds secrets: user hashes, keys), known by its
//! SHA-256 so that an identical config is stored once, and prune what retention lets go.
//! The pure part (checksum, names, schedule, retention, diff) is
//! [`vmnet_plan::backup`]. Nothing here logs or reports a config's content.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use vmnet_api::{BackupRecord, BackupRetention};
use vmnet_plan::backup::{self as plan, Stored};
use vyos_client::{VyosClient, VyosError};

/// Label: the router a backup is of ([`plan::router_label`]).
pub const LABEL_ROUTER: &str = "vmnet.dev/backup-of";
/// Label: the config's SHA-256 ([`plan::checksum_label`]).
pub const LABEL_CHECKSUM: &str = "vmnet.dev/config-sha256";
/// Annotation: the router's full name.
pub const ANN_ROUTER: &str = "vmnet.dev/router";
/// Annotation: the SHA-256 as hex.
pub const ANN_SHA256: &str = "vmnet.dev/sha256";
/// Annotation: when the config was first read (RFC 3339).
pub const ANN_TAKEN: &str = "vmnet.dev/taken-at";
/// Annotation: when the router last had exactly this config (RFC 3339).
pub const ANN_SEEN: &str = "vmnet.dev/last-seen";
/// Annotation: the router's VyOS version then.
pub const ANN_VERSION: &str = "vmnet.dev/vyos-version";
/// Annotation: bytes of config text (so a metadata-only list knows the size).
pub const ANN_SIZE: &str = "vmnet.dev/size";
/// Annotation: why it was taken (`schedule`, `before-change`, `manual`).
pub const ANN_REASON: &str = "vmnet.dev/reason";
/// The Secret's data key that holds the config text.
pub const DATA_KEY: &str = "config";
/// The Secret's type.
pub const SECRET_TYPE: &str = "vmnet.dev/router-backup";

/// One stored backup, from its Secret's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The Secret's name.
    pub name: String,
    /// The router's name.
    pub router: String,
    /// When the config was first read (Unix ms).
    pub taken_ms: i64,
    /// When the router last had exactly this config (Unix ms).
    pub seen_ms: i64,
    /// SHA-256 of the config text, hex.
    pub sha256: String,
    /// Bytes of config text.
    pub size: usize,
    /// The router's VyOS version then.
    pub version: String,
    /// Why it was taken.
    pub reason: String,
}

impl Backup {
    fn from_secret(s: &Secret) -> Option<Self> {
        let a = s.metadata.annotations.as_ref()?;
        let ms = |k: &str| {
            a.get(k)
                .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                .map(|t| t.as_millisecond())
        };
        let taken_ms = ms(ANN_TAKEN)?;
        Some(Self {
            name: s.metadata.name.clone()?,
            router: a.get(ANN_ROUTER)?.clone(),
            taken_ms,
            seen_ms: ms(ANN_SEEN).unwrap_or(taken_ms),
            sha256: a.get(ANN_SHA256).cloned().unwrap_or_default(),
            size: a.get(ANN_SIZE).and_then(|n| n.parse().ok()).unwrap_or(0),
            version: a.get(ANN_VERSION).cloned().unwrap_or_default(),
            reason: a.get(ANN_REASON).cloned().unwrap_or_default(),
        })
    }

    /// As the router's status shows it.
    pub fn record(&self) -> BackupRecord {
        BackupRecord {
            time: Time(
                k8s_openapi::jiff::Timestamp::from_millisecond(self.taken_ms.max(self.seen_ms))
                    .unwrap_or_default(),
            ),
            name: self.name.clone(),
            checksum: self.sha256.clone(),
            size: self.size as i64,
        }
    }

    fn stored(&self) -> Stored {
        Stored {
            name: self.name.clone(),
            taken_ms: self.taken_ms,
            seen_ms: self.seen_ms,
        }
    }
}

/// Why a backup could not be taken or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading the router.
    #[error("reading the router's config: {0}")]
    Router(#[source] VyosError),
    /// The Secrets that hold backups.
    #[error("backup Secrets in namespace {namespace}: {source}")]
    Store {
        /// The operator's namespace.
        namespace: String,
        /// What the apiserver said.
        #[source]
        source: kube::Error,
    },
    /// No such backup, or not one of ours.
    #[error("{0}")]
    NotFound(String),
}

/// The outcome of [`Backups::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The backup that holds the router's config now.
    pub backup: Backup,
    /// Whether a new Secret was written (false: the same config was stored already, and
    /// its last-seen time moved).
    pub new: bool,
    /// Backups of the router kept after pruning.
    pub kept: usize,
    /// Secrets retention deleted.
    pub pruned: Vec<String>,
}

/// The backups in one namespace.
#[derive(Clone)]
pub struct Backups {
    api: Api<Secret>,
    namespace: String,
}

impl std::fmt::Debug for Backups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backups")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Backups {
    /// The backups kept in `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
        }
    }

    fn store_err(&self, source: kube::Error) -> BackupError {
        BackupError::Store {
            namespace: self.namespace.clone(),
            source,
        }
    }

    /// Backups of `router` (all routers: `None`), newest first. Only metadata is listed.
    pub async fn list(&self, router: Option<&str>) -> Result<Vec<Backup>, BackupError> {
        let selector = match router {
            Some(r) => format!("{LABEL_ROUTER}={}", plan::router_label(r)),
            None => LABEL_ROUTER.to_owned(),
        };
        let list = self
            .api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| self.store_err(e))?;
        let mut out: Vec<Backup> = list
            .items
            .iter()
            .filter_map(|m| {
                let s = Secret {
                    metadata: m.metadata.clone(),
                    ..Secret::default()
                };
                Backup::from_secret(&s)
            })
            .filter(|b| router.is_none_or(|r| b.router == r))
            .collect();
        out.sort_by(|a, b| (b.taken_ms, &b.name).cmp(&(a.taken_ms, &a.name)));
        Ok(out)
    }

    /// A backup and its config text.
    pub async fn get(&self, name: &str) -> Result<(Backup, String), BackupError> {
        let s = self
            .api
            .get_opt(name)
            .await
            .map_err(|e| self.store_err(e))?
            .ok_or_else(|| {
                BackupError::NotFound(format!(
                    "no backup {name:?} in namespace {} (vmnet-operator backup list shows them)",
                    self.namespace
                ))
            })?;
        let b = Backup::from_secret(&s).ok_or_else(|| {
            BackupError::NotFound(format!(
                "Secret {}/{name} is not a vmnet-operator backup",
                self.namespace
            ))
        })?;
        let text = s
            .data
            .as_ref()
            .and_then(|d| d.get(DATA_KEY))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .unwrap_or_default();
        Ok((b, text))
    }

    /// Reads `router`'s running config through `client`, stores it unless the same config
    /// is stored already (then that backup's last-seen time moves), and prunes by
    /// `retention`.
    pub async fn take(
        &self,
        client: &VyosClient,
        router: &str,
        version: &str,
        reason: &str,
        retention: Option<&BackupRetention>,
    ) -> Result<Taken, BackupError> {
        let text = client
            .running_config_text()
            .await
            .map_err(BackupError::Router)?;
        let now = k8s_openapi::jiff::Timestamp::now();
        let (backup, new) = self.store(router, &text, version, reason, now).await?;
        let mut pruned = Vec::new();
        let mut all = self.list(Some(router)).await?;
        if let Some(r) = retention {
            let max_age = r.max_age.as_deref().and_then(vmnet_api::parse_duration);
            let stored: Vec<Stored> = all.iter().map(Backup::stored).collect();
            for name in plan::prune(&stored, r.count, max_age, now.as_millisecond()) {
                // The one just written or seen is the newest: never pruned.
                match self.api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => pruned.push(name),
                    Err(kube::Error::Api(e)) if e.code == 404 => pruned.push(name),
                    Err(e) => return Err(self.store_err(e)),
                }
            }
            all.retain(|b| !pruned.contains(&b.name));
        }
        Ok(Taken {
            backup,
            new,
            kept: all.len(),
            pruned,
        })
    }

    async fn store(
        &self,
        router: &str,
        text: &str,
        version: &str,
        reason: &str,
        now: k8s_openapi::jiff::Timestamp,
    ) -> Result<(Backup, bool), BackupError> {
        let label = plan::checksum_label(text);
        let sha256 = plan::checksum(text);
        let selector = format!(
            "{LABEL_ROUTER}={},{LABEL_CHECKSUM}={label}",
            plan::router_label(router)
        );
        let same = self
            .api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| self.store_err(e))?;
        let found = same.items.iter().find_map(|m| {
            let s = Secret {
                metadata: m.metadata.clone(),
                ..Secret::default()
            };
            Backup::from_secret(&s).filter(|b| b.router == router && b.sha256 == sha256)
        });
        if let Some(mut b) = found {
            let patch = json!({"metadata": {"annotations": {ANN_SEEN: now.to_string()}}});
            self.api
                .patch(&b.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map_err(|e| self.store_err(e))?;
            b.seen_ms = now.as_millisecond();
            return Ok((b, false));
        }
        let base = plan::secret_name(router, now.as_millisecond());
        let annotations = BTreeMap::from([
            (ANN_ROUTER.to_owned(), router.to_owned()),
            (ANN_SHA256.to_owned(), sha256.clone()),
            (ANN_TAKEN.to_owned(), now.to_string()),
            (ANN_SEEN.to_owned(), now.to_string()),
            (ANN_VERSION.to_owned(), version.to_owned()),
            (ANN_REASON.to_owned(), reason.to_owned()),
            (ANN_SIZE.to_owned(), text.len().to_string()),
        ]);
        let labels = BTreeMap::from([
            (LABEL_ROUTER.to_owned(), plan::router_label(router)),
            (LABEL_CHECKSUM.to_owned(), label),
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "vmnet-operator".to_owned(),
            ),
        ]);
        // Two backups within one second get a suffix.
        for n in 0..10 {
            let name = if n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let secret = Secret {
                metadata: kube::core::ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(labels.clone()),
                    annotations: Some(annotations.clone()),
                    ..Default::default()
                },
                type_: Some(SECRET_TYPE.to_owned()),
                data: Some(BTreeMap::from([(
                    DATA_KEY.to_owned(),
                    ByteString(text.as_bytes().to_vec()),
                )])),
                ..Secret::default()
            };
            match self.api.create(&PostParams::default(), &secret).await {
                Ok(s) => {
                    let b = Backup::from_secret(&s).ok_or_else(|| {
                        BackupError::NotFound(format!("the apiserver changed backup {name}"))
                    })?;
                    return Ok((b, true));
                }
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(self.store_err(e)),
            }
        }
        Err(BackupError::NotFound(format!(
            "ten backups named {base}-N exist already"
        )))
    }
}

/// The `set` lines of a config text, sorted (what `backup show` prints and `diff`
/// compares).
pub fn set_lines(text: &str) -> Result<Vec<String>, String> {
    vyos_client::config_text::parse(text)
        .map(|t| vyos_client::config_text::set_commands(&t))
        .map_err(|e| format!("the config text does not parse: {e}"))
}
