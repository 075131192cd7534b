'use strict';
// The one place where the client core's errors become JavaScript errors: the addon rejects with
// a JSON reason ({kind, message, code?, data?, method?, ...}); `fromNative` makes it an McpError.

/** JSON-RPC and SDK error codes, as the official TypeScript SDK names them. */
const ErrorCode = Object.freeze({
  ConnectionClosed: -32000,
  RequestTimeout: -32001,
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  RequestCancelled: -32800,
});

/** The code of an error that the server did not send (the kind says what happened). */
const KIND_CODES = {
  closed: ErrorCode.ConnectionClosed,
  timeout: ErrorCode.RequestTimeout,
  aborted: ErrorCode.RequestCancelled,
  invalidArgument: ErrorCode.InvalidParams,
};

class McpError extends Error {
  /**
   * @param {number | undefined} code the JSON-RPC code (the server's, or one of ErrorCode)
   * @param {string} message
   * @param {unknown} [data]
   * @param {object} [details] kind, method and what else the kind has
   */
  constructor(code, message, data, details = {}) {
    super(message);
    this.name = details.kind === 'aborted' ? 'AbortError' : 'McpError';
    this.code = code;
    this.data = data;
    this.kind = details.kind ?? 'rpc';
    for (const [key, value] of Object.entries(details)) {
      if (value !== undefined && !(key in this)) this[key] = value;
    }
  }
}

/** The McpError of a rejection from the addon (any other error is returned as it is). */
function fromNative(error) {
  if (!(error instanceof Error)) return error;
  let body;
  try {
    body = JSON.parse(error.message);
  } catch {
    return error;
  }
  if (body === null || typeof body !== 'object' || typeof body.kind !== 'string') return error;
  const { kind, message, code, data, ...details } = body;
  return new McpError(code ?? KIND_CODES[kind], message, data ?? undefined, { kind, ...details });
}

module.exports = { ErrorCode, McpError, fromNative };
