//! EventBridge on the local cloud: every deployed rule fires its function with
//! EventBridge's Scheduled Event, asynchronously (Lambda's `Event` invocation,
//! with its retries), at the times EventBridge would: a rate counts from the
//! rule's creation, a cron follows the UTC clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::super::cloud::{self, ScheduleFile};
use super::world::Server;
use crate::stack::schedule::{self, Schedule};

/// How long a minute of a `rate(...)` is: 60 s, or
/// `STACKCTL_LOCAL_MINUTE_SECONDS` (to watch a schedule fire in a test or a demo).
pub fn minute() -> Duration {
    let secs = std::env::var("STACKCTL_LOCAL_MINUTE_SECONDS").ok().and_then(|v| v.parse::<f64>().ok()).filter(|s| *s > 0.0).unwrap_or(60.0);
    Duration::from_secs_f64(secs)
}

/// The Scheduled Event EventBridge sends when the rule `rule_arn` fires at `time`.
pub fn scheduled_event(rule_arn: &str, time: DateTime<Utc>, region: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": cloud::ACCOUNT,
        "time": time.to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    })
}

/// The first firing of a rule after `now`.
fn first_after(s: &ScheduleFile, schedule: &Schedule, now: DateTime<Utc>, minute: Duration) -> Option<DateTime<Utc>> {
    match schedule {
        Schedule::Rate { minutes } => {
            let period = (minute * (*minutes as u32)).as_millis().max(1) as i64;
            let elapsed = (now.timestamp_millis() - s.created_ms).max(0);
            let periods = elapsed / period + 1;
            DateTime::from_timestamp_millis(s.created_ms + periods * period)
        }
        Schedule::Cron(_) => schedule.next_after(now, minute),
    }
}

pub async fn run(server: Arc<Server>) {
    let minute = minute();
    let tick = (minute / 8).clamp(Duration::from_millis(50), Duration::from_secs(1));
    // Rule → what it was parsed from (expression, creation), the parsed
    // schedule and its next firing; parsed again only when the rule changes.
    struct Planned {
        expression: String,
        created_ms: i64,
        schedule: Schedule,
        at: Option<DateTime<Utc>>,
    }
    let mut next: BTreeMap<String, Planned> = BTreeMap::new();
    loop {
        tokio::time::sleep(tick).await;
        let world = server.world();
        let now = Utc::now();
        next.retain(|rule, _| world.schedules.iter().any(|s| &s.rule == rule));
        for s in &world.schedules {
            let current = next.get(&s.rule).is_some_and(|p| p.expression == s.expression && p.created_ms == s.created_ms);
            if !current {
                let Ok(schedule) = schedule::parse(&s.expression) else { continue };
                let at = first_after(s, &schedule, now, minute);
                next.insert(s.rule.clone(), Planned { expression: s.expression.clone(), created_ms: s.created_ms, schedule, at });
            }
            let Some(planned) = next.get_mut(&s.rule) else { continue };
            let Some(due) = planned.at.filter(|at| *at <= now) else { continue };
            match world.functions.get(&s.function) {
                Some((_, f)) => {
                    eprintln!("schedule {}: {} fires {} (event at {})", s.rule, s.expression, s.function, due.to_rfc3339_opts(SecondsFormat::Secs, true));
                    f.invoke_event(scheduled_event(&s.arn, due, world.invoke.region.as_str()).to_string().into_bytes());
                }
                None => eprintln!("schedule {}: its target {} is not deployed", s.rule, s.function),
            }
            // Behind (the machine slept): the next firing after now, as EventBridge skips missed ones.
            planned.at = first_after(s, &planned.schedule, now.max(due), minute);
        }
    }
}
