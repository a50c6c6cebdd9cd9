//! Long JSON answers written as they are produced, a page at a time: `_all_docs`, `_bulk_get`
//! and the normal `_changes` feed hold one page in memory, not the whole answer.

use std::future::Future;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use crate::couch::CouchError;

/// What one page gives: rows, and either the state to fetch the next page from or the text
/// that closes the answer.
pub enum Step<St> {
    More(Vec<Value>, St),
    Last(Vec<Value>, String),
}

enum State<St> {
    Ready(St, bool),
    Closing(String),
    Done,
}

fn rows_text(rows: &[Value], mut first: bool) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    for row in rows {
        if !first {
            out.push(b',');
        }
        first = false;
        // Writing a Value to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, row);
    }
    (out, first)
}

/// Streams `head`, then the rows of `first` and of every page `next` fetches, separated by
/// commas, then the closing text of the last page. The first page is fetched by the caller,
/// so an error there is still an ordinary error answer; a later one (the database deleted
/// mid-answer, say) can only cut the connection, which the client sees as a broken answer.
pub fn json_pages<St, F, Fut>(head: String, first: Step<St>, next: F) -> Response
where
    St: Send + 'static,
    F: Fn(St) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Step<St>, CouchError>> + Send + 'static,
{
    let (rows, state) = match first {
        Step::More(rows, st) => (rows, State::Ready(st, true)),
        Step::Last(rows, tail) => (rows, State::Closing(tail)),
    };
    let (text, still_first) = rows_text(&rows, true);
    let state = match state {
        State::Ready(st, _) => State::Ready(st, still_first),
        other => other,
    };
    let mut opening = head.into_bytes();
    opening.extend(text);
    let rest = futures::stream::unfold((state, next), |(state, next)| async move {
        match state {
            State::Done => None,
            State::Closing(tail) => Some((Ok(Bytes::from(tail)), (State::Done, next))),
            State::Ready(st, first) => match next(st).await {
                Ok(Step::More(rows, st)) => {
                    let (text, first) = rows_text(&rows, first);
                    Some((Ok(Bytes::from(text)), (State::Ready(st, first), next)))
                }
                Ok(Step::Last(rows, tail)) => {
                    let (mut text, _) = rows_text(&rows, first);
                    text.extend(tail.into_bytes());
                    Some((Ok(Bytes::from(text)), (State::Done, next)))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a streamed answer was cut off");
                    Some((
                        Err(std::io::Error::other(e.to_string())),
                        (State::Done, next),
                    ))
                }
            },
        }
    });
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(opening)) })
        .chain(rest);
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}

use futures::StreamExt;
