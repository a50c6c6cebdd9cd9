//! The SQL store against SQLite natively (rusqlite, an in-memory database per case): the same
//! engine a Durable Object's storage runs, so the store's SQL is checked here as well as inside
//! workerd (`tests/js/edge.test.mjs`).

use std::sync::Mutex;

use couchkv_adapters::conformance::run_all;
use couchkv_adapters::{SqlExec, SqlStore, SqlValue, StoreError};
use rusqlite::types::Value;

struct Sqlite(Mutex<rusqlite::Connection>);

fn to_sql(v: &SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(n) => Value::Integer(*n),
        SqlValue::Text(s) => Value::Text(s.clone()),
        SqlValue::Blob(b) => Value::Blob(b.clone()),
    }
}

fn from_sql(v: Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(n) => SqlValue::Integer(n),
        Value::Real(f) => SqlValue::Text(f.to_string()),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqlExec for Sqlite {
    fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StoreError> {
        let conn = self.0.lock().unwrap();
        let mut stmt = conn.prepare(sql).map_err(backend)?;
        let n = stmt.column_count();
        let params: Vec<Value> = params.iter().map(to_sql).collect();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(backend)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(backend)? {
            let mut cols = Vec::with_capacity(n);
            for i in 0..n {
                cols.push(from_sql(row.get::<_, Value>(i).map_err(backend)?));
            }
            out.push(cols);
        }
        Ok(out)
    }

    fn transaction(
        &self,
        work: &mut dyn FnMut() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.exec("SAVEPOINT batch", &[])?;
        match work() {
            Ok(()) => self.exec("RELEASE batch", &[]).map(drop),
            Err(e) => {
                self.exec("ROLLBACK TO batch", &[])?;
                self.exec("RELEASE batch", &[])?;
                Err(e)
            }
        }
    }
}

fn open() -> SqlStore<Sqlite> {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    // A Durable Object's SQLite takes at most 2 MB a string, BLOB or row: so does this one.
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, 2_000_000)
        .unwrap();
    SqlStore::open(Sqlite(Mutex::new(conn))).unwrap()
}

#[tokio::test]
async fn sql_store_conformance() {
    run_all(|| async { open() }).await;
}

/// The limit above is real: a 3 MB BLOB in one row is refused, so the 25 MiB case of the suite
/// passes only because the store keeps large values in parts.
#[test]
fn rows_are_limited_as_in_a_durable_object() {
    let store = open();
    let three_mb = SqlValue::Blob(vec![7u8; 3_000_000]);
    let r = store_sql(&store).exec("SELECT length(?)", &[three_mb]);
    assert!(r.is_err(), "{r:?}");
}

fn store_sql(store: &SqlStore<Sqlite>) -> &Sqlite {
    store.executor()
}
