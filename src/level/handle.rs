//! `LevelDb`, the handle users hold: it does the shared work once (is it open, and every
//! parent of a sublevel; is the key within the limit; the sublevel prefix) and then calls the
//! implementation.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Opening,
    Open,
    Closing,
    Closed,
}

#[derive(Debug)]
pub(super) struct State(Mutex<Status>);

impl State {
    pub(super) fn new(status: Status) -> Arc<Self> {
        Arc::new(Self(Mutex::new(status)))
    }
    pub(super) fn get(&self) -> Status {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(super) fn set(&self, s: Status) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
}

/// The database handle: validation, open state and sublevel prefixes over a [`Level`].
/// Clones share everything.
#[derive(Clone)]
pub struct LevelDb {
    pub(super) level: Arc<dyn Level>,
    pub(super) prefix: Vec<u8>,
    /// The root's state first, then each sublevel's down to this one.
    pub(super) states: Vec<Arc<State>>,
}

/// The separator around sublevel names, as abstract-level uses it.
pub(super) const SEPARATOR: u8 = b'!';

impl LevelDb {
    /// A closed handle; call [`LevelDb::open`].
    pub fn new(level: impl Level + 'static) -> Self {
        Self::from_arc(Arc::new(level))
    }

    pub fn from_arc(level: Arc<dyn Level>) -> Self {
        Self {
            level,
            prefix: Vec::new(),
            states: vec![State::new(Status::Closed)],
        }
    }

    /// A handle, opened.
    pub async fn opened(level: impl Level + 'static) -> Result<Self> {
        let db = Self::new(level);
        db.open().await?;
        Ok(db)
    }

    pub fn status(&self) -> Status {
        // A sublevel is as open as its least open parent.
        self.states
            .iter()
            .map(|s| s.get())
            .find(|s| *s != Status::Open)
            .unwrap_or(Status::Open)
    }

    pub(super) fn own_state(&self) -> &Arc<State> {
        &self.states[self.states.len() - 1]
    }

    pub(super) fn is_root(&self) -> bool {
        self.states.len() == 1
    }

    /// Opens the database (the root runs the implementation's recovery). Opening an open
    /// database is a no-op; a sublevel opens only while its parent is open.
    pub async fn open(&self) -> Result<()> {
        let state = self.own_state();
        if state.get() == Status::Open {
            return Ok(());
        }
        if !self.is_root() {
            if self.states[..self.states.len() - 1]
                .iter()
                .any(|s| s.get() != Status::Open)
            {
                return Err(LevelError::not_open());
            }
            state.set(Status::Open);
            return Ok(());
        }
        state.set(Status::Opening);
        match self.level.open().await {
            Ok(()) => {
                state.set(Status::Open);
                Ok(())
            }
            Err(e) => {
                state.set(Status::Closed);
                Err(e)
            }
        }
    }

    /// Closes this handle (the root closes the implementation too). Closing twice is a no-op.
    pub async fn close(&self) -> Result<()> {
        let state = self.own_state();
        if state.get() == Status::Closed {
            return Ok(());
        }
        state.set(Status::Closing);
        let r = if self.is_root() {
            self.level.close().await
        } else {
            Ok(())
        };
        state.set(Status::Closed);
        r
    }

    pub fn supports(&self) -> Supports {
        let mut s = self.level.supports();
        s.max_key_bytes = s.max_key_bytes.map(|m| m.saturating_sub(self.prefix.len()));
        s
    }

    pub(super) fn check_open(&self) -> Result<()> {
        if self.status() == Status::Open {
            Ok(())
        } else {
            Err(LevelError::not_open())
        }
    }

    /// The absolute key, checked against the implementation's key limit.
    pub(super) fn full_key(&self, key: &[u8]) -> Result<Vec<u8>> {
        if let Some(max) = self.supports().max_key_bytes {
            if key.len() > max {
                return Err(LevelError::new(
                    ErrorCode::InvalidKey,
                    format!(
                        "a key of {} bytes exceeds this database's limit of {max}",
                        key.len()
                    ),
                ));
            }
        }
        Ok([self.prefix.as_slice(), key].concat())
    }

    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.check_open()?;
        let key = self.full_key(key.as_ref())?;
        let mut got = self.level.get_many(std::slice::from_ref(&key)).await?;
        Ok(got.pop().flatten())
    }

    pub async fn get_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>> {
        self.check_open()?;
        let keys = keys
            .iter()
            .map(|k| self.full_key(k.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.level.get_many(&keys).await
    }

    pub async fn put(&self, key: impl AsRef<[u8]>, value: impl Into<Bytes>) -> Result<()> {
        self.batch(vec![BatchOp::put(key.as_ref(), value)]).await
    }

    pub async fn del(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.batch(vec![BatchOp::del(key.as_ref())]).await
    }

    /// Applies the writes in order, all of them or (on an invalid key) none.
    pub async fn batch(&self, mut ops: Vec<BatchOp>) -> Result<()> {
        self.check_open()?;
        self.full_keys(&mut ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        self.level.batch(ops).await
    }

    /// [`LevelDb::batch`] applied only while `guard` still holds `expected` (`None`: absent);
    /// returns whether it was applied. Atomic with the check, across processes too, where the
    /// store below has conditional batches: the way several nodes update one thing safely.
    pub async fn batch_if(
        &self,
        guard: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        ops: Vec<BatchOp>,
    ) -> Result<bool> {
        (self.guarded(guard.as_ref(), expected, ops, Durability::Immediate)).await
    }

    /// [`LevelDb::batch_if`] that a crash shortly after may lose, whole, where the store can
    /// defer making it durable: for what a client redoes anyway (replication checkpoints).
    pub async fn batch_if_relaxed(
        &self,
        guard: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        ops: Vec<BatchOp>,
    ) -> Result<bool> {
        (self.guarded(guard.as_ref(), expected, ops, Durability::Relaxed)).await
    }

    async fn guarded(
        &self,
        guard: &[u8],
        expected: Option<&[u8]>,
        mut ops: Vec<BatchOp>,
        durability: Durability,
    ) -> Result<bool> {
        self.check_open()?;
        let guard = self.full_key(guard)?;
        self.full_keys(&mut ops)?;
        self.level.batch_if(&guard, expected, ops, durability).await
    }

    /// The ops' keys made full (this sublevel's prefix), each checked.
    fn full_keys(&self, ops: &mut [BatchOp]) -> Result<()> {
        for op in ops {
            let full = self.full_key(op.key())?;
            *op.key_mut() = full;
        }
        Ok(())
    }

    /// A batch built up with `put`, `del` and `clear`, applied by `write`.
    pub fn chained_batch(&self) -> ChainedBatch {
        ChainedBatch::new(self.clone())
    }

    /// Entries with keys and values.
    pub fn iterator(&self, opts: RangeOptions) -> Result<Entries> {
        Ok(Entries(self.iter(opts, true)?))
    }

    /// Keys only (a store that lists keys without values reads no values).
    pub fn keys(&self, opts: RangeOptions) -> Result<Keys> {
        Ok(Keys(self.iter(opts, false)?))
    }

    /// Values only.
    pub fn values(&self, opts: RangeOptions) -> Result<Values> {
        Ok(Values(self.iter(opts, true)?))
    }

    pub(super) fn iter(&self, opts: RangeOptions, values: bool) -> Result<Iter> {
        self.check_open()?;
        Ok(Iter::new(self.clone(), opts, values))
    }

    /// Deletes the keys in the range (with `limit` and `reverse`: the first `limit` of them in
    /// that direction).
    pub async fn clear(&self, opts: RangeOptions) -> Result<()> {
        self.check_open()?;
        if opts.limit.is_none() {
            return match opts.bounds(&self.prefix) {
                Some(range) => self.level.clear(&range).await,
                None => Ok(()),
            };
        }
        let mut keys = self.keys(opts)?;
        let mut ops = Vec::new();
        while let Some(k) = keys.next().await? {
            ops.push(BatchOp::Del {
                key: [self.prefix.as_slice(), &k].concat(),
            });
            if ops.len() == 1000 {
                self.level.batch(std::mem::take(&mut ops)).await?;
            }
        }
        if !ops.is_empty() {
            self.level.batch(ops).await?;
        }
        Ok(())
    }

    /// A sublevel: a database within this one under the prefix `!name!`. Names are 1 or more
    /// characters between `"` and `~` (printable ASCII without space and `!`), so no sibling's
    /// prefix is a prefix of another's and their ranges cannot overlap. Sublevels nest; the
    /// parent sees a sublevel's entries under their prefixed keys.
    pub fn sublevel(&self, name: &str) -> Result<LevelDb> {
        if name.is_empty() || !name.bytes().all(|b| (b'"'..=b'~').contains(&b)) {
            return Err(LevelError::new(
                ErrorCode::InvalidPrefix,
                format!("sublevel name {name:?} must be 1+ printable ASCII characters other than space and '!'"),
            ));
        }
        let mut prefix = self.prefix.clone();
        prefix.push(SEPARATOR);
        prefix.extend_from_slice(name.as_bytes());
        prefix.push(SEPARATOR);
        let mut states = self.states.clone();
        states.push(State::new(Status::Open));
        Ok(LevelDb {
            level: self.level.clone(),
            prefix,
            states,
        })
    }

    /// Keys under `prefix` (relative to this handle) as they change, without this handle's
    /// prefix.
    pub async fn watch(&self, prefix: impl AsRef<[u8]>) -> Result<KeyStream> {
        use futures::StreamExt;
        self.check_open()?;
        let full = [self.prefix.as_slice(), prefix.as_ref()].concat();
        let strip = self.prefix.len();
        let stream = self.level.watch(&full).await?;
        Ok(boxed_keys(
            stream.map(move |k| k.map(|k| k[strip..].to_vec())),
        ))
    }

    /// This sublevel's prefix as `ancestor` sees it: key `k` here is key `prefix ‖ k` there, so
    /// one batch of the ancestor can write into its sublevels (abstract-level's `sublevel`
    /// option of a batch). `None` when `ancestor` is not an ancestor of this handle.
    pub fn prefix_within(&self, ancestor: &LevelDb) -> Option<&[u8]> {
        self.prefix.strip_prefix(ancestor.prefix.as_slice())
    }

    /// This handle's key prefix (empty for the root).
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }
}
