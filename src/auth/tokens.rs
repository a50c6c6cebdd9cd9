//! API tokens for the KV API: `ckv_<id>_<secret>`, scoped to namespaces (or all of them) and to
//! read or write. The store keeps the id, the scope and a SHA-256 of the secret (the secret is
//! 32 random bytes, so a plain hash is enough); the token is shown once, when it is made.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use couchkv_adapters::{Store, StoreError};
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
}

impl TokenScope {
    pub fn reaches(&self, ns: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == ns)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Makes a token and returns it (the only time its secret exists outside the client).
pub async fn create(
    store: &dyn Store,
    system_ns: &str,
    name: &str,
    namespaces: Vec<String>,
    write: bool,
) -> Result<String, StoreError> {
    let id = hex(&random_bytes::<8>());
    let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let record = json!({
        "name": name,
        "namespaces": namespaces,
        "write": write,
        "sha256": hex(&Sha256::digest(secret.as_bytes())),
    });
    let key = format!("{PREFIX}{id}");
    // 64 random bits of id: a clash is a broken random source, not bad luck.
    if !couchkv_adapters::put_if_absent(store, system_ns, &key, record.to_string().into()).await? {
        return Err(StoreError::Backend(format!("token id {id} is taken")));
    }
    Ok(format!("ckv_{id}_{secret}"))
}

/// The scope of a valid token; `None` for anything else.
pub async fn verify(
    store: &dyn Store,
    system_ns: &str,
    token: &str,
) -> Result<Option<TokenScope>, StoreError> {
    let Some((id, secret)) = token.strip_prefix("ckv_").and_then(|t| t.split_once('_')) else {
        return Ok(None);
    };
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
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
    Ok(Some(TokenScope {
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
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use couchkv_adapters::MemoryStore;

    #[tokio::test]
    async fn create_and_verify() {
        let store = MemoryStore::new();
        store.create_namespace("sys", "sys").await.unwrap();
        let t = create(&store, "sys", "ci", vec!["ns1".into()], true)
            .await
            .unwrap();
        let scope = verify(&store, "sys", &t).await.unwrap().unwrap();
        assert_eq!((scope.name.as_str(), scope.write), ("ci", true));
        assert!(scope.reaches("ns1") && !scope.reaches("ns2"));
        // A changed secret, a changed id, garbage: nothing.
        let (head, _) = t.rsplit_once('_').unwrap();
        for bad in [
            format!("{head}_wrong"),
            t.replacen("ckv_", "ckv_0", 1),
            "nope".into(),
            String::new(),
        ] {
            assert_eq!(verify(&store, "sys", &bad).await.unwrap(), None, "{bad}");
        }
        // Only the hash is stored.
        let rec = store
            .get("sys", &format!("token/{}", scope.id))
            .await
            .unwrap()
            .unwrap();
        let secret = t.rsplit_once('_').unwrap().1;
        assert!(!String::from_utf8_lossy(&rec.value).contains(secret));
    }
}
