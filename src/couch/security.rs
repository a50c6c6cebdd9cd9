//! CouchDB's access model as data: who a request acts as (`userCtx`) and a database's
//! `_security` (admins and members, by name and by role). Enforcement lives in the server's
//! auth layer; this is what it decides on.

use serde_json::{json, Value};

use super::{CouchError, Result};

/// The role server admins carry.
pub const ADMIN_ROLE: &str = "_admin";

/// The user a request acts as. Anonymous when `name` is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserCtx {
    pub name: Option<String>,
    pub roles: Vec<String>,
}

impl UserCtx {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "roles": self.roles})
    }
}

/// A database's `_security`: admins and members, by name and by role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    pub admin_names: Vec<String>,
    pub admin_roles: Vec<String>,
    pub member_names: Vec<String>,
    pub member_roles: Vec<String>,
}

fn strings(v: &Value, group: &str, field: &str) -> Result<Vec<String>> {
    match v.get(group).and_then(|g| g.get(field)) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_owned).ok_or_else(|| {
                    CouchError::bad_request(format!("{group}.{field} must be strings"))
                })
            })
            .collect(),
        Some(_) => Err(CouchError::bad_request(format!(
            "{group}.{field} must be an array"
        ))),
    }
}

impl Security {
    pub fn from_json(v: &Value) -> Result<Self> {
        if !v.is_object() {
            return Err(CouchError::bad_request("_security must be a JSON object"));
        }
        for part in ["admins", "members"] {
            if !(v[part].is_null() || v[part].is_object()) {
                return Err(CouchError::bad_request(format!(
                    "{part} must be a JSON object"
                )));
            }
        }
        Ok(Self {
            admin_names: strings(v, "admins", "names")?,
            admin_roles: strings(v, "admins", "roles")?,
            member_names: strings(v, "members", "names")?,
            member_roles: strings(v, "members", "roles")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "admins": {"names": self.admin_names, "roles": self.admin_roles},
            "members": {"names": self.member_names, "roles": self.member_roles},
        })
    }

    fn has(names: &[String], roles: &[String], user: &UserCtx) -> bool {
        user.name.as_ref().is_some_and(|n| names.contains(n))
            || user.roles.iter().any(|r| roles.contains(r))
    }

    pub fn is_db_admin(&self, user: &UserCtx) -> bool {
        user.is_admin() || Self::has(&self.admin_names, &self.admin_roles, user)
    }

    /// Members read and write documents. A database with no members and no admins is for
    /// server admins only (CouchDB 3's `admin_only` default).
    pub fn is_member(&self, user: &UserCtx) -> bool {
        self.is_db_admin(user) || Self::has(&self.member_names, &self.member_roles, user)
    }
}
