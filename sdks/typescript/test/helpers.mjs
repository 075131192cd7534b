// What the tests share: a `portico serve everything` per test file (HTTP, WebSocket and legacy
// SSE on one port 0 listener; its URL is the first line it prints), and the binary's path.
import { spawn } from 'node:child_process';
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
