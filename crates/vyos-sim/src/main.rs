//! `vyos-sim`: the VyOS HTTP API simulator as a program (see docs/vyos-sim.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use vyos_sim::{CostModel, Faults, SimOptions, Version};

/// A simulator of the VyOS HTTP API (a test and demo peer, not a router).
#[derive(Parser, Debug)]
#[command(name = "vyos-sim", version, about)]
struct Args {
    /// Address of the VyOS API.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Address of the admin endpoint (faults, counters, third-party edits).
    #[arg(long, default_value = "127.0.0.1:8444")]
    admin_listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS with a self-signed certificate.
    #[arg(long)]
    plain_http: bool,
    /// Write the self-signed certificate (PEM) here, for clients to trust.
    #[arg(long, value_name = "FILE")]
    tls_cert_out: Option<PathBuf>,
    /// An accepted API key (repeatable).
    #[arg(
        long = "api-key",
        value_name = "KEY",
        env = "VYOS_SIM_API_KEYS",
        value_delimiter = ',',
        required = true
    )]
    api_keys: Vec<String>,
    /// Keep the running and saved config in this file across restarts.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Which VyOS to play: 1.4 or 1.5.
    #[arg(long, default_value = "1.5")]
    vyos_version: Version,
    /// Cost model: instant, or realistic (commits take about a second plus a part per rule).
    #[arg(long, default_value = "instant", value_parser = ["instant", "realistic"])]
    cost: String,
    /// Multiply every cost by this (e.g. 0.1 for a router ten times faster).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Share of requests answered with HTTP 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Share of requests held past a client's timeout.
    #[arg(long, default_value_t = 0.0)]
    timeout_rate: f64,
    /// Share of connections reset before an answer.
    #[arg(long, default_value_t = 0.0)]
    reset_rate: f64,
    /// Extra milliseconds per commit.
    #[arg(long, default_value_t = 0)]
    commit_delay_ms: u64,
    /// Fail every commit.
    #[arg(long)]
    fail_commits: bool,
    /// Fail commits whose NAT rules contain this text.
    #[arg(long, value_name = "TEXT")]
    fail_commit_matching: Option<String>,
    /// VyOS's `service https request-body-size-limit` in MiB: larger requests get 413.
    #[arg(long, value_name = "MIB", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    request_body_size_limit: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let a = Args::parse();
    let mut cost = if a.cost == "realistic" {
        CostModel::realistic()
    } else {
        CostModel::instant()
    };
    cost.time_scale = a.time_scale;
    anyhow::ensure!(
        cost.is_valid(),
        "--time-scale {}: must be a finite number, 0 or more",
        a.time_scale
    );
    let opts = SimOptions {
        listen: a.listen,
        admin_listen: Some(a.admin_listen),
        tls: !a.plain_http,
        tls_cert_out: a.tls_cert_out,
        api_keys: a.api_keys,
        version: a.vyos_version,
        state_file: a.state,
        cost,
        faults: Faults {
            error_rate: a.error_rate,
            timeout_rate: a.timeout_rate,
            reset_rate: a.reset_rate,
            commit_delay_ms: a.commit_delay_ms,
            fail_commits: a.fail_commits,
            fail_commit_matching: a.fail_commit_matching,
            locked_by_cli: false,
            hang: false,
        },
        request_body_size_limit_mib: a.request_body_size_limit,
    };
    let sim = vyos_sim::start(opts).await?;
    tracing::info!(api = %sim.url(), admin = %sim.admin_url(), "vyos-sim (VyOS {}) ready", a.vyos_version.full());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    sim.stop().await;
    Ok(())
}
