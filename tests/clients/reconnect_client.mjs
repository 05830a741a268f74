// A real TypeScript SDK client over SSE across a reconnect: initialize and call a tool, let the test break the
// connection, call the tool again once the SDK's EventSource has reconnected, print both outcomes as JSON.
//
//   node reconnect_client.mjs URL TOOL ARGUMENTS_JSON
//
// 1. connect (initialize) and call TOOL; print {"ready": true, ...} on a line of its own;
// 2. wait for a line on stdin: the test has restarted the server on the same port or dropped the connection;
// 3. wait for the endpoint event of the reconnected stream (the EventSource reconnects by itself, 3 s after
//    the stream ended unless the server says otherwise, and the SDK then POSTs to the new endpoint);
// 4. call TOOL again, with no initialize (the SDK sends none), and print the report.
//
// tests/test_reconnect.py runs a copy of this file beside an installed @modelcontextprotocol/sdk, as
// tests/test_real_clients.py does with sdk_client.mjs.
import { createInterface } from "node:readline";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

const SECONDS = 90; // the whole run
const CALL_SECONDS = 30; // each call: shorter than a 60 s hold, so a held call shows up as this deadline
const SIGNAL_SECONDS = 60; // from the ready line to the test's line on stdin
const RECONNECT_SECONDS = 30; // from the test's line on stdin to the new endpoint event
const [url, tool, args] = process.argv.slice(2);

const timer = setTimeout(() => {
  console.error(`no report within ${SECONDS} s`);
  process.exit(2);
}, SECONDS * 1000);

function within(seconds, what, promise) {
  let expire;
  const deadline = new Promise((_, reject) => {
    expire = setTimeout(() => reject(new Error(`${what} took more than ${seconds} s`)), seconds * 1000);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(expire));
}

async function call() {
  const started = performance.now();
  try {
    const result = await client.callTool({ name: tool, arguments: JSON.parse(args) }, undefined, {
      timeout: CALL_SECONDS * 1000,
    });
    return {
      ok: result.isError !== true,
      ms: performance.now() - started,
      result: result.structuredContent ?? null,
    };
  } catch (error) {
    return {
      ok: false,
      ms: performance.now() - started,
      code: typeof error?.code === "number" ? error.code : null,
      message: String(error?.message ?? error),
      reason: error?.data?.reason ?? null,
    };
  }
}

const client = new Client({ name: "initfix-reconnect-client", version: "1" });
// Errors of the stream (its end, a refused reconnect) are the transport's business; note them only.
const streamErrors = [];
client.onerror = (error) => streamErrors.push(String(error?.message ?? error));
const transport = new SSEClientTransport(new URL(url));
await client.connect(transport);

// Every endpoint event after the first: the SDK's EventSource is one object across its reconnects.
const endpoints = [transport._endpoint.href];
let reconnected;
const newEndpoint = new Promise((resolve) => {
  reconnected = resolve;
});
transport._eventSource.addEventListener("endpoint", (event) => {
  endpoints.push(new URL(event.data, url).href);
  reconnected();
});

const first = await call();
console.log(JSON.stringify({ ready: true, first }));

const lines = createInterface({ input: process.stdin });
const broken = new Promise((resolve) => lines.once("line", resolve));
await within(SIGNAL_SECONDS, "the test's signal", broken);
lines.close();
const signalled = performance.now();
await within(RECONNECT_SECONDS, "the reconnect", newEndpoint);
const reconnectMs = performance.now() - signalled;
// After the new endpoint event the SDK POSTs there; the session behind it never saw initialize.
const second = await call();
await client.close();
clearTimeout(timer);

console.log(
  JSON.stringify({
    sdk: "typescript",
    first,
    second,
    reconnect_ms: reconnectMs,
    endpoints,
    protocol_version: transport._protocolVersion ?? null,
    stream_errors: streamErrors.length,
  }),
);
