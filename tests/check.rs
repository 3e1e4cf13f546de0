//! `vmnet-operator check` (the test a person runs before applying anything), the built
//! binary against vyos-sim and the real kube-apiserver: each planted problem fails its own
//! line with what to do, a good router passes every line, both the `ROUTER` form and the
//! `--endpoint` form work, the API key is never printed, and the router is never written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use vmnet_testkit::control_plane;
use vyos_sim::{SimOp, SimOptions, Version};

use common::*;

/// The key of the sims of the `--endpoint` tests.
const SIM_KEY: &str = "chk-3f9a-secret-key";
/// A key the sims refuse.
const WRONG_KEY: &str = "chk-wrong-77d1-key";

/// Runs `vmnet-operator check ARGS`: its exit code, standard output and standard error.
/// Neither stream may carry a key. Without `cluster`, KUBECONFIG points nowhere.
async fn check(args: Vec<String>, cluster: bool) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmnet-operator"));
        cmd.arg("check")
            .args(&args)
            .args(["--timeout-seconds", "5"])
            .env_remove("KUBERNETES_SERVICE_HOST");
        if cluster {
            cmd.env("KUBECONFIG", &control_plane().kubeconfig);
        } else {
            cmd.env("KUBECONFIG", "/nonexistent/kubeconfig");
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for key in [SIM_KEY, WRONG_KEY, KEY] {
            assert!(
                !stdout.contains(key) && !stderr.contains(key),
                "check printed an API key:\n{stdout}\n{stderr}"
            );
        }
        (out.status.code().unwrap_or(-1), stdout, stderr)
    })
    .await
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// The line of check `name` (`ok   name: ...`, `FAIL name: ...`).
fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| {
            l.get(5..)
                .is_some_and(|r| r.starts_with(&format!("{name}: ")))
        })
        .unwrap_or_else(|| panic!("no line for {name:?} in:\n{out}"))
}

async fn sim(version: Version, tls: bool, listen: &str, key: &str) -> vyos_sim::Sim {
    let mut opts = SimOptions::for_tests();
    opts.listen = listen.parse::<SocketAddr>().unwrap();
    opts.tls = tls;
    opts.version = version;
    opts.api_keys = vec![key.to_owned()];
    vyos_sim::start(opts).await.unwrap()
}

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_owned).collect()
}

fn set(lines: &[&str]) -> Vec<SimOp> {
    lines.iter().map(|l| SimOp::Set(words(l))).collect()
}

/// One of the operator's rules in the range, one hand-made rule outside it, a source rule
/// and a DHCP static mapping (1.5).
fn plant_a_normal_router(sim: &vyos_sim::Sim) {
    let subnet = "service dhcp-server shared-network-name LAN subnet 192.0.2.0/24";
    sim.third_party_edit(set(&[
        "nat destination rule 1000 description vmnet:lab/web-ssh",
        "nat destination rule 1000 translation address 10.0.0.5",
        "nat destination rule 10 description hand-made",
        "nat destination rule 10 translation address 10.0.0.9",
        "nat source rule 100 translation address masquerade",
        "interfaces ethernet eth1 address 192.0.2.1/24",
        &format!("{subnet} subnet-id 1"),
        &format!("{subnet} range r start 192.0.2.100"),
        &format!("{subnet} range r stop 192.0.2.199"),
        &format!("{subnet} static-mapping vm1 ip-address 192.0.2.10"),
        &format!("{subnet} static-mapping vm1 mac 52:54:00:00:00:01"),
    ]))
    .unwrap();
}

/// Nothing configured, committed or saved: the check only read.
fn assert_wrote_nothing(sim: &vyos_sim::Sim, running: &Value, saved: &Value) {
    let c = sim.counters();
    assert_eq!(c.configure_requests, 0, "{c:?}");
    assert_eq!(c.commits, 0, "{c:?}");
    assert_eq!(c.failed_commits, 0, "{c:?}");
    assert!(!c.requests.contains_key("/configure"), "{c:?}");
    assert_eq!(&sim.running_config(), running);
    assert_eq!(&sim.saved_config(), saved);
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Done when: a router with nothing wrong passes all eight lines (exit 0) without a
/// cluster, `-o json` says the same, and the router saw reads only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_router_passes_every_check_and_is_only_read() {
    let sim = sim(Version::V1_5, true, "127.0.0.1:0", SIM_KEY).await;
    plant_a_normal_router(&sim);
    let (running, saved) = (sim.running_config(), sim.saved_config());
    sim.reset_counters();
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key", &format!("{SIM_KEY}\n"));
    let ca = write(dir.path(), "ca.pem", &sim.ca_pem().unwrap());
    let args = |extra: &[&str]| {
        let mut a = strings(&[
            "--endpoint",
            &sim.url(),
            "--key-file",
            &key,
            "--ca-file",
            &ca,
            "--rule-range",
            "1000-1999",
        ]);
        a.extend(strings(extra));
        a
    };
    let (code, out, err) = check(args(&[]), false).await;
    eprintln!("{out}{err}");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 8, "{out}");
    assert!(out.lines().all(|l| l.starts_with("ok   ")), "{out}");
    assert!(line(&out, "tls").contains("certificate verified against"));
    assert!(line(&out, "version").contains("1.5-rolling"));
    assert!(
        line(&out, "nat rules").contains(
            "2 destination, 1 source; owned range 1000-1999: 1 the operator's, none foreign"
        ),
        "{out}"
    );
    assert!(line(&out, "dhcp mappings").contains("1 static mapping in 1 shared network"));
    assert!(line(&out, "commit-confirm").contains("available"));
    assert!(line(&out, "save").contains("not saved now"));

    let (code, out, _) = check(args(&["-o", "json"]), false).await;
    assert_eq!(code, 0);
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["ok"], true);
    let checks = j["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 8);
    assert!(checks.iter().all(|c| c["verdict"] == "ok"), "{j:#}");
    assert_eq!(checks[4]["facts"]["owned"], 1);
    assert_eq!(checks[5]["facts"]["mappings"], 1);

    assert_wrote_nothing(&sim, &running, &saved);
    let c = sim.counters();
    assert!(c.requests.contains_key("/retrieve") && c.requests.contains_key("/config-file"));
}

/// Done when: each planted problem fails (or warns) on its own line with what to do, the
/// checks that need it are skipped, and the exit code is 1 exactly when a line FAILs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_planted_problem_shows_on_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good", SIM_KEY);
    let wrong = write(dir.path(), "wrong", WRONG_KEY);
    let tls = sim(Version::V1_5, true, "127.0.0.1:0", SIM_KEY).await;
    let other = sim(Version::V1_5, true, "127.0.0.1:0", SIM_KEY).await;
    let ca = write(dir.path(), "ca.pem", &tls.ca_pem().unwrap());
    let other_ca = write(dir.path(), "other.pem", &other.ca_pem().unwrap());
    let url = tls.url();
    let run = |a: &[&str]| check(strings(a), false);

    // Wrong key.
    let (code, out, _) = run(&["--endpoint", &url, "--key-file", &wrong, "--ca-file", &ca]).await;
    assert_eq!(code, 1, "{out}");
    assert!(line(&out, "tls").starts_with("ok   "), "{out}");
    assert_eq!(
        line(&out, "api key"),
        format!(
            "FAIL api key: the router refused the API key (HTTP 401) — check the key in {wrong} \
             against the router's `service https api keys`"
        )
    );
    assert_eq!(
        line(&out, "version"),
        "-    version: skipped: needs api key"
    );
    assert_eq!(line(&out, "save"), "-    save: skipped: needs api key");

    // Unknown CA: none given (the system's roots), or another one.
    let (code, out, _) = run(&["--endpoint", &url, "--key-file", &good]).await;
    assert_eq!(code, 1);
    assert!(
        line(&out, "tls").starts_with(
            "FAIL tls: unknown CA: the router's certificate is not signed by the system's trust roots — put the router's CA"
        ),
        "{out}"
    );
    assert_eq!(line(&out, "api key"), "-    api key: skipped: needs tls");
    let (code, out, _) = run(&[
        "--endpoint",
        &url,
        "--key-file",
        &good,
        "--ca-file",
        &other_ca,
    ])
    .await;
    assert_eq!(code, 1);
    assert!(
        line(&out, "tls").contains(&format!(
            "unknown CA: the router's certificate is not signed by the CA in {other_ca}"
        )),
        "{out}"
    );

    // A name the certificate does not carry (it names 127.0.0.1, ::1 and localhost).
    let elsewhere = sim(Version::V1_5, true, "127.0.0.2:0", SIM_KEY).await;
    let elsewhere_ca = write(dir.path(), "elsewhere.pem", &elsewhere.ca_pem().unwrap());
    let (code, out, _) = run(&[
        "--endpoint",
        &elsewhere.url(),
        "--key-file",
        &good,
        "--ca-file",
        &elsewhere_ca,
    ])
    .await;
    assert_eq!(code, 1);
    assert!(
        line(&out, "tls").starts_with("FAIL tls: certificate name mismatch:"),
        "{out}"
    );

    // https:// to a plain-HTTP server, and http:// to a TLS one.
    let plain = sim(Version::V1_5, false, "127.0.0.1:0", SIM_KEY).await;
    let as_https = plain.url().replace("http://", "https://");
    let (code, out, _) = run(&["--endpoint", &as_https, "--key-file", &good]).await;
    assert_eq!(code, 1);
    assert!(
        line(&out, "tls").contains("does not speak TLS (a plain HTTP server?)"),
        "{out}"
    );
    let as_http = url.replace("https://", "http://");
    let (code, out, _) = run(&["--endpoint", &as_http, "--key-file", &good, "--plain-http"]).await;
    assert_eq!(code, 1);
    assert!(
        line(&out, "tls").contains("speaks TLS, and the endpoint is plain http:// — use https://"),
        "{out}"
    );
    // Plain http:// not accepted explicitly.
    let (code, out, _) = run(&["--endpoint", &plain.url(), "--key-file", &good]).await;
    assert_eq!(code, 1);
    assert!(line(&out, "tls").contains("--plain-http"), "{out}");

    // Foreign rules inside the owned range.
    plant_a_normal_router(&tls);
    tls.third_party_edit(set(&[
        "nat destination rule 1005 description hand-made",
        "nat destination rule 1005 translation address 10.0.0.7",
        "nat destination rule 1500 translation address 10.0.0.8",
    ]))
    .unwrap();
    let (running, saved) = (tls.running_config(), tls.saved_config());
    tls.reset_counters();
    let (code, out, _) = run(&[
        "--endpoint",
        &url,
        "--key-file",
        &good,
        "--ca-file",
        &ca,
        "--rule-range",
        "1000-1999",
    ])
    .await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        line(&out, "nat rules"),
        "FAIL nat rules: 4 destination, 1 source; owned range 1000-1999: 1 the operator's, 2 \
         without its marker (1005, 1500): a PortRule given one of those numbers would be \
         Conflict — move or renumber them, or change --rule-range"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("FAIL")).count(),
        1,
        "{out}"
    );
    assert_wrote_nothing(&tls, &running, &saved);

    // VyOS 1.4: no commit-confirm is a warning, not a failure.
    let v14 = sim(Version::V1_4, false, "127.0.0.1:0", SIM_KEY).await;
    let (code, out, _) = run(&[
        "--endpoint",
        &v14.url(),
        "--key-file",
        &good,
        "--plain-http",
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(line(&out, "version").contains("VyOS 1.4.3 (host vyos-sim, from show version)"));
    assert!(
        line(&out, "commit-confirm")
            .starts_with("warn commit-confirm: 1.4 has no commit-confirm: spec.commitConfirmMinutes has no effect"),
        "{out}"
    );
    assert!(
        line(&out, "tls").starts_with("warn tls: plain HTTP"),
        "{out}"
    );
    assert!(line(&out, "save").starts_with("ok   "), "{out}");

    // Nobody listening.
    let free = free_addr().await;
    let (code, out, _) = run(&[
        "--endpoint",
        &format!("https://{free}"),
        "--key-file",
        &good,
    ])
    .await;
    assert_eq!(code, 1);
    assert!(
        line(&out, "reachable").starts_with(&format!("FAIL reachable: cannot connect to {free}"))
    );
    assert_eq!(line(&out, "tls"), "-    tls: skipped: needs reachable");

    for s in [&tls, &other, &elsewhere, &plain, &v14] {
        let c = s.counters();
        assert_eq!((c.configure_requests, c.commits), (0, 0), "{c:?}");
    }
}

/// Done when: `check ROUTER` takes endpoint, TLS, rule range and key from the VyosRouter
/// and its Secret; a wrong or missing Secret fails the key line only; commit-confirm asked
/// of a 1.4 router fails; the router is only read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_form_reads_the_vyosrouter_and_its_secret() {
    let mut w = world("check").await;
    let c = client(&w);
    let ns = w.ns().to_owned();
    let suffix = ns.rsplit('-').next().unwrap().to_owned();
    let tls = sim(Version::V1_5, true, "127.0.0.1:0", KEY).await;
    plant_a_normal_router(&tls);
    let v14 = sim(Version::V1_4, false, "127.0.0.1:0", KEY).await;
    let (running, saved) = (tls.running_config(), tls.saved_config());
    tls.reset_counters();
    let router = |name: &str, spec: Value| {
        json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": "VyosRouter",
               "metadata": {"name": name, "labels": {TEST_LABEL: ns}}, "spec": spec})
    };
    let good = format!("r-check-tls-{suffix}");
    let nosecret = format!("r-check-nosecret-{suffix}");
    let old = format!("r-check-14-{suffix}");
    w.extra_routers
        .extend([good.clone(), nosecret.clone(), old.clone()]);
    let secret_ref = json!({"name": "router-api", "namespace": ns});
    apply(
        &c,
        router(
            &good,
            json!({"endpoint": tls.url(), "credentialsSecretRef": secret_ref,
                   "tls": {"caBundle": tls.ca_pem().unwrap()},
                   "ruleRange": {"start": 1000, "end": 1999}, "saveConfig": true}),
        ),
    )
    .await;
    apply(
        &c,
        router(
            &nosecret,
            json!({"endpoint": tls.url(),
                   "credentialsSecretRef": {"name": "absent", "namespace": ns},
                   "tls": {"caBundle": tls.ca_pem().unwrap()},
                   "ruleRange": {"start": 1000, "end": 1999}}),
        ),
    )
    .await;
    apply(
        &c,
        router(
            &old,
            json!({"endpoint": v14.url(), "credentialsSecretRef": secret_ref,
                   "tls": {"insecurePlainHttp": true},
                   "ruleRange": {"start": 1000, "end": 1999}, "commitConfirmMinutes": 5}),
        ),
    )
    .await;
    let run = |name: &str| check(strings(&[name]), true);

    let (code, out, err) = run(&good).await;
    eprintln!("{out}{err}");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.lines().all(|l| l.starts_with("ok   ")), "{out}");
    assert_eq!(out.lines().count(), 8);
    assert!(line(&out, "tls").contains("certificate verified against spec.tls.caBundle"));
    assert!(
        line(&out, "nat rules").contains("owned range 1000-1999: 1 the operator's, none foreign")
    );
    assert!(line(&out, "commit-confirm").contains("spec.commitConfirmMinutes not set"));
    assert!(line(&out, "save").contains("spec.saveConfig: true"));

    // The world's own router: plain HTTP to its sim, accepted by the spec, is a warning.
    let (code, out, _) = run(&w.router.clone()).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        line(&out, "tls").starts_with("warn tls: plain HTTP"),
        "{out}"
    );

    // The Secret holds a key the router refuses.
    let secrets: Api<Secret> = Api::namespaced(c.clone(), &ns);
    secrets
        .patch(
            "router-api",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"api-key": WRONG_KEY}})),
        )
        .await
        .unwrap();
    let (code, out, _) = run(&good).await;
    assert_eq!(code, 1);
    assert_eq!(
        line(&out, "api key"),
        format!(
            "FAIL api key: the router refused the API key (HTTP 401) — check Secret \
             {ns}/router-api (data key \"api-key\", spec.credentialsSecretRef) against the \
             router's `service https api keys`"
        )
    );

    // No Secret at all: reachable and tls still run.
    let (code, out, _) = run(&nosecret).await;
    assert_eq!(code, 1);
    assert!(line(&out, "tls").starts_with("ok   "), "{out}");
    assert!(
        line(&out, "api key").starts_with(&format!(
            "FAIL api key: Secret {ns}/absent (spec.credentialsSecretRef) does not exist"
        )),
        "{out}"
    );

    // commitConfirmMinutes on 1.4 (the Secret right again).
    secrets
        .patch(
            "router-api",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"api-key": KEY}})),
        )
        .await
        .unwrap();
    let (code, out, _) = run(&old).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        line(&out, "commit-confirm").starts_with(
            "warn commit-confirm: 1.4 has no commit-confirm, but spec.commitConfirmMinutes is 5"
        ),
        "{out}"
    );

    // An unknown router is an error.
    let (code, _, err) = run("no-such-router").await;
    assert_eq!(code, 1);
    assert!(
        err.contains("no VyosRouter named \"no-such-router\""),
        "{err}"
    );

    assert_wrote_nothing(&tls, &running, &saved);
    for s in [&v14, w.sim()] {
        let c = s.counters();
        assert_eq!((c.configure_requests, c.commits), (0, 0), "{c:?}");
    }
}
