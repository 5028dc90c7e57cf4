//! Search tokens: `v1.{random}.{issued-at}.{mac}`. 122 random bits make a token
//! unguessable; the HMAC (key shared by search-start and search-worker) lets the
//! worker tell a genuine token whose result is not written yet ("pending") from an
//! invented one ("unknown") without any storage write before the search starts.

use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: &str = "v1";
/// Bytes of the MAC kept in the token (128 bits).
const MAC_LEN: usize = 16;

/// A verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// Unix seconds when search-start issued it.
    pub issued_at: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not the shape of a token at all.
    Malformed,
    /// Well-formed but not signed by our key: invented or tampered with.
    BadSignature,
}

fn mac(key: &[u8], payload: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(payload.as_bytes());
    m.finalize().into_bytes()[..MAC_LEN].iter().map(|b| format!("{b:02x}")).collect()
}

/// Issue a new token at `now` (unix seconds).
pub fn issue(key: &[u8], now: u64) -> Token {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let payload = format!("{VERSION}.{random}.{now}");
    let text = format!("{payload}.{}", mac(key, &payload));
    Token { text, issued_at: now }
}

/// Check a token's shape and signature.
pub fn verify(key: &[u8], text: &str) -> Result<Token, TokenError> {
    let parts: Vec<&str> = text.split('.').collect();
    let [version, random, issued, given] = parts.as_slice() else {
        return Err(TokenError::Malformed);
    };
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if *version != VERSION || !hex(random, 32) || !hex(given, MAC_LEN * 2) || issued.is_empty() || issued.len() > 12 {
        return Err(TokenError::Malformed);
    }
    let issued_at: u64 = issued.parse().map_err(|_| TokenError::Malformed)?;
    let expected = mac(key, &format!("{version}.{random}.{issued}"));
    // Constant-time comparison: the MAC must not be guessable byte by byte.
    let diff = expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return Err(TokenError::BadSignature);
    }
    Ok(Token { text: text.to_owned(), issued_at })
}

/// The signing key from `SEARCH_TOKEN_KEY`; `None` when unset or empty.
pub fn key_from_env() -> Option<Vec<u8>> {
    std::env::var("SEARCH_TOKEN_KEY").ok().filter(|k| !k.is_empty()).map(String::into_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn issued_tokens_verify_and_carry_their_time() {
        let t = issue(b"k", 1_700_000_000);
        assert_eq!(verify(b"k", &t.text), Ok(t.clone()));
        assert_eq!(t.issued_at, 1_700_000_000);
        assert_ne!(issue(b"k", 1).text, issue(b"k", 1).text, "tokens are random");
    }

    #[test]
    fn other_keys_and_tampering_are_refused() {
        let t = issue(b"k", 1_700_000_000);
        assert_eq!(verify(b"other", &t.text), Err(TokenError::BadSignature));
        let later = t.text.replace(".1700000000.", ".1800000000.");
        assert_eq!(verify(b"k", &later), Err(TokenError::BadSignature));
        assert_eq!(verify(b"k", "1700000000"), Err(TokenError::Malformed));
        assert_eq!(verify(b"k", "../../etc/passwd"), Err(TokenError::Malformed));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics_nor_verifies(s in ".{0,200}") {
            prop_assert!(verify(b"k", &s).is_err());
        }
    }
}
