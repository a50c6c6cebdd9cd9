//! The registry object: one per deployment, holding the catalog of databases (`_all_dbs`, which
//! names exist and their generations), `_users`, sessions, the server-wide routes and the KV
//! API — the native server's router on its own storage. The databases' documents live each in
//! their own object ([`crate::database`]); the catalog keeps only their names, generations and
//! the `_security` they were made with.
//!
//! Two internal routes serve the others: [`SESSION_PATH`], who a request's credentials say it is
//! (the same authentication as the native server's, against this object's `_users`; the front
//! asks, and remembers the answer a few seconds), and [`CATALOG_PATH`], what the catalog knows of
//! a database (its object asks, and checks again every few seconds).

use std::cell::RefCell;

use couchkv::auth::Session;
use couchkv::couch::ErrorKind;
use couchkv::http::{credentials, session_cookie};
use serde_json::Value;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::host::{peer, to_axum, Core};
use crate::route::{Asserted, Catalog, CATALOG_PATH, SESSION_PATH, UPDATED_PATH};

#[durable_object]
pub struct RegistryObject {
    state: State,
    env: Env,
    core: RefCell<Option<Core>>,
}

impl RegistryObject {
    async fn core(&self) -> Result<Core> {
        Core::of(&self.core, &self.state, &self.env).await
    }

    /// `POST /_edge/session` with the client's credentials headers: [`Asserted`], or the
    /// refusal the native server would answer (bad Basic credentials, a bad token).
    async fn session(&self, core: &Core, req: Request) -> Result<Response> {
        let mut headers = axum::http::HeaderMap::new();
        for name in ["authorization", "cookie"] {
            if let Some(v) = req.headers().get(name)? {
                if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
                    headers.insert(name, v);
                }
            }
        }
        let auth = &core.state.auth;
        let session: Session = match auth.authenticate(credentials(&headers), peer(&req)).await {
            Ok(s) => s,
            Err(e) => return render(e),
        };
        let max_age = auth.config().session_lifetime.as_secs();
        let set_cookie = (session.renewed_cookie.as_deref())
            .and_then(|c| session_cookie(c, max_age))
            .and_then(|v| v.to_str().ok().map(str::to_owned));
        Response::from_json(
            &Asserted {
                session,
                set_cookie,
            }
            .to_json(),
        )
    }

    /// `POST /_edge/catalog` with `{"db": name}`: [`Catalog`].
    async fn catalog(&self, core: &Core, mut req: Request) -> Result<Response> {
        let body: Value = req.json().await?;
        let db = body["db"].as_str().unwrap_or_default();
        let couch = &core.state.couch;
        let generation = match couch.generation(db).await {
            Ok(g) => g,
            Err(e) => return render(e),
        };
        let security = match &generation {
            None => Value::Null,
            Some(_) => match couch.db(db).await {
                Ok(h) => match h.security().await {
                    Ok(s) => s.to_json(),
                    Err(e) => return render(e),
                },
                Err(e) if e.is(ErrorKind::NotFound) => Value::Null,
                Err(e) => return render(e),
            },
        };
        let generation = if security.is_null() { None } else { generation };
        Response::from_json(
            &Catalog {
                generation,
                security,
            }
            .to_json(),
        )
    }
}

impl RegistryObject {
    /// `POST /_edge/updated` with `{"db": name}`: a database's object was written to; recorded
    /// in the `_db_updates` feed the registry holds.
    async fn updated(&self, core: &Core, mut req: Request) -> Result<Response> {
        let body: Value = req.json().await?;
        let Some(db) = body["db"].as_str() else {
            return render(couchkv::couch::CouchError::bad_request("no db"));
        };
        let updates = core.state.couch.updates();
        updates.touch(db);
        match updates.flush().await {
            Ok(()) => Response::from_json(&serde_json::json!({"ok": true})),
            Err(e) => render(e),
        }
    }
}

/// A core error in the API's own shape.
fn render(e: couchkv::couch::CouchError) -> Result<Response> {
    use axum::response::IntoResponse;
    Response::try_from(e.into_response())
}

impl DurableObject for RegistryObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            core: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let core = self.core().await?;
        match req.path().as_str() {
            SESSION_PATH => return self.session(&core, req).await,
            CATALOG_PATH => return self.catalog(&core, req).await,
            UPDATED_PATH => return self.updated(&core, req).await,
            _ => {}
        }
        core.serve(to_axum(req).await?).await
    }
}
