'use strict';
// Loads the native addon: `portico.node` beside this folder (what the package ships), or the
// file PORTICO_NODE_ADDON names (a development build).
const path = require('node:path');

const file = process.env.PORTICO_NODE_ADDON || path.join(__dirname, '..', 'portico.node');
try {
  module.exports = require(file);
} catch (error) {
  throw new Error(
    `@portico-mcp/client: cannot load the native addon ${file} (${error.message}). ` +
      'Build it with `npm run build` in sdks/typescript (cargo build -p portico-node, then a copy), ' +
      'or set PORTICO_NODE_ADDON to a built libportico_node.so.',
    { cause: error },
  );
}
