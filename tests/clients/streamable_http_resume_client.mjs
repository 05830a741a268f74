// A real TypeScript SDK client over Streamable HTTP across the loss of its session on the server: initialize and
// call a tool, let the test restart the server or let it reap the session, call the tool twice more with the
// session ID it has (the SDK never initializes again after a 404), print every outcome as JSON.
//
//   node streamable_http_resume_client.mjs URL TOOL ARGUMENTS_JSON [--no-get-stream]
//
// 1. connect (initialize) and call TOOL; print {"ready": true, "first": ..., "session_id": ...} on a line of its own;
// 2. wait for a line on stdin: the test has restarted the server on the same port, or seen it reap the session;
// 3. call TOOL twice, one call after the other, and print the report.
//
// The SDK keeps a GET stream open beside its POSTs, and an open stream holds a session on the server (it counts as
// a request in flight), so a connected client's session is never idle. A session is reaped once its client's
// stream is gone: it gave up reconnecting (two retries) or never had one. --no-get-stream stands in for that: its
// fetch answers the SDK's GET with 405 itself, as a server that offers no stream does, and the SDK opens none.
//
// tests/test_streamable_http_resume.py runs a copy of this file beside an installed @modelcontextprotocol/sdk, as
// tests/test_real_clients.py does with sdk_client.mjs.
import { createInterface } from "node:readline";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const SECONDS = 75; // the whole run
const CALL_SECONDS = 15; // each call
const SIGNAL_SECONDS = 30; // from the ready line to the test's line on stdin
const [url, tool, args, ...flags] = process.argv.slice(2);

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
      code: null,
      message: null,
      result: result.structuredContent ?? null,
    };
  } catch (error) {
    // A refused POST is a StreamableHTTPError whose code is the HTTP status (404 "Session not found").
    return {
      ok: false,
      ms: performance.now() - started,
      code: typeof error?.code === "number" ? error.code : null,
      message: String(error?.message ?? error),
    };
  }
}

const noGetStream = flags.includes("--no-get-stream");
const fetchWithoutStream = (input, init) =>
  init?.method === "GET" ? Promise.resolve(new Response(null, { status: 405 })) : fetch(input, init);

const client = new Client({ name: "initfix-streamable-http-resume-client", version: "1" });
// Errors of the GET stream (its end, a refused reconnect) are the transport's business; note them only.
const streamErrors = [];
client.onerror = (error) => streamErrors.push(String(error?.message ?? error));
const transport = new StreamableHTTPClientTransport(new URL(url), noGetStream ? { fetch: fetchWithoutStream } : {});
await client.connect(transport);

const first = await call();
const sessionBefore = transport.sessionId ?? null;
console.log(JSON.stringify({ ready: true, first, session_id: sessionBefore }));

const lines = createInterface({ input: process.stdin });
const signal = new Promise((resolve) => lines.once("line", resolve));
await within(SIGNAL_SECONDS, "the test's signal", signal);
lines.close();
const calls = [await call(), await call()];
const sessionAfter = transport.sessionId ?? null;
// No DELETE: the test decides what happens to the session, and stock would answer it 404 anyway.
await client.close();
clearTimeout(timer);

console.log(
  JSON.stringify({
    sdk: "typescript",
    first,
    calls,
    session_before: sessionBefore,
    session_after: sessionAfter,
    protocol_version: transport.protocolVersion ?? null,
    stream_errors: streamErrors,
  }),
);
