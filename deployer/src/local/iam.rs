//! IAM on the local cloud: every function has its own access key, and every call
//! it makes to the local S3 or Invoke endpoint is checked against the very policy
//! document its role got (the one the engine generated): an explicit `Deny`
//! wins, else an `Allow` whose action and resource match (IAM's `*` and `?`
//! wildcards), else AccessDenied — so a missing grant fails locally before it
//! would in production.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::stack::iam_catalog::{parse_operator, Operator};

/// One caller: a function's role session.
#[derive(Debug, Clone)]
pub struct Principal {
    pub access_key: String,
    pub secret_key: String,
    /// `arn:aws:sts::{account}:assumed-role/{role}/{function}`, for messages.
    pub arn: String,
    /// The role's policy document.
    pub policy: Value,
}

/// Every caller of the local endpoints. The admin key (the deployer's own, used
/// to administer buckets) may do anything.
#[derive(Debug, Clone, Default)]
pub struct Iam {
    pub admin_key: String,
    pub admin_secret: String,
    pub principals: BTreeMap<String, Principal>,
}

impl Iam {
    /// Every access key with its secret (for signature checks).
    pub fn secrets(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self.principals.values().map(|p| (p.access_key.clone(), p.secret_key.clone())).collect();
        out.insert(self.admin_key.clone(), self.admin_secret.clone());
        out
    }

    /// The secret of one access key (a function's, or the admin's).
    pub fn secret(&self, access_key: &str) -> Option<&str> {
        if !self.admin_key.is_empty() && access_key == self.admin_key {
            return Some(&self.admin_secret);
        }
        self.principals.get(access_key).map(|p| p.secret_key.as_str())
    }

    /// Whether `access_key` may perform `action` on `resource`; the error is
    /// IAM's AccessDenied message.
    pub fn check(&self, access_key: &str, action: &str, resource: &str) -> Result<(), String> {
        self.check_in(access_key, action, resource, &[])
    }

    /// [`Iam::check`] with the request's condition keys (`s3:prefix`, ...):
    /// `context` holds (key, value) pairs, a key repeated for several values.
    pub fn check_in(&self, access_key: &str, action: &str, resource: &str, context: &[(&str, &str)]) -> Result<(), String> {
        if !self.admin_key.is_empty() && access_key == self.admin_key {
            return Ok(());
        }
        let Some(p) = self.principals.get(access_key) else {
            return Err(format!("The AWS access key id {access_key} does not exist on the local cloud; it may not perform {action} on {resource}"));
        };
        // The request context every AWS request carries (the local endpoints are
        // loopback HTTP, but stand for AWS's HTTPS ones), built only for a
        // policy with conditions: most calls need none of it.
        let decision = if statements(&p.policy).iter().any(|s| s.get("Condition").is_some()) {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
            let (epoch, current) = (now.to_string(), chrono::DateTime::from_timestamp(now as i64, 0).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default());
            let role_arn = role_of_session(&p.arn);
            let mut full: Vec<(&str, &str)> = vec![("aws:SecureTransport", "true"), ("aws:EpochTime", &epoch), ("aws:CurrentTime", &current), ("aws:PrincipalArn", &role_arn)];
            if let Some(account) = p.arn.split(':').nth(4) {
                full.push(("aws:PrincipalAccount", account));
            }
            full.extend_from_slice(context);
            evaluate_in(&p.policy, action, resource, &full)
        } else {
            evaluate_in(&p.policy, action, resource, context)
        };
        match decision {
            Decision::Allow => Ok(()),
            Decision::ExplicitDeny => Err(format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} with an explicit deny in an identity-based policy",
                p.arn
            )),
            Decision::ImplicitDeny => Err(format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
                p.arn
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// Evaluate one identity policy document for a request without condition keys.
pub fn evaluate(policy: &Value, action: &str, resource: &str) -> Decision {
    evaluate_in(policy, action, resource, &[])
}

/// Evaluate one identity policy document for a request whose condition keys
/// are `context`. A statement applies when its action, resource and every
/// condition match; an operator or construct this evaluator does not know makes
/// an `Allow` not apply (never wider than IAM) — stackctl only writes `Allow`.
pub fn evaluate_in(policy: &Value, action: &str, resource: &str, context: &[(&str, &str)]) -> Decision {
    let mut allowed = false;
    for s in statements(policy) {
        let matches_action = strings(&s["Action"]).iter().any(|a| glob(a, action, true));
        let matches_resource = strings(&s["Resource"]).iter().any(|r| glob(r, resource, false));
        // `NotAction` / `NotResource` are not generated by stackctl: a statement
        // using them is ignored (never widens access).
        if !(matches_action && matches_resource) || s.get("NotAction").is_some() || s.get("NotResource").is_some() {
            continue;
        }
        if let Some(condition) = s.get("Condition") {
            match conditions_hold(condition, context) {
                Some(true) => {}
                Some(false) => continue,
                // Unknown: an Allow does not apply, a Deny does.
                None if s["Effect"] == "Deny" => return Decision::ExplicitDeny,
                None => continue,
            }
        }
        match s["Effect"].as_str() {
            Some("Deny") => return Decision::ExplicitDeny,
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    if allowed { Decision::Allow } else { Decision::ImplicitDeny }
}

/// `arn:aws:sts::A:assumed-role/R/S` → `arn:aws:iam::A:role/R` (what
/// `aws:PrincipalArn` holds for a role session; the role's path is not in the
/// session ARN, and stackctl's roles live under `/stackctl/`).
fn role_of_session(session: &str) -> String {
    let parts: Vec<&str> = session.split(':').collect();
    match (parts.get(4), parts.get(5).and_then(|r| r.strip_prefix("assumed-role/"))) {
        (Some(account), Some(rest)) => format!("arn:aws:iam::{account}:role/stackctl/{}", rest.split('/').next().unwrap_or_default()),
        _ => session.to_owned(),
    }
}

/// Whether every operator of a `Condition` block holds in `context`; `None`
/// for an operator this evaluator does not implement.
pub fn conditions_hold(condition: &Value, context: &[(&str, &str)]) -> Option<bool> {
    let Value::Object(ops) = condition else { return None };
    for (op, block) in ops {
        let Value::Object(keys) = block else { return None };
        let Operator { base, if_exists, all_values: set } = parse_operator(op)?;
        for (key, expected) in keys {
            let wanted: Vec<String> = match expected {
                Value::Array(a) => a.iter().map(scalar).collect::<Option<_>>()?,
                v => vec![scalar(v)?],
            };
            let present: Vec<&str> = context.iter().filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| *v).collect();
            if base == "Null" {
                let want_absent = wanted.first().map(|w| w == "true")?;
                if present.is_empty() != want_absent {
                    return Some(false);
                }
                continue;
            }
            if present.is_empty() {
                // IfExists and ForAllValues hold on an absent key; anything else fails.
                if if_exists || set == Some(true) {
                    continue;
                }
                return Some(false);
            }
            let one = |v: &str| -> Option<bool> {
                let negated = base.contains("Not");
                let hit = match base {
                    "StringEquals" | "StringNotEquals" => wanted.iter().any(|w| w == v),
                    "StringEqualsIgnoreCase" | "StringNotEqualsIgnoreCase" => wanted.iter().any(|w| w.eq_ignore_ascii_case(v)),
                    "StringLike" | "StringNotLike" | "ArnLike" | "ArnNotLike" | "ArnEquals" | "ArnNotEquals" => wanted.iter().any(|w| glob(w, v, false)),
                    "Bool" => wanted.iter().any(|w| w.eq_ignore_ascii_case(v)),
                    numeric if numeric.starts_with("Numeric") => {
                        let have: f64 = v.parse().ok()?;
                        let want: Vec<f64> = wanted.iter().map(|w| w.parse().ok()).collect::<Option<_>>()?;
                        want.iter().any(|w| compare(&numeric["Numeric".len()..], have, *w))
                    }
                    date if date.starts_with("Date") => {
                        let have = epoch_seconds(v)?;
                        let want: Vec<f64> = wanted.iter().map(|w| epoch_seconds(w)).collect::<Option<_>>()?;
                        want.iter().any(|w| compare(&date["Date".len()..], have, *w))
                    }
                    // BinaryEquals, IpAddress, NotIpAddress: not implemented here.
                    _ => return None,
                };
                Some(hit != negated)
            };
            let results: Vec<bool> = present.iter().map(|v| one(v)).collect::<Option<_>>()?;
            let holds = match set {
                Some(true) => results.iter().all(|r| *r),
                _ => results.iter().any(|r| *r),
            };
            if !holds {
                return Some(false);
            }
        }
    }
    Some(true)
}

/// `Equals`, `NotEquals` (negated by the caller), `LessThan`, ... of two numbers.
fn compare(op: &str, have: f64, want: f64) -> bool {
    match op {
        "Equals" | "NotEquals" => have == want,
        "LessThan" => have < want,
        "LessThanEquals" => have <= want,
        "GreaterThan" => have > want,
        "GreaterThanEquals" => have >= want,
        _ => false,
    }
}

/// A date condition value: RFC 3339, or seconds since the epoch.
fn epoch_seconds(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().or_else(|| chrono::DateTime::parse_from_rfc3339(v).ok().map(|t| t.timestamp() as f64))
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A policy's statements (`Statement` may be one object or a list).
fn statements(policy: &Value) -> Vec<&Value> {
    match &policy["Statement"] {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![&policy["Statement"]],
        _ => Vec::new(),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// IAM wildcard match: `*` any run of characters, `?` one character. Actions
/// compare case-insensitively, resources exactly.
pub fn glob(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = if ignore_case {
        (pattern.to_lowercase().chars().collect(), value.to_lowercase().chars().collect())
    } else {
        (pattern.chars().collect(), value.chars().collect())
    };
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards() {
        assert!(glob("arn:aws:s3:::b/results/*", "arn:aws:s3:::b/results/x.json", false));
        assert!(glob("arn:aws:s3:::b/results/*", "arn:aws:s3:::b/results/", false));
        assert!(!glob("arn:aws:s3:::b/results/*", "arn:aws:s3:::b/other/x", false));
        assert!(!glob("arn:aws:s3:::b/results/*", "arn:aws:s3:::b", false));
        assert!(glob("s3:Get*", "s3:GetObject", true));
        assert!(glob("S3:GETOBJECT", "s3:GetObject", true));
        assert!(!glob("s3:Get?", "s3:GetObject", true));
        assert!(glob("a*b*c", "aXXbYYc", false));
        assert!(!glob("a*b*c", "aXXbYY", false));
        assert!(glob("*", "", false));
    }

    #[test]
    fn allow_deny_and_the_default() {
        let policy = json!({ "Version": "2012-10-17", "Statement": [
            { "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": ["arn:aws:s3:::b/results/*"] },
            { "Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/results/locked/*" },
            { "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "arn:aws:lambda:us-east-1:000000000000:function:w" },
        ]});
        assert_eq!(evaluate(&policy, "s3:GetObject", "arn:aws:s3:::b/results/t.json"), Decision::Allow);
        assert_eq!(evaluate(&policy, "s3:PutObject", "arn:aws:s3:::b/results/locked/t"), Decision::ExplicitDeny);
        assert_eq!(evaluate(&policy, "s3:DeleteObject", "arn:aws:s3:::b/results/t.json"), Decision::ImplicitDeny);
        assert_eq!(evaluate(&policy, "s3:ListBucket", "arn:aws:s3:::b"), Decision::ImplicitDeny);
        assert_eq!(evaluate(&policy, "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:000000000000:function:w"), Decision::Allow);
        assert_eq!(evaluate(&policy, "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:000000000000:function:w2"), Decision::ImplicitDeny);
        let iam = Iam {
            admin_key: "ADMIN".into(),
            admin_secret: "s".into(),
            principals: [("K".to_string(), Principal { access_key: "K".into(), secret_key: "x".into(), arn: "arn:aws:sts::000000000000:assumed-role/r/f".into(), policy })].into(),
        };
        assert!(iam.check("ADMIN", "s3:CreateBucket", "arn:aws:s3:::b").is_ok());
        let e = iam.check("K", "s3:ListBucket", "arn:aws:s3:::b").unwrap_err();
        assert!(e.contains("assumed-role/r/f is not authorized to perform: s3:ListBucket"), "{e}");
        assert!(iam.check("nobody", "s3:GetObject", "arn:aws:s3:::b/results/t").is_err());
    }

    #[test]
    fn conditions_on_the_request_context() {
        let policy = json!({ "Version": "2012-10-17", "Statement": [
            { "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::b"], "Condition": { "StringLike": { "s3:prefix": ["notes/*"] } } },
            { "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"], "Condition": { "StringEqualsIfExists": { "s3:x": "1" } } },
            { "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::b/*"], "Condition": { "NumericLessThan": { "s3:max-keys": "5" } } },
        ]});
        let list = |ctx: &[(&str, &str)]| evaluate_in(&policy, "s3:ListBucket", "arn:aws:s3:::b", ctx);
        assert_eq!(list(&[("s3:prefix", "notes/")]), Decision::Allow);
        assert_eq!(list(&[("s3:prefix", "notes/a/b")]), Decision::Allow);
        assert_eq!(list(&[("s3:prefix", "other/")]), Decision::ImplicitDeny);
        assert_eq!(list(&[("s3:prefix", "")]), Decision::ImplicitDeny);
        // No prefix in the request (a GetObject's ListBucket check, a list of everything): the condition fails.
        assert_eq!(list(&[]), Decision::ImplicitDeny);
        assert_eq!(evaluate_in(&policy, "s3:GetObject", "arn:aws:s3:::b/k", &[]), Decision::Allow);
        assert_eq!(evaluate_in(&policy, "s3:GetObject", "arn:aws:s3:::b/k", &[("s3:x", "2")]), Decision::ImplicitDeny);
        // Numbers and dates compare as such.
        assert_eq!(evaluate_in(&policy, "s3:PutObject", "arn:aws:s3:::b/k", &[("s3:max-keys", "1")]), Decision::Allow);
        assert_eq!(evaluate_in(&policy, "s3:PutObject", "arn:aws:s3:::b/k", &[("s3:max-keys", "10")]), Decision::ImplicitDeny);
        let dated = json!({ "Statement": [{ "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {
            "DateLessThan": { "aws:CurrentTime": "2030-01-01T00:00:00Z" }, "Bool": { "aws:SecureTransport": "true" } } }] });
        assert_eq!(evaluate_in(&dated, "s3:GetObject", "arn:aws:s3:::b/k", &[("aws:CurrentTime", "2026-11-25T10:00:00Z"), ("aws:SecureTransport", "true")]), Decision::Allow);
        assert_eq!(evaluate_in(&dated, "s3:GetObject", "arn:aws:s3:::b/k", &[("aws:CurrentTime", "2031-01-01T00:00:00Z"), ("aws:SecureTransport", "true")]), Decision::ImplicitDeny);
        // An operator the evaluator does not implement never widens an Allow.
        let ip = json!({ "Statement": [{ "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": { "IpAddress": { "aws:SourceIp": "10.0.0.0/8" } } }] });
        assert_eq!(evaluate_in(&ip, "s3:GetObject", "arn:aws:s3:::b/k", &[("aws:SourceIp", "10.1.2.3")]), Decision::ImplicitDeny);
    }
}
