#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn c(name: &str) -> Claimant {
    Claimant::new("PortRule", "web", name)
}

#[test]
fn range_must_be_within_vyos_limits() {
    for (s, e) in [(0, 10), (1, 1_000_000), (20, 10)] {
        assert_eq!(
            RuleNumbers::new("r", s, e).unwrap_err().reason(),
            "InvalidRequest"
        );
    }
    assert!(RuleNumbers::new("r", 1, 999_999).is_ok());
}

#[test]
fn preferred_number_is_stable_and_tried_first() {
    let mut a = RuleNumbers::new("r", 1000, 1999).unwrap();
    let mut b = RuleNumbers::new("r", 1000, 1999).unwrap();
    let names: Vec<_> = (0..50).map(|i| c(&format!("rule-{i}"))).collect();
    for n in &names {
        a.allocate(n).unwrap();
    }
    for n in names.iter().rev() {
        b.allocate(n).unwrap();
    }
    // Without collisions on the preferred number, order does not matter.
    let same = names.iter().filter(|n| a.get(n) == b.get(n)).count();
    assert!(same >= 45, "{same}");
    let x = c("x");
    let fresh = RuleNumbers::new("r", 1000, 1999).unwrap();
    assert_eq!(fresh.preferred(&x), fresh.preferred(&x));
}

#[test]
fn next_free_after_preferred_and_wraps() {
    let mut r = RuleNumbers::new("r", 1, 3).unwrap();
    let x = c("x");
    let p = r.preferred(&x);
    r.claim(&c("other"), p).unwrap();
    let got = r.allocate(&x).unwrap();
    assert_eq!(got, if p == 3 { 1 } else { p + 1 });
    r.allocate(&c("y")).unwrap();
    assert_eq!(r.allocate(&c("z")).unwrap_err().reason(), "PoolExhausted");
    assert_eq!(
        r.counts(),
        PoolCounts {
            total: 3,
            used: 3,
            free: 0
        }
    );
}

#[test]
fn edges_single_number_and_the_top_of_the_range() {
    let mut r = RuleNumbers::new("r", 999_999, 999_999).unwrap();
    assert_eq!(r.allocate(&c("a")).unwrap(), 999_999);
    assert_eq!(r.allocate(&c("a")).unwrap(), 999_999);
    let err = r.allocate(&c("b")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the rule range 999999-999999 of VyosRouter \"r\" has no free rule number left: release an allocation or add to the pool"
    );
    let mut low = RuleNumbers::new("r", 1, 1).unwrap();
    assert_eq!(low.allocate(&c("a")).unwrap(), 1);
}

#[test]
fn claims_conflict_and_outside() {
    let mut r = RuleNumbers::new("r", 100, 199).unwrap();
    r.claim(&c("a"), 150).unwrap();
    let err = r.claim(&c("b"), 150).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule number 150 on VyosRouter \"r\" is already held by PortRule web/a, so PortRule web/b cannot have it"
    );
    let err = r.claim(&c("b"), 99).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule number 99 is not in the rule range 100-199 of VyosRouter \"r\""
    );
    assert_eq!(r.claim(&c("a"), 151).unwrap(), 151);
    assert_eq!(r.holder_of(150), None);
}

#[test]
fn rebuild_keeps_numbers_and_reports() {
    let mut r = RuleNumbers::new("r", 100, 199).unwrap();
    let report = r.rebuild([(c("b"), 120), (c("a"), 120), (c("c"), 250), (c("d"), 121)]);
    assert_eq!(r.get(&c("a")), Some(120));
    assert_eq!(r.get(&c("d")), Some(121));
    assert_eq!(r.get(&c("b")), None);
    assert_eq!(report.conflicts.len(), 1);
    assert_eq!(report.out_of_range.len(), 1);
    assert_eq!(r.out_of_range(), report.out_of_range);
    // Allocating again for an imported claimant returns its recorded number.
    assert_eq!(r.allocate(&c("d")).unwrap(), 121);
    let grown = r.reconfigure(100, 299).unwrap();
    assert!(grown.out_of_range.is_empty());
    assert_eq!(r.get(&c("c")), Some(250));
}
