// The client against a server built on the official MCP Python SDK (PyPI `mcp`), not on Portico:
// servers/everything/tests/python/official_server.py (see officialServer() in helpers.mjs for
// the python that runs it), over stdio (a child process) and Streamable HTTP (under uvicorn),
// with 'auto' (which finds 2026-07-28), 'stateless' and a 2025-11-25 session, and again made a
// 2025-x-only server (--handshake-only), where 'auto' falls back from server/discover to
// initialize. Its tools: add (structured output), echo, wait, count (progress and log messages),
// greet (elicitation) and touch (change notifications); a resource, a resource template and a
// prompt. It offers no sampling.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, ErrorCode } from '@portico-mcp/client';
import { officialStdio, startOfficialServer, text } from './helpers.mjs';

const STATELESS = '2026-07-28';
const SESSION = '2025-11-25';

const CASES = [
  { name: 'stdio, auto', http: false, handshakeOnly: false, protocol: 'auto', revision: STATELESS },
  { name: 'stdio, stateless', http: false, handshakeOnly: false, protocol: 'stateless', revision: STATELESS },
  { name: 'stdio, 2025-11-25', http: false, handshakeOnly: false, protocol: SESSION, revision: SESSION },
  { name: 'stdio, handshake-only server, auto', http: false, handshakeOnly: true, protocol: 'auto', revision: SESSION },
  { name: 'HTTP, auto', http: true, handshakeOnly: false, protocol: 'auto', revision: STATELESS },
  { name: 'HTTP, stateless', http: true, handshakeOnly: false, protocol: 'stateless', revision: STATELESS },
  { name: 'HTTP, 2025-11-25', http: true, handshakeOnly: false, protocol: SESSION, revision: SESSION },
  { name: 'HTTP, handshake-only server, auto', http: true, handshakeOnly: true, protocol: 'auto', revision: SESSION },
];

// The two HTTP servers (both generations, and handshake-only), shared by the file's clients.
const servers = {};
before(async () => {
  servers.dual = await startOfficialServer();
  servers.handshakeOnly = await startOfficialServer({ handshakeOnly: true });
});
after(() => {
  servers.dual?.stop();
  servers.handshakeOnly?.stop();
});

function targetOf(c) {
  if (!c.http) return officialStdio({ handshakeOnly: c.handshakeOnly });
  return (c.handshakeOnly ? servers.handshakeOnly : servers.dual).url;
}

/** Resolves once `until()` holds, polling (notification events may trail a result). */
async function eventually(until, what) {
  for (let i = 0; i < 250 && !until(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(until(), `${what}: not within 5 s`);
}

// The cases run at once, each with its own client (most of their time is the servers'), and the
// tests of a case one after the other.
describe("the official Python SDK's server", { concurrency: true }, () => {
for (const c of CASES) {
  describe(c.name, { concurrency: 1 }, () => {
    let client;
    // What the elicitation handler answers next ('accept', 'decline' or 'throw'), and what it
    // was asked.
    let answer = 'accept';
    const asked = [];
    const handlers = {
      elicitation: async (params) => {
        asked.push(params);
        if (answer === 'throw') throw new Error('nobody is at the keyboard');
        return answer === 'accept' ? { action: 'accept', content: { name: 'Ada' } } : { action: answer };
      },
    };
    before(async () => {
      client = await Client.connect(targetOf(c), { protocol: c.protocol, handlers, requestTimeout: 30_000 });
    });
    after(() => client?.close());

    test('negotiates the era; the server names itself', () => {
      assert.equal(client.protocolVersion, c.revision);
      assert.equal(client.stateless, c.revision === STATELESS);
      assert.deepEqual(client.getServerVersion(), { name: 'python-official', version: '1.0.0' });
      assert.equal(client.getInstructions(), 'A test server on the official SDK.');
      assert.ok(client.getServerCapabilities().tools);
    });

    test('lists tools and calls them, with structured output', async () => {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['add', 'count', 'echo', 'greet', 'touch', 'wait']);
      const add = tools.find((t) => t.name === 'add');
      assert.equal(add.description, 'Adds two integers');
      assert.deepEqual(add.inputSchema.required, ['a', 'b']);
      assert.equal(add.inputSchema.properties.a.type, 'integer');
      assert.deepEqual(add.outputSchema.required, ['sum', 'operands']);

      const sum = await client.callTool('add', { a: 40, b: 2 });
      assert.equal(sum.isError, false);
      assert.deepEqual(sum.structuredContent, { sum: 42, operands: [40, 2] });
      assert.deepEqual(JSON.parse(text(sum)), { sum: 42, operands: [40, 2] });
      const echoed = await client.callTool({ name: 'echo', arguments: { message: 'Grüße, 世界' } });
      assert.deepEqual(echoed.content, [{ type: 'text', text: 'echo: Grüße, 世界' }]);
      assert.deepEqual(echoed.structuredContent, { result: 'echo: Grüße, 世界' });
    });

    test('a tool error is a result; a method the server lacks rejects with its JSON-RPC code', async () => {
      const refused = await client.callTool('add', { a: 'forty' });
      assert.equal(refused.isError, true);
      assert.match(text(refused), /validation error/);
      const unknown = await client.callTool('no_such_tool', {});
      assert.equal(unknown.isError, true);
      assert.equal(text(unknown), 'Unknown tool: no_such_tool');
      const missing = (e) => {
        assert.equal(e.name, 'McpError');
        assert.equal(e.kind, 'rpc');
        assert.equal(e.code, ErrorCode.MethodNotFound);
        return true;
      };
      await assert.rejects(
        client.complete({ ref: { type: 'ref/prompt', name: 'review' }, argument: { name: 'language', value: 'py' } }),
        missing,
      );
      await assert.rejects(client.request('no/such/method', {}), missing);
    });

    test('progress reaches onprogress before the call resolves; log messages are logMessage events', async () => {
      if (client.stateless) {
        // 2026-07-28 asks for log messages per request; a 2025-x server of this SDK has no
        // logging/setLevel (it logs anyway).
        await client.setLoggingLevel('info');
      }
      const logs = [];
      const listener = (params) => logs.push(params);
      client.on('logMessage', listener);
      const seen = [];
      try {
        const counted = await client.callTool('count', { steps: 3 }, { onprogress: (p) => seen.push(p) });
        assert.equal(text(counted), 'counted to 3');
        assert.deepEqual(
          seen.map((p) => [p.progress, p.total, p.message]),
          [
            [1, 3, 'step 1'],
            [2, 3, 'step 2'],
            [3, 3, 'step 3'],
          ],
        );
        assert.equal(new Set(seen.map((p) => p.progressToken)).size, 1);
        await eventually(() => logs.length >= 3, 'three log messages');
      } finally {
        client.off('logMessage', listener);
      }
      assert.deepEqual(
        logs.map((m) => [m.level, m.data]),
        [1, 2, 3].map((i) => ['info', `step ${i} of 3`]),
      );
    });

    test('elicitation: the handler answers; a decline and a throwing handler are reported', async () => {
      // A request in a session, an input_required round in 2026-07-28: the same handler.
      asked.length = 0;
      answer = 'accept';
      const greeted = await client.callTool('greet', {});
      assert.equal(greeted.isError, false);
      assert.equal(text(greeted), 'Hello, Ada!');
      assert.equal(asked.length, 1);
      assert.equal(asked[0].message, 'What is your name?');
      assert.deepEqual(asked[0].requestedSchema.required, ['name']);
      assert.equal(asked[0].requestedSchema.properties.name.type, 'string');

      answer = 'decline';
      const declined = await client.callTool('greet', {});
      assert.equal(declined.isError, true);
      assert.match(text(declined), /elicitation was decline/);

      answer = 'throw';
      await assert.rejects(client.callTool('greet', {}), (e) => {
        assert.equal(e.name, 'McpError');
        assert.match(e.message, /nobody is at the keyboard/);
        // 2026-07-28: the input round failed in the client. A session: the server got the
        // JSON-RPC error for its request and failed the call with it.
        assert.equal(e.kind, client.stateless ? 'input' : 'rpc');
        assert.equal(e.code, ErrorCode.InternalError);
        return true;
      });
      answer = 'accept';
      assert.equal(text(await client.callTool('echo', { message: 'still here' })), 'echo: still here');
    });

    if (c.http) {
      test('without an elicitation handler the client declares none, and the server refuses greet', async () => {
        const bare = await Client.connect(targetOf(c), { protocol: c.protocol });
        try {
          await assert.rejects(bare.callTool('greet', {}), (e) => {
            assert.equal(e.code, -32021);
            assert.match(e.message, /elicitation capability/);
            return true;
          });
        } finally {
          await bare.close();
        }
      });
    }

    test('a call past its timeout, or aborted, is cancelled; the connection goes on', async () => {
      const started = Date.now();
      await assert.rejects(client.callTool('wait', { seconds: 20 }, { timeout: 300 }), (e) => {
        assert.equal(e.code, ErrorCode.RequestTimeout);
        assert.equal(e.kind, 'timeout');
        return true;
      });
      assert.ok(Date.now() - started < 10_000);
      assert.equal(text(await client.callTool('wait', { seconds: 0.01 })), 'waited 0.01 s');

      const controller = new AbortController();
      const call = client.callTool('wait', { seconds: 20 }, { signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      await assert.rejects(call, (e) => {
        assert.equal(e.name, 'AbortError');
        assert.equal(e.code, ErrorCode.RequestCancelled);
        return true;
      });
      assert.equal(text(await client.callTool('echo', { message: 'after' })), 'echo: after');
    });

    test('resources, resource templates and prompts', async () => {
      const { resources } = await client.listResources();
      assert.deepEqual(
        resources.map((r) => [r.uri, r.name, r.mimeType]),
        [['greeting://hello', 'hello', 'text/plain']],
      );
      const hello = await client.readResource('greeting://hello');
      assert.deepEqual(hello.contents, [
        { uri: 'greeting://hello', mimeType: 'text/plain', text: 'Hello from the official Python SDK' },
      ]);
      const { resourceTemplates } = await client.listResourceTemplates();
      assert.deepEqual(
        resourceTemplates.map((t) => t.uriTemplate),
        ['greeting://{name}'],
      );
      const ada = await client.readResource({ uri: 'greeting://ada' });
      assert.equal(ada.contents[0].uri, 'greeting://ada');
      assert.equal(ada.contents[0].text, 'Hello, ada');

      const { prompts } = await client.listPrompts();
      assert.deepEqual(
        prompts.map((p) => p.name),
        ['review'],
      );
      assert.deepEqual(prompts[0].arguments, [
        { name: 'code', required: true },
        { name: 'language', required: false },
      ]);
      const prompt = await client.getPrompt('review', { code: 'fn main() {}', language: 'rust' });
      assert.deepEqual(prompt.messages, [
        { role: 'user', content: { type: 'text', text: 'Please review this rust code:\nfn main() {}' } },
      ]);
      const byDefault = await client.getPrompt({ name: 'review', arguments: { code: 'x = 1' } });
      assert.equal(byDefault.messages[0].content.text, 'Please review this python code:\nx = 1');
    });

    if (c.revision === STATELESS) {
      test('no ping in 2026-07-28; listen gets toolListChanged and resourceUpdated events', async () => {
        await assert.rejects(client.ping(), (e) => e.kind === 'unsupported');
        const notifications = [];
        const listener = (n) => notifications.push(n);
        client.on('notification', listener);
        const updated = new Promise((resolve) => client.once('resourceUpdated', resolve));
        const changed = new Promise((resolve) => client.once('toolListChanged', resolve));
        const subscription = await client.listen({ toolsListChanged: true, resourceSubscriptions: ['greeting://hello'] });
        try {
          assert.deepEqual(subscription.granted, { toolsListChanged: true, resourceSubscriptions: ['greeting://hello'] });
          assert.equal(text(await client.callTool('touch', {})), 'touched');
          assert.equal((await updated).uri, 'greeting://hello');
          await changed;
          // Each carries the id of the subscriptions/listen stream it came on (the server tells
          // every stream: the other cases' touch calls may add more of the same).
          assert.ok(notifications.length >= 2);
          const ids = new Set(notifications.map((n) => n.params._meta['io.modelcontextprotocol/subscriptionId']));
          assert.equal(ids.size, 1);
          assert.notEqual([...ids][0], undefined);
        } finally {
          client.off('notification', listener);
          await subscription.close();
        }
      });
    } else {
      test('ping in a session; this server offers no resources/subscribe', async () => {
        assert.deepEqual(await client.ping(), {});
        assert.equal(client.getServerCapabilities().resources.subscribe, false);
        await assert.rejects(client.subscribe('greeting://hello'), (e) => {
          assert.equal(e.code, -32601);
          return true;
        });
      });
    }
  });
}
});
