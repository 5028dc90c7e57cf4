//! IAM: one role per function, with its least-privilege inline policy.

use std::collections::BTreeMap;

use super::error::{gone, retrying, AwsError, ErrorKind};
use super::target::AwsTarget;
use crate::engine::desired::{Node, Spec};
use crate::engine::error::EngineError;
use crate::engine::run::Run;
use crate::engine::state::Recorded;

/// The name of the inline policy stackctl writes on a role.
const POLICY_NAME: &str = "stackctl-function";

impl AwsTarget {
    pub(super) async fn apply_role(&self, run: &Run<'_>, node: &Node, update: bool) -> Result<Recorded, EngineError> {
        let Spec::Role { name, path, trust, policy_name, policy } = &node.spec else { unreachable!("dispatched on the kind") };
        let c = &self.clients;
        let id = node.id.as_str();
        let tags = self.tags(run);
        let created = retrying(|| async {
            let mut req = c.iam.create_role().role_name(name).path(path).assume_role_policy_document(trust.to_string());
            for (k, v) in &tags {
                req = req.tags(aws_sdk_iam::types::Tag::builder().key(k).value(v).build().map_err(|e| AwsError::new(id, "iam:CreateRole", &e.to_string()))?);
            }
            match req.send().await {
                Ok(out) => Ok(out.role.map(|r| r.arn)),
                Err(e) => {
                    let err = AwsError::from_sdk(id, "iam:CreateRole", e);
                    if err.kind == ErrorKind::AlreadyExists { Ok(None) } else { Err(err) }
                }
            }
        })
        .await?;
        let arn = match created {
            Some(arn) if !update => arn,
            _ => {
                retrying(|| async {
                    c.iam
                        .update_assume_role_policy()
                        .role_name(name)
                        .policy_document(trust.to_string())
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "iam:UpdateAssumeRolePolicy", e))
                })
                .await?;
                format!("arn:aws:iam::{}:role{path}{name}", run.ctx.account)
            }
        };
        retrying(|| async {
            c.iam
                .put_role_policy()
                .role_name(name)
                .policy_name(policy_name)
                .policy_document(policy.to_string())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(id, "iam:PutRolePolicy", e))
        })
        .await?;
        let outputs = BTreeMap::from([("policy_sha256".to_string(), crate::digest::policy(&policy.to_string()))]);
        Ok(Run::recorded_for(node, name.clone(), Some(arn), outputs))
    }

    /// The role exists, with the inline policy we wrote (a hand-edited grant is drift).
    pub(super) async fn observe_role(&self, id: &str, r: &Recorded) -> Result<Option<String>, AwsError> {
        let c = &self.clients;
        c.iam.get_role().role_name(&r.physical_id).send().await.map_err(|e| AwsError::from_sdk(id, "iam:GetRole", e))?;
        match c.iam.get_role_policy().role_name(&r.physical_id).policy_name(POLICY_NAME).send().await {
            Ok(p) => Ok(match r.outputs.get("policy_sha256") {
                Some(ours) if *ours != crate::digest::policy(&p.policy_document) => Some("its inline policy was edited".to_string()),
                _ => None,
            }),
            Err(e) => {
                let err = AwsError::from_sdk(id, "iam:GetRolePolicy", e);
                if err.kind == ErrorKind::NotFound { Ok(Some("its inline policy was deleted".to_string())) } else { Err(err) }
            }
        }
    }

    /// Delete the role's inline policies, then the role.
    pub(super) async fn delete_role(&self, id: &str, name: &str) -> Result<(), AwsError> {
        let c = &self.clients;
        gone(|| async { c.iam.delete_role_policy().role_name(name).policy_name(POLICY_NAME).send().await.map_err(|e| AwsError::from_sdk(id, "iam:DeleteRolePolicy", e)) }).await?;
        gone(|| async { c.iam.delete_role().role_name(name).send().await.map_err(|e| AwsError::from_sdk(id, "iam:DeleteRole", e)) }).await
    }
}
