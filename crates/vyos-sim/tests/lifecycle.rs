//! vyos-sim's router lifecycle: uptime, reboot, a hung router, the config as text, and
//! loading a config (`/config-file` `load`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vyos_sim::{CostModel, Faults, SimOp, SimOptions, Version};

const KEY: &str = "test-key";

async fn sim(version: Version) -> vyos_sim::Sim {
    let mut opts = SimOptions::for_tests();
    opts.version = version;
    vyos_sim::start(opts).await.unwrap()
}

/// One request over a fresh connection: the raw answer (empty when the connection was
/// closed without one).
async fn raw(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// The status and the JSON body of an answer.
async fn post(addr: SocketAddr, path: &str, body: Value) -> (u16, Value) {
    let text = raw(addr, "POST", path, &body.to_string()).await;
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn admin(sim: &vyos_sim::Sim) -> SocketAddr {
    sim.admin_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap()
}

fn set(path: &str) -> SimOp {
    SimOp::Set(path.split(' ').map(str::to_owned).collect())
}

async fn show(sim: &vyos_sim::Sim, path: &[&str]) -> (u16, Value) {
    post(
        sim.addr(),
        "/show",
        json!({"key": KEY, "op": "show", "path": path}),
    )
    .await
}

#[tokio::test]
async fn show_system_uptime_is_uptime_py_text() {
    for version in [Version::V1_4, Version::V1_5] {
        let sim = sim(version).await;
        let (status, body) = show(&sim, &["system", "uptime"]).await;
        assert_eq!(status, 200, "{body}");
        let text = body["data"].as_str().unwrap();
        // Just started: 0 s is the empty string of seconds_to_human.
        assert!(
            text == "Uptime: \n\nLoad averages:\n1  minute:   3.1%\n5  minutes:  2.4%\n15 minutes:  1.7%\n\n"
                || text.starts_with("Uptime: 1s\n\nLoad averages:\n"),
            "{text:?}"
        );
        sim.stop().await;
    }
}

#[tokio::test]
async fn reboot_runs_the_saved_config_and_restarts_uptime() {
    let sim = sim(Version::V1_5).await;
    sim.third_party_edit(vec![set("system host-name saved-one")])
        .unwrap();
    let (status, _) = post(
        sim.addr(),
        "/config-file",
        json!({"key": KEY, "op": "save"}),
    )
    .await;
    assert_eq!(status, 200);
    sim.third_party_edit(vec![set("system host-name unsaved")])
        .unwrap();
    // A pending commit-confirm goes with the reboot.
    let (status, body) = post(
        sim.addr(),
        "/configure",
        json!({"key": KEY, "op": "set", "path": ["system", "domain-name", "example.com"], "confirm_time": 5}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = sim.uptime();
    assert!(before >= Duration::from_secs(1));

    // Through the admin endpoint, as a test outside Rust would.
    let answer = raw(admin(&sim), "POST", "/reboot", "").await;
    assert!(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"));
    assert_eq!(sim.counters().reboots, 1);
    assert!(sim.uptime() < before);
    assert_eq!(sim.running_config(), sim.saved_config());
    assert_eq!(
        sim.running_config()["system"]["host-name"],
        json!("saved-one")
    );
    assert!(
        !sim.expire_confirm(),
        "the reboot cleared the commit-confirm"
    );
    let (_, body) = show(&sim, &["system", "uptime"]).await;
    assert!(
        !body["data"].as_str().unwrap().starts_with("Uptime: 1s"),
        "{body}"
    );
    sim.reboot();
    assert_eq!(sim.counters().reboots, 2);
    sim.stop().await;
}

#[tokio::test]
async fn a_hung_router_holds_every_request_until_the_fault_clears() {
    let sim = sim(Version::V1_5).await;
    sim.set_faults(Faults {
        hang: true,
        ..Faults::default()
    });
    let addr = sim.addr();
    let held = tokio::spawn(async move {
        raw(
            addr,
            "POST",
            "/retrieve",
            &json!({"key": KEY, "op": "showConfig", "path": []}).to_string(),
        )
        .await
    });
    let held_show = tokio::spawn(async move {
        raw(
            addr,
            "POST",
            "/show",
            &json!({"key": KEY, "op": "show", "path": ["version"]}).to_string(),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished() && !held_show.is_finished());
    // The admin endpoint still answers, and counts the held requests.
    let counters = raw(admin(&sim), "GET", "/counters", "").await;
    assert!(counters.contains("\"hang\":2"), "{counters}");
    assert_eq!(sim.counters().faults_injected.get("hang"), Some(&2));

    // Cleared through the admin endpoint: the held requests are dropped unanswered.
    let put = raw(admin(&sim), "PUT", "/faults", "{}").await;
    assert!(put.contains(" 204 "), "{put}");
    let answer = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer, "", "closed without an answer");
    assert_eq!(held_show.await.unwrap(), "");
    // And the router answers again.
    let (status, _) = show(&sim, &["version"]).await;
    assert_eq!(status, 200);
    sim.stop().await;
}

#[tokio::test]
async fn a_reboot_drops_the_requests_under_way_and_their_commits() {
    let sim = sim(Version::V1_5).await;
    let domain = |sim: &vyos_sim::Sim| sim.running_config().pointer("/system/domain-name").cloned();
    // A router that takes 2 s over each request.
    sim.set_cost(CostModel {
        request_fixed_ms: 2000.0,
        time_scale: 1.0,
        ..CostModel::instant()
    });
    let addr = sim.addr();
    let request = |path: &'static str, body: Value| {
        tokio::spawn(async move { raw(addr, "POST", path, &body.to_string()).await })
    };
    let write = request(
        "/configure",
        json!({"key": KEY, "op": "set", "path": ["system", "domain-name", "example.com"]}),
    );
    let read = request(
        "/retrieve",
        json!({"key": KEY, "op": "showConfig", "path": []}),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!write.is_finished() && !read.is_finished());
    sim.reboot();
    // Both connections close without an answer, at once...
    for (what, held) in [("write", write), ("read", read)] {
        let answer = tokio::time::timeout(Duration::from_secs(1), held)
            .await
            .unwrap_or_else(|_| panic!("the {what} was still held after the reboot"))
            .unwrap();
        assert_eq!(answer, "", "the {what} was answered after the reboot");
    }
    // ...and the write never commits, not even when its time has passed.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(sim.counters().commits, 0);
    assert_eq!(domain(&sim), None);
    let log = sim.configure_log();
    assert_eq!(
        log.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(),
        ["dropped by a reboot"]
    );
    // The rebooted router takes writes again, the write lock free.
    sim.set_cost(CostModel::instant());
    let (status, body) = post(
        addr,
        "/configure",
        json!({"key": KEY, "op": "set", "path": ["system", "domain-name", "example.org"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(domain(&sim), Some(json!("example.org")));
    sim.stop().await;
}

#[tokio::test]
async fn the_config_as_text() {
    for version in [Version::V1_4, Version::V1_5] {
        let sim = sim(version).await;
        sim.third_party_edit(vec![
            SimOp::Set(
                [
                    "nat",
                    "destination",
                    "rule",
                    "100",
                    "description",
                    "web server",
                ]
                .map(str::to_owned)
                .to_vec(),
            ),
            set("nat destination rule 100 translation address 10.0.0.5"),
            set("nat destination rule 100 log"),
            set("nat destination rule 20 translation address 10.0.0.6"),
            set("system host-name r1"),
        ])
        .unwrap();
        let retrieve = |path: Value, format: &str| {
            post(
                sim.addr(),
                "/retrieve",
                json!({"key": KEY, "op": "showConfig", "path": path, "configFormat": format}),
            )
        };
        let (status, body) = retrieve(json!([]), "raw").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"],
            " nat {\n     destination {\n         rule 20 {\n             translation {\n                 address 10.0.0.6\n             }\n         }\n         rule 100 {\n             description \"web server\"\n             log\n             translation {\n                 address 10.0.0.5\n             }\n         }\n     }\n }\n system {\n     host-name r1\n }\n"
        );
        let (_, body) = retrieve(json!(["nat", "destination", "rule", "20"]), "raw").await;
        assert_eq!(body["data"], " translation {\n     address 10.0.0.6\n }\n");
        let (status, body) = retrieve(json!(["nat", "source"]), "raw").await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (400, "Configuration under specified path is empty\n")
        );
        let (_, body) = show(&sim, &["configuration", "commands"]).await;
        assert_eq!(
            body["data"],
            "set nat destination rule 20 translation address '10.0.0.6'\nset nat destination rule 100 description 'web server'\nset nat destination rule 100 log\nset nat destination rule 100 translation address '10.0.0.5'\nset system host-name 'r1'\n"
        );
        let (_, body) = show(&sim, &["configuration"]).await;
        assert!(
            body["data"]
                .as_str()
                .unwrap()
                .starts_with("nat {\n    destination {\n        rule 20 {\n"),
            "{body}"
        );
        sim.stop().await;
    }
}

async fn config_file(sim: &vyos_sim::Sim, body: Value) -> (u16, Value) {
    let mut body = body;
    body["key"] = json!(KEY);
    post(sim.addr(), "/config-file", body).await
}

#[tokio::test]
async fn load_replaces_the_running_config_and_commits_it() {
    for version in [Version::V1_4, Version::V1_5] {
        let sim = sim(version).await;
        sim.third_party_edit(vec![
            set("nat destination rule 10 translation address 10.0.0.5"),
            set("system host-name before"),
        ])
        .unwrap();
        // Saved elsewhere: a file on the router, the boot config as it was.
        let (status, body) =
            config_file(&sim, json!({"op": "save", "file": "/config/backup.boot"})).await;
        assert_eq!((status, &body["data"]), (200, &json!("")), "{body}");
        let backup = sim.router_file("/config/backup.boot").unwrap();
        assert!(backup.contains("        rule 10 {\n"), "{backup}");
        assert!(backup.contains("// Release version: "), "{backup}");
        assert_eq!(sim.saved_config(), json!({}));
        sim.third_party_edit(vec![
            SimOp::Delete(vec!["nat".into()]),
            set("system host-name after"),
            set("interfaces ethernet eth1 address 192.0.2.1/24"),
        ])
        .unwrap();
        sim.reset_counters();

        // Found under /config by its bare name, as vyos-load-config.py looks.
        let (status, body) = config_file(&sim, json!({"op": "load", "file": "backup.boot"})).await;
        assert_eq!(status, 200, "{body}");
        let data = if version == Version::V1_4 {
            Value::Null
        } else {
            json!("")
        };
        assert_eq!(body["data"], data);
        let running = sim.running_config();
        assert_eq!(running["system"]["host-name"], json!("before"));
        assert_eq!(
            running["nat"]["destination"]["rule"]["10"]["translation"]["address"],
            json!("10.0.0.5")
        );
        assert!(
            running.get("interfaces").is_none(),
            "the whole config is replaced: {running}"
        );
        let counters = sim.counters();
        assert_eq!((counters.commits, counters.configure_requests), (1, 0));
        let log = sim.configure_log();
        let last = log.last().unwrap();
        assert_eq!(last.outcome, "committed");
        assert_eq!(
            last.components
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["interfaces ethernet", "nat", "system host-name"]
        );

        // The same again changes nothing.
        let (status, _) =
            config_file(&sim, json!({"op": "load", "file": "/config/backup.boot"})).await;
        assert_eq!(status, 200);
        assert_eq!(sim.configure_log().last().unwrap().outcome, "unchanged");

        // A missing file: vyos-load-config.py's words.
        let (status, body) = config_file(&sim, json!({"op": "load", "file": "/config/nope"})).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (400, "No such file '/config/nope'\n")
        );
        // The boot config is a file too.
        let (status, _) =
            config_file(&sim, json!({"op": "load", "file": "/config/config.boot"})).await;
        assert_eq!(status, 200);
        assert_eq!(sim.running_config(), json!({}));
        sim.stop().await;
    }
}

#[tokio::test]
async fn load_from_a_string_is_1_5_only() {
    let text = "nat {\n    destination {\n        rule 7 {\n            translation {\n                address \"10.0.0.7\"\n            }\n            bogus-leaf \"x\"\n        }\n    }\n}\nbogus-top {\n}\nsystem {\n    host-name \"from-text\"\n}\n// Release version: 1.5\n";
    // 1.4's model has no `string` (pydantic 1 ignores it): the file is missing.
    let sim14 = sim(Version::V1_4).await;
    let (status, body) = config_file(&sim14, json!({"op": "load", "string": text})).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "Missing required field \"file\"")
    );
    sim14.stop().await;

    let sim = sim(Version::V1_5).await;
    let (status, body) = config_file(&sim, json!({"op": "load"})).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "Missing required field \"file | string\"")
    );
    let (status, body) = config_file(&sim, json!({"op": "load", "file": "", "string": ""})).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "Missing required field \"file | string\"")
    );
    // Both given: the file wins.
    let (status, body) = config_file(
        &sim,
        json!({"op": "load", "file": "/config/nope", "string": text}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "No such file '/config/nope'\n")
    );
    // Not a string: pydantic 2's error.
    let (status, body) = config_file(&sim, json!({"op": "load", "string": 5})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("'string_type'"),
        "{body}"
    );

    // Paths outside the schema are skipped; the rest loads and commits.
    let (status, body) = config_file(&sim, json!({"op": "load", "string": text})).await;
    assert_eq!((status, &body["data"]), (200, &json!("")), "{body}");
    assert_eq!(
        sim.running_config(),
        json!({"nat": {"destination": {"rule": {"7": {"translation": {"address": "10.0.0.7"}}}}},
               "system": {"host-name": "from-text"}})
    );
    // The API wrote the text to /tmp/config.file, which is now a file on the router.
    assert_eq!(sim.router_file("/tmp/config.file").as_deref(), Some(text));
    // A text that does not parse.
    let (status, body) = config_file(&sim, json!({"op": "load", "string": "a {\n"})).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (
            400,
            "Loading configuration from '/tmp/config.file'\nFailed to parse specified config file\n"
        )
    );
    // A config the commit refuses changes nothing.
    let bad = "nat {\n    destination {\n        rule 8 {\n            log\n        }\n    }\n}\n";
    let (status, body) = config_file(&sim, json!({"op": "load", "string": bad})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("Commit failed"),
        "{body}"
    );
    assert_eq!(
        sim.running_config()["system"]["host-name"],
        json!("from-text")
    );
    assert_eq!(sim.configure_log().last().unwrap().outcome, "refused");
    // Each string load overwrites /tmp/config.file, as VyOS's does.
    assert_eq!(sim.router_file("/tmp/config.file").as_deref(), Some(bad));
    // With a commit-confirm.
    let (status, body) = config_file(
        &sim,
        json!({"op": "load", "string": text, "confirm_time": 2}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!("\nInitialized commit-confirm; 2 minutes to confirm before reboot\n")
    );
    sim.stop().await;
}
