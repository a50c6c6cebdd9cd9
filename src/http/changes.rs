//! `_changes` in all four feeds, and `_db_updates` through the same machinery (a [`Feed`] reads
//! either). Live feeds subscribe to the source's watch before they read,
//! so no commit falls between the read and the wait; they wake on the store's notification, not
//! by polling. Heartbeats and timeouts are timers here, in the server layer. A client that goes
//! away drops the response body, and with it the subscription.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use futures::future::Either;
use futures::{FutureExt, Stream, StreamExt};
use serde_json::{json, Value};

use super::couch_api::{changes_filter, ChangesFilter};
use super::extract::{CouchPath, JsonBody, Params};
use super::stream::{json_pages, Step};
use super::AppState;
use crate::auth::Session;
use crate::couch::updates::DbUpdates;
use crate::couch::{ChangesOptions, ChangesPage, CouchError, Db};
use crate::level::KeyStream;
use crate::runtime::Runtime;

/// CouchDB's default `changes_timeout` and heartbeat interval.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const EVENTSOURCE_HEARTBEAT: Duration = Duration::from_secs(10);
/// The shortest heartbeat a client may ask for: shorter ones are raised to it, so a client
/// cannot make the server write to it a thousand times a second.
pub const MIN_HEARTBEAT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeedKind {
    Normal,
    Longpoll,
    Continuous,
    EventSource,
}

pub async fn changes_get(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    Extension(session): Extension<Session>,
    p: Params,
    headers: HeaderMap,
) -> Result<Response, CouchError> {
    changes(state, name, &session, p, headers, None).await
}

pub async fn changes_post(
    State(state): State<AppState>,
    CouchPath(name): CouchPath<String>,
    Extension(session): Extension<Session>,
    p: Params,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, CouchError> {
    changes(state, name, &session, p, headers, Some(body)).await
}

/// Rows of one page of a normal feed.
const NORMAL_PAGE: usize = 500;

/// What a feed reads: a database's changes, or the server's database updates.
#[async_trait::async_trait]
trait Source: Send + Sync + 'static {
    /// Rows after `opts.since` (before `opts.before`), at most `opts.limit`.
    async fn read(&self, opts: &ChangesOptions) -> Result<ChangesPage, CouchError>;
    /// Wakes on every commit to the source, from the moment of the call.
    async fn watch(&self) -> Result<KeyStream, CouchError>;
}

#[async_trait::async_trait]
impl Source for Db {
    async fn read(&self, opts: &ChangesOptions) -> Result<ChangesPage, CouchError> {
        self.changes(opts).await
    }
    async fn watch(&self) -> Result<KeyStream, CouchError> {
        Db::watch(self).await
    }
}

#[async_trait::async_trait]
impl Source for std::sync::Arc<DbUpdates> {
    async fn read(&self, opts: &ChangesOptions) -> Result<ChangesPage, CouchError> {
        let page = self
            .page(opts.since, opts.before, opts.limit, opts.descending)
            .await?;
        Ok(ChangesPage {
            results: page.results,
            last_seq: page.last_seq,
            pending: 0,
            more: false,
        })
    }
    async fn watch(&self) -> Result<KeyStream, CouchError> {
        DbUpdates::watch(self).await
    }
}

type Feed = std::sync::Arc<dyn Source>;

type NormalState = (Feed, ChangesOptions, Option<usize>);

/// One page of a normal (or descending) feed, read after the previous one.
async fn normal_page((db, mut opts, left): NormalState) -> Result<Step<NormalState>, CouchError> {
    let page_limit = left.unwrap_or(usize::MAX).min(NORMAL_PAGE);
    opts.limit = Some(page_limit);
    let page = db.read(&opts).await?;
    let left = left.map(|l| l.saturating_sub(page.results.len()));
    // The page stops short only when the feed has nothing more (a filtered page may also
    // stop at its examination bound: then there is more).
    if (page.results.len() < page_limit && !page.more) || left == Some(0) {
        let tail = format!(
            "],\"last_seq\":{},\"pending\":{}}}",
            page.last_seq, page.pending
        );
        return Ok(Step::Last(page.results, tail));
    }
    if opts.descending {
        opts.before = Some(page.last_seq);
    } else {
        opts.since = page.last_seq;
    }
    Ok(Step::More(page.results, (db, opts, left)))
}

fn parse_since(s: &str, update_seq: u64) -> Result<u64, CouchError> {
    if s == "now" {
        return Ok(update_seq);
    }
    // Seqs we hand out are numbers; accept them quoted too (`"12"`), as clients echo them.
    s.trim_matches('"')
        .parse::<u64>()
        .map_err(|_| CouchError::bad_request("Malformed sequence supplied in 'since' parameter."))
}

/// What a `_changes` request asks for, parsed from its query, headers and body.
struct ChangesRequest {
    feed: FeedKind,
    opts: ChangesOptions,
    /// The heartbeat to send while idle, if any.
    heartbeat: Option<Duration>,
    /// When the feed ends, unless a heartbeat was asked for (then it runs until the client
    /// leaves: CouchDB's rule).
    timeout: Option<Duration>,
}

impl ChangesRequest {
    /// `update_seq` is what `since=now` means.
    fn parse(
        p: &Params,
        headers: &HeaderMap,
        body: Option<&Value>,
        update_seq: u64,
    ) -> Result<(Self, ChangesFilter), CouchError> {
        let feed = match p.get("feed").unwrap_or("normal") {
            "normal" => FeedKind::Normal,
            "longpoll" => FeedKind::Longpoll,
            "continuous" => FeedKind::Continuous,
            "eventsource" => FeedKind::EventSource,
            other => return Err(CouchError::bad_request(format!("Invalid feed: {other}"))),
        };
        let last_event_id = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| p.get("last-event-id").map(str::to_owned));
        let since = match (feed, last_event_id) {
            (FeedKind::EventSource, Some(id)) => parse_since(&id, update_seq)?,
            _ => match p.get("since") {
                Some(s) => parse_since(s, update_seq)?,
                None => 0,
            },
        };
        let style = p.get("style").unwrap_or("main_only");
        if style != "main_only" && style != "all_docs" {
            return Err(CouchError::bad_request(
                "style must be main_only or all_docs",
            ));
        }
        let filter = changes_filter(p, body)?;
        let doc_ids = filter.doc_ids.clone();
        let opts = ChangesOptions {
            since,
            limit: p.number("limit")?.map(|l| l as usize),
            descending: p.flag("descending")?,
            include_docs: p.flag("include_docs")?,
            all_docs: style == "all_docs",
            conflicts: p.flag("conflicts")?,
            attachments: p.flag("attachments")?,
            doc_ids,
            filter: None,
            before: None,
        };
        let asked_heartbeat = match p.get("heartbeat") {
            None => None,
            Some("true") => Some(DEFAULT_TIMEOUT),
            Some(_) => {
                Some(Duration::from_millis(p.number("heartbeat")?.unwrap_or(0)).max(MIN_HEARTBEAT))
            }
        };
        // An event stream beats every 10 s by default (browsers and proxies drop silent
        // streams), and still ends at the timeout unless a heartbeat was asked for.
        let heartbeat = match (asked_heartbeat, feed) {
            (Some(h), _) => Some(h),
            (None, FeedKind::EventSource) => Some(EVENTSOURCE_HEARTBEAT),
            (None, _) => None,
        };
        let timeout = match p.number("timeout")? {
            Some(ms) => Duration::from_millis(ms),
            None => DEFAULT_TIMEOUT,
        };
        Ok((
            Self {
                feed,
                opts,
                heartbeat,
                timeout: asked_heartbeat.is_none().then_some(timeout),
            },
            filter,
        ))
    }
}

async fn changes(
    state: AppState,
    name: String,
    session: &Session,
    p: Params,
    headers: HeaderMap,
    body: Option<Value>,
) -> Result<Response, CouchError> {
    let db = state.couch.db(&name).await?;
    let (mut req, filter) =
        ChangesRequest::parse(&p, &headers, body.as_ref(), db.update_seq().await?)?;
    req.opts.filter = filter
        .resolve(&db, &p, &session.user, body.as_ref())
        .await?;
    feed_response(&state, std::sync::Arc::new(db), req).await
}

/// `GET /_db_updates`: databases created, updated and deleted, in every feed `_changes` has.
pub async fn db_updates(
    State(state): State<AppState>,
    p: Params,
    headers: HeaderMap,
) -> Result<Response, CouchError> {
    let updates = state.couch.updates().clone();
    // What this process wrote is recorded before it is read.
    updates.flush().await?;
    let (req, _) = ChangesRequest::parse(&p, &headers, None, updates.last_seq().await?)?;
    feed_response(&state, std::sync::Arc::new(updates), req).await
}

async fn feed_response(
    state: &AppState,
    source: Feed,
    req: ChangesRequest,
) -> Result<Response, CouchError> {
    if req.feed == FeedKind::Normal || req.opts.descending {
        let left = req.opts.limit;
        let first = normal_page((source, req.opts, left)).await?;
        return Ok(json_pages("{\"results\":[".into(), first, normal_page));
    }
    let feed = req.feed;
    let live = Live::start(state, source, req).await?;
    Ok(live_response(feed, live.frames()))
}

/// A live feed's frames as the response its feed type has.
fn live_response(feed: FeedKind, frames: impl Stream<Item = Frame> + Send + 'static) -> Response {
    let (content_type, body) = match feed {
        FeedKind::Longpoll => ("application/json", render_longpoll(frames).boxed()),
        FeedKind::Continuous => ("application/json", render_continuous(frames).boxed()),
        _ => ("text/event-stream", render_eventsource(frames).boxed()),
    };
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// What a live feed emits.
enum Frame {
    Rows(Vec<Value>),
    Heartbeat,
    /// The feed ends, at this sequence.
    End(u64),
}

struct Live {
    db: Feed,
    opts: ChangesOptions,
    watch: KeyStream,
    heartbeat: Option<Duration>,
    /// When the feed ends, in the clock's milliseconds.
    deadline: Option<u64>,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    runtime: std::sync::Arc<dyn Runtime>,
    first: Option<crate::couch::ChangesPage>,
    remaining_limit: Option<usize>,
    done: bool,
    longpoll: bool,
    /// Rows went out: a longpoll is answered.
    answered: bool,
    /// The last read stopped at its examination bound: read again before waiting.
    more: bool,
}

impl Live {
    /// Subscribes first, then reads: a commit between the two still wakes the feed.
    async fn start(state: &AppState, db: Feed, req: ChangesRequest) -> Result<Self, CouchError> {
        let watch = db.watch().await?;
        let first = db.read(&req.opts).await?;
        let clock = state.kv.clock().clone();
        let now = clock.now_millis();
        Ok(Live {
            remaining_limit: req.opts.limit,
            db,
            opts: req.opts,
            watch,
            heartbeat: req.heartbeat,
            deadline: req
                .timeout
                .map(|t| now.saturating_add(u64::try_from(t.as_millis()).unwrap_or(u64::MAX))),
            clock,
            runtime: state.runtime.clone(),
            first: Some(first),
            done: false,
            longpoll: req.feed == FeedKind::Longpoll,
            answered: false,
            more: false,
        })
    }

    fn frames(self) -> impl Stream<Item = Frame> + Send {
        futures::stream::unfold(self, |mut live| async move {
            if live.done {
                return None;
            }
            let frame = live.step().await;
            if matches!(frame, Frame::End(_)) {
                live.done = true;
            }
            Some((frame, live))
        })
    }

    /// Rows to emit from a page, or `None` to keep waiting.
    fn take(&mut self, page: crate::couch::ChangesPage) -> Option<Frame> {
        self.opts.since = page.last_seq;
        self.more = page.more;
        if page.results.is_empty() {
            return None;
        }
        if let Some(n) = &mut self.remaining_limit {
            *n = n.saturating_sub(page.results.len());
            self.opts.limit = Some(*n);
        }
        self.answered = true;
        Some(Frame::Rows(page.results))
    }

    /// Reads what came after `since`: rows to emit, the end on a failed read, or `None` to keep
    /// waiting.
    async fn read_more(&mut self) -> Option<Frame> {
        match self.db.read(&self.opts).await {
            Ok(page) => self.take(page),
            Err(_) => Some(Frame::End(self.opts.since)),
        }
    }

    fn now_millis(&self) -> u64 {
        self.clock.now_millis()
    }

    fn finished(&self) -> bool {
        self.remaining_limit == Some(0)
    }

    async fn step(&mut self) -> Frame {
        if let Some(page) = self.first.take() {
            if let Some(rows) = self.take(page) {
                return rows;
            }
        } else if (self.longpoll && self.answered) || self.finished() {
            // A longpoll answers once; a feed with a limit stops when it is reached.
            return Frame::End(self.opts.since);
        }
        // A filtered read that stopped at its bound goes on before waiting for commits.
        while self.more {
            if let Some(frame) = self.read_more().await {
                return frame;
            }
        }
        loop {
            let left = self
                .deadline
                .map(|d| Duration::from_millis(d.saturating_sub(self.now_millis())));
            let wait = match (self.heartbeat, left) {
                (Some(b), Some(d)) => b.min(d),
                (Some(b), None) => b,
                (None, Some(d)) => d,
                (None, None) => DEFAULT_TIMEOUT,
            };
            let timer = self.runtime.sleep(wait);
            match futures::future::select(self.watch.next(), timer).await {
                Either::Left((ev, _)) => {
                    match ev {
                        Some(Ok(_)) => {
                            // Several commits may have landed: take them in one read.
                            while let Some(Some(Ok(_))) = self.watch.next().now_or_never() {}
                            if let Some(frame) = self.read_more().await {
                                return frame;
                            }
                        }
                        // Fell behind: the watch is only a wake-up, so subscribe again and read
                        // (the read starts from `since`, so nothing is missed).
                        Some(Err(_)) => {
                            match self.db.watch().await {
                                Ok(w) => self.watch = w,
                                Err(_) => return Frame::End(self.opts.since),
                            }
                            if let Some(frame) = self.read_more().await {
                                return frame;
                            }
                        }
                        // The store closed: end cleanly.
                        None => return Frame::End(self.opts.since),
                    }
                }
                Either::Right(_) => {
                    if self.deadline.is_some_and(|d| self.now_millis() >= d) {
                        return Frame::End(self.opts.since);
                    }
                    return Frame::Heartbeat;
                }
            }
        }
    }
}

fn ok(b: impl Into<Bytes>) -> Result<Bytes, Infallible> {
    Ok(b.into())
}

/// Heartbeat newlines while waiting, then one JSON answer.
fn render_longpoll(
    frames: impl Stream<Item = Frame> + Send,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    let mut rows = Vec::new();
    frames.filter_map(move |f| {
        let out = match f {
            Frame::Heartbeat => Some(ok("\n")),
            Frame::Rows(r) => {
                rows.extend(r);
                None
            }
            Frame::End(last_seq) => {
                let body = json!({"results": std::mem::take(&mut rows), "last_seq": last_seq, "pending": 0});
                Some(ok(format!("{body}\n")))
            }
        };
        futures::future::ready(out)
    })
}

/// One JSON row per line, heartbeats as empty lines, `{"last_seq"}` at the end.
fn render_continuous(
    frames: impl Stream<Item = Frame> + Send,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    frames.map(|f| match f {
        Frame::Heartbeat => ok("\n"),
        Frame::Rows(rows) => {
            let mut s = String::new();
            for r in rows {
                s.push_str(&r.to_string());
                s.push('\n');
            }
            ok(s)
        }
        Frame::End(last_seq) => ok(format!("{}\n", json!({"last_seq": last_seq}))),
    })
}

/// CouchDB's event stream: `data: <row>` and `id: <seq>` per change, heartbeat events.
fn render_eventsource(
    frames: impl Stream<Item = Frame> + Send,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    frames.filter_map(|f| {
        let out = match f {
            Frame::Heartbeat => Some(ok("event: heartbeat\ndata: \n\n")),
            Frame::Rows(rows) => {
                let mut s = String::new();
                for r in rows {
                    let seq = r["seq"].clone();
                    s.push_str(&format!("data: {r}\nid: {seq}\n\n"));
                }
                Some(ok(s))
            }
            Frame::End(_) => None,
        };
        futures::future::ready(out)
    })
}
