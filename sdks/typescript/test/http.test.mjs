// The client over Streamable HTTP, in both generations: 2026-07-28 (stateless), a 2025-11-25
// session, and 'auto' (which finds 2026-07-28 on this server).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@portico-mcp/client';
import { startServer, text } from './helpers.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

const handlers = {
  sampling: async (params) => ({
    role: 'assistant',
    content: { type: 'text', text: `sampled: ${params.messages[0].content.text}` },
    model: 'test-model',
  }),
  elicitation: async () => ({ action: 'accept', content: { name: 'Ada', username: 'ada', email: 'ada@example.com' } }),
  roots: [{ uri: 'file:///work', name: 'work' }],
};

for (const protocol of ['stateless', '2025-11-25', 'auto']) {
  describe(`HTTP, protocol ${protocol}`, () => {
    let client;
    before(async () => {
      client = await Client.connect(server.url, { protocol, handlers, clientInfo: { name: 'node-test', version: '1.0.0' } });
    });
    after(() => client.close());

    test('negotiates the era', () => {
      const stateless = protocol !== '2025-11-25';
      assert.equal(client.stateless, stateless);
      assert.equal(client.protocolVersion, stateless ? '2026-07-28' : '2025-11-25');
      assert.equal(client.getServerVersion().name, 'portico-everything');
      assert.ok(client.getServerCapabilities().tools);
    });

    test('lists and calls tools', async () => {
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'echo'));
      const echo = tools.find((t) => t.name === 'echo');
      assert.equal(echo.inputSchema.type, 'object');
      const result = await client.callTool('echo', { message: 'hello' });
      assert.deepEqual(result.content, [{ type: 'text', text: 'hello' }]);
      const same = await client.callTool({ name: 'echo', arguments: { message: 'again' } });
      assert.equal(text(same), 'again');
    });

    test('a tool error is a result, not a rejection', async () => {
      const result = await client.callTool('test_error_handling', {});
      assert.equal(result.isError, true);
    });

    test('an unknown tool rejects with the JSON-RPC error', async () => {
      await assert.rejects(client.callTool('no_such_tool', {}), (e) => {
        assert.equal(e.name, 'McpError');
        assert.equal(e.kind, 'rpc');
        assert.equal(typeof e.code, 'number');
        return true;
      });
    });

    test('resources, templates, prompts and completion', async () => {
      const { resources } = await client.listResources();
      assert.ok(resources.some((r) => r.uri === 'test://static-text'));
      const read = await client.readResource('test://static-text');
      assert.equal(read.contents[0].text, 'This is the content of the static text resource.');
      const { resourceTemplates } = await client.listResourceTemplates();
      assert.ok(resourceTemplates.some((t) => t.uriTemplate === 'test://template/{id}/data'));
      const templated = await client.readResource({ uri: 'test://template/7/data' });
      assert.equal(JSON.parse(templated.contents[0].text).id, '7');
      const { prompts } = await client.listPrompts();
      assert.ok(prompts.some((p) => p.name === 'test_prompt_with_arguments'));
      const prompt = await client.getPrompt('test_prompt_with_arguments', { arg1: 'a', arg2: 'b' });
      assert.match(prompt.messages[0].content.text, /arg1='a', arg2='b'/);
      const completion = await client.complete({
        ref: { type: 'ref/prompt', name: 'test_prompt_with_arguments' },
        argument: { name: 'arg1', value: '' },
      });
      assert.ok(Array.isArray(completion.completion.values));
    });

    test('log messages arrive as logMessage events', async () => {
      await client.setLoggingLevel('debug');
      const messages = [];
      const listener = (params) => messages.push(params);
      client.on('logMessage', listener);
      await client.callTool('test_logging_tool', {});
      // Notifications may trail the result by a moment.
      for (let i = 0; i < 250 && messages.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
      client.off('logMessage', listener);
      assert.deepEqual(messages.map((m) => m.level).slice(0, 3), ['debug', 'info', 'warning']);
    });

    test('progress goes to onprogress and to progress events', async () => {
      const seen = [];
      const events = [];
      const listener = (p) => events.push(p);
      client.on('progress', listener);
      await client.callTool('test_tool_with_progress', {}, { onprogress: (p) => seen.push(p.progress) });
      // onprogress has every report when the call resolves; the events (hints, like every
      // notification event) may trail it by a moment.
      assert.deepEqual(seen, [0, 50, 100]);
      for (let i = 0; i < 250 && events.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
      client.off('progress', listener);
      assert.deepEqual(events.map((p) => p.progress), [0, 50, 100]);
    });

    test('tool list changes arrive as toolListChanged events', async () => {
      const subscription = await client.listen({ toolsListChanged: true });
      assert.equal(subscription.granted.toolsListChanged, true);
      const changed = new Promise((resolve) => client.once('toolListChanged', resolve));
      await client.callTool('test_trigger_tool_change', {});
      await changed;
      await subscription.close();
    });

    test('subscribe and unsubscribe a resource', async () => {
      assert.deepEqual(await client.subscribe('test://watched-resource'), {});
      assert.deepEqual(await client.unsubscribe('test://watched-resource'), {});
    });

    test('sampling, elicitation and roots handlers answer the server', async () => {
      const sampled = await client.callTool('test_sampling', { prompt: 'Say hi' });
      assert.match(text(sampled), /sampled: Say hi/);
      const elicited = await client.callTool('test_elicitation', { message: 'Who are you?' });
      assert.match(text(elicited), /action=accept/);
      if (client.stateless) {
        const roots = await client.callTool('test_input_required_result_list_roots', {});
        assert.match(text(roots), /file:\/\/\/work/);
        const rounds = await client.callTool('test_input_required_result_multi_round', {});
        assert.equal(rounds.isError, undefined);
        const several = await client.callTool('test_input_required_result_multiple_inputs', {});
        assert.equal(several.isError, undefined);
      }
    });

    test('ping in a session; none in 2026-07-28', async () => {
      if (client.stateless) {
        await assert.rejects(client.ping(), (e) => e.kind === 'unsupported');
      } else {
        assert.deepEqual(await client.ping(), {});
      }
    });
  });
}
