//! Who may reach what: the one access decision, made from what a request is about (which
//! resource, whether it writes, which database and document), not from how its path is
//! spelled. Each HTTP route says which resource it serves; this decides what it needs.

use crate::auth::{Need, USERS_DB, USER_PREFIX};

/// What a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Server-wide routes for server admins (`_all_dbs`, API tokens).
    AdminOnly,
    /// A database itself: reading its info; creating and deleting it.
    Database,
    /// A database's documents in bulk, its feeds and queries.
    Documents,
    /// A database's `_security`.
    Security,
    /// Compaction and purge.
    Maintenance,
    /// One document (its id in the path).
    Document,
    /// One attachment of a document.
    Attachment,
    /// A `_local` document.
    Local,
    /// Mango's json indexes (`_index`): kept in design documents, so writing one needs a
    /// database admin.
    Indexes,
}

/// What a request needs before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ServerAdmin,
    Db(Need),
    /// A `_users` document: the service applies the user-document rules.
    UserDoc,
}

/// The need for `resource` of database `db` (document `doc`), reading or writing.
pub fn access(resource: Resource, write: bool, db: &str, doc: Option<&str>) -> Access {
    let user_doc = db == USERS_DB && doc.is_some_and(|id| id.starts_with(USER_PREFIX));
    let design = doc.is_some_and(crate::couch::is_design_doc);
    match resource {
        Resource::AdminOnly => Access::ServerAdmin,
        // Making and deleting databases is for server admins; reading one for its members.
        Resource::Database if write => Access::ServerAdmin,
        Resource::Document if user_doc => Access::UserDoc,
        Resource::Security | Resource::Maintenance | Resource::Indexes if write => {
            Access::Db(Need::DbAdmin)
        }
        // Design documents, however the path spells their id, need a database admin to write.
        Resource::Document | Resource::Attachment if write && design => Access::Db(Need::DbAdmin),
        _ => Access::Db(Need::Member),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_follow_the_resource_not_the_path() {
        use Resource::*;
        let member = Access::Db(Need::Member);
        let db_admin = Access::Db(Need::DbAdmin);
        assert_eq!(access(AdminOnly, false, "", None), Access::ServerAdmin);
        assert_eq!(access(Database, false, "db", None), member);
        assert_eq!(access(Database, true, "db", None), Access::ServerAdmin);
        assert_eq!(access(Documents, true, "db", None), member);
        assert_eq!(access(Security, false, "db", None), member);
        assert_eq!(access(Security, true, "db", None), db_admin);
        assert_eq!(access(Maintenance, true, "db", None), db_admin);
        assert_eq!(access(Indexes, true, "db", None), db_admin);
        assert_eq!(access(Indexes, false, "db", None), member);
        assert_eq!(access(Document, true, "db", Some("_design/x")), db_admin);
        assert_eq!(access(Attachment, true, "db", Some("_design/x")), db_admin);
        assert_eq!(access(Document, false, "db", Some("_design/x")), member);
        assert_eq!(access(Document, true, "db", Some("doc")), member);
        assert_eq!(
            access(Document, true, USERS_DB, Some("org.couchdb.user:bob")),
            Access::UserDoc
        );
        // The rest of `_users` goes to `authorize`, which keeps it to server admins.
        assert_eq!(
            access(Attachment, true, USERS_DB, Some("org.couchdb.user:bob")),
            member
        );
    }
}
