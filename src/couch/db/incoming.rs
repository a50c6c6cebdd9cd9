//! Documents as clients send them: the checks a request passes before anything is written,
//! and taking a document apart for the write path.

use super::*;

/// Fields starting with `_` that CouchDB keeps in a document's body as they are (the
/// replicator's bookkeeping).
pub(super) const KEPT_SPECIAL: &[&str] = &[
    "_replication_id",
    "_replication_state",
    "_replication_state_time",
    "_replication_state_reason",
    "_replication_stats",
];

/// Fields a document may carry that start with `_`.
pub(super) const SPECIAL: &[&str] = &[
    "_id",
    "_rev",
    "_deleted",
    "_revisions",
    "_attachments",
    "_conflicts",
    "_deleted_conflicts",
    "_local_seq",
    "_revs_info",
];

/// Checks a document id a client chose.
pub fn check_doc_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(CouchError::bad_request("Document id must not be empty"));
    }
    if id.len() > MAX_DOC_ID_BYTES {
        return Err(CouchError::bad_request(format!(
            "Document id is longer than {MAX_DOC_ID_BYTES} bytes"
        )));
    }
    if id.starts_with('_') && !id.starts_with("_design/") {
        return Err(CouchError::bad_request(
            "Only reserved document ids may start with underscore.",
        ));
    }
    Ok(())
}

/// A document as a client sent it, taken apart.
pub(super) struct Incoming {
    pub(super) id: String,
    /// As sent: local documents have `0-N` revisions, which are not tree revisions.
    pub(super) rev_raw: Option<String>,
    pub(super) deleted: bool,
    pub(super) revisions: Option<Revisions>,
    pub(super) attachments: Option<Map<String, Value>>,
    pub(super) body: Map<String, Value>,
}

/// Checks a document as a write would, without writing: the special fields, the id, `_rev`,
/// `_revisions` and `_attachments` (what the fuzz target `document` drives).
pub fn check_document(doc: Value) -> Result<()> {
    validate_document(&doc, true)
}

/// Everything about a document that can be known wrong without the database: a request with
/// one such document is refused whole, as CouchDB refuses it, before anything is written.
pub fn validate_document(doc: &Value, new_edits: bool) -> Result<()> {
    let Value::Object(map) = doc else {
        return Err(CouchError::bad_request("Document must be a JSON object"));
    };
    for k in map.keys() {
        if k.starts_with('_')
            && !SPECIAL.contains(&k.as_str())
            && !KEPT_SPECIAL.contains(&k.as_str())
        {
            return Err(CouchError::doc_validation(format!(
                "Bad special document member: {k}"
            )));
        }
    }
    let id = match map.get("_id") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(CouchError::bad_request("Document id must be a string")),
        None => None,
    };
    let local = id.is_some_and(|i| i.starts_with("_local/"));
    if let Some(id) = id.filter(|_| !local) {
        check_doc_id(id)?;
    }
    let has_rev = match map.get("_rev") {
        Some(Value::String(s)) if !local => {
            Rev::parse(s).ok_or_else(|| CouchError::bad_request("Invalid rev format"))?;
            true
        }
        Some(Value::String(_)) => true,
        Some(Value::Null) | None => false,
        Some(_) => return Err(CouchError::bad_request("Invalid rev format")),
    };
    if !matches!(
        map.get("_deleted"),
        None | Some(Value::Null | Value::Bool(_))
    ) {
        return Err(CouchError::bad_request("_deleted must be a boolean"));
    }
    let has_revisions = match map.get("_revisions") {
        // A local document has no history: its `_revisions` is dropped, whatever it says.
        Some(_) if local => false,
        Some(v) => {
            Revisions::deserialize(v)
                .ok()
                .and_then(|r| r.path(DEFAULT_REVS_LIMIT))
                .ok_or_else(|| CouchError::bad_request("Invalid _revisions"))?;
            true
        }
        None => false,
    };
    match map.get("_attachments") {
        Some(Value::Object(atts)) => {
            for (name, att) in atts {
                check_attachment_name(name)?;
                if !att.is_object() {
                    return Err(CouchError::bad_request(format!(
                        "attachment {name:?} must be an object"
                    )));
                }
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => return Err(CouchError::bad_request("_attachments must be an object")),
    }
    if !new_edits && !local && !has_rev && !has_revisions {
        return Err(CouchError::bad_request(
            "new_edits=false needs _rev or _revisions",
        ));
    }
    Ok(())
}

/// CouchDB's rule for attachment names: not empty, not starting with `_`.
pub fn check_attachment_name(name: &str) -> Result<()> {
    if name.is_empty() || name.starts_with('_') {
        return Err(CouchError::bad_request(
            "Attachment name can't start with '_'",
        ));
    }
    Ok(())
}

pub(super) fn take_incoming(
    doc: Value,
    new_edits: bool,
    generated_id: impl FnOnce() -> String,
) -> Result<Incoming> {
    validate_document(&doc, new_edits)?;
    let Value::Object(mut map) = doc else {
        return Err(CouchError::bad_request("Document must be a JSON object"));
    };
    let id = match map.shift_remove("_id") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(CouchError::bad_request("Document id must be a string")),
        None => generated_id(),
    };
    let rev_raw = match map.shift_remove("_rev") {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(_) => return Err(CouchError::bad_request("Invalid rev format")),
    };
    let deleted = match map.shift_remove("_deleted") {
        Some(Value::Bool(b)) => b,
        Some(Value::Null) | None => false,
        Some(_) => return Err(CouchError::bad_request("_deleted must be a boolean")),
    };
    let revisions = match map.shift_remove("_revisions") {
        Some(v) => Some(
            serde_json::from_value::<Revisions>(v)
                .map_err(|_| CouchError::bad_request("Invalid _revisions"))?,
        ),
        None => None,
    };
    let attachments = match map.shift_remove("_attachments") {
        Some(Value::Object(a)) => Some(a),
        Some(Value::Null) | None => None,
        Some(_) => return Err(CouchError::bad_request("_attachments must be an object")),
    };
    for k in [
        "_conflicts",
        "_deleted_conflicts",
        "_local_seq",
        "_revs_info",
    ] {
        map.shift_remove(k);
    }
    Ok(Incoming {
        id,
        rev_raw,
        deleted,
        revisions,
        attachments,
        body: map,
    })
}

impl Incoming {
    pub(super) fn rev(&self) -> Result<Option<Rev>> {
        match &self.rev_raw {
            Some(s) => Rev::parse(s)
                .map(Some)
                .ok_or_else(|| CouchError::bad_request("Invalid rev format")),
            None => Ok(None),
        }
    }
}
