//! The command line: `vmnet-operator run | plan | check | backup | crd | version`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::crdgen;

/// Gives virtual machines their network identity on a VyOS router.
#[derive(Parser, Debug)]
#[command(name = "vmnet-operator", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator: watch the custom resources and converge the routers.
    Run(Box<RunArgs>),
    /// Show what the next pass would do to each router (reads only; never writes).
    Plan(PlanArgs),
    /// Test a router before applying anything: reachable, TLS, API key, version, NAT rules in
    /// the owned range, DHCP mappings, commit-confirm, save (reads only; exit 1 on a FAIL).
    Check(CheckArgs),
    /// Routers' config backups: list, show, diff, take one now, restore one.
    Backup(BackupArgs),
    /// Print the CustomResourceDefinitions (or write one file per kind).
    Crd(CrdArgs),
    /// Print the version.
    Version,
}

/// Options of `run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Where /healthz, /readyz and /metrics listen.
    #[arg(long, env = "VMNET_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: std::net::SocketAddr,
    /// Watch VmNetworks and PortRules of this namespace only (default: all namespaces).
    #[arg(long, env = "VMNET_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Only VyosRouters, IpPools and PortPools matching this label selector (e.g.
    /// `site=ams`), to shard routers across several deployments.
    #[arg(long, env = "VMNET_SELECTOR")]
    pub selector: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, env = "VMNET_LEASE_NAME", default_value = "vmnet-operator")]
    pub lease_name: String,
    /// Namespace of the leader-election Lease (in a Pod: its own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease (in a Pod: its name). Default: host name and a
    /// random suffix.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Lease duration: a dead leader is replaced after at most this many seconds.
    #[arg(long, env = "VMNET_LEASE_SECONDS", default_value_t = 15)]
    pub lease_seconds: u64,
    /// Changes arriving within this many milliseconds go to a router in one commit.
    #[arg(long, env = "VMNET_DEBOUNCE_MS", default_value_t = 300)]
    pub debounce_ms: u64,
    /// At most this many set/delete operations per configure request (one commit each).
    #[arg(long, env = "VMNET_MAX_OPS_PER_COMMIT", default_value_t = 2000)]
    pub max_ops_per_commit: usize,
    /// At most this many reconciles of one kind at a time (the apiserver's load stays
    /// bounded whatever the number of objects).
    #[arg(long, env = "VMNET_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// Aim for configure requests of about this many seconds: after a first request of at
    /// most 500 ops, requests are sized from the router's measured pace (VyOS's proxy gives
    /// up after 600 s).
    #[arg(long, env = "VMNET_REQUEST_BUDGET_SECONDS", default_value_t = 60)]
    pub request_budget_seconds: u64,
    /// Drift-check interval of routers whose spec sets none (e.g. 30s, 5m, 1h).
    #[arg(long, env = "VMNET_DRIFT_INTERVAL", default_value = "5m", value_parser = parse_interval)]
    pub drift_interval: std::time::Duration,
    /// Deadline of each request to a router, in seconds.
    #[arg(long, env = "VMNET_ROUTER_TIMEOUT_SECONDS", default_value_t = 30)]
    pub router_timeout_seconds: u64,
    /// Log format.
    #[arg(long, env = "VMNET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Namespaces whose Secrets may hold router API keys (comma-separated). The operator
    /// reads and watches Secrets only there; a VyosRouter whose credentialsSecretRef points
    /// elsewhere is Stalled. Absent: any namespace (needs a cluster-wide right to read
    /// Secrets; the Helm chart always sets this).
    #[arg(long, env = "VMNET_CREDENTIALS_NAMESPACES", value_delimiter = ',')]
    pub credentials_namespaces: Option<Vec<String>>,
    /// Where router config backups are kept, as Secrets (default: the Lease's namespace,
    /// POD_NAMESPACE in the chart). The operator needs to create, list, patch and delete
    /// Secrets there.
    #[arg(long, env = "VMNET_BACKUP_NAMESPACE")]
    pub backup_namespace: Option<String>,
}

/// Log output.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    crate::writer::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration such as 30s, 5m or 1h30m"))
}

impl RunArgs {
    /// The options of [`crate::run::operate`].
    pub fn options(&self) -> crate::run::Options {
        let identity = self.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "vmnet-operator".into());
            format!("{host}-{:08x}", rand::random::<u32>())
        });
        crate::run::Options {
            settings: crate::context::Settings {
                debounce: std::time::Duration::from_millis(self.debounce_ms),
                max_ops_per_commit: self.max_ops_per_commit,
                concurrency: self.concurrency.max(1),
                request_budget: std::time::Duration::from_secs(self.request_budget_seconds.max(1)),
                default_drift_interval: self.drift_interval,
                router_timeout: std::time::Duration::from_secs(self.router_timeout_seconds),
                namespace: self.namespace.clone(),
                selector: self.selector.clone(),
                credentials_namespaces: self.credentials_namespaces.clone().map(|v| {
                    v.into_iter()
                        .map(|n| n.trim().to_owned())
                        .filter(|n| !n.is_empty())
                        .collect()
                }),
                backup_namespace: self.backup_namespace.clone(),
            },
            lease_name: self.lease_name.clone(),
            lease_namespace: self.lease_namespace.clone(),
            identity,
            lease_seconds: self.lease_seconds,
            admin_addr: Some(self.admin_addr),
        }
    }
}

fn run_operator(args: &RunArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,kube=warn,kube_lease_manager=warn")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("connecting to Kubernetes (in-cluster config or KUBECONFIG)")?;
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(t) => t,
                        Err(_) => {
                            let _ = ctrl_c.await;
                            return;
                        }
                    };
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = ctrl_c.await;
        };
        crate::run::operate(client, args.options(), shutdown).await
    })
}

/// Options of `plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// Only this VyosRouter.
    #[arg(long)]
    pub router: Option<String>,
    /// `text` (one line per rule, Terraform-style) or `json`.
    #[arg(long, short = 'o', value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
    /// Manifests not yet applied (files or directories), laid over what the cluster holds:
    /// what applying them would do to the routers.
    #[arg(long, short = 'f', value_name = "FILE|DIR")]
    pub filename: Vec<PathBuf>,
    /// With `-f`: VmNetworks and standalone PortRules in the manifests' namespaces that
    /// the manifests do not contain count as deleted.
    #[arg(long, requires = "filename")]
    pub prune: bool,
    /// Exit 0 when nothing is to do, 2 when changes are pending, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Namespaces whose Secrets may hold router API keys, as the operator's flag (default:
    /// any the caller may read).
    #[arg(long, value_delimiter = ',')]
    pub credentials_namespaces: Option<Vec<String>>,
    /// Deadline of each request to a router, in seconds.
    #[arg(long, default_value_t = 30)]
    pub router_timeout_seconds: u64,
}

/// Output of `plan`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanOutput {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// What a one-shot command (`plan`, `check`) needs: warnings on stderr (stdout is its
/// report), the TLS provider, and a runtime.
fn one_shot_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run_plan(args: &PlanArgs) -> anyhow::Result<i32> {
    let rt = one_shot_runtime()?;
    let req = crate::preview::Request {
        router: args.router.clone(),
        files: args.filename.clone(),
        prune: args.prune,
        credentials_namespaces: args.credentials_namespaces.clone(),
        timeout: std::time::Duration::from_secs(args.router_timeout_seconds.max(1)),
    };
    let plans = rt.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("connecting to Kubernetes (KUBECONFIG or in-cluster config)")?;
        crate::preview::plans(client, &req).await
    })?;
    let text = match args.output {
        PlanOutput::Text => crate::preview::to_text(&plans),
        PlanOutput::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&crate::preview::to_json(&plans))?
        ),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    let code = crate::preview::exit_code(&plans);
    Ok(if args.detailed_exitcode {
        code
    } else {
        i32::from(code == 1)
    })
}

/// Options of `check`: a VyosRouter of the cluster, or `--endpoint` and `--key-file` alone.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["router", "endpoint"])))]
pub struct CheckArgs {
    /// The VyosRouter to check: its endpoint, TLS settings, rule range and API-key Secret are
    /// read with the kubeconfig.
    #[arg(value_name = "ROUTER")]
    pub router: Option<String>,
    /// Check this endpoint instead (no cluster needed), e.g. `https://192.0.2.1`.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "router",
        requires = "key_file"
    )]
    pub endpoint: Option<String>,
    /// With `--endpoint`: the file that holds the API key.
    #[arg(long, value_name = "FILE", requires = "endpoint")]
    pub key_file: Option<PathBuf>,
    /// With `--endpoint`: PEM CA certificates to trust instead of the system's roots.
    #[arg(long, value_name = "FILE", requires = "endpoint")]
    pub ca_file: Option<PathBuf>,
    /// With `--endpoint`: do not verify the router's certificate.
    #[arg(long, requires = "endpoint", conflicts_with = "ca_file")]
    pub insecure_skip_verify: bool,
    /// With `--endpoint`: accept an `http://` endpoint (test peers such as vyos-sim).
    #[arg(long, requires = "endpoint")]
    pub plain_http: bool,
    /// With `--endpoint`: the rule range the VyosRouter will own, e.g. `1000-1999`.
    #[arg(long, value_name = "START-END", requires = "endpoint",
          value_parser = crate::check::parse_rule_range)]
    pub rule_range: Option<vmnet_api::RuleRange>,
    /// `text` (one line per check) or `json`.
    #[arg(long, short = 'o', value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
    /// Deadline of each request to the router, in seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout_seconds: u64,
}

fn run_check(args: &CheckArgs) -> anyhow::Result<i32> {
    let rt = one_shot_runtime()?;
    let timeout = std::time::Duration::from_secs(args.timeout_seconds.max(1));
    let report = rt.block_on(async {
        let target = match (&args.router, &args.endpoint) {
            (Some(router), _) => {
                let client = kube::Client::try_default()
                    .await
                    .context("connecting to Kubernetes (KUBECONFIG or in-cluster config)")?;
                crate::check::router_target(client, router, timeout).await?
            }
            (None, Some(endpoint)) => {
                let flags = crate::check::Flags {
                    endpoint: endpoint.clone(),
                    key_file: args.key_file.clone().unwrap_or_default(),
                    ca_file: args.ca_file.clone(),
                    insecure_skip_verify: args.insecure_skip_verify,
                    plain_http: args.plain_http,
                    rule_range: args.rule_range,
                };
                crate::check::flags_target(&flags, timeout)?
            }
            (None, None) => anyhow::bail!("name a VyosRouter, or give --endpoint"),
        };
        Ok::<_, anyhow::Error>(crate::check::run(&target).await)
    })?;
    let text = match args.output {
        PlanOutput::Text => report.to_text(),
        PlanOutput::Json => format!("{}\n", serde_json::to_string_pretty(&report.to_json())?),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(report.exit_code())
}

/// Options of `backup`.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The namespace where the operator keeps backups (its own).
    #[arg(
        long,
        short = 'n',
        env = "VMNET_BACKUP_NAMESPACE",
        default_value = "vmnet-system",
        global = true
    )]
    pub namespace: String,
    /// Deadline of each request to a router, in seconds.
    #[arg(long, default_value_t = 30, global = true)]
    pub timeout_seconds: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: BackupCommand,
}

/// The `backup` subcommands.
#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// List backups, newest first.
    List {
        /// Only this VyosRouter's.
        #[arg(long)]
        router: Option<String>,
        /// `text` or `json`.
        #[arg(long, short = 'o', value_enum, default_value_t = PlanOutput::Text)]
        output: PlanOutput,
    },
    /// Print one backup.
    Show {
        /// The backup (a name from `backup list`).
        name: String,
        /// `commands` (sorted `set` lines), `json` (metadata and `set` lines) or `config`
        /// (the config text as the router gave it).
        #[arg(long, value_enum, default_value_t = crate::backup_cmd::ShowFormat::Commands)]
        format: crate::backup_cmd::ShowFormat,
    },
    /// A unified diff of the `set` lines of two backups, or of a backup and the router's
    /// live config, with the change count.
    Diff {
        /// The first backup.
        a: String,
        /// The second backup.
        #[arg(required_unless_present = "live", conflicts_with = "live")]
        b: Option<String>,
        /// Compare with the router's live config instead.
        #[arg(long)]
        live: bool,
        /// With `--live`: this VyosRouter (default: the one the backup is of).
        #[arg(long, requires = "live")]
        router: Option<String>,
    },
    /// Take a backup of a router now (same store and retention as the schedule).
    Now {
        /// The VyosRouter.
        router: String,
    },
    /// Load a backup onto a router. Prints the diff against the live config and changes
    /// nothing unless `--confirm RESTORE` is given.
    Restore {
        /// The backup.
        name: String,
        /// The VyosRouter to load it onto.
        #[arg(long)]
        router: String,
        /// `RESTORE`, to really load it (the whole config is replaced and committed).
        #[arg(long, value_name = "RESTORE")]
        confirm: Option<String>,
        /// Load this config file already on the router instead of sending the backup's
        /// text (what VyOS 1.4 needs: it loads only files on the router).
        #[arg(long, value_name = "PATH")]
        file: Option<String>,
    },
}

fn run_backup(args: &BackupArgs) -> anyhow::Result<()> {
    let rt = one_shot_runtime()?;
    let text = rt.block_on(async {
        let env = crate::backup_cmd::Env {
            client: kube::Client::try_default()
                .await
                .context("connecting to Kubernetes (KUBECONFIG or in-cluster config)")?,
            namespace: args.namespace.clone(),
            timeout: std::time::Duration::from_secs(args.timeout_seconds.max(1)),
        };
        use crate::backup_cmd as b;
        match &args.command {
            BackupCommand::List { router, output } => {
                b::list(&env, router.as_deref(), *output == PlanOutput::Json).await
            }
            BackupCommand::Show { name, format } => b::show(&env, name, *format).await,
            BackupCommand::Diff {
                a,
                b: other,
                router,
                ..
            } => b::diff_cmd(&env, a, other.as_deref(), router.as_deref()).await,
            BackupCommand::Now { router } => b::now(&env, router).await,
            BackupCommand::Restore {
                name,
                router,
                confirm,
                file,
            } => b::restore(&env, name, router, confirm.as_deref(), file.as_deref()).await,
        }
    })?;
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

/// Options of `crd`.
#[derive(clap::Args, Debug)]
pub struct CrdArgs {
    /// Write one file per kind into this directory instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// What to produce: the CRDs as YAML, or the field reference as Markdown.
    #[arg(long, value_enum, default_value_t = CrdFormat::Yaml)]
    pub format: CrdFormat,
}

/// Output of `crd`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrdFormat {
    /// The CRDs, as `kubectl apply -f` takes them.
    Yaml,
    /// A Markdown reference of every field (docs/api-reference.md).
    Markdown,
    /// The Helm chart's CRD templates (charts/vmnet-operator/templates/crds/).
    Helm,
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Run(args) => run_operator(&args),
            Command::Plan(args) => {
                let code = run_plan(&args)?;
                if code != 0 {
                    std::process::exit(code);
                }
                Ok(())
            }
            Command::Check(args) => {
                let code = run_check(&args)?;
                if code != 0 {
                    std::process::exit(code);
                }
                Ok(())
            }
            Command::Backup(args) => run_backup(&args),
            Command::Crd(args) => run_crd(&args),
            Command::Version => {
                println!("vmnet-operator {}", env!("CARGO_PKG_VERSION"));
                Ok(())
            }
        }
    }
}

fn run_crd(args: &CrdArgs) -> anyhow::Result<()> {
    match (args.format, &args.out_dir) {
        (CrdFormat::Yaml, None) => {
            std::io::stdout().write_all(crdgen::all_yaml()?.as_bytes())?;
        }
        (CrdFormat::Yaml, Some(dir)) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (file, yaml) in crdgen::files()? {
                let path = dir.join(file);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        (CrdFormat::Markdown, None) => {
            std::io::stdout().write_all(crdgen::reference_markdown()?.as_bytes())?;
        }
        (CrdFormat::Helm, dir) => {
            let dir = dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("charts/vmnet-operator/templates/crds"));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (file, yaml) in crdgen::chart_files()? {
                let path = dir.join(file);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        (CrdFormat::Markdown, Some(dir)) => {
            let path = dir.join("api-reference.md");
            std::fs::write(&path, crdgen::reference_markdown()?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
