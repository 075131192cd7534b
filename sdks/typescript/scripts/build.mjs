// Builds the native addon and puts it where the package loads it from (portico.node):
// `cargo build -p portico-node` (add --release for an optimized build), then a copy of
// $CARGO_TARGET_DIR/<profile>/libportico_node.so. `cargo xtask test` does the same.
import { spawnSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..', '..');
const release = process.argv.includes('--release');
const args = ['build', '-p', 'portico-node', ...(release ? ['--release'] : [])];
const built = spawnSync('cargo', args, { cwd: root, stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);
const target = process.env.CARGO_TARGET_DIR ?? path.join(root, 'target');
const from = path.join(target, release ? 'release' : 'debug', 'libportico_node.so');
copyFileSync(from, path.join(here, '..', 'portico.node'));
console.log(`copied ${from} to portico.node`);
