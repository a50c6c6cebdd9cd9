//! A Durable Object's SQLite storage as an [`SqlExec`]: statements through `ctx.storage.sql`
//! (synchronous), batches through `ctx.storage.transactionSync` (all or nothing).

use std::cell::RefCell;

use couchkv_adapters::{SqlExec, SqlValue, StoreError};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::{SqlStorage, SqlStorageValue, Storage};

#[wasm_bindgen]
extern "C" {
    /// `ctx.storage`, for the one method workers-rs does not bind.
    #[wasm_bindgen(extends = js_sys::Object)]
    type SyncStorage;

    #[wasm_bindgen(method, catch, js_name = transactionSync)]
    fn transaction_sync(this: &SyncStorage, f: &js_sys::Function) -> Result<JsValue, JsValue>;
}

/// A Durable Object's SQLite database. Single-threaded, like the object that owns it.
pub struct DoSql {
    sql: SqlStorage,
    storage: worker::send::SendWrapper<Storage>,
}

impl DoSql {
    pub fn new(storage: Storage) -> Self {
        Self {
            sql: storage.sql(),
            storage: worker::send::SendWrapper::new(storage),
        }
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn to_js(v: &SqlValue) -> SqlStorageValue {
    match v {
        SqlValue::Null => SqlStorageValue::Null,
        SqlValue::Integer(n) => SqlStorageValue::Integer(*n),
        SqlValue::Text(s) => SqlStorageValue::String(s.clone()),
        SqlValue::Blob(b) => SqlStorageValue::Blob(b.clone()),
    }
}

fn from_js(v: SqlStorageValue) -> SqlValue {
    match v {
        SqlStorageValue::Null => SqlValue::Null,
        SqlStorageValue::Boolean(b) => SqlValue::Integer(i64::from(b)),
        SqlStorageValue::Integer(n) => SqlValue::Integer(n),
        SqlStorageValue::Float(f) => SqlValue::Text(f.to_string()),
        SqlStorageValue::String(s) => SqlValue::Text(s),
        SqlStorageValue::Blob(b) => SqlValue::Blob(b),
    }
}

impl SqlExec for DoSql {
    fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StoreError> {
        let bindings: Vec<SqlStorageValue> = params.iter().map(to_js).collect();
        let cursor = self.sql.exec(sql, bindings).map_err(backend)?;
        cursor
            .raw()
            .map(|row| Ok(row.map_err(backend)?.into_iter().map(from_js).collect()))
            .collect()
    }

    fn transaction(
        &self,
        work: &mut dyn FnMut() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // transactionSync calls the function before it returns and rolls back when it throws:
        // the work's error is kept here and the throw only carries it out.
        let failed: RefCell<Option<StoreError>> = RefCell::new(None);
        let work: &mut (dyn FnMut() -> Result<(), StoreError> + '_) = work;
        // SAFETY: the closure is called only inside `transaction_sync` below, which returns
        // before `work` and `failed` go out of scope; the closure is dropped right after.
        let work: &'static mut (dyn FnMut() -> Result<(), StoreError> + 'static) =
            unsafe { std::mem::transmute(work) };
        let failed_ref: &'static RefCell<Option<StoreError>> =
            unsafe { std::mem::transmute(&failed) };
        let body = Closure::<dyn FnMut() -> Result<JsValue, JsValue>>::new(move || match work() {
            Ok(()) => Ok(JsValue::UNDEFINED),
            Err(e) => {
                *failed_ref.borrow_mut() = Some(e);
                Err(JsValue::from_str("batch failed"))
            }
        });
        let storage: &SyncStorage = self.storage.as_raw().unchecked_ref();
        let outcome = storage.transaction_sync(body.as_ref().unchecked_ref());
        drop(body);
        match (outcome, failed.into_inner()) {
            (Ok(_), None) => Ok(()),
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(backend(format!("{e:?}"))),
        }
    }
}
