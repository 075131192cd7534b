// Bad days: handlers that throw, calls that time out, are aborted or outlive their client, and
// a thousand calls at once.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, ErrorCode, McpError } from '@portico-mcp/client';
import { startServer, text } from './helpers.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

const throwing = {
  sampling: async () => {
    throw new Error('no model here');
  },
  elicitation: () => {
    throw new McpError(-32042, 'the user walked away', { why: 'test' });
  },
};

for (const protocol of ['stateless', '2025-11-25']) {
  describe(`protocol ${protocol}`, () => {
    let client;
    before(async () => {
      client = await Client.connect(server.url, { protocol, handlers: throwing });
    });
    after(() => client.close());

    test('a throwing handler becomes a JSON-RPC error to the server; the client keeps working', async () => {
      if (client.stateless) {
        // The input round fails in the client: the call rejects with the handler's error.
        await assert.rejects(client.callTool('test_input_required_result_sampling', {}), (e) => {
          assert.equal(e.kind, 'input');
          assert.equal(e.code, ErrorCode.InternalError);
          assert.match(e.message, /no model here/);
          return true;
        });
        await assert.rejects(client.callTool('test_input_required_result_elicitation', {}), (e) => {
          assert.equal(e.code, -32042);
          assert.deepEqual(e.data, { why: 'test' });
          return true;
        });
      } else {
        // The server got the error for its sampling request and reports it as its tool's result.
        const sampled = await client.callTool('test_sampling', { prompt: 'hi' }).catch((e) => e);
        const said = sampled instanceof Error ? sampled.message : text(sampled);
        assert.match(said, /no model here/);
        const elicited = await client.callTool('test_elicitation', { message: 'hi' }).catch((e) => e);
        const answer = elicited instanceof Error ? elicited.message : text(elicited);
        assert.match(answer, /the user walked away/);
      }
      assert.equal(text(await client.callTool('echo', { message: 'still here' })), 'still here');
    });

    test('a call that outlives its timeout rejects with RequestTimeout, long before the tool ends', async () => {
      const started = Date.now();
      await assert.rejects(client.callTool('slow_compute', { seconds: 30 }, { timeout: 200 }), (e) => {
        assert.equal(e.code, ErrorCode.RequestTimeout);
        assert.equal(e.kind, 'timeout');
        return true;
      });
      assert.ok(Date.now() - started < 10_000);
      assert.equal(text(await client.callTool('echo', { message: 'after' })), 'after');
    });

    test('an AbortSignal aborts a call', async () => {
      const controller = new AbortController();
      const call = client.callTool('slow_compute', { seconds: 30 }, { signal: controller.signal });
      setTimeout(() => controller.abort(new Error('changed my mind')), 50);
      await assert.rejects(call, (e) => {
        assert.equal(e.name, 'AbortError');
        assert.equal(e.code, ErrorCode.RequestCancelled);
        assert.equal(e.cause.message, 'changed my mind');
        return true;
      });
      // An aborted signal refuses at once.
      await assert.rejects(client.callTool('echo', { message: 'x' }, { signal: controller.signal }), { name: 'AbortError' });
      assert.equal(text(await client.callTool('echo', { message: 'after' })), 'after');
    });

    test('1000 concurrent calls sharing one signal, without MaxListenersExceededWarning', async () => {
      const warnings = [];
      const onWarning = (w) => warnings.push(w);
      process.on('warning', onWarning);
      const { signal } = new AbortController();
      const calls = Array.from({ length: 1000 }, (_, i) =>
        client.callTool('echo', { message: `m${i}` }, { signal, onprogress: () => {} }),
      );
      const results = await Promise.all(calls);
      await new Promise((resolve) => setImmediate(resolve));
      process.off('warning', onWarning);
      results.forEach((result, i) => assert.equal(text(result), `m${i}`));
      assert.deepEqual(warnings.map(String), []);
    });
  });
}

test('closing the client rejects the calls in flight, and later calls', async () => {
  for (const protocol of ['stateless', '2025-11-25']) {
    const client = await Client.connect(server.url, { protocol });
    const call = client.callTool('slow_compute', { seconds: 30 }).then(
      () => assert.fail('the call resolved'),
      (e) => e,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    await client.close();
    await assert.rejects(call.then((e) => Promise.reject(e)), (e) => {
      assert.equal(e.code, ErrorCode.ConnectionClosed);
      assert.equal(e.kind, 'closed');
      return true;
    });
    await assert.rejects(client.callTool('echo', { message: 'x' }), { kind: 'closed' });
    await client.close();
  }
});

test('bad arguments are refused before anything is sent', async () => {
  const client = await Client.connect(server.url);
  await assert.rejects(client.callTool(42), TypeError);
  await assert.rejects(client.listen('not a filter'), McpError);
  await client.close();
  await assert.rejects(Client.connect(server.url, { protocol: '1999-01-01' }), (e) => e.kind === 'invalidArgument');
});
