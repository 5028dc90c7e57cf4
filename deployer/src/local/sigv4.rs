//! SigV4 verification for the local Invoke API (S3's requests are verified by
//! s3s). The canonical request is rebuilt by `aws-sigv4`, the crate the AWS SDKs
//! sign with, from exactly the headers the caller says it signed; the result is
//! compared in constant time. Verification runs in two halves so that nothing
//! is read from an unauthenticated caller: [`Authorization::parse`] checks the
//! header (known key, credential scope, clock skew) before the body is read,
//! [`Authorization::verify`] the signature once the bounded body is in.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings, UriPathNormalizationMode};
use aws_sigv4::sign::v4;
use subtle::ConstantTimeEq;

/// AWS refuses a request signed more than 15 minutes before or after its clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Why a request is not authenticated; each maps to the error AWS answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No SigV4 `Authorization` header at all.
    Missing,
    /// A malformed header, or one that names an unknown access key.
    UnknownKey,
    /// Wrong scope, date, skew or signature.
    BadSignature(String),
}

impl AuthError {
    /// (HTTP status, `x-amzn-ErrorType`, message), as the Lambda API answers.
    pub fn answer(&self) -> (u16, &'static str, String) {
        match self {
            AuthError::Missing => (403, "MissingAuthenticationTokenException", "Missing Authentication Token".into()),
            AuthError::UnknownKey => (403, "UnrecognizedClientException", "The security token included in the request is invalid.".into()),
            AuthError::BadSignature(m) => (403, "InvalidSignatureException", m.clone()),
        }
    }
}

/// The parsed `Authorization` header of a SigV4 request.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub access_key: String,
    scope_date: String,
    pub region: String,
    pub service: String,
    signed_headers: Vec<String>,
    signature: String,
    /// The request's `x-amz-date`.
    time: SystemTime,
}

fn header<'a>(headers: &'a hyper::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `20261125T101010Z` → a time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(s, format).ok()?.assume_utc();
    let secs = u64::try_from(t.unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

impl Authorization {
    /// Parse and check everything but the signature itself: the header's shape,
    /// that `known(access_key)` holds, the credential scope (`{date}/{region}/
    /// {service}/aws4_request`, its date that of `x-amz-date`, region and service
    /// as expected) and the clock skew.
    pub fn parse(headers: &hyper::HeaderMap, region: &str, service: &str, known: impl Fn(&str) -> bool, now: SystemTime) -> Result<Authorization, AuthError> {
        let Some(value) = header(headers, "authorization") else { return Err(AuthError::Missing) };
        let Some(rest) = value.strip_prefix("AWS4-HMAC-SHA256 ") else { return Err(AuthError::UnknownKey) };
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else { return Err(AuthError::UnknownKey) };
        let parts: Vec<&str> = credential.split('/').collect();
        let [access_key, scope_date, scope_region, scope_service, terminator] = parts.as_slice() else { return Err(AuthError::UnknownKey) };
        if access_key.is_empty() || !known(access_key) {
            return Err(AuthError::UnknownKey);
        }
        let bad = |m: String| Err(AuthError::BadSignature(m));
        let Some(amz_date) = header(headers, "x-amz-date") else { return bad("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into()) };
        let Some(time) = parse_amz_date(amz_date) else { return bad(format!("X-Amz-Date {amz_date} is not in the basic ISO 8601 format YYYYMMDD'T'HHMMSS'Z'.")) };
        if *terminator != "aws4_request" || amz_date.get(..8) != Some(*scope_date) || *scope_service != service || *scope_region != region {
            return bad(format!("Credential should be scoped to a valid date, region {region} and service {service}: {}/{scope_region}/{scope_service}/{terminator}", amz_date.get(..8).unwrap_or("")));
        }
        let skew = now.duration_since(time).unwrap_or_else(|e| e.duration());
        if skew > MAX_SKEW {
            return bad(format!("Signature expired: {amz_date} is more than 15 minutes away from the server's time."));
        }
        let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
        if !signed_headers.iter().any(|h| h == "host") || signed_headers.iter().any(|h| h.is_empty() || h.to_ascii_lowercase() != *h) {
            return bad("SignedHeaders must list host and lowercase header names.".into());
        }
        let hex64 = signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex64 {
            return bad("The request signature we calculated does not match the signature you provided.".into());
        }
        Ok(Authorization {
            access_key: (*access_key).to_owned(),
            scope_date: (*scope_date).to_owned(),
            region: (*scope_region).to_owned(),
            service: (*scope_service).to_owned(),
            signed_headers,
            signature: signature.to_ascii_lowercase(),
            time,
        })
    }

    /// Recompute the signature with the key's `secret` over the method, the path
    /// and query as received, the signed headers and the body's sha256, and
    /// compare it with the caller's in constant time.
    pub fn verify(&self, secret: &str, method: &str, path_and_query: &str, headers: &hyper::HeaderMap, body: &[u8]) -> Result<(), AuthError> {
        let mismatch = || AuthError::BadSignature("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".into());
        let mut signed: Vec<(&str, &str)> = Vec::new();
        for name in &self.signed_headers {
            if name == "x-amz-date" {
                continue; // aws-sigv4 writes it from the time
            }
            let values: Vec<&str> = headers.get_all(name.as_str()).iter().filter_map(|v| v.to_str().ok()).collect();
            let [value] = values.as_slice() else { return Err(mismatch()) };
            signed.push((name.as_str(), value));
        }
        let host = signed.iter().find(|(k, _)| *k == "host").map(|(_, v)| *v).ok_or_else(mismatch)?;
        let uri = format!("http://{host}{path_and_query}");
        let payload = sha2_hex(body);
        let request = SignableRequest::new(method, uri, signed.into_iter(), SignableBody::Precomputed(payload)).map_err(|_| mismatch())?;
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Double;
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        settings.signature_location = SignatureLocation::Headers;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
        settings.excluded_headers = Some(Vec::new());
        let identity = aws_credential_types::Credentials::new(&self.access_key, secret, None, None, "local").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(self.time)
            .settings(settings)
            .build()
            .map_err(|_| mismatch())?
            .into();
        let output = sign(request, &params).map_err(|_| mismatch())?;
        // The header set aws-sigv4 signed must be the caller's exactly.
        let ours = output.output().headers().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.to_owned()).unwrap_or_default();
        let wanted_headers = format!("SignedHeaders={}", self.signed_headers.join(";"));
        if !ours.contains(&wanted_headers) || !ours.contains(&format!("/{}/", self.scope_date)) {
            return Err(mismatch());
        }
        if bool::from(output.signature().as_bytes().ct_eq(self.signature.as_bytes())) { Ok(()) } else { Err(mismatch()) }
    }
}

fn sha2_hex(body: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sign a request as the AWS SDK does (aws-sigv4 with the Lambda settings).
    fn signed(key: &str, secret: &str, region: &str, time: SystemTime, body: &[u8]) -> hyper::HeaderMap {
        let request = SignableRequest::new(
            "POST",
            "http://127.0.0.1:4000/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aw/invocations",
            [("host", "127.0.0.1:4000"), ("x-amz-invocation-type", "Event")].into_iter(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let identity = aws_credential_types::Credentials::new(key, secret, None, None, "t").into();
        let params = v4::SigningParams::builder().identity(&identity).region(region).name("lambda").time(time).settings(SigningSettings::default()).build().unwrap().into();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut h = hyper::HeaderMap::new();
        h.insert("host", "127.0.0.1:4000".parse().unwrap());
        h.insert("x-amz-invocation-type", "Event".parse().unwrap());
        for (k, v) in instructions.headers() {
            h.insert(hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    const PATH: &str = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aw/invocations";

    #[test]
    fn a_genuine_signature_verifies_and_every_alteration_fails() {
        let now = SystemTime::now();
        let h = signed("K", "secret", "us-east-1", now, b"{}");
        let auth = Authorization::parse(&h, "us-east-1", "lambda", |k| k == "K", now).unwrap();
        assert_eq!(auth.verify("secret", "POST", PATH, &h, b"{}"), Ok(()));
        // Another body, secret, method, path or signed header value: refused.
        assert!(auth.verify("secret", "POST", PATH, &h, b"{ }").is_err());
        assert!(auth.verify("other", "POST", PATH, &h, b"{}").is_err());
        assert!(auth.verify("secret", "PUT", PATH, &h, b"{}").is_err());
        assert!(auth.verify("secret", "POST", &PATH.replace("%3Aw/", "%3Ax/"), &h, b"{}").is_err());
        let mut altered = h.clone();
        altered.insert("x-amz-invocation-type", "RequestResponse".parse().unwrap());
        assert!(auth.verify("secret", "POST", PATH, &altered, b"{}").is_err());
        // A forged signature with a real key id.
        let mut forged = h.clone();
        let a = h["authorization"].to_str().unwrap();
        let sig = a.rsplit("Signature=").next().unwrap();
        forged.insert("authorization", a.replace(sig, &"0".repeat(64)).parse().unwrap());
        let auth = Authorization::parse(&forged, "us-east-1", "lambda", |k| k == "K", now).unwrap();
        assert!(matches!(auth.verify("secret", "POST", PATH, &forged, b"{}"), Err(AuthError::BadSignature(_))));
        forged.insert("authorization", a.replace(sig, "0000").parse().unwrap());
        assert!(matches!(Authorization::parse(&forged, "us-east-1", "lambda", |k| k == "K", now), Err(AuthError::BadSignature(_))));
    }

    #[test]
    fn the_header_is_checked_before_any_body() {
        let now = SystemTime::now();
        let h = signed("K", "secret", "us-east-1", now, b"");
        assert_eq!(Authorization::parse(&hyper::HeaderMap::new(), "us-east-1", "lambda", |_| true, now).unwrap_err(), AuthError::Missing);
        assert_eq!(Authorization::parse(&h, "us-east-1", "lambda", |k| k == "OTHER", now).unwrap_err(), AuthError::UnknownKey);
        assert!(matches!(Authorization::parse(&h, "eu-west-1", "lambda", |_| true, now), Err(AuthError::BadSignature(m)) if m.contains("scoped")));
        assert!(matches!(Authorization::parse(&h, "us-east-1", "s3", |_| true, now), Err(AuthError::BadSignature(m)) if m.contains("scoped")));
        let later = now + Duration::from_secs(16 * 60);
        assert!(matches!(Authorization::parse(&h, "us-east-1", "lambda", |_| true, later), Err(AuthError::BadSignature(m)) if m.contains("expired")));
        let earlier = now - Duration::from_secs(16 * 60);
        assert!(matches!(Authorization::parse(&h, "us-east-1", "lambda", |_| true, earlier), Err(AuthError::BadSignature(m)) if m.contains("expired")));
        assert!(Authorization::parse(&h, "us-east-1", "lambda", |_| true, now + Duration::from_secs(14 * 60)).is_ok());
    }
}
