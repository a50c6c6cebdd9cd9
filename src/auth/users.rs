//! `_users` documents: the rules a user document is written by, and the per-user
//! database that comes and goes with it.

use super::*;

impl Auth {
    /// The user document, if the user exists.
    pub(super) async fn user_doc(&self, name: &str) -> Result<Option<Value>> {
        self.stored_user(&format!("{USER_PREFIX}{name}")).await
    }

    pub(super) fn roles_of(doc: &Value) -> Vec<String> {
        doc.get("roles")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Turns a user document a client sends into the one stored: checks who may write it,
    /// replaces `password` by its hash. `current` is the stored document, if any.
    pub async fn prepare_user_doc(
        &self,
        user: &UserCtx,
        id: &str,
        mut doc: Value,
        current: Option<&Value>,
    ) -> Result<Value> {
        let Some(name) = id.strip_prefix(USER_PREFIX) else {
            return Err(CouchError::doc_validation(
                "user document ids start with org.couchdb.user:",
            ));
        };
        let deleting = doc.get("_deleted").and_then(Value::as_bool) == Some(true);
        let is_self = user.name.as_deref() == Some(name);
        // Who may write at all.
        match (user.is_admin(), is_self, current.is_some()) {
            (true, _, _) => {}
            (false, true, true) => {}
            (false, _, false)
                if !deleting && user.name.is_none() && self.config.signup == Signup::Open => {}
            (false, _, false) if !deleting && is_self && self.config.signup == Signup::Open => {}
            _ => return Err(deny(user)),
        }
        if deleting {
            return Ok(doc);
        }
        if doc.get("name").and_then(Value::as_str) != Some(name) {
            return Err(CouchError::doc_validation(
                "doc.name must be the name in the id",
            ));
        }
        if doc.get("type").and_then(Value::as_str) != Some("user") {
            return Err(CouchError::doc_validation("doc.type must be user"));
        }
        if name.is_empty() || name.starts_with('_') {
            return Err(CouchError::doc_validation(
                "user names may not be empty or start with _",
            ));
        }
        let roles = match doc.get("roles") {
            Some(Value::Array(r)) if r.iter().all(Value::is_string) => r.clone(),
            _ => {
                return Err(CouchError::doc_validation(
                    "doc.roles must be an array of strings",
                ))
            }
        };
        if !user.is_admin() {
            let before = current
                .and_then(|c| c.get("roles"))
                .cloned()
                .unwrap_or(json!([]));
            if Value::Array(roles) != before {
                return Err(CouchError::forbidden("Only _admin may set roles"));
            }
        }
        let obj = doc
            .as_object_mut()
            .ok_or_else(|| CouchError::bad_request("Document must be a JSON object"))?;
        // The hash and its cost come from the server only: a client that could choose them
        // could choose what every login for this name costs.
        for k in crypto::HASH_FIELDS {
            obj.shift_remove(*k);
        }
        match obj.shift_remove("password") {
            Some(Value::String(p)) => {
                let iterations = self.config.pbkdf2_iterations;
                let fields = self
                    .runtime
                    .blocking(move || PasswordHash::new(&p, iterations))
                    .await
                    .ok_or_else(|| CouchError::internal("password hashing failed"))?
                    .to_fields();
                if let Value::Object(f) = fields {
                    obj.extend(f);
                }
            }
            Some(_) => return Err(CouchError::doc_validation("password must be a string")),
            None => {
                // Keep the stored hash when a user document is rewritten without a password;
                // a new user without one has no password (and cannot log in).
                if let Some(cur) = current {
                    for k in crypto::HASH_FIELDS {
                        if let Some(v) = cur.get(*k) {
                            obj.insert((*k).to_owned(), v.clone());
                        }
                    }
                }
            }
        }
        Ok(doc)
    }

    /// After a user document was written: make its database on creation (or when it is
    /// missing), or on deletion delete it (or take the user out of it). Idempotent.
    pub async fn after_user_write(&self, id: &str, created: bool, deleted: bool) -> Result<()> {
        let Some(name) = id.strip_prefix(USER_PREFIX) else {
            return Ok(());
        };
        let db_name = user_db_name(name);
        if deleted {
            if self.config.delete_user_dbs {
                match self.couch.delete_db(&db_name).await {
                    Ok(()) => {}
                    Err(e) if e.is(ErrorKind::NotFound) => {}
                    Err(e) => return Err(e),
                }
            } else if let Ok(db) = self.couch.db(&db_name).await {
                let mut sec = db.security().await?;
                sec.admin_names.retain(|n| n != name);
                sec.member_names.retain(|n| n != name);
                db.put_security(&sec).await?;
            }
            return Ok(());
        }
        // Made with the user; and remade by any later write of the user's document if it is
        // missing (a failure after the user's commit, or an admin who deleted it), so the two
        // cannot stay out of step.
        let missing = match self.couch.db(&db_name).await {
            Ok(_) => false,
            Err(e) if e.is(ErrorKind::NotFound) => true,
            Err(e) => return Err(e),
        };
        if created || missing {
            match self.couch.create_db(&db_name).await {
                Ok(())
                | Err(CouchError {
                    kind: ErrorKind::Exists,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
            let db = self.couch.db(&db_name).await?;
            db.put_security(&Security {
                admin_names: vec![name.to_owned()],
                member_names: vec![name.to_owned()],
                ..Security::default()
            })
            .await?;
        }
        Ok(())
    }

    /// The stored user document (for `prepare_user_doc`), if any.
    pub async fn stored_user(&self, id: &str) -> Result<Option<Value>> {
        let db = self.couch.db(USERS_DB).await?;
        let opts = DocOptions {
            with_password_hash: true,
            ..DocOptions::default()
        };
        match db.get(id, &opts).await {
            Ok(doc) => Ok(Some(doc)),
            Err(e) if e.is(ErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
