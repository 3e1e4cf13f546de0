//! Config backups, the pure part: the checksum a backup is known by, the name of the Secret
//! that stores it, when the schedule fires next, which backups retention prunes, and the
//! diff of two configs as `set` lines. Times are Unix milliseconds.

use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use k8s_openapi::jiff;

/// The SHA-256 of a config text, as 64 lowercase hex digits.
pub fn checksum(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The same SHA-256 in a form a label value can hold (63 characters at most, so not hex):
/// base32 without padding, 52 characters.
pub fn checksum_label(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    data_encoding::BASE32_NOPAD
        .encode(d.as_ref())
        .to_ascii_lowercase()
}

/// A label value that names `router`: the name itself when a label can hold it (routers
/// are DNS subdomains, up to 253 characters; label values up to 63), else a prefix and a
/// digest of the whole name, so two long names never share one.
pub fn router_label(router: &str) -> String {
    let fits = router.len() <= 63
        && router
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fits {
        return router.to_owned();
    }
    let digest = &checksum(router)[..16];
    let head: String = router
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    format!("{}-{digest}", head.trim_end_matches('-'))
}

/// The Secret name of a backup of `router` taken at `taken_ms`: `<router>-<UTC time>`,
/// the router's name cut so that the whole stays within 253 characters.
pub fn secret_name(router: &str, taken_ms: i64) -> String {
    let stamp = jiff::Timestamp::from_millisecond(taken_ms)
        .map(|t| t.strftime("%Y%m%d-%H%M%S").to_string())
        .unwrap_or_else(|_| taken_ms.to_string());
    let cut: String = router.chars().take(253 - 1 - stamp.len() - 7).collect();
    format!("{}-backup-{stamp}", cut.trim_end_matches(['-', '.']))
}

/// Why a schedule cannot be used (the schema lets through only what this accepts, so
/// this is for objects written before the schema had the rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSchedule(pub String);

impl std::fmt::Display for BadSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a five-field cron schedule (no seconds field).
pub fn schedule(text: &str) -> Result<Cron, BadSchedule> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| BadSchedule(format!("spec.backup.schedule {text:?}: {e}")))
}

/// When `cron` fires next after `after_ms` (UTC), in Unix ms.
pub fn next_run(cron: &Cron, after_ms: i64) -> Option<i64> {
    let after = jiff::Timestamp::from_millisecond(after_ms)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC);
    cron.find_next_occurrence(&after, false)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

/// A stored backup, as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The Secret's name.
    pub name: String,
    /// When the config was first read (Unix ms).
    pub taken_ms: i64,
    /// When the router last had exactly this config (Unix ms).
    pub seen_ms: i64,
}

/// Which backups retention removes: beyond the newest `count` (by when taken), and those
/// last seen more than `max_age` before `now_ms`. The newest is never removed.
pub fn prune(
    stored: &[Stored],
    count: Option<u32>,
    max_age: Option<Duration>,
    now_ms: i64,
) -> Vec<String> {
    let mut by_age: Vec<&Stored> = stored.iter().collect();
    // Newest first; the name breaks ties so the order is total.
    by_age.sort_by(|a, b| {
        (b.taken_ms.max(b.seen_ms), &b.name).cmp(&(a.taken_ms.max(a.seen_ms), &a.name))
    });
    let max_age_ms = max_age.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    by_age
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, s)| {
            count.is_some_and(|c| *i >= c as usize)
                || max_age_ms.is_some_and(|m| now_ms.saturating_sub(s.seen_ms) > m)
        })
        .map(|(_, s)| s.name.clone())
        .collect()
}

/// Two configs compared as `set` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// A unified diff: `---`/`+++` headers, `@@` hunks, `-` and `+` lines with context.
    pub text: String,
    /// Lines only in the second.
    pub added: usize,
    /// Lines only in the first.
    pub removed: usize,
}

impl Diff {
    /// Lines added and removed.
    pub fn changes(&self) -> usize {
        self.added + self.removed
    }
}

/// The unified diff from `old` to `new` (each a list of `set` lines), labelled with their
/// names.
pub fn diff(old_name: &str, old: &[String], new_name: &str, new: &[String]) -> Diff {
    let old_text = lines(old);
    let new_text = lines(new);
    let d = similar::TextDiff::from_lines(&old_text, &new_text);
    let mut added = 0;
    let mut removed = 0;
    for c in d.iter_all_changes() {
        match c.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let text = if added + removed == 0 {
        String::new()
    } else {
        d.unified_diff()
            .context_radius(2)
            .header(old_name, new_name)
            .to_string()
    };
    Diff {
        text,
        added,
        removed,
    }
}

fn lines(v: &[String]) -> String {
    let mut s = String::new();
    for l in v {
        s.push_str(l);
        s.push('\n');
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stored(name: &str, taken_ms: i64, seen_ms: i64) -> Stored {
        Stored {
            name: name.to_owned(),
            taken_ms,
            seen_ms,
        }
    }

    #[test]
    fn the_checksum_is_sha256_and_fits_a_label() {
        // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(
            checksum("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let l = checksum_label("abc");
        assert_eq!(l.len(), 52);
        assert!(l.chars().all(|c| c.is_ascii_alphanumeric()), "{l}");
        assert_ne!(checksum_label("abc"), checksum_label("abd"));
    }

    #[test]
    fn router_names_become_label_values() {
        assert_eq!(router_label("edge-1"), "edge-1");
        let long = format!("{}.example.net", "a".repeat(60));
        let l = router_label(&long);
        assert!(l.len() <= 63, "{l}");
        assert_ne!(l, router_label(&format!("{}.example.org", "a".repeat(60))));
    }

    #[test]
    fn secret_names_carry_the_router_and_the_time_and_stay_short() {
        // 2026-12-06T03:00:00Z
        let t = 1_796_526_000_000;
        assert_eq!(secret_name("edge-1", t), "edge-1-backup-20261206-030000");
        assert!(secret_name(&"r".repeat(253), t).len() <= 253);
    }

    #[test]
    fn schedules_have_five_fields_and_fire_in_utc() {
        assert!(schedule("0 3 * * * *").is_err());
        assert!(schedule("0 3 * *").is_err());
        let daily = schedule("0 3 * * *").unwrap();
        // From 2026-12-06T03:00:00Z exactly: the next is the day after.
        let t = 1_796_526_000_000;
        assert_eq!(next_run(&daily, t), Some(t + 86_400_000));
        assert_eq!(next_run(&daily, t - 1), Some(t));
        let every = schedule("* * * * *").unwrap();
        assert_eq!(next_run(&every, t + 1), Some(t + 60_000));
    }

    #[test]
    fn retention_keeps_count_and_age_but_never_the_newest() {
        let min = 60_000;
        let s = vec![
            stored("a", 0, 0),
            stored("b", min, min),
            stored("c", 2 * min, 2 * min),
            // Taken first but seen last: it is the router's config now.
            stored("d", -min, 10 * min),
        ];
        let mut gone = prune(&s, Some(2), None, 10 * min);
        gone.sort();
        assert_eq!(gone, ["a", "b"]);
        // Older than 5 minutes: a, b, c; d is newer.
        let mut gone = prune(&s, None, Some(Duration::from_secs(300)), 10 * min);
        gone.sort();
        assert_eq!(gone, ["a", "b", "c"]);
        // Everything too old: the newest stays all the same.
        let gone = prune(&s, Some(1), Some(Duration::from_secs(1)), 100 * min);
        assert_eq!(gone.len(), 3);
        assert!(!gone.contains(&"d".to_owned()));
        assert!(prune(&s[..1], Some(1), Some(Duration::from_secs(1)), 100 * min).is_empty());
    }

    #[test]
    fn a_diff_counts_and_shows_the_changed_lines() {
        let a: Vec<String> = ["set a 'x'", "set b 'y'", "set c 'z'"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let mut b = a.clone();
        b[1] = "set b 'w'".to_owned();
        b.push("set d 'v'".to_owned());
        let d = diff("A", &a, "B", &b);
        assert_eq!((d.added, d.removed, d.changes()), (2, 1, 3));
        assert!(d.text.starts_with("--- A\n+++ B\n"), "{}", d.text);
        assert!(d.text.contains("-set b 'y'\n+set b 'w'\n"), "{}", d.text);
        assert!(d.text.contains("+set d 'v'\n"), "{}", d.text);
        assert_eq!(diff("A", &a, "B", &a).text, "");
    }
}
