// Quick start (README): connect, list the tools, call one, close.
// node examples/quickstart.mjs http://127.0.0.1:3000/mcp
import { Client } from '@portico-mcp/client';

const url = process.argv[2] ?? 'http://127.0.0.1:3000/mcp';
const client = await Client.connect(url);
console.log(`connected to ${client.getServerVersion()?.name} (${client.protocolVersion})`);
const { tools } = await client.listTools();
console.log(`${tools.length} tools, the first: ${tools[0]?.name}`);
const result = await client.callTool('echo', { message: 'hello from node' });
console.log(result.content[0].text);
await client.close();
