//! vyos-sim at the HTTP level: what a client of VyOS sees on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vyos_sim::{CostModel, Faults, SimOp, SimOptions, Version};

const KEY: &str = "test-key";

struct Answer {
    status: u16,
    content_type: String,
    raw: String,
    body: Value,
}

/// One HTTP/1.0 request; the server closes the connection after the answer.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    ctype: Option<&str>,
    body: &[u8],
) -> Answer {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(c) = ctype {
        req.push_str(&format!("Content-Type: {c}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, raw) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        raw: raw.to_owned(),
        body: serde_json::from_str(raw).unwrap_or(Value::Null),
    }
}

async fn json_post(addr: SocketAddr, path: &str, body: Value) -> Answer {
    http(
        addr,
        "POST",
        path,
        Some("application/json"),
        body.to_string().as_bytes(),
    )
    .await
}

fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    serde_urlencoded_pairs(fields).into_bytes()
}

fn serde_urlencoded_pairs(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn sim(version: Version) -> vyos_sim::Sim {
    let mut o = SimOptions::for_tests();
    o.version = version;
    vyos_sim::start(o).await.unwrap()
}

/// A 1.5 simulator whose requests cost what `cost` says.
async fn sim_costing(cost: CostModel) -> vyos_sim::Sim {
    let mut o = SimOptions::for_tests();
    o.cost = cost;
    vyos_sim::start(o).await.unwrap()
}

fn set(path: &str) -> Value {
    json!({"op": "set", "path": path.split(' ').collect::<Vec<_>>()})
}

/// The simulator's admin endpoint address.
fn admin_addr(sim: &vyos_sim::Sim) -> SocketAddr {
    sim.admin_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap()
}

async fn configure(addr: SocketAddr, cmds: Vec<Value>) -> Answer {
    json_post(addr, "/configure", json!({"key": KEY, "commands": cmds})).await
}

fn good_rule(n: u32) -> Vec<Value> {
    vec![
        set(&format!("nat destination rule {n} protocol tcp")),
        set(&format!("nat destination rule {n} destination port 2222")),
        set(&format!(
            "nat destination rule {n} inbound-interface name eth0"
        )),
        set(&format!(
            "nat destination rule {n} translation address 10.0.0.5"
        )),
        set(&format!("nat destination rule {n} translation port 22")),
    ]
}

#[tokio::test]
async fn envelope_content_type_and_statuses() {
    let sim = sim(Version::V1_5).await;
    let a = sim.addr();
    let ok = json_post(
        a,
        "/retrieve",
        json!({"key": KEY, "op": "showConfig", "path": []}),
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.content_type, "text/html; charset=utf-8");
    assert!(
        ok.raw.starts_with(r#"{"success": true, "data": "#),
        "{}",
        ok.raw
    );
    assert!(ok.raw.ends_with(r#", "error": null}"#), "{}", ok.raw);

    let wrong = json_post(
        a,
        "/retrieve",
        json!({"key": "nope", "op": "showConfig", "path": []}),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.body["error"].as_str()),
        (401, Some("Valid API key is required"))
    );
    assert_eq!(
        wrong.raw,
        r#"{"success": false, "error": "Valid API key is required", "data": null}"#
    );
    let missing = http(
        a,
        "POST",
        "/retrieve",
        Some("application/x-www-form-urlencoded"),
        &form(&[("data", r#"{"op": "exists", "path": []}"#)]),
    )
    .await;
    assert_eq!(missing.status, 401);
    // The form check's command errors come before its missing key (vyos-1x routers.py,
    // MultipartRequest.body(): `form_err` keeps the first error it is given, and the key
    // is checked after the commands).
    let missing_and_malformed = http(
        a,
        "POST",
        "/retrieve",
        Some("application/x-www-form-urlencoded"),
        &form(&[("data", "{}")]),
    )
    .await;
    assert_eq!(
        (
            missing_and_malformed.status,
            missing_and_malformed.body["error"].as_str()
        ),
        (400, Some("Malformed command '{}': missing 'op' field"))
    );
    let no_data = http(
        a,
        "POST",
        "/retrieve",
        Some("application/x-www-form-urlencoded"),
        &form(&[("key", KEY)]),
    )
    .await;
    assert_eq!(
        (no_data.status, no_data.body["error"].as_str()),
        (422, Some("Non-empty data field is required"))
    );
    let bad_json = http(
        a,
        "POST",
        "/retrieve",
        Some("application/x-www-form-urlencoded"),
        &form(&[("key", KEY), ("data", "{not json")]),
    )
    .await;
    assert_eq!(bad_json.status, 400);
    assert!(
        bad_json.body["error"]
            .as_str()
            .unwrap()
            .starts_with("Failed to parse JSON")
    );
    let unknown_op = json_post(
        a,
        "/configure",
        json!({"key": KEY, "op": "save", "path": ["x"]}),
    )
    .await;
    assert_eq!(
        (unknown_op.status, unknown_op.body["error"].as_str()),
        (400, Some("'save' is not a valid operation"))
    );
    // 1.5's /configure takes Union[ConfigureModel, ConfigureListModel, ConfirmModel]: a
    // command without a path is a ConfirmModel, whose only op is confirm.
    let no_path = json_post(a, "/configure", json!({"key": KEY, "op": "set"})).await;
    assert_eq!(
        (no_path.status, no_path.body["error"].as_str()),
        (400, Some("'set' is not a valid operation"))
    );
    let not_found = json_post(a, "/commit", json!({"key": KEY})).await;
    assert_eq!(
        (not_found.status, not_found.raw.as_str()),
        (404, r#"{"detail":"Not Found"}"#)
    );
    let internal = {
        sim.set_faults(Faults {
            error_rate: 1.0,
            ..Faults::default()
        });
        json_post(
            a,
            "/retrieve",
            json!({"key": KEY, "op": "exists", "path": ["nat"]}),
        )
        .await
    };
    assert_eq!(internal.status, 500);
    assert_eq!(
        internal.body["error"],
        "An internal error occured. Check the logs for details."
    );
    sim.set_faults(Faults::default());
    let c = sim.counters();
    assert_eq!(c.requests["/retrieve"], 7);
    assert_eq!(c.retrieve_requests, 7);
}

#[tokio::test]
async fn both_encodings_reach_the_same_config() {
    let sim = sim(Version::V1_4).await;
    let a = sim.addr();
    // Form, urlencoded, a list in data.
    let cmds = Value::Array(good_rule(100)).to_string();
    let r = http(
        a,
        "POST",
        "/configure",
        Some("application/x-www-form-urlencoded"),
        &form(&[("key", KEY), ("data", &cmds)]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["data"], Value::Null, "1.4 answers data null");
    // Form, multipart, one command.
    let boundary = "XyZ";
    let one = json!({"op": "set", "path": ["nat", "destination", "rule", "100", "description"], "value": "vmnet:a/b"}).to_string();
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n{KEY}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n{one}\r\n--{boundary}--\r\n"
    );
    let r = http(
        a,
        "POST",
        "/configure",
        Some(&format!("multipart/form-data; boundary={boundary}")),
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    // JSON body reads it back.
    let r = json_post(
        a,
        "/retrieve",
        json!({"key": KEY, "op": "showConfig", "path": ["nat", "destination", "rule", "100"]}),
    )
    .await;
    assert_eq!(
        r.body["data"],
        json!({"description": "vmnet:a/b", "destination": {"port": "2222"}, "inbound-interface": {"name": "eth0"},
               "protocol": "tcp", "translation": {"address": "10.0.0.5", "port": "22"}})
    );
    let c = sim.counters();
    assert_eq!((c.configure_requests, c.commits, c.ops_applied), (2, 2, 6));
}

#[tokio::test]
async fn show_config_renders_like_vyos() {
    let sim = sim(Version::V1_5).await;
    let a = sim.addr();
    let empty = json_post(
        a,
        "/retrieve",
        json!({"key": KEY, "op": "showConfig", "path": ["nat", "destination"]}),
    )
    .await;
    assert_eq!(
        (empty.status, empty.body["error"].as_str()),
        (400, Some("Configuration under specified path is empty\n"))
    );
    let invalid = json_post(
        a,
        "/retrieve",
        json!({"key": KEY, "op": "showConfig", "path": ["nat", "bogus"]}),
    )
    .await;
    assert_eq!(
        invalid.body["error"],
        "Specified configuration path is not valid\n"
    );
    let mut cmds = good_rule(110);
    cmds.push(set("nat destination rule 110 log"));
    cmds.push(set("nat destination rule 110 disable"));
    cmds.push(set(
        "nat destination rule 110 load-balance hash source-address",
    ));
    cmds.push(set(
        "nat destination rule 110 load-balance backend 10.0.0.6 weight 50",
    ));
    cmds.extend(good_rule(9));
    assert_eq!(configure(a, cmds).await.status, 200);
    let r = json_post(
        a,
        "/retrieve",
        json!({"key": KEY, "op": "showConfig", "path": ["nat", "destination"]}),
    )
    .await;
    let rule = &r.body["data"]["rule"]["110"];
    assert_eq!(rule["log"], json!({}));
    assert_eq!(rule["disable"], json!({}));
    assert_eq!(
        rule["load-balance"]["hash"], "source-address",
        "a one-value multi leaf is a string"
    );
    assert_eq!(rule["load-balance"]["backend"]["10.0.0.6"]["weight"], "50");
    assert!(rule.get("packet-type").is_none(), "no defaults");
    assert!(
        r.body["data"]["rule"]["9"].is_object(),
        "tag values are string keys"
    );
    assert_eq!(
        configure(
            a,
            vec![set(
                "nat destination rule 110 load-balance hash destination-address"
            )]
        )
        .await
        .status,
        200
    );
    let r = json_post(a, "/retrieve", json!({"key": KEY, "op": "returnValues", "path": ["nat", "destination", "rule", "110", "load-balance", "hash"]})).await;
    assert_eq!(
        r.body["data"],
        json!(["source-address", "destination-address"])
    );
    let r = json_post(a, "/retrieve", json!({"key": KEY, "op": "exists", "path": ["nat", "destination", "rule", "110", "protocol", "tcp"]})).await;
    assert_eq!(r.body["data"], json!(true));
    let r = json_post(a, "/retrieve", json!({"key": KEY, "op": "returnValue", "path": ["nat", "destination", "rule", "7", "protocol"]})).await;
    assert_eq!(r.body["data"], Value::Null);
}

/// The reference's validation cases, valid and invalid, with VyOS's texts, on both versions.
#[tokio::test]
async fn nat_validation_table() {
    struct Case {
        what: &'static str,
        cmds: Vec<Value>,
        /// None: accepted. Some((status, text in the error)).
        want: Option<&'static str>,
        commit_time: bool,
    }
    let rule = |extra: &[&str], drop: &[&str]| -> Vec<Value> {
        let mut v: Vec<Value> = good_rule(100)
            .into_iter()
            .filter(|c| {
                !drop
                    .iter()
                    .any(|d| c["path"].as_array().unwrap().iter().any(|p| p == d))
            })
            .collect();
        v.extend(
            extra
                .iter()
                .map(|p| set(&format!("nat destination rule 100 {p}"))),
        );
        v
    };
    let cases = vec![
        Case {
            what: "a complete DNAT rule",
            cmds: rule(&[], &[]),
            want: None,
            commit_time: false,
        },
        Case {
            what: "exclude needs no translation",
            cmds: vec![set("nat destination rule 100 exclude")],
            want: None,
            commit_time: false,
        },
        Case {
            what: "source NAT masquerade",
            cmds: vec![
                set("nat source rule 100 outbound-interface name eth0"),
                set("nat source rule 100 translation address masquerade"),
            ],
            want: None,
            commit_time: false,
        },
        Case {
            what: "port list with a service and negation",
            cmds: rule(&["source port 80,443,!22,https"], &[]),
            want: None,
            commit_time: false,
        },
        Case {
            what: "bad port",
            cmds: rule(&["destination port 99999"], &[]),
            want: Some("Error: 99999 is not a valid port"),
            commit_time: false,
        },
        Case {
            what: "bad translation port list",
            cmds: rule(&["translation port 80,443"], &[]),
            want: Some("Error: 80,443 is not a valid service name"),
            commit_time: false,
        },
        Case {
            what: "host bits in a prefix",
            cmds: rule(&["source address 10.0.0.5/24"], &[]),
            want: Some("Error: 10.0.0.5/24 is not a valid IPv4"),
            commit_time: false,
        },
        Case {
            what: "bad protocol",
            cmds: rule(&["protocol tcpp"], &["tcp"]),
            want: Some("Error: tcpp is not a valid IP protocol"),
            commit_time: false,
        },
        Case {
            what: "rule number 0",
            cmds: vec![set("nat destination rule 0 exclude")],
            want: Some("NAT rule number must be between 1 and 999999"),
            commit_time: false,
        },
        Case {
            what: "unknown leaf",
            cmds: rule(&["colour red"], &[]),
            want: Some("Configuration path: [nat destination rule 100 colour red] is not valid"),
            commit_time: false,
        },
        Case {
            what: "value leaf without value",
            cmds: vec![set("nat destination rule 100 protocol")],
            want: Some("Configuration path: [nat destination rule 100 protocol] requires a value"),
            commit_time: false,
        },
        Case {
            what: "quote in a description",
            cmds: vec![
                json!({"op": "set", "path": ["nat", "destination", "rule", "100", "description"], "value": "it's"}),
            ],
            want: Some("Cannot use the single quote (') character in a value string"),
            commit_time: false,
        },
        Case {
            what: "ports without a protocol",
            cmds: rule(&[], &["tcp"]),
            want: Some(
                "Destination NAT configuration error in rule 100: ports can only be specified when protocol is either tcp, udp or tcp_udp!",
            ),
            commit_time: true,
        },
        Case {
            what: "no translation",
            cmds: vec![set("nat destination rule 100 protocol tcp")],
            want: Some(
                "Destination NAT configuration error in rule 100: translation requires address and/or port",
            ),
            commit_time: true,
        },
        Case {
            what: "interface name and group",
            cmds: rule(&["inbound-interface group lan"], &[]),
            want: Some(
                "cannot specify both interface group and interface name for destination nat rule \"100\"",
            ),
            commit_time: true,
        },
        Case {
            what: "missing port-group",
            cmds: rule(&["destination group port-group web"], &[]),
            want: Some("Invalid port-group \"web\" on nat rule"),
            commit_time: true,
        },
    ];
    assert!(cases.len() >= 15);
    for version in [Version::V1_4, Version::V1_5] {
        for c in &cases {
            let sim = sim(version).await;
            let a = sim.addr();
            let r = configure(a, c.cmds.clone()).await;
            let err = r.body["error"].as_str().unwrap_or_default().to_owned();
            match (c.want, c.commit_time, version) {
                (None, _, _) => assert_eq!(r.status, 200, "{version:?} {}: {err}", c.what),
                (Some(text), false, _) => {
                    assert_eq!(r.status, 400, "{version:?} {}", c.what);
                    let flat = err.split_whitespace().collect::<Vec<_>>().join(" ");
                    assert!(flat.contains(text), "{version:?} {}: {err:?}", c.what);
                    assert!(
                        err.ends_with("Set failed"),
                        "{version:?} {}: {err:?}",
                        c.what
                    );
                }
                (Some(text), true, Version::V1_5) => {
                    assert_eq!(r.status, 400, "{}", c.what);
                    assert!(
                        err.starts_with("[ nat ]\n")
                            && err.ends_with("[[nat]] failed\nCommit failed\n"),
                        "{err:?}"
                    );
                    let flat = err.split_whitespace().collect::<Vec<_>>().join(" ");
                    assert!(flat.contains(text), "{}: {err:?}", c.what);
                    assert!(err.lines().all(|l| l.len() <= 72), "wrapped at 72: {err:?}");
                }
                (Some(_), true, Version::V1_4) => {
                    assert_eq!(
                        (r.status, err.as_str()),
                        (400, "[[nat]] failed\nCommit failed\n"),
                        "{}",
                        c.what
                    );
                }
            }
            if c.want.is_some() {
                // Nothing of a failed request stays.
                assert_eq!(sim.running_config(), json!({}), "{version:?} {}", c.what);
                assert_eq!(sim.counters().commits, 0);
            }
        }
    }
}

#[tokio::test]
async fn a_failing_request_changes_nothing() {
    let sim = sim(Version::V1_5).await;
    let a = sim.addr();
    assert_eq!(configure(a, good_rule(1)).await.status, 200);
    let before = sim.running_config();
    // A good op, then a bad one: the good one is undone too.
    let r = configure(
        a,
        vec![
            set("nat destination rule 1 translation port 2022"),
            set("nat destination rule 1 destination port 0"),
        ],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(sim.running_config(), before);
    // A delete of what does not exist succeeds and commits nothing.
    let r = configure(
        a,
        vec![json!({"op": "delete", "path": ["nat", "destination", "rule", "77"]})],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(sim.counters().commits, 1);
    // Deleting the only rule leaves no empty parents.
    let r = configure(
        a,
        vec![json!({"op": "delete", "path": ["nat", "destination", "rule", "1"]})],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(sim.running_config(), json!({}));
}

#[tokio::test]
async fn commit_confirm_reverts_to_the_saved_config_unless_confirmed() {
    let sim = sim(Version::V1_5).await;
    let a = sim.addr();
    assert_eq!(configure(a, good_rule(1)).await.status, 200);
    let r = json_post(a, "/config-file", json!({"key": KEY, "op": "save"})).await;
    assert_eq!((r.status, r.body["data"].clone()), (200, json!("")));
    let saved = sim.saved_config();
    let r = json_post(
        a,
        "/configure",
        json!({"key": KEY, "commands": good_rule(2), "confirm_time": 5}),
    )
    .await;
    assert_eq!(
        r.body["data"],
        "\nInitialized commit-confirm; 5 minutes to confirm before reboot\n"
    );
    assert!(sim.running_config()["nat"]["destination"]["rule"]["2"].is_object());
    let again = json_post(
        a,
        "/configure",
        json!({"key": KEY, "commands": good_rule(3), "confirm_time": 5}),
    )
    .await;
    assert_eq!(
        (again.status, again.body["error"].as_str()),
        (400, Some("Another confirm is pending\n"))
    );
    assert!(
        sim.running_config()["nat"]["destination"]["rule"]["3"].is_object(),
        "the commit happened"
    );
    // Not confirmed: the revert (fired now instead of in 5 minutes) restores the saved config.
    let admin = admin_addr(&sim);
    let r = http(admin, "POST", "/confirm-timeout", None, b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(sim.running_config(), saved);
    // Confirmed in time: stays.
    let r = json_post(
        a,
        "/configure",
        json!({"key": KEY, "commands": good_rule(4), "confirm_time": 1}),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = json_post(a, "/configure", json!({"key": KEY, "op": "confirm"})).await;
    assert_eq!(r.body["data"], "Reboot timer stopped\n");
    assert!(!sim.expire_confirm());
    assert!(sim.running_config()["nat"]["destination"]["rule"]["4"].is_object());
    let r = json_post(a, "/configure", json!({"key": KEY, "op": "confirm"})).await;
    assert_eq!(r.body["data"], "No confirm pending\n");
}

#[tokio::test]
async fn version_14_has_no_info_and_no_commit_confirm() {
    let sim = sim(Version::V1_4).await;
    let a = sim.addr();
    let r = http(a, "GET", "/info?version=true&hostname=true", None, b"").await;
    assert_eq!(r.status, 404);
    let r = json_post(
        a,
        "/configure",
        json!({"key": KEY, "commands": good_rule(2), "confirm_time": 5}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["data"].clone()),
        (200, Value::Null),
        "confirm_time is ignored"
    );
    // 1.4 has no ConfirmModel: the body fails ConfigureModel, whose first error pydantic 1
    // reports.
    let r = json_post(a, "/configure", json!({"key": KEY, "op": "confirm"})).await;
    assert_eq!(
        r.body["error"],
        "{'loc': ('body', 'path'), 'msg': 'field required', 'type': 'value_error.missing'}"
    );
    let r = json_post(a, "/config-file", json!({"key": KEY, "op": "confirm"})).await;
    assert_eq!(r.body["error"], "'confirm' is not a valid operation");
    let r = json_post(
        a,
        "/show",
        json!({"key": KEY, "op": "show", "path": ["version"]}),
    )
    .await;
    assert!(
        r.body["data"]
            .as_str()
            .unwrap()
            .contains("Version:          VyOS 1.4")
    );
    let sim15 = sim_15().await;
    let r = http(
        sim15.addr(),
        "GET",
        "/info?version=true&hostname=true",
        None,
        b"",
    )
    .await;
    assert!(
        r.body["data"]["version"]
            .as_str()
            .unwrap()
            .starts_with("1.5")
    );
}

async fn sim_15() -> vyos_sim::Sim {
    sim(Version::V1_5).await
}

#[tokio::test]
async fn state_survives_a_restart_on_the_same_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = SimOptions::for_tests();
    o.state_file = Some(dir.path().join("state.json"));
    let first = vyos_sim::start(o.clone()).await.unwrap();
    assert_eq!(configure(first.addr(), good_rule(5)).await.status, 200);
    let addr = first.addr();
    let before = first.running_config();
    first.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "stopped means not listening"
    );
    o.listen = addr;
    let second = vyos_sim::start(o).await.unwrap();
    assert_eq!(second.addr(), addr);
    assert_eq!(second.running_config(), before);
}

#[tokio::test]
async fn admin_endpoint_faults_edits_and_counters() {
    let sim = sim(Version::V1_5).await;
    let admin = admin_addr(&sim);
    let put = |path: &'static str, body: &'static str| async move {
        http(
            admin,
            "PUT",
            path,
            Some("application/json"),
            body.as_bytes(),
        )
        .await
    };
    assert_eq!(
        put("/faults", r#"{"fail_commits": true}"#).await.status,
        204
    );
    let r = configure(sim.addr(), good_rule(1)).await;
    assert_eq!(r.body["error"], "[[nat]] failed\nCommit failed\n");
    assert_eq!(put("/faults", "{}").await.status, 204);
    assert_eq!(
        put("/faults", r#"{"error_rate": "lots"}"#).await.status,
        400
    );
    assert_eq!(put("/api-keys", r#"["k2"]"#).await.status, 204);
    assert_eq!(configure(sim.addr(), good_rule(1)).await.status, 401);
    assert_eq!(put("/api-keys", r#"["test-key"]"#).await.status, 204);

    let edit = json!([
        {"op": "set", "path": ["nat", "destination", "rule", "900", "translation", "address", "10.9.9.9"]},
        {"op": "set", "path": ["nat", "destination", "rule", "900", "description", "by hand"]}
    ]);
    let r = http(
        admin,
        "POST",
        "/edit",
        Some("application/json"),
        edit.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.raw);
    let bad =
        json!([{"op": "set", "path": ["nat", "destination", "rule", "901", "protocol", "tcp"]}]);
    let r = http(
        admin,
        "POST",
        "/edit",
        Some("application/json"),
        bad.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(
        r.raw.contains("translation requires address and/or port"),
        "{}",
        r.raw
    );
    let r = http(admin, "GET", "/config", None, b"").await;
    assert_eq!(
        r.body["nat"]["destination"]["rule"]["900"]["description"],
        "by hand"
    );
    sim.third_party_edit(vec![SimOp::Delete(vec![
        "nat".into(),
        "destination".into(),
        "rule".into(),
        "900".into(),
    ])])
    .unwrap();
    assert_eq!(sim.running_config(), json!({}));

    let r = http(admin, "GET", "/counters", None, b"").await;
    assert_eq!(r.body["failed_commits"], 1);
    assert_eq!(r.body["requests"]["/configure"], 2);
    assert_eq!(
        http(admin, "POST", "/counters/reset", None, b"")
            .await
            .status,
        204
    );
    assert_eq!(sim.counters(), vyos_sim::Counters::default());
}

#[tokio::test]
async fn commits_cost_more_as_the_rule_set_grows() {
    let mut o = SimOptions::for_tests();
    o.cost = CostModel {
        time_scale: 0.02,
        ..CostModel::realistic()
    };
    o.cost.commit_per_rule_ms = 50.0;
    let sim = vyos_sim::start(o).await.unwrap();
    let timed = |cmds: Vec<Value>| {
        let a = sim.addr();
        async move {
            let t = std::time::Instant::now();
            assert_eq!(configure(a, cmds).await.status, 200);
            t.elapsed()
        }
    };
    let small = timed(good_rule(1)).await;
    let many: Vec<Value> = (10..60).flat_map(good_rule).collect();
    timed(many).await;
    let big = timed(good_rule(2)).await;
    println!("one-rule commit: {small:?} with 1 rule, {big:?} with 52 rules");
    assert!(
        big > small + Duration::from_millis(20),
        "{small:?} vs {big:?}"
    );
}

/// Enough `good_rule`s, from `first`, for a body of about `bytes`.
fn rules_of_about(first: u32, bytes: usize) -> Vec<Value> {
    let mut cmds = Vec::new();
    let mut n = first;
    let mut len = json!({"key": KEY, "commands": []}).to_string().len();
    while len < bytes {
        for c in good_rule(n) {
            len += c.to_string().len() + 1;
            cmds.push(c);
        }
        n += 1;
    }
    cmds
}

#[tokio::test]
async fn bodies_over_the_https_size_limit_get_nginxs_413_and_change_nothing() {
    let mut o = SimOptions::for_tests();
    o.request_body_size_limit_mib = 1;
    let sim = vyos_sim::start(o).await.unwrap();
    let a = sim.addr();
    const MIB: usize = 1024 * 1024;

    // Just under the limit: committed.
    let mut under = rules_of_about(1, MIB - 2_000);
    while json!({"key": KEY, "commands": under}).to_string().len() > MIB {
        under.truncate(under.len() - 5);
    }
    let r = configure(a, under).await;
    assert_eq!(
        (r.status, r.body["success"].clone()),
        (200, json!(true)),
        "{}",
        r.raw
    );

    // Over it, in each encoding: nginx's HTML page, and nothing applied.
    let before = sim.counters();
    let over = rules_of_about(10_000, MIB + 1);
    let json_body = json!({"key": KEY, "commands": over}).to_string();
    let form_body = form(&[("key", KEY), ("data", &Value::Array(over).to_string())]);
    for (ctype, body) in [
        ("application/json", json_body.as_bytes()),
        ("application/x-www-form-urlencoded", form_body.as_slice()),
    ] {
        let r = http(a, "POST", "/configure", Some(ctype), body).await;
        assert_eq!(r.status, 413, "{ctype}: {}", r.raw);
        assert_eq!(r.content_type, "text/html", "{ctype}");
        assert!(
            r.raw
                .contains("<title>413 Request Entity Too Large</title>"),
            "{}",
            r.raw
        );
    }
    let after = sim.counters();
    assert_eq!(after.commits, before.commits, "a refused body committed");
    assert_eq!(after.configure_requests, before.configure_requests);
    assert_eq!(after.too_large, before.too_large + 2);

    // A raised limit lets the same request through.
    let mut o = SimOptions::for_tests();
    o.request_body_size_limit_mib = 2;
    let big = vyos_sim::start(o).await.unwrap();
    let r = http(
        big.addr(),
        "POST",
        "/configure",
        Some("application/json"),
        json_body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.raw);
}

/// A form request, as pyvyos and `curl --form` send one: `key`, and `data` as JSON text.
async fn form_post(addr: SocketAddr, path: &str, data: Value) -> Answer {
    http(
        addr,
        "POST",
        path,
        Some("application/x-www-form-urlencoded"),
        &form(&[("key", KEY), ("data", &data.to_string())]),
    )
    .await
}

fn error_of(a: &Answer) -> (u16, String) {
    (
        a.status,
        a.body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// `comment` takes its text in `value` (vyos-1x routers.py: `elif op == 'comment':
/// session.comment(path, value=value)`; configsession.py: `self.__run_command([COMMENT] +
/// path + value)`, the text as the last argument of `my_comment`). vyatta-cfg's
/// `Cstore::commentCfgPath` then checks, in this order: the template path
/// (`Configuration path: [...] is not valid`), `"The specified config node does not
/// exist\n"`, `"Cannot comment on config values\n"`, `"Cannot add comment at this
/// level\n"` (a tag node), `"Cannot use the '*' character in a comment\n"`; cli_bin's
/// `bye()` adds `"Comment failed\n"`.
#[tokio::test]
async fn comment_takes_its_text_in_value_and_is_checked_as_vyos_checks_it() {
    for version in [Version::V1_4, Version::V1_5] {
        let sim = sim(version).await;
        let a = sim.addr();
        assert_eq!(configure(a, good_rule(200)).await.status, 200);
        let before = sim.running_config();
        let comment = |path: &str, text: &str| json!({"op": "comment", "path": path.split(' ').collect::<Vec<_>>(), "value": text});
        let r = configure(a, vec![comment("nat destination rule 200", "a comment")]).await;
        assert_eq!(r.status, 200, "{version:?}: {}", r.raw);
        assert_eq!(sim.running_config(), before, "comments are not kept");
        let r = configure(
            a,
            vec![comment("nat destination rule 200 translation", "why")],
        )
        .await;
        assert_eq!(r.status, 200, "{version:?}: {}", r.raw);
        for (path, text, want) in [
            (
                "nat destination rule 201",
                "x",
                "The specified config node does not exist\nComment failed",
            ),
            (
                "nat destination rule 200 bogus",
                "x",
                "Configuration path: [nat destination rule 200 bogus] is not valid\n\nComment failed",
            ),
            (
                "nat destination rule 200 protocol tcp",
                "x",
                "Cannot comment on config values\nComment failed",
            ),
            (
                "nat destination rule",
                "x",
                "Cannot add comment at this level\nComment failed",
            ),
            (
                "nat destination rule 200",
                "a */ b",
                "Cannot use the '*' character in a comment\nComment failed",
            ),
        ] {
            let r = configure(a, vec![comment(path, text)]).await;
            assert_eq!(error_of(&r), (400, want.to_owned()), "{version:?} {path}");
        }
    }
}

/// A command without `path` is refused. The form check (vyos-1x `MultipartRequest.body()`,
/// sagitta's vyos-http-api-server and current's routers.py alike):
///     if endpoint not in ('/config-file', '/container-image', '/image',
///                         '/configure-section', '/traceroute'):
///         if 'path' not in c:
///             self.form_err = (400, f"Malformed command '{c}': missing 'path' field")
/// prints the command with Python's str(). A JSON body meets pydantic alone
/// (`RetrieveModel.path: List[StrictStr]`, required on 1.4 and 1.5) and
/// `validation_exception_handler`'s `error(400, str(exc.errors()[0]))`.
#[tokio::test]
async fn a_command_without_path_is_malformed_as_vyos_says() {
    for version in [Version::V1_4, Version::V1_5] {
        let sim = sim(version).await;
        let a = sim.addr();
        // pyvyos's showConfig of the root.
        let r = form_post(a, "/retrieve", json!({"op": "showConfig"})).await;
        assert_eq!(
            error_of(&r),
            (
                400,
                "Malformed command '{'op': 'showConfig'}': missing 'path' field".to_owned()
            ),
            "{version:?}"
        );
        let r = form_post(a, "/show", json!({"op": "show"})).await;
        assert_eq!(
            error_of(&r),
            (
                400,
                "Malformed command '{'op': 'show'}': missing 'path' field".to_owned()
            )
        );
        // `f"Malformed command '{0}': ..."` in VyOS's source prints a literal 0.
        let r = form_post(a, "/configure", json!([{"op": "set", "path": ["nat", 7]}])).await;
        assert_eq!(
            error_of(&r),
            (
                400,
                "Malformed command '0': 'path' field must be a list of strings".to_owned()
            )
        );
        // Nested values in Python's repr: True, None, lists with ', '.
        let r = form_post(
            a,
            "/configure",
            json!([{"op": "set", "path": ["nat"], "value": true}, {"op": "delete", "path": []}]),
        )
        .await;
        assert_eq!(
            error_of(&r),
            (
                400,
                "Malformed command '{'op': 'set', 'path': ['nat'], 'value': True}': 'value' field must be a string"
                    .to_owned()
            )
        );
        // /config-file needs no path.
        let r = form_post(a, "/config-file", json!({"op": "save"})).await;
        assert_eq!(r.status, 200, "{}", r.raw);
        // A JSON body: pydantic 1's error on 1.4, pydantic 2's on 1.5.
        let r = json_post(a, "/retrieve", json!({"key": KEY, "op": "showConfig"})).await;
        let want = match version {
            Version::V1_4 => {
                "{'loc': ('body', 'path'), 'msg': 'field required', 'type': 'value_error.missing'}"
                    .to_owned()
            }
            Version::V1_5 => format!(
                "{{'type': 'missing', 'loc': ('body', 'path'), 'msg': 'Field required', 'input': {{'key': '{KEY}', 'op': 'showConfig'}}}}"
            ),
        };
        assert_eq!(error_of(&r), (400, want), "{version:?}");
        // The root is `"path": []`.
        let r = form_post(a, "/retrieve", json!({"op": "showConfig", "path": []})).await;
        assert_eq!((r.status, r.body["data"].clone()), (200, json!({})));
    }
    // 1.5's ConfirmModel takes a form `confirm` without path; a form `set` without path
    // validates as ConfirmModel too, whose only op is confirm.
    let sim = sim(Version::V1_5).await;
    let r = form_post(sim.addr(), "/configure", json!({"op": "confirm"})).await;
    assert_eq!(
        (r.status, r.body["data"].clone()),
        (200, json!("No confirm pending\n"))
    );
    let r = form_post(sim.addr(), "/configure", json!({"op": "set", "path": []})).await;
    assert_eq!(
        error_of(&r),
        (400, "'set' is not a valid operation".to_owned())
    );
    let sim = self::sim(Version::V1_4).await;
    let r = form_post(sim.addr(), "/configure", json!({"op": "set", "path": []})).await;
    assert_eq!(
        error_of(&r),
        (
            400,
            "Malformed command '{'op': 'set', 'path': []}': 'path' list must be non-empty"
                .to_owned()
        )
    );
}

/// `save` answers what vyos-save-config.py prints: nothing (routers.py / sagitta's
/// vyos-http-api-server: `msg = session.save_config(path)`; configsession.py:
/// `out = self.__run_command(SAVE_CONFIG + [file_path]); return out`; the script only
/// writes the file). "Saving configuration to ..." is the CLI's text, not the API's.
#[tokio::test]
async fn save_answers_empty_data_and_saves_only_the_boot_config() {
    for version in [Version::V1_4, Version::V1_5] {
        let sim = sim(version).await;
        let a = sim.addr();
        assert_eq!(configure(a, good_rule(3)).await.status, 200);
        let r = json_post(
            a,
            "/config-file",
            json!({"key": KEY, "op": "save", "file": "/config/other.boot"}),
        )
        .await;
        assert_eq!(
            (r.status, r.raw.as_str()),
            (200, r#"{"success": true, "data": "", "error": null}"#)
        );
        assert_eq!(
            sim.saved_config(),
            json!({}),
            "another file is not the boot config"
        );
        let r = json_post(a, "/config-file", json!({"key": KEY, "op": "save"})).await;
        assert_eq!((r.status, r.body["data"].clone()), (200, json!("")));
        assert_eq!(sim.saved_config(), sim.running_config());
    }
}

/// A path VyOS's schema does not have is refused at set time (vyatta-cfg
/// `Cstore::get_parsed_tmpl`: `error = "Configuration path: ["+path_comps.to_string()+"]
/// is not valid\n"`, printed with `output_user("%s\n", ...)`, then `bye()`'s
/// `"Set failed\n"` / `"Delete failed\n"`); showConfig tells an invalid path from an empty
/// one (cnode-algorithm.cpp `show_cfg_diff`: `"Specified configuration path is not
/// valid\n"`, `"Configuration under specified path is empty\n"`). The node names are
/// vyos-1x's interface-definitions (sagitta for 1.4, current for 1.5).
#[tokio::test]
async fn paths_outside_vyos_schema_are_refused() {
    let sim14 = sim(Version::V1_4).await;
    let sim15 = sim(Version::V1_5).await;
    for sim in [&sim14, &sim15] {
        let a = sim.addr();
        let r = configure(a, vec![set("bogus x")]).await;
        assert_eq!(
            error_of(&r),
            (
                400,
                "Configuration path: [bogus x] is not valid\n\nSet failed".to_owned()
            )
        );
        let r = configure(a, vec![json!({"op": "delete", "path": ["bogus"]})]).await;
        assert_eq!(
            error_of(&r),
            (
                400,
                "Configuration path: [bogus] is not valid\n\nDelete failed".to_owned()
            )
        );
        for bad in [
            "system bogus 1",
            "nat bogus",
            "firewall ipv4 forward filter rule 10 bogus 1",
            "firewall ipv4 forward bogus",
            "service dhcp-server shared-network-name LAN bogus 1",
        ] {
            let r = configure(a, vec![set(bad)]).await;
            assert_eq!(
                error_of(&r),
                (
                    400,
                    format!("Configuration path: [{bad}] is not valid\n\nSet failed")
                ),
                "{bad}"
            );
        }
        let r = configure(
            a,
            vec![set("firewall ipv4 forward filter rule 0 action accept")],
        )
        .await;
        assert!(
            error_of(&r)
                .1
                .contains("Firewall rule number must be between 1 and 999999"),
            "{}",
            r.raw
        );
        let r = configure(a, vec![set("system config-management commit-revisions")]).await;
        assert_eq!(
            error_of(&r).1,
            "Configuration path: [system config-management commit-revisions] requires a value\n\nSet failed"
        );
        let show = |path: &[&str]| {
            json_post(
                a,
                "/retrieve",
                json!({"key": KEY, "op": "showConfig", "path": path}),
            )
        };
        assert_eq!(
            error_of(&show(&["bogus"]).await),
            (
                400,
                "Specified configuration path is not valid\n".to_owned()
            )
        );
        assert_eq!(
            error_of(&show(&["interfaces"]).await),
            (
                400,
                "Configuration under specified path is empty\n".to_owned()
            )
        );
        // The levels the operator touches, and a subtree taken without checks below it.
        let ok = vec![
            set("firewall ipv4 forward filter default-action drop"),
            set("firewall ipv4 forward filter rule 10 action accept"),
            set("firewall ipv4 forward filter rule 10 state established"),
            set("firewall ipv4 forward filter rule 10 state related"),
            set("firewall ipv4 forward filter rule 10 log"),
            set("system config-management commit-revisions 100"),
            set("system config-management commit-archive location scp://a/b"),
            set("nat static rule 10 translation address 192.0.2.1"),
            set("interfaces ethernet eth0 description uplink"),
        ];
        let r = configure(a, ok).await;
        assert_eq!(r.status, 200, "{}", r.raw);
        let filter = show(&["firewall", "ipv4", "forward", "filter"]).await;
        assert_eq!(
            filter.body["data"],
            json!({"default-action": "drop", "rule": {"10": {
                "action": "accept", "log": {}, "state": ["established", "related"]}}})
        );
    }
    // Per version: netns and Kea's `mac` are 1.5's; ISC dhcpd's `mac-address` is 1.4's.
    // The subnet is on an interface (the DHCP commit wants one), and has 1.5's subnet-id.
    let subnet = "service dhcp-server shared-network-name LAN subnet 192.0.2.0/24";
    let mapping = format!("{subnet} static-mapping vm1");
    for (sim, good, bad) in [
        (&sim14, "mac-address", "mac"),
        (&sim15, "mac", "mac-address"),
    ] {
        let a = sim.addr();
        let mut cmds = vec![
            set("interfaces ethernet eth1 address 192.0.2.1/24"),
            set(&format!("{mapping} ip-address 192.0.2.10")),
            set(&format!("{mapping} {good} 52:54:00:00:00:01")),
        ];
        if good == "mac" {
            cmds.push(set(&format!("{subnet} subnet-id 1")));
        }
        let r = configure(a, cmds).await;
        assert_eq!(r.status, 200, "{good}: {}", r.raw);
        let r = configure(a, vec![set(&format!("{mapping} {bad} 52:54:00:00:00:01"))]).await;
        assert_eq!(r.status, 400, "{bad}");
    }
    assert_eq!(
        configure(sim14.addr(), vec![set("netns name ns1")])
            .await
            .status,
        400
    );
    assert_eq!(
        configure(sim15.addr(), vec![set("netns name ns1")])
            .await
            .status,
        200
    );
}

/// A DHCP or forward-filter commit that its script refuses: 1.4 says only which component
/// failed (`[[service dhcp-server]] failed`, vyatta-cfg's `"[[%s]] failed\n"`), 1.5 adds
/// the script's message under `[ <component> ]`, wrapped at 72 columns; nothing changes.
#[tokio::test]
async fn dhcp_and_firewall_commit_failures_read_as_each_version_says() {
    let subnet = "service dhcp-server shared-network-name LAN subnet 192.0.2.0/24";
    for v in [Version::V1_4, Version::V1_5] {
        let sim = sim(v).await;
        let a = sim.addr();
        let (mac, id) = match v {
            Version::V1_4 => ("mac-address", None),
            Version::V1_5 => ("mac", Some(set(&format!("{subnet} subnet-id 1")))),
        };
        let mut ok = vec![
            set("interfaces ethernet eth1 address 192.0.2.1/24"),
            set(&format!(
                "{subnet} static-mapping vm1 ip-address 192.0.2.10"
            )),
            set(&format!(
                "{subnet} static-mapping vm1 {mac} 52:54:00:00:00:01"
            )),
        ];
        ok.extend(id);
        let r = configure(a, ok).await;
        assert_eq!(r.status, 200, "{v:?}: {}", r.raw);
        let before = sim.running_config();
        // The same address again, under another name.
        let r = configure(
            a,
            vec![
                set(&format!(
                    "{subnet} static-mapping vm2 ip-address 192.0.2.10"
                )),
                set(&format!(
                    "{subnet} static-mapping vm2 {mac} 52:54:00:00:00:02"
                )),
            ],
        )
        .await;
        let want = match v {
            Version::V1_4 => "[[service dhcp-server]] failed\nCommit failed\n".to_owned(),
            Version::V1_5 => "[ service dhcp-server ]\nConfigured IP address for static mapping \"vm2\" already exists on another\nstatic mapping\n\n[[service dhcp-server]] failed\nCommit failed\n".to_owned(),
        };
        assert_eq!(error_of(&r), (400, want), "{v:?}");
        assert_eq!(sim.running_config(), before);
        // A forward-filter rule without an action.
        let r = configure(
            a,
            vec![set(
                "firewall ipv4 forward filter rule 10 description no-action",
            )],
        )
        .await;
        let want = match v {
            Version::V1_4 => "[[firewall]] failed\nCommit failed\n".to_owned(),
            Version::V1_5 => {
                "[ firewall ]\nRule action must be defined\n\n[[firewall]] failed\nCommit failed\n"
                    .to_owned()
            }
        };
        assert_eq!(error_of(&r), (400, want), "{v:?}");
        // Set-time: the values are checked as VyOS's validators check them.
        let r = configure(
            a,
            vec![set(&format!(
                "{subnet} static-mapping vm3 {mac} 52:54:00:00:00"
            ))],
        )
        .await;
        assert_eq!(
            error_of(&r),
            (
                400,
                "Invalid value\nValue validation failed\nSet failed".to_owned()
            )
        );
        let r = configure(
            a,
            vec![set("firewall ipv4 forward filter rule 10 action allow")],
        )
        .await;
        assert_eq!(
            error_of(&r).1,
            "Invalid value\nValue validation failed\nSet failed"
        );
        assert_eq!(sim.running_config(), before);
    }
}

/// 1.5's commit-confirm texts, as the newer routers.py builds them:
///     out_c = s.session.commit()
///     out_cc = s.session.commit_confirm(minutes=s.confirm_time)
///     out = out_c + '\n' + out_cc
/// where out_cc is what config-mgmt prints (`print(res)`, so with a final newline):
/// `f'Initialized commit-confirm; {minutes} minutes to confirm before reboot'`,
/// `'Another confirm is pending'` (exit 1, so the 400 error, after the commit),
/// `'No confirm pending'`, `'Reboot timer stopped'`.
#[tokio::test]
async fn commit_confirm_texts_are_vyos_15s() {
    let sim = sim(Version::V1_5).await;
    let a = sim.addr();
    let confirm_time = |n: u32| json!({"key": KEY, "commands": good_rule(n), "confirm_time": 2});
    let r = json_post(a, "/configure", confirm_time(1)).await;
    assert_eq!(
        (r.status, r.body["data"].clone()),
        (
            200,
            json!("\nInitialized commit-confirm; 2 minutes to confirm before reboot\n")
        )
    );
    let r = json_post(a, "/configure", confirm_time(2)).await;
    assert_eq!(
        error_of(&r),
        (400, "Another confirm is pending\n".to_owned())
    );
    let r = json_post(a, "/config-file", json!({"key": KEY, "op": "confirm"})).await;
    assert_eq!(r.body["data"], "Reboot timer stopped\n");
    let r = json_post(a, "/config-file", json!({"key": KEY, "op": "confirm"})).await;
    assert_eq!(r.body["data"], "No confirm pending\n");
    // confirm_time 0 is no commit-confirm (`if confirm_time:`).
    let r = json_post(
        a,
        "/configure",
        json!({"key": KEY, "commands": good_rule(3), "confirm_time": 0}),
    )
    .await;
    assert_eq!((r.status, r.body["data"].clone()), (200, json!("")));
    assert!(!sim.expire_confirm());
}

/// An op an endpoint does not have gets VyOS's answer (`error(400, f"'{op}' is not a valid
/// operation")` in every handler, `f"'{config_format}' is not a valid config format"`);
/// an unknown endpoint FastAPI's 404; what VyOS has and the sim does not simulate, the
/// sim's own "vyos-sim does not simulate ..." (see docs/vyos-sim.md).
#[tokio::test]
async fn unknown_ops_get_vyos_answers_and_the_unsimulated_say_so() {
    for version in [Version::V1_4, Version::V1_5] {
        let sim = sim(version).await;
        let a = sim.addr();
        let post = |path: &'static str, body: Value| async move {
            let mut body = body;
            body["key"] = json!(KEY);
            error_of(&json_post(a, path, body).await)
        };
        let invalid = |op: &str| (400, format!("'{op}' is not a valid operation"));
        assert_eq!(
            post("/retrieve", json!({"op": "bogus", "path": []})).await,
            invalid("bogus")
        );
        assert_eq!(
            post("/show", json!({"op": "bogus", "path": ["version"]})).await,
            invalid("bogus")
        );
        assert_eq!(
            post("/config-file", json!({"op": "bogus"})).await,
            invalid("bogus")
        );
        assert_eq!(
            post("/configure", json!({"op": "bogus", "path": ["nat"]})).await,
            invalid("bogus")
        );
        assert_eq!(
            post(
                "/retrieve",
                json!({"op": "showConfig", "path": [], "configFormat": "yaml"})
            )
            .await,
            (400, "'yaml' is not a valid config format".to_owned())
        );
        for (path, body, what) in [
            (
                "/retrieve",
                json!({"op": "showConfig", "path": [], "configFormat": "json_ast"}),
                "configFormat 'json_ast'",
            ),
            (
                "/show",
                json!({"op": "show", "path": ["interfaces"]}),
                "'show interfaces'",
            ),
            (
                "/generate",
                json!({"op": "generate", "path": ["pki"]}),
                "/generate",
            ),
            (
                "/reset",
                json!({"op": "reset", "path": ["ip", "arp"]}),
                "/reset",
            ),
        ] {
            assert_eq!(
                post(path, body).await,
                (400, format!("vyos-sim does not simulate {what}")),
                "{version:?} {path}"
            );
        }
        if version == Version::V1_5 {
            assert_eq!(
                post("/config-file", json!({"op": "merge", "file": "/x"})).await,
                (
                    400,
                    "vyos-sim does not simulate config-file 'merge'".to_owned()
                )
            );
        }
        // A key is needed there too.
        let r = json_post(
            a,
            "/generate",
            json!({"key": "nope", "op": "generate", "path": []}),
        )
        .await;
        assert_eq!(r.status, 401);
        let r = json_post(a, "/nosuch", json!({"key": KEY})).await;
        assert_eq!(
            (r.status, r.raw.as_str()),
            (404, r#"{"detail":"Not Found"}"#)
        );
    }
    // /renew and /traceroute are 1.5's; 1.4 has no such route.
    let sim = sim(Version::V1_4).await;
    let r = json_post(
        sim.addr(),
        "/renew",
        json!({"key": KEY, "op": "renew", "path": []}),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = json_post(
        sim.addr(),
        "/config-file",
        json!({"key": KEY, "op": "merge"}),
    )
    .await;
    assert_eq!(
        error_of(&r),
        (400, "'merge' is not a valid operation".to_owned())
    );
}

#[tokio::test]
async fn every_configure_request_is_logged_with_its_components_times_and_outcome() {
    let sim = sim(Version::V1_5).await;
    let a = sim.addr();
    assert_eq!(configure(a, good_rule(1)).await.status, 200);
    let mut mixed = good_rule(2);
    mixed.push(set("firewall ipv4 forward filter rule 10 action accept"));
    assert_eq!(configure(a, mixed).await.status, 200);
    let refused = configure(a, vec![set("nat destination rule 1 destination port 0")]).await;
    assert_eq!(refused.status, 400);
    let nothing = configure(
        a,
        vec![json!({"op": "delete", "path": ["nat", "destination", "rule", "77"]})],
    )
    .await;
    assert_eq!(nothing.status, 200);

    let log = sim.configure_log();
    let seen: Vec<(usize, Vec<&str>, &str)> = log
        .iter()
        .map(|r| {
            (
                r.ops,
                r.components.iter().map(String::as_str).collect(),
                r.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (5, vec!["nat"], "committed"),
            (6, vec!["firewall", "nat"], "committed"),
            (1, vec!["nat"], "refused"),
            (1, vec!["nat"], "unchanged"),
        ]
    );
    // One write at a time: each starts after the one before it ended.
    for pair in log.windows(2) {
        assert!(pair[0].started_ms <= pair[0].finished_ms);
        assert!(pair[0].finished_ms <= pair[1].started_ms, "{pair:?}");
    }
    assert_eq!(
        vyos_sim::component_of(&["service".into(), "dhcp-server".into(), "x".into()]),
        "service dhcp-server"
    );
    // The admin endpoint serves the same log.
    let admin = admin_addr(&sim);
    let r = http(admin, "GET", "/configure-log", None, b"").await;
    assert_eq!(r.status, 200);
    let served: Vec<vyos_sim::ConfigureRecord> = serde_json::from_value(r.body).unwrap();
    assert_eq!(served, log);
}

#[tokio::test]
async fn the_cost_can_be_changed_between_requests() {
    let sim = sim(Version::V1_5).await;
    let admin = admin_addr(&sim);
    let read = || async {
        let t = std::time::Instant::now();
        let r = json_post(
            sim.addr(),
            "/retrieve",
            json!({"key": KEY, "op": "showConfig", "path": []}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.raw);
        t.elapsed()
    };
    assert!(read().await < Duration::from_millis(150));
    // A read costs request_fixed_ms: 200 ms at time scale 1.
    let mut cost = CostModel::instant();
    cost.request_fixed_ms = 200.0;
    let r = http(
        admin,
        "PUT",
        "/cost",
        Some("application/json"),
        serde_json::to_vec(&cost).unwrap().as_slice(),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.raw);
    assert_eq!(sim.cost(), cost);
    assert!(read().await >= Duration::from_millis(200));
    let r = http(admin, "GET", "/cost", None, b"").await;
    assert_eq!(r.body["request_fixed_ms"], 200.0);
    // Refused, and the cost stays: a negative time scale cannot be slept.
    let r = http(
        admin,
        "PUT",
        "/cost",
        Some("application/json"),
        json!({"request_fixed_ms": 0.0, "request_per_rule_ms": 0.0, "per_op_ms": 0.0,
               "commit_fixed_ms": 0.0, "commit_per_rule_ms": 0.0, "time_scale": -1.0})
        .to_string()
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.raw.contains("finite and not negative"), "{}", r.raw);
    assert_eq!(sim.cost(), cost);
    sim.set_cost(CostModel::instant());
    assert!(read().await < Duration::from_millis(150));
}

/// A foreign rule, made by hand: `nat destination rule 900`, described "by-hand".
fn rule_900_by_hand() -> Vec<SimOp> {
    [
        "nat destination rule 900 translation address 10.9.9.9",
        "nat destination rule 900 description by-hand",
    ]
    .iter()
    .map(|p| SimOp::Set(p.split(' ').map(str::to_owned).collect()))
    .collect()
}

#[tokio::test]
async fn a_read_answers_with_the_config_as_it_began() {
    // VyOS builds its Config of the running config before anything else and answers from
    // it: an edit committed while the read's modeled time passes is not in its answer.
    let sim = sim_costing(CostModel {
        request_fixed_ms: 300.0,
        ..CostModel::instant()
    })
    .await;
    let addr = sim.addr();
    let t = std::time::Instant::now();
    let read = tokio::spawn(async move {
        json_post(
            addr,
            "/retrieve",
            json!({"key": KEY, "op": "showConfig", "path": ["nat"]}),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sim.third_party_edit(rule_900_by_hand()).unwrap();
    let answer = read.await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    // The path was empty when the read began.
    assert_eq!(answer.status, 400, "{}", answer.raw);
    assert!(
        answer
            .raw
            .contains("Configuration under specified path is empty"),
        "{}",
        answer.raw
    );
    let after = json_post(
        addr,
        "/retrieve",
        json!({"key": KEY, "op": "showConfig", "path": ["nat"]}),
    )
    .await;
    assert_eq!(
        after.body["data"]["destination"]["rule"]["900"]["description"],
        "by-hand"
    );
}

#[tokio::test]
async fn a_hand_edit_made_while_a_write_runs_is_kept_by_its_commit() {
    // VyOS's API session holds only its own changes over the active config, so a commit
    // made by hand while an API write runs is in the config that write commits.
    let sim = sim_costing(CostModel {
        commit_fixed_ms: 300.0,
        ..CostModel::instant()
    })
    .await;
    let addr = sim.addr();
    let write = tokio::spawn(async move { configure(addr, good_rule(10)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sim.third_party_edit(rule_900_by_hand()).unwrap();
    let answer = write.await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.raw);
    let rules = &sim.running_config()["nat"]["destination"]["rule"];
    assert_eq!(rules["10"]["translation"]["port"], "22", "{rules}");
    assert_eq!(rules["900"]["description"], "by-hand", "{rules}");
}
