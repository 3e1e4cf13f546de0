//! The test ground itself: behaviours that only a real kube-apiserver with etcd and
//! kube-controller-manager shows. If these pass against a mock, the mock is too clever.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use vmnet_testkit::{TestNamespace, impersonating_client};

fn config_map(name: &str, extra_meta: serde_json::Value) -> ConfigMap {
    let mut meta = json!({ "name": name });
    if let (Some(m), Some(extra)) = (meta.as_object_mut(), extra_meta.as_object()) {
        m.extend(extra.clone());
    }
    serde_json::from_value(json!({ "metadata": meta, "data": { "k": "v" } })).unwrap()
}

async fn wait_gone(api: &Api<ConfigMap>, name: &str, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if api.get_opt(name).await.unwrap().is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test]
async fn finalizer_holds_deletion_until_removed() {
    let ns = TestNamespace::new("finalizer").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(ns.client(), ns.name());
    let cm = config_map("held", json!({ "finalizers": ["vmnet.dev/cleanup"] }));
    api.create(&PostParams::default(), &cm).await.unwrap();

    api.delete("held", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still = api
        .get("held")
        .await
        .expect("object must survive while a finalizer remains");
    assert!(
        still.metadata.deletion_timestamp.is_some(),
        "delete must set deletionTimestamp"
    );

    // A new finalizer cannot be added once deletion has started.
    let add = api
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "metadata": { "finalizers": ["vmnet.dev/cleanup", "x.dev/other"] } }),
            ),
        )
        .await;
    assert!(
        add.is_err(),
        "adding a finalizer during deletion must be refused"
    );

    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await
    .unwrap();
    assert!(wait_gone(&api, "held", Duration::from_secs(10)).await);
}

#[tokio::test]
async fn owned_child_is_garbage_collected_with_its_owner() {
    let ns = TestNamespace::new("gc").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(ns.client(), ns.name());
    let owner = api
        .create(&PostParams::default(), &config_map("owner", json!({})))
        .await
        .unwrap();
    let uid = owner.metadata.uid.clone().unwrap();
    let child = config_map(
        "child",
        json!({ "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid
        }] }),
    );
    api.create(&PostParams::default(), &child).await.unwrap();
    // An orphan with no owner must stay: the collector deletes dependents, not everything.
    api.create(&PostParams::default(), &config_map("bystander", json!({})))
        .await
        .unwrap();

    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    // The garbage collector (kube-controller-manager) removes the dependent.
    assert!(
        wait_gone(&api, "child", Duration::from_secs(60)).await,
        "the child must be garbage-collected after its owner is deleted"
    );
    assert!(api.get_opt("bystander").await.unwrap().is_some());
}

#[tokio::test]
async fn rbac_forbids_without_a_role_and_allows_with_one() {
    let ns = TestNamespace::new("rbac").await.unwrap();
    let alice = impersonating_client("alice", &["tenant-a"]).await.unwrap();
    let as_alice: Api<ConfigMap> = Api::namespaced(alice, ns.name());

    let err = as_alice
        .create(&PostParams::default(), &config_map("nope", json!({})))
        .await
        .expect_err("a user with no role must be refused");
    match err {
        kube::Error::Api(s) => assert_eq!(s.code, 403, "expected Forbidden, got {s:?}"),
        other => panic!("expected an API error, got {other}"),
    }

    let role: Role = serde_json::from_value(json!({
        "metadata": { "name": "cm-editor" },
        "rules": [{ "apiGroups": [""], "resources": ["configmaps"],
                    "verbs": ["get", "list", "create", "update", "patch", "delete"] }]
    }))
    .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "alice-cm-editor" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-editor" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice" }]
    }))
    .unwrap();
    Api::<Role>::namespaced(ns.client(), ns.name())
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(ns.client(), ns.name())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    // RBAC caches refresh quickly but not instantly.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match as_alice
            .create(&PostParams::default(), &config_map("yes", json!({})))
            .await
        {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 403 && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("alice with a Role must be allowed: {e}"),
        }
    }

    // The Role is namespaced: another namespace stays closed to her.
    let other = TestNamespace::new("rbac-other").await.unwrap();
    let elsewhere: Api<ConfigMap> = Api::namespaced(
        impersonating_client("alice", &["tenant-a"]).await.unwrap(),
        other.name(),
    );
    let err = elsewhere
        .create(&PostParams::default(), &config_map("nope", json!({})))
        .await
        .expect_err("the Role must not reach other namespaces");
    assert!(matches!(err, kube::Error::Api(s) if s.code == 403));
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict() {
    let ns = TestNamespace::new("conflict").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(ns.client(), ns.name());
    let first = api
        .create(&PostParams::default(), &config_map("cm", json!({})))
        .await
        .unwrap();

    let mut a = first.clone();
    a.data = Some([("k".to_owned(), "a".to_owned())].into());
    api.replace("cm", &PostParams::default(), &a).await.unwrap();

    let mut b = first;
    b.data = Some([("k".to_owned(), "b".to_owned())].into());
    let err = api
        .replace("cm", &PostParams::default(), &b)
        .await
        .expect_err("a replace with a stale resourceVersion must fail");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "got {err}"
    );
    assert_eq!(
        api.get("cm").await.unwrap().data.unwrap()["k"],
        "a",
        "the losing write must not land"
    );

    let dup = api
        .create(&PostParams::default(), &config_map("cm", json!({})))
        .await
        .expect_err("creating an existing name must fail");
    assert!(matches!(dup, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"));
}
