//! Reading `show system uptime`.
//!
//! VyOS prints it with vyos-1x's `src/op_mode/uptime.py` (the same on 1.4 and 1.5):
//!
//! ```text
//! Uptime: 1w 4d 1h 2m 3s
//!
//! Load averages:
//! 1  minute:   3.1%
//! ...
//! ```
//!
//! The duration is `vyos.utils.convert.seconds_to_human(seconds, separator=' ')`: the units
//! `y` (365.25 days), `w`, `d`, `h`, `m`, `s` in that order, each only when not zero, and
//! nothing at all for zero seconds (`Uptime: ` and the end of the line).

use std::time::Duration;

/// Seconds per unit, in the order `seconds_to_human` writes them; a year is 365.25 days.
const UNITS: [(char, u64); 6] = [
    ('y', 31_557_600),
    ('w', 604_800),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

/// The uptime in a `show system uptime` text (its `Uptime:` line), or in a bare
/// `seconds_to_human` duration such as `1w 4d 1h 2m 3s` or `1w4d1h2m3s` (either
/// separator). `Uptime:` with nothing after it is zero. `None` when the text has no
/// readable duration: an unknown unit, units out of order or repeated, no number.
pub fn parse_uptime(text: &str) -> Option<Duration> {
    let value = match text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Uptime:"))
    {
        Some(rest) => rest.trim(),
        None => match text.trim() {
            "" => return None,
            bare => bare,
        },
    };
    let mut total: u64 = 0;
    // The units still allowed: each at most once, in order.
    let mut next_unit = 0;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let i = UNITS[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        total = total.checked_add(n.checked_mul(UNITS[i].1)?)?;
        next_unit = i + 1;
        rest = rest[digits + unit.len_utf8()..].trim_start();
    }
    Some(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn every_form_seconds_to_human_writes() {
        let show = "Uptime: 1w 4d 1h 2m 3s\n\nLoad averages:\n1  minute:   3.1%\n5  minutes:  2.4%\n15 minutes:  1.7%\n\n";
        assert_eq!(parse_uptime(show), secs(11 * 86_400 + 3_723));
        // Just booted: seconds_to_human(0) is "".
        assert_eq!(
            parse_uptime("Uptime: \n\nLoad averages:\n1  minute:   0.0%\n"),
            secs(0)
        );
        assert_eq!(parse_uptime("Uptime: 59s\n"), secs(59));
        assert_eq!(parse_uptime("Uptime: 1m\n"), secs(60));
        assert_eq!(parse_uptime("Uptime: 1h 5s\n"), secs(3_605));
        assert_eq!(parse_uptime("Uptime: 3d\n"), secs(3 * 86_400));
        // A year is 365.25 days; 400 days print as 1y 4w 6d 18h.
        assert_eq!(parse_uptime("Uptime: 1y 4w 6d 18h\n"), secs(400 * 86_400));
        assert_eq!(parse_uptime("Uptime: 2y\n"), secs(63_115_200));
        // The bare duration, with either separator.
        assert_eq!(
            parse_uptime("1w4d18h35m59s"),
            parse_uptime("1w 4d 18h 35m 59s")
        );
        assert_eq!(parse_uptime("1w4d18h35m59s"), secs(1_017_359));
    }

    #[test]
    fn anything_else_is_none() {
        for text in [
            "",
            "Load averages:\n",
            "Uptime: 5\n",
            "Uptime: 5x\n",
            "Uptime: m\n",
            "Uptime: 2m 1h\n",
            "Uptime: 1h 1h\n",
            "Uptime: -1s\n",
            "Uptime: 99999999999999999999s\n",
            "Uptime: 999999999999999y\n",
            "up 3 days, 2:01",
        ] {
            assert_eq!(parse_uptime(text), None, "{text:?}");
        }
    }
}
