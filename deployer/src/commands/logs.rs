//! `logs FUNCTION [--follow] [--since 10m] [--filter TEXT]`: what a deployed
//! function wrote, from its log group: CloudWatch Logs on AWS, the local
//! cloud's log group files locally. Written once over the target; `--follow`
//! asks again for what came after the last event seen.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Context, Failure, OnTarget};
use crate::engine::target::{LogEvent, LogQuery};

pub struct Args {
    pub function: String,
    pub follow: bool,
    pub since: String,
    pub filter: Option<String>,
}

/// How often `--follow` asks: CloudWatch allows 10 FilterLogEvents per second
/// per account and region, shared by every user of the account.
const POLL_AWS: Duration = Duration::from_secs(1);
const POLL_LOCAL: Duration = Duration::from_millis(250);

pub async fn run(ctx: &Context, on: &OnTarget, args: Args) -> Result<(), Failure> {
    let since = parse_since(&args.since, now_ms()).map_err(Failure::User)?;
    let (stack, target) = on.defining(&args.function)?;
    // The state names the function; without one (another machine, a stage
    // destroyed), its name is the one the stage would give it.
    let physical = match on.recorded(stack, target.as_ref()).await? {
        Some(state) => state.function_physical(&args.function),
        None => None,
    }
    .unwrap_or_else(|| crate::naming::function_name(&stack.name, &on.stage, &args.function));
    let mut query = LogQuery { since_ms: Some(since), filter: args.filter.clone() };
    // Events at the latest timestamp already printed: the next query starts
    // at that timestamp (more may arrive in the same millisecond).
    let mut printed_at: BTreeSet<String> = BTreeSet::new();
    let poll = if on.local() { POLL_LOCAL } else { POLL_AWS };
    loop {
        let events = target.log_events(&physical, &query).await?;
        let fresh: Vec<&LogEvent> = events.iter().filter(|e| !printed_at.contains(&e.id)).collect();
        for e in &fresh {
            print_event(ctx, e);
        }
        if let Some(last) = fresh.iter().map(|e| e.timestamp_ms).max() {
            if Some(last) != query.since_ms {
                printed_at.clear();
            }
            printed_at.extend(events.iter().filter(|e| e.timestamp_ms == last).map(|e| e.id.clone()));
            query.since_ms = Some(last);
        }
        if !args.follow {
            if events.is_empty() && !ctx.json() {
                eprintln!("no log events of function/{} ({physical}) since {}", args.function, rfc3339(since));
            }
            return Ok(());
        }
        tokio::time::sleep(poll).await;
    }
}

fn print_event(ctx: &Context, e: &LogEvent) {
    if ctx.json() {
        println!("{}", serde_json::json!({ "timestamp": rfc3339(e.timestamp_ms), "stream": e.stream, "message": e.message }));
    } else {
        println!("{}  {}", rfc3339(e.timestamp_ms), e.message);
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&f).unwrap_or_default()
}

/// `--since`: a duration back from now (`30s`, `10m`, `2h`, `1d`, `1w`) or an
/// RFC 3339 time (`2026-11-25T10:00:00Z`), as ms since the epoch.
pub fn parse_since(text: &str, now_ms: i64) -> Result<i64, String> {
    let text = text.trim();
    let hint = "  hint: write a duration such as `30s`, `10m`, `2h`, `1d`, or a time such as `2026-11-25T10:00:00Z`";
    if let Ok(t) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| format!("`--since {text}` is neither a duration nor a time\n{hint}"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("`--since {text}`: unknown unit `{unit}`\n{hint}")),
    };
    Ok(now_ms - n.saturating_mul(unit_ms))
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_takes_durations_and_times() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_since("10m", now), Ok(now - 600_000));
        assert_eq!(parse_since("2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_since("1d", now), Ok(now - 86_400_000));
        assert_eq!(parse_since("2026-11-25T10:00:00Z", now), Ok(1_795_600_800_000));
        assert!(parse_since("10 parsecs", now).unwrap_err().contains("hint"));
        assert!(parse_since("ten", now).unwrap_err().contains("neither"));
    }
}
