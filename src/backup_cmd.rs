//! `vmnet-operator backup list | show | diff | now | restore`: a person's view of the
//! routers' config backups, with the caller's kubeconfig and rights. Only `now` and
//! `restore --confirm RESTORE` write; `restore` without it shows what it would change.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use vmnet_api::VyosRouter;
use vmnet_plan::backup::diff;
use vyos_client::VyosClient;

use crate::backup::{Backup, Backups, set_lines};
use crate::writer::RECONCILE_REQUESTED_AT;
use crate::writer::observe::{Access, Connection};

/// The word `restore --confirm` wants.
pub const CONFIRM_WORD: &str = "RESTORE";

/// What every backup command needs.
pub struct Env {
    /// The kube client.
    pub client: kube::Client,
    /// Where backups are kept.
    pub namespace: String,
    /// Deadline of each request to a router.
    pub timeout: Duration,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Env {
    fn store(&self) -> Backups {
        Backups::new(self.client.clone(), &self.namespace)
    }

    async fn router(&self, name: &str) -> anyhow::Result<(VyosRouter, VyosClient, String)> {
        let routers: Api<VyosRouter> = Api::all(self.client.clone());
        let router = routers
            .get_opt(name)
            .await
            .with_context(|| format!("reading VyosRouter {name:?}"))?
            .with_context(|| format!("no VyosRouter named {name:?}"))?;
        let mut conn = Connection::default();
        let access = Access {
            namespaces: None,
            timeout: self.timeout,
            secret_version: None,
            observer: None,
        };
        let client = conn
            .client(&self.client, access, &router)
            .await
            .map_err(|e| anyhow::anyhow!("router {name}: {}", crate::writer::describe(&e).1))?;
        let version = conn
            .version(&client)
            .await
            .map_err(|e| anyhow::anyhow!("router {name}: {}", crate::writer::describe(&e).1))?;
        Ok((router, client, version))
    }
}

/// `backup list`: one line per backup, newest first.
pub async fn list(env: &Env, router: Option<&str>, json_out: bool) -> anyhow::Result<String> {
    let all = env.store().list(router).await?;
    if json_out {
        let items: Vec<_> = all.iter().map(to_json).collect();
        return Ok(format!("{}\n", serde_json::to_string_pretty(&items)?));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<44} {:<20} {:<20} {:<20} {:>8} {:<12} {:<13} VERSION",
        "NAME", "ROUTER", "TAKEN", "LAST SEEN", "BYTES", "SHA256", "REASON"
    );
    for b in &all {
        let _ = writeln!(
            out,
            "{:<44} {:<20} {:<20} {:<20} {:>8} {:<12} {:<13} {}",
            b.name,
            b.router,
            time(b.taken_ms),
            time(b.seen_ms),
            b.size,
            b.sha256.get(..12).unwrap_or(&b.sha256),
            b.reason,
            b.version
        );
    }
    if all.is_empty() {
        let _ = writeln!(
            out,
            "(no backups in namespace {}{})",
            env.namespace,
            router
                .map(|r| format!(" for router {r}"))
                .unwrap_or_default()
        );
    }
    Ok(out)
}

/// How `backup show` prints a backup.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShowFormat {
    /// Sorted VyOS `set` lines: the form people diff and paste.
    Commands,
    /// The metadata and the `set` lines, as JSON.
    Json,
    /// The config text as the router gave it (curly format, what `/config-file load` takes).
    Config,
}

/// `backup show NAME`.
pub async fn show(env: &Env, name: &str, format: ShowFormat) -> anyhow::Result<String> {
    let (b, text) = env.store().get(name).await?;
    Ok(match format {
        ShowFormat::Config => text,
        ShowFormat::Commands => lines(&set_lines(&text).map_err(anyhow::Error::msg)?),
        ShowFormat::Json => {
            let mut j = to_json(&b);
            j["commands"] = json!(set_lines(&text).map_err(anyhow::Error::msg)?);
            format!("{}\n", serde_json::to_string_pretty(&j)?)
        }
    })
}

/// `backup diff A B`, or `backup diff A --live`: a unified diff of the `set` lines, from
/// the first to the second, and the change count.
pub async fn diff_cmd(
    env: &Env,
    a: &str,
    b: Option<&str>,
    live_router: Option<&str>,
) -> anyhow::Result<String> {
    let store = env.store();
    let (ba, ta) = store.get(a).await?;
    let (label_b, tb) = match (b, live_router) {
        (Some(b), _) => (b.to_owned(), store.get(b).await?.1),
        (None, router) => {
            let router = router.unwrap_or(&ba.router);
            let (_, client, _) = env.router(router).await?;
            (
                format!("live config of {router}"),
                client
                    .running_config_text()
                    .await
                    .with_context(|| format!("reading router {router}'s config"))?,
            )
        }
    };
    let la = set_lines(&ta).map_err(anyhow::Error::msg)?;
    let lb = set_lines(&tb).map_err(anyhow::Error::msg)?;
    let d = diff(a, &la, &label_b, &lb);
    let mut out = d.text.clone();
    let _ = writeln!(
        out,
        "{} change(s): {} line(s) added, {} removed ({a} -> {label_b})",
        d.changes(),
        d.added,
        d.removed
    );
    Ok(out)
}

/// `backup now ROUTER`: a backup at once, as the schedule takes it (same store, same
/// retention).
pub async fn now(env: &Env, router: &str) -> anyhow::Result<String> {
    let (r, client, version) = env.router(router).await?;
    let retention = r.spec.backup.as_ref().map(|b| &b.retention);
    let t = env
        .store()
        .take(&client, router, &version, "manual", retention)
        .await?;
    let mut out = if t.new {
        format!(
            "stored backup {} of router {router} ({} bytes, sha256 {})\n",
            t.backup.name, t.backup.size, t.backup.sha256
        )
    } else {
        format!(
            "router {router}'s config is unchanged since backup {}: its last-seen time moved, nothing new stored\n",
            t.backup.name
        )
    };
    if !t.pruned.is_empty() {
        let _ = writeln!(out, "retention pruned: {}", t.pruned.join(", "));
    }
    let _ = writeln!(out, "{} backup(s) of {router} kept", t.kept);
    Ok(out)
}

/// `backup restore NAME --router R [--confirm RESTORE] [--file PATH]`. Without the
/// confirmation it prints the diff against the live config and changes nothing.
pub async fn restore(
    env: &Env,
    name: &str,
    router: &str,
    confirm: Option<&str>,
    file: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(word) = confirm
        && word != CONFIRM_WORD
    {
        bail!("--confirm takes exactly {CONFIRM_WORD}; nothing was changed");
    }
    let (backup, text) = env.store().get(name).await?;
    let (_, client, version) = env.router(router).await?;
    let live = client
        .running_config_text()
        .await
        .with_context(|| format!("reading router {router}'s config"))?;
    let wanted = set_lines(&text).map_err(anyhow::Error::msg)?;
    let d = diff(
        &format!("live config of {router}"),
        &set_lines(&live).map_err(anyhow::Error::msg)?,
        name,
        &wanted,
    );
    let mut out = d.text.clone();
    let _ = writeln!(
        out,
        "restoring {name} (taken {} from router {}) would change {} line(s) on {router}: {} added, {} removed",
        time(backup.taken_ms),
        backup.router,
        d.changes(),
        d.added,
        d.removed
    );
    if backup.router != router {
        let _ = writeln!(
            out,
            "note: the backup is of router {}, not {router}",
            backup.router
        );
    }
    if confirm.is_none() {
        let _ = writeln!(
            out,
            "nothing was changed; to load this backup onto {router}, run again with --confirm {CONFIRM_WORD}"
        );
        return Ok(out);
    }
    let loaded = match file {
        Some(path) => client.load_config_file(path).await,
        None if version.starts_with("1.4") => bail!(
            "{out}router {router} runs VyOS {version}, which loads only a config file already on the router; \
             nothing was changed. Copy the backup there and load that file:\n  \
             vmnet-operator backup show {name} --format config > {name}.config\n  \
             scp {name}.config vyos@ROUTER:/config/{name}.config\n  \
             vmnet-operator backup restore {name} --router {router} --file /config/{name}.config --confirm {CONFIRM_WORD}"
        ),
        None => client.load_config_string(&text).await,
    };
    if let Err(e) = loaded {
        bail!("{out}router {router} did not load the backup: {e}");
    }
    let after = client
        .running_config_text()
        .await
        .with_context(|| format!("reading router {router}'s config after the load"))?;
    let left = diff(
        name,
        &wanted,
        "router",
        &set_lines(&after).map_err(anyhow::Error::msg)?,
    );
    if left.changes() == 0 {
        let _ = writeln!(out, "restored: router {router}'s config now equals {name}");
    } else {
        let _ = writeln!(
            out,
            "loaded, but {} line(s) differ from the backup (VyOS skips what it cannot set):\n{}",
            left.changes(),
            left.text
        );
    }
    // The operator puts its own rules back on top at once, as after any change by hand.
    let routers: Api<VyosRouter> = Api::all(env.client.clone());
    let stamp = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: stamp}}});
    match routers
        .patch(router, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => {
            let _ = writeln!(
                out,
                "the operator now re-writes the rules it owns that the backup lacks or has otherwise \
                 (a pass was requested); to keep it off, pause the router first (annotation vmnet.dev/paused)"
            );
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "could not request a pass ({e}): the operator re-writes its rules at its next drift check"
            );
        }
    }
    Ok(out)
}

fn to_json(b: &Backup) -> serde_json::Value {
    json!({
        "name": b.name,
        "router": b.router,
        "takenAt": time(b.taken_ms),
        "lastSeen": time(b.seen_ms),
        "bytes": b.size,
        "sha256": b.sha256,
        "reason": b.reason,
        "vyosVersion": b.version,
    })
}

fn time(ms: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn lines(v: &[String]) -> String {
    let mut s = String::new();
    for l in v {
        s.push_str(l);
        s.push('\n');
    }
    s
}
