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

/// The Scheduled Event EventBridge sends for `rule` firing at `time`.
pub fn scheduled_event(rule: &ScheduleFile, time: DateTime<Utc>, region: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": cloud::ACCOUNT,
        "time": time.to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": region,
        "resources": [rule.arn],
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
    // Rule → (expression, creation, next firing).
    let mut next: BTreeMap<String, (String, i64, DateTime<Utc>)> = BTreeMap::new();
    loop {
        tokio::time::sleep(tick).await;
        let world = server.world();
        let now = Utc::now();
        next.retain(|rule, _| world.schedules.iter().any(|s| &s.rule == rule));
        for s in &world.schedules {
            let Ok(parsed) = schedule::parse(&s.expression) else { continue };
            let known = next.get(&s.rule).filter(|(e, c, _)| *e == s.expression && *c == s.created_ms).map(|(_, _, at)| *at);
            let due = match known {
                Some(at) => at,
                None => match first_after(s, &parsed, now, minute) {
                    Some(at) => {
                        next.insert(s.rule.clone(), (s.expression.clone(), s.created_ms, at));
                        at
                    }
                    None => continue,
                },
            };
            if due > now {
                continue;
            }
            match world.functions.get(&s.function) {
                Some((_, f)) => {
                    eprintln!("schedule {}: {} fires {} (event at {})", s.rule, s.expression, s.function, due.to_rfc3339_opts(SecondsFormat::Secs, true));
                    f.invoke_event(scheduled_event(s, due, world.invoke.region.as_str()).to_string().into_bytes());
                }
                None => eprintln!("schedule {}: its target {} is not deployed", s.rule, s.function),
            }
            // Behind (the machine slept): the next firing after now, as EventBridge skips missed ones.
            if let Some(after) = first_after(s, &parsed, now.max(due), minute) {
                next.insert(s.rule.clone(), (s.expression.clone(), s.created_ms, after));
            }
        }
    }
}
