//! Physical names. Every name carries stack and stage so that two stages never
//! share or touch each other's resources, and the limits AWS puts on each kind of
//! name are checked at validation time, not discovered half-way through a deploy.

use sha2::{Digest, Sha256};

/// Lambda function names: 64 characters.
pub const FUNCTION_NAME_MAX: usize = 64;
/// IAM role names: 64 characters.
pub const ROLE_NAME_MAX: usize = 64;
/// S3 bucket names: 63 characters, lowercase.
pub const BUCKET_NAME_MAX: usize = 63;
/// Length of the account/region suffix that makes bucket names globally unique.
pub const BUCKET_SUFFIX_LEN: usize = 8;
/// Our own bound on stage names; API Gateway allows 128 but every name carries it.
pub const STAGE_NAME_MAX: usize = 32;

/// `{stack}-{stage}-{function}`.
/// EventBridge's limit on a rule name.
pub const RULE_NAME_MAX: usize = 64;

/// The EventBridge rule of a function's `n`-th schedule (1-based): the
/// function's own name for the first, `-n` after it for the others.
pub fn schedule_rule_name(stack: &str, stage: &str, function: &str, n: usize) -> String {
    let base = function_name(stack, stage, function);
    if n <= 1 { base } else { format!("{base}-{n}") }
}

pub fn function_name(stack: &str, stage: &str, function: &str) -> String {
    format!("{stack}-{stage}-{function}")
}

/// The execution role of a function; same name as the function, under path `/stackctl/`.
pub fn role_name(stack: &str, stage: &str, function: &str) -> String {
    function_name(stack, stage, function)
}

/// `{stack}-{stage}`.
pub fn api_name(stack: &str, stage: &str) -> String {
    format!("{stack}-{stage}")
}

/// `{stack}-{stage}-{bucket}-{8 hex of sha256(account/region)}`: unique across
/// accounts and regions without leaking the account id into a public DNS name.
pub fn bucket_name(stack: &str, stage: &str, bucket: &str, account: &str, region: &str) -> String {
    let digest = Sha256::digest(format!("{account}/{region}").as_bytes());
    let suffix: String = digest.iter().take(BUCKET_SUFFIX_LEN / 2).map(|b| format!("{b:02x}")).collect();
    format!("{stack}-{stage}-{bucket}-{suffix}")
}

/// Length of a bucket name before the account/region is known.
pub fn bucket_name_len(stack: &str, stage: &str, bucket: &str) -> usize {
    stack.len() + stage.len() + bucket.len() + 3 + BUCKET_SUFFIX_LEN
}

/// Why a logical name (stack, function, bucket, stage) is not usable, if it is not.
/// Lowercase letters, digits and single dashes, starting with a letter: these names
/// end up in bucket names (lowercase only) and DNS labels.
pub fn check_identifier(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("it must start with a lowercase letter".into());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(format!("`{c}` is not allowed (use lowercase letters, digits and `-`)"));
    }
    if name.ends_with('-') {
        return Err("it must not end with `-`".into());
    }
    if name.contains("--") {
        return Err("it must not contain `--`".into());
    }
    Ok(())
}

/// Check a stage name given on the command line.
pub fn check_stage(stage: &str) -> Result<(), String> {
    check_identifier(stage).map_err(|why| format!("invalid stage name `{stage}`: {why}"))?;
    if stage.len() > STAGE_NAME_MAX {
        return Err(format!(
            "invalid stage name `{stage}`: {} characters, at most {STAGE_NAME_MAX} allowed",
            stage.len()
        ));
    }
    Ok(())
}

/// Tags every resource carries, so a lost state can still be destroyed.
pub fn tags(stack: &str, stage: &str) -> Vec<(String, String)> {
    vec![("stackctl:stack".into(), stack.into()), ("stackctl:stage".into(), stage.into())]
}

/// The path part of an execute-api SourceArn: path parameters (`{id}`, `{proxy+}`)
/// become `*`, since the ARN of a request carries the actual value.
pub fn source_arn_path(path: &str) -> String {
    path.split('/').map(|seg| if seg.starts_with('{') { "*" } else { seg }).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_arn_paths() {
        assert_eq!(source_arn_path("/search"), "/search");
        assert_eq!(source_arn_path("/cars/{id}/photos"), "/cars/*/photos");
        assert_eq!(source_arn_path("/files/{path+}"), "/files/*");
        assert_eq!(source_arn_path("/"), "/");
    }

    #[test]
    fn bucket_names_are_unique_per_account_and_region_and_bounded() {
        let a = bucket_name("car-search", "production", "results", "123456789012", "eu-central-1");
        let b = bucket_name("car-search", "production", "results", "123456789012", "us-east-1");
        let c = bucket_name("car-search", "production", "results", "210987654321", "eu-central-1");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("car-search-production-results-"), "{a}");
        assert_eq!(a.len(), bucket_name_len("car-search", "production", "results"));
        assert!(!a.contains("123456789012"));
    }

    #[test]
    fn identifiers() {
        assert!(check_identifier("search-worker").is_ok());
        assert!(check_identifier("v2").is_ok());
        for bad in ["", "Search", "2x", "a_b", "a-", "a--b", "a b"] {
            assert!(check_identifier(bad).is_err(), "{bad}");
        }
        assert!(check_stage("production").is_ok());
        assert!(check_stage(&"a".repeat(33)).is_err());
    }
}
