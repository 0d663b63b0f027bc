//! API key material: the token format, its hash and scopes.
//!
//! A token is `evk_<id>_<secret>`:
//!
//! - `evk_` marks it as an Evident key, so secret scanners and people can
//!   tell a leaked one at a glance;
//! - `<id>` is 16 lowercase hex characters (8 random bytes): the key's
//!   public name, shown in `evident api-key list` and in logs, and the
//!   primary key the server looks the key up by;
//! - `<secret>` is 32 random bytes (256 bits) from the operating system,
//!   base64url without padding (43 characters, RFC 4648 §5).
//!
//! Only SHA-256 of the whole token is stored; the token itself is shown
//! once, when the key is issued, and can never be recovered from the
//! database. A request is authenticated by taking the id out of the token
//! ([`key_id`]), reading that one key with its tenant's status
//! ([`Store::find_api_key`]), and comparing hashes in constant time
//! ([`token_matches`]); then the key must be unrevoked, its tenant active,
//! and its scopes must cover the request.
//!
//! # Why SHA-256 and not a slow password hash
//!
//! bcrypt, scrypt and Argon2 are slow on purpose: they make each guess at
//! a *low-entropy* secret, a password a person chose, expensive for
//! someone who stole the hashes. Our secrets are 256 bits drawn at random,
//! so there is nothing to guess: finding a token from its SHA-256 means a
//! preimage search over 2^256 candidates, which no work factor makes any
//! harder in practice. A slow hash would instead cost tens of milliseconds
//! of CPU on every request the server authenticates, handing anyone who
//! sends requests with made-up tokens a cheap way to exhaust it.
//!
//! [`Store::find_api_key`]: evident_store::Store::find_api_key

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use evident_core::ErrorCode;
use evident_store::{ApiKeyRecord, NewApiKey, Store, StoreError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every token starts with this.
pub const PREFIX: &str = "evk_";

/// Random bytes in a key id (16 hex characters).
const ID_BYTES: usize = 8;
/// Random bytes in a secret (43 base64url characters).
const SECRET_BYTES: usize = 32;
/// Characters of the id.
const ID_LEN: usize = ID_BYTES * 2;
/// Characters of the secret: ⌈32 × 8 / 6⌉.
const SECRET_LEN: usize = 43;
/// Characters of a whole token.
const TOKEN_LEN: usize = PREFIX.len() + ID_LEN + 1 + SECRET_LEN;

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Append entries to the tenant's logs.
    Append,
    /// Read entries, checkpoints, tiles and receipts of the tenant's logs.
    Read,
    /// Run verification of the tenant's logs.
    Verify,
    /// Administer the tenant.
    Admin,
}

impl Scope {
    /// Every scope, in this order.
    pub const ALL: [Scope; 4] = [Scope::Append, Scope::Read, Scope::Verify, Scope::Admin];

    /// The scope's name: `append`, `read`, `verify` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Append => "append",
            Scope::Read => "read",
            Scope::Verify => "verify",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ApiKeyError;

    /// Exactly one of the lowercase names.
    fn from_str(s: &str) -> Result<Self, ApiKeyError> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| bad_scopes(s, "unknown scope; expected append, read, verify or admin"))
    }
}

/// Why key material was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// A scope list that is empty, names an unknown scope or names one
    /// twice.
    #[error("bad scopes {list:?}: {reason}")]
    BadScopes {
        /// What was given (its first 64 characters).
        list: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl ErrorCode for ApiKeyError {
    fn code(&self) -> &'static str {
        match self {
            ApiKeyError::BadScopes { .. } => "api_key.bad_scopes",
        }
    }
}

fn bad_scopes(list: &str, reason: &'static str) -> ApiKeyError {
    ApiKeyError::BadScopes {
        list: list.chars().take(64).collect(),
        reason,
    }
}

/// Parses a comma-separated scope list such as `append,read,verify`, in
/// the order given. Spaces around a name are ignored; an empty list, an
/// empty or unknown name, or a name given twice is
/// [`ApiKeyError::BadScopes`].
pub fn parse_scopes(list: &str) -> Result<Vec<Scope>, ApiKeyError> {
    if list.trim().is_empty() {
        return Err(bad_scopes(list, "no scope given"));
    }
    let mut out = Vec::new();
    for name in list.split(',') {
        let name = name.trim();
        if name.is_empty() {
            return Err(bad_scopes(list, "empty scope name"));
        }
        let scope = name.parse::<Scope>().map_err(|_| {
            bad_scopes(
                list,
                "unknown scope; expected append, read, verify or admin",
            )
        })?;
        if out.contains(&scope) {
            return Err(bad_scopes(list, "a scope is named twice"));
        }
        out.push(scope);
    }
    Ok(out)
}

/// A newly issued key: the only moment its token exists outside the
/// client. `Debug` leaves the token out, so the key can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedKey {
    /// The key's public id.
    pub id: String,
    /// The whole token, `evk_<id>_<secret>`: give it to the client once.
    pub token: String,
    /// The key as stored.
    pub record: ApiKeyRecord,
}

impl fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedKey")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .field("record", &self.record)
            .finish()
    }
}

/// A fresh key: its id, its token and the token's hash.
///
/// # Panics
///
/// If the operating system cannot supply random bytes. `getrandom` waits
/// for the kernel's generator to be seeded, so this means no generator at
/// all, and issuing a key without one must not go ahead.
pub fn generate() -> (String, String, [u8; 32]) {
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id).expect("the operating system supplies random bytes");
    getrandom::fill(&mut secret).expect("the operating system supplies random bytes");
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let token = format!("{PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = hash_token(&token);
    (id, token, hash)
}

/// The id part of a well-formed token: `evk_`, 16 lowercase hex
/// characters, `_`, and 43 characters of canonical unpadded base64url
/// that decode to 32 bytes. `None` for anything else, whatever the input.
pub fn key_id(token: &str) -> Option<&str> {
    if token.len() != TOKEN_LEN {
        return None;
    }
    let rest = token.strip_prefix(PREFIX)?;
    let id = rest.get(..ID_LEN)?;
    let secret = rest.get(ID_LEN..)?.strip_prefix('_')?;
    if !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    // The engine refuses padding, other alphabets and non-zero trailing
    // bits, so each secret has exactly one spelling.
    match URL_SAFE_NO_PAD.decode(secret) {
        Ok(bytes) if bytes.len() == SECRET_BYTES => Some(id),
        _ => None,
    }
}

/// SHA-256 of the whole token: what the store keeps.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `token` hashes to `stored`, compared in constant time.
pub fn token_matches(stored: &[u8; 32], token: &str) -> bool {
    let hash = hash_token(token);
    stored[..].ct_eq(&hash[..]).into()
}

/// Generates a key for `tenant` with `scopes` and stores its hash.
///
/// The tenant must exist ([`StoreError::TenantNotFound`] otherwise); a
/// suspended tenant may be given keys, which work once it is resumed.
pub fn issue(
    store: &mut dyn Store,
    tenant: &str,
    scopes: &[Scope],
    now: &str,
) -> Result<IssuedKey, StoreError> {
    let (id, token, hash) = generate();
    let names: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let record = store.insert_api_key(&NewApiKey {
        id: &id,
        tenant,
        scopes: &names,
        key_hash: &hash,
        now,
    })?;
    Ok(IssuedKey { id, token, record })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use evident_store::TenantStatus;
    use evident_store::sqlite::SqliteStore;

    use super::*;

    const NOW: &str = "2025-01-02T03:04:05.000006Z";

    /// A well-formed token made by hand, not by [`generate`].
    const TOKEN: &str = "evk_0123456789abcdef_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    #[test]
    fn generated_tokens_have_the_documented_format() {
        let (id, token, hash) = generate();
        assert_eq!(token.len(), 64, "{token}");
        assert_eq!(id.len(), 16);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{id}"
        );
        let secret = token.strip_prefix(&format!("evk_{id}_")).unwrap();
        assert_eq!(secret.len(), 43);
        assert!(
            secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{secret}"
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
        assert_eq!(key_id(&token), Some(id.as_str()));
        assert_eq!(hash, hash_token(&token));
        let (id2, token2, _) = generate();
        assert_ne!(id, id2);
        assert_ne!(token, token2);
    }

    #[test]
    fn key_id_takes_a_hand_made_token_apart() {
        // The secret is bytes 0..32, base64url without padding.
        let secret: Vec<u8> = (0..32).collect();
        assert_eq!(&TOKEN[21..], URL_SAFE_NO_PAD.encode(&secret));
        assert_eq!(key_id(TOKEN), Some("0123456789abcdef"));
    }

    #[test]
    fn key_id_refuses_garbage_without_panicking() {
        let secret = &TOKEN[21..];
        let mut bad: Vec<String> = [
            "",
            "evk_",
            "evk__",
            "evk_0123456789abcdef_",
            "EVK_0123456789abcdef_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
            "evx_0123456789abcdef_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
            "evk_0123456789ABCDEF_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
            "evk_0123456789abcdeg_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
            "evk_0123456789abcdef-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
            // Standard base64's '+' and '/' are not base64url.
            "evk_0123456789abcdef_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd+h8",
            "evk_0123456789abcdef_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd/h8",
            // Non-zero trailing bits: another spelling of the same bytes.
            "evk_0123456789abcdef_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9",
            // Padding.
            "evk_0123456789abcdef_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh=",
            "evk_0123456789abcdef_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "evk_0123456789abcde_fAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
            "evk_é123456789abcde_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
            "evk_0123456789abcdef_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHé",
            "evk_0123456789abcdef_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\u{0}h8",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        bad.push(format!(" {TOKEN}"));
        bad.push(format!("{TOKEN}\n"));
        bad.push(format!("Bearer {TOKEN}"));
        bad.push(format!("evk_0123456789abcdef_{secret}{secret}"));
        // Every cut of the token, and a token of the right length with a
        // two- or three-byte character at every position, so that every
        // slice the parser takes lands inside one at some point.
        for i in 0..TOKEN.len() {
            bad.push(TOKEN[..i].to_owned());
            for c in ["é", "€"] {
                if i + c.len() <= TOKEN.len() {
                    let mut s = TOKEN.to_owned();
                    s.replace_range(i..i + c.len(), c);
                    assert_eq!(s.len(), TOKEN.len());
                    bad.push(s);
                }
            }
        }
        for b in &bad {
            assert_eq!(key_id(b), None, "{b:?}");
        }
    }

    /// FIPS 180-2, appendix B.1: SHA-256("abc").
    #[test]
    fn hash_token_is_sha256_of_the_text() {
        assert_eq!(
            hash_token("abc"),
            [
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
                0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
                0xf2, 0x00, 0x15, 0xad,
            ]
        );
    }

    #[test]
    fn token_matches_only_its_own_hash() {
        let stored = hash_token(TOKEN);
        assert!(token_matches(&stored, TOKEN));
        let mut other = TOKEN.to_owned();
        other.replace_range(63.., "9");
        for t in [
            "",
            "abc",
            other.as_str(),
            &TOKEN[..63],
            &format!("{TOKEN} "),
        ] {
            assert!(!token_matches(&stored, t), "{t:?}");
        }
        assert!(!token_matches(&[0; 32], TOKEN));
    }

    #[test]
    fn scopes_parse_strictly() {
        assert_eq!(
            parse_scopes("append,read,verify").unwrap(),
            [Scope::Append, Scope::Read, Scope::Verify]
        );
        assert_eq!(
            parse_scopes(" admin , read").unwrap(),
            [Scope::Admin, Scope::Read]
        );
        for bad in [
            "",
            " ",
            ",",
            "append,",
            ",append",
            "append,,read",
            "Append",
            "write",
            "read,read",
            "read, read",
            "append;read",
            "append read",
        ] {
            let e = parse_scopes(bad).unwrap_err();
            assert_eq!(e.code(), "api_key.bad_scopes", "{bad:?}");
        }
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), s);
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!("verify".parse::<Scope>().map(Scope::as_str), Ok("verify"));
        assert_eq!(
            "".parse::<Scope>().unwrap_err().code(),
            "api_key.bad_scopes"
        );
    }

    #[test]
    fn issue_stores_only_the_hash_and_hides_the_token() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        store.migrate_up().unwrap();
        store.create_tenant("acme", NOW).unwrap();
        let issued = issue(&mut store, "acme", &[Scope::Append, Scope::Read], NOW).unwrap();
        assert_eq!(key_id(&issued.token), Some(issued.id.as_str()));
        assert_eq!(
            issued.record,
            ApiKeyRecord {
                id: issued.id.clone(),
                tenant: "acme".to_owned(),
                scopes: vec!["append".to_owned(), "read".to_owned()],
                key_hash: hash_token(&issued.token),
                created_at: NOW.to_owned(),
                revoked_at: None,
            }
        );
        let (found, status) = store.find_api_key(&issued.id).unwrap().unwrap();
        assert_eq!((&found, status), (&issued.record, TenantStatus::Active));
        assert!(token_matches(&found.key_hash, &issued.token));

        let shown = format!("{issued:?}");
        let secret = &issued.token[21..];
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains(&issued.id), "{shown}");

        let missing = issue(&mut store, "nope", &[Scope::Read], NOW).unwrap_err();
        assert_eq!(missing.code(), "tenant.not_found");
    }
}
