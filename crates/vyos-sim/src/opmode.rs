//! Op-mode texts that `/show` answers, as VyOS's own scripts print them.

/// Seconds in each unit of vyos-1x's `vyos.utils.convert.time_units` (a year is 365.25
/// days, as there).
const YEAR: f64 = 60.0 * 60.0 * 24.0 * 365.25;
const WEEK: u64 = 60 * 60 * 24 * 7;
const DAY: u64 = 60 * 60 * 24;
const HOUR: u64 = 60 * 60;
const MINUTE: u64 = 60;

/// vyos-1x `python/vyos/utils/convert.py` `seconds_to_human(s, separator)` (the same on
/// sagitta and current): the units `y`, `w`, `d`, `h`, `m`, `s`, each only when not zero,
/// joined by `separator`; zero seconds give the empty string. The year is divided as a
/// float (`s // 31557600.0`), the remainder truncated back to whole seconds.
pub fn seconds_to_human(seconds: u64, separator: &str) -> String {
    let mut s = seconds;
    let mut parts = Vec::new();
    let years = (s as f64 / YEAR).floor();
    if years > 0.0 {
        parts.push(format!("{}y", years as u64));
        // int(s % time_units['y'])
        s = (s as f64 % YEAR) as u64;
    }
    for (unit, name) in [(WEEK, 'w'), (DAY, 'd'), (HOUR, 'h'), (MINUTE, 'm')] {
        let n = s / unit;
        if n > 0 {
            parts.push(format!("{n}{name}"));
            s %= unit;
        }
    }
    if s > 0 {
        parts.push(format!("{s}s"));
    }
    parts.join(separator)
}

/// The load averages the simulator reports (1, 5 and 15 minutes, as shares of all
/// cores): a quiet router.
pub const LOAD_AVERAGES: [f64; 3] = [0.031, 0.024, 0.017];

/// What `show system uptime` prints: vyos-1x `src/op_mode/uptime.py` `show(raw=False)`,
/// its `_get_formatted_output()` (identical on sagitta and current), printed by the
/// script with `print(res)`, so one more newline at the end. `/show` answers the
/// command's whole output.
pub fn uptime_text(uptime_seconds: u64, load: [f64; 3]) -> String {
    // res["uptime"] = seconds_to_human(uptime_seconds, separator=' ')
    let mut out = format!(
        "Uptime: {}\n\nLoad averages:\n",
        seconds_to_human(uptime_seconds, " ")
    );
    // "1  minute:   {:.01f}%\n".format(avgs[1]*100), and so on
    out.push_str(&format!("1  minute:   {:.1}%\n", load[0] * 100.0));
    out.push_str(&format!("5  minutes:  {:.1}%\n", load[1] * 100.0));
    out.push_str(&format!("15 minutes:  {:.1}%\n", load[2] * 100.0));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_to_human_as_vyos() {
        assert_eq!(seconds_to_human(0, " "), "");
        assert_eq!(seconds_to_human(59, " "), "59s");
        assert_eq!(seconds_to_human(60, " "), "1m");
        assert_eq!(seconds_to_human(3600 + 5, " "), "1h 5s");
        assert_eq!(seconds_to_human(86_400 * 11 + 3_723, " "), "1w 4d 1h 2m 3s");
        assert_eq!(seconds_to_human(86_400 * 11 + 3_723, ""), "1w4d1h2m3s");
        // 365.25 days make a year; 400 days are 1y, then the rest (34.75 days, truncated
        // to whole seconds) in weeks, days and hours.
        assert_eq!(seconds_to_human(400 * 86_400, " "), "1y 4w 6d 18h");
        assert_eq!(seconds_to_human(31_557_600, " "), "1y");
    }

    #[test]
    fn uptime_text_as_uptime_py() {
        assert_eq!(
            uptime_text(3_723, [0.5, 0.25, 0.125]),
            "Uptime: 1h 2m 3s\n\nLoad averages:\n1  minute:   50.0%\n5  minutes:  25.0%\n15 minutes:  12.5%\n\n"
        );
        assert!(uptime_text(0, LOAD_AVERAGES).starts_with("Uptime: \n\n"));
    }
}
