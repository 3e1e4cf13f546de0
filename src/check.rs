//! `vmnet-operator check`: can the operator reach and use a router? The test a person runs
//! before applying anything.
//!
//! Eight checks in order (reachable, tls, api key, version, nat rules, dhcp mappings,
//! commit-confirm, save), one verdict each; a check that needs a failed one is skipped. The
//! router is read only: TCP connect, `GET /info`, `showConfig` of `nat` and `service
//! dhcp-server`, `show version` (1.4), and a `/config-file` request with an op VyOS refuses
//! before doing anything. Nothing is configured, committed or saved. See docs/check.md.
//!
//! The verdicts of the checks that look at what was read are pure functions (unit-tested
//! below); [`run`] does the I/O.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use vmnet_api::RuleRange;
use vmnet_plan::render::owner_of;
use vyos_client::nat::{NatKind, NatRule, parse_rules_owned};
use vyos_client::{ClientConfig, SecretString, VersionInfo, VyosClient, VyosError};

/// At most this many rule numbers are listed in a line; the rest are counted.
const LISTED: usize = 10;

/// What to check and how to reach it: from a VyosRouter and its Secret, or from flags.
#[derive(Debug, Clone)]
pub struct Target {
    /// What is checked, for the report (`VyosRouter edge-1`, or the endpoint).
    pub label: String,
    /// Where the settings came from: a VyosRouter's spec, or the command line.
    pub source: Source,
    /// The API base URL.
    pub endpoint: String,
    /// The API key, or why there is none (a missing Secret): then only the checks that
    /// need no key run.
    pub key: Result<SecretString, String>,
    /// PEM CA bundle to trust instead of the system's roots.
    pub ca_bundle: Option<String>,
    /// Do not verify the certificate.
    pub insecure_skip_verify: bool,
    /// An `http://` endpoint is accepted.
    pub plain_http: bool,
    /// The owned rule-number range, when known.
    pub rule_range: Option<RuleRange>,
    /// `spec.commitConfirmMinutes`.
    pub commit_confirm_minutes: Option<u32>,
    /// `spec.saveConfig`.
    pub save_config: Option<bool>,
    /// Deadline of each request.
    pub timeout: Duration,
}

/// Where a [`Target`]'s settings came from, so that advice names the right knob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A VyosRouter; its key from `Secret <namespace>/<name>`, data key `key`.
    Router {
        /// `namespace/name` of the Secret.
        secret: String,
        /// The data key.
        key: String,
    },
    /// `--endpoint` and friends; the key from this file.
    Flags {
        /// The key file.
        key_file: String,
        /// The CA file, if any.
        ca_file: Option<String>,
    },
}

impl Source {
    fn is_router(&self) -> bool {
        matches!(self, Source::Router { .. })
    }

    fn endpoint(&self) -> &'static str {
        if self.is_router() {
            "spec.endpoint"
        } else {
            "--endpoint"
        }
    }

    fn ca(&self) -> &'static str {
        if self.is_router() {
            "spec.tls.caBundle"
        } else {
            "--ca-file"
        }
    }

    fn skip_verify(&self) -> &'static str {
        if self.is_router() {
            "spec.tls.insecureSkipVerify"
        } else {
            "--insecure-skip-verify"
        }
    }

    fn plain_http(&self) -> &'static str {
        if self.is_router() {
            "spec.tls.insecurePlainHttp: true"
        } else {
            "--plain-http"
        }
    }

    fn range(&self) -> &'static str {
        if self.is_router() {
            "spec.ruleRange"
        } else {
            "--rule-range"
        }
    }

    fn key_advice(&self) -> String {
        match self {
            Source::Router { secret, key } => format!(
                "check Secret {secret} (data key {key:?}, spec.credentialsSecretRef) against \
                 the router's `service https api keys`"
            ),
            Source::Flags { key_file, .. } => {
                format!("check the key in {key_file} against the router's `service https api keys`")
            }
        }
    }
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Works.
    Ok,
    /// Works, but with a caveat worth knowing.
    Warn,
    /// Does not work: the operator would fail here.
    Fail,
    /// Not run: it needs a check that failed.
    Skipped,
}

impl Verdict {
    fn column(self) -> &'static str {
        match self {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "-   ",
        }
    }
}

/// One check's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Its name (`reachable`, `tls`, `api key`, ...).
    pub check: &'static str,
    /// Its outcome.
    pub verdict: Verdict,
    /// What was found, or what is wrong.
    pub detail: String,
    /// What to do about a `warn` or `FAIL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub todo: Option<String>,
    /// The figures behind the line, for programs.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub facts: Value,
}

impl Check {
    fn ok(check: &'static str, detail: impl Into<String>, facts: Value) -> Self {
        Check {
            check,
            verdict: Verdict::Ok,
            detail: detail.into(),
            todo: None,
            facts,
        }
    }

    fn warn(check: &'static str, detail: impl Into<String>, todo: impl Into<String>) -> Self {
        Check {
            check,
            verdict: Verdict::Warn,
            detail: detail.into(),
            todo: Some(todo.into()),
            facts: Value::Null,
        }
    }

    fn fail(check: &'static str, detail: impl Into<String>, todo: impl Into<String>) -> Self {
        Check {
            check,
            verdict: Verdict::Fail,
            detail: detail.into(),
            todo: Some(todo.into()),
            facts: Value::Null,
        }
    }

    fn skipped(check: &'static str, needs: &str) -> Self {
        Check {
            check,
            verdict: Verdict::Skipped,
            detail: format!("skipped: needs {needs}"),
            todo: None,
            facts: Value::Null,
        }
    }

    fn with(mut self, facts: Value) -> Self {
        self.facts = facts;
        self
    }
}

/// All checks of one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What was checked.
    pub target: String,
    /// Its endpoint.
    pub endpoint: String,
    /// No check failed.
    pub ok: bool,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

impl Report {
    fn new(target: &Target, checks: Vec<Check>) -> Self {
        Report {
            target: target.label.clone(),
            endpoint: target.endpoint.clone(),
            ok: !checks.iter().any(|c| c.verdict == Verdict::Fail),
            checks,
        }
    }

    /// One line per check: `ok   <check>: <detail>`, `FAIL <check>: <what> — <what to do>`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!("{} {}: {}", c.verdict.column(), c.check, c.detail));
            if let Some(todo) = &c.todo {
                out.push_str(&format!(" — {todo}"));
            }
            out.push('\n');
        }
        out
    }

    /// The report for programs.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// 0 when no check failed, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(!self.ok)
    }

    /// Replaces the key wherever a text might carry it (a router echoing a request body).
    fn scrub(mut self, key: &str) -> Self {
        if key.is_empty() {
            return self;
        }
        let clean = |s: &mut String| {
            if s.contains(key) {
                *s = s.replace(key, "[redacted]");
            }
        };
        for c in &mut self.checks {
            clean(&mut c.detail);
            if let Some(t) = &mut c.todo {
                clean(t);
            }
            if let Ok(mut text) = serde_json::to_string(&c.facts)
                && text.contains(key)
            {
                text = text.replace(key, "[redacted]");
                c.facts = serde_json::from_str(&text).unwrap_or(Value::Null);
            }
        }
        self
    }
}

/// The target a VyosRouter describes: its spec, and the key from its Secret (read with the
/// caller's kubeconfig). A Secret that cannot be read is no error here: the checks that need
/// no key still run, and `api key` says what is wrong.
pub async fn router_target(
    client: kube::Client,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<Target> {
    use anyhow::Context as _;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::Api;

    let routers: Api<vmnet_api::VyosRouter> = Api::all(client.clone());
    let router = routers
        .get_opt(name)
        .await
        .with_context(|| format!("reading VyosRouter {name:?}"))?
        .with_context(|| format!("no VyosRouter named {name:?}"))?;
    let spec = router.spec;
    let sref = &spec.credentials_secret_ref;
    let data_key = sref.key.clone().unwrap_or_else(|| "api-key".to_owned());
    let secret_name = format!("{}/{}", sref.namespace, sref.name);
    let secrets: Api<Secret> = Api::namespaced(client, &sref.namespace);
    let key = match secrets.get_opt(&sref.name).await {
        Ok(Some(s)) => s
            .data
            .as_ref()
            .and_then(|d| d.get(&data_key))
            .map(|b| String::from_utf8_lossy(&b.0).trim().to_owned())
            .filter(|k| !k.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| format!("Secret {secret_name} has no data key {data_key:?}")),
        Ok(None) => Err(format!(
            "Secret {secret_name} (spec.credentialsSecretRef) does not exist"
        )),
        Err(e) => Err(format!("Secret {secret_name} cannot be read: {e}")),
    };
    let tls = spec.tls.clone();
    Ok(Target {
        label: format!("VyosRouter {name}"),
        source: Source::Router {
            secret: secret_name,
            key: data_key,
        },
        endpoint: spec.endpoint.clone(),
        key,
        ca_bundle: tls.as_ref().and_then(|t| t.ca_bundle.clone()),
        insecure_skip_verify: tls.as_ref().and_then(|t| t.insecure_skip_verify) == Some(true),
        plain_http: tls.as_ref().and_then(|t| t.insecure_plain_http) == Some(true),
        rule_range: Some(spec.rule_range),
        commit_confirm_minutes: spec.commit_confirm_minutes,
        save_config: spec.save_config,
        timeout,
    })
}

/// What `--endpoint` and its companions describe (no cluster).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--endpoint`.
    pub endpoint: String,
    /// `--key-file`.
    pub key_file: std::path::PathBuf,
    /// `--ca-file`.
    pub ca_file: Option<std::path::PathBuf>,
    /// `--insecure-skip-verify`.
    pub insecure_skip_verify: bool,
    /// `--plain-http`.
    pub plain_http: bool,
    /// `--rule-range`.
    pub rule_range: Option<RuleRange>,
}

/// The target the flags describe; fails when a file cannot be read.
pub fn flags_target(f: &Flags, timeout: Duration) -> anyhow::Result<Target> {
    use anyhow::Context as _;
    let key = std::fs::read_to_string(&f.key_file)
        .with_context(|| format!("reading the key file {}", f.key_file.display()))?
        .trim()
        .to_owned();
    let ca_bundle = f
        .ca_file
        .as_ref()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("reading the CA file {}", p.display()))
        })
        .transpose()?;
    Ok(Target {
        label: f.endpoint.clone(),
        source: Source::Flags {
            key_file: f.key_file.display().to_string(),
            ca_file: f.ca_file.as_ref().map(|p| p.display().to_string()),
        },
        endpoint: f.endpoint.clone(),
        key: Ok(SecretString::from(key)),
        ca_bundle,
        insecure_skip_verify: f.insecure_skip_verify,
        plain_http: f.plain_http,
        rule_range: f.rule_range,
        commit_confirm_minutes: None,
        save_config: None,
        timeout,
    })
}

/// `1000-1999` as a rule range (`--rule-range`).
pub fn parse_rule_range(s: &str) -> Result<RuleRange, String> {
    let bad = || format!("{s:?} is not a rule range such as 1000-1999");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start: u32 = a.trim().parse().map_err(|_| bad())?;
    let end: u32 = b.trim().parse().map_err(|_| bad())?;
    if start < vmnet_api::router::VYOS_RULE_MIN
        || end > vmnet_api::router::VYOS_RULE_MAX
        || start > end
    {
        return Err(format!(
            "{s:?}: start and end must be within 1-999999, start not after end"
        ));
    }
    Ok(RuleRange { start, end })
}

/// Runs the checks against `target`. Reads only.
pub async fn run(target: &Target) -> Report {
    let key = target.key.as_ref().map(|k| k.expose().to_owned());
    let report = Report::new(target, checks(target).await);
    match key {
        Ok(k) => report.scrub(&k),
        Err(_) => report,
    }
}

async fn checks(t: &Target) -> Vec<Check> {
    let mut out = Vec::new();
    let rest_skipped = |out: &mut Vec<Check>, from: usize, needs: &str| {
        for name in NAMES.iter().skip(from) {
            out.push(Check::skipped(name, needs));
        }
    };

    // 1. reachable
    let (reach, addr) = reachable(t).await;
    let fatal = reach.verdict == Verdict::Fail;
    out.push(reach);
    if fatal {
        rest_skipped(&mut out, 1, "reachable");
        return out;
    }

    // 2. tls (and the first HTTP answer)
    let key = t.key.clone().unwrap_or_default();
    let mut cfg = ClientConfig::new(t.endpoint.clone(), key);
    cfg.ca_bundle_pem = t.ca_bundle.clone();
    cfg.insecure_skip_verify = t.insecure_skip_verify;
    cfg.timeout = t.timeout;
    cfg.read_retries = 0;
    let client = match VyosClient::new(cfg) {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::fail(
                "tls",
                format!("the client cannot be set up: {e}"),
                format!("fix {} (PEM certificates)", t.source.ca()),
            ));
            rest_skipped(&mut out, 2, "tls");
            return out;
        }
    };
    let tls = tls(t, &client, &addr).await;
    let fatal = tls.verdict == Verdict::Fail;
    out.push(tls);
    if fatal {
        rest_skipped(&mut out, 2, "tls");
        return out;
    }

    // 3. api key: a showConfig of `nat` (read again for the NAT check)
    let (key_check, nat) = api_key(t, &client).await;
    out.push(key_check);
    let Some(nat) = nat else {
        rest_skipped(&mut out, 3, "api key");
        return out;
    };

    // 4. version
    let version = match client.version().await {
        Ok(v) => {
            out.push(version_check(&v));
            Some(v)
        }
        Err(e) => {
            out.push(Check::fail(
                "version",
                format!("neither /info nor `show version` answered: {e}"),
                "check the router's API (`show log` on the router)",
            ));
            None
        }
    };

    // 5. nat rules
    out.push(match nat_tables(&nat) {
        Ok((dest, source)) => nat_check(&dest, &source, t.rule_range, &t.source),
        Err(e) => Check::fail(
            "nat rules",
            format!("the router's NAT config cannot be read: {e}"),
            "report this with the output of `show configuration json` of `nat`",
        ),
    });

    // 6. dhcp mappings
    out.push(match client.dhcp_server().await {
        Ok(s) => {
            let networks: std::collections::BTreeSet<&str> = s
                .mappings
                .keys()
                .map(|k| k.shared_network.as_str())
                .collect();
            dhcp_check(s.mappings.len(), networks.len(), s.disabled)
        }
        Err(e) => Check::fail(
            "dhcp mappings",
            format!("`service dhcp-server` cannot be read: {e}"),
            "check the router's API (`show log` on the router)",
        ),
    });

    // 7. commit-confirm
    out.push(match &version {
        Some(v) => commit_confirm_check(v, t.commit_confirm_minutes, &t.source),
        None => Check::skipped("commit-confirm", "version"),
    });

    // 8. save
    out.push(match client.config_file_available().await {
        Ok(there) => save_check(there, t.save_config, &t.source),
        Err(e) => Check::fail(
            "save",
            format!("/config-file did not answer as VyOS does: {e}"),
            "check the router's API (`show log` on the router)",
        ),
    });
    out
}

/// The checks, in order.
pub const NAMES: [&str; 8] = [
    "reachable",
    "tls",
    "api key",
    "version",
    "nat rules",
    "dhcp mappings",
    "commit-confirm",
    "save",
];

/// `host:port` of an endpoint, and whether it is `https`.
fn host_port(endpoint: &str) -> Result<(String, u16, bool), String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| format!("{endpoint:?} is not a URL: {e}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(format!(
                "{endpoint:?}: the scheme must be https:// or http://"
            ));
        }
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{endpoint:?} names no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    Ok((host, port, https))
}

async fn reachable(t: &Target) -> (Check, String) {
    let (host, port, _) = match host_port(&t.endpoint) {
        Ok(hp) => hp,
        Err(e) => {
            return (
                Check::fail(
                    "reachable",
                    e,
                    format!("set {} to https://<host>[:<port>]", t.source.endpoint()),
                ),
                String::new(),
            );
        }
    };
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let started = Instant::now();
    let connect = tokio::time::timeout(
        t.timeout,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await;
    let ms = started.elapsed().as_millis() as u64;
    let check = match connect {
        Ok(Ok(_)) => Check::ok(
            "reachable",
            format!("{addr} accepts TCP connections ({ms} ms)"),
            json!({"address": addr, "latencyMs": ms}),
        ),
        Ok(Err(e)) => Check::fail(
            "reachable",
            format!("cannot connect to {addr}: {e}"),
            format!(
                "check {} and that the router listens there (`service https`, its \
                 listen-address) and no firewall is in the way",
                t.source.endpoint()
            ),
        ),
        Err(_) => Check::fail(
            "reachable",
            format!("no TCP answer from {addr} within {} s", t.timeout.as_secs()),
            format!(
                "check {}, the route to the router and firewalls that drop packets",
                t.source.endpoint()
            ),
        ),
    };
    (check, addr)
}

async fn tls(t: &Target, client: &VyosClient, addr: &str) -> Check {
    let https = client.endpoint().scheme() == "https";
    if !https && !t.plain_http {
        return Check::fail(
            "tls",
            "the endpoint is plain http://: the API key would travel in clear text",
            format!(
                "use https://, or (test peers only) accept it with {}",
                t.source.plain_http()
            ),
        );
    }
    let started = Instant::now();
    let answer = client.info().await;
    let ms = started.elapsed().as_millis() as u64;
    let err = match answer {
        // Any HTTP answer means the connection (and its TLS) worked.
        Ok(_)
        | Err(
            VyosError::Auth { .. }
            | VyosError::Http { .. }
            | VyosError::Rejected { .. }
            | VyosError::MalformedResponse { .. },
        ) => {
            let facts = json!({"https": https, "verified": https && !t.insecure_skip_verify,
                               "latencyMs": ms});
            return if !https {
                Check::warn(
                    "tls",
                    format!("plain HTTP, no TLS: the API key travels in clear text (answered in {ms} ms)"),
                    "use https:// for a real router",
                )
                .with(facts)
            } else if t.insecure_skip_verify {
                Check::warn(
                    "tls",
                    format!("the certificate is NOT verified ({}): anyone on the path can read the API key (answered in {ms} ms)", t.source.skip_verify()),
                    format!("put the router's CA in {} and drop {}", t.source.ca(), t.source.skip_verify()),
                )
                .with(facts)
            } else {
                let against = match (&t.ca_bundle, &t.source) {
                    (None, _) => "the system's trust roots".to_owned(),
                    (
                        Some(_),
                        Source::Flags {
                            ca_file: Some(f), ..
                        },
                    ) => f.clone(),
                    (Some(_), _) => t.source.ca().to_owned(),
                };
                Check::ok(
                    "tls",
                    format!("certificate verified against {against} (answered in {ms} ms)"),
                    facts,
                )
            };
        }
        Err(e) => e,
    };
    if let Some(problem) = tls_problem(&err) {
        return tls_failure(problem, t, addr);
    }
    match err {
        VyosError::Timeout { .. } => Check::fail(
            "tls",
            format!(
                "{addr} accepts connections but sent no answer within {} s",
                t.timeout.as_secs()
            ),
            "check that this port serves the VyOS API (`service https`)",
        ),
        // A TLS server answers a plain HTTP request with a TLS alert, which is no HTTP.
        e if !https && chain(&e).contains("invalid HTTP version") => Check::fail(
            "tls",
            format!("{addr} speaks TLS, and the endpoint is plain http://"),
            format!("use https:// in {}", t.source.endpoint()),
        ),
        e if !https => Check::fail(
            "tls",
            format!("no HTTP answer over plain HTTP: {}", chain(&e)),
            "if the router serves HTTPS on this port (VyOS always does), use https://",
        ),
        e => Check::fail(
            "tls",
            format!("no answer over TLS: {}", chain(&e)),
            "check that this port serves the VyOS API (`service https`)",
        ),
    }
}

/// An error and its causes, `a: b: c` (reqwest's own text hides the cause).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(&format!(": {text}"));
        }
        cur = c.source();
    }
    out
}

/// Why a TLS handshake failed, as a person fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProblem {
    /// The certificate is signed by a CA that is not trusted.
    UnknownCa,
    /// The certificate does not name the host dialled (rustls's text says which it names).
    NameMismatch(String),
    /// Expired or not yet valid.
    Validity(String),
    /// The peer does not speak TLS (a plain-HTTP server).
    NotTls,
    /// Anything else, as rustls says it.
    Other(String),
}

/// The TLS problem behind a [`VyosError`], from the rustls error in its source chain (or,
/// a plain HTTP answer to an `http://` request, nginx's "plain HTTP request was sent to
/// HTTPS port" page, which means the port wants TLS).
fn tls_problem(err: &VyosError) -> Option<TlsProblem> {
    if let VyosError::Rejected { message } | VyosError::Http { message, .. } = err
        && message.contains("plain HTTP request was sent to HTTPS port")
    {
        return Some(TlsProblem::Other(
            "the router serves HTTPS on this port, and was sent plain HTTP".to_owned(),
        ));
    }
    if !matches!(err, VyosError::Tls { .. }) {
        return None;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut found = None;
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            found = Some(classify_rustls(t));
        }
        // `io::Error::source` skips the error it wraps; step into it instead.
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    Some(found.unwrap_or_else(|| TlsProblem::Other(err.to_string())))
}

/// Sorts a rustls error into what a person fixes.
pub fn classify_rustls(e: &rustls::Error) -> TlsProblem {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer | C::BadSignature => TlsProblem::UnknownCa,
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                TlsProblem::NameMismatch(e.to_string())
            }
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => TlsProblem::Validity(e.to_string()),
            _ => TlsProblem::Other(e.to_string()),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            TlsProblem::NotTls
        }
        _ => TlsProblem::Other(e.to_string()),
    }
}

fn tls_failure(problem: TlsProblem, t: &Target, addr: &str) -> Check {
    let trusted = match (&t.ca_bundle, &t.source) {
        (None, _) => "the system's trust roots".to_owned(),
        (
            Some(_),
            Source::Flags {
                ca_file: Some(f), ..
            },
        ) => format!("the CA in {f}"),
        (Some(_), _) => format!("the CA in {}", t.source.ca()),
    };
    let (detail, todo, kind) = match problem {
        TlsProblem::UnknownCa => (
            format!("unknown CA: the router's certificate is not signed by {trusted}"),
            format!(
                "put the router's CA (or its self-signed certificate) in {}",
                t.source.ca()
            ),
            "unknownCa",
        ),
        TlsProblem::NameMismatch(why) => (
            format!("certificate name mismatch: {why}"),
            format!(
                "dial a name the certificate carries in {}, or reissue the router's certificate \
                 with that name as a subject alternative name",
                t.source.endpoint()
            ),
            "nameMismatch",
        ),
        TlsProblem::Validity(why) => (
            format!("certificate not valid now: {why}"),
            "renew the router's certificate (and check both clocks)".to_owned(),
            "validity",
        ),
        TlsProblem::NotTls => (
            format!("{addr} does not speak TLS (a plain HTTP server?)"),
            format!(
                "point {} at the router's HTTPS port; use http:// only for a plain-HTTP test peer",
                t.source.endpoint()
            ),
            "notTls",
        ),
        TlsProblem::Other(why) => (
            format!("TLS failed: {why}"),
            "check the router's `service https` certificate settings".to_owned(),
            "other",
        ),
    };
    Check::fail("tls", detail, todo).with(json!({"problem": kind}))
}

async fn api_key(t: &Target, client: &VyosClient) -> (Check, Option<Value>) {
    match &t.key {
        Ok(k) if k.is_empty() => {
            return (
                Check::fail("api key", "the API key is empty", t.source.key_advice()),
                None,
            );
        }
        Err(why) => {
            return (
                Check::fail("api key", why.clone(), t.source.key_advice()),
                None,
            );
        }
        Ok(_) => {}
    }
    let started = Instant::now();
    let answer = client.show_config(&["nat".to_owned()]).await;
    let ms = started.elapsed().as_millis() as u64;
    let check = match &answer {
        Ok(_) => Check::ok(
            "api key",
            format!("accepted (showConfig answered in {ms} ms)"),
            json!({"latencyMs": ms}),
        ),
        Err(VyosError::Auth { status: 401, .. }) => Check::fail(
            "api key",
            "the router refused the API key (HTTP 401)",
            t.source.key_advice(),
        ),
        Err(VyosError::Auth { status, .. }) => Check::fail(
            "api key",
            format!("the router's HTTPS front end refused this client (HTTP {status})"),
            "allow this address on the router: `set service https allow-client address <cidr>`",
        ),
        Err(VyosError::Http {
            status: 404 | 405, ..
        }) => Check::fail(
            "api key",
            "the router has no REST API at this endpoint (HTTP 404)",
            "on VyOS 1.5: `set service https api rest`; and check the endpoint's path",
        ),
        Err(e) => Check::fail(
            "api key",
            format!("showConfig failed: {e}"),
            "check the router's API (`show log` on the router)",
        ),
    };
    (check, answer.ok())
}

fn version_check(v: &VersionInfo) -> Check {
    let via = if v.has_info_endpoint {
        "/info"
    } else {
        "show version"
    };
    let host = v
        .hostname
        .as_deref()
        .map(|h| format!("host {h}, "))
        .unwrap_or_default();
    let facts = json!({"version": v.version, "hostname": v.hostname, "hasInfoEndpoint": v.has_info_endpoint});
    if v.version.starts_with("1.4") || v.version.starts_with("1.5") {
        Check::ok(
            "version",
            format!("VyOS {} ({host}from {via})", v.version),
            facts,
        )
    } else {
        Check::warn(
            "version",
            format!(
                "VyOS {} ({host}from {via}) is neither 1.4 nor 1.5, the versions vmnet-operator \
                 is tested with",
                v.version
            ),
            "expect differences; see docs/real-vyos.md",
        )
        .with(facts)
    }
}

type Rules = BTreeMap<u32, NatRule>;

/// The destination and source rules of a `showConfig ["nat"]` answer.
fn nat_tables(nat: &Value) -> Result<(Rules, Rules), String> {
    let table = |kind: NatKind| {
        let data = nat.get(kind.as_str()).cloned().unwrap_or(Value::Null);
        parse_rules_owned(kind, data).map_err(|e| format!("nat {kind}: {e}"))
    };
    Ok((table(NatKind::Destination)?, table(NatKind::Source)?))
}

/// `1005, 1010 and 3 more`.
pub fn list_numbers(numbers: &[u32]) -> String {
    let shown: Vec<String> = numbers.iter().take(LISTED).map(u32::to_string).collect();
    let mut out = shown.join(", ");
    if numbers.len() > LISTED {
        out.push_str(&format!(" and {} more", numbers.len() - LISTED));
    }
    out
}

/// The NAT check: counts, and the destination rules inside the owned range without the
/// operator's marker (a PortRule given one of those numbers would be `Conflict`).
pub fn nat_check(dest: &Rules, source: &Rules, range: Option<RuleRange>, src: &Source) -> Check {
    let counts = format!("{} destination, {} source", dest.len(), source.len());
    let marked = |r: &NatRule| owner_of(r.description.as_deref()).is_some();
    let Some(range) = range else {
        let facts = json!({"destination": dest.len(), "source": source.len(), "range": null});
        return Check::ok(
            "nat rules",
            format!("{counts} (no {} given: ownership not checked)", src.range()),
            facts,
        );
    };
    let owned = dest
        .values()
        .filter(|r| range.contains(r.number) && marked(r))
        .count();
    let foreign: Vec<u32> = dest
        .values()
        .filter(|r| range.contains(r.number) && !marked(r))
        .map(|r| r.number)
        .collect();
    let marked_outside = dest
        .values()
        .filter(|r| !range.contains(r.number) && marked(r))
        .count();
    let facts = json!({
        "destination": dest.len(), "source": source.len(),
        "range": {"start": range.start, "end": range.end},
        "owned": owned, "foreignInRange": foreign, "markedOutsideRange": marked_outside,
    });
    let span = format!("{}-{}", range.start, range.end);
    let outside = if marked_outside > 0 {
        format!("; {marked_outside} outside it carry the marker (another VyosRouter's range?)")
    } else {
        String::new()
    };
    if foreign.is_empty() {
        Check::ok(
            "nat rules",
            format!("{counts}; owned range {span}: {owned} the operator's, none foreign{outside}"),
            facts,
        )
    } else {
        let n = foreign.len();
        Check::fail(
            "nat rules",
            format!(
                "{counts}; owned range {span}: {owned} the operator's, {n} without its marker \
                 ({}): a PortRule given one of those numbers would be Conflict{outside}",
                list_numbers(&foreign)
            ),
            format!("move or renumber them, or change {}", src.range()),
        )
        .with(facts)
    }
}

fn dhcp_check(mappings: usize, networks: usize, disabled: bool) -> Check {
    let facts = json!({"mappings": mappings, "sharedNetworks": networks, "disabled": disabled});
    let mut detail = match mappings {
        0 => "no static mappings".to_owned(),
        1 => "1 static mapping".to_owned(),
        n => format!("{n} static mappings"),
    };
    if mappings > 0 {
        detail.push_str(&format!(
            " in {networks} shared network{}",
            if networks == 1 { "" } else { "s" }
        ));
    }
    if disabled {
        detail.push_str(" (service dhcp-server is disabled)");
    }
    Check::ok("dhcp mappings", detail, facts)
}

/// Commit-confirm: 1.5 with `/info` has it; elsewhere the router ignores the timer (and
/// refuses the `confirm` that follows), so a spec asking for it cannot work.
pub fn commit_confirm_check(v: &VersionInfo, minutes: Option<u32>, src: &Source) -> Check {
    let facts = json!({"available": v.supports_commit_confirm(), "commitConfirmMinutes": minutes});
    if v.supports_commit_confirm() {
        let detail = match (minutes, src.is_router()) {
            (Some(m), _) => format!(
                "available; spec.commitConfirmMinutes: {m} (a change not confirmed within {m} \
                 min is reverted by a reboot to the saved config)"
            ),
            (None, true) => {
                "available; spec.commitConfirmMinutes not set: commits have no revert timer"
                    .to_owned()
            }
            (None, false) => "available (VyOS 1.5 with /info)".to_owned(),
        };
        return Check::ok("commit-confirm", detail, facts);
    }
    let why = if v.is_1_4() {
        "1.4 has no commit-confirm".to_owned()
    } else {
        format!(
            "VyOS {} has no /info, so no commit-confirm over the API",
            v.version
        )
    };
    match minutes {
        Some(m) => Check::warn(
            "commit-confirm",
            format!(
                "{why}, but spec.commitConfirmMinutes is {m}: the operator commits here without \
                 a revert timer (the router's Ready condition says so)"
            ),
            "remove spec.commitConfirmMinutes, or upgrade to a 1.5 with /info to have the timer",
        )
        .with(facts),
        None => Check::warn(
            "commit-confirm",
            format!("{why}: spec.commitConfirmMinutes has no effect"),
            "leave spec.commitConfirmMinutes unset on this router",
        )
        .with(facts),
    }
}

fn save_check(there: bool, save_config: Option<bool>, src: &Source) -> Check {
    let facts = json!({"endpoint": there, "saveConfig": save_config});
    if !there {
        let detail = "the router has no /config-file endpoint (HTTP 404): the config cannot be \
                      saved over the API";
        return if save_config == Some(true) {
            Check::fail(
                "save",
                detail,
                "set spec.saveConfig: false, or enable the router's API fully",
            )
            .with(facts)
        } else {
            Check::warn("save", detail, "save on the router by hand after changes").with(facts)
        };
    }
    let detail = match (save_config, src.is_router()) {
        (Some(true), _) => {
            "/config-file answers (not saved now); spec.saveConfig: true saves after each change"
        }
        (_, true) => {
            "/config-file answers (not saved now); spec.saveConfig not set: a reboot returns the \
             router to its last saved config"
        }
        (_, false) => "/config-file answers (not saved now)",
    };
    Check::ok("save", detail, facts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn router() -> Source {
        Source::Router {
            secret: "lab/router-api".into(),
            key: "api-key".into(),
        }
    }

    fn rule(n: u32, description: Option<&str>) -> (u32, NatRule) {
        let data = match description {
            Some(d) => json!({"rule": {n.to_string(): {"description": d,
                "translation": {"address": "10.0.0.1"}}}}),
            None => json!({"rule": {n.to_string(): {"translation": {"address": "10.0.0.1"}}}}),
        };
        let mut rules = parse_rules_owned(NatKind::Destination, data).unwrap();
        rules.pop_first().unwrap()
    }

    #[test]
    fn lists_at_most_ten_numbers() {
        assert_eq!(list_numbers(&[1, 2]), "1, 2");
        let many: Vec<u32> = (1..=13).collect();
        assert_eq!(
            list_numbers(&many),
            "1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 3 more"
        );
    }

    #[test]
    fn foreign_rules_in_the_range_fail_and_are_named() {
        let range = RuleRange {
            start: 1000,
            end: 1999,
        };
        let dest: Rules = [
            rule(10, None),
            rule(1000, Some("vmnet:lab/web")),
            rule(1005, Some("hand-made")),
            rule(1006, None),
            rule(2500, Some("vmnet:lab/other")),
        ]
        .into_iter()
        .collect();
        let c = nat_check(&dest, &Rules::new(), Some(range), &router());
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(
            c.detail
                .contains("1 the operator's, 2 without its marker (1005, 1006)"),
            "{}",
            c.detail
        );
        assert!(
            c.detail.contains("1 outside it carry the marker"),
            "{}",
            c.detail
        );
        assert_eq!(
            c.todo.as_deref(),
            Some("move or renumber them, or change spec.ruleRange")
        );
        assert_eq!(c.facts["foreignInRange"], json!([1005, 1006]));

        let clean: Rules = [rule(10, None), rule(1000, Some("vmnet:lab/web"))]
            .into_iter()
            .collect();
        let c = nat_check(&clean, &Rules::new(), Some(range), &router());
        assert_eq!(c.verdict, Verdict::Ok, "{}", c.detail);
        // Without a range, counts only.
        let c = nat_check(&dest, &Rules::new(), None, &router());
        assert_eq!(c.verdict, Verdict::Ok);
        assert!(
            c.detail.starts_with("5 destination, 0 source"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn commit_confirm_by_version_and_spec() {
        let v15 = VersionInfo {
            version: "1.5-rolling-202511240000".into(),
            hostname: None,
            has_info_endpoint: true,
        };
        let v14 = VersionInfo {
            version: "1.4.3".into(),
            hostname: None,
            has_info_endpoint: false,
        };
        assert_eq!(
            commit_confirm_check(&v15, Some(5), &router()).verdict,
            Verdict::Ok
        );
        let c = commit_confirm_check(&v14, None, &router());
        assert_eq!(c.verdict, Verdict::Warn);
        assert!(
            c.detail.starts_with("1.4 has no commit-confirm"),
            "{}",
            c.detail
        );
        assert_eq!(
            commit_confirm_check(&v14, Some(5), &router()).verdict,
            Verdict::Warn
        );
    }

    #[test]
    fn rustls_errors_are_told_apart() {
        use rustls::CertificateError as C;
        let cert = rustls::Error::InvalidCertificate;
        assert_eq!(
            classify_rustls(&cert(C::UnknownIssuer)),
            TlsProblem::UnknownCa
        );
        assert!(matches!(
            classify_rustls(&cert(C::NotValidForName)),
            TlsProblem::NameMismatch(_)
        ));
        assert!(matches!(
            classify_rustls(&cert(C::Expired)),
            TlsProblem::Validity(_)
        ));
        assert_eq!(
            classify_rustls(&rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType
            )),
            TlsProblem::NotTls
        );
    }

    #[test]
    fn endpoints_split_into_host_and_port() {
        assert_eq!(
            host_port("https://192.0.2.1").unwrap(),
            ("192.0.2.1".into(), 443, true)
        );
        assert_eq!(
            host_port("http://[::1]:8080/").unwrap(),
            ("::1".into(), 8080, false)
        );
        assert!(host_port("ftp://x").is_err());
        assert!(host_port("not a url").is_err());
    }

    #[test]
    fn text_has_one_line_per_check_and_the_key_is_scrubbed() {
        let t = Target {
            label: "x".into(),
            source: router(),
            endpoint: "https://r".into(),
            key: Ok("sekrit".into()),
            ca_bundle: None,
            insecure_skip_verify: false,
            plain_http: false,
            rule_range: None,
            commit_confirm_minutes: None,
            save_config: None,
            timeout: Duration::from_secs(1),
        };
        let r = Report::new(
            &t,
            vec![
                Check::ok("reachable", "r:443 (1 ms)", Value::Null),
                Check::fail("api key", "echo sekrit", "fix"),
                Check::skipped("version", "api key"),
            ],
        )
        .scrub("sekrit");
        assert_eq!(
            r.to_text(),
            "ok   reachable: r:443 (1 ms)\nFAIL api key: echo [redacted] — fix\n-    version: skipped: needs api key\n"
        );
        assert_eq!(r.exit_code(), 1);
    }
}
