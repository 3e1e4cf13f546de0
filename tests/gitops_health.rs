//! GitOps health (docs/gitops.md): what Argo CD and Flux say of vmnet objects.
//!
//! Argo CD reads health through the Lua check in `docs/gitops/health.lua` (inlined in
//! `docs/gitops/argocd-cm.yaml`), run here by `hack/argocd-health` with gopher-lua, the
//! interpreter Argo CD embeds, the way Argo CD runs them. Flux reads kstatus
//! (`hack/kstatus`). On live objects that the operator wrote (real kube-apiserver,
//! vyos-sim), both must agree: Healthy / Current when Ready for the current generation,
//! Progressing / InProgress while a change is under way, Degraded / Failed when Stalled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube::api::Api;
use serde_json::{Value, json};
use vmnet_api::{IpPool, PortPool, VyosRouter};
use vmnet_testkit::{TestNamespace, kubectl};
use vyos_sim::Faults;

use common::*;

/// The kinds of vmnet.dev/v1alpha1, each with its own health check.
const KINDS: [&str; 5] = ["IpPool", "PortPool", "PortRule", "VmNetwork", "VyosRouter"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The script Argo CD runs for `kind`: one for every kind (argocd-cm.yaml inlines it under
/// each kind's key).
fn script_of(_kind: &str) -> PathBuf {
    repo().join("docs/gitops/health.lua")
}

/// What the Lua `script` says of each object, as Argo CD would: (status, message).
fn run_lua(script: &Path, objects: &[&Value]) -> Vec<(String, String)> {
    let lines: Vec<(String, String)> =
        pipe_lines(&go_tool("argocd-health"), &[script.as_os_str()], objects)
            .iter()
            .map(|l| {
                let mut parts = l.splitn(3, ' ');
                let _object = parts.next();
                let status = parts.next().unwrap_or_default().to_owned();
                let message = parts.next().unwrap_or_default().to_owned();
                (status, message)
            })
            .collect();
    assert_eq!(lines.len(), objects.len(), "one answer per object");
    lines
}

/// What Argo CD says of each object with the health check of the object's kind.
fn argocd(objects: &[&Value]) -> Vec<(String, String)> {
    let mut answers = vec![None; objects.len()];
    for kind in KINDS {
        let idx: Vec<usize> = (0..objects.len())
            .filter(|&i| objects[i]["kind"] == kind)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let these: Vec<&Value> = idx.iter().map(|&i| objects[i]).collect();
        for (i, a) in idx.into_iter().zip(run_lua(&script_of(kind), &these)) {
            answers[i] = Some(a);
        }
    }
    answers
        .into_iter()
        .map(|a| a.expect("an object of a kind without a health check"))
        .collect()
}

/// The operator's promise about every status it writes: `observedGeneration`, and exactly
/// the three conditions Ready, Reconciling and Stalled, one of them True, each with a
/// reason and its own observedGeneration (the status's).
fn assert_well_formed(o: &Value) {
    let what = format!("{} {}", o["kind"], o["metadata"]["name"]);
    let s = &o["status"];
    assert!(s["observedGeneration"].is_i64(), "{what}: {s}");
    let conds = s["conditions"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: {s}"));
    let types: Vec<&str> = conds.iter().filter_map(|c| c["type"].as_str()).collect();
    assert_eq!(types, ["Ready", "Reconciling", "Stalled"], "{what}: {s}");
    assert_eq!(
        conds.iter().filter(|c| c["status"] == "True").count(),
        1,
        "{what}: exactly one condition True: {s}"
    );
    for c in conds {
        assert!(
            c["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{what}: {c}"
        );
        assert!(c["message"].is_string(), "{what}: {c}");
        assert_eq!(
            c["observedGeneration"], s["observedGeneration"],
            "{what}: {c}"
        );
    }
}

/// What docs/gitops.md says Argo CD and kstatus read in a well-formed status: (Argo CD
/// health, kstatus status, Argo CD message).
fn expected(o: &Value) -> (&'static str, &'static str, String) {
    let g = &o["metadata"]["generation"];
    let og = &o["status"]["observedGeneration"];
    if og != g {
        return (
            "Progressing",
            "InProgress",
            format!(
                "Waiting for the operator to observe generation {g} (the status is of generation {og})"
            ),
        );
    }
    let held = o["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "True")
        .unwrap();
    let message = match held["message"].as_str().unwrap_or_default() {
        "" => held["reason"].as_str().unwrap_or_default(),
        m => m,
    }
    .replace('\n', "\\n");
    match held["type"].as_str().unwrap() {
        "Ready" => ("Healthy", "Current", message),
        "Reconciling" => ("Progressing", "InProgress", message),
        "Stalled" => ("Degraded", "Failed", message),
        other => panic!("condition {other}"),
    }
}

/// Checks every object: well formed, and Argo CD and kstatus say what [`expected`] says.
/// Returns the Argo CD health of each.
fn check(objects: &[&Value]) -> Vec<String> {
    for o in objects {
        assert_well_formed(o);
    }
    let argo = argocd(objects);
    let ks = kstatus(objects);
    objects
        .iter()
        .zip(argo.into_iter().zip(ks))
        .map(|(o, ((health, message), ks))| {
            let (want_health, want_ks, want_message) = expected(o);
            let what = format!("{} {}: {}", o["kind"], o["metadata"]["name"], o["status"]);
            assert_eq!(health, want_health, "Argo CD health of {what}");
            assert_eq!(message, want_message, "Argo CD message of {what}");
            assert_eq!(ks, want_ks, "kstatus of {what}");
            health
        })
        .collect()
}

/// A condition: (type, status, reason, message, its own observedGeneration).
type Cond = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<i64>,
);

/// A hand-written case: (what, generation, status.observedGeneration, conditions, Argo CD
/// health, Argo CD message, kstatus).
type Case = (
    &'static str,
    i64,
    Option<i64>,
    Vec<Cond>,
    &'static str,
    &'static str,
    &'static str,
);

/// A hand-written object of `kind`: generation `g`, and a status when `og` is given, with
/// conditions (type, status, reason, message, own observedGeneration).
fn object(kind: &str, g: i64, og: Option<i64>, conds: &[Cond]) -> Value {
    let mut o = json!({"apiVersion": "vmnet.dev/v1alpha1", "kind": kind,
                       "metadata": {"name": "x", "generation": g}});
    if let Some(og) = og {
        o["status"] = json!({"observedGeneration": og});
        if !conds.is_empty() {
            o["status"]["conditions"] = conds
                .iter()
                .map(|(t, s, r, m, cg)| {
                    let mut c = json!({"type": t, "status": s, "reason": r, "message": m,
                                       "lastTransitionTime": "2026-01-01T00:00:00Z"});
                    if let Some(cg) = cg {
                        c["observedGeneration"] = json!(cg);
                    }
                    c
                })
                .collect();
        }
    }
    o
}

/// The three conditions with `which` True (reason, message) and the others False, all of
/// generation `cg`.
fn three(which: &str, reason: &'static str, message: &'static str, cg: Option<i64>) -> Vec<Cond> {
    ["Ready", "Reconciling", "Stalled"]
        .into_iter()
        .map(|t| {
            if t == which {
                (t, "True", reason, message, cg)
            } else {
                (
                    t,
                    "False",
                    match t {
                        "Ready" => "NotReady",
                        "Reconciling" => "NotReconciling",
                        _ => "NotStalled",
                    },
                    "",
                    cg,
                )
            }
        })
        .collect()
}

// 1. docs/gitops/argocd-cm.yaml is a ConfigMap whose keys are Argo CD's health keys for the
//    five kinds (no more, no fewer; the kinds are those of crds/), each the Lua file of its
//    kind verbatim; and the documented `kubectl patch --patch-file` merges them into an
//    existing argocd-cm without touching its other keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argocd_cm_inlines_the_health_scripts() {
    let path = repo().join("docs/gitops/argocd-cm.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let cm: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(cm["apiVersion"], "v1");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    assert!(
        cm["metadata"]["namespace"].is_null(),
        "no namespace, so that `kubectl -n <argocd's> patch` takes it"
    );
    // The kinds the CRDs define are the kinds with a health check.
    let mut crd_kinds: Vec<String> = std::fs::read_dir(repo().join("crds"))
        .unwrap()
        .map(|e| {
            let crd: Value =
                serde_yaml_ng::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .unwrap();
            assert_eq!(crd["spec"]["group"], "vmnet.dev");
            crd["spec"]["names"]["kind"].as_str().unwrap().to_owned()
        })
        .collect();
    crd_kinds.sort();
    assert_eq!(
        crd_kinds, KINDS,
        "a kind without a health check, or a stale one"
    );
    let data = cm["data"].as_object().unwrap();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    let want: Vec<String> = KINDS
        .iter()
        .map(|k| format!("resource.customizations.health.vmnet.dev_{k}"))
        .collect();
    assert_eq!(keys, want, "argocd-cm.yaml keys");
    for kind in KINDS {
        let file = std::fs::read_to_string(script_of(kind)).unwrap();
        let inlined = data[&format!("resource.customizations.health.vmnet.dev_{kind}")]
            .as_str()
            .unwrap();
        assert!(
            inlined == file,
            "docs/gitops/argocd-cm.yaml inlines another script than docs/gitops/health.lua under {kind}; \
             regenerate it as docs/gitops.md says"
        );
    }

    // As a kustomize patch (docs/gitops.md), over a base argocd-cm with a key of its own.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("argocd-cm-base.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\ndata:\n  url: https://argocd.example.com\n",
    )
    .unwrap();
    std::fs::copy(&path, dir.path().join("argocd-cm.yaml")).unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "namespace: argocd\nresources:\n  - argocd-cm-base.yaml\npatches:\n  - path: argocd-cm.yaml\n",
    )
    .unwrap();
    let built: Value =
        serde_yaml_ng::from_str(&kubectl(&["kustomize", dir.path().to_str().unwrap()]).unwrap())
            .unwrap();
    assert_eq!(built["metadata"]["namespace"], "argocd", "{built}");
    assert_eq!(
        built["data"]["url"], "https://argocd.example.com",
        "{built}"
    );
    for key in &want {
        assert_eq!(built["data"][key], data[key], "{key} after kustomize");
    }

    // The documented command, on an argocd-cm in a test namespace.
    let ns = TestNamespace::new("argocdcm").await.unwrap();
    kubectl(&[
        "-n",
        ns.name(),
        "create",
        "configmap",
        "argocd-cm",
        "--from-literal=url=https://argocd.example.com",
    ])
    .unwrap();
    kubectl(&[
        "-n",
        ns.name(),
        "patch",
        "configmap",
        "argocd-cm",
        "--patch-file",
        path.to_str().unwrap(),
    ])
    .unwrap();
    let live: Value = serde_json::from_str(
        &kubectl(&[
            "-n",
            ns.name(),
            "get",
            "configmap",
            "argocd-cm",
            "-o",
            "json",
        ])
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        live["data"]["url"], "https://argocd.example.com",
        "other keys stay"
    );
    for kind in KINDS {
        let key = format!("resource.customizations.health.vmnet.dev_{kind}");
        assert_eq!(
            live["data"][&key], data[&key],
            "{key} in the live ConfigMap"
        );
    }
}

// 2. The rules on hand-written objects, for each kind's script: no status yet, a status of
//    an older generation, and conditions of an older generation are Progressing; Stalled
//    for this generation is Degraded, Ready for it Healthy; the message is the True
//    condition's message, or its reason when the message is empty. kstatus is asked too,
//    to document where it reads the same objects differently (no status: Current; a stale
//    condition under a current status.observedGeneration: kstatus ignores conditions' own
//    generations).
#[test]
fn health_scripts_on_hand_written_objects() {
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("no status yet", 1, None, vec![],
         "Progressing", "Waiting for the operator to write a status", "Current"),
        ("a status without conditions", 1, Some(1), vec![],
         "Progressing", "Waiting for the operator to write a status", "Current"),
        ("Ready for an older generation", 2, Some(1), three("Ready", "Programmed", "1 port(s) forwarded", Some(1)),
         "Progressing", "Waiting for the operator to observe generation 2 (the status is of generation 1)", "InProgress"),
        ("Stalled for an older generation", 3, Some(2), three("Stalled", "Conflict", "taken", Some(2)),
         "Progressing", "Waiting for the operator to observe generation 3 (the status is of generation 2)", "InProgress"),
        ("Stalled of an older generation under a current status", 3, Some(3), three("Stalled", "Conflict", "taken", Some(2)),
         "Progressing", "Waiting for the operator to finish generation 3 (Stalled is of generation 2: taken)", "Failed"),
        ("Ready of an older generation under a current status", 3, Some(3), three("Ready", "Programmed", "", Some(2)),
         "Progressing", "Waiting for the operator to finish generation 3 (Ready is of generation 2: Programmed)", "Current"),
        ("Stalled", 4, Some(4), three("Stalled", "InvalidRequest", "IpPool \"no-such-pool\" does not exist", Some(4)),
         "Degraded", "IpPool \"no-such-pool\" does not exist", "Failed"),
        ("Stalled without a message", 4, Some(4), three("Stalled", "PoolExhausted", "", Some(4)),
         "Degraded", "PoolExhausted", "Failed"),
        ("Reconciling", 5, Some(5), three("Reconciling", "RouterUnreachable", "router r: timed out", Some(5)),
         "Progressing", "router r: timed out", "InProgress"),
        ("Paused", 8, Some(8), three("Reconciling", "Paused", "paused (annotation vmnet.dev/paused): no writes to the router", Some(8)),
         "Suspended", "paused (annotation vmnet.dev/paused): no writes to the router", "InProgress"),
        ("Expired", 9, Some(9), three("Reconciling", "Expired", "expired at 2026-12-06T10:00:00Z; move spec.expiresAt into the future to bring it back", Some(9)),
         "Suspended", "expired at 2026-12-06T10:00:00Z; move spec.expiresAt into the future to bring it back", "InProgress"),
        ("Reconciling for an older generation", 6, Some(5), three("Reconciling", "Programming", "soon", Some(5)),
         "Progressing", "Waiting for the operator to observe generation 6 (the status is of generation 5)", "InProgress"),
        ("Ready", 7, Some(7), three("Ready", "Programmed", "rule 1000 on router r", Some(7)),
         "Healthy", "rule 1000 on router r", "Current"),
        ("Ready without a message", 1, Some(1), three("Ready", "Loaded", "", Some(1)),
         "Healthy", "Loaded", "Current"),
        ("Ready, conditions without their own generation", 2, Some(2), three("Ready", "Synced", "3 rules programmed", None),
         "Healthy", "3 rules programmed", "Current"),
        ("no condition True", 1, Some(1), vec![("Ready", "False", "NotReady", "", Some(1))],
         "Progressing", "Waiting for a Ready, Reconciling or Stalled condition", "InProgress"),
    ];
    for kind in KINDS {
        let objects: Vec<Value> = cases
            .iter()
            .map(|(_, g, og, conds, ..)| object(kind, *g, *og, conds))
            .collect();
        let refs: Vec<&Value> = objects.iter().collect();
        let argo = run_lua(&script_of(kind), &refs);
        let ks = kstatus(&refs);
        for (((what, .., health, message, kstat), (h, m)), k) in cases.iter().zip(argo).zip(ks) {
            assert_eq!(
                (h.as_str(), m.as_str()),
                (*health, *message),
                "{kind}, {what}"
            );
            assert_eq!(k, *kstat, "kstatus: {kind}, {what}");
        }
    }
}

// 3. hack/argocd-health binds `obj` as Argo CD does: objects are tables, arrays are
//    1-indexed, numbers are numbers (generation == observedGeneration compares numbers),
//    and only the base and table libraries are open (no string, os or io). A status that is
//    not one of Argo CD's becomes Unknown; a script that fails is an Error.
#[test]
fn argocd_health_binds_obj_as_argo_cd_does() {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe.lua");
    std::fs::write(
        &probe,
        r#"
local ok = type(obj.metadata) == "table"
  and type(obj.spec.ports) == "table" and #obj.spec.ports == 2
  and obj.spec.ports[1].name == "ssh" and obj.spec.ports[2].port == 80
  and obj.spec.ports[0] == nil
  and type(obj.metadata.generation) == "number"
  and obj.metadata.generation == obj.status.observedGeneration
  and obj.status.ratio == 0.5
  and obj.spec.enabled == true and obj.spec.nothing == nil
  and string == nil and io == nil and os == nil
  and type(table.insert) == "function" and type(ipairs) == "function"
if ok then
  return {status = "Healthy", message = "as Argo CD binds it"}
end
return {status = "Degraded", message = "bound otherwise"}
"#,
    )
    .unwrap();
    let o = json!({"kind": "VmNetwork", "metadata": {"name": "p", "generation": 12},
                   "spec": {"ports": [{"name": "ssh", "port": 22}, {"name": "web", "port": 80}],
                            "enabled": true, "nothing": null},
                   "status": {"observedGeneration": 12, "ratio": 0.5}});
    assert_eq!(
        run_lua(&probe, &[&o]),
        [("Healthy".to_owned(), "as Argo CD binds it".to_owned())]
    );
    let invalid = dir.path().join("invalid.lua");
    std::fs::write(&invalid, r#"return {status = "Fine"}"#).unwrap();
    assert_eq!(
        run_lua(&invalid, &[&o]),
        [(
            "Unknown".to_owned(),
            "Lua returned an invalid health status".to_owned()
        )]
    );
    let failing = dir.path().join("failing.lua");
    std::fs::write(&failing, r#"return string.format("%s", obj.kind)"#).unwrap();
    assert_eq!(run_lua(&failing, &[&o])[0].0, "Error");
}

async fn get_all(w: &World) -> BTreeMap<&'static str, Value> {
    let c = client(w);
    let mut out = BTreeMap::new();
    out.insert(
        "VyosRouter",
        get_json(&Api::<VyosRouter>::all(c.clone()), &w.router)
            .await
            .unwrap(),
    );
    out.insert(
        "IpPool",
        get_json(&Api::<IpPool>::all(c.clone()), &w.ippool)
            .await
            .unwrap(),
    );
    out.insert(
        "PortPool",
        get_json(&Api::<PortPool>::all(c), &w.portpool)
            .await
            .unwrap(),
    );
    out
}

/// Waits until `o` (fetched by `fetch`) reads `health` by [`expected`], and returns it.
async fn wait_health(
    what: &str,
    health: &str,
    secs: u64,
    mut fetch: impl AsyncFnMut() -> Option<Value>,
) -> Value {
    eventually(secs, &format!("{what} {health}"), async || {
        let o = fetch().await.ok_or("absent")?;
        if o["status"]["conditions"].is_array() && expected(&o).0 == health {
            Ok(o)
        } else {
            Err(o["status"].to_string())
        }
    })
    .await
}

// 4. Live objects that are Ready for their generation, of all five kinds (a VmNetwork with
//    a port, its PortRule, the router, the IpPool and the PortPool), are Healthy to Argo CD
//    and Current to kstatus, with the Ready condition's message (its reason when empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_objects_are_healthy_and_current() {
    let mut w = world("gohealthy").await;
    w.start_operator("a", true).await;
    w.vmnetwork(
        "web",
        json!({"router": w.router, "ports": [{"name": "https", "port": 443, "protocol": "tcp"}]}),
    )
    .await;
    let vm = wait_health("VmNetwork web", "Healthy", 60, async || {
        get_json(&w.vmnetworks(), "web").await
    })
    .await;
    let pr = wait_health("PortRule web-https", "Healthy", 60, async || {
        get_json(&w.portrules(), "web-https").await
    })
    .await;
    let mut all = BTreeMap::new();
    for kind in ["VyosRouter", "IpPool", "PortPool"] {
        let o = wait_health(kind, "Healthy", 60, async || get_all(&w).await.remove(kind)).await;
        all.insert(kind, o);
    }
    all.insert("VmNetwork", vm);
    all.insert("PortRule", pr);
    let objects: Vec<&Value> = KINDS.iter().map(|k| &all[k]).collect();
    assert_eq!(check(&objects), ["Healthy"; 5]);
    // The messages, spelled out: the Ready condition's, or its reason.
    let argo = argocd(&objects);
    let messages: BTreeMap<&str, &str> = KINDS
        .iter()
        .zip(&argo)
        .map(|(k, (_, m))| (*k, m.as_str()))
        .collect();
    assert_eq!(messages["VmNetwork"], "1 port(s) forwarded");
    assert!(
        messages["PortRule"].starts_with("rule ")
            && messages["PortRule"].ends_with(&format!(" on router {}", w.router)),
        "{messages:?}"
    );
    assert_eq!(
        messages["VyosRouter"],
        "1 rules programmed; not saved to boot (spec.saveConfig is off): a reboot drops them until the health probe sees it and they are re-written"
    );
    assert_eq!(
        messages["IpPool"], "Loaded",
        "an empty message gives the reason"
    );
    assert_eq!(messages["PortPool"], "Loaded");
}

// 5. Live Stalled objects are Degraded to Argo CD and Failed to kstatus (Flux fails fast):
//    a VmNetwork naming an IpPool that does not exist (InvalidRequest), a PortRule that
//    forwards to an address no pool lets its namespace use (NamespaceNotAllowed), and a
//    VmNetwork whose PortRule the writer refuses (an endpoint an older PortRule forwards:
//    Conflict), which passes its child's refusal up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_objects_are_degraded_and_failed() {
    let mut w = world("godegraded").await;
    w.start_operator("a", true).await;
    let mut older = standalone(&w, 30500, "10.77.0.9");
    older["externalAddress"] = json!("203.0.113.10");
    w.portrule("older", older).await;
    wait_health("PortRule older", "Healthy", 60, async || {
        get_json(&w.portrules(), "older").await
    })
    .await;
    // "Older" is by creationTimestamp, which has whole seconds (a tie goes by name, and
    // "clash-web" sorts first): make it older for certain.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.vmnetwork(
        "clash",
        json!({"router": w.router, "ports": [
            {"name": "web", "port": 80, "protocol": "tcp", "externalPort": 30500}]}),
    )
    .await;
    let clash = wait_health("VmNetwork clash", "Degraded", 60, async || {
        get_json(&w.vmnetworks(), "clash").await
    })
    .await;
    let clash_rule = wait_health("PortRule clash-web", "Degraded", 60, async || {
        get_json(&w.portrules(), "clash-web").await
    })
    .await;
    assert_eq!(condition(&clash_rule, "Stalled").unwrap().1, "Conflict");
    assert_eq!(condition(&clash, "Stalled").unwrap().1, "Conflict");
    assert_eq!(check(&[&clash, &clash_rule]), ["Degraded", "Degraded"]);
    let argo = argocd(&[&clash, &clash_rule]);
    assert_eq!(argo[0].1, format!("port web: {}", argo[1].1), "{argo:?}");
    w.vmnetwork(
        "nowhere",
        json!({"router": w.router, "ipPoolRef": "no-such-pool",
               "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"}]}),
    )
    .await;
    w.portrule("stray", standalone(&w, 46200, "10.99.0.5"))
        .await;
    let vm = wait_health("VmNetwork nowhere", "Degraded", 60, async || {
        get_json(&w.vmnetworks(), "nowhere").await
    })
    .await;
    let pr = wait_health("PortRule stray", "Degraded", 60, async || {
        get_json(&w.portrules(), "stray").await
    })
    .await;
    assert_eq!(condition(&vm, "Stalled").unwrap().1, "InvalidRequest");
    assert_eq!(condition(&pr, "Stalled").unwrap().1, "NamespaceNotAllowed");
    assert_eq!(check(&[&vm, &pr]), ["Degraded", "Degraded"]);
    let argo = argocd(&[&vm, &pr]);
    assert!(argo[0].1.contains("no-such-pool"), "{argo:?}");
    assert!(argo[1].1.contains("10.99.0.5"), "{argo:?}");
    // Fixing the spec makes them Healthy (the stale Stalled never reads Degraded again).
    w.vmnetwork(
        "nowhere",
        json!({"router": w.router, "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"}]}),
    )
    .await;
    w.portrule("stray", standalone(&w, 46200, "10.77.0.5"))
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let vm = get_json(&w.vmnetworks(), "nowhere").await.unwrap();
        let pr = get_json(&w.portrules(), "stray").await.unwrap();
        let health = check(&[&vm, &pr]);
        for (o, h) in [&vm, &pr].into_iter().zip(&health) {
            if o["metadata"]["generation"] == 2 {
                assert_ne!(
                    h, "Degraded",
                    "Degraded for the fixed spec: {}",
                    o["status"]
                );
            }
        }
        if health == ["Healthy", "Healthy"] {
            break;
        }
        assert!(Instant::now() < deadline, "never Healthy: {health:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// 6. A change on its way to a slow router (every commit takes 2 s) is Progressing to Argo CD
//    and InProgress to kstatus, for the VmNetwork and its PortRule, until the router has it;
//    only then Healthy and Current. Every sample on the way reads the same in both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_flight_is_progressing_and_in_progress() {
    let mut w = world("goflight").await;
    w.start_operator("a", true).await;
    w.vmnetwork(
        "web",
        json!({"router": w.router, "address": "10.77.0.10", "ports": [
            {"name": "https", "port": 443, "protocol": "tcp", "externalPort": 30443}]}),
    )
    .await;
    let vm = wait_health("VmNetwork web", "Healthy", 60, async || {
        get_json(&w.vmnetworks(), "web").await
    })
    .await;
    let pr = wait_health("PortRule web-https", "Healthy", 60, async || {
        get_json(&w.portrules(), "web-https").await
    })
    .await;
    // Both Go programs are built now, not in the middle of the change.
    assert_eq!(check(&[&vm, &pr]), ["Healthy", "Healthy"]);
    w.sim().set_faults(Faults {
        commit_delay_ms: 2000,
        ..Faults::default()
    });
    let started = Instant::now();
    w.vmnetwork(
        "web",
        json!({"router": w.router, "address": "10.77.0.10", "ports": [
            {"name": "https", "port": 8443, "protocol": "tcp", "externalPort": 30443}]}),
    )
    .await;
    let on_router = |w: &World| {
        w.router_rules()
            .values()
            .any(|r| r.translation.port.as_deref() == Some("8443"))
    };
    let mut saw = BTreeMap::<&str, Vec<String>>::new();
    loop {
        // Objects first, then the router: a status read before the router has the change
        // must not say Healthy (the writer writes Ready only after the commit).
        let vm = get_json(&w.vmnetworks(), "web").await.unwrap();
        let pr = get_json(&w.portrules(), "web-https").await.unwrap();
        let programmed = on_router(&w);
        let new = vm["metadata"]["generation"] == 2 && pr["spec"]["internalPort"] == 8443;
        let health = check(&[&vm, &pr]);
        if new && !programmed {
            assert!(
                health.iter().all(|h| h == "Progressing"),
                "{health:?} before the router has the change: {} / {}",
                vm["status"],
                pr["status"]
            );
            for (kind, o) in [("VmNetwork", &vm), ("PortRule", &pr)] {
                let held = o["status"]["conditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["status"] == "True")
                    .unwrap();
                if o["status"]["observedGeneration"] == o["metadata"]["generation"] {
                    saw.entry(kind).or_default().push(format!(
                        "{}/{}",
                        held["type"].as_str().unwrap(),
                        held["reason"].as_str().unwrap()
                    ));
                }
            }
        }
        if new && health == ["Healthy", "Healthy"] {
            assert!(programmed, "Healthy before the router has the change");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never converged: {health:?}: {} / {}",
            vm["status"],
            pr["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("reasons seen while in flight: {saw:?}");
    for kind in ["VmNetwork", "PortRule"] {
        assert!(
            saw.get(kind)
                .is_some_and(|r| r.iter().any(|r| r.starts_with("Reconciling/"))),
            "{kind} was never seen Reconciling for its new generation while in flight: {saw:?}"
        );
    }
}

// 7. A router that stops answering: the router, its PortRule and the VmNetwork say
//    Reconciling/RouterUnreachable, which is Progressing to Argo CD and InProgress to
//    kstatus (not Degraded: it heals by itself), with the condition's message. Once the
//    router answers again all are Healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_router_is_progressing_and_in_progress() {
    let mut w = world("gounreach").await;
    w.start_operator("a", true).await;
    w.vmnetwork(
        "web",
        json!({"router": w.router, "ports": [{"name": "ssh", "port": 22, "protocol": "tcp"}]}),
    )
    .await;
    wait_health("VmNetwork web", "Healthy", 60, async || {
        get_json(&w.vmnetworks(), "web").await
    })
    .await;
    let routers = Api::<VyosRouter>::all(client(&w));
    wait_health("VyosRouter", "Healthy", 60, async || {
        get_json(&routers, &w.router).await
    })
    .await;
    w.sim().set_faults(Faults {
        timeout_rate: 1.0,
        ..Faults::default()
    });
    // A change starts a pass at once.
    w.vmnetwork(
        "web",
        json!({"router": w.router, "ports": [{"name": "ssh", "port": 2222, "protocol": "tcp"}]}),
    )
    .await;
    let unreachable = |o: &Value| {
        o["status"]["observedGeneration"] == o["metadata"]["generation"]
            && condition(o, "Reconciling")
                .is_some_and(|c| c.0 == "True" && c.1 == "RouterUnreachable")
    };
    let (router, pr, vm) = eventually(30, "RouterUnreachable everywhere", async || {
        let r = get_json(&routers, &w.router).await.ok_or("no router")?;
        let pr = get_json(&w.portrules(), "web-ssh").await.ok_or("no rule")?;
        let vm = get_json(&w.vmnetworks(), "web").await.ok_or("no vm")?;
        if unreachable(&r) && unreachable(&pr) && unreachable(&vm) {
            Ok((r, pr, vm))
        } else {
            Err(format!(
                "{} / {} / {}",
                r["status"], pr["status"], vm["status"]
            ))
        }
    })
    .await;
    assert_eq!(
        check(&[&router, &pr, &vm]),
        ["Progressing", "Progressing", "Progressing"]
    );
    let argo = argocd(&[&router, &pr, &vm]);
    for ((_, m), o) in argo.iter().zip([&router, &pr, &vm]) {
        assert_eq!(
            *m,
            condition(o, "Reconciling").unwrap().2,
            "{}",
            o["status"]
        );
    }
    w.sim().set_faults(Faults::default());
    wait_health("VmNetwork web", "Healthy", 60, async || {
        get_json(&w.vmnetworks(), "web").await
    })
    .await;
    let pr = wait_health("PortRule web-ssh", "Healthy", 60, async || {
        get_json(&w.portrules(), "web-ssh").await
    })
    .await;
    let router = wait_health("VyosRouter", "Healthy", 60, async || {
        get_json(&routers, &w.router).await
    })
    .await;
    let vm = get_json(&w.vmnetworks(), "web").await.unwrap();
    assert_eq!(check(&[&router, &pr, &vm]), ["Healthy"; 3]);
}
