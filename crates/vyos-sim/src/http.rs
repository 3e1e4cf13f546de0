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
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};

use crate::tree::Node;
use crate::{Counters, Faults, Shared, SimError, SimOp, Version, apply_op, schema, verify};

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
            // Close with RST before any answer.
            let _ = stream.set_zero_linger();
            drop(stream);
            continue;
        }
        let app = app.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(app);
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

fn api_router(shared: Arc<Shared>) -> Router {
    Router::new()
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
    if declared.is_some_and(|n| n > shared.body_limit) {
        return too_large(&shared);
    }
    if faults.timeout_rate > 0.0 && rand::random::<f64>() < faults.timeout_rate {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if faults.error_rate > 0.0 && rand::random::<f64>() < faults.error_rate {
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

/// Reads the key and the command object from either encoding (form fields `key` + `data`,
/// urlencoded or multipart; or a JSON body with `key` inside).
async fn read_request(shared: &Shared, req: Request) -> Result<Value, Response> {
    let v = shared.version;
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (key, body) = if ctype.starts_with("application/json") {
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
        (
            body.get("key").and_then(Value::as_str).map(str::to_owned),
            body,
        )
    } else {
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
                return Err(envelope(
                    v,
                    StatusCode::UNAUTHORIZED,
                    Err("Valid API key is required".into()),
                ));
            }
            return Err(envelope(
                v,
                StatusCode::UNPROCESSABLE_ENTITY,
                Err("Non-empty data field is required".into()),
            ));
        };
        let data: Value = serde_json::from_str(&data)
            .map_err(|e| bad(v, format!("Failed to parse JSON: {e}")))?;
        let body = match data {
            Value::Array(cmds) => json!({ "commands": cmds }),
            Value::Object(m) => Value::Object(m),
            other => {
                return Err(bad(
                    v,
                    format!("Malformed command '{other}': any command must be JSON of dict"),
                ));
            }
        };
        let key = body
            .get("key")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or(form_key);
        (key, body)
    };
    let ok = key.is_some_and(|k| shared.state().keys.contains(&k));
    if !ok {
        return Err(envelope(
            v,
            StatusCode::UNAUTHORIZED,
            Err("Valid API key is required".into()),
        ));
    }
    Ok(body)
}

fn path_of(cmd: &Value) -> Result<Vec<String>, String> {
    match cmd.get("path") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_owned).ok_or_else(|| {
                    format!("Malformed command '{cmd}': 'path' field must be a list of strings")
                })
            })
            .collect(),
        Some(_) => Err(format!(
            "Malformed command '{cmd}': 'path' field must be a list"
        )),
    }
}

async fn charge_read(shared: &Shared) {
    let rules = shared.state().running.nat_rules() as f64;
    let c = shared.cost;
    tokio::time::sleep(c.sleep_for(c.request_fixed_ms + c.request_per_rule_ms * rules)).await;
}

async fn retrieve(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let v = shared.version;
    let body = match read_request(&shared, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    charge_read(&shared).await;
    let op = body
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let path = match path_of(&body) {
        Ok(p) => p,
        Err(e) => return bad(v, e),
    };
    let running = shared.state().running.clone();
    match op.as_str() {
        "showConfig" => {
            let fmt = body
                .get("configFormat")
                .and_then(Value::as_str)
                .unwrap_or("json");
            if fmt != "json" {
                return bad(
                    v,
                    format!("vyos-sim renders configFormat json only, not '{fmt}'"),
                );
            }
            if path.is_empty() {
                return envelope(v, StatusCode::OK, Ok(running.render()));
            }
            match running.get(&path) {
                Some(n) if !n.is_empty() => envelope(v, StatusCode::OK, Ok(n.render())),
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
        other => bad(v, format!("'{other}' is not a valid operation")),
    }
}

async fn configure(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let v = shared.version;
    let body = match read_request(&shared, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let commands: Vec<Value> = match body.get("commands") {
        Some(Value::Array(c)) => c.clone(),
        Some(_) => return bad(v, "'commands' must be a list"),
        None => vec![body.clone()],
    };
    let mut ops = Vec::new();
    for c in &commands {
        let Some(op) = c.get("op").and_then(Value::as_str) else {
            return bad(v, format!("Malformed command '{c}': missing 'op' field"));
        };
        if op == "confirm" && commands.len() == 1 {
            return confirm(&shared).await;
        }
        if !matches!(op, "set" | "delete" | "comment") {
            return bad(v, format!("'{op}' is not a valid operation"));
        }
        if c.get("path").is_none() {
            return bad(v, format!("Malformed command '{c}': missing 'path' field"));
        }
        let path = match path_of(c) {
            Ok(p) if !p.is_empty() => p,
            Ok(_) => {
                return bad(
                    v,
                    format!("Malformed command '{c}': 'path' list must be non-empty"),
                );
            }
            Err(e) => return bad(v, e),
        };
        let value = match c.get("value") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return bad(
                    v,
                    format!("Malformed command '{c}': 'value' field must be a string"),
                );
            }
        };
        ops.push((op.to_owned(), path, value));
    }
    let confirm_time = match (v, body.get("confirm_time")) {
        (Version::V1_5, Some(t)) => match t.as_u64() {
            Some(m) if m > 0 => Some(m),
            _ => return bad(v, "confirm_time must be a positive integer"),
        },
        _ => None,
    };

    // One write at a time, as on VyOS: the others wait here.
    let _lock = shared.write_lock.lock().await;
    shared.state().counters.configure_requests += 1;
    let (mut candidate, rules, faults) = {
        let s = shared.state();
        (
            s.running.clone(),
            s.running.nat_rules() as f64,
            s.faults.clone(),
        )
    };
    let c = shared.cost;
    tokio::time::sleep(c.sleep_for(
        c.request_fixed_ms + c.request_per_rule_ms * rules + c.per_op_ms * ops.len() as f64,
    ))
    .await;
    for (op, path, value) in &ops {
        if let Err(e) = apply_op(&mut candidate, op, path, value.as_deref(), v) {
            return bad(v, e);
        }
    }
    candidate.prune();
    let unchanged = candidate == shared.state().running;
    if !unchanged {
        tokio::time::sleep(
            c.sleep_for(c.commit_fixed_ms + c.commit_per_rule_ms * candidate.nat_rules() as f64),
        )
        .await;
        if faults.commit_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.commit_delay_ms)).await;
        }
        if faults.locked_by_cli {
            shared.state().counters.failed_commits += 1;
            return bad(
                v,
                "Configuration system temporarily locked due to another commit in progress",
            );
        }
        if let Some(text) = commit_failure(&candidate, &faults, v) {
            shared.state().counters.failed_commits += 1;
            return bad(v, text);
        }
        {
            let mut s = shared.state();
            s.running = candidate;
            s.counters.commits += 1;
            s.counters.ops_applied += ops.len() as u64;
        }
        shared.persist();
    }
    match confirm_time {
        Some(minutes) => {
            if shared.state().confirm.is_some() {
                // The commit has happened; only the timer is refused.
                return bad(v, "Another confirm is pending");
            }
            shared.arm_confirm(minutes);
            envelope(
                v,
                StatusCode::OK,
                Ok(json!(format!(
                    "Initialized commit-confirm; {minutes} minutes to confirm before reboot"
                ))),
            )
        }
        None => envelope(
            v,
            StatusCode::OK,
            Ok(if v == Version::V1_5 {
                json!("")
            } else {
                Value::Null
            }),
        ),
    }
}

/// The text of a failed commit, or `None` when the commit passes.
fn commit_failure(candidate: &Node, faults: &Faults, v: Version) -> Option<String> {
    let generic = "[[nat]] failed\nCommit failed\n".to_owned();
    let reason = if faults.fail_commits {
        Some(None)
    } else if let Some((n, msg)) = verify::verify(candidate) {
        Some(Some((n, msg)))
    } else if let Some(needle) = faults
        .fail_commit_matching
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        matching_rule(candidate, needle).map(|(kind, n)| {
            let k = if kind == "destination" { "Destination" } else { "Source" };
            Some((n, format!("{k} NAT configuration error in rule {n}: rejected by vyos-sim (fail_commit_matching {needle:?})")))
        })
    } else {
        None
    }?;
    Some(match (v, reason) {
        (Version::V1_5, Some((_, msg))) => format!("[ nat ]\n{}\n\n{generic}", verify::fill(&msg)),
        _ => generic,
    })
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

async fn confirm(shared: &Arc<Shared>) -> Response {
    let v = shared.version;
    if v == Version::V1_4 {
        return bad(v, "'confirm' is not a valid operation");
    }
    let pending = shared.state().confirm.take().is_some();
    let text = if pending {
        "Reboot timer stopped\n"
    } else {
        "No confirm pending"
    };
    envelope(v, StatusCode::OK, Ok(json!(text)))
}

async fn config_file(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let v = shared.version;
    let body = match read_request(&shared, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match body.get("op").and_then(Value::as_str).unwrap_or_default() {
        "save" => {
            let _lock = shared.write_lock.lock().await;
            {
                let mut s = shared.state();
                s.saved = s.running.clone();
            }
            shared.persist();
            let file = body
                .get("file")
                .and_then(Value::as_str)
                .unwrap_or("/config/config.boot");
            envelope(
                v,
                StatusCode::OK,
                Ok(json!(format!(
                    "Saving configuration to '{file}'...\nDone\n"
                ))),
            )
        }
        "confirm" if v == Version::V1_5 => confirm(&shared).await,
        other => bad(v, format!("'{other}' is not a valid operation")),
    }
}

async fn show(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let v = shared.version;
    let body = match read_request(&shared, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let path = path_of(&body).unwrap_or_default();
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
    bad(
        v,
        format!("vyos-sim does not simulate 'show {}'", path.join(" ")),
    )
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
                            s.state().faults = f;
                            (StatusCode::NO_CONTENT, String::new())
                        }
                        Err(e) => (StatusCode::BAD_REQUEST, format!("faults: {e}\n")),
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
