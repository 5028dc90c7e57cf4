//! EventBridge: a scheduled function is a rule with its schedule expression,
//! one target (the function), and a statement in the function's resource
//! policy letting `events.amazonaws.com` invoke it from that rule only.

use std::collections::BTreeMap;

use super::error::{gone, retrying, AwsError};
use super::target::AwsTarget;
use crate::engine::desired::{Node, Spec};
use crate::engine::error::EngineError;
use crate::engine::run::Run;
use crate::engine::state::Recorded;

/// The id of a rule's one target.
const TARGET_ID: &str = "function";

impl AwsTarget {
    /// PutRule (creates or updates, enabled, tagged), PutTargets, then the
    /// function's permission for the rule (replaced when already there).
    pub(super) async fn apply_schedule(&self, run: &Run<'_>, node: &Node) -> Result<Recorded, EngineError> {
        let Spec::Schedule { rule, expression, function, function_arn, statement_id } = &node.spec else { unreachable!("dispatched on the kind") };
        let c = &self.clients;
        let id = node.id.as_str();
        let fname = run.output(function, "id")?;
        let tags: Vec<aws_sdk_eventbridge::types::Tag> = self
            .tags(run)
            .into_iter()
            .filter_map(|(k, v)| aws_sdk_eventbridge::types::Tag::builder().key(k).value(v).build().ok())
            .collect();
        let put = retrying(|| async {
            c.events
                .put_rule()
                .name(rule)
                .schedule_expression(expression)
                .state(aws_sdk_eventbridge::types::RuleState::Enabled)
                .description(format!("stackctl: invokes {fname} on {expression}"))
                .set_tags(Some(tags.clone()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(id, "events:PutRule", e))
        })
        .await?;
        let rule_arn = put.rule_arn().map(str::to_owned).unwrap_or_else(|| format!("arn:aws:events:{}:{}:rule/{rule}", run.ctx.region, run.ctx.account));
        let target = aws_sdk_eventbridge::types::Target::builder().id(TARGET_ID).arn(function_arn).build().map_err(|e| EngineError::Operation(format!("{id}: {e}")))?;
        let targets = retrying(|| async {
            c.events.put_targets().rule(rule).targets(target.clone()).send().await.map_err(|e| AwsError::from_sdk(id, "events:PutTargets", e))
        })
        .await?;
        if targets.failed_entry_count() > 0 {
            let why: Vec<String> = targets.failed_entries().iter().map(|f| format!("{}: {}", f.error_code().unwrap_or("error"), f.error_message().unwrap_or_default())).collect();
            return Err(AwsError::new(id, "events:PutTargets", &why.join("; ")).into());
        }
        self.grant_invoke(id, &fname, statement_id, "events.amazonaws.com", &rule_arn, false).await?;
        let outputs = BTreeMap::from([
            ("expression".to_string(), expression.clone()),
            ("function".to_string(), fname),
            ("function_arn".to_string(), function_arn.clone()),
            ("statement_id".to_string(), statement_id.clone()),
        ]);
        Ok(Run::recorded_for(node, rule.clone(), Some(rule_arn), outputs))
    }

    /// `Ok(None)` when the rule is as recorded: same expression, enabled, the function its target.
    pub(super) async fn observe_schedule(&self, id: &str, r: &Recorded) -> Result<Option<String>, AwsError> {
        let c = &self.clients;
        let rule = retrying(|| async { c.events.describe_rule().name(&r.physical_id).send().await.map_err(|e| AwsError::from_sdk(id, "events:DescribeRule", e)) }).await?;
        if let Some(want) = r.outputs.get("expression")
            && rule.schedule_expression() != Some(want.as_str())
        {
            return Ok(Some(format!("its schedule is {}, not {want}", rule.schedule_expression().unwrap_or("none"))));
        }
        if rule.state() != Some(&aws_sdk_eventbridge::types::RuleState::Enabled) {
            return Ok(Some("it was disabled".into()));
        }
        let targets = retrying(|| async { c.events.list_targets_by_rule().rule(&r.physical_id).send().await.map_err(|e| AwsError::from_sdk(id, "events:ListTargetsByRule", e)) }).await?;
        let want = r.outputs.get("function_arn").map(String::as_str);
        if !targets.targets().iter().any(|t| Some(t.arn()) == want) {
            return Ok(Some("its target is not the function".into()));
        }
        Ok(None)
    }

    /// Targets, then the rule, then the function's permission.
    pub(super) async fn delete_schedule(&self, id: &str, r: &Recorded) -> Result<(), AwsError> {
        let c = &self.clients;
        let rule = r.physical_id.as_str();
        gone(|| async { c.events.remove_targets().rule(rule).ids(TARGET_ID).send().await.map(|_| ()).map_err(|e| AwsError::from_sdk(id, "events:RemoveTargets", e)) }).await?;
        gone(|| async { c.events.delete_rule().name(rule).send().await.map(|_| ()).map_err(|e| AwsError::from_sdk(id, "events:DeleteRule", e)) }).await?;
        if let (Some(function), Some(statement)) = (r.outputs.get("function"), r.outputs.get("statement_id")) {
            self.revoke_invoke(id, function, statement).await?;
        }
        Ok(())
    }
}
