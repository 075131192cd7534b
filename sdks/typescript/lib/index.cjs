'use strict';
// @portico-mcp/client: an MCP client for Node, over Portico's Rust client core.
const { Client } = require('./client.cjs');
const { ErrorCode, McpError } = require('./errors.cjs');

module.exports = { Client, ErrorCode, McpError };
