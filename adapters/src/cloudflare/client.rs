//! The HTTP side: requests with retries and backoff, the namespace map, writes in flight.

use super::*;

impl Inner {
    pub(super) fn open(&self) -> Result<()> {
        self.closed.check()
    }

    pub(super) fn next_version(&self) -> u64 {
        self.version.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Sends a request, retrying 429, 5xx and unanswered ones. `build` makes each attempt. The
    /// outer error is the transport's (or a closed store); the inner one the service's answer.
    pub(super) async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<std::result::Result<reqwest::Response, Failure>> {
        let mut attempt = 0;
        loop {
            self.open()?;
            let sent = build(&self.http)
                .header(AUTHORIZATION, self.auth.clone())
                .send()
                .await;
            let retry_after = match sent {
                Ok(resp) if resp.status().is_success() => return Ok(Ok(resp)),
                Ok(resp) => {
                    let status = resp.status();
                    let transient =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !transient || attempt >= self.retries {
                        return Ok(Err(failure(resp).await));
                    }
                    resp.headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(60)))
                }
                Err(e) if (e.is_connect() || e.is_timeout()) && attempt < self.retries => None,
                Err(e) => return Err(backend(e)),
            };
            let wait = retry_after.unwrap_or(self.backoff * 2u32.saturating_pow(attempt));
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// [`Inner::send`] with the service's refusal as a store error.
    pub(super) async fn fetch(
        &self,
        ns: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<reqwest::Response> {
        self.send(build).await?.map_err(|f| f.into_error(ns))
    }

    /// A request whose answer is the envelope; returns its result and result_info.
    pub(super) async fn call<T: serde::de::DeserializeOwned>(
        &self,
        ns: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<(Option<T>, ResultInfo)> {
        let resp = self.fetch(ns, build).await?;
        let body = resp.bytes().await.map_err(backend)?;
        let env: Envelope<T> = serde_json::from_slice(&body).map_err(|e| {
            StoreError::Backend(format!("Cloudflare answered an unexpected body: {e}"))
        })?;
        Ok((env.result, env.result_info.unwrap_or_default()))
    }

    /// Every namespace of the account, fetched afresh into the id map.
    pub(super) async fn refresh(&self) -> Result<HashMap<String, Remote>> {
        let mut all = HashMap::new();
        for page in 1.. {
            let url = format!(
                "{}?page={page}&per_page={NAMESPACES_PER_PAGE}&order=id&direction=asc",
                self.root
            );
            let (list, _) = self.call::<Vec<CfNamespace>>("", |c| c.get(&url)).await?;
            let list = list.unwrap_or_default();
            let n = list.len();
            for cf in list {
                let (id, title) = decode_title(&cf.id, &cf.title);
                all.insert(
                    id,
                    Remote {
                        cf_id: cf.id,
                        title,
                    },
                );
            }
            if n < NAMESPACES_PER_PAGE {
                break;
            }
        }
        let mut map = self.namespaces.write().unwrap_or_else(|p| p.into_inner());
        *map = all.clone();
        Ok(all)
    }

    /// The service's namespace behind a store id, refreshing the map on a miss.
    pub(super) async fn remote(&self, ns: &str) -> Result<Remote> {
        self.open()?;
        if let Some(r) = self
            .namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(ns)
        {
            return Ok(r.clone());
        }
        self.refresh()
            .await?
            .remove(ns)
            .ok_or_else(|| StoreError::NamespaceNotFound(ns.to_owned()))
    }

    pub(super) fn forget(&self, ns: &str) {
        self.namespaces
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ns);
    }

    /// Maps a NamespaceNotFound from the service to a forgotten map entry.
    pub(super) fn checked<T>(&self, ns: &str, r: Result<T>) -> Result<T> {
        if let Err(StoreError::NamespaceNotFound(_)) = r {
            self.forget(ns);
        }
        r
    }

    pub(super) fn begin_write(&self, ns: &str) -> WriteGuard<'_> {
        let mut w = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let state = w.entry(ns.to_owned()).or_default();
        state.0 += 1;
        state.1 += 1;
        WriteGuard {
            inner: self,
            ns: ns.to_owned(),
        }
    }

    pub(super) fn write_state(&self, ns: &str) -> (u64, u64) {
        let w = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        w.get(ns).copied().unwrap_or_default()
    }
}
