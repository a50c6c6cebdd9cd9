//! The chained batch: writes queued with `put` and `del`, dropped with `clear`, applied together
//! by `write`. After `write` or `close` the batch is spent.

use bytes::Bytes;

use super::{BatchOp, ErrorCode, LevelDb, LevelError, Result};

pub struct ChainedBatch {
    db: LevelDb,
    ops: Vec<BatchOp>,
    open: bool,
}

impl ChainedBatch {
    pub(super) fn new(db: LevelDb) -> Self {
        Self {
            db,
            ops: Vec::new(),
            open: true,
        }
    }

    fn check(&self) -> Result<()> {
        if self.open {
            Ok(())
        } else {
            Err(LevelError::new(
                ErrorCode::BatchNotOpen,
                "the batch was written or closed",
            ))
        }
    }

    /// Queues a put; the key is checked now.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl Into<Bytes>) -> Result<&mut Self> {
        self.check()?;
        self.db.full_key(key.as_ref())?;
        self.ops.push(BatchOp::put(key.as_ref(), value));
        Ok(self)
    }

    /// Queues a delete; the key is checked now.
    pub fn del(&mut self, key: impl AsRef<[u8]>) -> Result<&mut Self> {
        self.check()?;
        self.db.full_key(key.as_ref())?;
        self.ops.push(BatchOp::del(key.as_ref()));
        Ok(self)
    }

    /// Drops every queued write.
    pub fn clear(&mut self) -> Result<&mut Self> {
        self.check()?;
        self.ops.clear();
        Ok(self)
    }

    /// How many writes are queued.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Applies the queued writes as one batch.
    pub async fn write(&mut self) -> Result<()> {
        self.check()?;
        self.db.check_open()?;
        self.open = false;
        self.db.batch(std::mem::take(&mut self.ops)).await
    }

    /// Discards the batch without writing.
    pub fn close(&mut self) {
        self.open = false;
        self.ops.clear();
    }
}
