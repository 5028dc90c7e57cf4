//! CloudWatch Logs: each function's log group, created by the deploy with its
//! retention (so that `destroy` removes it, and the function's role needs no
//! `logs:CreateLogGroup`), and the events `stackctl logs` reads.

use std::collections::BTreeMap;

use super::error::{gone, retrying, AwsError, ErrorKind};
use super::target::AwsTarget;
use crate::engine::desired::{log_group_arn, Node, Spec};
use crate::engine::error::EngineError;
use crate::engine::run::Run;
use crate::engine::state::Recorded;
use crate::engine::target::{LogEvent, LogQuery};

/// Events asked for per `FilterLogEvents` page (the API's maximum).
const PAGE: i32 = 10_000;

impl AwsTarget {
    /// Create the group (a group Lambda made implicitly before is adopted: its
    /// name is the function's, which the stage owns), then set its retention.
    pub(super) async fn apply_log_group(&self, run: &Run<'_>, node: &Node, update: bool) -> Result<Recorded, EngineError> {
        let Spec::LogGroup { name, retention_days } = &node.spec else { unreachable!("dispatched on the kind") };
        let c = &self.clients;
        let id = node.id.as_str();
        let tags = self.tags(run);
        if !update {
            let created = retrying(|| async {
                let mut req = c.logs.create_log_group().log_group_name(name);
                for (k, v) in &tags {
                    req = req.tags(k, v);
                }
                match req.send().await {
                    Ok(_) => Ok(true),
                    Err(e) => {
                        let err = AwsError::from_sdk(id, "logs:CreateLogGroup", e);
                        if err.kind == ErrorKind::AlreadyExists { Ok(false) } else { Err(err) }
                    }
                }
            })
            .await?;
            if !created {
                let arn = log_group_arn(run.ctx, name);
                retrying(|| async {
                    let mut req = c.logs.tag_resource().resource_arn(&arn);
                    for (k, v) in &tags {
                        req = req.tags(k, v);
                    }
                    req.send().await.map_err(|e| AwsError::from_sdk(id, "logs:TagResource", e))
                })
                .await?;
            }
        }
        retrying(|| async {
            c.logs
                .put_retention_policy()
                .log_group_name(name)
                .retention_in_days(*retention_days as i32)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(id, "logs:PutRetentionPolicy", e))
        })
        .await?;
        let outputs = BTreeMap::from([("retention_days".to_string(), retention_days.to_string())]);
        Ok(Run::recorded_for(node, name.clone(), Some(log_group_arn(run.ctx, name)), outputs))
    }

    /// `Ok(None)` when the group is as recorded; a drift names what changed.
    pub(super) async fn observe_log_group(&self, id: &str, r: &Recorded) -> Result<Option<String>, AwsError> {
        let group = self.find_log_group(id, &r.physical_id).await?;
        let Some(group) = group else { return Err(AwsError { kind: ErrorKind::NotFound, ..AwsError::new(id, "logs:DescribeLogGroups", "no such log group") }) };
        let recorded = r.outputs.get("retention_days").and_then(|d| d.parse::<i32>().ok());
        Ok(match (recorded, group.retention_in_days()) {
            (Some(want), Some(have)) if want != have => Some(format!("its retention is {have} days, not {want}")),
            (Some(want), None) => Some(format!("its retention was removed (logs never expire), not {want} days")),
            _ => None,
        })
    }

    /// The group of exactly that name, if any.
    async fn find_log_group(&self, id: &str, name: &str) -> Result<Option<aws_sdk_cloudwatchlogs::types::LogGroup>, AwsError> {
        let c = &self.clients;
        let out = retrying(|| async { c.logs.describe_log_groups().log_group_name_prefix(name).send().await.map_err(|e| AwsError::from_sdk(id, "logs:DescribeLogGroups", e)) }).await?;
        Ok(out.log_groups().iter().find(|g| g.log_group_name() == Some(name)).cloned())
    }

    pub(super) async fn delete_log_group(&self, id: &str, name: &str) -> Result<(), AwsError> {
        let c = &self.clients;
        gone(|| async { c.logs.delete_log_group().log_group_name(name).send().await.map_err(|e| AwsError::from_sdk(id, "logs:DeleteLogGroup", e)) }).await
    }

    /// The events of a function's group from `query.since_ms`, oldest first,
    /// all pages. A group that does not exist (never deployed, or destroyed)
    /// has no events.
    pub(super) async fn filter_log_events(&self, function: &str, query: &LogQuery) -> Result<Vec<LogEvent>, AwsError> {
        let c = &self.clients;
        let group = crate::engine::desired::log_group_name(function);
        let what = format!("log group {group}");
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = retrying(|| async {
                let mut req = c.logs.filter_log_events().log_group_name(&group).limit(PAGE).set_next_token(token.clone());
                if let Some(since) = query.since_ms {
                    req = req.start_time(since);
                }
                if let Some(text) = &query.filter {
                    req = req.filter_pattern(filter_pattern(text));
                }
                req.send().await.map_err(|e| AwsError::from_sdk(&what, "logs:FilterLogEvents", e))
            })
            .await;
            let page = match page {
                Ok(p) => p,
                Err(e) if e.kind == ErrorKind::NotFound => return Ok(events),
                Err(e) => return Err(e),
            };
            for e in page.events() {
                events.push(LogEvent {
                    id: e.event_id().unwrap_or_default().to_owned(),
                    timestamp_ms: e.timestamp().unwrap_or_default(),
                    stream: e.log_stream_name().unwrap_or_default().to_owned(),
                    message: e.message().unwrap_or_default().trim_end_matches('\n').to_owned(),
                });
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() || page.events().is_empty() {
                break;
            }
        }
        events.sort_by_key(|e| e.timestamp_ms);
        Ok(events)
    }
}

/// `--filter TEXT` as a CloudWatch filter pattern: the text as one quoted
/// term, so that it matches as a substring (the same as the local cloud),
/// whatever characters it holds.
pub fn filter_pattern(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_filter_is_one_quoted_term() {
        assert_eq!(super::filter_pattern("handled request"), "\"handled request\"");
        assert_eq!(super::filter_pattern(r#"say "hi""#), r#""say \"hi\"""#);
    }
}
