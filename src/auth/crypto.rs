//! The secrets' arithmetic: PBKDF2-SHA256 password hashes in CouchDB 3.4's user-document
//! fields, HMAC-SHA256 session cookies, HS256 JWTs, random secrets. Every comparison of a
//! secret is constant-time (the MAC's own `verify`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Random bytes from the host's secure source: the operating system natively, the JS runtime's
/// `crypto.getRandomValues` inside a Worker. Every random value couchkv makes comes from here.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).unwrap_or_else(|_| {
        // No secure randomness is unrecoverable for a server that signs sessions.
        panic!("the host gave no random bytes")
    });
    b
}

/// New ids as random v4 uuids (32 lowercase hex digits): the id source of every host.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl crate::clock::IdSource for RandomIds {
    fn new_id(&self) -> String {
        random_uuid()
    }
}

/// A random (version 4) UUID as 32 lowercase hex digits.
pub fn random_uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    hex(&b)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The most PBKDF2 iterations a password check runs (about 0.4 s of a core here). Stored
/// hashes above it are not used, and the server refuses to be configured above it.
pub const MAX_PBKDF2_ITERATIONS: u32 = 2_000_000;

/// The fields of a user document that hold its password hash: written by the server only.
pub const HASH_FIELDS: &[&str] = &[
    "password_scheme",
    "pbkdf2_prf",
    "iterations",
    "salt",
    "derived_key",
    "password_sha",
];

/// A stored password: CouchDB 3.4's `pbkdf2` scheme with the SHA-256 PRF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHash {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub derived_key: Vec<u8>,
}

impl PasswordHash {
    pub fn new(password: &str, iterations: u32) -> Self {
        Self::with_salt(password, random_bytes::<16>().to_vec(), iterations)
    }

    pub fn with_salt(password: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let derived_key = derive(password, &salt, iterations);
        Self {
            iterations,
            salt,
            derived_key,
        }
    }

    pub fn verify(&self, password: &str) -> bool {
        ct_eq(
            &derive(password, &self.salt, self.iterations),
            &self.derived_key,
        )
    }

    /// The fields CouchDB 3.4 writes into a user document.
    pub fn to_fields(&self) -> Value {
        json!({
            "password_scheme": "pbkdf2",
            "pbkdf2_prf": "sha256",
            "iterations": self.iterations,
            "salt": hex(&self.salt),
            "derived_key": hex(&self.derived_key),
        })
    }

    pub fn from_fields(doc: &Value) -> Option<Self> {
        if doc.get("password_scheme")?.as_str()? != "pbkdf2"
            || doc
                .get("pbkdf2_prf")
                .and_then(Value::as_str)
                .unwrap_or("sha256")
                != "sha256"
        {
            return None;
        }
        let iterations = u32::try_from(doc.get("iterations")?.as_u64()?).ok()?;
        if !(1..=MAX_PBKDF2_ITERATIONS).contains(&iterations) {
            // Whatever is stored, no login costs more than the bound.
            return None;
        }
        Some(Self {
            iterations,
            salt: unhex(doc.get("salt")?.as_str()?)?,
            derived_key: unhex(doc.get("derived_key")?.as_str()?)?,
        })
    }
}

fn derive(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations.max(1), &mut out);
    out.to_vec()
}

/// Constant-time equality, whatever the lengths: compares MACs of both sides.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let Some(theirs) = mac(b"couchkv ct_eq", b) else {
        return false;
    };
    mac(b"couchkv ct_eq", a)
        .is_some_and(|m| m.verify_slice(&theirs.finalize().into_bytes()).is_ok())
}

fn mac(key: &[u8], data: &[u8]) -> Option<HmacSha256> {
    let mut m = HmacSha256::new_from_slice(key).ok()?;
    m.update(data);
    Some(m)
}

/// What a session cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieClaims {
    pub name: String,
    /// When it stops being accepted, in seconds.
    pub expires: u64,
    /// When the session began (kept through renewals), in seconds.
    pub issued: u64,
}

/// An `AuthSession` cookie value: `base64url(name:expiry:issued:hex(hmac))`, times in seconds
/// (hex). The MAC is keyed by the server's secret and the user's password salt, as CouchDB
/// keys it: a new password (a new salt), or a user deleted and made again, ends every session.
pub fn make_cookie(secret: &[u8], salt: &[u8], claims: &CookieClaims) -> String {
    let payload = format!("{}:{:x}:{:x}", claims.name, claims.expires, claims.issued);
    let sig = mac(&[secret, salt].concat(), payload.as_bytes())
        .map(|m| hex(&m.finalize().into_bytes()))
        .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("{payload}:{sig}"))
}

fn split_cookie(cookie: &str) -> Option<(CookieClaims, String, Vec<u8>)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cookie).ok()?).ok()?;
    let (payload, sig) = raw.rsplit_once(':')?;
    let (rest, issued) = payload.rsplit_once(':')?;
    let (name, expires) = rest.rsplit_once(':')?;
    let claims = CookieClaims {
        name: name.to_owned(),
        expires: u64::from_str_radix(expires, 16).ok()?,
        issued: u64::from_str_radix(issued, 16).ok()?,
    };
    Some((claims, payload.to_owned(), unhex(sig)?))
}

/// The user a cookie names, before its signature is checked (to find the user's salt).
pub fn cookie_user(cookie: &str) -> Option<String> {
    split_cookie(cookie).map(|(c, _, _)| c.name)
}

/// The claims of a cookie whose signature holds under this secret and salt; `None` otherwise.
pub fn check_cookie(secret: &[u8], salt: &[u8], cookie: &str) -> Option<CookieClaims> {
    let (claims, payload, sig) = split_cookie(cookie)?;
    mac(&[secret, salt].concat(), payload.as_bytes())?
        .verify_slice(&sig)
        .ok()?;
    Some(claims)
}

/// Why a JWT was refused (never echoing the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    Algorithm,
    Signature,
    Expired,
    NoSubject,
}

/// The claims of an HS256 token signed with `secret`, checked for `exp` (and `nbf`).
pub fn check_jwt(secret: &[u8], token: &str, now: u64) -> Result<Value, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(JwtError::Algorithm);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    mac(secret, format!("{h}.{p}").as_bytes())
        .ok_or(JwtError::Signature)?
        .verify_slice(&sig)
        .map_err(|_| JwtError::Signature)?;
    let claims: Value = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    match claims.get("exp").map(Value::as_u64) {
        Some(Some(exp)) if exp > now => {}
        Some(_) => return Err(JwtError::Expired),
        // Tokens must expire.
        None => return Err(JwtError::Expired),
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64) {
        if nbf > now {
            return Err(JwtError::Expired);
        }
    }
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(JwtError::NoSubject);
    }
    Ok(claims)
}

/// Signs claims as an HS256 token (for tests and tools).
pub fn make_jwt(secret: &[u8], claims: &Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let sig = mac(secret, format!("{h}.{p}").as_bytes())
        .map(|m| URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("{h}.{p}.{sig}")
}

/// A keyed digest of credentials, for the cache of verified passwords: not reversible without
/// the server's secret, so the cache holds nothing a dump could turn into a password.
pub fn credential_digest(secret: &[u8], name: &str, password: &str) -> Vec<u8> {
    mac(secret, format!("{name}\0{password}").as_bytes())
        .map(|m| m.finalize().into_bytes().to_vec())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_uuids_are_version_4() {
        let a = random_uuid();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(&a[12..13], "4");
        assert!(matches!(&a[16..17], "8" | "9" | "a" | "b"), "{a}");
        assert_ne!(a, random_uuid());
    }

    use super::*;

    #[test]
    fn passwords() {
        let h = PasswordHash::new("s3cret", 1000);
        assert!(h.verify("s3cret"));
        assert!(!h.verify("s3cret "));
        assert!(!h.verify(""));
        let back = PasswordHash::from_fields(&h.to_fields()).unwrap();
        assert_eq!(back, h);
        assert!(back.verify("s3cret"));
        assert_eq!(h.to_fields()["password_scheme"], "pbkdf2");
        assert_ne!(
            PasswordHash::new("s3cret", 1000).salt,
            h.salt,
            "salts are random"
        );
    }

    #[test]
    fn cookies() {
        let secret = b"0123456789abcdef";
        let salt = b"salt-1";
        let claims = CookieClaims {
            name: "bob".into(),
            expires: 1_000,
            issued: 400,
        };
        let c = make_cookie(secret, salt, &claims);
        assert_eq!(check_cookie(secret, salt, &c), Some(claims.clone()));
        assert_eq!(cookie_user(&c).as_deref(), Some("bob"));
        assert_eq!(check_cookie(b"another secret", salt, &c), None);
        // Another salt (a changed password) and the cookie is dead.
        assert_eq!(check_cookie(secret, b"salt-2", &c), None);
        // Tampering with the name, the expiry or the start breaks the signature.
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(&c).unwrap()).unwrap();
        for forged in [
            raw.replacen("bob", "eve", 1),
            raw.replacen(":3e8:", ":ffffff:", 1),
            raw.replacen(":190:", ":fff:", 1),
        ] {
            assert_ne!(forged, raw);
            assert_eq!(
                check_cookie(secret, salt, &URL_SAFE_NO_PAD.encode(forged)),
                None
            );
        }
        assert_eq!(check_cookie(secret, salt, "not base64 at all!"), None);
        // Names with colons survive.
        let odd = CookieClaims {
            name: "a:b".into(),
            expires: 5,
            issued: 1,
        };
        let c = make_cookie(secret, salt, &odd);
        assert_eq!(check_cookie(secret, salt, &c), Some(odd));
    }

    #[test]
    fn stored_iterations_are_bounded() {
        let mut fields = PasswordHash::new("pw", 1000).to_fields();
        assert!(PasswordHash::from_fields(&fields).is_some());
        for bad in [
            0u64,
            u64::from(MAX_PBKDF2_ITERATIONS) + 1,
            u64::from(u32::MAX),
        ] {
            fields["iterations"] = json!(bad);
            assert_eq!(PasswordHash::from_fields(&fields), None, "{bad}");
        }
    }

    #[test]
    fn jwts() {
        let secret = b"jwt secret";
        let good = make_jwt(
            secret,
            &json!({"sub": "bob", "exp": 2000, "_couchdb.roles": ["r"]}),
        );
        assert_eq!(check_jwt(secret, &good, 1000).unwrap()["sub"], "bob");
        assert_eq!(check_jwt(b"wrong", &good, 1000), Err(JwtError::Signature));
        assert_eq!(check_jwt(secret, &good, 2000), Err(JwtError::Expired));
        let no_exp = make_jwt(secret, &json!({"sub": "bob"}));
        assert_eq!(check_jwt(secret, &no_exp, 1), Err(JwtError::Expired));
        let no_sub = make_jwt(secret, &json!({"exp": 2000}));
        assert_eq!(check_jwt(secret, &no_sub, 1), Err(JwtError::NoSubject));
        // alg "none" and friends are refused whatever the signature.
        let (_, rest) = good.split_once('.').unwrap();
        let none = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#));
        assert_eq!(check_jwt(secret, &none, 1000), Err(JwtError::Algorithm));
        assert_eq!(check_jwt(secret, "a.b", 1000), Err(JwtError::Malformed));
        // A changed payload with the old signature fails.
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(json!({"sub": "admin", "exp": 2000}).to_string());
        parts[1] = &forged;
        assert_eq!(
            check_jwt(secret, &parts.join("."), 1000),
            Err(JwtError::Signature)
        );
    }
}
