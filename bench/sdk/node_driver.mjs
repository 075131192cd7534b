// The Node side of `cargo xtask bench sdk`: calls `tools/call` of `echo` as fast as one client
// can, with Portico's TypeScript SDK (@portico-mcp/client) or the official one
// (@modelcontextprotocol/sdk), and prints one JSON line: calls answered in the measured window,
// latency percentiles, this process's CPU time and peak RSS, and the server's and the rest of
// the machine's CPU time over the same window.
//
// Concurrency is calls in flight: N async loops sharing one client (one session, or one
// stateless connection). Tools are listed once first, as a real client does before calling.
//
//   node node_driver.mjs --sdk portico|official --node-modules DIR --url URL
//       --mode stateless|stateful [--concurrency 1] [--duration 2] [--warmup 1] [--server-pid PID]
//
// DIR is the node_modules folder holding the SDK (the packages are imported from there by
// path, so this script needs no package.json of its own).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const MESSAGE = 'hello from portico-bench';
const STATELESS = '2026-07-28';
const STATEFUL = '2025-11-25';
/** A call not answered within this long fails the run: each SDK's own request timeout, so the
 * driver adds nothing of its own to a call. */
const CALL_TIMEOUT_MS = 10_000;

const { values: args } = parseArgs({
  options: {
    sdk: { type: 'string' },
    'node-modules': { type: 'string' },
    url: { type: 'string' },
    mode: { type: 'string', default: 'stateful' },
    concurrency: { type: 'string', default: '1' },
    duration: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '1' },
    'server-pid': { type: 'string' },
  },
});
const concurrency = Number(args.concurrency);
const duration = Number(args.duration);
const warmup = Number(args.warmup);
if (!['portico', 'official'].includes(args.sdk) || !args.url || !args['node-modules']) {
  throw new Error('--sdk portico|official, --node-modules and --url are required');
}
if (!['stateless', 'stateful'].includes(args.mode)) throw new Error('--mode is stateless or stateful');
if (!(concurrency >= 1)) throw new Error('--concurrency must be at least 1');

const load = (path) => import(pathToFileURL(join(args['node-modules'], path)).href);

function check(result, text) {
  if (result.isError) throw new Error(`echo failed: ${JSON.stringify(result)}`);
  if (typeof text !== 'string' || !text.includes(MESSAGE)) throw new Error(`echo answered ${JSON.stringify(result)}`);
}

/** Portico's client: `{call, version, close}`. */
async function porticoClient() {
  const { Client } = await load('@portico-mcp/client/lib/index.mjs');
  const protocol = args.mode === 'stateless' ? STATELESS : STATEFUL;
  const client = await Client.connect(args.url, { protocol, requestTimeout: CALL_TIMEOUT_MS });
  const tools = await client.listTools();
  if (!tools.tools.some((t) => t.name === 'echo')) throw new Error('the server has no `echo` tool');
  const params = { message: MESSAGE };
  const call = async () => {
    const result = await client.callTool('echo', params);
    if (result.isError) throw new Error(`echo failed: ${JSON.stringify(result)}`);
    return result;
  };
  const first = await call();
  check(first, first.content[0]?.text);
  return { call, version: client.protocolVersion, close: () => client.close() };
}

/** The official client (a 2025-11-25 session: the newest revision it speaks). */
async function officialClient() {
  if (args.mode === 'stateless') throw new Error('the official TypeScript SDK speaks no 2026-07-28');
  // The ESM build, as `import ... from '@modelcontextprotocol/sdk/client/index.js'` resolves.
  const sdk = '@modelcontextprotocol/sdk/dist/esm/client';
  const { Client } = await load(`${sdk}/index.js`);
  const { StreamableHTTPClientTransport } = await load(`${sdk}/streamableHttp.js`);
  const client = new Client({ name: 'portico-bench', version: '0.1.0' });
  const transport = new StreamableHTTPClientTransport(new URL(args.url));
  await client.connect(transport);
  const tools = await client.listTools();
  if (!tools.tools.some((t) => t.name === 'echo')) throw new Error('the server has no `echo` tool');
  const params = { name: 'echo', arguments: { message: MESSAGE } };
  const options = { timeout: CALL_TIMEOUT_MS };
  const call = async () => {
    const result = await client.callTool(params, undefined, options);
    if (result.isError) throw new Error(`echo failed: ${JSON.stringify(result)}`);
    return result;
  };
  const first = await call();
  check(first, first.content[0]?.text);
  return { call, version: transport.protocolVersion, close: () => client.close() };
}

function procTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/);
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

function machineBusyTicks() {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    return fields.reduce((a, b) => a + b, 0) - fields[3] - fields[4];
  } catch {
    return null;
  }
}

function peakRssKib() {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  return line ? Number(line.split(/\s+/)[1]) : process.resourceUsage().maxRSS;
}

/** Nearest rank, as portico-bench's. */
function percentile(sorted, q) {
  if (sorted.length === 0) return 0;
  const rank = Math.min(Math.max(Math.ceil(q * sorted.length), 1), sorted.length);
  return Number(sorted[rank - 1]) / 1e3;
}

async function worker(call, start, stop, latencies) {
  for (;;) {
    const sent = process.hrtime.bigint();
    await call();
    const done = process.hrtime.bigint();
    if (done >= start && done < stop) latencies.push(done - sent);
    if (done >= stop) return;
  }
}

const sleepUntil = (at) =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(at - process.hrtime.bigint()) / 1e6)));

const client = args.sdk === 'portico' ? await porticoClient() : await officialClient();
const start = process.hrtime.bigint() + BigInt(Math.round(warmup * 1e9));
const stop = start + BigInt(Math.round(duration * 1e9));
const latencies = [];
const workers = Array.from({ length: concurrency }, () => worker(client.call, start, stop, latencies));
const server = args['server-pid'];
const edge = () => {
  const cpu = process.cpuUsage();
  return {
    client: (cpu.user + cpu.system) / 1e6,
    server: server ? procTicks(server) : null,
    machine: machineBusyTicks(),
    at: process.hrtime.bigint(),
  };
};
await sleepUntil(start);
const first = edge();
await sleepUntil(stop);
const last = edge();
await Promise.all(workers);
await client.close();

const measured = Number(last.at - first.at) / 1e9;
// Linux's USER_HZ; /proc/<pid>/stat counts in it.
const ticks = 100;
const clientCpu = ((last.client - first.client) / measured) * 100;
const serverCpu =
  first.server !== null && last.server !== null ? ((last.server - first.server) / ticks / measured) * 100 : null;
const otherCpu =
  first.machine !== null && last.machine !== null
    ? Math.max(0, ((last.machine - first.machine) / ticks / measured) * 100 - clientCpu - (serverCpu ?? 0))
    : null;
latencies.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
console.log(
  JSON.stringify({
    sdk: args.sdk,
    runtime: `node ${process.version}`,
    mode: args.mode,
    protocol_version: client.version,
    concurrency,
    seconds: duration,
    calls: latencies.length,
    calls_per_second: latencies.length / duration,
    p50_us: percentile(latencies, 0.5),
    p99_us: percentile(latencies, 0.99),
    client_cpu_percent: clientCpu,
    server_cpu_percent: serverCpu,
    other_cpu_percent: otherCpu,
    peak_rss_kib: peakRssKib(),
  }),
);
