//! Attachments read and written on their own routes.

use super::*;

pub(super) fn md5_digest(data: &[u8]) -> String {
    format!("md5-{}", B64.encode(Md5::digest(data)))
}

/// The attachment digests a stored body refers to.
pub(super) fn digests_of(body: &Value) -> Vec<String> {
    body.get("_attachments")
        .and_then(Value::as_object)
        .map(|a| {
            a.values()
                .filter_map(|v| v.get("digest").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A stored body's attachments as `(digest, length)`.
pub(super) fn attachment_sizes(body: &Value) -> Vec<(String, u64)> {
    body.get("_attachments")
        .and_then(Value::as_object)
        .map(|a| {
            a.values()
                .filter_map(|v| {
                    let digest = v.get("digest").and_then(Value::as_str)?;
                    let len = v.get("length").and_then(Value::as_u64).unwrap_or(0);
                    Some((digest.to_owned(), len))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Db {
    pub async fn get_attachment(
        &self,
        id: &str,
        name: &str,
        rev: Option<&Rev>,
    ) -> Result<AttachmentData> {
        let meta = self.meta(id).await?.ok_or_else(CouchError::missing)?;
        let rev = match rev {
            Some(r) => r.clone(),
            None => match meta.tree.winner() {
                Some((w, false)) => w,
                _ => return Err(CouchError::missing()),
            },
        };
        let body = self.body(id, &rev).await?.ok_or_else(CouchError::missing)?;
        let att = body
            .get("_attachments")
            .and_then(|a| a.get(name))
            .ok_or_else(|| CouchError::not_found("Document is missing attachment"))?;
        let digest = att["digest"].as_str().unwrap_or_default().to_owned();
        let data = self
            .inner
            .atts
            .get(att_sub(id, &digest))
            .await?
            .ok_or_else(|| CouchError::internal("attachment data lost"))?;
        Ok(AttachmentData {
            content_type: att["content_type"]
                .as_str()
                .unwrap_or("application/octet-stream")
                .to_owned(),
            digest,
            data,
        })
    }

    /// Adds or replaces one attachment (`data: Some`) or removes it (`None`), as a new revision.
    pub async fn update_attachment(
        &self,
        id: &str,
        name: &str,
        rev: Option<Rev>,
        data: Option<(String, Bytes)>,
        ctx: Option<&WriteCtx>,
    ) -> Result<WriteResult> {
        check_doc_id(id)?;
        check_attachment_name(name)?;
        let mut doc = match &rev {
            Some(r) => {
                let meta = self.meta(id).await?.ok_or_else(CouchError::conflict)?;
                if !meta.tree.is_leaf(r) {
                    return Err(CouchError::conflict());
                }
                let body = self.body(id, r).await?.ok_or_else(CouchError::conflict)?;
                let mut doc = self
                    .render(id, r, &meta, body, &DocOptions::default())
                    .await?;
                doc.as_object_mut().map(|m| m.shift_remove("_deleted"));
                doc
            }
            None => {
                if data.is_none() {
                    return Err(CouchError::conflict());
                }
                json!({"_id": id})
            }
        };
        let atts = doc
            .as_object_mut()
            .ok_or_else(|| CouchError::internal("corrupt body"))?
            .entry("_attachments")
            .or_insert_with(|| json!({}));
        match data {
            Some((content_type, bytes)) => {
                atts[name] = json!({"content_type": content_type, "data": B64.encode(&bytes)});
            }
            None => {
                if atts
                    .as_object_mut()
                    .and_then(|a| a.shift_remove(name))
                    .is_none()
                {
                    return Err(CouchError::not_found("Document is missing attachment"));
                }
            }
        }
        let mut res = self.bulk_docs_as(vec![doc], true, ctx).await?;
        match res.pop() {
            Some(WriteResult::Err { error, .. }) => Err(error),
            Some(ok) => Ok(ok),
            None => Err(CouchError::internal("no result")),
        }
    }

    // ---- _security ----
}
