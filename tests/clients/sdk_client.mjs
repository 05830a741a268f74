// A real TypeScript SDK client over SSE: initialize, list every tool, call one, print what happened as JSON.
//
//   node sdk_client.mjs URL TOOL ARGUMENTS_JSON
//
// tests/test_real_clients.py installs @modelcontextprotocol/sdk into a cache folder and runs a copy of
// this file from there, so the imports below resolve as in any project that depends on the SDK.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

const SECONDS = 60;
const [url, tool, args] = process.argv.slice(2);

const timer = setTimeout(() => {
  console.error(`no report within ${SECONDS} s`);
  process.exit(2);
}, SECONDS * 1000);

const client = new Client({ name: "initfix-real-client", version: "1" });
const transport = new SSEClientTransport(new URL(url));
await client.connect(transport);

const names = [];
let cursor;
do {
  const page = await client.listTools(cursor === undefined ? undefined : { cursor });
  names.push(...page.tools.map((t) => t.name));
  cursor = page.nextCursor;
} while (cursor !== undefined);
const called = await client.callTool({ name: tool, arguments: JSON.parse(args) });
// The URI the transport POSTs every message to, as the server announced it in the endpoint event.
const postedTo = transport._endpoint?.href ?? null;
await client.close();
clearTimeout(timer);

console.log(
  JSON.stringify({
    sdk: "typescript",
    server: client.getServerVersion()?.name ?? null,
    tools: names.length,
    distinct_tools: new Set(names).size,
    call_is_error: called.isError ?? false,
    call_result: called.structuredContent ?? null,
    posted_to: postedTo === null ? [] : [postedTo],
  }),
);
