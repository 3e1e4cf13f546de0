//! Test harness for vmnet-operator's integration tests.
//!
//! Every integration test talks to a real kube-apiserver (with etcd and
//! kube-controller-manager). By default the harness starts the project's own control plane
//! (`hack/control-plane.sh up`, built from Go modules) once per test run and reuses it from
//! every test binary; `make test` stops it afterwards. When `VMNET_TEST_KUBECONFIG` names the
//! kubeconfig of an existing cluster (kind, k3s, a real one), the tests run there instead.
//!
//! Each test gets a fresh namespace from [`TestNamespace::new`]. When the test panics, the
//! namespace's objects and Events are printed before the namespace is deleted, so a failure
//! says what the cluster looked like.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// The environment variable that points the tests at an existing cluster.
pub const KUBECONFIG_ENV: &str = "VMNET_TEST_KUBECONFIG";
/// The label every test namespace carries, so leftovers are easy to find and delete.
pub const TEST_LABEL: &str = "vmnet.dev/test";

/// Where the control plane for this test run is.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// Directory with the built `kubectl`, `helm` and `helm4`, when the project's control plane
    /// is used.
    pub bin_dir: Option<PathBuf>,
    /// True when the tests run against a cluster named by `VMNET_TEST_KUBECONFIG`.
    pub external: bool,
}

static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn start_control_plane() -> anyhow::Result<ControlPlane> {
    if let Some(path) = std::env::var_os(KUBECONFIG_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "{KUBECONFIG_ENV}={} does not name a readable kubeconfig file",
                path.display()
            );
        }
        return Ok(ControlPlane {
            kubeconfig: path,
            bin_dir: None,
            external: true,
        });
    }
    let script = repo_root().join("hack/control-plane.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("up")
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "could not start the local control plane:\n{}\n\
             Build it first with `make control-plane` (or `hack/control-plane.sh build`), \
             or set {KUBECONFIG_ENV} to an existing cluster's kubeconfig.",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let kubeconfig = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(|l| PathBuf::from(l.trim()))
        .context("hack/control-plane.sh up printed no kubeconfig path")?;
    let bin = Command::new("bash").arg(&script).arg("bin-dir").output()?;
    let bin_dir = PathBuf::from(String::from_utf8_lossy(&bin.stdout).trim());
    Ok(ControlPlane {
        kubeconfig,
        bin_dir: Some(bin_dir),
        external: false,
    })
}

/// The control plane for this test run, started on first use.
///
/// # Panics
/// When no control plane can be had; the message names the command that fixes it.
#[allow(clippy::panic)]
pub fn control_plane() -> &'static ControlPlane {
    let cp = CONTROL_PLANE.get_or_init(|| start_control_plane().map_err(|e| format!("{e:#}")));
    match cp {
        Ok(cp) => cp,
        Err(e) => panic!("{e}"),
    }
}

/// The rustls crypto provider must be chosen once per process when several are linked in.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A kube `Config` for the admin user of the test cluster.
pub async fn admin_config() -> anyhow::Result<Config> {
    install_crypto_provider();
    let cp = control_plane();
    let kc = Kubeconfig::read_from(&cp.kubeconfig)
        .with_context(|| format!("reading {}", cp.kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(config)
}

/// A client for the admin user (on the project's control plane: `system:masters`).
pub async fn admin_client() -> anyhow::Result<Client> {
    Ok(Client::try_from(admin_config().await?)?)
}

/// A client that impersonates `user` in `groups` (RBAC applies to it as to that user).
pub async fn impersonating_client(user: &str, groups: &[&str]) -> anyhow::Result<Client> {
    let mut config = admin_config().await?;
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups = Some(groups.iter().map(|g| (*g).to_owned()).collect());
    Ok(Client::try_from(config)?)
}

/// Runs the built kubectl (or the one on PATH against an external cluster) with the test
/// cluster's kubeconfig, and returns its standard output.
pub fn kubectl(args: &[&str]) -> anyhow::Result<String> {
    tool("kubectl", args, None)
}

/// Runs the built helm (or the one on PATH against an external cluster) with the test
/// cluster's kubeconfig, and returns its standard output.
pub fn helm(args: &[&str]) -> anyhow::Result<String> {
    tool("helm", args, None)
}

/// Runs the built Helm 4 (`helm4`, built next to `helm` by `hack/control-plane.sh build`; or
/// the `helm4` on PATH against an external cluster) with the test cluster's kubeconfig, and
/// returns its standard output.
pub fn helm4(args: &[&str]) -> anyhow::Result<String> {
    tool("helm4", args, None)
}

/// Runs kubectl with `input` on its standard input.
pub fn kubectl_with_input(args: &[&str], input: &str) -> anyhow::Result<String> {
    tool("kubectl", args, Some(input))
}

fn tool(name: &str, args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write as _;
    let cp = control_plane();
    let bin = cp
        .bin_dir
        .as_ref()
        .map(|d| d.join(name))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name));
    let mut child = Command::new(&bin)
        .arg("--kubeconfig")
        .arg(&cp.kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.unwrap_or_default().as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{name} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A namespace that exists for one test. Dropped, it is deleted (the namespace controller
/// then removes its content); if the test is panicking, its content is printed first.
pub struct TestNamespace {
    name: String,
    client: Client,
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish()
    }
}

impl TestNamespace {
    /// Creates `vmnet-test-<prefix>-<random>` and hands back an admin client.
    pub async fn new(prefix: &str) -> anyhow::Result<Self> {
        let client = admin_client().await?;
        let suffix: u32 = rand::random();
        let name = format!("vmnet-test-{prefix}-{suffix:08x}");
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": name, "labels": { TEST_LABEL: "true" } }
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(Self { name, client })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An admin client.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    fn dump(&self) {
        eprintln!("---- objects and events in namespace {} ----", self.name);
        for what in [
            "vmnet",
            "all,configmaps,secrets,roles,rolebindings",
            "events",
        ] {
            match kubectl(&["get", what, "-n", &self.name, "-o", "wide"]) {
                Ok(out) if !out.trim().is_empty() => eprintln!("{out}"),
                Ok(_) => {}
                Err(e) => eprintln!("({what}: {e})"),
            }
        }
        if let Ok(out) = kubectl(&["get", "vmnet", "-n", &self.name, "-o", "yaml"]) {
            eprintln!("{out}");
        }
        eprintln!("---- end of namespace {} ----", self.name);
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
        if std::env::var_os("VMNET_TEST_KEEP_NAMESPACES").is_some() {
            eprintln!(
                "keeping namespace {} (VMNET_TEST_KEEP_NAMESPACES)",
                self.name
            );
            return;
        }
        // Operators run inside the tests and are gone by now, so nobody would remove their
        // finalizers and the namespace would hang in Terminating: drop them first.
        if let Ok(out) = kubectl(&[
            "get",
            "vmnetworks.vmnet.dev,portrules.vmnet.dev",
            "-n",
            &self.name,
            "-o",
            "name",
        ]) {
            for obj in out.lines().filter(|l| !l.is_empty()) {
                let _ = kubectl(&[
                    "patch",
                    "-n",
                    &self.name,
                    obj,
                    "--type=merge",
                    "-p",
                    r#"{"metadata":{"finalizers":null}}"#,
                ]);
            }
        }
        // Drop cannot await, and the test's runtime may be a blocked current-thread one that
        // drives `self.client`: delete from a short-lived thread with its own runtime and client.
        let name = self.name.clone();
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(client) = admin_client().await else {
                    return;
                };
                let api = Api::<Namespace>::all(client);
                let _ = api.delete(&name, &DeleteParams::background()).await;
            });
        });
        let _ = handle.join();
    }
}

static CRDS: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Installs (server-side applies) the CRDs generated from the current code, once per test
/// process, and waits until the API server serves them.
pub async fn install_crds() -> anyhow::Result<()> {
    CRDS.get_or_try_init(|| async {
        let client = admin_client().await?;
        let api: Api<CustomResourceDefinition> = Api::all(client);
        let pp = PatchParams::apply("vmnet-testkit").force();
        for (_, crd) in vmnet_api::crds() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(&name, &pp, &Patch::Apply(&crd))
                .await
                .with_context(|| format!("applying CRD {name}"))?;
        }
        for (_, crd) in vmnet_api::crds() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let cond = kube::runtime::conditions::is_crd_established();
            tokio::time::timeout(
                Duration::from_secs(30),
                kube::runtime::wait::await_condition(api.clone(), &name, cond),
            )
            .await
            .with_context(|| format!("CRD {name} not established within 30 s"))??;
        }
        anyhow::Ok(())
    })
    .await?;
    Ok(())
}
