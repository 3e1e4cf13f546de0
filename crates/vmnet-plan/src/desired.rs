//! The desired NAT rules of one router: every PortRule that may be programmed, rendered,
//! with the ones that may not refused for a reason a person can act on. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use vmnet_api::{PortRule, RuleProtocol, VyosRouterSpec};
use vyos_client::nat::{NatRule, NetworkGroup};

use crate::hairpin::Hairpin;
use crate::render::{Refusal, Renderings, group_name, render, source_group};

/// A namespaced object's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl Key {
    /// The key of `rule`.
    pub fn of(rule: &PortRule) -> Self {
        Self {
            namespace: rule.metadata.namespace.clone().unwrap_or_default(),
            name: rule.metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One rule to program.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The PortRule that declares it.
    pub key: Key,
    /// Its generation when rendered (for `observedGeneration`).
    pub generation: Option<i64>,
    /// The rendered rule (shared with the writer's [`Renderings`] and the plan's target).
    pub rule: Arc<NatRule>,
    /// The network-group its several source ranges need (named by `group_name`).
    pub group: Option<NetworkGroup>,
    /// Its NAT reflection companions, when it has hairpin (boxed: two rules, and most
    /// entries have none).
    pub hairpin: Option<Box<Hairpin>>,
}

/// A PortRule whose `spec.expiresAt` has passed: not programmed, but it keeps its rule
/// number and its endpoint (no other PortRule may take them), so it comes back on the same
/// ones when `expiresAt` moves into the future.
#[derive(Debug, Clone, PartialEq)]
pub struct Expired {
    /// The rule number it keeps.
    pub number: u32,
    /// When it expired.
    pub at: Timestamp,
}

impl Expired {
    /// What the PortRule's condition says.
    pub fn message(&self) -> String {
        expired_message(self.at)
    }
}

/// `expired at 2026-12-06T10:00:00Z; move spec.expiresAt into the future to bring it back`.
pub fn expired_message(at: Timestamp) -> String {
    format!("expired at {at}; move spec.expiresAt into the future to bring it back")
}

/// What one router should hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// By rule number.
    pub rules: BTreeMap<u32, Entry>,
    /// PortRules that may not be programmed, and why.
    pub refused: BTreeMap<Key, Refusal>,
    /// PortRules still waiting for a rule number.
    pub pending: Vec<Key>,
    /// PortRules whose `spec.expiresAt` has passed: left off the router, their number and
    /// endpoint kept.
    pub expired: BTreeMap<Key, Expired>,
}

/// The instant `spec.expiresAt` names: `None` when unset, `Some(Err)` when it does not read
/// as RFC 3339 (the CRD refuses that, so only an object from elsewhere can hold one).
pub fn expires_at(rule: &PortRule) -> Option<Result<Timestamp, String>> {
    let s = rule.spec.expires_at.as_deref()?;
    Some(s.parse::<Timestamp>().map_err(|e| {
        format!("spec.expiresAt {s:?} is not an RFC 3339 date-time with a time zone: {e}")
    }))
}

/// The earliest `spec.expiresAt` after `now` among the PortRules of `router_name` that are
/// not being deleted: when the router's writer must run next, so that the rule leaves the
/// router at that instant rather than at the next drift check.
pub fn next_expiry(
    router_name: &str,
    portrules: &[Arc<PortRule>],
    now: Timestamp,
) -> Option<Timestamp> {
    portrules
        .iter()
        .filter(|r| r.spec.router == router_name && r.metadata.deletion_timestamp.is_none())
        .filter_map(|r| expires_at(r)?.ok())
        .filter(|t| *t > now)
        .min()
}

/// Whether the PortRule's status says it expired (the writer wrote `Expired`): it held its
/// endpoint when it expired, and keeps it against PortRules that came (or were refused)
/// meanwhile, as a rule on the router does.
fn held_when_expired(rule: &PortRule) -> bool {
    rule.status
        .as_ref()
        .and_then(|s| s.common.conditions.as_deref())
        .into_iter()
        .flatten()
        .any(|c| c.status == "True" && c.reason == crate::conditions::Reason::Expired.as_str())
}

/// The desired state of router `router_name` from all PortRules the operator sees, now.
///
/// Rules being deleted are left out, and so are rules whose `spec.expiresAt` has passed
/// (listed in [`Desired::expired`]) (so they leave the router); `check` is the tenant check
/// (may this PortRule forward to its internal address); `foreign` are rules on the router
/// inside the owned range that the operator does not own, and `foreign_groups` the names
/// of network-groups it does not own: neither is ever overwritten.
/// Where two PortRules want the same external endpoint or rule number, the older one keeps
/// it and the other is refused naming it.
pub fn desired(
    router_name: &str,
    router: &VyosRouterSpec,
    portrules: &[Arc<PortRule>],
    check: &dyn Fn(&PortRule) -> Result<(), Refusal>,
    foreign: &BTreeMap<u32, NatRule>,
    foreign_groups: &BTreeSet<String>,
) -> Desired {
    desired_with(
        router_name,
        router,
        portrules,
        check,
        Foreign {
            rules: foreign,
            groups: foreign_groups,
            hairpin: &BTreeMap::new(),
        },
        &Incumbents::new(),
        Timestamp::now(),
        None,
    )
}

/// The PortRules whose rules the router holds now, as `(namespace, name)` (borrowed from
/// the descriptions read: no copy of 10,000 keys per pass).
pub type Incumbents<'a> = std::collections::HashSet<(&'a str, &'a str)>;

/// What the router holds that the operator does not own, and so never writes over.
#[derive(Debug, Clone, Copy)]
pub struct Foreign<'a> {
    /// Rules in the owned range without the marker.
    pub rules: &'a BTreeMap<u32, NatRule>,
    /// The names of network-groups that are not the operator's.
    pub groups: &'a BTreeSet<String>,
    /// Rules in the hairpin range that are not the operator's, by the number of the rule
    /// whose hairpin they block, with what they are.
    pub hairpin: &'a BTreeMap<u32, String>,
}

/// As [`desired`], where `incumbents` (the PortRules whose rules the router holds now) keep
/// what they hold against newcomers, whatever their ages: a new PortRule never takes the
/// endpoint of one that is programmed (creation times have a resolution of one second), nor
/// that of one that expired while it held it. A rule whose `spec.expiresAt` is not after
/// `now` has expired. `renderings`: the rules rendered by earlier passes (see [`Renderings`]).
#[allow(clippy::too_many_arguments)]
pub fn desired_with(
    router_name: &str,
    router: &VyosRouterSpec,
    portrules: &[Arc<PortRule>],
    check: &dyn Fn(&PortRule) -> Result<(), Refusal>,
    foreign: Foreign<'_>,
    incumbents: &Incumbents<'_>,
    now: Timestamp,
    renderings: Option<&Renderings>,
) -> Desired {
    let mut out = Desired::default();
    // Incumbents first, then by age, then by key; the keys are computed once per rule, not
    // once per comparison (at 10,000 rules the comparisons' allocations were most of a pass).
    let mut candidates: Vec<(&Arc<PortRule>, _)> = portrules
        .iter()
        .filter(|r| r.spec.router == router_name && r.metadata.deletion_timestamp.is_none())
        .map(|r| {
            let key = Key::of(r);
            let holds = incumbents.contains(&(key.namespace.as_str(), key.name.as_str()))
                || held_when_expired(r);
            (
                r,
                (
                    !holds,
                    r.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    key,
                ),
            )
        })
        .collect();
    candidates.sort_by(|a, b| a.1.cmp(&b.1));
    // Endpoints and numbers held, by rules to program and by expired ones alike.
    let mut taken = Taken::default();
    let mut numbers: BTreeMap<u32, &Key> = BTreeMap::new();
    let mut entries: Vec<(u32, Entry)> = Vec::new();
    for (r, (_, _, key)) in &candidates {
        let Some(number) = r.status.as_ref().and_then(|s| s.rule_number) else {
            out.pending.push(key.clone());
            continue;
        };
        let expired = match expires_at(r) {
            None => None,
            Some(Ok(at)) => (at <= now).then_some(at),
            Some(Err(why)) => {
                out.refused.insert(
                    key.clone(),
                    Refusal::new(crate::conditions::Reason::InvalidRequest, why),
                );
                continue;
            }
        };
        let group = source_group(r);
        let verdict = check(r)
            .and_then(|()| match renderings {
                Some(kept) => kept.render(r, router, number, key),
                None => render(r, router, number).map(Arc::new),
            })
            .and_then(|nat| {
                let hairpin = crate::hairpin::render(r, &nat, router)?;
                if hairpin.is_some()
                    && let Some(what) = foreign.hairpin.get(&number)
                {
                    return Err(Refusal::new(
                        crate::conditions::Reason::Conflict,
                        format!(
                            "{what} on router {router_name} is in spec.hairpin.ruleRange and                              vmnet-operator does not own it; it is left alone, so this rule's                              hairpin cannot go there (remove that rule, or drop hairpin)"
                        ),
                    ));
                }
                Ok((nat, hairpin))
            })
            .and_then(|(nat, hairpin)| {
                if let Some(other) = numbers.get(&number) {
                    return Err(Refusal::new(
                        crate::conditions::Reason::Conflict,
                        format!("rule number {number} is already used by PortRule {other}"),
                    ));
                }
                if foreign.rules.contains_key(&number) {
                    return Err(Refusal::new(
                        crate::conditions::Reason::Conflict,
                        format!(
                            "rule {number} on router {router_name} holds a rule that \
                             vmnet-operator does not own; it is left alone, so this rule \
                             cannot take its number (remove the foreign rule, or delete this \
                             PortRule's status.ruleNumber to get another)"
                        ),
                    ));
                }
                if group.is_some() && foreign.groups.contains(&group_name(number)) {
                    return Err(Refusal::new(
                        crate::conditions::Reason::Conflict,
                        format!(
                            "firewall group network-group {} on router {router_name} exists \
                             and vmnet-operator does not own it; it is left alone, so this \
                             rule's spec.sourceRanges cannot go there (remove or rename that \
                             group)",
                            group_name(number)
                        ),
                    ));
                }
                let ep = Endpoint::of(r, router);
                if let Some((_, holder, gone)) = taken.find(&ep) {
                    let how = if *gone {
                        format!(
                            "is held by PortRule {holder}, whose forward has expired (it keeps \
                             the endpoint, to come back on it)"
                        )
                    } else {
                        format!("is already forwarded by PortRule {holder}")
                    };
                    return Err(Refusal::new(
                        crate::conditions::Reason::Conflict,
                        format!(
                            "{} {how}; change spec.externalPort (or the address) of one of them",
                            ep.describe()
                        ),
                    ));
                }
                taken.insert(ep, key, expired.is_some());
                numbers.insert(number, key);
                Ok((nat, hairpin))
            });
        match (verdict, expired) {
            (Ok(_), Some(at)) => {
                out.expired.insert(key.clone(), Expired { number, at });
            }
            (Ok((rule, hairpin)), None) => {
                entries.push((
                    number,
                    Entry {
                        key: key.clone(),
                        generation: r.metadata.generation,
                        rule,
                        group,
                        hairpin: hairpin.map(Box::new),
                    },
                ));
            }
            (Err(refusal), _) => {
                out.refused.insert(key.clone(), refusal);
            }
        }
    }
    // Collected at the end (sorted, then built node by node) rather than inserted in age
    // order: an entry is about 900 bytes, and nodes filled by scattered inserts are a
    // third empty.
    out.rules = entries.into_iter().collect();
    if let Some(kept) = renderings {
        kept.sweep();
    }
    out
}

impl Desired {
    /// The network-groups of the rules to program, by rule number.
    pub fn groups(&self) -> BTreeMap<u32, NetworkGroup> {
        self.rules
            .iter()
            .filter_map(|(n, e)| Some((*n, e.group.clone()?)))
            .collect()
    }
}

/// The endpoints held so far, indexed so that finding one that overlaps a new endpoint
/// costs O(log n + the few it may overlap) rather than a scan of all (10,000 rules made
/// the scan the whole cost of a pass: 50 million comparisons, about 1.6 s).
///
/// By destination address (`None`, any address, is a bucket of its own that every query
/// also looks in), then by first port; a query for ports `f..=l` looks at the entries that
/// start in `f - widest..=l`, where `widest` is the largest span held in that bucket.
#[derive(Default)]
struct Taken<'a> {
    by_address: BTreeMap<Option<&'a str>, Bucket<'a>>,
}

/// An endpoint held, by whom, and whether that one's forward has expired.
type Held<'a> = (Endpoint<'a>, &'a Key, bool);

#[derive(Default)]
struct Bucket<'a> {
    by_first: BTreeMap<u16, Vec<Held<'a>>>,
    widest: u16,
}

impl<'a> Bucket<'a> {
    fn find<'s>(&'s self, ep: &Endpoint<'_>) -> Option<&'s Held<'a>> {
        let from = ep.first.saturating_sub(self.widest);
        self.by_first
            .range(from..=ep.last)
            .flat_map(|(_, v)| v)
            .find(|(e, _, _)| e.overlaps(ep))
    }
}

impl<'a> Taken<'a> {
    fn insert(&mut self, ep: Endpoint<'a>, key: &'a Key, expired: bool) {
        let b = self.by_address.entry(ep.address).or_default();
        b.widest = b.widest.max(ep.last - ep.first);
        b.by_first
            .entry(ep.first)
            .or_default()
            .push((ep, key, expired));
    }

    /// A held endpoint that shares a packet with `ep`, if any.
    fn find<'s>(&'s self, ep: &Endpoint<'a>) -> Option<&'s Held<'a>> {
        let in_bucket = |b: &'s Bucket<'a>| b.find(ep);
        match &ep.address {
            // Any address: every bucket.
            None => self.by_address.values().find_map(in_bucket),
            Some(_) => [&ep.address, &None]
                .into_iter()
                .filter_map(|a| self.by_address.get(a))
                .find_map(in_bucket),
        }
    }
}

/// Where a rule receives traffic: the inbound interface and destination address it
/// matches (`None`: any, as VyOS matches a rule that names none), protocol spaces and
/// ports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint<'a> {
    address: Option<&'a str>,
    interface: Option<&'a str>,
    tcp: bool,
    udp: bool,
    other: bool,
    first: u16,
    last: u16,
}

impl<'a> Endpoint<'a> {
    /// The endpoint of `r` as rendered for `router` (an absent interface is the router's
    /// `defaultInboundInterface`, as `render` writes it).
    fn of(r: &'a PortRule, router: &'a VyosRouterSpec) -> Self {
        let s = &r.spec;
        let (tcp, udp, other) = match s.protocol {
            RuleProtocol::Tcp => (true, false, false),
            RuleProtocol::Udp => (false, true, false),
            RuleProtocol::TcpUdp => (true, true, false),
            RuleProtocol::All => (true, true, true),
        };
        let (first, last) = match (s.external_port, s.external_port_end) {
            (Some(p), Some(e)) => (p, e.max(p)),
            (Some(p), None) => (p, p),
            (None, _) => (1, u16::MAX),
        };
        Self {
            address: s.external_address.as_deref(),
            interface: s
                .inbound_interface
                .as_deref()
                .or(router.default_inbound_interface.as_deref()),
            tcp,
            udp,
            other,
            first,
            last,
        }
    }

    /// Whether some packet would match both: a rule without an address (or interface)
    /// catches that port on every address (or interface), so it shadows the others.
    fn overlaps(&self, o: &Self) -> bool {
        let same = |a: &Option<&str>, b: &Option<&str>| a.is_none() || b.is_none() || a == b;
        same(&self.address, &o.address)
            && same(&self.interface, &o.interface)
            && ((self.tcp && o.tcp) || (self.udp && o.udp) || (self.other || o.other))
            && self.first <= o.last
            && o.first <= self.last
    }

    fn describe(&self) -> String {
        let proto = match (self.tcp, self.udp, self.other) {
            (_, _, true) => "all protocols",
            (true, true, false) => "tcp/udp",
            (true, false, false) => "tcp",
            _ => "udp",
        };
        let place = match (self.address, self.interface) {
            (Some(a), _) => a.to_owned(),
            (None, Some(i)) => format!("every address on interface {i}"),
            (None, None) => "every address".to_owned(),
        };
        if self.first == self.last {
            format!("{place}:{} ({proto})", self.first)
        } else {
            format!("{place}:{}-{} ({proto})", self.first, self.last)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use vmnet_api::{PortRuleSpec, PortRuleStatus};
    use vyos_client::nat::NatKind;

    use crate::fixtures::router;

    fn pr(name: &str, age: i64, number: Option<u32>, proto: &str, port: u16) -> Arc<PortRule> {
        let spec: PortRuleSpec = serde_json::from_value(serde_json::json!({
            "router": "edge", "protocol": proto, "externalAddress": "203.0.113.10",
            "externalPort": port, "internalAddress": "10.0.0.5"
        }))
        .unwrap();
        let mut r = PortRule::new(name, spec);
        r.metadata.namespace = Some("lab".into());
        r.metadata.generation = Some(1);
        r.metadata.creation_timestamp = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + age).unwrap(),
        ));
        r.status = Some(PortRuleStatus {
            rule_number: number,
            ..PortRuleStatus::default()
        });
        Arc::new(r)
    }

    fn ok(_: &PortRule) -> Result<(), Refusal> {
        Ok(())
    }

    /// The desired state of `rules` on router edge, with nothing foreign in the way.
    fn want(rules: &[Arc<PortRule>]) -> Desired {
        desired(
            "edge",
            &router(),
            rules,
            &ok,
            &BTreeMap::new(),
            &BTreeSet::new(),
        )
    }

    /// `want` with renderings kept in `kept`.
    fn want_kept(rules: &[Arc<PortRule>], kept: &Renderings, router: &VyosRouterSpec) -> Desired {
        want_on(router, rules, Timestamp::now(), Some(kept))
    }

    /// The desired state of `rules` on router edge with spec `router` at `now`, nothing
    /// foreign in the way.
    fn want_on(
        router: &VyosRouterSpec,
        rules: &[Arc<PortRule>],
        now: Timestamp,
        kept: Option<&Renderings>,
    ) -> Desired {
        desired_with(
            "edge",
            router,
            rules,
            &ok,
            Foreign {
                rules: &BTreeMap::new(),
                groups: &BTreeSet::new(),
                hairpin: &BTreeMap::new(),
            },
            &Incumbents::new(),
            now,
            kept,
        )
    }

    /// `rule` as the API server holds it: with a uid, at generation `generation`.
    fn stored(rule: &Arc<PortRule>, uid: &str, generation: i64) -> Arc<PortRule> {
        let mut r = (**rule).clone();
        r.metadata.uid = Some(uid.into());
        r.metadata.generation = Some(generation);
        Arc::new(r)
    }

    #[test]
    fn kept_renderings_give_the_same_rules_and_follow_every_change() {
        let kept = Renderings::default();
        let a = stored(&pr("a", 0, Some(100), "tcp", 30000), "u1", 1);
        let b = stored(&pr("b", 1, Some(101), "tcp", 30001), "u2", 1);
        let fresh = |rules: &[Arc<PortRule>], router: &VyosRouterSpec| {
            desired(
                "edge",
                router,
                rules,
                &ok,
                &BTreeMap::new(),
                &BTreeSet::new(),
            )
        };
        let rules = vec![a.clone(), b.clone()];
        assert_eq!(
            want_kept(&rules, &kept, &router()),
            fresh(&rules, &router())
        );
        assert_eq!(kept.len(), 2);
        // The same again: the same rules, shared with what was kept (not copies).
        let first = want_kept(&rules, &kept, &router());
        let again = want_kept(&rules, &kept, &router());
        assert_eq!(again, fresh(&rules, &router()));
        assert!(Arc::ptr_eq(
            &first.rules[&100].rule,
            &again.rules[&100].rule
        ));
        assert!(Arc::ptr_eq(
            &first.rules[&101].rule,
            &again.rules[&101].rule
        ));

        // A new spec (generation), a new number, a new object under the same name, and a
        // new default interface on the router: each is rendered again.
        let mut edited = (*b).clone();
        edited.spec.internal_port = Some(8080);
        let edited = stored(&Arc::new(edited), "u2", 2);
        let mut renumbered = (*a).clone();
        renumbered.status.as_mut().unwrap().rule_number = Some(150);
        let renumbered = Arc::new(renumbered);
        for rules in [
            vec![a.clone(), edited.clone()],
            vec![renumbered.clone(), edited.clone()],
            vec![stored(&a, "u3", 1), edited.clone()],
        ] {
            assert_eq!(
                want_kept(&rules, &kept, &router()),
                fresh(&rules, &router())
            );
        }
        let mut moved = router();
        moved.default_inbound_interface = Some("eth9".into());
        let rules = vec![a.clone(), edited.clone()];
        let d = want_kept(&rules, &kept, &moved);
        assert_eq!(d, fresh(&rules, &moved));
        assert_eq!(
            d.rules[&100].rule.inbound_interface.name.as_deref(),
            Some("eth9")
        );

        // A rendering is kept by stamp: the same stamp (which the API server never gives
        // two specs) is not rendered again, so the kept rule shows through.
        want_kept(&[a.clone(), edited.clone()], &kept, &router());
        let mut unchecked = (*a).clone();
        unchecked.spec.internal_address = "not-an-address".into();
        let unchecked = Arc::new(unchecked);
        let rules = vec![unchecked.clone(), edited.clone()];
        assert!(
            fresh(&rules, &router())
                .refused
                .contains_key(&Key::of(&unchecked))
        );
        assert!(want_kept(&rules, &kept, &router()).rules.contains_key(&100));

        // A PortRule no pass renders any more is forgotten.
        want_kept(std::slice::from_ref(&a), &kept, &router());
        assert_eq!(kept.len(), 1);
    }

    #[test]
    fn programs_rules_with_numbers_and_waits_for_the_rest() {
        let rules = vec![
            pr("a", 0, Some(100), "tcp", 30000),
            pr("b", 1, None, "tcp", 30001),
        ];
        let d = want(&rules);
        assert_eq!(d.rules.keys().copied().collect::<Vec<_>>(), vec![100]);
        assert_eq!(d.pending, vec![Key::of(&rules[1])]);
        assert!(d.refused.is_empty());
    }

    #[test]
    fn other_routers_and_deleted_rules_are_left_out() {
        let mut gone = (*pr("gone", 0, Some(101), "tcp", 1)).clone();
        gone.metadata.deletion_timestamp = gone.metadata.creation_timestamp.clone();
        let mut other = (*pr("other", 0, Some(102), "tcp", 2)).clone();
        other.spec.router = "elsewhere".into();
        let d = desired(
            "edge",
            &router(),
            &[Arc::new(gone), Arc::new(other)],
            &ok,
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert!(d.rules.is_empty() && d.refused.is_empty() && d.pending.is_empty());
    }

    #[test]
    fn the_older_rule_keeps_a_contested_endpoint() {
        let rules = vec![
            pr("young", 5, Some(101), "udp", 53),
            pr("old", 1, Some(100), "tcp_udp", 53),
        ];
        let d = want(&rules);
        assert_eq!(d.rules[&100].key.name, "old");
        let why = &d.refused[&Key::of(&rules[0])];
        assert_eq!(why.reason, crate::conditions::Reason::Conflict);
        assert!(
            why.message.contains("lab/old") && why.message.contains("203.0.113.10:53"),
            "{}",
            why.message
        );
    }

    #[test]
    fn tcp_and_udp_on_one_port_do_not_collide() {
        let rules = vec![
            pr("t", 0, Some(100), "tcp", 53),
            pr("u", 1, Some(101), "udp", 53),
        ];
        let d = want(&rules);
        assert_eq!(d.rules.len(), 2, "{:?}", d.refused);
    }

    #[test]
    fn a_foreign_rule_at_the_number_is_never_overwritten() {
        let rules = vec![pr("a", 0, Some(100), "tcp", 30000)];
        let foreign = BTreeMap::from([(100, NatRule::new(NatKind::Destination, 100))]);
        let d = desired("edge", &router(), &rules, &ok, &foreign, &BTreeSet::new());
        assert!(d.rules.is_empty());
        assert!(
            d.refused[&Key::of(&rules[0])]
                .message
                .contains("does not own")
        );
    }

    #[test]
    fn several_sources_bring_a_group_unless_a_foreign_one_has_its_name() {
        let mut two = (*pr("a", 0, Some(100), "tcp", 30000)).clone();
        two.spec.source_ranges = Some(vec!["192.0.2.0/24".into(), "198.51.100.9".into()]);
        let rules = vec![Arc::new(two), pr("b", 1, Some(101), "tcp", 30001)];
        let d = want(&rules);
        let groups = d.groups();
        assert_eq!(groups.keys().copied().collect::<Vec<_>>(), vec![100]);
        assert_eq!(groups[&100].networks.len(), 2);
        assert_eq!(
            d.rules[&100].rule.source.group.network_group.as_deref(),
            Some("VMNET-100")
        );

        let taken = |name: &str| {
            let foreign = BTreeSet::from([name.to_owned()]);
            desired("edge", &router(), &rules, &ok, &BTreeMap::new(), &foreign)
        };
        let d = taken("VMNET-101");
        assert_eq!(
            d.rules.len(),
            2,
            "b has no group, so VMNET-101 is no matter"
        );
        let d = taken("VMNET-100");
        assert_eq!(d.rules.keys().copied().collect::<Vec<_>>(), vec![101]);
        let why = &d.refused[&Key::of(&rules[0])];
        assert_eq!(why.reason, crate::conditions::Reason::Conflict);
        assert!(why.message.contains("VMNET-100"), "{}", why.message);
        assert!(d.groups().is_empty());
    }

    #[test]
    fn the_tenant_check_and_duplicate_numbers_refuse() {
        let rules = vec![
            pr("a", 0, Some(100), "tcp", 1),
            pr("b", 1, Some(100), "tcp", 2),
        ];
        let d = want(&rules);
        assert!(
            d.refused[&Key::of(&rules[1])]
                .message
                .contains("rule number 100")
        );
        let deny = |_: &PortRule| Err(Refusal::new(crate::conditions::Reason::NotAllowed, "no"));
        let d = desired(
            "edge",
            &router(),
            &rules,
            &deny,
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert_eq!(d.refused.len(), 2);
        assert!(d.rules.is_empty());
    }

    #[test]
    fn a_rule_without_an_address_shadows_the_addressed_ones_on_its_interface() {
        let addressed = pr("addressed", 0, Some(100), "tcp", 30022);
        let mut any = (*pr("any", 1, Some(101), "tcp_udp", 30022)).clone();
        any.spec.external_address = None;
        any.spec.inbound_interface = Some("eth0".into());
        let d = want(&[addressed, Arc::new(any)]);
        let why = &d.refused[&Key {
            namespace: "lab".into(),
            name: "any".into(),
        }];
        assert_eq!(why.reason, crate::conditions::Reason::Conflict);
        assert!(
            why.message
                .contains("every address on interface eth0:30022"),
            "{}",
            why.message
        );
        assert!(why.message.contains("lab/addressed"), "{}", why.message);
    }

    /// `rule` with `spec.expiresAt` set to `at` (Unix seconds).
    fn expiring(rule: &Arc<PortRule>, at: i64) -> Arc<PortRule> {
        let mut r = (**rule).clone();
        r.spec.expires_at = Some(Timestamp::from_second(at).unwrap().to_string());
        Arc::new(r)
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn want_at(rules: &[Arc<PortRule>], now: Timestamp) -> Desired {
        want_on(&router(), rules, now, None)
    }

    #[test]
    fn an_expired_rule_is_not_programmed_and_keeps_its_number() {
        let rule = expiring(&pr("tmp", 0, Some(100), "tcp", 30000), 2_000_000_000);
        // Before its instant it is programmed like any other.
        let d = want_at(std::slice::from_ref(&rule), at(1_999_999_999));
        assert_eq!(d.rules.keys().copied().collect::<Vec<_>>(), vec![100]);
        assert!(d.expired.is_empty());
        // At its instant (and after) it is off, neither refused nor pending.
        for now in [2_000_000_000, 2_000_000_500] {
            let d = want_at(std::slice::from_ref(&rule), at(now));
            assert!(d.rules.is_empty(), "{:?}", d.rules);
            assert!(d.refused.is_empty() && d.pending.is_empty());
            let e = &d.expired[&Key::of(&rule)];
            assert_eq!((e.number, e.at), (100, at(2_000_000_000)));
            assert_eq!(
                e.message(),
                "expired at 2033-05-18T03:33:20Z; move spec.expiresAt into the future to \
                 bring it back"
            );
        }
        // Removed, or in another zone's notation, it is the same instant.
        let mut plus_one = (*rule).clone();
        plus_one.spec.expires_at = Some("2033-05-18T04:33:20+01:00".into());
        let d = want_at(&[Arc::new(plus_one)], at(2_000_000_000));
        assert_eq!(d.expired[&Key::of(&rule)].at, at(2_000_000_000));
        // Every form the CRD's `format: date-time` lets through reads as an instant.
        for form in ["2033-05-18t03:33:20z", "2033-05-18T03:33:20.000000001Z"] {
            let mut r = (*rule).clone();
            r.spec.expires_at = Some(form.into());
            assert!(expires_at(&r).is_some_and(|t| t.is_ok()), "{form}");
        }
        let mut forever = (*rule).clone();
        forever.spec.expires_at = None;
        assert_eq!(
            want_at(&[Arc::new(forever)], at(i64::from(i32::MAX)))
                .rules
                .len(),
            1
        );
    }

    #[test]
    fn an_expired_rule_keeps_its_endpoint_and_number_from_newcomers() {
        let old = expiring(&pr("old", 0, Some(100), "tcp", 30000), 2_000_000_000);
        let same_port = pr("new", 5, Some(101), "tcp", 30000);
        let same_number = pr("other", 6, Some(100), "tcp", 30001);
        let d = want_at(
            &[old.clone(), same_port.clone(), same_number.clone()],
            at(2_000_000_001),
        );
        assert!(d.rules.is_empty(), "{:?}", d.rules);
        let why = &d.refused[&Key::of(&same_port)];
        assert_eq!(why.reason, crate::conditions::Reason::Conflict);
        assert!(
            why.message.contains("lab/old") && why.message.contains("expired"),
            "{}",
            why.message
        );
        assert!(
            d.refused[&Key::of(&same_number)]
                .message
                .contains("rule number 100")
        );
    }

    #[test]
    fn a_rule_that_expired_holding_its_endpoint_keeps_it_against_an_older_one() {
        // "young" held the endpoint (the router had it, "old" was refused) and expired; once
        // its expiry moves, its status still says Expired, and it takes the endpoint back.
        let mut young = (*pr("young", 9, Some(101), "tcp", 30000)).clone();
        young.status.as_mut().unwrap().common.conditions = Some(crate::conditions::conditions(
            None,
            crate::conditions::State::Reconciling,
            crate::conditions::Reason::Expired,
            "expired",
            Some(1),
        ));
        let old = pr("old", 0, Some(100), "tcp", 30000);
        let d = want_at(&[old.clone(), Arc::new(young)], at(1_000));
        assert_eq!(d.rules.keys().copied().collect::<Vec<_>>(), vec![101]);
        assert!(d.refused.contains_key(&Key::of(&old)));
    }

    #[test]
    fn the_next_expiry_is_the_earliest_still_to_come_on_this_router() {
        let a = expiring(&pr("a", 0, Some(100), "tcp", 1), 3_000);
        let b = expiring(&pr("b", 1, Some(101), "tcp", 2), 2_000);
        let past = expiring(&pr("past", 2, Some(102), "tcp", 3), 500);
        let mut elsewhere = (*expiring(&pr("x", 3, Some(103), "tcp", 4), 1_500)).clone();
        elsewhere.spec.router = "other".into();
        let mut deleted = (*expiring(&pr("d", 4, Some(104), "tcp", 5), 1_200)).clone();
        deleted.metadata.deletion_timestamp = deleted.metadata.creation_timestamp.clone();
        let never = pr("never", 5, Some(105), "tcp", 6);
        let all = vec![a, b, past, Arc::new(elsewhere), Arc::new(deleted), never];
        assert_eq!(next_expiry("edge", &all, at(1_000)), Some(at(2_000)));
        assert_eq!(
            next_expiry("edge", &all, at(2_000)),
            Some(at(3_000)),
            "strictly after now"
        );
        assert_eq!(next_expiry("edge", &all, at(3_000)), None);
        assert_eq!(next_expiry("other", &all, at(1_000)), Some(at(1_500)));
    }

    #[test]
    fn an_unreadable_expiry_is_refused_naming_the_field() {
        let mut r = (*pr("bad", 0, Some(100), "tcp", 1)).clone();
        r.spec.expires_at = Some("tomorrow".into());
        let d = want_at(&[Arc::new(r.clone())], at(1_000));
        let why = &d.refused[&Key::of(&r)];
        assert_eq!(why.reason, crate::conditions::Reason::InvalidRequest);
        assert!(why.message.contains("spec.expiresAt"), "{}", why.message);
    }

    mod shadowing {
        use proptest::prelude::*;

        use super::*;

        const ADDRESSES: [&str; 3] = ["203.0.113.10", "203.0.113.11", "203.0.113.12"];
        const INTERFACES: [&str; 2] = ["eth0", "eth1"];

        fn rule(
            i: usize,
            address: Option<usize>,
            interface: Option<usize>,
            proto: usize,
            first: u16,
            len: u16,
        ) -> Arc<PortRule> {
            let proto = ["tcp", "udp", "tcp_udp"][proto];
            let mut r = (*pr(
                &format!("r{i}"),
                i as i64,
                Some(100 + i as u32),
                proto,
                first,
            ))
            .clone();
            r.spec.external_address = address.map(|a| ADDRESSES[a].to_owned());
            r.spec.inbound_interface = interface.map(|n| INTERFACES[n].to_owned());
            if r.spec.external_address.is_none() && r.spec.inbound_interface.is_none() {
                // The CRD refuses a rule with neither.
                r.spec.inbound_interface = Some("eth1".into());
            }
            r.spec.external_port_end = (len > 0).then_some(first + len);
            Arc::new(r)
        }

        /// Whether `r` (rendered on a router whose default interface is eth0) matches a
        /// packet; written from VyOS's matching, not from `Endpoint`.
        fn matches(r: &PortRule, iface: &str, addr: &str, tcp: bool, port: u16) -> bool {
            let s = &r.spec;
            let on = s.inbound_interface.as_deref().unwrap_or("eth0");
            let proto = match s.protocol {
                RuleProtocol::Tcp => tcp,
                RuleProtocol::Udp => !tcp,
                RuleProtocol::TcpUdp | RuleProtocol::All => true,
            };
            let first = s.external_port.unwrap_or(1);
            let last = s.external_port_end.unwrap_or(first);
            on == iface
                && s.external_address.as_deref().is_none_or(|a| a == addr)
                && proto
                && (first..=last).contains(&port)
        }

        fn packets() -> Vec<(&'static str, &'static str, bool, u16)> {
            let mut out = Vec::new();
            for i in INTERFACES {
                for a in ADDRESSES {
                    for tcp in [true, false] {
                        for p in 1..=10 {
                            out.push((i, a, tcp, p));
                        }
                    }
                }
            }
            out
        }

        proptest! {
            /// However rules are declared, no packet matches two programmed rules, and a rule
            /// refused for its endpoint shares a packet with one that is programmed.
            #[test]
            fn no_packet_matches_two_programmed_rules(
                specs in proptest::collection::vec(
                    (proptest::option::of(0usize..3), proptest::option::of(0usize..2), 0usize..3, 1u16..9, 0u16..3),
                    1..14,
                )
            ) {
                let rules: Vec<Arc<PortRule>> = specs
                    .iter()
                    .enumerate()
                    .map(|(i, (a, n, p, f, l))| rule(i, *a, *n, *p, *f, *l))
                    .collect();
                let d = want(&rules);
                let programmed: Vec<&Arc<PortRule>> = rules
                    .iter()
                    .filter(|r| d.rules.values().any(|e| e.key == Key::of(r)))
                    .collect();
                for (i, a, tcp, p) in packets() {
                    let hits: Vec<String> = programmed
                        .iter()
                        .filter(|r| matches(r, i, a, tcp, p))
                        .map(|r| Key::of(r).to_string())
                        .collect();
                    prop_assert!(hits.len() <= 1, "{i} {a} tcp={tcp} port {p} matches {hits:?}");
                }
                for r in &rules {
                    if let Some(why) = d.refused.get(&Key::of(r)) {
                        let shares = packets().into_iter().any(|(i, a, tcp, p)| {
                            matches(r, i, a, tcp, p)
                                && programmed.iter().any(|o| matches(o, i, a, tcp, p))
                        });
                        prop_assert!(shares, "{} refused without a shared packet: {}", Key::of(r), why.message);
                    }
                }
            }
        }
    }
}
