// The client side of the official MCP conformance suite (@modelcontextprotocol/conformance,
// `client` command), acted out with @portico-mcp/client's public API only, as
// `portico conformance-client` (servers/portico/src/conformance_client/) does with the Rust
// client core.
//
// The suite runs `node conformance-client.mjs URL` per scenario, with the scenario in
// MCP_CONFORMANCE_SCENARIO, the revision in MCP_CONFORMANCE_PROTOCOL_VERSION (2026-07-28:
// stateless; a 2025-x revision: a session at it) and, for some, JSON in MCP_CONFORMANCE_CONTEXT.
// Exits 0 when the scenario could be acted out, 1 with the reason on standard error.
import { Client } from '@portico-mcp/client';

const url = process.argv[2];
const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? '';
const revision = process.env.MCP_CONFORMANCE_PROTOCOL_VERSION ?? '2025-11-25';
const context = process.env.MCP_CONFORMANCE_CONTEXT ? JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT) : {};
const clientInfo = { name: 'portico-node-conformance-client', version: '0.1.0' };

/** Declares sampling, form elicitation and roots; accepts every form, samples a fixed text. */
const handlers = {
  sampling: async () => ({
    role: 'assistant',
    content: { type: 'text', text: 'a sampled answer from the portico node conformance client' },
    model: 'portico-conformance',
  }),
  // The client core fills in the form's defaults (SEP-1034); a URL nobody can follow is declined.
  elicitation: async (params) => (params.mode === 'url' ? { action: 'decline' } : { action: 'accept', content: {} }),
  roots: [{ uri: 'file:///tmp' }],
};
const capabilities = { sampling: {}, elicitation: { form: {} }, roots: {} };

async function listTools(client) {
  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor === undefined ? undefined : { cursor });
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return tools;
}

async function listAll(client, method, key) {
  const items = [];
  let cursor;
  do {
    const page = await client[method](cursor === undefined ? undefined : { cursor });
    items.push(...page[key]);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return items;
}

/** Calls a tool; a tool error (isError) is reported but does not fail the run. */
async function call(client, name, args) {
  const result = await client.callTool(name, args);
  if (result.isError) console.error(`conformance-client: tool ${name} answered with isError`);
  return result;
}

function sampleValue(property = {}) {
  if ('default' in property) return property.default;
  if (Array.isArray(property.enum) && property.enum.length > 0) return property.enum[0];
  return { integer: 1, number: 1, boolean: true, object: {}, array: [], null: null }[property.type] ?? 'value';
}

function sampleArguments(schema = {}) {
  const args = {};
  for (const name of schema.required ?? []) args[name] = sampleValue(schema.properties?.[name]);
  return args;
}

async function generic(client) {
  const tools = await listTools(client);
  const calls = Array.isArray(context.toolCalls)
    ? context.toolCalls.map((c) => [c.name, c.arguments ?? {}])
    : tools.map((t) => [t.name, sampleArguments(t.inputSchema)]);
  for (const [name, args] of calls) await call(client, name, args);
}

async function act(client) {
  switch (scenario) {
    case 'initialize':
    case 'request-metadata':
    case 'json-schema-ref-no-deref':
      await listTools(client);
      return;
    case 'tools_call':
      await listTools(client);
      await call(client, 'add_numbers', { a: 5, b: 3 });
      return;
    case 'elicitation-sep1034-client-defaults':
      await listTools(client);
      await call(client, 'test_client_elicitation_defaults', {});
      return;
    case 'sse-retry':
      await listTools(client);
      await call(client, 'test_reconnection', {});
      return;
    case 'sep-2322-client-request-state': {
      const names = new Set((await listTools(client)).map((t) => t.name));
      for (const expected of ['test_mrtr_echo_state', 'test_mrtr_no_state', 'test_mrtr_unrelated']) {
        if (!names.has(expected)) throw new Error(`the server did not list ${expected}`);
      }
      // The unrelated call runs beside the echo call's rounds: it must carry neither's answers.
      await Promise.all([call(client, 'test_mrtr_echo_state', {}), call(client, 'test_mrtr_unrelated', {})]);
      await call(client, 'test_mrtr_no_state', {});
      await call(client, 'test_mrtr_no_result_type', {});
      return;
    }
    case 'http-standard-headers': {
      for (const tool of await listTools(client)) await call(client, tool.name, sampleArguments(tool.inputSchema));
      for (const resource of await listAll(client, 'listResources', 'resources')) await client.readResource(resource.uri);
      for (const prompt of await listAll(client, 'listPrompts', 'prompts')) {
        const args = Object.fromEntries((prompt.arguments ?? []).filter((a) => a.required).map((a) => [a.name, 'value']));
        await client.getPrompt(prompt.name, args);
      }
      return;
    }
    case 'json-schema-2020-12-preservation': {
      const focal = (await listTools(client)).find((t) => t.name === 'json_schema_2020_12_tool');
      if (focal === undefined) throw new Error('the server did not list json_schema_2020_12_tool');
      await call(client, 'json_schema_echo', { schema: focal.inputSchema });
      return;
    }
    case 'http-custom-headers':
    case 'http-invalid-tool-headers':
      await generic(client);
      return;
    default:
      console.error(`conformance-client: scenario ${JSON.stringify(scenario)} is not known; doing the generic run`);
      await generic(client);
  }
}

/** auth/*: connect through the OAuth client (headless authorizer), list the tools, call one. */
async function actAuth() {
  const credentials = context.client_id ? { clientId: context.client_id, clientSecret: context.client_secret } : {};
  const auth = scenario.startsWith('auth/client-credentials')
    ? { type: 'oauth', grant: 'client_credentials', clientName: clientInfo.name, ...credentials }
    : {
        type: 'oauth',
        grant: 'authorization_code',
        clientName: clientInfo.name,
        redirectUri: 'http://localhost:3000/callback',
        clientMetadataUrl: 'https://conformance-test.local/client-metadata.json',
        ...credentials,
      };
  auth.legacyDiscovery = scenario.startsWith('auth/2025-03-26');
  const client = await Client.connect(url, { protocol: revision, clientInfo, auth });
  try {
    const tools = await listTools(client);
    const tool = tools.find((t) => t.name === 'test-tool') ?? tools[0];
    if (tool === undefined) throw new Error('the server lists no tools');
    await client.callTool(tool.name, {});
  } finally {
    await client.close();
  }
}

async function main() {
  if (url === undefined) throw new Error('usage: conformance-client.mjs URL');
  if (scenario.startsWith('auth/')) return actAuth();
  const client = await Client.connect(url, { protocol: revision, clientInfo, handlers, capabilities });
  try {
    await act(client);
  } finally {
    await client.close();
  }
}

main().then(
  () => console.error(`conformance-client: scenario ${JSON.stringify(scenario)} done`),
  (error) => {
    console.error(`conformance-client: scenario ${JSON.stringify(scenario)} failed: ${error.message}`);
    process.exitCode = 1;
  },
);
