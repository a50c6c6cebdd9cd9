//! `couchkv kv …`: wrangler's KV verbs, on a data directory (through the kv layer) or on a
//! running server (through its v4 API). Output is what wrangler prints: ids, raw values, JSON.

use std::io::Write as _;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::cli::{BulkCommand, KeyCommand, KvArgs, KvCommand, NamespaceCommand};
use crate::kv::{BulkPutItem, GetOptions, Kv, ListOptions, PutOptions};
use crate::server::{ServerError, SystemClock, UuidIds};

/// Items per bulk request: Workers KV's limit.
const BULK: usize = 10_000;

fn fail(msg: impl Into<String>) -> ServerError {
    ServerError::Io(std::io::Error::other(msg.into()))
}

enum Target {
    Local(Kv),
    Remote {
        client: reqwest::Client,
        base: String,
        auth: Option<String>,
    },
}

impl Target {
    fn remote_req(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, ServerError> {
        let Target::Remote { client, base, auth } = self else {
            return Err(fail("not a remote target"));
        };
        let mut req = client.request(method, format!("{base}{path}"));
        if let Some(a) = auth {
            req = match a.split_once(':') {
                Some((name, pw)) if !a.starts_with("ckv_") => req.basic_auth(name, Some(pw)),
                _ => req.bearer_auth(a),
            };
        }
        Ok(req)
    }

    /// A v4 call: the envelope's `result`, or its error message.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(Value, Value), ServerError> {
        let mut req = self.remote_req(method, path)?;
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| fail(e.to_string()))?;
        let v: Value = resp.json().await.map_err(|e| fail(e.to_string()))?;
        if v["success"] != true {
            return Err(fail(format!(
                "{} ({})",
                v["errors"][0]["message"], v["errors"][0]["code"]
            )));
        }
        Ok((v["result"].clone(), v["result_info"].clone()))
    }
}

fn key_path(ns: &str, key: &str) -> String {
    format!(
        "/{ns}/values/{}",
        percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
    )
}

fn read_json(path: &std::path::Path) -> Result<Value, ServerError> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| fail(format!("{}: {e}", path.display())))
}

fn progress(verb: &str, done: usize, total: usize) {
    eprint!("\r{verb}: {done}/{total}");
    if done == total {
        eprintln!();
    }
}

pub async fn run(args: KvArgs) -> Result<(), ServerError> {
    let target = match &args.url {
        Some(url) => Target::Remote {
            client: reqwest::Client::new(),
            base: format!(
                "{}/client/v4/accounts/local/storage/kv/namespaces",
                url.trim_end_matches('/')
            ),
            auth: args.token.as_ref().map(|t| t.0.clone()),
        },
        None => {
            let store: couchkv_adapters::DynStore = Arc::new(crate::server::open_redb(&args.data)?);
            Target::Local(Kv::new(store, Arc::new(SystemClock), Arc::new(UuidIds)))
        }
    };
    let out = execute(&target, args.command).await;
    if let Target::Local(kv) = &target {
        kv.store().close().await?;
    }
    out
}

async fn execute(target: &Target, command: KvCommand) -> Result<(), ServerError> {
    use reqwest::Method;
    let kv_err = |e: crate::kv::KvError| fail(e.to_string());
    match command {
        KvCommand::Namespace(NamespaceCommand::Create { title }) => {
            let id = match target {
                Target::Local(kv) => kv.create_namespace(&title).await.map_err(kv_err)?.id,
                remote => remote
                    .call(Method::POST, "", Some(json!({"title": title})))
                    .await?
                    .0["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            };
            println!("{id}");
        }
        KvCommand::Namespace(NamespaceCommand::List) => {
            let list: Vec<Value> = match target {
                Target::Local(kv) => kv
                    .list_namespaces()
                    .await
                    .map_err(kv_err)?
                    .into_iter()
                    .filter(|n| !n.id.starts_with('_'))
                    .map(|n| json!({"id": n.id, "title": n.title}))
                    .collect(),
                remote => {
                    let mut all = Vec::new();
                    for page in 1.. {
                        let (r, _) = remote
                            .call(Method::GET, &format!("?page={page}&per_page=100"), None)
                            .await?;
                        let items = r.as_array().cloned().unwrap_or_default();
                        if items.is_empty() {
                            break;
                        }
                        all.extend(items);
                    }
                    all
                }
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&list).unwrap_or_default()
            );
        }
        KvCommand::Key(KeyCommand::Put {
            key,
            value,
            namespace_id,
            metadata,
            ttl,
            expiration,
        }) => match target {
            Target::Local(kv) => {
                let opts = PutOptions {
                    expiration,
                    expiration_ttl: ttl,
                    metadata,
                };
                kv.namespace(&namespace_id)
                    .put(&key, Bytes::from(value), opts)
                    .await
                    .map_err(kv_err)?;
            }
            remote => {
                let mut item = json!({"key": key, "value": value});
                if let Some(m) = metadata {
                    item["metadata"] =
                        serde_json::from_str(&m).map_err(|e| fail(format!("metadata: {e}")))?;
                }
                if let Some(t) = ttl {
                    item["expiration_ttl"] = json!(t);
                }
                if let Some(e) = expiration {
                    item["expiration"] = json!(e);
                }
                remote
                    .call(
                        Method::PUT,
                        &format!("/{namespace_id}/bulk"),
                        Some(json!([item])),
                    )
                    .await?;
            }
        },
        KvCommand::Key(KeyCommand::Get { key, namespace_id }) => {
            let value = match target {
                Target::Local(kv) => kv
                    .namespace(&namespace_id)
                    .get(&key, &GetOptions::default())
                    .await
                    .map_err(kv_err)?
                    .map(|v| v.value),
                remote => {
                    let resp = remote
                        .remote_req(Method::GET, &key_path(&namespace_id, &key))?
                        .send()
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                    if resp.status() == 404 {
                        None
                    } else {
                        Some(resp.bytes().await.map_err(|e| fail(e.to_string()))?)
                    }
                }
            };
            match value {
                Some(v) => std::io::stdout().write_all(&v)?,
                None => return Err(fail("Value not found")),
            }
        }
        KvCommand::Key(KeyCommand::List {
            namespace_id,
            prefix,
        }) => {
            let mut keys = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let (page, next) = match target {
                    Target::Local(kv) => {
                        let r = kv
                            .namespace(&namespace_id)
                            .list(&ListOptions {
                                prefix: prefix.clone(),
                                limit: None,
                                cursor: cursor.clone(),
                            })
                            .await
                            .map_err(kv_err)?;
                        let page: Vec<Value> = r
                            .keys
                            .into_iter()
                            .map(|k| {
                                let mut v = json!({"name": k.name});
                                if let Some(e) = k.expiration {
                                    v["expiration"] = json!(e);
                                }
                                if let Some(m) = k.metadata {
                                    v["metadata"] = serde_json::from_str(&m).unwrap_or(Value::Null);
                                }
                                v
                            })
                            .collect();
                        (page, r.cursor)
                    }
                    remote => {
                        let mut q = format!(
                            "/{namespace_id}/keys?cursor={}",
                            cursor.clone().unwrap_or_default()
                        );
                        if let Some(p) = &prefix {
                            q.push_str(&format!(
                                "&prefix={}",
                                percent_encoding::utf8_percent_encode(
                                    p,
                                    percent_encoding::NON_ALPHANUMERIC
                                )
                            ));
                        }
                        let (r, info) = remote.call(Method::GET, &q, None).await?;
                        let next = info["cursor"]
                            .as_str()
                            .filter(|c| !c.is_empty())
                            .map(str::to_owned);
                        (r.as_array().cloned().unwrap_or_default(), next)
                    }
                };
                keys.extend(page);
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&keys).unwrap_or_default()
            );
        }
        KvCommand::Key(KeyCommand::Delete { key, namespace_id }) => match target {
            Target::Local(kv) => kv
                .namespace(&namespace_id)
                .delete(&key)
                .await
                .map_err(kv_err)?,
            remote => {
                remote
                    .call(Method::DELETE, &key_path(&namespace_id, &key), None)
                    .await?;
            }
        },
        KvCommand::Bulk(BulkCommand::Put { file, namespace_id }) => {
            let items = read_json(&file)?;
            let items = items
                .as_array()
                .ok_or_else(|| fail("the file must hold a JSON array"))?;
            let total = items.len();
            for (i, chunk) in items.chunks(BULK).enumerate() {
                match target {
                    Target::Local(kv) => {
                        let batch = chunk
                            .iter()
                            .map(|item| {
                                let raw = item["value"]
                                    .as_str()
                                    .ok_or_else(|| fail("value must be a string"))?;
                                let value = if item["base64"] == true {
                                    Bytes::from(
                                        B64.decode(raw).map_err(|_| fail("value is not base64"))?,
                                    )
                                } else {
                                    Bytes::from(raw.to_owned())
                                };
                                Ok(BulkPutItem {
                                    key: item["key"]
                                        .as_str()
                                        .ok_or_else(|| fail("key must be a string"))?
                                        .to_owned(),
                                    value,
                                    options: PutOptions {
                                        expiration: item["expiration"].as_i64(),
                                        expiration_ttl: item["expiration_ttl"].as_i64(),
                                        metadata: (!item["metadata"].is_null())
                                            .then(|| item["metadata"].to_string()),
                                    },
                                })
                            })
                            .collect::<Result<Vec<_>, ServerError>>()?;
                        kv.namespace(&namespace_id)
                            .bulk_put(batch)
                            .await
                            .map_err(kv_err)?;
                    }
                    remote => {
                        remote
                            .call(
                                Method::PUT,
                                &format!("/{namespace_id}/bulk"),
                                Some(Value::Array(chunk.to_vec())),
                            )
                            .await?;
                    }
                }
                progress("bulk put", (i * BULK + chunk.len()).min(total), total);
            }
        }
        KvCommand::Bulk(BulkCommand::Delete { file, namespace_id }) => {
            let items = read_json(&file)?;
            let keys: Vec<String> = items
                .as_array()
                .ok_or_else(|| fail("the file must hold a JSON array"))?
                .iter()
                .filter_map(|k| k.as_str().or_else(|| k["key"].as_str()).map(str::to_owned))
                .collect();
            let total = keys.len();
            for (i, chunk) in keys.chunks(BULK).enumerate() {
                match target {
                    Target::Local(kv) => {
                        kv.namespace(&namespace_id)
                            .bulk_delete(chunk.to_vec())
                            .await
                            .map_err(kv_err)?;
                    }
                    remote => {
                        remote
                            .call(
                                Method::POST,
                                &format!("/{namespace_id}/bulk/delete"),
                                Some(json!(chunk)),
                            )
                            .await?;
                    }
                }
                progress("bulk delete", (i * BULK + chunk.len()).min(total), total);
            }
        }
    }
    Ok(())
}
