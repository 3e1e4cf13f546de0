//! The async VyOS HTTP API client.
//!
//! Every request is a POST with a JSON body `{"key": ..., ...}` (accepted by 1.4 and
//! 1.5; the smallest encoding and free of the multipart part cap), except `GET /info`.
//! Answers are parsed as VyOS's JSON envelope whatever their `Content-Type`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tracing::{debug, warn};

use crate::error::{VyosError, classify_error_text};
use crate::nat::{self, ConfigOp, NatKind, NatRule};
use crate::secret::SecretString;
use crate::tls;
use crate::{dhcp, firewall};

/// How to reach one router.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://192.0.2.1` or `https://router:8443`. `http://` is used
    /// as plain HTTP.
    pub endpoint: String,
    /// The API key (`service https api keys id <id> key <key>`).
    pub api_key: SecretString,
    /// PEM CA bundle to trust instead of the system roots (the router's CA, or its
    /// self-signed certificate).
    pub ca_bundle_pem: Option<String>,
    /// Skip certificate verification altogether. Explicit opt-in; logged loudly.
    pub insecure_skip_verify: bool,
    /// Deadline for each HTTP request (connect, send, wait, read).
    pub timeout: Duration,
    /// How many times a failed read is retried (transient errors only). Writes are
    /// never retried.
    pub read_retries: u32,
    /// Called after every HTTP request with its endpoint (`configure`, `retrieve`, ...),
    /// its duration and whether the router answered (an answer that carries an error
    /// counts as answered), e.g. for a latency histogram.
    pub observer: Option<Observer>,
}

/// What an [`Observer`] is told: the endpoint, the request's duration, and whether the
/// router answered.
pub type ObserveFn = dyn Fn(&str, Duration, bool) + Send + Sync;

/// A callback for [`ClientConfig::observer`].
#[derive(Clone)]
pub struct Observer(pub std::sync::Arc<ObserveFn>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl ClientConfig {
    /// A config with verified TLS against system roots, a 60 s timeout and 3 read retries.
    pub fn new(endpoint: impl Into<String>, api_key: impl Into<SecretString>) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            api_key: api_key.into(),
            ca_bundle_pem: None,
            insecure_skip_verify: false,
            timeout: Duration::from_secs(60),
            read_retries: 3,
            observer: None,
        }
    }
}

/// What `/info` (1.5, mid-2025 on) or `show version` says about the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version string, e.g. `1.4.0` or `1.5-rolling-202507010024`.
    pub version: String,
    /// The host name, when known.
    pub hostname: Option<String>,
    /// Whether the router has `GET /info`, which arrived with commit-confirm over the
    /// API (T3955); the best available sign that `configure_confirm` works.
    pub has_info_endpoint: bool,
}

impl VersionInfo {
    /// Whether the version string reads as 1.4 (sagitta).
    pub fn is_1_4(&self) -> bool {
        self.version.starts_with("1.4")
    }

    /// Whether commit-confirm over the API is expected to work (1.5 with `/info`).
    /// On 1.4 `confirm_time` is silently ignored: the commit is made without a timer.
    pub fn supports_commit_confirm(&self) -> bool {
        self.has_info_endpoint && !self.is_1_4()
    }
}

/// Base of the retry backoff for reads; doubled per attempt, capped, with jitter.
const RETRY_BASE: Duration = Duration::from_millis(200);
const RETRY_CAP: Duration = Duration::from_secs(5);

/// An async client for one VyOS router's HTTP API. Cheap to clone (shares the
/// connection pool). Allows any number of reads; the caller keeps writes to one at
/// a time per router (VyOS serialises them on one lock).
#[derive(Debug, Clone)]
pub struct VyosClient {
    http: reqwest::Client,
    base: Url,
    key: SecretString,
    timeout: Duration,
    read_retries: u32,
    observer: Option<Observer>,
}

#[derive(Serialize)]
struct Command<'a> {
    op: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a [String]>,
}

impl VyosClient {
    /// Builds a client. Fails on a bad URL or CA bundle; does not contact the router.
    pub fn new(config: ClientConfig) -> Result<Self, VyosError> {
        let mut base = Url::parse(&config.endpoint)
            .map_err(|e| VyosError::Config(format!("endpoint {:?}: {e}", config.endpoint)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(VyosError::Config(format!(
                "endpoint {:?}: scheme must be https or http",
                config.endpoint
            )));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(VyosError::Config(
                "endpoint must not carry credentials; use api_key".to_owned(),
            ));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if config.insecure_skip_verify && base.scheme() == "https" {
            warn!(endpoint = %base, "TLS certificate verification is DISABLED for this VyOS router");
        }
        let tls = tls::client_config(config.ca_bundle_pem.as_deref(), config.insecure_skip_verify)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .http1_only()
            .user_agent(concat!(
                "vmnet-operator-vyos-client/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| VyosError::Config(format!("HTTP client: {e}")))?;
        Ok(VyosClient {
            http,
            base,
            key: config.api_key,
            timeout: config.timeout,
            read_retries: config.read_retries,
            observer: config.observer,
        })
    }

    /// The router's base URL.
    pub fn endpoint(&self) -> &Url {
        &self.base
    }

    /// Reads all rules of one NAT table: one `showConfig ["nat","<kind>"]` request
    /// (retried if transient). "Configuration under specified path is empty" is no rules.
    pub async fn nat_rules(&self, kind: NatKind) -> Result<BTreeMap<u32, NatRule>, VyosError> {
        let data = self.show_config(&kind.config_path()).await?;
        nat::parse_rules_owned(kind, data).map_err(|e| VyosError::MalformedResponse {
            message: format!("nat {kind}: {e}"),
        })
    }

    /// Reads every `firewall group network-group` (one request). None configured is an
    /// empty map.
    pub async fn network_groups(&self) -> Result<BTreeMap<String, nat::NetworkGroup>, VyosError> {
        let data = self.show_config(&nat::network_groups_path()).await?;
        nat::parse_network_groups(&data).map_err(|e| VyosError::MalformedResponse {
            message: e.to_string(),
        })
    }

    /// Reads `service dhcp-server` (one request): its static mappings, and what their
    /// commit checks need of the subnets. None configured is an empty server.
    pub async fn dhcp_server(&self) -> Result<dhcp::DhcpServer, VyosError> {
        let data = self.show_config(&dhcp::dhcp_server_path()).await?;
        dhcp::parse_server(&data).map_err(|e| VyosError::MalformedResponse {
            message: format!("service dhcp-server: {e}"),
        })
    }

    /// Reads `firewall ipv4 forward filter` (one request): its default action and rules.
    /// None configured is an empty chain (default action `accept`).
    pub async fn forward_filter(&self) -> Result<firewall::ForwardFilter, VyosError> {
        let data = self.show_config(&firewall::forward_filter_path()).await?;
        firewall::parse_forward_filter(&data).map_err(|e| VyosError::MalformedResponse {
            message: format!("firewall ipv4 forward filter: {e}"),
        })
    }

    /// `showConfig` of `path` (`[]` = the whole config, for backups) as JSON. An empty
    /// subtree gives `{}`.
    pub async fn show_config(&self, path: &[String]) -> Result<Value, VyosError> {
        let body = json!({"op": "showConfig", "path": path, "configFormat": "json"});
        match self.read("retrieve", body).await {
            Err(VyosError::Rejected { message }) if nat::is_empty_path_error(&message) => {
                Ok(Value::Object(Map::new()))
            }
            other => other,
        }
    }

    /// The whole running config as VyOS's curly text (`showConfig []` with `configFormat:
    /// "raw"`): what the API's config session prints, each line after a one-character
    /// diff column. Read it with [`config_text::parse`](crate::config_text::parse), or
    /// keep it as a backup a person can read.
    pub async fn running_config_text(&self) -> Result<String, VyosError> {
        let body = json!({"op": "showConfig", "path": [], "configFormat": "raw"});
        match self.read("retrieve", body).await? {
            Value::String(s) => Ok(s),
            other => Err(VyosError::MalformedResponse {
                message: format!("showConfig raw answered {}", snippet(&other.to_string())),
            }),
        }
    }

    /// `exists` of `path`.
    pub async fn exists(&self, path: &[String]) -> Result<bool, VyosError> {
        let data = self
            .read("retrieve", json!({"op": "exists", "path": path}))
            .await?;
        data.as_bool().ok_or_else(|| VyosError::MalformedResponse {
            message: format!("exists answered {data}"),
        })
    }

    /// The bytes of a `/configure` body besides its ops (the key, the wrapper and room for
    /// a `confirm_time`). With [`op_body_len`] for each op, this bounds the body from above
    /// (within a few bytes), so a caller can keep requests under the router's
    /// `request-body-size-limit`.
    pub fn configure_overhead(&self) -> usize {
        let empty = self.body_with_key(json!({"commands": [], "confirm_time": u32::MAX}));
        empty.to_string().len()
    }

    /// Applies `ops` in ONE `/configure` request, so one commit: all or nothing while
    /// the ops stay within one component (e.g. only `nat`). Never retried. Returns the
    /// commit output (1.5 warnings), if any. No ops, no request.
    pub async fn configure(&self, ops: &[ConfigOp]) -> Result<Option<String>, VyosError> {
        if ops.is_empty() {
            return Ok(None);
        }
        let data = self.write("configure", json!({"commands": ops})).await?;
        Ok(text_data(data))
    }

    /// As [`configure`](Self::configure), then starts VyOS 1.5's commit-confirm timer
    /// (`confirm_time`, minutes > 0): without [`confirm`](Self::confirm) in time, the
    /// router reverts (by default by rebooting to the saved config). 1.4 ignores the
    /// timer silently; check [`VersionInfo::supports_commit_confirm`] first.
    pub async fn configure_confirm(
        &self,
        ops: &[ConfigOp],
        minutes: u32,
    ) -> Result<Option<String>, VyosError> {
        if minutes == 0 {
            return Err(VyosError::Config("confirm minutes must be > 0".to_owned()));
        }
        let data = self
            .write(
                "configure",
                json!({"commands": ops, "confirm_time": minutes}),
            )
            .await?;
        Ok(text_data(data))
    }

    /// Confirms a pending commit-confirm (`{"op":"confirm"}` on `/configure`). With
    /// nothing pending VyOS still succeeds (`No confirm pending`).
    pub async fn confirm(&self) -> Result<String, VyosError> {
        let body = serde_json::to_value(Command {
            op: "confirm",
            path: None,
        })
        .map_err(malformed)?;
        let data = self.write("configure", body).await?;
        Ok(text_data(data).unwrap_or_default())
    }

    /// Whether the router has `/config-file` (where [`save`](Self::save) goes), found
    /// without saving: the request carries an op VyOS does not know, which 1.4 and 1.5
    /// refuse before doing anything (`'<op>' is not a valid operation`). `Ok(false)`: no
    /// such endpoint (404/405). Says nothing about whether a save would succeed.
    pub async fn config_file_available(&self) -> Result<bool, VyosError> {
        match self
            .read("config-file", json!({"op": "vmnet-probe-no-such-op"}))
            .await
        {
            Err(VyosError::Rejected { message })
                if message.contains("is not a valid operation") =>
            {
                Ok(true)
            }
            Err(VyosError::Http {
                status: 404 | 405, ..
            }) => Ok(false),
            Err(e) => Err(e),
            Ok(data) => Err(VyosError::MalformedResponse {
                message: format!("/config-file accepted an unknown op: {data}"),
            }),
        }
    }

    /// Saves the running config to boot (`/config-file` `save`). Returns VyOS's text.
    pub async fn save(&self) -> Result<String, VyosError> {
        let data = self.write("config-file", json!({"op": "save"})).await?;
        Ok(text_data(data).unwrap_or_default())
    }

    /// Replaces the whole running config with a config file already on the router and
    /// commits it (`/config-file` `{"op":"load","file":path}`; 1.4 and 1.5). A bare name
    /// is also looked for under `/config`. Paths the router's schema refuses are skipped
    /// silently (VyOS only prints them on a stream the API drops); a missing file is
    /// `Rejected` (`No such file '<path>'`), a refused commit `CommitFailed` with nothing
    /// changed. Never retried. Returns the commit's output (1.5), usually empty.
    pub async fn load_config_file(&self, path: &str) -> Result<String, VyosError> {
        let data = self
            .write("config-file", json!({"op": "load", "file": path}))
            .await?;
        Ok(text_data(data).unwrap_or_default())
    }

    /// Replaces the whole running config with `text` (VyOS's curly format, e.g. a
    /// backup from [`running_config_text`](Self::running_config_text)) and commits it:
    /// `/config-file` `{"op":"load","string":text}`, VyOS 1.5 from 2025 only (the router
    /// writes the text to `/tmp/config.file` and loads that). On 1.4, which loads only
    /// files already on the router, this is a `Config` error without sending the text
    /// (found with one [`version`](Self::version) call first). As
    /// [`load_config_file`](Self::load_config_file) otherwise.
    pub async fn load_config_string(&self, text: &str) -> Result<String, VyosError> {
        let version = self.version().await?;
        if version.is_1_4() {
            return Err(VyosError::Config(format!(
                "VyOS {} cannot load a config from a string: 1.4 loads only files already on the router (use load_config_file)",
                version.version
            )));
        }
        let data = self
            .write("config-file", json!({"op": "load", "string": text}))
            .await?;
        Ok(text_data(data).unwrap_or_default())
    }

    /// An op-mode `show` (`/show`), e.g. `["version"]`; returns its text.
    pub async fn show(&self, path: &[String]) -> Result<String, VyosError> {
        let data = self
            .read("show", json!({"op": "show", "path": path}))
            .await?;
        match data {
            Value::String(s) => Ok(s),
            other => Err(VyosError::MalformedResponse {
                message: format!("show answered {other}"),
            }),
        }
    }

    /// How long the router has been up: `show system uptime` (`/show
    /// ["system","uptime"]`), read with [`parse_uptime`](crate::parse_uptime). Whole
    /// seconds, as VyOS prints them; a smaller value than before means the router
    /// rebooted (and runs its saved config).
    pub async fn uptime(&self) -> Result<Duration, VyosError> {
        let text = self
            .show(&["system".to_owned(), "uptime".to_owned()])
            .await?;
        crate::parse_uptime(&text).ok_or_else(|| VyosError::MalformedResponse {
            message: format!(
                "show system uptime: no readable 'Uptime:' line in {:?}",
                snippet(&text)
            ),
        })
    }

    /// `GET /info?version=true&hostname=true` (1.5 from mid-2025; needs no key).
    /// `Ok(None)` when the router has no such endpoint (404/405).
    pub async fn info(&self) -> Result<Option<VersionInfo>, VyosError> {
        let mut url = self.url("info")?;
        url.set_query(Some("version=true&hostname=true"));
        let started = Instant::now();
        let result = self
            .with_retries("info", || async {
                let sent = Instant::now();
                let resp = self.http.get(url.clone()).send().await;
                let answer = self.answer("info", resp).await;
                self.observe("info", sent, &answer);
                answer
            })
            .await;
        debug!(
            endpoint = "info",
            elapsed_ms = started.elapsed().as_millis() as u64,
            ok = result.is_ok(),
            "VyOS request"
        );
        let data = match result {
            Ok(d) => d,
            Err(VyosError::Http {
                status: 404 | 405, ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let version = data.get("version").and_then(Value::as_str).ok_or_else(|| {
            VyosError::MalformedResponse {
                message: format!("/info has no version: {data}"),
            }
        })?;
        Ok(Some(VersionInfo {
            version: version.to_owned(),
            hostname: data
                .get("hostname")
                .and_then(Value::as_str)
                .map(str::to_owned),
            has_info_endpoint: true,
        }))
    }

    /// The router's version: `/info` when it exists, otherwise `show version` (1.4 and
    /// older 1.5 builds). Also proves the key works on the fallback path.
    pub async fn version(&self) -> Result<VersionInfo, VyosError> {
        if let Some(info) = self.info().await? {
            return Ok(info);
        }
        let text = self.show(&["version".to_owned()]).await?;
        parse_show_version(&text).ok_or_else(|| VyosError::MalformedResponse {
            message: "show version has no 'Version:' line".to_owned(),
        })
    }

    fn url(&self, endpoint: &str) -> Result<Url, VyosError> {
        self.base
            .join(endpoint)
            .map_err(|e| VyosError::Config(format!("endpoint URL: {e}")))
    }

    fn body_with_key(&self, mut body: Value) -> Value {
        if let Value::Object(m) = &mut body {
            m.insert(
                "key".to_owned(),
                Value::String(self.key.expose().to_owned()),
            );
        }
        body
    }

    async fn post(&self, endpoint: &str, body: &Value) -> Result<Value, VyosError> {
        let url = self.url(endpoint)?;
        let sent = Instant::now();
        let resp = self
            .http
            .post(url)
            .json(&self.body_with_key(body.clone()))
            .send()
            .await;
        let answer = self.answer(endpoint, resp).await;
        self.observe(endpoint, sent, &answer);
        answer
    }

    /// Tells the observer how a request went: answered unless the router could not be
    /// reached or did not answer in time.
    fn observe(&self, endpoint: &str, sent: Instant, answer: &Result<Value, VyosError>) {
        if let Some(Observer(f)) = &self.observer {
            let answered = !matches!(
                answer,
                Err(VyosError::Unreachable { .. } | VyosError::Timeout { .. })
            );
            f(endpoint, sent.elapsed(), answered);
        }
    }

    /// A read: retried on transient errors with exponential backoff and jitter.
    async fn read(&self, endpoint: &'static str, body: Value) -> Result<Value, VyosError> {
        let started = Instant::now();
        let result = self
            .with_retries(endpoint, || self.post(endpoint, &body))
            .await;
        debug!(
            endpoint,
            elapsed_ms = started.elapsed().as_millis() as u64,
            ok = result.is_ok(),
            "VyOS read"
        );
        result
    }

    /// A write: exactly one attempt.
    async fn write(&self, endpoint: &'static str, body: Value) -> Result<Value, VyosError> {
        let started = Instant::now();
        let ops = body
            .get("commands")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let result = self.post(endpoint, &body).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(_) => debug!(endpoint, ops, elapsed_ms, "VyOS write applied"),
            Err(e) => {
                warn!(endpoint, ops, elapsed_ms, category = e.category(), error = %e, "VyOS write failed")
            }
        }
        result
    }

    async fn with_retries<F, Fut>(&self, endpoint: &str, mut attempt: F) -> Result<Value, VyosError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Value, VyosError>>,
    {
        let mut n = 0;
        loop {
            match attempt().await {
                // A read that timed out is not tried again: it has used the whole
                // deadline already, and a retry would double the time before the caller
                // learns that the router does not answer.
                Err(e)
                    if e.is_transient()
                        && !matches!(e, VyosError::Timeout { .. })
                        && n < self.read_retries =>
                {
                    let delay = backoff(n);
                    debug!(endpoint, attempt = n + 1, delay_ms = delay.as_millis() as u64, error = %e, "retrying VyOS read");
                    tokio::time::sleep(delay).await;
                    n += 1;
                }
                other => return other,
            }
        }
    }

    async fn answer(
        &self,
        endpoint: &str,
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Value, VyosError> {
        let resp = resp.map_err(|e| self.transport(e))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| self.transport(e))?;
        let body = self.scrub(&body);
        interpret(endpoint, status, &body)
    }

    /// Removes the API key from any text the router sends back (validation errors
    /// may echo the request body).
    fn scrub(&self, text: &str) -> String {
        let key = self.key.expose();
        if key.is_empty() {
            text.to_owned()
        } else {
            text.replace(key, "[redacted]")
        }
    }

    fn transport(&self, e: reqwest::Error) -> VyosError {
        if let Some(message) = tls::tls_cause(&e) {
            return VyosError::Tls { message, source: e };
        }
        if e.is_timeout() {
            return VyosError::Timeout {
                after: self.timeout,
                source: e,
            };
        }
        VyosError::Unreachable {
            connect: e.is_connect(),
            source: e,
        }
    }
}

/// The bytes `op` adds to a `/configure` body: its compact JSON and a separator.
pub fn op_body_len(op: &ConfigOp) -> usize {
    serde_json::to_string(op).map_or(0, |t| t.len()) + 1
}

fn malformed(e: serde_json::Error) -> VyosError {
    VyosError::MalformedResponse {
        message: e.to_string(),
    }
}

fn backoff(attempt: u32) -> Duration {
    let exp = RETRY_BASE.saturating_mul(1u32 << attempt.min(10));
    let max = exp.min(RETRY_CAP);
    // Jitter: somewhere between half and all of the exponential delay.
    let factor = rand::rng().random_range(0.5..=1.0);
    max.mul_f64(factor)
}

fn text_data(data: Value) -> Option<String> {
    match data {
        Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn snippet(body: &str) -> String {
    let s: String = body.chars().take(300).collect();
    s.trim().to_owned()
}

/// Reads an HTTP answer: the envelope `{"success","data","error"}` on 200, VyOS's
/// error text on 4xx, nginx's HTML pages on the rest.
pub(crate) fn interpret(
    endpoint: &str,
    status: StatusCode,
    body: &str,
) -> Result<Value, VyosError> {
    let envelope: Option<Map<String, Value>> = serde_json::from_str(body).ok();
    let error_text = envelope
        .as_ref()
        .and_then(|m| m.get("error").or_else(|| m.get("detail")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match status.as_u16() {
        200 => {
            let Some(mut m) = envelope else {
                return Err(VyosError::MalformedResponse {
                    message: format!("/{endpoint}: not a JSON envelope: {}", snippet(body)),
                });
            };
            match m.get("success").and_then(Value::as_bool) {
                // Moved out, not copied: a read of 10,000 rules is a tree of 100,000 values.
                Some(true) => Ok(m.remove("data").unwrap_or(Value::Null)),
                Some(false) => Err(classify_error_text(error_text.as_deref().unwrap_or(""))),
                None => Err(VyosError::MalformedResponse {
                    message: format!("/{endpoint}: envelope without success: {}", snippet(body)),
                }),
            }
        }
        s @ (401 | 403) => Err(VyosError::Auth {
            status: s,
            message: error_text.unwrap_or_else(|| snippet(body)),
        }),
        400 | 422 => Err(classify_error_text(
            &error_text.unwrap_or_else(|| snippet(body)),
        )),
        413 => Err(VyosError::PayloadTooLarge),
        s => Err(VyosError::Http {
            status: s,
            message: error_text.unwrap_or_else(|| snippet(body)),
        }),
    }
}

/// Reads `Version:  VyOS 1.4.0` and `Hostname:` (if any) from `show version`.
fn parse_show_version(text: &str) -> Option<VersionInfo> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    };
    let version = field("Version")?;
    let version = version
        .strip_prefix("VyOS ")
        .unwrap_or(&version)
        .trim()
        .to_owned();
    Some(VersionInfo {
        version,
        hostname: field("Hostname"),
        has_info_endpoint: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_and_statuses() {
        let ok = interpret(
            "retrieve",
            StatusCode::OK,
            r#"{"success": true, "data": {"a": "1"}, "error": null}"#,
        );
        assert_eq!(ok.unwrap(), json!({"a": "1"}));
        let e = interpret(
            "retrieve",
            StatusCode::UNAUTHORIZED,
            r#"{"success": false, "error": "Valid API key is required", "data": null}"#,
        )
        .unwrap_err();
        assert_eq!(e.category(), "AuthFailed");
        let e = interpret("retrieve", StatusCode::BAD_REQUEST, r#"{"success": false, "error": "Configuration under specified path is empty\n", "data": null}"#).unwrap_err();
        assert!(matches!(&e, VyosError::Rejected { message } if nat::is_empty_path_error(message)));
        let e = interpret(
            "configure",
            StatusCode::BAD_REQUEST,
            r#"{"success": false, "error": "[[nat]] failed\nCommit failed\n", "data": null}"#,
        )
        .unwrap_err();
        assert_eq!(e.category(), "CommitFailed");
        let e = interpret(
            "configure",
            StatusCode::PAYLOAD_TOO_LARGE,
            "<html>413</html>",
        )
        .unwrap_err();
        assert!(matches!(e, VyosError::PayloadTooLarge));
        let e =
            interpret("configure", StatusCode::GATEWAY_TIMEOUT, "<html>504</html>").unwrap_err();
        assert!(e.is_transient() && e.outcome_unknown());
        let e = interpret("info", StatusCode::NOT_FOUND, r#"{"detail":"Not Found"}"#).unwrap_err();
        assert!(
            matches!(e, VyosError::Http { status: 404, ref message } if message == "Not Found")
        );
        let e = interpret("retrieve", StatusCode::OK, "<html>hi</html>").unwrap_err();
        assert_eq!(e.category(), "MalformedResponse");
    }

    #[test]
    fn configure_body_size_is_bounded_by_overhead_plus_ops() {
        let client = VyosClient::new(ClientConfig::new(
            "https://192.0.2.1",
            "a-key-of-some-length-0123456789",
        ))
        .unwrap();
        let ops: Vec<ConfigOp> = (0..50)
            .map(|i| {
                ConfigOp::set(
                    ["nat", "destination", "rule", &i.to_string(), "description"]
                        .map(str::to_owned)
                        .to_vec(),
                    format!("vmnet: ns/vm-{i} \"quoted\" ünïcode"),
                )
            })
            .collect();
        let estimate = client.configure_overhead() + ops.iter().map(op_body_len).sum::<usize>();
        for body in [
            json!({"commands": ops}),
            json!({"commands": ops, "confirm_time": 5}),
        ] {
            // What `post` sends.
            let sent = serde_json::to_vec(&client.body_with_key(body))
                .unwrap()
                .len();
            assert!(
                sent <= estimate && estimate <= sent + 32,
                "sent {sent}, estimated {estimate}"
            );
        }
    }

    #[test]
    fn show_version_text() {
        let v = parse_show_version("Version:          VyOS 1.4.0\nRelease train:    sagitta\n")
            .unwrap();
        assert_eq!(v.version, "1.4.0");
        assert!(v.is_1_4() && !v.supports_commit_confirm());
    }

    #[test]
    fn backoff_is_bounded() {
        for n in 0..40 {
            let d = backoff(n);
            assert!(d >= RETRY_BASE / 2 && d <= RETRY_CAP, "{d:?}");
        }
    }

    #[test]
    fn config_is_checked_and_key_stays_hidden() {
        let mut c = ClientConfig::new("ftp://x", "sekrit");
        assert!(matches!(
            VyosClient::new(c.clone()),
            Err(VyosError::Config(_))
        ));
        c.endpoint = "https://u:p@router".into();
        assert!(VyosClient::new(c.clone()).is_err());
        c.endpoint = "https://router/api".into();
        c.ca_bundle_pem = Some("not pem".into());
        assert!(matches!(
            VyosClient::new(c.clone()),
            Err(VyosError::Config(_))
        ));
        c.ca_bundle_pem = None;
        let client = VyosClient::new(c.clone()).unwrap();
        assert_eq!(
            client.url("retrieve").unwrap().as_str(),
            "https://router/api/retrieve"
        );
        assert!(!format!("{client:?}").contains("sekrit"));
        assert!(!format!("{c:?}").contains("sekrit"));
        assert_eq!(
            client.scrub("input {'key': 'sekrit'}"),
            "input {'key': '[redacted]'}"
        );
    }
}
