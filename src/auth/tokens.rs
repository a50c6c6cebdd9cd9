//! API tokens for the KV API: `ckv_<id>_<secret>`, scoped to namespaces (or all of them) and to
//! read or write, optionally expiring. The store keeps the id, the scope and a SHA-256 of the
//! secret (the secret is 32 random bytes, so a plain hash is enough); the token is shown once,
//! when it is made. Tokens are listed without secrets and revoked by id; every request reads
//! the token's record, so a revocation holds at once on every node.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use couchkv_adapters::StoreExt;
use couchkv_adapters::{DynStore, ListOptions, Store, StoreError};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::crypto::random_bytes;

/// Where tokens live: the system namespace, under this prefix.
const PREFIX: &str = "token/";

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScope {
    pub id: String,
    pub name: String,
    /// The namespaces it reaches; empty for all of them.
    pub namespaces: Vec<String>,
    pub write: bool,
    /// Seconds since the epoch it stops working at, if ever.
    pub expires: Option<u64>,
    /// Seconds since the epoch it was made at.
    pub created: u64,
}

impl TokenScope {
    /// What a listing shows of a token: everything but its secret (which is not stored).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "namespaces": self.namespaces,
            "write": self.write,
            "created": self.created,
            "expires": self.expires,
        })
    }

    pub fn reaches(&self, ns: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == ns)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What a new token may do.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub name: String,
    pub namespaces: Vec<String>,
    pub write: bool,
    /// Seconds since the epoch it stops working at.
    pub expires: Option<u64>,
}

impl NewToken {
    /// From the admin API's request, `{name, namespaces?: [id], write: bool | read: true,
    /// expires_in?: seconds}`, `now` in seconds since the epoch; what is wrong with it, otherwise.
    pub fn from_json(req: &serde_json::Value, now: u64) -> Result<Self, &'static str> {
        use serde_json::Value;
        let name = req["name"].as_str().ok_or("name is required")?;
        let namespaces: Vec<String> = match &req["namespaces"] {
            Value::Null => Vec::new(),
            v => serde_json::from_value(v.clone())
                .map_err(|_| "namespaces must be an array of ids")?,
        };
        let write = match (req.get("write"), req.get("read")) {
            (Some(Value::Bool(w)), _) => *w,
            (None, Some(Value::Bool(true))) => false,
            _ => return Err("give the token a scope: \"write\": true, or \"read\": true"),
        };
        let expires = match req.get("expires_in") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|n| *n > 0)
                    .and_then(|n| now.checked_add(n))
                    .ok_or("expires_in must be a positive number of seconds")?,
            ),
        };
        Ok(NewToken {
            name: name.to_owned(),
            namespaces,
            write,
            expires,
        })
    }
}

/// The API tokens of one store, kept in its system namespace: what the HTTP layer holds instead
/// of the store. Clones share the store.
#[derive(Clone)]
pub struct ApiTokens {
    store: DynStore,
    system_ns: String,
}

impl ApiTokens {
    pub fn new(store: DynStore, system_ns: impl Into<String>) -> Self {
        Self {
            store,
            system_ns: system_ns.into(),
        }
    }
    /// [`create`] on this store.
    pub async fn create(&self, new: &NewToken, now: u64) -> Result<String, StoreError> {
        create(self.store.as_ref(), &self.system_ns, new, now).await
    }
    /// [`verify`] on this store.
    pub async fn verify(&self, token: &str, now: u64) -> Result<Option<TokenScope>, StoreError> {
        verify(self.store.as_ref(), &self.system_ns, token, now).await
    }
    /// [`list`] on this store.
    pub async fn list(&self) -> Result<Vec<TokenScope>, StoreError> {
        list(self.store.as_ref(), &self.system_ns).await
    }
    /// [`revoke`] on this store.
    pub async fn revoke(&self, id: &str) -> Result<bool, StoreError> {
        revoke(self.store.as_ref(), &self.system_ns, id).await
    }
}

/// Makes a token and returns it (the only time its secret exists outside the client). `now`
/// is in seconds since the epoch.
pub async fn create(
    store: &dyn Store,
    system_ns: &str,
    new: &NewToken,
    now: u64,
) -> Result<String, StoreError> {
    let id = hex(&random_bytes::<8>());
    let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let record = json!({
        "name": new.name,
        "namespaces": new.namespaces,
        "write": new.write,
        "created": now,
        "expires": new.expires,
        "sha256": hex(&Sha256::digest(secret.as_bytes())),
    });
    let key = format!("{PREFIX}{id}");
    // 64 random bits of id: a clash is a broken random source, not bad luck.
    if !store
        .put_if_absent(system_ns, &key, record.to_string().into())
        .await?
    {
        return Err(StoreError::Backend(format!("token id {id} is taken")));
    }
    Ok(format!("ckv_{id}_{secret}"))
}

fn valid_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn scope_of(id: &str, v: &Value) -> TokenScope {
    TokenScope {
        id: id.to_owned(),
        name: v["name"].as_str().unwrap_or_default().to_owned(),
        namespaces: v["namespaces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        write: v["write"].as_bool().unwrap_or(false),
        expires: v["expires"].as_u64(),
        created: v["created"].as_u64().unwrap_or(0),
    }
}

/// The scope of a valid, unexpired token at `now` (seconds); `None` for anything else.
pub async fn verify(
    store: &dyn Store,
    system_ns: &str,
    token: &str,
    now: u64,
) -> Result<Option<TokenScope>, StoreError> {
    let Some((id, secret)) = token.strip_prefix("ckv_").and_then(|t| t.split_once('_')) else {
        return Ok(None);
    };
    if !valid_id(id) {
        return Ok(None);
    }
    let Some(rec) = store.get(system_ns, &format!("{PREFIX}{id}")).await? else {
        return Ok(None);
    };
    let Ok(v) = serde_json::from_slice::<Value>(&rec.value) else {
        return Ok(None);
    };
    let want = v["sha256"].as_str().unwrap_or_default();
    let got = hex(&Sha256::digest(secret.as_bytes()));
    // Compare digests of the digests: constant-time enough for equal-length hex strings.
    let same = want.len() == got.len()
        && want
            .bytes()
            .zip(got.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Ok(None);
    }
    let scope = scope_of(id, &v);
    if scope.expires.is_some_and(|e| e <= now) {
        return Ok(None);
    }
    Ok(Some(scope))
}

/// Every token, by id, without secrets.
pub async fn list(store: &dyn Store, system_ns: &str) -> Result<Vec<TokenScope>, StoreError> {
    let mut out = Vec::new();
    let mut opts = ListOptions {
        prefix: PREFIX.to_owned(),
        values: true,
        ..ListOptions::default()
    };
    loop {
        let page = match store.list(system_ns, &opts).await {
            Ok(page) => page,
            // No system namespace yet: no token was ever made.
            Err(StoreError::NamespaceNotFound(_)) => return Ok(out),
            Err(e) => return Err(e),
        };
        for e in &page.entries {
            let id = e.key.trim_start_matches(PREFIX);
            if let Some(v) = e
                .value
                .as_ref()
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            {
                out.push(scope_of(id, &v));
            }
        }
        match page.entries.last() {
            Some(last) if page.more => {
                opts.start = std::ops::Bound::Excluded(last.key.clone());
            }
            _ => return Ok(out),
        }
    }
}

/// Revokes a token by id; `false` when there is no such token.
pub async fn revoke(store: &dyn Store, system_ns: &str, id: &str) -> Result<bool, StoreError> {
    if !valid_id(id) {
        return Ok(false);
    }
    let key = format!("{PREFIX}{id}");
    match store.get(system_ns, &key).await {
        Ok(Some(_)) => {}
        Ok(None) | Err(StoreError::NamespaceNotFound(_)) => return Ok(false),
        Err(e) => return Err(e),
    }
    store
        .batch(system_ns, couchkv_adapters::Batch::new().delete(key))
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use couchkv_adapters::{MemoryStore, Namespaces};

    #[tokio::test]
    async fn create_and_verify() {
        let store = MemoryStore::new();
        store.create_namespace("sys", "sys").await.unwrap();
        let new = NewToken {
            name: "ci".into(),
            namespaces: vec!["ns1".into()],
            write: true,
            expires: Some(2_000),
        };
        let t = create(&store, "sys", &new, 1_000).await.unwrap();
        let scope = verify(&store, "sys", &t, 1_000).await.unwrap().unwrap();
        assert_eq!((scope.name.as_str(), scope.write), ("ci", true));
        assert!(scope.reaches("ns1") && !scope.reaches("ns2"));
        // A changed secret, a changed id, garbage: nothing.
        let (head, _) = t.split_at(21); // `ckv_`, 16 hex digits, `_`
        for bad in [
            format!("{head}wrong"),
            t.replacen("ckv_", "ckv_0", 1),
            "nope".into(),
            String::new(),
        ] {
            assert_eq!(
                verify(&store, "sys", &bad, 1_000).await.unwrap(),
                None,
                "{bad}"
            );
        }
        // Only the hash is stored.
        let rec = store
            .get("sys", &format!("token/{}", scope.id))
            .await
            .unwrap()
            .unwrap();
        let secret = &t[21..];
        assert!(!String::from_utf8_lossy(&rec.value).contains(secret));
        // It expires, is listed without its secret, and is gone once revoked.
        assert_eq!(verify(&store, "sys", &t, 2_000).await.unwrap(), None);
        let listed = list(&store, "sys").await.unwrap();
        assert_eq!(listed, vec![scope.clone()]);
        assert!(!listed[0].to_json().to_string().contains(secret));
        assert!(revoke(&store, "sys", &scope.id).await.unwrap());
        assert!(!revoke(&store, "sys", &scope.id).await.unwrap());
        assert_eq!(verify(&store, "sys", &t, 1_000).await.unwrap(), None);
        assert!(list(&store, "sys").await.unwrap().is_empty());
    }
}
