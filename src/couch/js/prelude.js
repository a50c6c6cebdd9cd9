// couchkv's JavaScript side of design documents, the same for every engine: CouchDB's function
// environment (emit, log, isArray, toJSON, sum, require) and the four operations the server
// asks for. Arguments come in and results go out as JSON text, so an engine only has to
// evaluate this file, then call __init once per design document and __call per request.
"use strict";
var __ddoc = null;
var __rows = null;
var __logs = [];
var __compiled = Object.create(null);

function emit(key, value) {
  if (__rows === null) throw new Error("emit() is only for map functions");
  __rows.push([key === undefined ? null : key, value === undefined ? null : value]);
}
function log(message) {
  if (__logs.length < 100) __logs.push(typeof message === "string" ? message : JSON.stringify(message));
}
function isArray(o) { return Array.isArray(o); }
function toJSON(o) { return JSON.stringify(o); }
function sum(values) {
  var s = 0;
  for (var i = 0; i < values.length; i++) s += values[i];
  return s;
}

// A thrown engine limit (time, memory, stack) must end the call, never be swallowed as one
// document's error.
// QuickJS throws null when it is out of memory even for the error object.
function __fatal(e) {
  return e === null || typeof e === "object" && (e.name === "InternalError" ||
    (e.name === "RangeError" && /stack|memory|allocation|limit/i.test(String(e.message))));
}

function __describe(e) {
  if (e && typeof e === "object" && e.message !== undefined) return String(e.name || "Error") + ": " + String(e.message);
  try { return JSON.stringify(e); } catch (x) { return String(e); }
}

// CommonJS modules kept in the design document: `require('lib/x')` evaluates the string at
// that path with module, exports and a require of its own (relative to its folder).
function __require(root, dir, cache) {
  return function require(name) {
    var parts = String(name).split("/");
    var path = parts[0] === "." || parts[0] === ".." ? dir.slice() : [];
    for (var i = 0; i < parts.length; i++) {
      var p = parts[i];
      if (p === "..") path.pop();
      else if (p !== "." && p !== "") path.push(p);
    }
    var key = path.join("/");
    if (cache[key]) return cache[key].exports;
    var obj = root;
    for (var j = 0; j < path.length; j++) {
      if (obj === null || typeof obj !== "object" || !(path[j] in obj))
        throw new Error("invalid_require_path: Object has no property \"" + path[j] + "\"");
      obj = obj[path[j]];
    }
    if (typeof obj !== "string") throw new Error("invalid_require_path: " + key + " is not a module");
    var module = { id: key, exports: {}, current: obj, parent: null };
    cache[key] = module;
    var fn = (0, eval)("(function (module, exports, require) {" + obj + "\n})");
    fn.call(module.exports, module, module.exports, __require(root, path.slice(0, -1), cache));
    return module.exports;
  };
}

function __compile(src, forViews) {
  var key = (forViews ? "v:" : "d:") + src;
  var f = __compiled[key];
  if (f) return f;
  var root = forViews ? { views: { lib: __ddoc && __ddoc.views ? __ddoc.views.lib : undefined } } : __ddoc;
  var wrapper;
  try {
    wrapper = (0, eval)("(function (require) { return (" + src + "\n); })");
  } catch (e) {
    throw { compilation_error: "Expression does not eval to a function. (" + __describe(e) + ")" };
  }
  f = wrapper(__require(root, [], {}));
  if (typeof f !== "function") throw { compilation_error: "Expression does not eval to a function. (" + src.slice(0, 200) + ")" };
  __compiled[key] = f;
  return f;
}

var __ops = {
  // {funs, docs} -> per document, per function, the rows it emitted. A function that throws
  // on a document emits nothing for it (CouchDB logs and goes on).
  map: function (a) {
    var funs = a.funs.map(function (s) { return __compile(s, true); });
    return a.docs.map(function (doc) {
      return funs.map(function (f) {
        __rows = [];
        try {
          f.call(null, doc);
        } catch (e) {
          if (__fatal(e)) throw e;
          log("map function failed on " + (doc && doc._id) + ": " + __describe(e));
          __rows = [];
        }
        var out = __rows;
        __rows = null;
        return out;
      });
    });
  },
  // {fun, keys, values, rereduce} -> the reduction.
  reduce: function (a) {
    var f = __compile(a.fun, true);
    var r = f.call(null, a.keys, a.values, a.rereduce);
    return r === undefined ? null : r;
  },
  // {fun, docs, req} -> whether each document passes.
  filter: function (a) {
    var f = __compile(a.fun, false);
    return a.docs.map(function (doc) { return !!f.call(__ddoc, doc, a.req); });
  },
  // {fun, newDoc, oldDoc, userCtx, secObj} -> {ok} or what the function threw.
  validate: function (a) {
    var f = __compile(a.fun, false);
    try {
      f.call(__ddoc, a.newDoc, a.oldDoc, a.userCtx, a.secObj);
      return { ok: true };
    } catch (e) {
      if (__fatal(e)) throw e;
      if (e && typeof e === "object" && e.forbidden !== undefined) return { forbidden: String(e.forbidden) };
      if (e && typeof e === "object" && e.unauthorized !== undefined) return { unauthorized: String(e.unauthorized) };
      return { error: __describe(e) };
    }
  },
  // {funs} -> compiles each (a design document's functions are checked when it is saved).
  compile: function (a) {
    a.funs.forEach(function (s) { __compile(s[0], s[1]); });
    return true;
  },
};

function __init(ddocJson) {
  __ddoc = JSON.parse(ddocJson);
  __compiled = Object.create(null);
}

function __call(op, argsJson) {
  __logs = [];
  try {
    return JSON.stringify({ ok: __ops[op](JSON.parse(argsJson)) });
  } catch (e) {
    if (__fatal(e)) throw e;
    if (e && typeof e === "object" && e.compilation_error !== undefined)
      return JSON.stringify({ compilation_error: String(e.compilation_error) });
    return JSON.stringify({ error: __describe(e) });
  }
}
