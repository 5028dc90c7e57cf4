//! Content digests, one definition each: the hex sha256 every hash in state and
//! plans uses, and the canonical digest of an IAM policy document.

use sha2::{Digest, Sha256};

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Digest of a policy document in canonical form (keys sorted, no whitespace),
/// so the document IAM hands back (URL-encoded, reformatted) and the one written
/// to the local cloud compare equal to the one we sent.
pub fn policy(document: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(document).decode_utf8_lossy().into_owned();
    let canonical = serde_json::from_str::<serde_json::Value>(&decoded).map(|v| v.to_string()).unwrap_or(decoded);
    sha256_hex(canonical.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_policy_digest_ignores_encoding_and_layout() {
        let v = serde_json::json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"] }] });
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        let encoded = percent_encoding::utf8_percent_encode(&pretty, percent_encoding::NON_ALPHANUMERIC).to_string();
        assert_eq!(super::policy(&v.to_string()), super::policy(&pretty));
        assert_eq!(super::policy(&pretty), super::policy(&encoded));
        assert_ne!(super::policy(&v.to_string()), super::policy("{}"));
    }
}
