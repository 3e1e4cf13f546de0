//! Bad input is refused by the API server at `kubectl apply` time, by the CRDs' structural
//! schemas and CEL rules, with a message that names the offending field.
//!
//! Each case starts from a valid object of its kind, breaks one thing, and creates it with
//! `dryRun=All` (validation runs in full; nothing is stored), so the table needs no cleanup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use vmnet_testkit::{TestNamespace, install_crds};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Router,
    IpPool,
    PortPool,
    VmNetwork,
    PortRule,
}

impl Kind {
    fn resource(self) -> ApiResource {
        let (kind, plural) = match self {
            Kind::Router => ("VyosRouter", "vyosrouters"),
            Kind::IpPool => ("IpPool", "ippools"),
            Kind::PortPool => ("PortPool", "portpools"),
            Kind::VmNetwork => ("VmNetwork", "vmnetworks"),
            Kind::PortRule => ("PortRule", "portrules"),
        };
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("vmnet.dev", "v1alpha1", kind),
            plural,
        )
    }

    fn namespaced(self) -> bool {
        matches!(self, Kind::VmNetwork | Kind::PortRule)
    }

    /// A valid object of this kind.
    fn base(self, name: &str) -> Value {
        let ar = self.resource();
        let spec = match self {
            Kind::Router => json!({
                "endpoint": "https://192.0.2.1",
                "credentialsSecretRef": { "name": "vyos-api", "namespace": "vmnet-system" },
                "ruleRange": { "start": 10000, "end": 19999 }
            }),
            Kind::IpPool => json!({ "addresses": ["10.20.0.0/24"] }),
            Kind::PortPool => json!({
                "router": "edge-1",
                "externalAddress": "203.0.113.10",
                "ports": ["30000-32767"]
            }),
            Kind::VmNetwork => json!({
                "router": "edge-1",
                "address": "10.20.0.10",
                "ports": [{ "name": "ssh", "port": 22, "protocol": "tcp" }]
            }),
            Kind::PortRule => json!({
                "router": "edge-1",
                "protocol": "tcp",
                "externalAddress": "203.0.113.10",
                "externalPort": 2222,
                "internalAddress": "10.20.0.10",
                "internalPort": 22
            }),
        };
        json!({
            "apiVersion": ar.api_version,
            "kind": ar.kind,
            "metadata": { "name": name },
            "spec": spec
        })
    }

    fn api(self, client: kube::Client, ns: &str) -> Api<DynamicObject> {
        let ar = self.resource();
        if self.namespaced() {
            Api::namespaced_with(client, ns, &ar)
        } else {
            Api::all_with(client, &ar)
        }
    }
}

/// One change to the base object: set a value at a dotted path (`[n]` indexes a list), or
/// remove the key when the value is `None`.
type Edit = (&'static str, Option<Value>);

struct Case {
    what: &'static str,
    kind: Kind,
    edits: Vec<Edit>,
    /// Every string must appear in the API server's message (the first is the field path).
    want: Vec<&'static str>,
}

fn case(what: &'static str, kind: Kind, edits: Vec<Edit>, want: &[&'static str]) -> Case {
    Case {
        what,
        kind,
        edits,
        want: want.to_vec(),
    }
}

fn set(path: &'static str, v: Value) -> Edit {
    (path, Some(v))
}

fn unset(path: &'static str) -> Edit {
    (path, None)
}

fn apply_edit(obj: &mut Value, (path, value): &Edit) {
    let mut parts: Vec<(String, Option<usize>)> = Vec::new();
    for seg in path.split('.') {
        match seg.split_once('[') {
            Some((key, idx)) => {
                let i = idx.trim_end_matches(']').parse().unwrap();
                parts.push((key.to_owned(), Some(i)));
            }
            None => parts.push((seg.to_owned(), None)),
        }
    }
    let (last, init) = parts.split_last().unwrap();
    let mut cur = obj;
    for (key, idx) in init {
        cur = cur
            .as_object_mut()
            .unwrap()
            .entry(key.clone())
            .or_insert_with(|| json!({}));
        if let Some(i) = idx {
            cur = &mut cur.as_array_mut().unwrap()[*i];
        }
    }
    let map = cur.as_object_mut().unwrap();
    match (last.1, value) {
        (None, Some(v)) => {
            map.insert(last.0.clone(), v.clone());
        }
        (None, None) => {
            map.remove(&last.0);
        }
        (Some(i), Some(v)) => map.get_mut(&last.0).unwrap().as_array_mut().unwrap()[i] = v.clone(),
        (Some(i), None) => {
            map.get_mut(&last.0)
                .unwrap()
                .as_array_mut()
                .unwrap()
                .remove(i);
        }
    }
}

fn long(n: usize) -> Value {
    Value::String("a".repeat(n))
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Kind::*;
    vec![
        // VyosRouter
        case("endpoint without a scheme", Router, vec![set("spec.endpoint", json!("192.0.2.1:443"))], &["spec.endpoint", "should match"]),
        case("endpoint with a space", Router, vec![set("spec.endpoint", json!("https://router one"))], &["spec.endpoint", "should match"]),
        case("plain http without the explicit flag", Router, vec![set("spec.endpoint", json!("http://192.0.2.1"))], &["spec.endpoint", "clear text", "insecurePlainHttp"]),
        case("no credentialsSecretRef", Router, vec![unset("spec.credentialsSecretRef")], &["spec.credentialsSecretRef", "Required value"]),
        case("credentialsSecretRef without namespace", Router, vec![unset("spec.credentialsSecretRef.namespace")], &["spec.credentialsSecretRef.namespace", "Required value"]),
        case("credentialsSecretRef with a bad name", Router, vec![set("spec.credentialsSecretRef.name", json!("Vyos_API"))], &["spec.credentialsSecretRef.name", "should match"]),
        case("rule range starting at 0", Router, vec![set("spec.ruleRange.start", json!(0))], &["spec.ruleRange.start", "greater than or equal to 1"]),
        case("rule range past VyOS's last rule", Router, vec![set("spec.ruleRange.end", json!(1_000_000))], &["spec.ruleRange.end", "less than or equal to 999999"]),
        case("rule range start after end", Router, vec![set("spec.ruleRange", json!({"start": 500, "end": 100}))], &["spec.ruleRange", "start must not be after end"]),
        case("no rule range", Router, vec![unset("spec.ruleRange")], &["spec.ruleRange", "Required value"]),
        case("CA bundle that is not PEM", Router, vec![set("spec.tls", json!({"caBundle": "not a certificate"}))], &["spec.tls.caBundle", "PEM"]),
        case("CA bundle and skip-verify together", Router, vec![set("spec.tls", json!({"caBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "insecureSkipVerify": true}))], &["spec.tls", "contradict"]),
        case("drift interval too short", Router, vec![set("spec.driftCheckInterval", json!("5s"))], &["spec.driftCheckInterval", "between 10s and 24h"]),
        case("drift interval not a duration", Router, vec![set("spec.driftCheckInterval", json!("often"))], &["spec.driftCheckInterval", "should match"]),
        case("commit-confirm of 0 minutes", Router, vec![set("spec.commitConfirmMinutes", json!(0))], &["spec.commitConfirmMinutes", "greater than or equal to 1"]),
        case("body limit over VyOS's 256 MiB", Router, vec![set("spec.requestBodySizeLimit", json!(257))], &["spec.requestBodySizeLimit", "less than or equal to 256"]),
        case("unknown orphan policy", Router, vec![set("spec.orphanPolicy", json!("delete-all"))], &["spec.orphanPolicy", "Unsupported value"]),
        case("interface name with a space", Router, vec![set("spec.defaultInboundInterface", json!("eth 0"))], &["spec.defaultInboundInterface", "should match"]),
        case("backup schedule not cron", Router, vec![set("spec.backup", json!({"schedule": "every day", "retention": {"count": 7}}))], &["spec.backup.schedule"]),
        case("backup schedule with a minute of 60", Router, vec![set("spec.backup", json!({"schedule": "60 3 * * *", "retention": {"count": 7}}))], &["spec.backup.schedule", "should match"]),
        case("backup schedule with six fields", Router, vec![set("spec.backup", json!({"schedule": "0 0 3 * * *", "retention": {"count": 7}}))], &["spec.backup.schedule", "should match"]),
        case("backup schedule with a step of 0", Router, vec![set("spec.backup", json!({"schedule": "*/0 * * * *", "retention": {"count": 7}}))], &["spec.backup.schedule", "should match"]),
        case("backup retention count 0", Router, vec![set("spec.backup", json!({"schedule": "0 3 * * *", "retention": {"count": 0}}))], &["spec.backup.retention.count", "greater than or equal to 1"]),
        case("backup retention without count or maxAge", Router, vec![set("spec.backup", json!({"schedule": "0 3 * * *", "retention": {}}))], &["spec.backup.retention", "set count, maxAge or both"]),
        case("backup that never runs", Router, vec![set("spec.backup", json!({"retention": {"count": 3}}))], &["spec.backup", "set schedule, or beforeChanges: true"]),
        case("backup min interval too short", Router, vec![set("spec.backup", json!({"beforeChanges": true, "minInterval": "1s", "retention": {"count": 3}}))], &["spec.backup.minInterval", "between 10s and 720h"]),
        case("firewall without its rule range", Router, vec![set("spec.firewall", json!({"mode": "per-rule"}))], &["spec.firewall", "ruleRange"]),
        case("per-rule firewall range smaller than the NAT range", Router, vec![set("spec.firewall", json!({"mode": "per-rule", "ruleRange": {"start": 5000, "end": 5010}}))], &["spec.firewall.ruleRange", "as many rule numbers"]),
        case("unknown firewall mode", Router, vec![set("spec.firewall", json!({"mode": "allow-all", "ruleRange": {"start": 5000, "end": 5999}}))], &["spec.firewall.mode", "Unsupported value"]),
        case("hairpin range overlapping the NAT range", Router, vec![set("spec.hairpin", json!({"insideInterface": "eth1", "insideNetwork": "10.20.0.0/24", "ruleRange": {"start": 15000, "end": 29999}}))], &["spec.hairpin.ruleRange", "must not overlap spec.ruleRange"]),
        case("hairpin range smaller than the NAT range", Router, vec![set("spec.hairpin", json!({"insideInterface": "eth1", "insideNetwork": "10.20.0.0/24", "ruleRange": {"start": 30000, "end": 30010}}))], &["spec.hairpin.ruleRange", "as many rule numbers"]),
        case("hairpin inside network with host bits", Router, vec![set("spec.hairpin", json!({"insideInterface": "eth1", "insideNetwork": "10.20.0.1/24", "ruleRange": {"start": 30000, "end": 39999}}))], &["spec.hairpin.insideNetwork", "network address"]),
        case("hairpin without an inside interface", Router, vec![set("spec.hairpin", json!({"insideNetwork": "10.20.0.0/24", "ruleRange": {"start": 30000, "end": 39999}}))], &["spec.hairpin.insideInterface", "Required value"]),
        case("two members of one name", Router, vec![set("spec.members", json!([{"name": "b", "endpoint": "https://192.0.2.2"}, {"name": "b", "endpoint": "https://192.0.2.3"}]))], &["spec.members", "member names must be unique"]),
        case("a member over plain http", Router, vec![set("spec.members", json!([{"name": "b", "endpoint": "http://192.0.2.2"}]))], &["spec.members[0].endpoint", "clear text"]),
        case("a member name that is no DNS label", Router, vec![set("spec.members", json!([{"name": "Edge_B", "endpoint": "https://192.0.2.2"}]))], &["spec.members[0].name", "should match"]),
        case("health check interval too short", Router, vec![set("spec.healthCheckInterval", json!("1s"))], &["spec.healthCheckInterval", "between 5s and 1h"]),
        // IpPool
        case("pool with no addresses", IpPool, vec![set("spec.addresses", json!([]))], &["spec.addresses", "at least 1"]),
        case("malformed IPv4 CIDR", IpPool, vec![set("spec.addresses", json!(["10.20.0.300/24"]))], &["spec.addresses[0]", "must be an address"]),
        case("CIDR with host bits", IpPool, vec![set("spec.addresses", json!(["10.20.0.5/24"]))], &["spec.addresses[0]", "network address"]),
        case("range start after end", IpPool, vec![set("spec.addresses", json!(["10.20.0.50-10.20.0.10"]))], &["spec.addresses[0]", "range low-high"]),
        case("IPv6 range start after end", IpPool, vec![set("spec.addresses", json!(["fd00::20-fd00::10"]))], &["spec.addresses[0]", "range low-high"]),
        case("IPv6 range reversed in a high hextet", IpPool, vec![set("spec.addresses", json!(["fd00:0:0:1::-fd00::ffff"]))], &["spec.addresses[0]", "range low-high"]),
        case("IPv6 exclusion reversed", IpPool, vec![set("spec.exclude", json!(["2001:db8::9-2001:db8::1"]))], &["spec.exclude[0]", "range low-high"]),
        case("range mixing IPv4 and IPv6", IpPool, vec![set("spec.addresses", json!(["10.20.0.1-2001:db8::1"]))], &["spec.addresses[0]", "one family"]),
        case("malformed exclusion", IpPool, vec![set("spec.exclude", json!(["10.20.0.1", "gateway"]))], &["spec.exclude[1]", "must be an address"]),
        case("bad namespace name", IpPool, vec![set("spec.allowedNamespaces", json!(["Team A"]))], &["spec.allowedNamespaces[0]", "namespace name"]),
        case("priority out of range", IpPool, vec![set("spec.priority", json!(5000))], &["spec.priority", "less than or equal to 1000"]),
        // PortPool
        case("port 0 in a range", PortPool, vec![set("spec.ports", json!(["0-100"]))], &["spec.ports[0]", "1-65535"]),
        case("port above 65535", PortPool, vec![set("spec.ports", json!(["70000"]))], &["spec.ports[0]", "1-65535"]),
        case("port range reversed", PortPool, vec![set("spec.ports", json!(["40000-30000"]))], &["spec.ports[0]", "low-high"]),
        case("exclusion not a port", PortPool, vec![set("spec.exclude", json!(["ssh"]))], &["spec.exclude[0]", "1-65535"]),
        case("IPv6 external address", PortPool, vec![set("spec.externalAddress", json!("2001:db8::1"))], &["spec.externalAddress", "IPv4"]),
        case("neither address nor interface", PortPool, vec![unset("spec.externalAddress")], &["spec", "set spec.externalAddress, spec.inboundInterface or both"]),
        case("protocol without ports", PortPool, vec![set("spec.protocols", json!(["all"]))], &["spec.protocols[0]", "Unsupported value"]),
        case("unknown protocol", PortPool, vec![set("spec.protocols", json!(["icmp"]))], &["spec.protocols[0]", "Unsupported value"]),
        case("no router", PortPool, vec![unset("spec.router")], &["spec.router", "Required value"]),
        // VmNetwork
        case("address out of range", VmNetwork, vec![set("spec.address", json!("10.20.0.256"))], &["spec.address", "IPv4 address"]),
        case("IPv6 internal address", VmNetwork, vec![set("spec.address", json!("2001:db8::10"))], &["spec.address", "IPv4 address"]),
        case("malformed MAC", VmNetwork, vec![set("spec.mac", json!("52:54:00:zz:00:01"))], &["spec.mac", "should match"]),
        case("internal port 0", VmNetwork, vec![set("spec.ports[0].port", json!(0))], &["spec.ports[0].port", "greater than or equal to 1"]),
        case("internal port 70000", VmNetwork, vec![set("spec.ports[0].port", json!(70000))], &["spec.ports[0].port", "less than or equal to 65535"]),
        case("external port 65536", VmNetwork, vec![set("spec.ports[0].externalPort", json!(65536))], &["spec.ports[0].externalPort", "less than or equal to 65535"]),
        case("unknown protocol", VmNetwork, vec![set("spec.ports[0].protocol", json!("icmp"))], &["spec.ports[0].protocol", "Unsupported value"]),
        case("protocol all on a port", VmNetwork, vec![set("spec.ports[0].protocol", json!("all"))], &["spec.ports[0].protocol", "Unsupported value"]),
        case("duplicate port names", VmNetwork, vec![set("spec.ports", json!([{"name": "ssh", "port": 22, "protocol": "tcp"}, {"name": "ssh", "port": 2222, "protocol": "tcp"}]))], &["spec.ports[1]", "Duplicate value"]),
        case("duplicate internal port", VmNetwork, vec![set("spec.ports", json!([{"name": "ssh", "port": 22, "protocol": "tcp"}, {"name": "ssh-alt", "port": 22, "protocol": "tcp_udp"}]))], &["spec.ports", "same internal port"]),
        case("duplicate external port", VmNetwork, vec![set("spec.ports", json!([{"name": "a", "port": 22, "protocol": "tcp", "externalPort": 2000}, {"name": "b", "port": 23, "protocol": "tcp", "externalPort": 2000}]))], &["spec.ports", "same external port"]),
        case("port name with capitals", VmNetwork, vec![set("spec.ports[0].name", json!("SSH"))], &["spec.ports[0].name", "should match"]),
        case("source range with host bits", VmNetwork, vec![set("spec.ports[0].sourceRanges", json!(["198.51.100.1/24"]))], &["spec.ports[0].sourceRanges[0]", "network address"]),
        case("empty router name", VmNetwork, vec![set("spec.router", json!(""))], &["spec.router"]),
        case("name too long for its PortRules", VmNetwork, vec![set("metadata.name", long(48))], &["metadata.name", "at most 47"]),
        case("port expiry not a date-time", VmNetwork, vec![set("spec.ports[0].expiresAt", json!("in 2 hours"))], &["spec.ports[0].expiresAt", "date-time"]),
        // PortRule
        case("unknown protocol", PortRule, vec![set("spec.protocol", json!("icmp"))], &["spec.protocol", "Unsupported value"]),
        case("protocol all with a port", PortRule, vec![set("spec.protocol", json!("all"))], &["spec.protocol", "protocol all has no ports"]),
        case("tcp without external port", PortRule, vec![unset("spec.externalPort")], &["spec.externalPort", "required for tcp"]),
        case("external range end below start", PortRule, vec![set("spec.externalPortEnd", json!(2000))], &["spec.externalPortEnd", "must not be below externalPort"]),
        case("translated range past 65535", PortRule, vec![set("spec.externalPortEnd", json!(2300)), set("spec.internalPort", json!(65500))], &["spec.internalPort", "passes 65535"]),
        case("external port 0", PortRule, vec![set("spec.externalPort", json!(0))], &["spec.externalPort", "greater than or equal to 1"]),
        case("internal address truncated", PortRule, vec![set("spec.internalAddress", json!("10.20.0"))], &["spec.internalAddress", "IPv4 address"]),
        case("no internal address", PortRule, vec![unset("spec.internalAddress")], &["spec.internalAddress", "Required value"]),
        case("description with a quote", PortRule, vec![set("spec.description", json!("it's mine"))], &["spec.description", "quotes"]),
        case("description with a newline", PortRule, vec![set("spec.description", json!("line one\nline two"))], &["spec.description", "newlines"]),
        case("description with a control character", PortRule, vec![set("spec.description", json!("bell\u{7}"))], &["spec.description", "control characters"]),
        case("description too long", PortRule, vec![set("spec.description", long(101))], &["spec.description", "100"]),
        case("neither external address nor interface", PortRule, vec![unset("spec.externalAddress")], &["spec.externalAddress", "set externalAddress, inboundInterface or both"]),
        case("interface name too long", PortRule, vec![set("spec.inboundInterface", json!("eth0.1234567890123"))], &["spec.inboundInterface", "15"]),
        case("IPv6 source range", PortRule, vec![set("spec.sourceRanges", json!(["2001:db8::/32"]))], &["spec.sourceRanges[0]", "IPv4"]),
        case("seventeen source ranges", PortRule, vec![set("spec.sourceRanges", json!((1..=17).map(|i| format!("192.0.2.{i}")).collect::<Vec<_>>()))], &["spec.sourceRanges", "must have at most 16 items"]),
        case("name too long for the marker", PortRule, vec![set("metadata.name", long(64))], &["metadata.name", "at most 63"]),
        case("expiry not a date-time", PortRule, vec![set("spec.expiresAt", json!("tomorrow"))], &["spec.expiresAt", "date-time"]),
        case("expiry without a time zone", PortRule, vec![set("spec.expiresAt", json!("2026-12-06T10:00:00"))], &["spec.expiresAt", "date-time"]),
        case("expiry in month 13", PortRule, vec![set("spec.expiresAt", json!("2026-13-06T10:00:00Z"))], &["spec.expiresAt", "date-time"]),
    ]
}

fn message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => format!("{other}"),
    }
}

#[tokio::test]
async fn bad_manifests_are_rejected_with_the_field_named() {
    install_crds().await.unwrap();
    let ns = TestNamespace::new("validation").await.unwrap();
    let cases = cases();
    assert!(cases.len() >= 40, "the table must hold at least 40 cases");

    // The base objects themselves must be valid, or every case would pass for nothing.
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    for kind in [
        Kind::Router,
        Kind::IpPool,
        Kind::PortPool,
        Kind::VmNetwork,
        Kind::PortRule,
    ] {
        let obj: DynamicObject = serde_json::from_value(kind.base("valid-base")).unwrap();
        kind.api(ns.client(), ns.name())
            .create(&dry, &obj)
            .await
            .unwrap_or_else(|e| panic!("the valid {kind:?} base was refused: {}", message(&e)));
    }

    // Ranges in order are accepted, in both families, across hextet and octet boundaries.
    let mut pool = Kind::IpPool.base("valid-ranges");
    pool["spec"]["addresses"] = json!([
        "fd00::10-fd00::20",
        "fd00::ff-fd00::100",
        "fd00::1-fe00::",
        "2001:db8::7-2001:db8::7",
        "::1-::2",
        "fd00:0:0:1::-fd00:0:0:1::ffff",
        "10.20.0.250-10.20.1.3"
    ]);
    pool["spec"]["exclude"] = json!(["fd00::12-fd00::14"]);
    let obj: DynamicObject = serde_json::from_value(pool).unwrap();
    Kind::IpPool
        .api(ns.client(), ns.name())
        .create(&dry, &obj)
        .await
        .unwrap_or_else(|e| panic!("ranges in order were refused: {}", message(&e)));

    // expiresAt in the forms RFC 3339 allows, on a PortRule and on a VmNetwork port.
    for at in [
        "2026-12-06T10:00:00Z",
        "2026-12-06T11:00:00+01:00",
        "2026-12-06T10:00:00.25Z",
    ] {
        let mut rule = Kind::PortRule.base("valid-expiry");
        rule["spec"]["expiresAt"] = json!(at);
        let mut vm = Kind::VmNetwork.base("valid-expiry");
        vm["spec"]["ports"][0]["expiresAt"] = json!(at);
        for (kind, obj) in [(Kind::PortRule, rule), (Kind::VmNetwork, vm)] {
            let obj: DynamicObject = serde_json::from_value(obj).unwrap();
            kind.api(ns.client(), ns.name())
                .create(&dry, &obj)
                .await
                .unwrap_or_else(|e| {
                    panic!("{kind:?} expiresAt {at:?} was refused: {}", message(&e))
                });
        }
    }

    // Every backup and probe field at once, with the cron forms the schema allows.
    for schedule in ["0 3 * * *", "*/15 0-6,22 1 1-12/2 1-5", "* * * * *"] {
        let mut router = Kind::Router.base("valid-backup");
        router["spec"]["healthCheckInterval"] = json!("15s");
        router["spec"]["backup"] = json!({"schedule": schedule, "beforeChanges": true,
            "minInterval": "30m", "retention": {"count": 30, "maxAge": "720h"}});
        let obj: DynamicObject = serde_json::from_value(router).unwrap();
        Kind::Router
            .api(ns.client(), ns.name())
            .create(&dry, &obj)
            .await
            .unwrap_or_else(|e| {
                panic!("backup schedule {schedule:?} was refused: {}", message(&e))
            });
    }

    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let mut obj = c.kind.base(&format!("bad-case-{i}"));
        for e in &c.edits {
            apply_edit(&mut obj, e);
        }
        let obj: DynamicObject = serde_json::from_value(obj).unwrap();
        match c.kind.api(ns.client(), ns.name()).create(&dry, &obj).await {
            Ok(_) => failures.push(format!("{:?}: {}: accepted", c.kind, c.what)),
            Err(e) => {
                let msg = message(&e);
                let missing: Vec<_> = c.want.iter().filter(|w| !msg.contains(**w)).collect();
                if !missing.is_empty() {
                    failures.push(format!(
                        "{:?}: {}: message lacks {missing:?}:\n    {msg}",
                        c.kind, c.what
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Creates `kind`'s base object for real, then tries to update it with `edit`.
async fn update_error(ns: &TestNamespace, kind: Kind, name: &str, edit: Edit) -> Option<String> {
    update_error_from(ns, kind, kind.base(name), edit).await
}

/// As [`update_error`], from the object `base` instead of the kind's base.
async fn update_error_from(
    ns: &TestNamespace,
    kind: Kind,
    base: Value,
    edit: Edit,
) -> Option<String> {
    let api = kind.api(ns.client(), ns.name());
    let name = base["metadata"]["name"].as_str().unwrap().to_owned();
    let name = name.as_str();
    let obj: DynamicObject = serde_json::from_value(base).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    let mut changed = serde_json::to_value(api.get(name).await.unwrap()).unwrap();
    apply_edit(&mut changed, &edit);
    let changed: DynamicObject = serde_json::from_value(changed).unwrap();
    let result = api.replace(name, &PostParams::default(), &changed).await;
    api.delete(name, &DeleteParams::default()).await.unwrap();
    result.err().map(|e| message(&e))
}

#[tokio::test]
async fn fields_that_would_orphan_router_state_are_immutable() {
    install_crds().await.unwrap();
    let ns = TestNamespace::new("immutable").await.unwrap();
    let suffix = &ns.name()[ns.name().len() - 8..];
    let moved = || set("spec.router", json!("edge-2"));

    for (kind, want) in [
        (Kind::VmNetwork, "delete and re-create the VmNetwork"),
        (Kind::PortRule, "delete and re-create the PortRule"),
        (Kind::PortPool, "create a new pool for another router"),
    ] {
        let name = format!("immutable-{suffix}");
        let msg = update_error(&ns, kind, &name, moved())
            .await
            .unwrap_or_else(|| panic!("{kind:?}: moving to another router was accepted"));
        assert!(
            msg.contains("spec.router") && msg.contains("immutable"),
            "{kind:?}: {msg}"
        );
        assert!(msg.contains(want), "{kind:?}: {msg}");
    }

    let name = format!("immutable-{suffix}");
    for (edit, what) in [
        (
            set("spec.ruleRange.start", json!(10500)),
            "shrinking from below",
        ),
        (
            set("spec.ruleRange.end", json!(15000)),
            "shrinking from above",
        ),
        (
            set("spec.ruleRange", json!({"start": 20000, "end": 29999})),
            "moving",
        ),
    ] {
        let msg = update_error(&ns, Kind::Router, &name, edit)
            .await
            .unwrap_or_else(|| panic!("rule range {what} was accepted"));
        assert!(
            msg.contains("spec.ruleRange") && msg.contains("may only grow"),
            "{what}: {msg}"
        );
    }
    // Growing is allowed.
    let grown = update_error(
        &ns,
        Kind::Router,
        &name,
        set("spec.ruleRange", json!({"start": 5000, "end": 29999})),
    )
    .await;
    assert_eq!(grown, None, "growing the rule range must be allowed");

    // spec.hairpin: once set, it stays, and its range's start stays.
    let hairpin = |start: u32, end: u32| {
        json!({"insideInterface": "eth1", "insideNetwork": "10.20.0.0/24",
               "ruleRange": {"start": start, "end": end}})
    };
    let set_hairpin = update_error(
        &ns,
        Kind::Router,
        &name,
        set("spec.hairpin", hairpin(40000, 69999)),
    )
    .await;
    assert_eq!(set_hairpin, None, "adding spec.hairpin must be allowed");
    let mut with_hairpin = Kind::Router.base(&name);
    with_hairpin["spec"]["hairpin"] = hairpin(40000, 59999);
    let grown = update_error_from(
        &ns,
        Kind::Router,
        with_hairpin.clone(),
        set("spec.hairpin.ruleRange.end", json!(69999)),
    )
    .await;
    assert_eq!(grown, None, "growing the hairpin range must be allowed");
    for (edit, what, says) in [
        (
            unset("spec.hairpin"),
            "removing hairpin",
            "cannot be removed",
        ),
        (
            set("spec.hairpin.ruleRange.start", json!(39000)),
            "moving its start",
            "start is fixed",
        ),
    ] {
        let msg = update_error_from(&ns, Kind::Router, with_hairpin.clone(), edit)
            .await
            .unwrap_or_else(|| panic!("{what} was accepted"));
        assert!(
            msg.contains("spec.hairpin") && msg.contains(says),
            "{what}: {msg}"
        );
    }
}

#[tokio::test]
async fn server_side_apply_of_a_valid_object_writes_nothing_extra() {
    install_crds().await.unwrap();
    let ns = TestNamespace::new("ssa").await.unwrap();
    let api = Kind::PortRule.api(ns.client(), ns.name());
    let manifest = Kind::PortRule.base("minimal");
    let pp = PatchParams::apply("vmnet-test");
    let first = api
        .patch("minimal", &pp, &Patch::Apply(&manifest))
        .await
        .unwrap();
    // No defaults and no empty placeholders: the stored spec is exactly what was applied.
    assert_eq!(first.data["spec"], manifest["spec"]);
}
