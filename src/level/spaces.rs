//! Level databases of their own, one per name: where a layer above keeps data that must not
//! share a lock with the rest (couch gives each CouchDB database one, on stores whose
//! namespaces are independent).

use async_trait::async_trait;
use couchkv_adapters::StoreError;

use super::{KvLevel, LevelDb, Result};
use crate::kv::{Kv, KvError};

/// Makes, opens and removes named level databases.
#[async_trait]
pub trait Spaces: Send + Sync {
    /// Makes the space `name`, empty. Making one that exists is not an error (a crash may have
    /// left it behind before its owner recorded it; names are never reused, so it is empty).
    async fn create(&self, name: &str) -> Result<()>;
    /// A handle on the space `name`, opened.
    async fn open(&self, name: &str) -> Result<LevelDb>;
    /// Removes the space and everything in it; removing one that is gone is not an error.
    async fn remove(&self, name: &str) -> Result<()>;
}

/// Spaces as namespaces of one store, each with a [`KvLevel`] on it; namespace ids are
/// `prefix ‖ name`.
pub struct NamespaceSpaces {
    kv: Kv,
    prefix: String,
}

impl NamespaceSpaces {
    pub fn new(kv: Kv, prefix: &str) -> Self {
        Self {
            kv,
            prefix: prefix.to_owned(),
        }
    }

    fn id(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

#[async_trait]
impl Spaces for NamespaceSpaces {
    async fn create(&self, name: &str) -> Result<()> {
        let id = self.id(name);
        match self.kv.store().create_namespace(&id, &id).await {
            Ok(_) | Err(StoreError::NamespaceIdTaken(_)) => Ok(()),
            Err(e) => Err(KvError::from(e).into()),
        }
    }

    async fn open(&self, name: &str) -> Result<LevelDb> {
        LevelDb::opened(KvLevel::new(self.kv.namespace(&self.id(name)), "")).await
    }

    async fn remove(&self, name: &str) -> Result<()> {
        match self.kv.store().delete_namespace(&self.id(name)).await {
            Ok(()) | Err(StoreError::NamespaceNotFound(_)) => Ok(()),
            Err(e) => Err(KvError::from(e).into()),
        }
    }
}
