// The same client over the other transports: WebSocket, legacy HTTP+SSE (2024-11-05) and a
// child process's stdio (`portico serve everything --stdio`, and a hand-written server).
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { Client } from '@portico-mcp/client';
import { porticoBin, startServer, text } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

async function exercise(client) {
  const { tools } = await client.listTools();
  assert.ok(tools.some((t) => t.name === 'echo'));
  assert.equal(text(await client.callTool('echo', { message: 'over the wire' })), 'over the wire');
  const read = await client.readResource('test://static-text');
  assert.equal(read.contents[0].uri, 'test://static-text');
}

test('WebSocket, stateless and in a session', async () => {
  for (const protocol of ['stateless', '2025-11-25']) {
    const client = await Client.connect(server.ws, { protocol });
    assert.equal(client.protocolVersion, protocol === 'stateless' ? '2026-07-28' : '2025-11-25');
    await exercise(client);
    await client.close();
  }
});

test('legacy HTTP+SSE (2024-11-05)', async () => {
  const client = await Client.connect({ url: server.sse, transport: 'sse' }, { protocol: '2024-11-05' });
  assert.equal(client.protocolVersion, '2024-11-05');
  await exercise(client);
  assert.deepEqual(await client.ping(), {});
  await client.close();
});

test('stdio: portico serve everything --stdio, with auto', async () => {
  const client = await Client.connect({ command: porticoBin(), args: ['serve', 'everything', '--stdio'] });
  assert.equal(client.protocolVersion, '2026-07-28');
  await exercise(client);
  await client.close();
});

test('stdio: resourceUpdated events, and a roots handler the server calls', async () => {
  const fixture = path.join(here, 'fixtures', 'notifying-server.mjs');
  const client = await Client.connect(
    { command: process.execPath, args: [fixture] },
    { protocol: '2025-11-25', handlers: { roots: async () => ({ roots: [{ uri: 'file:///data' }] }) } },
  );
  const updated = new Promise((resolve) => client.once('resourceUpdated', resolve));
  await client.subscribe('test://watched');
  assert.equal((await updated).uri, 'test://watched');
  const result = await client.callTool('ask_roots', {});
  assert.deepEqual(JSON.parse(text(result)), { roots: [{ uri: 'file:///data' }] });
  await client.close();
});

test('stdio: a server that exits rejects the call in flight and emits close', async () => {
  const fixture = path.join(here, 'fixtures', 'notifying-server.mjs');
  const client = await Client.connect({ command: process.execPath, args: [fixture] }, { protocol: '2025-11-25' });
  const closed = new Promise((resolve) => client.once('close', resolve));
  await assert.rejects(client.callTool('exit', {}), (e) => e.kind === 'closed');
  await closed;
  await assert.rejects(client.callTool('ask_roots', {}), (e) => e.kind === 'closed');
  await client.close();
});

test('a connection that cannot be made rejects with McpError', async () => {
  await assert.rejects(Client.connect('http://127.0.0.1:1/mcp', { protocol: 'stateless' }), (e) => {
    assert.equal(e.name, 'McpError');
    return true;
  });
  await assert.rejects(Client.connect({ command: '/nonexistent/server' }), (e) => e.kind === 'connect');
  await assert.rejects(Client.connect('ftp://example.com'), TypeError);
});
