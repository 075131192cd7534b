'use strict';
// The promise API over the native client: connection targets, per-call options (timeout,
// AbortSignal, progress), events for notifications, and the handlers answering the server.
const { EventEmitter } = require('node:events');
const native = require('./native.cjs');
const { McpError, ErrorCode, fromNative } = require('./errors.cjs');

/** The event each notification method is emitted as (besides 'notification'). */
const EVENTS = {
  'notifications/resources/updated': 'resourceUpdated',
  'notifications/resources/list_changed': 'resourceListChanged',
  'notifications/tools/list_changed': 'toolListChanged',
  'notifications/prompts/list_changed': 'promptListChanged',
  'notifications/message': 'logMessage',
  'notifications/progress': 'progress',
};

/** The handler answering each server request (and each 2026-07-28 input request). */
const HANDLERS = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

// One 'abort' listener per signal, whatever the number of calls sharing it: a thousand calls
// under one AbortSignal add no thousand listeners (and no MaxListenersExceededWarning).
const aborters = new WeakMap();

function onAbort(signal, fn) {
  let set = aborters.get(signal);
  if (set === undefined) {
    set = new Set();
    aborters.set(signal, set);
    signal.addEventListener(
      'abort',
      () => {
        for (const f of [...set]) f();
        set.clear();
      },
      { once: true },
    );
  }
  set.add(fn);
  return () => set.delete(fn);
}

function abortError(signal) {
  return new McpError(ErrorCode.RequestCancelled, 'the call was aborted', undefined, {
    kind: 'aborted',
    cause: signal.reason,
  });
}

/** The target as the addon takes it: {transport, url} or {transport: 'stdio', command, ...}. */
function normalizeTarget(target) {
  if (target instanceof URL) target = target.href;
  if (typeof target === 'string') {
    const scheme = target.slice(0, target.indexOf(':')).toLowerCase();
    if (scheme === 'http' || scheme === 'https') return { transport: 'http', url: target };
    if (scheme === 'ws' || scheme === 'wss') return { transport: 'ws', url: target };
    throw new TypeError(`cannot connect to ${JSON.stringify(target)}: an http(s):// or ws(s):// URL is needed`);
  }
  if (target === null || typeof target !== 'object') {
    throw new TypeError('the target is a URL string or an object ({command, args} or {url, transport})');
  }
  if (typeof target.command === 'string') {
    const env = target.env ?? process.env;
    return {
      transport: 'stdio',
      command: target.command,
      args: (target.args ?? []).map(String),
      env: Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === 'string')),
      cwd: target.cwd,
    };
  }
  const url = target.url instanceof URL ? target.url.href : target.url;
  if (typeof url !== 'string') throw new TypeError('the target object has neither command nor url');
  const transport = {
    http: 'http',
    'streamable-http': 'http',
    ws: 'ws',
    websocket: 'ws',
    sse: 'sse',
  }[target.transport ?? 'http'];
  if (transport === undefined) {
    throw new TypeError(`unknown transport ${JSON.stringify(target.transport)} (http, ws, sse)`);
  }
  return { transport, url };
}

function nativeOptions(options) {
  const handlers = Object.entries(options.handlers ?? {})
    .filter(([, h]) => h !== undefined && h !== null)
    .map(([kind]) => kind);
  return {
    clientInfo: options.clientInfo,
    protocol: options.protocol,
    requestTimeoutMs: options.requestTimeout,
    probeTimeoutMs: options.probeTimeout,
    capabilities: options.capabilities,
    handlers,
    auth: options.auth,
    tls: options.tls,
  };
}

class Client extends EventEmitter {
  #native;
  #handlers;
  #server;
  #closed = false;
  #closeEmitted = false;
  #resolveEnded;
  /** Resolves when the client is closed or its connection ended. */
  #endedPromise = new Promise((resolve) => (this.#resolveEnded = resolve));
  #nextCall = 1;
  /** The progress of calls with onprogress, by call id: {callback, settled, resolve}. */
  #progress = new Map();
  /** AbortControllers of the server's questions being answered, by question id. */
  #questions = new Map();
  /** listen ids of subscribe(uri), by URI. */
  #subscriptions = new Map();

  /**
   * Connects to an MCP server: "http://…/mcp" (Streamable HTTP), "ws://…" (WebSocket),
   * {url, transport: "sse"} (legacy HTTP+SSE) or {command, args, env, cwd} (a child process).
   */
  static async connect(target, options = {}) {
    const normalized = normalizeTarget(target);
    let client;
    const early = [];
    const onEvent = (text) => (client === undefined ? early.push(text) : client.#event(text));
    let handle;
    try {
      handle = await native.connect(JSON.stringify(normalized), JSON.stringify(nativeOptions(options)), onEvent);
    } catch (error) {
      throw fromNative(error);
    }
    client = new Client(handle, options.handlers ?? {});
    for (const text of early) client.#event(text);
    return client;
  }

  constructor(handle, handlers) {
    super();
    if (handle === undefined) throw new TypeError('use Client.connect(target, options)');
    this.#native = handle;
    this.#handlers = { ...handlers };
    this.#server = JSON.parse(handle.server());
  }

  /** The negotiated protocol revision. */
  get protocolVersion() {
    return this.#server.protocolVersion;
  }

  /** Whether the connection is stateless (2026-07-28) rather than a session. */
  get stateless() {
    return this.#server.stateless;
  }

  /** The server's name and version. */
  getServerVersion() {
    return this.#server.serverInfo ?? undefined;
  }

  /** What the server offers. */
  getServerCapabilities() {
    return this.#server.capabilities;
  }

  /** The server's instructions for the model, if any. */
  getInstructions() {
    return this.#server.instructions ?? undefined;
  }

  /** Replaces (or, with undefined, removes) the handler of 'sampling', 'elicitation' or 'roots'. */
  setHandler(kind, handler) {
    if (!Object.values(HANDLERS).includes(kind)) throw new TypeError(`unknown handler ${JSON.stringify(kind)}`);
    this.#handlers[kind] = handler;
  }

  /** Any request: the result as the server sent it (2026-07-28 input rounds answered). */
  async request(method, params, options = {}) {
    if (this.#closed) throw new McpError(ErrorCode.ConnectionClosed, 'the client is closed', undefined, { kind: 'closed' });
    const { signal, timeout, onprogress } = options;
    if (signal?.aborted) throw abortError(signal);
    const callId = this.#nextCall;
    this.#nextCall = this.#nextCall >= 0x7fffffff ? 1 : this.#nextCall + 1;
    let detach;
    if (signal) detach = onAbort(signal, () => this.#native.cancel(callId));
    let progressToken;
    let progress;
    if (typeof onprogress === 'function') {
      progressToken = `portico-js-progress-${callId}`;
      progress = { callback: onprogress };
      // Resolved by the 'settled' event that follows the call's last progress event.
      progress.settled = new Promise((resolve) => (progress.resolve = resolve));
      this.#progress.set(callId, progress);
    }
    const wanted = { callId, timeoutMs: timeout, progressToken, meta: options._meta };
    try {
      const text = await this.#native.request(method, JSON.stringify(params ?? null), JSON.stringify(wanted));
      // Every progress report sent before the result reaches onprogress before the call ends.
      if (progress !== undefined) await Promise.race([progress.settled, this.#endedPromise]);
      return JSON.parse(text);
    } catch (error) {
      const mapped = fromNative(error);
      if (mapped.kind === 'aborted' && signal) mapped.cause = signal.reason;
      // However the transport saw it end, a call the client's close cut short was closed.
      if (this.#closed && mapped.kind !== 'aborted' && mapped.kind !== 'closed') {
        throw new McpError(ErrorCode.ConnectionClosed, 'the client was closed during the call', undefined, {
          kind: 'closed',
          method,
          cause: mapped,
        });
      }
      throw mapped;
    } finally {
      detach?.();
      if (progress !== undefined) this.#progress.delete(callId);
    }
  }

  /** `ping` (sessions; a 2026-07-28 connection has none and rejects). */
  async ping(options) {
    return this.request('ping', null, options);
  }

  /** One page of tools. */
  async listTools(params, options) {
    return this.request('tools/list', params ?? null, options);
  }

  /** Calls a tool: callTool(name, args, options) or callTool({name, arguments}, options). */
  async callTool(name, args, options) {
    if (typeof name === 'object' && name !== null) {
      [name, args, options] = [name.name, name.arguments, args];
    }
    if (typeof name !== 'string') throw new TypeError('callTool needs a tool name');
    return this.request('tools/call', { name, arguments: args ?? {} }, options);
  }

  async listResources(params, options) {
    return this.request('resources/list', params ?? null, options);
  }

  async listResourceTemplates(params, options) {
    return this.request('resources/templates/list', params ?? null, options);
  }

  /** readResource(uri, options) or readResource({uri}, options). */
  async readResource(uri, options) {
    if (typeof uri === 'object' && uri !== null && !(uri instanceof URL)) uri = uri.uri;
    return this.request('resources/read', { uri: String(uri) }, options);
  }

  async listPrompts(params, options) {
    return this.request('prompts/list', params ?? null, options);
  }

  /** getPrompt(name, args, options) or getPrompt({name, arguments}, options). */
  async getPrompt(name, args, options) {
    if (typeof name === 'object' && name !== null) {
      [name, args, options] = [name.name, name.arguments, args];
    }
    return this.request('prompts/get', { name, arguments: args ?? {} }, options);
  }

  /** completion/complete: {ref, argument, context?}. */
  async complete(params, options) {
    return this.request('completion/complete', params, options);
  }

  /** Log messages at `level` and above arrive as 'logMessage' events. */
  async setLoggingLevel(level) {
    await this.request('logging/setLevel', { level });
    return {};
  }

  /**
   * Asks for change notifications, in either generation (subscriptions/listen, or
   * resources/subscribe in a session). Resolves with {granted, close()}.
   */
  async listen(filter) {
    const answer = await this.#call(() => this.#native.listen(JSON.stringify(filter ?? {})));
    const { id, granted } = JSON.parse(answer);
    return { granted, close: () => this.#call(() => this.#native.unlisten(id)) };
  }

  /** 'resourceUpdated' events for `uri` from now on. */
  async subscribe(uri) {
    uri = typeof uri === 'object' && uri !== null && !(uri instanceof URL) ? uri.uri : String(uri);
    if (this.#subscriptions.has(uri)) return {};
    const subscription = await this.listen({ resourceSubscriptions: [uri] });
    this.#subscriptions.set(uri, subscription);
    return {};
  }

  async unsubscribe(uri) {
    uri = typeof uri === 'object' && uri !== null && !(uri instanceof URL) ? uri.uri : String(uri);
    const subscription = this.#subscriptions.get(uri);
    this.#subscriptions.delete(uri);
    await subscription?.close();
    return {};
  }

  /** Closes the connection; calls in flight reject with ConnectionClosed. Twice is once. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    for (const controller of this.#questions.values()) controller.abort();
    await this.#call(() => this.#native.close());
    this.#ended();
  }

  /** Emits 'close' once: the client was closed, or the connection ended (a child exited). */
  #ended() {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.#resolveEnded();
    this.emit('close');
  }

  async #call(fn) {
    try {
      return await fn();
    } catch (error) {
      throw fromNative(error);
    }
  }

  #event(text) {
    const event = JSON.parse(text);
    if (event.type === 'notification') this.#notification(event.method, event.params);
    else if (event.type === 'request') this.#answer(event);
    else if (event.type === 'cancelled') this.#questions.get(event.id)?.abort();
    else if (event.type === 'progress') this.#onprogress(event.callId, event.params);
    else if (event.type === 'settled') this.#progress.get(event.callId)?.resolve();
    else if (event.type === 'closed') this.#ended();
  }

  #onprogress(callId, params) {
    const progress = this.#progress.get(callId);
    if (progress === undefined) return;
    try {
      progress.callback(params);
    } catch (error) {
      process.nextTick(() => {
        throw error;
      });
    }
  }

  #notification(method, params) {
    const name = EVENTS[method];
    if (name !== undefined) this.emit(name, params);
    this.emit('notification', { method, params });
  }

  #answer({ id, method, params, key }) {
    const kind = HANDLERS[method];
    const handler = kind === undefined ? undefined : this.#handlers[kind];
    const controller = new AbortController();
    this.#questions.set(id, controller);
    const run = async () => {
      if (handler === undefined || handler === null) {
        throw new McpError(ErrorCode.MethodNotFound, `the client has no ${kind ?? method} handler`);
      }
      if (kind === 'roots' && Array.isArray(handler)) return { roots: handler };
      return handler(params, { signal: controller.signal, key: key ?? undefined, method });
    };
    run().then(
      (result) => this.#respond(id, true, result ?? {}),
      (error) =>
        this.#respond(id, false, {
          code: Number.isInteger(error?.code) ? error.code : ErrorCode.InternalError,
          message: String(error?.message ?? error),
          data: error?.data,
        }),
    );
  }

  #respond(id, ok, payload) {
    this.#questions.delete(id);
    try {
      this.#native.respond(id, ok, JSON.stringify(payload));
    } catch {
      // The client is closed: nobody waits for the answer.
    }
  }
}

module.exports = { Client };
