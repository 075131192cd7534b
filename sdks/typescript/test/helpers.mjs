// What the tests share: a `portico serve everything` per test file (HTTP, WebSocket and legacy
// SSE on one port 0 listener; its URL is the first line it prints), and the binary's path; and
// the server built on the official MCP Python SDK that official-server.test.mjs drives.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The `portico` binary: PORTICO_BIN, else the debug build in CARGO_TARGET_DIR or the repo. */
export function porticoBin() {
  if (process.env.PORTICO_BIN) return process.env.PORTICO_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? path.resolve(here, '..', '..', '..', 'target');
  const bin = path.join(target, 'debug', 'portico');
  if (!existsSync(bin)) throw new Error(`${bin} does not exist: build it (cargo build -p portico) or set PORTICO_BIN`);
  return bin;
}

/** Starts `portico serve everything` on 127.0.0.1:0; resolves with its URLs and a stop(). */
export async function startServer() {
  const child = spawn(porticoBin(), ['serve', 'everything', '--http', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout });
  const first = await new Promise((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`portico serve everything exited with ${code}`)));
    child.once('error', reject);
  });
  const url = /http:\/\/\S+\/mcp/.exec(first)?.[0];
  if (url === undefined) throw new Error(`unexpected first line: ${first}`);
  const base = url.slice(0, -'/mcp'.length);
  return {
    url,
    ws: url.replace('http://', 'ws://'),
    sse: `${base}/sse`,
    stop() {
      lines.close();
      child.kill();
    },
  };
}

/** The text of a tool result's first content block. */
export function text(result) {
  return result.content?.find((block) => block.type === 'text')?.text;
}

/** How to get a python for the official-SDK server, in every failure about it. */
const OFFICIAL_HOW =
  'run `cargo xtask test` (it installs the pinned official MCP Python SDK `mcp`, see PYTHON_PACKAGES ' +
  'in xtask/src/test.rs, into the tools venv $PORTICO_TOOLS_DIR/venv, default .tools/venv, and passes ' +
  'its python to these tests as PORTICO_OFFICIAL_PYTHON), or set PORTICO_OFFICIAL_PYTHON to the ' +
  'absolute path of a python with that `mcp` and `uvicorn` installed (after one `cargo xtask test`, ' +
  'from the repository root: PORTICO_OFFICIAL_PYTHON=$PWD/.tools/venv/bin/python)';

let official;

/**
 * The server built on the official MCP Python SDK (servers/everything/tests/python/official_server.py,
 * PORTICO_OFFICIAL_SERVER when the tests run outside the repository) and the python to run it:
 * PORTICO_OFFICIAL_PYTHON, else the tools venv's. Checked once to import the SDK; throws saying
 * how to get one otherwise.
 */
export function officialServer() {
  if (official !== undefined) return official;
  const repo = path.resolve(here, '..', '..', '..');
  const script =
    process.env.PORTICO_OFFICIAL_SERVER || path.join(repo, 'servers', 'everything', 'tests', 'python', 'official_server.py');
  if (!existsSync(script)) {
    throw new Error(`the official-SDK server ${script} is missing: set PORTICO_OFFICIAL_SERVER to its path (cargo xtask test does)`);
  }
  let python = process.env.PORTICO_OFFICIAL_PYTHON;
  let which = `PORTICO_OFFICIAL_PYTHON=${python}`;
  if (!python) {
    python = path.join(process.env.PORTICO_TOOLS_DIR || path.join(repo, '.tools'), 'venv', 'bin', 'python');
    which = `PORTICO_OFFICIAL_PYTHON is not set and the tools venv's ${python}`;
  }
  const probe = spawnSync(python, ['-c', 'import mcp.server.mcpserver, uvicorn'], { encoding: 'utf8', timeout: 60_000 });
  if (probe.error !== undefined) {
    throw new Error(`${which} does not run (${probe.error.message}); these tests need a python with the official MCP SDK: ${OFFICIAL_HOW}`);
  }
  if (probe.status !== 0) {
    const why = probe.stderr.trim().split('\n').at(-1) || `exit status ${probe.status}`;
    throw new Error(`${which} cannot import the official MCP SDK (${why}): ${OFFICIAL_HOW}`);
  }
  official = { python, script };
  return official;
}

/** The official-SDK server over stdio: a target for Client.connect. */
export function officialStdio({ handshakeOnly = false } = {}) {
  const { python, script } = officialServer();
  return { command: python, args: [script, 'stdio', ...(handshakeOnly ? ['--handshake-only'] : [])] };
}

/** Starts the official-SDK server on Streamable HTTP (port 0); resolves with its URL and a stop(). */
export async function startOfficialServer({ handshakeOnly = false } = {}) {
  const { python, script } = officialServer();
  const child = spawn(python, [script, 'http', '0', ...(handshakeOnly ? ['--handshake-only'] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout });
  const first = await new Promise((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`official_server.py exited with ${code}`)));
    child.once('error', reject);
  });
  const url = /^listening on (http:\/\/\S+\/mcp)$/.exec(first)?.[1];
  if (url === undefined) throw new Error(`unexpected first line from official_server.py: ${first}`);
  return {
    url,
    stop() {
      lines.close();
      child.kill();
    },
  };
}
