//! What a health probe's answer means: when the router booted, and whether it rebooted
//! since the boot on record. Pure: times come in as Unix milliseconds.
//!
//! The router reports its uptime (`show system uptime`, whole seconds). The boot time is
//! the moment of the answer less that uptime. The moment is known only to within the
//! request's duration, so two probes of one boot give boot times that differ by up to a
//! second of rounding plus half a request's latency; anything further apart is a boot.

use std::time::Duration;

/// Jitter of the boot time that is never a reboot: the uptime's one-second rounding and
/// clock adjustments on the operator's host.
pub const BOOT_JITTER: Duration = Duration::from_secs(5);

/// The boot time (Unix ms) of a router that answered `uptime` to a request that was sent
/// at `sent_ms` and answered at `answered_ms`: the router read its clock in between, so
/// the middle is the best estimate.
pub fn boot_time(sent_ms: i64, answered_ms: i64, uptime: Duration) -> i64 {
    let middle = sent_ms + (answered_ms - sent_ms).max(0) / 2;
    middle - i64::try_from(uptime.as_millis()).unwrap_or(i64::MAX)
}

/// How far two estimates of one boot may lie apart, for a probe that took `latency`.
pub fn tolerance(latency: Duration) -> Duration {
    BOOT_JITTER + latency / 2
}

/// What a probe's boot time says against the one on record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    /// Nothing on record: record it (no reboot is claimed).
    First,
    /// The same boot, within the tolerance: nothing to write.
    Same,
    /// A later boot: the router rebooted; its unsaved config is gone.
    Rebooted,
    /// An earlier boot than on record (the record was wrong, or the operator's clock
    /// moved): record it, claim nothing.
    Corrected,
}

/// Compares a probe's boot time with the one on record (both Unix ms).
pub fn compare(recorded: Option<i64>, seen: i64, latency: Duration) -> Boot {
    let Some(recorded) = recorded else {
        return Boot::First;
    };
    let tol = i64::try_from(tolerance(latency).as_millis()).unwrap_or(i64::MAX);
    if seen > recorded.saturating_add(tol) {
        Boot::Rebooted
    } else if seen < recorded.saturating_sub(tol) {
        Boot::Corrected
    } else {
        Boot::Same
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn the_boot_time_is_the_middle_of_the_request_less_the_uptime() {
        assert_eq!(
            boot_time(100 * MIN, 100 * MIN + 2_000, Duration::from_secs(60)),
            99 * MIN + 1_000
        );
        // A clock that went backwards during the request counts as no time.
        assert_eq!(boot_time(10_000, 9_000, Duration::from_secs(1)), 9_000);
    }

    #[test]
    fn probes_of_one_boot_agree_and_a_reboot_is_later() {
        let booted = 1_000 * MIN;
        let fast = Duration::from_millis(20);
        // The same boot seen a day later, with the uptime rounded down to the second.
        let later = boot_time(
            booted + 1440 * MIN,
            booted + 1440 * MIN + 20,
            Duration::from_secs(86_399),
        );
        assert_eq!(compare(Some(booted), later, fast), Boot::Same);
        // Rebooted 40 s before the probe: 40 s of uptime after a day.
        let now = booted + 1440 * MIN;
        let after = boot_time(now, now + 20, Duration::from_secs(40));
        assert_eq!(compare(Some(booted), after, fast), Boot::Rebooted);
        // A reboot shortly after the previous boot is still seen (10 s apart).
        assert_eq!(compare(Some(booted), booted + 10_000, fast), Boot::Rebooted);
        assert_eq!(compare(None, after, fast), Boot::First);
        assert_eq!(compare(Some(after), booted, fast), Boot::Corrected);
    }

    #[test]
    fn a_slow_answer_widens_the_tolerance_by_half_its_latency() {
        let booted = 1_000 * MIN;
        let slow = Duration::from_secs(20);
        // 14 s off: within 5 s + 10 s for a 20 s request, beyond 5 s for a fast one.
        assert_eq!(compare(Some(booted), booted + 14_000, slow), Boot::Same);
        assert_eq!(
            compare(Some(booted), booted + 14_000, Duration::from_millis(10)),
            Boot::Rebooted
        );
    }
}
