// Run in every fresh isolate before the user's code; runtime.py fills in the placeholders.
(() => {
  "use strict";
  const MAX_LINES = $max_lines, MAX_CHARS = $max_chars, MAX_PENDING = $max_pending;
  const stringify = JSON.stringify, parse = JSON.parse, freeze = Object.freeze;
  const later = globalThis.setTimeout;
  let logs = [], lines = 0, chars = 0, truncated = false;
  let requests = [], waiting = new Map(), nextId = 0, callsAllowed = false;
  let outcome = null;

  function show(v) {
    try {
      switch (typeof v) {
        case "string": return v;
        case "undefined": return "undefined";
        case "function": return "[Function " + (v.name || "anonymous") + "]";
        case "bigint": return v + "n";
        case "symbol": return v.toString();
      }
      if (v instanceof Error) return v.stack || String(v);
      const s = stringify(v, (k, x) => typeof x === "bigint" ? x + "n" : x);
      return s === undefined ? String(v) : s;
    } catch (e) {
      try { return String(v); } catch (e2) { return "[unprintable]"; }
    }
  }

  function emit(args) {
    const text = Array.prototype.map.call(args, show).join(" ");
    for (const line of text.split("\n")) {
      if (truncated) return;
      if (lines >= MAX_LINES || chars + line.length > MAX_CHARS) {
        truncated = true;
        logs.push("[console output truncated: a call keeps at most " + MAX_LINES +
                  " lines and " + MAX_CHARS + " characters]");
        return;
      }
      lines += 1;
      chars += line.length;
      logs.push(line);
    }
  }

  function ours(line) {
    return line.indexOf("$host_name") !== -1;
  }

  function describe(e) {
    try {
      if (e !== null && typeof e === "object" && typeof e.message === "string") {
        const stack = typeof e.stack === "string" ?
          e.stack.split("\n").filter(line => !ours(line)).join("\n") : null;
        return {message: e.message || String(e.name || "Error"), stack};
      }
    } catch (ignored) {}
    return {message: show(e), stack: null};
  }

  function strict(key, value) {
    const t = typeof value;
    if (t === "function" || t === "symbol" || t === "bigint") {
      throw new TypeError((key === "" ? "it is a " : '"' + key + '" holds a ') + t);
    }
    return value;
  }

  function succeed(value) {
    if (outcome !== null) return;
    if (value === undefined) { outcome = {ok: true, result: "null"}; return; }
    try {
      outcome = {ok: true, result: stringify(value, strict)};
    } catch (e) {
      outcome = {ok: false, error: {
        message: "the result is not JSON-serialisable: " + describe(e).message, stack: null}};
    }
  }

  function fail(e) {
    if (outcome === null) outcome = {ok: false, error: describe(e)};
  }

  function call(name, params) {
    return new Promise((resolve, reject) => {
      if (!callsAllowed) { reject(new Error($not_available)); return; }
      if (waiting.size >= MAX_PENDING) {
        reject(new Error("too many calls waiting at once (at most " + MAX_PENDING + ")"));
        return;
      }
      let encoded;
      try {
        encoded = stringify(params === undefined ? null : params, strict);
      } catch (e) {
        reject(new TypeError("the params are not JSON-serialisable: " + describe(e).message));
        return;
      }
      const id = nextId++;
      waiting.set(id, {resolve, reject});
      requests.push({id, name: String(name), params: encoded});
    });
  }

  function poll() {
    const state = stringify({logs, requests, outcome});
    logs = [];
    requests = [];
    return state;
  }

  function handlerType() {
    return typeof handler;
  }

  function start(event, allowCalls) {
    if (typeof handler !== "function") return stringify({handler: typeof handler});
    callsAllowed = allowCalls;
    let returned;
    try {
      returned = handler(parse(event));
    } catch (e) {
      fail(e);
      return poll();
    }
    let then;
    try { then = returned !== null && typeof returned === "object" ? returned.then : undefined; }
    catch (e) { fail(e); return poll(); }
    if (typeof then === "function") Promise.resolve(returned).then(succeed, fail);
    else succeed(returned);
    return poll();
  }

  function settle(id, ok, value) {
    const w = waiting.get(id);
    if (w !== undefined) {
      waiting.delete(id);
      if (ok) w.resolve(parse(value)); else w.reject(new Error(value));
    }
  }

  // Memory outside the V8 heap, which the heap limit does not see: what ArrayBuffers and
  // typed arrays hold counts against the call's budget, taken before the memory is (or just
  // as it is) allocated and given back when the garbage collector frees it (which it can only
  // report once the handler yields). Every way to a new backing store goes through these
  // wrappers: the constructors (and through them from, of and the species-made results of
  // slice, map and filter), and the methods that copy. WebAssembly, whose memories could
  // not be counted, is not offered.
  let budget = $external_bytes, held = 0;
  const freed = new FinalizationRegistry(bytes => { held -= bytes; });
  const construct = Reflect.construct, invoke = Reflect.apply;
  const isView = ArrayBuffer.isView, OriginalArrayBuffer = ArrayBuffer;
  const tooMuch = () => new RangeError("the function exceeded its " + budget / 1048576 +
    " MiB memory limit (held by ArrayBuffers and typed arrays)");

  function take(bytes) {
    const n = Number(bytes);
    if (!(n > 0)) return 0;
    if (held + n > budget) throw tooMuch();
    held += n;
    return n;
  }

  function account(made, bytes) {
    if (bytes > 0) freed.register(made, bytes);
    return made;
  }

  function isBuffer(value) {
    try { return value instanceof OriginalArrayBuffer || isView(value); }
    catch (e) { return false; }
  }

  function wrapConstructor(Original, size) {
    function Wrapped(...args) {
      if (new.target === undefined) return invoke(Original, this, args);
      const bytes = take(size(args));
      let made;
      try { made = construct(Original, args, new.target === Wrapped ? Original : new.target); }
      catch (e) { held -= bytes; throw e; }
      return account(made, bytes);
    }
    Object.setPrototypeOf(Wrapped, Object.getPrototypeOf(Original));
    for (const key of Reflect.ownKeys(Original)) {
      if (key !== "length" && key !== "name" && key !== "prototype") {
        Object.defineProperty(Wrapped, key, Object.getOwnPropertyDescriptor(Original, key));
      }
    }
    Object.defineProperty(Wrapped, "name", {value: Original.name});
    Object.defineProperty(Wrapped, "length", {value: Original.length});
    Object.defineProperty(Wrapped, "prototype", {value: Original.prototype});
    Object.defineProperty(Original.prototype, "constructor", {
      value: Wrapped, writable: true, enumerable: false, configurable: true,
    });
    globalThis[Original.name] = Wrapped;
  }

  const bufferSize = args => {
    const options = args[1];
    const most = options !== null && typeof options === "object" ? options.maxByteLength : 0;
    return Math.max(Number(args[0]) || 0, Number(most) || 0);
  };
  wrapConstructor(ArrayBuffer, bufferSize);
  wrapConstructor(SharedArrayBuffer, bufferSize);  // mini-racer's setTimeout needs it
  const typed = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
    "Int32Array", "Uint32Array", "Float16Array", "Float32Array", "Float64Array",
    "BigInt64Array", "BigUint64Array"];
  for (const name of typed) {
    const Original = globalThis[name];
    if (typeof Original !== "function") continue;
    const per = Original.BYTES_PER_ELEMENT;
    wrapConstructor(Original, args => {
      const first = args[0];
      if (first === null || typeof first !== "object") return (Number(first) || 0) * per;
      if (first instanceof OriginalArrayBuffer) return 0;  // a view of a buffer counted already
      if (isView(first) || !(Symbol.iterator in first)) return (Number(first.length) || 0) * per;
      return 0;  // an iterable's values are on the heap first, which the heap limit bounds
    });
  }

  function wrapCopy(proto, name, size) {
    const original = proto[name];
    if (typeof original !== "function") return;
    Object.defineProperty(proto, name, {
      value: {[name](...args) {
        const bytes = take(size(this, args));
        let made;
        try { made = invoke(original, this, args); } catch (e) { held -= bytes; throw e; }
        return account(made, bytes);
      }}[name],
      writable: true, enumerable: false, configurable: true,
    });
  }

  const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);
  const byteLength = Object.getOwnPropertyDescriptor(TypedArrayPrototype, "byteLength").get;
  for (const name of ["toReversed", "toSorted", "with"]) {
    wrapCopy(TypedArrayPrototype, name, self => isBuffer(self) ? invoke(byteLength, self, []) : 0);
  }
  for (const name of ["transfer", "transferToFixedLength"]) {
    const length = Object.getOwnPropertyDescriptor(OriginalArrayBuffer.prototype, "byteLength").get;
    wrapCopy(OriginalArrayBuffer.prototype, name,
      (self, args) => args[0] === undefined ? invoke(length, self, []) : Number(args[0]));
  }
  delete globalThis.WebAssembly;

  function limit(bytes) {
    budget = bytes;
    return "";
  }

  const console = {};
  for (const name of ["log", "info", "warn", "error", "debug", "trace"]) {
    console[name] = function (...args) { emit(args); };
  }
  globalThis.console = freeze(console);
  globalThis.shipway = freeze({call});
  // mini-racer's setTimeout throws for a delay below 1 ms; give it at least that.
  globalThis.setTimeout = function setTimeout(fn, delay, ...args) {
    const ms = Number(delay);
    return later(fn, ms >= 1 ? ms : 1, ...args);
  };
  Object.defineProperty(globalThis, "__shipway_host", {
    value: freeze({start, poll, settle, handlerType, limit}),
    writable: false, enumerable: false, configurable: false,
  });
})();
//# sourceURL=$host_name
