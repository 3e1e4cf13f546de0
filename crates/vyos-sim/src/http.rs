//! The HTTP side: VyOS's endpoints (on the API port) and the admin endpoint (its own port).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper::service::Service as _;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};

use crate::request::{self, ModelError};
use crate::tree::Node;
use crate::{
    CostModel, Counters, Faults, Shared, SimError, SimOp, Version, apply_op, commit, schema,
};

/// Binds with SO_REUSEADDR, so a stopped simulator's address can be taken again at once.
pub(crate) fn bind(addr: SocketAddr) -> Result<TcpListener, SimError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(1024)?)
}

/// A self-signed certificate for 127.0.0.1, ::1 and localhost, and a TLS acceptor for it.
pub(crate) fn tls_acceptor() -> Result<(tokio_rustls::TlsAcceptor, String), SimError> {
    let names = vec![
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        "localhost".to_owned(),
    ];
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| SimError::Tls(e.to_string()))?;
    let pem = certified.cert.pem();
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| SimError::Tls(e.to_string()))?;
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), pem))
}

/// Serves the VyOS API: one request per connection (so a reset fault hits one request),
/// HTTPS when an acceptor is given.
pub(crate) async fn serve_api(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let app = api_router(shared.clone());
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let reset_rate = shared.state().faults.reset_rate;
        if reset_rate > 0.0 && rand::random::<f64>() < reset_rate {
            *shared
                .state()
                .counters
                .faults_injected
                .entry("reset".into())
                .or_default() += 1;
            // Close with RST before any answer.
            let _ = stream.set_zero_linger();
            drop(stream);
            continue;
        }
        let app = app.clone();
        let tls = tls.clone();
        let shared = shared.clone();
        conns.spawn(async move {
            let inner = hyper_util::service::TowerToHyperService::new(app);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let inner = inner.clone();
                let shared = shared.clone();
                async move {
                    if *shared.hang.borrow() {
                        hold(&shared, req.uri().path()).await;
                        return Err(Dropped("the hang fault"));
                    }
                    match until_reboot(&shared, inner.call(req)).await {
                        Some(answer) => answer.map_err(|never| match never {}),
                        None => Err(Dropped("a reboot")),
                    }
                }
            });
            let builder = {
                let mut b = hyper::server::conn::http1::Builder::new();
                b.keep_alive(false);
                b
            };
            match tls {
                Some(acceptor) => {
                    if let Ok(s) = acceptor.accept(stream).await {
                        let _ = builder
                            .serve_connection(hyper_util::rt::TokioIo::new(s), service)
                            .await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
}

/// A request's end without an answer (the connection is closed), and what ended it.
#[derive(Debug)]
struct Dropped(&'static str);

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "vyos-sim: request dropped by {}", self.0)
    }
}

impl std::error::Error for Dropped {}

/// `work`, unless the router reboots first (`None`): a reboot ends whatever it was doing,
/// as the router's restart ends its API server's requests.
async fn until_reboot<T>(shared: &Shared, work: impl std::future::Future<Output = T>) -> Option<T> {
    let mut boots = shared.boots.subscribe();
    tokio::select! {
        biased;
        _ = boots.changed() => None,
        done = work => Some(done),
    }
}

/// What a write cut short by a reboot returns, to its configure log only (the client's
/// connection is closed without an answer).
#[derive(Debug, Clone, Copy)]
struct Rebooted;

fn rebooted(v: Version) -> Response {
    let mut r = envelope(
        v,
        StatusCode::SERVICE_UNAVAILABLE,
        Err("vyos-sim: the router rebooted during the request".to_owned()),
    );
    r.extensions_mut().insert(Rebooted);
    r
}

/// Holds a request while the `hang` fault is set (it is counted, never answered).
async fn hold(shared: &Shared, path: &str) {
    {
        let mut s = shared.state();
        *s.counters.requests.entry(path.to_owned()).or_default() += 1;
        *s.counters.faults_injected.entry("hang".into()).or_default() += 1;
    }
    tracing::debug!(path, "vyos-sim: request held by the hang fault");
    let mut hang = shared.hang.subscribe();
    let _ = hang.wait_for(|h| !*h).await;
}

fn api_router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    for endpoint in unsimulated_endpoints(shared.version) {
        router = router.route(endpoint, post(unsimulated));
    }
    router
        .route("/retrieve", post(retrieve))
        .route("/configure", post(configure))
        .route("/config-file", post(config_file))
        .route("/show", post(show))
        .route("/info", get(info))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"detail":"Not Found"}"#,
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            faults_and_counts,
        ))
        // Bodies without a Content-Length are cut at the limit as they are read.
        .layer(axum::extract::DefaultBodyLimit::max(shared.body_limit))
        .with_state(shared)
}

/// nginx's own answer to a body over `client_max_body_size` (no JSON envelope).
fn too_large(shared: &Shared) -> Response {
    shared.state().counters.too_large += 1;
    let page = "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n\
                <center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n\
                </body>\r\n</html>\r\n";
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        [(header::CONTENT_TYPE, "text/html")],
        page,
    )
        .into_response()
}

/// A body that could not be read: too large (413, as nginx), else VyOS's 400.
fn unreadable(shared: &Shared, status: StatusCode, text: &str) -> Response {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(shared)
    } else {
        bad(shared.version, text)
    }
}

/// Counts every request and applies the request-level faults.
async fn faults_and_counts(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let faults = {
        let mut s = shared.state();
        *s.counters.requests.entry(path.clone()).or_default() += 1;
        if path == "/retrieve" {
            s.counters.retrieve_requests += 1;
        }
        s.faults.clone()
    };
    tracing::debug!(path, "vyos-sim request");
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|h| h.to_str().ok())
        .and_then(|t| t.parse::<usize>().ok());
    shared.state().counters.request_bytes += declared.unwrap_or(0) as u64;
    if declared.is_some_and(|n| n > shared.body_limit) {
        return too_large(&shared);
    }
    let started = std::time::Instant::now();
    let answer = answer(&shared, faults, req, next).await;
    shared.state().counters.busy_micros += started.elapsed().as_micros() as u64;
    answer
}

/// The request-level faults, then the endpoint.
async fn answer(
    shared: &Shared,
    faults: Faults,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let count = |kind: &str| {
        *shared
            .state()
            .counters
            .faults_injected
            .entry(kind.into())
            .or_default() += 1;
    };
    if faults.timeout_rate > 0.0 && rand::random::<f64>() < faults.timeout_rate {
        count("held");
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if faults.error_rate > 0.0 && rand::random::<f64>() < faults.error_rate {
        count("5xx");
        return envelope(
            shared.version,
            StatusCode::INTERNAL_SERVER_ERROR,
            Err("An internal error occured. Check the logs for details.".to_owned()),
        );
    }
    next.run(req).await
}

/// The `{success, data, error}` envelope, in VyOS's key order and content type.
fn envelope(version: Version, status: StatusCode, result: Result<Value, String>) -> Response {
    envelope_text(version, status, result.map(|data| data.to_string()))
}

/// [`envelope`] with the data already as JSON text.
fn envelope_text(version: Version, status: StatusCode, result: Result<String, String>) -> Response {
    let body = match result {
        Ok(data) => format!(r#"{{"success": true, "data": {data}, "error": null}}"#),
        Err(text) => {
            // 1.5 HTML-escapes the error text (quotes stay); 1.4 sends it raw.
            let text = match version {
                Version::V1_5 => text
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;"),
                Version::V1_4 => text,
            };
            format!(
                r#"{{"success": false, "error": {}, "data": null}}"#,
                Value::String(text)
            )
        }
    };
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn bad(version: Version, text: impl Into<String>) -> Response {
    envelope(version, StatusCode::BAD_REQUEST, Err(text.into()))
}

/// A request's command object, and how VyOS answers it if its endpoint's model refuses it.
struct Parsed {
    /// The command object (a form's `data`, a list in it as `{"commands": [...]}`).
    body: Value,
    /// For a form request, the first error of VyOS's own form check (`None`: none, or a
    /// JSON body, which pydantic alone checks).
    form_err: Option<(StatusCode, String)>,
}

impl Parsed {
    /// VyOS's answer to a body its endpoint's model refuses: a form request gets the form
    /// check's error, else pydantic's first error (`member`: the model, when the body was
    /// one choice of a `Union`).
    fn refuse(&self, v: Version, e: &ModelError, member: Option<&str>) -> Response {
        match &self.form_err {
            Some((status, text)) => envelope(v, *status, Err(text.clone())),
            None => bad(v, e.render(v, member)),
        }
    }
}

fn unauthorized(v: Version) -> Response {
    envelope(
        v,
        StatusCode::UNAUTHORIZED,
        Err("Valid API key is required".into()),
    )
}

/// Reads the key and the command object from either encoding (form fields `key` + `data`,
/// urlencoded or multipart; or a JSON body with `key` inside), for `endpoint`.
async fn read_request(shared: &Shared, req: Request, endpoint: &str) -> Result<Parsed, Response> {
    let v = shared.version;
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ctype.starts_with("application/json") {
        let bytes = Bytes::from_request(req, &())
            .await
            .map_err(|e| unreadable(shared, e.status(), "could not read the body"))?;
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| bad(v, format!("Failed to parse JSON: {e}")))?;
        let Value::Object(_) = &body else {
            return Err(bad(
                v,
                "{'type': 'model_attributes_type', 'msg': 'Input should be a valid dictionary'}",
            ));
        };
        let key = body.get("key").and_then(Value::as_str);
        if !key.is_some_and(|k| shared.state().keys.iter().any(|x| x == k)) {
            return Err(unauthorized(v));
        }
        return Ok(Parsed {
            body,
            form_err: None,
        });
    }
    let fields = if ctype.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| unreadable(shared, e.status(), "malformed multipart body"))?;
        let mut fields = Vec::new();
        while let Ok(Some(f)) = mp.next_field().await {
            let name = f.name().unwrap_or_default().to_owned();
            let text = f.text().await.unwrap_or_default();
            fields.push((name, text));
        }
        fields
    } else {
        let bytes = Bytes::from_request(req, &())
            .await
            .map_err(|e| unreadable(shared, e.status(), "could not read the body"))?;
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes).unwrap_or_default()
    };
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, t)| t.clone());
    let form_key = get("key");
    let Some(data) = get("data").filter(|d| !d.is_empty()) else {
        if form_key.is_none() {
            return Err(unauthorized(v));
        }
        return Err(envelope(
            v,
            StatusCode::UNPROCESSABLE_ENTITY,
            Err("Non-empty data field is required".into()),
        ));
    };
    let data: Value =
        serde_json::from_str(&data).map_err(|e| bad(v, format!("Failed to parse JSON: {e}")))?;
    let body = match data {
        Value::Array(cmds) => json!({ "commands": cmds }),
        other => other,
    };
    let form_err = request::form_check(
        endpoint,
        &body,
        form_key.is_some() || body.get("key").is_some(),
    );
    let key = body
        .get("key")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or(form_key);
    match key {
        // A key that is not valid: auth_required's 401 comes before the body's model.
        Some(k) if !shared.state().keys.contains(&k) => Err(unauthorized(v)),
        // No key: pydantic fails, and the form check's first error is the answer.
        None => Err(match form_err {
            Some((status, text)) => envelope(v, status, Err(text)),
            None => unauthorized(v),
        }),
        Some(_) => Ok(Parsed { body, form_err }),
    }
}

/// The strings of a list field the body's model has already accepted.
fn strings(cmd: &Value, field: &str) -> Vec<String> {
    cmd.get(field)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The string of a field the body's model has already accepted.
fn text(cmd: &Value, field: &str) -> String {
    cmd.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// What a request that VyOS would serve but the simulator does not is answered.
fn not_simulated(v: Version, what: &str) -> Response {
    bad(v, format!("vyos-sim does not simulate {what}"))
}

/// VyOS's answer to an op its endpoint does not have.
fn invalid_op(v: Version, op: &str) -> Response {
    bad(v, format!("'{op}' is not a valid operation"))
}

async fn retrieve(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let v = shared.version;
    let parsed = match read_request(&shared, req, "/retrieve").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    // RetrieveModel: `op: StrictStr`, `path: List[StrictStr]` (no default, on 1.4 and 1.5:
    // a showConfig of the root sends `"path": []`).
    if let Err(e) = request::check(&parsed.body, request::OP_AND_PATH) {
        return parsed.refuse(v, &e, None);
    }
    // A read's modeled time counts from here, and the simulator's own work (rendering the
    // answer) runs within it, as for a write: VyOS builds its `Config` of the running config
    // first (what the model prices) and answers from it, so the answer is made at once, from
    // the config as the read began, and given when the modeled time has passed.
    let mut clock = Clock::start();
    let c = shared.cost();
    let (answer, rules) = {
        let state = shared.state();
        (
            retrieve_answer(&parsed.body, &state.running, v),
            state.running.nat_rules() as f64,
        )
    };
    clock
        .charge(c.sleep_for(c.request_fixed_ms + c.request_per_rule_ms * rules))
        .await;
    answer
}

/// The answer to a valid `/retrieve` body, from `running`.
fn retrieve_answer(body: &Value, running: &Node, v: Version) -> Response {
    let op = text(body, "op");
    let path = strings(body, "path");
    match op.as_str() {
        "showConfig" => {
            // `if data.configFormat: config_format = data.configFormat`, default json.
            let raw = match body.get("configFormat").and_then(Value::as_str) {
                None | Some("" | "json") => false,
                // `elif config_format == 'raw': pass`: the text of `cli-shell-api
                // showConfig` as it is (see text::render_show).
                Some("raw") => true,
                Some(f @ "json_ast") => {
                    return not_simulated(v, &format!("configFormat '{f}'"));
                }
                // error(400, f"'{config_format}' is not a valid config format")
                Some(other) => return bad(v, format!("'{other}' is not a valid config format")),
            };
            let answer = |n: &Node| {
                if raw {
                    let text =
                        crate::text::render_show(running, &path, v, crate::text::ShowMode::Session)
                            .unwrap_or_default();
                    envelope(v, StatusCode::OK, Ok(json!(text)))
                } else {
                    let data = serde_json::to_string(&crate::tree::Shown(n))
                        .map_err(|e| format!("rendering the config: {e}"));
                    envelope_text(v, StatusCode::OK, data)
                }
            };
            if path.is_empty() {
                return answer(running);
            }
            match running.get(&path) {
                Some(n) if !n.is_empty() => answer(n),
                // vyatta-cfg cnode::show_cfg_diff(): "Configuration under specified path is
                // empty" for a valid path with nothing under it, "Specified configuration
                // path is not valid" for a path the schema does not have.
                _ if schema::parse(&path, None, v, "delete").is_ok() => {
                    bad(v, "Configuration under specified path is empty\n")
                }
                _ => bad(v, "Specified configuration path is not valid\n"),
            }
        }
        "exists" => {
            let here = running.get(&path).is_some()
                || path.split_last().is_some_and(|(last, parent)| {
                    matches!(running.get(parent), Some(Node::Leaf(vals)) if vals.contains(last))
                });
            envelope(v, StatusCode::OK, Ok(json!(here)))
        }
        "returnValue" => match running.get(&path) {
            Some(Node::Leaf(vals)) => envelope(v, StatusCode::OK, Ok(json!(vals.first()))),
            _ => envelope(v, StatusCode::OK, Ok(Value::Null)),
        },
        "returnValues" => match running.get(&path) {
            Some(Node::Leaf(vals)) => envelope(v, StatusCode::OK, Ok(json!(vals))),
            _ => envelope(v, StatusCode::OK, Ok(json!([]))),
        },
        // error(400, f"'{op}' is not a valid operation")
        other => invalid_op(v, other),
    }
}

/// What a `/configure` body validated as (its `Union` of models, tried in order).
enum Configure {
    /// `ConfigureModel` or `ConfigureListModel`: (op, path, value) in order.
    Ops(Vec<(String, Vec<String>, Option<String>)>),
    /// 1.5's `ConfirmModel` (`key`, `op` only).
    Confirm(String),
}

/// Validates a `/configure` body as VyOS's models do: `Union[ConfigureModel,
/// ConfigureListModel]` on 1.4, with `ConfirmModel` last on 1.5; the first that accepts
/// the body wins, and when none does the answer is `ConfigureModel`'s first error.
fn configure_body(parsed: &Parsed, v: Version) -> Result<Configure, Box<Response>> {
    let body = &parsed.body;
    let one = |c: &Value| {
        let value = c.get("value").and_then(Value::as_str).map(str::to_owned);
        (text(c, "op"), strings(c, "path"), value)
    };
    let Err(first) = request::check(body, request::CONFIGURE) else {
        return Ok(Configure::Ops(vec![one(body)]));
    };
    if let Some(Value::Array(cmds)) = body.get("commands")
        && cmds
            .iter()
            .all(|c| c.is_object() && request::check(c, request::CONFIGURE).is_ok())
    {
        return Ok(Configure::Ops(cmds.iter().map(one).collect()));
    }
    match body.get("op").and_then(Value::as_str) {
        Some(op) if v == Version::V1_5 => Ok(Configure::Confirm(op.to_owned())),
        _ => Err(Box::new(parsed.refuse(v, &first, Some("ConfigureModel")))),
    }
}

async fn configure(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let v = shared.version;
    let parsed = match read_request(&shared, req, "/configure").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let ops = match configure_body(&parsed, v) {
        Ok(Configure::Ops(ops)) => ops,
        // `if op == 'confirm': msg = session.confirm()`, else
        // `raise ConfigSessionError(f"'{op}' is not a valid operation")`.
        Ok(Configure::Confirm(op)) if op == "confirm" => return confirm(&shared).await,
        Ok(Configure::Confirm(op)) => return invalid_op(v, &op),
        Err(r) => return *r,
    };
    let body = &parsed.body;
    // `confirm_time: StrictInt = 0`; `if confirm_time:` starts the timer (1.5).
    let confirm_time = match (v, body.get("confirm_time")) {
        (Version::V1_5, Some(t)) => match t.as_u64() {
            Some(0) => None,
            Some(m) => Some(m),
            _ => return bad(v, "confirm_time must be a positive integer"),
        },
        _ => None,
    };
    // The write runs to its end even when the client goes away (a client timeout): VyOS's
    // API server goes on with a commit it has started, and reports to nobody.
    let work = tokio::spawn(write(shared.clone(), ops, confirm_time));
    match work.await {
        Ok(r) => r,
        Err(e) => envelope(
            v,
            StatusCode::INTERNAL_SERVER_ERROR,
            Err(format!("vyos-sim: the write task failed: {e}")),
        ),
    }
}

fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn unix_ms() -> u64 {
    unix_us() / 1000
}

/// [`write_ops`], recorded in the configure log.
async fn write(
    shared: Arc<Shared>,
    ops: Vec<(String, Vec<String>, Option<String>)>,
    confirm_time: Option<u64>,
) -> Response {
    let components = ops
        .iter()
        .map(|(_, path, _)| crate::component_of(path))
        .collect();
    let count = ops.len();
    let _lock = shared.write_lock.lock().await;
    let started_us = unix_us();
    let commits = shared.state().counters.commits;
    let response = until_reboot(&shared, write_ops(shared.clone(), ops, confirm_time))
        .await
        .unwrap_or_else(|| rebooted(shared.version));
    log_write(&shared, started_us, count, components, &response, commits);
    response
}

/// Records a write (its outcome read from the answer and the commit counter) in the
/// configure log.
fn log_write(
    shared: &Shared,
    started_us: u64,
    count: usize,
    components: std::collections::BTreeSet<String>,
    response: &Response,
    commits: u64,
) {
    let mut s = shared.state();
    let outcome = if response.extensions().get::<Rebooted>().is_some() {
        "dropped by a reboot"
    } else if !response.status().is_success() {
        "refused"
    } else if s.counters.commits > commits {
        "committed"
    } else {
        "unchanged"
    };
    if s.configure_log.len() >= crate::CONFIGURE_LOG_LEN {
        s.configure_log.pop_front();
    }
    let committed_us = (s.counters.commits > commits).then_some(s.last_commit_us);
    s.configure_log.push_back(crate::ConfigureRecord {
        started_ms: started_us / 1000,
        started_us,
        committed_us,
        finished_ms: unix_ms(),
        ops: count,
        components,
        outcome: outcome.to_owned(),
    });
}

/// The write part of `/configure`: the ops, the commit, the answer. The caller holds the
/// write lock.
async fn write_ops(
    shared: Arc<Shared>,
    ops: Vec<(String, Vec<String>, Option<String>)>,
    confirm_time: Option<u64>,
) -> Response {
    let v = shared.version;
    let mut clock = Clock::start();
    shared.state().counters.configure_requests += 1;
    let (base, rules, faults, boot) = {
        let s = shared.state();
        (
            s.running.clone(),
            s.running.nat_rules() as f64,
            s.faults.clone(),
            shared.boot_id(),
        )
    };
    let c = shared.cost();
    clock
        .charge(c.sleep_for(
            c.request_fixed_ms + c.request_per_rule_ms * rules + c.per_op_ms * ops.len() as f64,
        ))
        .await;
    // The request's ops on a config: on the one it began with now, and again at the commit
    // on the one running then if a hand edit changed it meanwhile.
    let again = |running: &Node| -> Result<Node, String> {
        let mut c = running.clone();
        for (op, path, value) in &ops {
            apply_op(&mut c, op, path, value.as_deref(), v)?;
        }
        c.prune_keeping(&schema::kept_when_empty);
        Ok(c)
    };
    let candidate = match again(&base) {
        Ok(c) => c,
        Err(e) => return bad(v, e),
    };
    let rebase: Rebase<'_> = (&base, &again);
    if let Err(refused) = commit_candidate(
        &shared,
        candidate,
        ops.len(),
        &faults,
        &mut clock,
        (boot, Some(rebase)),
    )
    .await
    {
        return refused;
    }
    committed_answer(&shared, confirm_time, json!(""))
}

/// The modeled time of a request, charged as a deadline from its start: the simulator's
/// own work (copying and checking its config) counts toward the time the model gives a
/// request instead of adding to it, as a router's own work is what the model prices. A
/// request takes the modeled time, or the simulator's CPU time when that is longer.
#[derive(Debug)]
struct Clock {
    due: tokio::time::Instant,
}

impl Clock {
    fn start() -> Self {
        Self {
            due: tokio::time::Instant::now(),
        }
    }

    /// Adds `cost` to the request's modeled time and waits until then.
    async fn charge(&mut self, cost: Duration) {
        self.due += cost;
        tokio::time::sleep_until(self.due).await;
    }
}

/// Commits `candidate` (pruned here) as the running config unless it equals it: the
/// commit's cost, the commit faults, the commit checks; on success the counters count it.
/// `Err` is the answer to a refused commit. The caller holds the write lock, so no other
/// API write runs meanwhile; a hand edit can (`Sim::third_party_edit`, the admin `/edit`).
/// `made` is the boot the candidate was made in (a reboot since means it is not committed:
/// the request is dropped) and, unless `None` (a `load`, which replaces the whole config),
/// what it was made from and how to make it again from another running config: VyOS's
/// session holds only its own changes over the active config, so when the running config
/// changed while the request ran, the request's changes commit on top of it rather than
/// over it.
async fn commit_candidate(
    shared: &Shared,
    mut candidate: Node,
    ops: usize,
    faults: &Faults,
    clock: &mut Clock,
    made: (u64, Option<Rebase<'_>>),
) -> Result<(), Response> {
    let (boot, rebase) = made;
    let v = shared.version;
    let c = shared.cost();
    candidate.prune_keeping(&schema::kept_when_empty);
    let unchanged = candidate == shared.state().running;
    if !unchanged {
        // The commit checks run within the commit's modeled time; their verdict is given
        // when it has passed, as VyOS gives it at the end of its commit.
        let failure = {
            let s = shared.state();
            commit_failure(&s.running, &candidate, faults, v)
        };
        clock
            .charge(
                c.sleep_for(
                    c.commit_fixed_ms + c.commit_per_rule_ms * candidate.nat_rules() as f64,
                ),
            )
            .await;
        if faults.commit_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.commit_delay_ms)).await;
        }
        if faults.locked_by_cli {
            shared.state().counters.failed_commits += 1;
            return Err(bad(
                v,
                "Configuration system temporarily locked due to another commit in progress",
            ));
        }
        if let Some(text) = failure {
            shared.state().counters.failed_commits += 1;
            return Err(bad(v, text));
        }
        {
            let mut s = shared.state();
            if shared.boot_id() != boot {
                return Err(rebooted(v));
            }
            if let Some((base, again)) = rebase
                && s.running != *base
            {
                let rebased = again(&s.running)
                    .and_then(|c| commit_failure(&s.running, &c, faults, v).map_or(Ok(c), Err));
                match rebased {
                    Ok(c) => candidate = c,
                    Err(text) => {
                        s.counters.failed_commits += 1;
                        return Err(bad(v, text));
                    }
                }
            }
            s.running = candidate;
            s.last_commit_us = unix_us();
            s.counters.commits += 1;
            s.counters.ops_applied += ops as u64;
        }
        shared.persist();
    }
    Ok(())
}

/// What a write's candidate was made from, and how to make it again from another running
/// config (see [`commit_candidate`]).
type Rebase<'a> = (&'a Node, &'a (dyn Fn(&Node) -> Result<Node, String> + Sync));

/// The answer to a write that committed (or had nothing to commit): 1.5's commit-confirm
/// when `confirm_time` asks for it, else `data` on 1.5 (the commit's output) and `null`
/// on 1.4.
fn committed_answer(shared: &Arc<Shared>, confirm_time: Option<u64>, data_15: Value) -> Response {
    let v = shared.version;
    match confirm_time {
        Some(minutes) => {
            // routers.py run_commit_confirm(): the commit first, then the timer, and
            //     out = out_c + '\n' + out_cc
            // where out_cc is config-mgmt's commit_confirm printed with print(), so with a
            // final newline; the commit's own output is empty when it has no warnings.
            if shared.state().confirm.is_some() {
                // The commit has happened; only the timer is refused:
                //     msg = 'Another confirm is pending'; return msg, 1
                // printed by config-mgmt, so the error is that line with its newline.
                return bad(v, "Another confirm is pending\n");
            }
            shared.arm_confirm(minutes);
            envelope(
                v,
                StatusCode::OK,
                Ok(json!(format!(
                    "\nInitialized commit-confirm; {minutes} minutes to confirm before reboot\n"
                ))),
            )
        }
        None => envelope(
            v,
            StatusCode::OK,
            Ok(if v == Version::V1_5 {
                data_15
            } else {
                Value::Null
            }),
        ),
    }
}

/// The text of a failed commit, or `None` when the commit passes.
fn commit_failure(running: &Node, candidate: &Node, faults: &Faults, v: Version) -> Option<String> {
    if faults.fail_commits {
        return Some("[[nat]] failed\nCommit failed\n".to_owned());
    }
    if let Some(f) = commit::verify(running, candidate, v) {
        return Some(f.api_text(v));
    }
    let needle = faults
        .fail_commit_matching
        .as_deref()
        .filter(|s| !s.is_empty())?;
    let (kind, n) = matching_rule(candidate, needle)?;
    let k = if kind == "destination" {
        "Destination"
    } else {
        "Source"
    };
    let f = commit::Failure {
        component: commit::Component::Nat,
        message: format!(
            "{k} NAT configuration error in rule {n}: rejected by vyos-sim (fail_commit_matching {needle:?})"
        ),
    };
    Some(f.api_text(v))
}

fn matching_rule(root: &Node, needle: &str) -> Option<(&'static str, u32)> {
    for kind in ["destination", "source"] {
        if let Some(Node::Inner(rules)) = root.get(&crate::tree::path(&["nat", kind, "rule"])) {
            let mut hits: Vec<u32> = rules
                .iter()
                .filter(|(_, r)| r.render().to_string().contains(needle))
                .filter_map(|(n, _)| n.parse().ok())
                .collect();
            hits.sort_unstable();
            if let Some(n) = hits.first() {
                return Some((kind, *n));
            }
        }
    }
    None
}

/// 1.5's `confirm` (`/configure` or `/config-file`): config-mgmt's `confirm()` printed with
/// print(), so each line ends with a newline (`msg = 'No confirm pending'; return msg, 0`,
/// `msg = 'Reboot timer stopped'`); the commit that follows has nothing to commit and
/// prints nothing.
async fn confirm(shared: &Arc<Shared>) -> Response {
    let v = shared.version;
    let pending = shared.state().confirm.take().is_some();
    let text = if pending {
        "Reboot timer stopped\n"
    } else {
        "No confirm pending\n"
    };
    envelope(v, StatusCode::OK, Ok(json!(text)))
}

/// `save` writes the running config to `file` (default `/config/config.boot`, the boot
/// config the sim keeps as "saved"); another file leaves the boot config as it was.
async fn config_file(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let v = shared.version;
    let parsed = match read_request(&shared, req, "/config-file").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let model = match v {
        Version::V1_4 => request::CONFIG_FILE_14,
        Version::V1_5 => request::CONFIG_FILE_15,
    };
    if let Err(e) = request::check(&parsed.body, model) {
        return parsed.refuse(v, &e, None);
    }
    let body = &parsed.body;
    match text(body, "op").as_str() {
        "save" => {
            let _lock = shared.write_lock.lock().await;
            let file =
                crate::absolute(body.get("file").and_then(Value::as_str).unwrap_or_default());
            {
                let mut s = shared.state();
                if file == "/" || file == crate::BOOT_CONFIG {
                    s.saved = s.running.clone();
                } else {
                    // vyos-save-config.py: the running config and the version footer.
                    let text = crate::text::render_boot(&s.running, v);
                    s.files.insert(file, text);
                }
            }
            shared.persist();
            // msg = session.save_config(path): the output of vyos-save-config.py, which
            // prints nothing (on sagitta and current alike), so data is "".
            envelope(v, StatusCode::OK, Ok(json!("")))
        }
        "confirm" if v == Version::V1_5 => confirm(&shared).await,
        "load" => load(&shared, body).await,
        "merge" if v == Version::V1_5 => not_simulated(v, "config-file 'merge'"),
        other => invalid_op(v, other),
    }
}

/// `/config-file` `load`: routers.py's `config_file_op` (1.5: `file`, else `string`
/// written to `/tmp/config.file`; 1.4: `file` only), `vyos-load-config.py`'s file lookup
/// and `cli-shell-api loadFile` (the whole config replaced; a leaf that fails to set is
/// skipped and only printed, which the API never shows), then the commit.
async fn load(shared: &Arc<Shared>, body: &Value) -> Response {
    let v = shared.version;
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (name, text) = match (field("file"), field("string")) {
        (Some(file), _) => {
            // vyos-load-config.py: remote URLs are fetched; a local name is tried as it
            // is, then under /config; else sys.exit(f"No such file '{filename}'").
            if ["scp", "sftp", "http", "https", "ftp", "tftp"]
                .iter()
                .any(|p| file.starts_with(&format!("{p}://")))
            {
                return not_simulated(v, "config-file 'load' of a remote file");
            }
            let found = {
                let s = shared.state();
                s.file(&crate::absolute(&file), v).or_else(|| {
                    let under = format!("{}/{}", crate::CONFIG_DIR, file.trim_start_matches('/'));
                    s.file(&under, v)
                })
            };
            match found {
                Some(text) => (file, text),
                None => return bad(v, format!("No such file '{file}'\n")),
            }
        }
        // `elif data.string:` writes it to /tmp/config.file and loads that (1.5).
        (None, Some(string)) if v == Version::V1_5 => {
            let path = "/tmp/config.file".to_owned();
            shared.state().files.insert(path.clone(), string.clone());
            (path, string)
        }
        _ => {
            return bad(
                v,
                match v {
                    Version::V1_4 => "Missing required field \"file\"",
                    Version::V1_5 => "Missing required field \"file | string\"",
                },
            );
        }
    };
    // `confirm_time: StrictInt = 0` (1.5).
    let confirm_time = match (v, body.get("confirm_time")) {
        (Version::V1_5, Some(t)) => match t.as_u64() {
            Some(0) => None,
            Some(m) => Some(m),
            _ => return bad(v, "confirm_time must be a positive integer"),
        },
        _ => None,
    };
    let leaves = match crate::text::parse(&text) {
        Ok(l) => l,
        Err(e) => {
            tracing::info!(file = %name, error = %e, "vyos-sim: load of a file that does not parse");
            return bad(
                v,
                format!(
                    "Loading configuration from '{name}'\nFailed to parse specified config file\n"
                ),
            );
        }
    };
    let _lock = shared.write_lock.lock().await;
    let mut clock = Clock::start();
    let started_us = unix_us();
    let (running, rules, faults, commits, boot) = {
        let s = shared.state();
        (
            s.running.clone(),
            s.running.nat_rules() as f64,
            s.faults.clone(),
            s.counters.commits,
            shared.boot_id(),
        )
    };
    let c = shared.cost();
    clock
        .charge(c.sleep_for(
            c.request_fixed_ms + c.request_per_rule_ms * rules + c.per_op_ms * leaves.len() as f64,
        ))
        .await;
    // Cstore::loadFile(): every path of the file set on a config that starts empty; a
    // path that fails (not in the schema, a value its validator refuses) is printed as
    // "Set [...] failed" and skipped.
    let mut candidate = Node::default();
    let mut applied = 0;
    for (path, value) in &leaves {
        match apply_op(&mut candidate, "set", path, value.as_deref(), v) {
            Ok(()) => applied += 1,
            Err(e) => {
                let shown: Vec<String> = path
                    .iter()
                    .chain(value.iter())
                    .map(|p| format!("'{p}'"))
                    .collect();
                tracing::info!(error = %e.lines().next().unwrap_or_default(), "vyos-sim: load: Set [{}] failed", shown.join(" "));
            }
        }
    }
    // Pruned before anything shares its nodes (see `Node::prune_keeping`).
    candidate.prune_keeping(&schema::kept_when_empty);
    let components = changed_components(&running, &candidate);
    let response = match commit_candidate(
        shared,
        candidate,
        applied,
        &faults,
        &mut clock,
        (boot, None),
    )
    .await
    {
        Ok(()) => committed_answer(shared, confirm_time, json!("")),
        Err(refused) => refused,
    };
    log_write(
        shared,
        started_us,
        leaves.len(),
        components,
        &response,
        commits,
    );
    response
}

/// The components ([`crate::component_of`]) whose subtree differs between two configs.
fn changed_components(a: &Node, b: &Node) -> std::collections::BTreeSet<String> {
    let keys = |n: &Node, p: &[String]| match n.get(p) {
        Some(Node::Inner(m)) => m.keys().cloned().collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    let mut out = std::collections::BTreeSet::new();
    let mut tops = keys(a, &[]);
    tops.extend(keys(b, &[]));
    for top in tops {
        let p = vec![top.clone()];
        if a.get(&p) == b.get(&p) {
            continue;
        }
        if matches!(
            top.as_str(),
            "service" | "interfaces" | "protocols" | "system"
        ) {
            let mut subs = keys(a, &p);
            subs.extend(keys(b, &p));
            if subs.is_empty() {
                out.insert(top.clone());
            }
            for sub in subs {
                let q = vec![top.clone(), sub];
                if a.get(&q) != b.get(&q) {
                    out.insert(crate::component_of(&q));
                }
            }
        } else {
            out.insert(top);
        }
    }
    out
}

async fn show(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let v = shared.version;
    let parsed = match read_request(&shared, req, "/show").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    // ShowModel: `op: StrictStr`, `path: List[StrictStr]`.
    if let Err(e) = request::check(&parsed.body, request::OP_AND_PATH) {
        return parsed.refuse(v, &e, None);
    }
    let op = text(&parsed.body, "op");
    if op != "show" {
        return invalid_op(v, &op);
    }
    let path = strings(&parsed.body, "path");
    let words: Vec<&str> = path.iter().map(String::as_str).collect();
    if words == ["system", "uptime"] {
        let text =
            crate::opmode::uptime_text(shared.uptime().as_secs(), crate::opmode::LOAD_AVERAGES);
        return envelope(v, StatusCode::OK, Ok(json!(text)));
    }
    if words == ["configuration", "commands"] {
        // cli-shell-api showCfg --show-active-only | vyos-config-to-commands
        let text = crate::text::render_commands(&shared.state().running);
        return envelope(v, StatusCode::OK, Ok(json!(text)));
    }
    if words == ["configuration"] {
        // cli-shell-api showCfg --show-show-defaults --show-active-only --show-hide-secrets
        let running = shared.state().running.clone();
        let text =
            crate::text::render_show(&running, &[], v, crate::text::ShowMode::ActiveHideSecrets)
                .unwrap_or_default();
        return envelope(v, StatusCode::OK, Ok(json!(text)));
    }
    if path.first().map(String::as_str) == Some("version") {
        let train = if v == Version::V1_4 {
            "sagitta"
        } else {
            "circinus"
        };
        let text = format!(
            "Version:          VyOS {}\nRelease train:    {train}\nBuilt by:         vyos-sim\nHostname:         vyos-sim\n",
            v.full()
        );
        return envelope(v, StatusCode::OK, Ok(json!(text)));
    }
    not_simulated(v, &format!("'show {}'", path.join(" ")))
}

/// The endpoints VyOS has and the sim does not simulate (POST, behind the API key), per
/// version: sagitta's `vyos-http-api-server` routes, and current's `routers.py`.
fn unsimulated_endpoints(v: Version) -> &'static [&'static str] {
    match v {
        Version::V1_4 => &[
            "/configure-section",
            "/container-image",
            "/generate",
            "/image",
            "/poweroff",
            "/reboot",
            "/reset",
        ],
        Version::V1_5 => &[
            "/configure-section",
            "/container-image",
            "/generate",
            "/image",
            "/import-pki",
            "/poweroff",
            "/reboot",
            "/renew",
            "/reset",
            "/traceroute",
        ],
    }
}

/// One of [`unsimulated_endpoints`]: the key is checked (as by every VyOS endpoint), then
/// the request is refused as not simulated.
async fn unsimulated(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let v = shared.version;
    let endpoint = req.uri().path().to_owned();
    match read_request(&shared, req, &endpoint).await {
        Ok(_) => not_simulated(v, &endpoint),
        Err(r) => r,
    }
}

async fn info(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let _ = headers;
    match shared.version {
        Version::V1_4 => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"detail":"Not Found"}"#,
        )
            .into_response(),
        Version::V1_5 => envelope(
            Version::V1_5,
            StatusCode::OK,
            Ok(
                json!({"version": Version::V1_5.full(), "hostname": "vyos-sim", "banner": "Welcome to VyOS (vyos-sim)"}),
            ),
        ),
    }
}

/// The admin endpoint (plain HTTP, JSON).
pub(crate) async fn serve_admin(listener: TcpListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route("/counters", get(|State(s): State<Arc<Shared>>| async move { axum::Json(s.state().counters.clone()) }))
        .route(
            "/configure-log",
            get(|State(s): State<Arc<Shared>>| async move {
                axum::Json(s.state().configure_log.iter().cloned().collect::<Vec<_>>())
            }),
        )
        .route(
            "/counters/reset",
            post(|State(s): State<Arc<Shared>>| async move {
                s.state().counters = Counters::default();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/faults",
            get(|State(s): State<Arc<Shared>>| async move { axum::Json(s.state().faults.clone()) }).put(
                |State(s): State<Arc<Shared>>, body: Bytes| async move {
                    match serde_json::from_slice::<Faults>(&body) {
                        Ok(f) => {
                            s.set_faults(f);
                            (StatusCode::NO_CONTENT, String::new())
                        }
                        Err(e) => (StatusCode::BAD_REQUEST, format!("faults: {e}\n")),
                    }
                },
            ),
        )
        .route(
            "/cost",
            get(|State(s): State<Arc<Shared>>| async move { axum::Json(s.cost()) }).put(
                |State(s): State<Arc<Shared>>, body: Bytes| async move {
                    match serde_json::from_slice::<CostModel>(&body) {
                        Ok(c) if c.is_valid() => {
                            s.set_cost(c);
                            (StatusCode::NO_CONTENT, String::new())
                        }
                        Ok(_) => (StatusCode::BAD_REQUEST, "cost: every figure must be finite and not negative\n".to_owned()),
                        Err(e) => (StatusCode::BAD_REQUEST, format!("cost: {e}\n")),
                    }
                },
            ),
        )
        .route(
            "/api-keys",
            axum::routing::put(|State(s): State<Arc<Shared>>, body: Bytes| async move {
                match serde_json::from_slice::<Vec<String>>(&body) {
                    Ok(k) => {
                        s.state().keys = k;
                        (StatusCode::NO_CONTENT, String::new())
                    }
                    Err(e) => (StatusCode::BAD_REQUEST, format!("api-keys: a JSON list of strings: {e}\n")),
                }
            }),
        )
        .route(
            "/edit",
            post(|State(s): State<Arc<Shared>>, body: Bytes| async move {
                let ops = match serde_json::from_slice::<Vec<SimOp>>(&body) {
                    Ok(o) => o,
                    Err(e) => return (StatusCode::BAD_REQUEST, format!("edit: a JSON list of {{\"op\":\"set\"|\"delete\",\"path\":[...]}}: {e}\n")),
                };
                match s.edit(&ops) {
                    Ok(()) => (StatusCode::NO_CONTENT, String::new()),
                    Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, format!("{e}\n")),
                }
            }),
        )
        .route("/config", get(|State(s): State<Arc<Shared>>| async move { axum::Json(s.state().running.render()) }))
        .route("/saved", get(|State(s): State<Arc<Shared>>| async move { axum::Json(s.state().saved.render()) }))
        .route(
            "/reboot",
            post(|State(s): State<Arc<Shared>>| async move {
                s.reboot();
                (StatusCode::OK, "rebooted: running the saved config\n")
            }),
        )
        .route(
            "/confirm-timeout",
            post(|State(s): State<Arc<Shared>>| async move {
                if s.revert(None) { (StatusCode::OK, "reverted to the saved config\n") } else { (StatusCode::CONFLICT, "no commit-confirm is pending\n") }
            }),
        )
        .with_state(shared);
    if let Err(e) = axum::serve(listener, app.into_make_service()).await {
        tracing::error!(error = %e, "vyos-sim admin endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_simulators_own_work_counts_toward_a_requests_modeled_time() {
        let t = std::time::Instant::now();
        let mut clock = Clock::start();
        // 60 ms of the simulator's own work, then 40 ms of modeled request time: already
        // spent, so no wait (a sleep after the work would make it 100 ms).
        std::thread::sleep(Duration::from_millis(60));
        clock.charge(Duration::from_millis(40)).await;
        let first = t.elapsed();
        assert!(first < Duration::from_millis(95), "{first:?}");
        // Then 100 ms of modeled commit time: due at 140 ms from the start.
        clock.charge(Duration::from_millis(100)).await;
        let second = t.elapsed();
        assert!(
            second >= Duration::from_millis(140) && second < Duration::from_millis(195),
            "{second:?}"
        );
    }
}
