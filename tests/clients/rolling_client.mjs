// Real TypeScript SDK clients through a balancer while its replicas restart one after the other: each connects
// once and calls a tool at a steady pace until told to stop; every call is a JSON line on stdout.
//
//   node rolling_client.mjs CONFIG_JSON
//
// CONFIG_JSON: {"url": ".../sse" or ".../mcp", "transport": "sse" or "http", "clients": N, "interval_ms": 250,
//   "call_timeout_ms": 5000, "tool": NAME, "arguments": {...}, "slow_every": K, "slow_seconds": 2,
//   "max_seconds": 300}. Client i (0-based) calls the tool `slow` with {"seconds": slow_seconds} instead when
//   slow_every > 0 and i % slow_every == slow_every - 1; its calls may wait slow_seconds longer.
//
// Lines, each a JSON object with "event" and "at" (milliseconds since the epoch, as Python's time.time() * 1000):
//   {"event": "connected", "client": i, "ok": true|false, "error": ...}   its initialize (and, on SSE, its stream)
//   {"event": "ready", "connected": n}                                   every client has tried to connect
//   {"event": "stream", "client": i, "replica": "a"}                     a GET that opened or reopened its stream
//   {"event": "call", "client": i, "slow": bool, "start": ms, "end": ms, "outcome": "ok"|"failed"|"timeout",
//    "replica": "a"|null, "code": ..., "message": ...}                    "replica": who took the POST
//   {"event": "done"}                                                    after "stop" on stdin, once no call is left
//
// A client sends `initialize` once: one that fails to connect stays unconnected, as the SDK leaves it. The balancer
// names the replica that answered in the response header X-Served-By (deploy/haproxy.cfg).
//
// tests/test_rolling_deploy.py and bench/rolling.py run a copy of this file beside an installed
// @modelcontextprotocol/sdk (race/npm.py).
import { createInterface } from "node:readline";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const config = JSON.parse(process.argv[2]);
const SLOW_TOOL = "slow";
const REQUEST_TIMEOUT = -32001; // the SDK's own code when a request's timeout passes with no answer

const now = () => performance.timeOrigin + performance.now();
const emit = (line) => process.stdout.write(`${JSON.stringify({ ...line, at: now() })}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const CONNECT_SECONDS = 30;

function within(seconds, what, promise) {
  let expire;
  const deadline = new Promise((_, reject) => {
    expire = setTimeout(() => reject(new Error(`${what} took more than ${seconds} s`)), seconds * 1000);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(expire));
}

const limit = setTimeout(() => {
  console.error(`still running after ${config.max_seconds} s`);
  process.exit(2);
}, config.max_seconds * 1000);

let stopping = false;
const stopped = new Promise((resolve) => {
  const lines = createInterface({ input: process.stdin });
  lines.once("line", () => {
    stopping = true;
    lines.close();
    resolve();
  });
});

// fetch for one client's transport: notes which replica took each tools/call (by its trace_id) and each stream.
function trackingFetch(index, servedBy) {
  return async (input, init) => {
    const response = await fetch(input, init);
    const replica = response.headers.get("x-served-by");
    const method = init?.method ?? "GET";
    if (method === "GET" && response.status === 200) {
      emit({ event: "stream", client: index, replica });
    } else if (method === "POST" && typeof init.body === "string") {
      const trace = JSON.parse(init.body)?.params?.arguments?.trace_id;
      if (typeof trace === "string") servedBy.set(trace, replica);
    }
    return response;
  };
}

async function run(index) {
  const slow = config.slow_every > 0 && index % config.slow_every === config.slow_every - 1;
  const servedBy = new Map();
  const url = new URL(config.url);
  const fetchOption = { fetch: trackingFetch(index, servedBy) };
  const transport =
    config.transport === "sse" ? new SSEClientTransport(url, fetchOption) : new StreamableHTTPClientTransport(url, fetchOption);
  const client = new Client({ name: `initfix-rolling-${index}`, version: "1" });
  // Errors of the stream (its end, a reconnect) are the transport's business; the calls show what they cost.
  client.onerror = () => {};
  try {
    await within(CONNECT_SECONDS, "connect", client.connect(transport));
    emit({ event: "connected", client: index, ok: true });
  } catch (error) {
    emit({ event: "connected", client: index, ok: false, error: String(error?.message ?? error) });
    return { client, connected: false, loop: async () => {} };
  }
  const name = slow ? SLOW_TOOL : config.tool;
  const timeout = config.call_timeout_ms + (slow ? config.slow_seconds * 1000 : 0);
  let sequence = 0;
  async function call() {
    const trace = `rolling-${index}-${sequence++}`;
    const args = slow ? { seconds: config.slow_seconds, trace_id: trace } : { ...config.arguments, trace_id: trace };
    const start = now();
    let outcome = "ok";
    let code = null;
    let message = null;
    try {
      const result = await client.callTool({ name, arguments: args }, undefined, { timeout });
      if (result.isError === true) {
        outcome = "failed";
        message = JSON.stringify(result.content ?? null).slice(0, 300);
      }
    } catch (error) {
      code = typeof error?.code === "number" ? error.code : null;
      outcome = code === REQUEST_TIMEOUT ? "timeout" : "failed";
      message = String(error?.message ?? error).slice(0, 300);
    }
    emit({ event: "call", client: index, slow, start, end: now(), outcome, replica: servedBy.get(trace) ?? null, code, message });
    servedBy.delete(trace);
  }
  async function loop() {
    while (!stopping) {
      const started = now();
      await call();
      const rest = config.interval_ms - (now() - started);
      if (rest > 0 && !stopping) await sleep(rest);
    }
  }
  return { client, connected: true, loop };
}

const clients = await Promise.all(Array.from({ length: config.clients }, (_, index) => run(index)));
emit({ event: "ready", connected: clients.filter((c) => c.connected).length });
await Promise.all([...clients.map((c) => c.loop()), stopped]);
emit({ event: "done" });
clearTimeout(limit);
// No close(): a DELETE or a stream's end is not part of what is measured; the process ends with its sockets.
process.exit(0);
