// The package as users get it: both entry points, the quick start example, and credentials on
// the wire.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import * as esm from '@portico-mcp/client';
import { startServer } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
let server;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

test('CommonJS and ES module entry points give the same classes', async () => {
  const cjs = require('@portico-mcp/client');
  assert.equal(cjs.Client, esm.Client);
  assert.equal(cjs.McpError, esm.McpError);
  assert.equal(esm.default.Client, esm.Client);
  assert.equal(cjs.ErrorCode.RequestTimeout, -32001);
  const client = await cjs.Client.connect(server.url);
  assert.equal((await client.callTool('echo', { message: 'cjs' })).content[0].text, 'cjs');
  await client.close();
});

test('the quick start example runs', async () => {
  const example = path.join(here, '..', 'examples', 'quickstart.mjs');
  const { stdout } = await promisify(execFile)(process.execPath, [example, server.url]);
  assert.match(stdout, /connected to portico-everything \(2026-07-28\)/);
  assert.match(stdout, /hello from node/);
});

test('a bearer token goes in every request\'s Authorization header', async () => {
  const seen = [];
  const refusing = http.createServer((request, response) => {
    seen.push(request.headers.authorization);
    response.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_token"}');
  });
  await new Promise((resolve) => refusing.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${refusing.address().port}/mcp`;
  await assert.rejects(
    esm.Client.connect(url, { protocol: 'stateless', auth: { type: 'bearer', token: 's3cret' } }),
    (e) => e instanceof esm.McpError,
  );
  refusing.close();
  assert.ok(seen.length > 0);
  assert.ok(seen.every((h) => h === 'Bearer s3cret'), `headers: ${seen}`);
});
