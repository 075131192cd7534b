// @portico-mcp/client, as an ES module (the same classes as the CommonJS entry point).
import cjs from './index.cjs';

export const { Client, ErrorCode, McpError } = cjs;
export default cjs;
