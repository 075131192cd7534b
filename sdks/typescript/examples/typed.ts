// The package's types at work (checked by `tsc --noEmit`, see tsconfig.json): results and
// handlers typed by the generated MCP wire types, events by name, errors by kind.
import { Client, ErrorCode, McpError, type types } from '@portico-mcp/client';

export async function main(url: string): Promise<void> {
  const client = await Client.connect(url, {
    protocol: 'auto',
    requestTimeout: 30_000,
    auth: { type: 'bearer', token: process.env.MCP_TOKEN ?? 'token' },
    handlers: {
      sampling: async (params) => ({
        role: 'assistant',
        content: { type: 'text', text: `you asked ${params.messages.length} things` },
        model: 'none',
      }),
      elicitation: async () => ({ action: 'decline' }),
      roots: [{ uri: 'file:///work' }],
    },
  });
  client.on('toolListChanged', () => console.log('the tools changed'));
  client.on('logMessage', (message: types.LoggingMessageNotificationParams) => console.log(message.level, message.data));
  client.on('resourceUpdated', ({ uri }) => console.log(`${uri} changed`));
  const tools: types.Tool[] = (await client.listTools()).tools;
  const controller = new AbortController();
  try {
    const result: types.CallToolResult = await client.callTool(tools[0].name, {}, {
      signal: controller.signal,
      timeout: 5_000,
      onprogress: (p) => console.log(p.progress, p.total),
    });
    for (const block of result.content) {
      if (block.type === 'text') console.log(block.text);
    }
  } catch (error) {
    if (error instanceof McpError && error.code === ErrorCode.RequestTimeout) console.log('too slow');
    else throw error;
  }
  const prompt = await client.getPrompt({ name: 'greeting', arguments: { name: 'Ada' } });
  console.log(prompt.messages.length);
  await client.subscribe('test://watched-resource');
  await client.close();
}
