//! EventBridge schedule expressions, checked as EventBridge checks them:
//! `rate(N unit)` (unit singular for 1, plural otherwise: minute, hour, day)
//! and `cron(minutes hours day-of-month month day-of-week year)` with `?` in
//! exactly one of the two day fields, days of week 1-7 = SUN-SAT, in UTC.
//! The local cloud fires them with the same reading (croner, in Quartz mode).

use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every `minutes` minutes, counted from when the rule was created.
    Rate { minutes: u64 },
    Cron(Box<croner::Cron>),
}

/// Parse one expression; the error says what is wrong and how to write it.
pub fn parse(expr: &str) -> Result<Schedule, String> {
    let expr = expr.trim();
    if let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        let mut parts = inner.split_whitespace();
        let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("`{expr}` is not a rate: write `rate(VALUE UNIT)`, e.g. `rate(5 minutes)`"));
        };
        let value: u64 = value.parse().ok().filter(|v| *v > 0).ok_or_else(|| format!("`{expr}`: the rate's value must be a whole number of 1 or more"))?;
        let (singular, per) = match unit {
            "minute" | "minutes" => ("minute", 1),
            "hour" | "hours" => ("hour", 60),
            "day" | "days" => ("day", 1440),
            _ => return Err(format!("`{expr}`: the unit must be minute(s), hour(s) or day(s)")),
        };
        let want = if value == 1 { singular.to_string() } else { format!("{singular}s") };
        if unit != want {
            return Err(format!("`{expr}`: EventBridge wants `rate({value} {want})` (singular for 1, plural otherwise)"));
        }
        return Ok(Schedule::Rate { minutes: value * per });
    }
    if let Some(inner) = expr.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
        let fields: Vec<&str> = inner.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(format!("`{expr}` has {} fields; EventBridge's cron has 6: minutes hours day-of-month month day-of-week year, e.g. `cron(0 12 * * ? *)`", fields.len()));
        }
        if (fields[2] == "?") == (fields[4] == "?") {
            return Err(format!("`{expr}`: exactly one of day-of-month (3rd field) and day-of-week (5th) must be `?`, e.g. `cron(0 12 * * ? *)` or `cron(0 9 ? * MON-FRI *)`"));
        }
        let quartz = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .year(croner::parser::Year::Required)
            .alternative_weekdays(true)
            // Quartz's `0/5` (from 0, every 5), which EventBridge accepts.
            .sloppy_ranges(true)
            .build();
        let cron = quartz.parse(&format!("0 {}", fields.join(" "))).map_err(|e| format!("`{expr}` is not a valid cron expression: {e}"))?;
        return Ok(Schedule::Cron(Box::new(cron)));
    }
    Err(format!("`{expr}` is not a schedule expression: write `rate(5 minutes)` or `cron(0 12 * * ? *)`"))
}

impl Schedule {
    /// The first firing strictly after `after` (for a rate: `after` plus the period).
    pub fn next_after(&self, after: DateTime<Utc>, minute: std::time::Duration) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Rate { minutes } => chrono::Duration::from_std(minute * (*minutes as u32)).ok().map(|d| after + d),
            Schedule::Cron(c) => c.find_next_occurrence(&after, false).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rates_as_eventbridge_reads_them() {
        assert!(matches!(parse("rate(5 minutes)"), Ok(Schedule::Rate { minutes: 5 })));
        assert!(matches!(parse("rate(1 hour)"), Ok(Schedule::Rate { minutes: 60 })));
        assert!(matches!(parse("rate(2 days)"), Ok(Schedule::Rate { minutes: 2880 })));
        assert!(parse("rate(1 minutes)").unwrap_err().contains("rate(1 minute)"));
        assert!(parse("rate(5 minute)").unwrap_err().contains("rate(5 minutes)"));
        assert!(parse("rate(0 minutes)").is_err());
        assert!(parse("rate(5 seconds)").is_err());
        assert!(parse("every 5 minutes").is_err());
    }

    #[test]
    fn cron_fields_days_of_week_and_next_firing() {
        let at = |y, mo, d, h, mi| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap();
        let minute = std::time::Duration::from_secs(60);
        // Every day at 12:00 UTC.
        let noon = parse("cron(0 12 * * ? *)").unwrap();
        assert_eq!(noon.next_after(at(2026, 11, 25, 15, 0), minute), Some(at(2026, 11, 26, 12, 0)));
        // 1-7 = SUN-SAT: 2 is Monday. 2026-11-25 is a Wednesday.
        let monday = parse("cron(30 9 ? * 2 *)").unwrap();
        assert_eq!(monday.next_after(at(2026, 11, 25, 0, 0), minute), Some(at(2026, 11, 30, 9, 30)));
        let weekdays = parse("cron(0 9 ? * MON-FRI *)").unwrap();
        assert_eq!(weekdays.next_after(at(2026, 11, 27, 10, 0), minute), Some(at(2026, 11, 30, 9, 0)));
        let every_5 = parse("cron(0/5 * * * ? *)").unwrap();
        assert_eq!(every_5.next_after(at(2026, 11, 25, 15, 2), minute), Some(at(2026, 11, 25, 15, 5)));
        assert!(parse("cron(0 12 * * * *)").unwrap_err().contains("exactly one of day-of-month"));
        assert!(parse("cron(0 12 * * ?)").unwrap_err().contains("has 5 fields"));
        assert!(parse("cron(0 25 * * ? *)").is_err());
        let rate = parse("rate(2 minutes)").unwrap();
        assert_eq!(rate.next_after(at(2026, 11, 25, 15, 0), std::time::Duration::from_secs(1)), Some(at(2026, 11, 25, 15, 0) + chrono::Duration::seconds(2)));
    }
}
