// Types of @portico-mcp/client. Results are plain objects of the newest protocol revision's
// wire types (generated from the MCP schema into src/generated/, re-exported as `types`);
// members a type does not name are kept.
import { EventEmitter } from 'node:events';
import type * as mcp from '../src/generated/mcp-2026-07-28.js';

export type * as types from '../src/generated/mcp-2026-07-28.js';

/** Where to connect. */
export type Target =
  /** "http://host/mcp" (Streamable HTTP) or "ws://host/mcp" (WebSocket, subprotocol mcp). */
  | string
  | URL
  /** A server on another transport: "sse" is the legacy HTTP+SSE transport (2024-11-05). */
  | { url: string | URL; transport?: 'http' | 'streamable-http' | 'ws' | 'websocket' | 'sse' }
  /** A child process speaking MCP over its stdin and stdout. */
  | StdioTarget;

export interface StdioTarget {
  command: string;
  args?: string[];
  /** The child's environment (default: this process's). */
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** The protocol era: server/discover with fallback, 2026-07-28 only, or a session at a revision. */
export type Protocol = 'auto' | 'stateless' | '2026-07-28' | '2025-11-25' | '2025-06-18' | '2025-03-26' | '2024-11-05';

/** Credentials for the HTTP transports (Streamable HTTP, WebSocket, legacy SSE). */
export type Auth =
  | { type: 'bearer'; token: string }
  | {
      type: 'oauth';
      /** Default "authorization_code" (through a headless authorizer: the authorization server must redirect at once). */
      grant?: 'authorization_code' | 'client_credentials';
      /** client_name in dynamic registrations (default "portico-node"). */
      clientName?: string;
      /** Pre-registered credentials (required by client_credentials). */
      clientId?: string;
      clientSecret?: string;
      /** The redirect URI registered (default http://localhost:3000/callback; nothing listens there). */
      redirectUri?: string;
      /** This client's Client ID Metadata Document URL, used where the server supports it. */
      clientMetadataUrl?: string;
      /** Whether to register dynamically when nothing else applies (default true). */
      dynamicRegistration?: boolean;
      /** The 2025-03-26 discovery rules for servers without protected resource metadata (default false). */
      legacyDiscovery?: boolean;
    };

/** What a handler gets besides the request's params. */
export interface HandlerExtra {
  /** Aborted when the question is void (the server cancelled it, or the call it belongs to ended). */
  signal: AbortSignal;
  /** The key of the question in a 2026-07-28 `inputRequests` map; undefined in a session. */
  key?: string;
  method: string;
}

/**
 * The client's answers to the server. Each is used for real server requests (2025-x sessions)
 * and for 2026-07-28 `input_required` rounds alike. A handler that throws or rejects answers
 * with a JSON-RPC error: its `code` if it has an integer one, else -32603.
 */
export interface Handlers {
  sampling?: (params: mcp.CreateMessageRequestParams, extra: HandlerExtra) => mcp.CreateMessageResult | Promise<mcp.CreateMessageResult>;
  elicitation?: (params: mcp.ElicitRequestParams, extra: HandlerExtra) => mcp.ElicitResult | Promise<mcp.ElicitResult>;
  /** A function, or the roots themselves. */
  roots?: ((params: Record<string, unknown>, extra: HandlerExtra) => mcp.ListRootsResult | Promise<mcp.ListRootsResult>) | mcp.Root[];
}

export interface ClientOptions {
  /** The client's name and version (default portico-node and the package's version). */
  clientInfo?: { name: string; version: string };
  /** Default 'auto'. */
  protocol?: Protocol;
  /** How long a call waits for its answer, in ms (default 60000). */
  requestTimeout?: number;
  /** How long 'auto' waits for server/discover before trying initialize, in ms (default 10000). */
  probeTimeout?: number;
  /** The handlers; each one given declares its capability. */
  handlers?: Handlers;
  /** Capabilities to declare instead of those the handlers imply. */
  capabilities?: mcp.ClientCapabilities;
  auth?: Auth;
  /** https:// and wss://: certificates (PEM) trusted as roots besides the platform's. */
  tls?: { rootCertificates?: string[] };
}

export interface RequestOptions {
  /** This call's timeout in ms (rejects with ErrorCode.RequestTimeout; the server is told). */
  timeout?: number;
  /** Aborts the call (rejects with an AbortError; the server is told). */
  signal?: AbortSignal;
  /** Asks for progress notifications of this call: every report sent before the result reaches it before the call resolves. */
  onprogress?: (progress: mcp.ProgressNotificationParams) => void;
  /** More `_meta` members for the request. */
  _meta?: Record<string, unknown>;
}

export interface Subscription {
  /** What the server agreed to send. */
  granted: mcp.SubscriptionFilter;
  close(): Promise<void>;
}

export interface ClientEvents {
  resourceUpdated: [params: mcp.ResourceUpdatedNotificationParams];
  resourceListChanged: [params: Record<string, unknown>];
  toolListChanged: [params: Record<string, unknown>];
  promptListChanged: [params: Record<string, unknown>];
  logMessage: [params: mcp.LoggingMessageNotificationParams];
  progress: [params: mcp.ProgressNotificationParams];
  /** Every notification, the ones above included. */
  notification: [notification: { method: string; params: unknown }];
  /** The client was closed, or the connection ended (the server went away). */
  close: [];
}

type Page = { cursor?: string };

export declare class Client extends EventEmitter<ClientEvents> {
  private constructor();
  /** Connects, negotiates the protocol era, and resolves with the connected client. */
  static connect(target: Target, options?: ClientOptions): Promise<Client>;
  /** The negotiated protocol revision. */
  readonly protocolVersion: string;
  /** Whether the connection is stateless (2026-07-28) rather than a session. */
  readonly stateless: boolean;
  getServerVersion(): mcp.Implementation | undefined;
  getServerCapabilities(): mcp.ServerCapabilities;
  getInstructions(): string | undefined;
  setHandler<K extends keyof Handlers>(kind: K, handler: Handlers[K] | undefined): void;
  request<R = Record<string, unknown>>(method: string, params?: Record<string, unknown> | null, options?: RequestOptions): Promise<R>;
  ping(options?: RequestOptions): Promise<Record<string, unknown>>;
  listTools(params?: Page, options?: RequestOptions): Promise<mcp.ListToolsResult>;
  callTool(name: string, args?: Record<string, unknown>, options?: RequestOptions): Promise<mcp.CallToolResult>;
  callTool(params: { name: string; arguments?: Record<string, unknown> }, options?: RequestOptions): Promise<mcp.CallToolResult>;
  listResources(params?: Page, options?: RequestOptions): Promise<mcp.ListResourcesResult>;
  listResourceTemplates(params?: Page, options?: RequestOptions): Promise<mcp.ListResourceTemplatesResult>;
  readResource(uri: string | URL | { uri: string }, options?: RequestOptions): Promise<mcp.ReadResourceResult>;
  listPrompts(params?: Page, options?: RequestOptions): Promise<mcp.ListPromptsResult>;
  getPrompt(name: string, args?: Record<string, string>, options?: RequestOptions): Promise<mcp.GetPromptResult>;
  getPrompt(params: { name: string; arguments?: Record<string, string> }, options?: RequestOptions): Promise<mcp.GetPromptResult>;
  complete(params: mcp.CompleteRequestParams, options?: RequestOptions): Promise<mcp.CompleteResult>;
  setLoggingLevel(level: mcp.LoggingLevel): Promise<Record<string, never>>;
  /** Change notifications in either era (subscriptions/listen, or resources/subscribe in a session). */
  listen(filter: mcp.SubscriptionFilter): Promise<Subscription>;
  /** 'resourceUpdated' events for this URI from now on. */
  subscribe(uri: string | URL | { uri: string }): Promise<Record<string, never>>;
  unsubscribe(uri: string | URL | { uri: string }): Promise<Record<string, never>>;
  /** Closes the connection; calls in flight reject with ErrorCode.ConnectionClosed. */
  close(): Promise<void>;
}

export declare const ErrorCode: {
  readonly ConnectionClosed: -32000;
  readonly RequestTimeout: -32001;
  readonly ParseError: -32700;
  readonly InvalidRequest: -32600;
  readonly MethodNotFound: -32601;
  readonly InvalidParams: -32602;
  readonly InternalError: -32603;
  readonly RequestCancelled: -32800;
};

/** What went wrong, by origin. */
export type ErrorKind =
  | 'rpc' | 'timeout' | 'closed' | 'aborted' | 'connect' | 'sessionExpired' | 'transport' | 'protocol'
  | 'unsupportedVersion' | 'unsupported' | 'input' | 'outputSchema' | 'encode' | 'invalidArgument' | 'other';

/** Every failure of a call or of connecting. */
export declare class McpError extends Error {
  constructor(code: number | undefined, message: string, data?: unknown, details?: Record<string, unknown>);
  /** The JSON-RPC code: the server's for 'rpc', else one of ErrorCode where one fits. */
  code: number | undefined;
  data: unknown;
  kind: ErrorKind;
  /** The request's method, when the error belongs to one. */
  method?: string;
  /** The HTTP status of a 'transport' error. */
  status?: number;
  /** The result of an 'outputSchema' error (the structuredContent did not match the tool's outputSchema). */
  result?: mcp.CallToolResult;
}
