//! The role policies stackctl generates, read as IAM and as a linter read them:
//! statements of the escape hatch resolved exactly as written, and every policy
//! of every shipped stack and of a stack using every permission form passes
//! parliament (the public IAM policy linter) with 0 findings.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

mod support;
use stackctl::engine::desired::{role_policy, Context};

/// A stack exercising every permission form.
const EVERY_FORM: &str = r#"stack: forms
buckets:
  data: {}
  uploads: {}
functions:
  api:
    crate: functions/notes
    permissions:
      invoke: [worker]
      buckets:
        - { bucket: data, access: [read, write, delete, list], prefix: notes/ }
        - { bucket: uploads, access: read-write }
        - { bucket: uploads, access: list, prefix: incoming/ }
      statements:
        - sid: Jobs
          actions: [sqs:SendMessage, sqs:GetQueueAttributes]
          resources: ["arn:aws:sqs:${region}:${account}:${stack}-${stage}-jobs"]
        - actions: [dynamodb:GetItem, dynamodb:Query, dynamodb:PutItem]
          resources:
            - "arn:aws:dynamodb:${region}:${account}:table/notes"
            - "arn:aws:dynamodb:${region}:${account}:table/notes/index/*"
          condition: { "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": ["${aws:userid}"] } }
        - sid: Tracing
          actions: [xray:PutTraceSegments, xray:PutTelemetryRecords]
          resources: ["*"]
          allow_wildcard: X-Ray's trace APIs take no resource
        - actions: [ssm:GetParameter]
          resources: ["arn:aws:ssm:${region}:${account}:parameter/${stack}/${stage}/*"]
        - actions: [s3:GetObject]
          resources: ["arn:aws:s3:::${bucket:data}/public/*"]
        - actions: [lambda:GetFunctionConfiguration]
          resources: ["arn:aws:lambda:${region}:${account}:function:${function:worker}"]
        - sid: Reports
          actions: [s3:ListBucket]
          resources: ["arn:aws:s3:::${bucket:uploads}"]
          condition:
            StringLike: { "s3:prefix": ["reports/*"] }
            NumericLessThanEquals: { "s3:max-keys": "100" }
            Bool: { "aws:SecureTransport": "true" }
            IpAddress: { "aws:SourceIp": ["203.0.113.0/24"] }
            DateLessThan: { "aws:CurrentTime": "2030-01-01T00:00:00Z" }
  worker:
    crate: functions/search-worker
"#;

fn ctx() -> Context {
    Context { stage: "production".into(), account: "123456789012".into(), region: "eu-west-1".into(), parameters: [("search_token_key".to_string(), "k".to_string())].into() }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Every (name, policy) of a stack file.
fn policies(file: &Path) -> Vec<(String, Value)> {
    let stack = stackctl::stack::load(file, "production").unwrap_or_else(|e| panic!("{e}"));
    stack.functions.iter().map(|f| (format!("{}/{}", stack.name, f.name), role_policy(&stack, &f.name, &ctx()))).collect()
}

/// The stack above in a project of its own (crates as bare manifests).
fn every_form_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for (path, name) in [("functions/notes", "notes"), ("functions/search-worker", "search-worker")] {
        std::fs::create_dir_all(dir.path().join(path)).unwrap();
        std::fs::write(dir.path().join(path).join("Cargo.toml"), format!("[package]\nname = \"{name}\"\n")).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("stacks")).unwrap();
    let file = dir.path().join("stacks/forms.yaml");
    std::fs::write(&file, EVERY_FORM).unwrap();
    (dir, file)
}

#[test]
fn statements_are_resolved_exactly_as_written() {
    let (_dir, file) = every_form_file();
    let (_, policy) = policies(&file).into_iter().find(|(n, _)| n == "forms/api").unwrap();
    let bucket = |b: &str| stackctl::naming::bucket_name("forms", "production", b, "123456789012", "eu-west-1");
    let want = json!({ "Version": "2012-10-17", "Statement": [
        { "Sid": "OwnLogStreams", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/forms-production-api:log-stream:*"] },
        { "Sid": "InvokeDeclaredFunctions", "Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": ["arn:aws:lambda:eu-west-1:123456789012:function:forms-production-worker"] },
        { "Sid": "Bucket0Objects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": [format!("arn:aws:s3:::{}/notes/*", bucket("data"))] },
        { "Sid": "Bucket0List", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [format!("arn:aws:s3:::{}", bucket("data"))], "Condition": { "StringLike": { "s3:prefix": ["notes/*"] } } },
        { "Sid": "Bucket1Objects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": [format!("arn:aws:s3:::{}/*", bucket("uploads"))] },
        { "Sid": "Bucket2List", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [format!("arn:aws:s3:::{}", bucket("uploads"))], "Condition": { "StringLike": { "s3:prefix": ["incoming/*"] } } },
        { "Sid": "Jobs", "Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes"], "Resource": ["arn:aws:sqs:eu-west-1:123456789012:forms-production-jobs"] },
        { "Sid": "Statement2", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"], "Resource": ["arn:aws:dynamodb:eu-west-1:123456789012:table/notes", "arn:aws:dynamodb:eu-west-1:123456789012:table/notes/index/*"], "Condition": { "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": ["${aws:userid}"] } } },
        { "Sid": "Tracing", "Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": ["*"] },
        { "Sid": "Statement4", "Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": ["arn:aws:ssm:eu-west-1:123456789012:parameter/forms/production/*"] },
        { "Sid": "Statement5", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [format!("arn:aws:s3:::{}/public/*", bucket("data"))] },
        { "Sid": "Statement6", "Effect": "Allow", "Action": ["lambda:GetFunctionConfiguration"], "Resource": ["arn:aws:lambda:eu-west-1:123456789012:function:forms-production-worker"] },
        { "Sid": "Reports", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [format!("arn:aws:s3:::{}", bucket("uploads"))], "Condition": {
            "StringLike": { "s3:prefix": ["reports/*"] },
            "NumericLessThanEquals": { "s3:max-keys": "100" },
            "Bool": { "aws:SecureTransport": "true" },
            "IpAddress": { "aws:SourceIp": ["203.0.113.0/24"] },
            "DateLessThan": { "aws:CurrentTime": "2030-01-01T00:00:00Z" },
        } },
    ]});
    assert_eq!(policy, want, "{policy:#}");
}

#[test]
fn every_generated_policy_passes_parliament_with_no_finding() {
    let (_dir, every_form) = every_form_file();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(repo().join("stacks")).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "yaml")).collect();
    files.sort();
    files.push(every_form);
    let mut checked = 0;
    let mut findings = Vec::new();
    for file in &files {
        for (name, policy) in policies(file) {
            let out = Command::new("parliament")
                .args(["--json", "--string", &policy.to_string()])
                .stdin(Stdio::null())
                .output()
                .expect("parliament must be installed (pip install parliament); .ci/run installs it");
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() || !stdout.trim().is_empty() {
                findings.push(format!("{name}: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
            }
            checked += 1;
        }
    }
    assert!(checked >= 6, "{checked} policies");
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}

/// IAM's 10,240-character limit on a role's inline policies is checked before
/// any call, naming the function.
#[test]
fn a_policy_beyond_iams_size_limit_is_refused_before_deploying() {
    let (dir, _) = every_form_file();
    let mut text = String::from("stack: big\nfunctions:\n  api:\n    crate: functions/notes\n    permissions:\n      statements:\n");
    for i in 0..120 {
        text.push_str(&format!("        - actions: [sqs:SendMessage]\n          resources: [\"arn:aws:sqs:${{region}}:${{account}}:queue-number-{i}\"]\n"));
    }
    let file = dir.path().join("stacks/big.yaml");
    std::fs::write(&file, text).unwrap();
    let stack = stackctl::stack::load(&file, "production").unwrap();
    let zips = tempfile::tempdir().unwrap();
    let artifacts = support::fake_artifacts(&stack, zips.path(), "v1");
    let err = stackctl::engine::desired::desired(&stack, &artifacts, &ctx()).unwrap_err();
    assert!(err.contains("the IAM policy of function `api` is") && err.contains("IAM allows 10240"), "{err}");
}
