// The page's one way to the server: same origin, the session cookie, errors as ApiError with
// the API's own status and message (CouchDB's {error, reason}, or Cloudflare's envelope).

export class ApiError extends Error {
  constructor(status, error, reason) {
    super(reason ? `${status} ${error}: ${reason}` : `${status} ${error}`);
    this.status = status;
    this.error = error;
    this.reason = reason;
  }
}

/** Percent-encodes one path segment. */
export const seg = encodeURIComponent;

/** A document's path below its database: `_design/x` and `_local/x` keep their slash. */
export function docPath(db, id) {
  const m = /^(_design|_local)\/(.*)$/s.exec(id);
  return `/${seg(db)}/${m ? `${m[1]}/${seg(m[2])}` : seg(id)}`;
}

/** An attachment's path: a name may hold `/`, each part encoded. */
export function attPath(db, id, name) {
  return `${docPath(db, id)}/${name.split('/').map(seg).join('/')}`;
}

/**
 * Query parameters for a page of `_all_docs` or `_all_dbs` by key: `size` rows and one more (so
 * the page knows whether a next one exists), after the key `after` (itself skipped) or from
 * the key `from`.
 */
export function pageQuery(size, after, from) {
  const q = new URLSearchParams({ limit: String(size + 1) });
  if (after !== null && after !== undefined) {
    q.set('startkey', JSON.stringify(after));
    q.set('skip', '1');
  } else if (from) {
    q.set('startkey', JSON.stringify(from));
  }
  return q;
}

export const KV = '/client/v4/accounts/local/storage/kv/namespaces';

/**
 * A request. `body` is sent as JSON unless it is a string, Blob, FormData or ArrayBuffer.
 * `as`: 'json' (default), 'text' (the raw text, so numbers and field order stay as sent),
 * 'blob', or 'response'.
 */
export async function call(method, path, body, { as = 'json', headers = {} } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    if (typeof body === 'string' || body instanceof Blob || body instanceof FormData || body instanceof ArrayBuffer) {
      init.body = body;
      if (typeof body === 'string' && !init.headers['Content-Type']) init.headers['Content-Type'] = 'application/json';
    } else {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
  }
  const res = await fetch(path, init);
  if (!res.ok) throw await failure(res);
  if (as === 'response') return res;
  if (as === 'text') return res.text();
  if (as === 'blob') return res.blob();
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

async function failure(res) {
  let body = null;
  try { body = JSON.parse(await res.text()); } catch { /* not JSON */ }
  if (body && Array.isArray(body.errors) && body.errors.length) {
    return new ApiError(res.status, `code ${body.errors[0].code}`, body.errors[0].message);
  }
  if (body && body.error) return new ApiError(res.status, body.error, body.reason);
  return new ApiError(res.status, res.statusText || 'error');
}

/** The KV API's `result` of a call (its envelope checked). */
export async function kv(method, path, body, opts) {
  const out = await call(method, `${KV}${path}`, body, opts);
  return opts?.as ? out : out?.result;
}

/** The hex of a name's UTF-8 bytes: a user's database is `userdb-<hex>`. */
export function userdb(name) {
  return `userdb-${[...new TextEncoder().encode(name)].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** JSON text re-indented token by token: numbers, escapes and field order stay exactly as sent. */
export function pretty(text) {
  let out = '';
  let depth = 0;
  let i = 0;
  const pad = () => `\n${'  '.repeat(depth)}`;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      let k = i + 1;
      while (/\s/.test(text[k] ?? '')) k += 1;
      if (text[k] === close) { out += c + close; i = k + 1; continue; }
      depth += 1;
      out += c + pad();
    } else if (c === '}' || c === ']') {
      depth -= 1;
      out += pad() + c;
    } else if (c === ',') {
      out += `,${pad()}`;
    } else if (c === ':') {
      out += ': ';
    } else if (!/\s/.test(c)) {
      out += c;
    }
    i += 1;
  }
  return out;
}
