//! The client's HTTP behaviour against a tiny scripted HTTP(S) server: what goes on
//! the wire, and how each failure is classified. (tests/contract.rs runs the same
//! operations against vyos-sim, the full simulator.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use vyos_client::nat::{ConfigOp, NatKind};
use vyos_client::{ClientConfig, VyosClient, VyosError};

const KEY: &str = "test-key-123";

/// What the fake router does with one request.
enum Reply {
    Json(u16, Value),
    Raw(u16, &'static str),
    Hang,
    Reset,
}

type Handler = Arc<dyn Fn(&str, &str, &Value) -> Reply + Send + Sync>;

struct Fake {
    addr: SocketAddr,
    ca_pem: Option<String>,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Fake {
    fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://localhost:{}", self.addr.port())
    }

    fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(self.url(), KEY);
        c.ca_bundle_pem = self.ca_pem.clone();
        c.timeout = Duration::from_millis(500);
        c.read_retries = 2;
        c
    }

    fn client(&self) -> VyosClient {
        VyosClient::new(self.config()).unwrap()
    }

    fn requests(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

fn ok(data: Value) -> Reply {
    Reply::Json(200, json!({"success": true, "data": data, "error": null}))
}

fn fail(status: u16, text: &str) -> Reply {
    Reply::Json(
        status,
        json!({"success": false, "error": text, "data": null}),
    )
}

async fn start(tls: bool, handler: Handler) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (acceptor, ca_pem) = if tls {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = ck.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        (
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg))),
            Some(ck.cert.pem()),
        )
    } else {
        (None, None)
    };
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let seen = seen2.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(sock).await {
                            serve(s, handler, seen).await;
                        }
                    }
                    None => serve(sock, handler, seen).await,
                }
            });
        }
    });
    Fake { addr, ca_pem, seen }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    handler: Handler,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
) {
    loop {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte).await {
                Ok(1) => buf.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&buf).to_string();
        let mut lines = head.lines();
        let request_line = lines.next().unwrap_or_default().to_owned();
        let len = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if s.read_exact(&mut body).await.is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        seen.lock().unwrap().push((path.clone(), json.clone()));
        let (status, text) = match handler(&method, &path, &json) {
            Reply::Json(st, v) => (st, v.to_string()),
            Reply::Raw(st, t) => (st, t.to_owned()),
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            Reply::Reset => return, // drop the connection without an answer
        };
        // VyOS sends its JSON as text/html.
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if s.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn needs_key(body: &Value) -> Option<Reply> {
    (body.get("key").and_then(Value::as_str) != Some(KEY))
        .then(|| fail(401, "Valid API key is required"))
}

fn dnat_data() -> Value {
    json!({"rule": {"100": {
        "destination": {"port": "2222"}, "protocol": "tcp",
        "inbound-interface": {"name": "eth0"},
        "translation": {"address": "10.0.0.5", "port": "22"}}}})
}

#[tokio::test]
async fn reads_rules_and_writes_one_request() {
    let fake = start(
        true,
        Arc::new(|_, path, body| {
            if let Some(r) = needs_key(body) {
                return r;
            }
            match (path, body["op"].as_str()) {
                ("/retrieve", Some("showConfig"))
                    if body["path"] == json!(["nat", "destination"]) =>
                {
                    ok(dnat_data())
                }
                ("/retrieve", Some("showConfig")) => {
                    fail(400, "Configuration under specified path is empty\n")
                }
                ("/configure", _) => ok(Value::Null),
                // What a real router's save answers: vyos-save-config.py prints nothing.
                ("/config-file", Some("save")) => ok(json!("")),
                _ => fail(400, "unexpected"),
            }
        }),
    )
    .await;
    let client = fake.client();
    let rules = client.nat_rules(NatKind::Destination).await.unwrap();
    assert_eq!(rules[&100].translation.port.as_deref(), Some("22"));
    assert!(client.nat_rules(NatKind::Source).await.unwrap().is_empty());

    let path: Vec<String> = ["nat", "destination", "rule", "100", "translation", "port"]
        .map(str::to_owned)
        .to_vec();
    let ops = vec![ConfigOp::set(path.clone(), "2022"), ConfigOp::delete(path)];
    assert_eq!(client.configure(&ops).await.unwrap(), None);
    assert_eq!(client.configure(&[]).await.unwrap(), None); // no request
    assert_eq!(client.save().await.unwrap(), "");

    let reqs = fake.requests();
    let writes: Vec<_> = reqs.iter().filter(|(p, _)| p == "/configure").collect();
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0].1,
        json!({"key": KEY, "commands": [
            {"op": "set", "path": ["nat","destination","rule","100","translation","port"], "value": "2022"},
            {"op": "delete", "path": ["nat","destination","rule","100","translation","port"]}]})
    );
    assert_eq!(reqs.last().unwrap().1, json!({"key": KEY, "op": "save"}));
}

#[tokio::test]
async fn wrong_key_is_auth_and_never_echoed() {
    let fake = start(
        false,
        Arc::new(|_, _, body| needs_key(body).unwrap_or_else(|| ok(json!({})))),
    )
    .await;
    let mut cfg = fake.config();
    cfg.api_key = "wrong-key-456".into();
    let client = VyosClient::new(cfg).unwrap();
    let err = client.nat_rules(NatKind::Destination).await.unwrap_err();
    assert_eq!(err.category(), "AuthFailed");
    assert!(!err.is_transient());
    assert!(!format!("{err} {err:?}").contains("wrong-key-456"));
    assert_eq!(fake.requests().len(), 1, "auth failures are not retried");
}

#[tokio::test]
async fn key_echoed_in_an_error_is_redacted() {
    let fake = start(
        false,
        Arc::new(|_, _, body| fail(400, &format!("Field required: input {body}"))),
    )
    .await;
    let err = fake.client().show_config(&[]).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains(KEY), "{text}");
    assert!(text.contains("[redacted]"));
}

#[tokio::test]
async fn tls_unknown_ca_and_opt_outs() {
    let fake = start(true, Arc::new(|_, _, _| ok(json!({})))).await;
    let mut cfg = fake.config();
    cfg.ca_bundle_pem = None; // system roots do not know the test CA
    let err = VyosClient::new(cfg.clone())
        .unwrap()
        .show_config(&[])
        .await
        .unwrap_err();
    assert_eq!(err.category(), "TLSError", "{err:?}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    cfg.insecure_skip_verify = true;
    VyosClient::new(cfg)
        .unwrap()
        .show_config(&[])
        .await
        .unwrap();
    fake.client().show_config(&[]).await.unwrap();

    // https to a plain-HTTP server (which answers the ClientHello with an HTTP 400,
    // as nginx does) is a TLS error too.
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = plain.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = plain.accept().await {
            let mut buf = [0u8; 512];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let mut cfg = ClientConfig::new(format!("https://localhost:{port}"), KEY);
    cfg.read_retries = 0;
    let err = VyosClient::new(cfg)
        .unwrap()
        .show_config(&[])
        .await
        .unwrap_err();
    assert_eq!(err.category(), "TLSError", "{err:?}");
}

#[tokio::test]
async fn timeouts_are_reported_after_one_deadline_and_writes_never_resent() {
    let fake = start(false, Arc::new(|_, _, _| Reply::Hang)).await;
    let client = fake.client();
    let err = client.nat_rules(NatKind::Destination).await.unwrap_err();
    assert!(matches!(err, VyosError::Timeout { .. }), "{err:?}");
    assert!(err.is_transient() && err.outcome_unknown());
    assert_eq!(err.category(), "RouterUnreachable");
    // A read that used the whole deadline is not tried again (a retry would double the
    // time before the operator reports the router unreachable); resets and 5xx still are.
    assert_eq!(
        fake.requests().len(),
        1,
        "one try: a timeout is not retried"
    );

    let op = ConfigOp::set_node(NatKind::Destination.rule_path(5));
    let err = client.configure(&[op]).await.unwrap_err();
    assert!(matches!(err, VyosError::Timeout { .. }));
    assert_eq!(fake.requests().len(), 2, "a write is sent once");
}

#[tokio::test]
async fn resets_and_refused_connections() {
    let fake = start(false, Arc::new(|_, _, _| Reply::Reset)).await;
    let client = fake.client();
    let err = client.show_config(&[]).await.unwrap_err();
    assert!(
        matches!(err, VyosError::Unreachable { connect: false, .. }),
        "{err:?}"
    );
    assert!(err.is_transient() && err.outcome_unknown());
    assert_eq!(fake.requests().len(), 3);
    let err = client
        .configure(&[ConfigOp::delete(NatKind::Source.rule_path(1))])
        .await
        .unwrap_err();
    assert_eq!(err.category(), "RouterUnreachable");
    assert_eq!(fake.requests().len(), 4);

    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = gone.local_addr().unwrap().port();
    drop(gone);
    let mut cfg = ClientConfig::new(format!("http://127.0.0.1:{port}"), KEY);
    cfg.read_retries = 0;
    let err = VyosClient::new(cfg)
        .unwrap()
        .show_config(&[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, VyosError::Unreachable { connect: true, .. }),
        "{err:?}"
    );
    assert!(!err.outcome_unknown());
}

#[tokio::test]
async fn vyos_error_texts() {
    let fake = start(
        false,
        Arc::new(|_, _, body| {
            let first = &body["commands"][0]["path"][3];
            match first.as_str() {
                Some("1") => fail(400, "Error: 99999 is not a valid port\nInvalid value\nValue validation failed\nSet failed\n"),
                Some("2") => fail(400, "[ nat ]\nDestination NAT configuration error in rule 2: ports can only be\nspecified when protocol is either tcp, udp or tcp_udp!\n\n[[nat]] failed\nCommit failed\n"),
                Some("3") => fail(400, "Configuration system temporarily locked due to another commit in progress"),
                Some("4") => Reply::Raw(413, "<html><body>413 Request Entity Too Large</body></html>"),
                Some("5") => Reply::Raw(504, "<html>504 Gateway Time-out</html>"),
                Some("6") => Reply::Raw(200, "not json"),
                Some("7") => fail(400, "Another confirm is pending\n"),
                _ => fail(500, "An internal error occured. Check the logs for details."),
            }
        }),
    )
    .await;
    let client = fake.client();
    let call = |n: u32| {
        let client = client.clone();
        async move {
            client
                .configure(&[ConfigOp::set(NatKind::Destination.rule_path(n), "x")])
                .await
                .unwrap_err()
        }
    };
    let e = call(1).await;
    assert!(
        matches!(&e, VyosError::Rejected { message } if message.contains("99999 is not a valid port"))
    );
    let e = call(2).await;
    assert_eq!(e.category(), "CommitFailed");
    assert_eq!(e.failed_nat_rule(), Some(2));
    let e = call(3).await;
    assert_eq!(e.category(), "RouterBusy");
    assert!(e.is_transient());
    assert!(matches!(call(4).await, VyosError::PayloadTooLarge));
    let e = call(5).await;
    assert!(e.is_transient() && e.outcome_unknown());
    assert_eq!(call(6).await.category(), "MalformedResponse");
    assert!(matches!(call(7).await, VyosError::ConfirmPending { .. }));
    assert_eq!(call(8).await.category(), "RouterError");
    assert_eq!(fake.requests().len(), 8, "no write was retried");
}

#[tokio::test]
async fn version_from_info_or_show_version() {
    let v15 = start(
        false,
        Arc::new(|method, path, _| match (method, path) {
            ("GET", "/info?version=true&hostname=true") => {
                ok(json!({"version": "1.5-rolling-202507010024", "hostname": "edge", "banner": ""}))
            }
            _ => fail(404, "Not Found"),
        }),
    )
    .await;
    let v = v15.client().version().await.unwrap();
    assert_eq!(v.version, "1.5-rolling-202507010024");
    assert_eq!(v.hostname.as_deref(), Some("edge"));
    assert!(v.supports_commit_confirm());

    let v14 = start(
        false,
        Arc::new(|_, path, body| match path {
            "/show" if body["path"] == json!(["version"]) => ok(json!(
                "Version:          VyOS 1.4.0\nRelease train:    sagitta\n"
            )),
            _ => Reply::Raw(404, "<html>404 Not Found</html>"),
        }),
    )
    .await;
    let v = v14.client().version().await.unwrap();
    assert_eq!(v.version, "1.4.0");
    assert!(!v.supports_commit_confirm());
}

#[tokio::test]
async fn commit_confirm_requests() {
    let fake = start(
        false,
        Arc::new(|_, _, body| match body["op"].as_str() {
            Some("confirm") => ok(json!("Reboot timer stopped\n")),
            // As 1.5 sends it: the commit's (empty) output, "\n", config-mgmt's line.
            _ => ok(json!(
                "\nInitialized commit-confirm; 5 minutes to confirm before reboot\n"
            )),
        }),
    )
    .await;
    let client = fake.client();
    let op = ConfigOp::set_node(NatKind::Destination.rule_path(9));
    let out = client.configure_confirm(&[op], 5).await.unwrap();
    assert!(out.unwrap().contains("Initialized commit-confirm"));
    assert!(client.confirm().await.unwrap().contains("timer stopped"));
    let reqs = fake.requests();
    assert_eq!(reqs[0].1["confirm_time"], json!(5));
    assert_eq!(reqs[1].1, json!({"key": KEY, "op": "confirm"}));
    assert!(client.configure_confirm(&[], 0).await.is_err());
}
