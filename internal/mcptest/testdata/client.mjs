// client.mjs drives an MCP server with the official TypeScript SDK's
// Client, following a JSON plan read from stdin, and prints one JSON
// document with what each step returned, how it failed, and how long it
// took. It is run by internal/mcptest (RunClient); see client.go there for
// the plan's fields.
//
//   RAYGO_MCP_NPM_DIR=DIR node client.mjs < plan.json
//
// The SDK is loaded from DIR/node_modules (scripts/ensure-mcp-npm.sh
// installs it there), so this file needs no node_modules of its own.
//
// Exit status: 0 when every session connected (a step that failed is
// reported in the document, not by the status: the caller decides);
// 2 when at least one session could not connect (the document still comes,
// with each session's connection error); 1 when the plan is bad or the SDK
// cannot be loaded (then only a message on stderr).

import { createRequire } from "node:module";
import path from "node:path";
import { performance } from "node:perf_hooks";

// Limits, so that a wrong plan fails instead of exhausting the machine.
const MAX_SESSIONS = 1000;
const MAX_PARALLEL = 1000;
const MAX_SLEEP_MS = 600000;
const DEFAULT_TIMEOUT_MS = 30000;

function die(msg) {
  process.stderr.write(`client.mjs: ${msg}\n`);
  process.exit(1);
}

const npmDir = process.env.RAYGO_MCP_NPM_DIR;
if (!npmDir) die("RAYGO_MCP_NPM_DIR is not set (the directory scripts/ensure-mcp-npm.sh installs into)");
const require = createRequire(path.join(npmDir, "package.json"));
let sdk;
try {
  sdk = {
    ...require("@modelcontextprotocol/sdk/client/index.js"),
    ...require("@modelcontextprotocol/sdk/client/stdio.js"),
    ...require("@modelcontextprotocol/sdk/client/streamableHttp.js"),
    ...require("@modelcontextprotocol/sdk/types.js"),
  };
} catch (e) {
  die(`cannot load @modelcontextprotocol/sdk from ${npmDir}/node_modules (run scripts/ensure-mcp-npm.sh): ${e.message}`);
}

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

// Keys each op accepts beside "op"; anything else is a mistake in the plan.
const OPS = {
  listTools: [],
  callTool: ["name", "arguments"],
  listResources: [],
  readResource: ["uri"],
  listPrompts: [],
  getPrompt: ["name", "arguments"],
  ping: [],
  sleep: ["ms"],
  parallel: ["steps"],
};

function checkSteps(steps, where) {
  if (!Array.isArray(steps)) throw new Error(`${where}: steps must be a list`);
  steps.forEach((s, i) => {
    const at = `${where}[${i}]`;
    if (s === null || typeof s !== "object") throw new Error(`${at}: a step must be an object`);
    const allowed = OPS[s.op];
    if (!allowed) throw new Error(`${at}: unknown op ${JSON.stringify(s.op)} (known: ${Object.keys(OPS).join(", ")})`);
    for (const k of Object.keys(s)) {
      if (k !== "op" && !allowed.includes(k)) throw new Error(`${at}: op ${s.op} takes no ${JSON.stringify(k)}`);
    }
    if ((s.op === "callTool" || s.op === "getPrompt") && typeof s.name !== "string") throw new Error(`${at}: ${s.op} needs a name`);
    if (s.op === "readResource" && typeof s.uri !== "string") throw new Error(`${at}: readResource needs a uri`);
    if (s.op === "sleep" && !(Number.isFinite(s.ms ?? 0) && (s.ms ?? 0) >= 0 && (s.ms ?? 0) <= MAX_SLEEP_MS)) throw new Error(`${at}: sleep needs ms in [0, ${MAX_SLEEP_MS}]`);
    if (s.op === "parallel") {
      if (!Array.isArray(s.steps) || s.steps.length > MAX_PARALLEL) throw new Error(`${at}: parallel needs at most ${MAX_PARALLEL} steps`);
      checkSteps(s.steps, `${at}.steps`);
    }
  });
}

function checkPlan(plan) {
  if (plan === null || typeof plan !== "object") throw new Error("the plan must be a JSON object");
  const t = plan.transport;
  if (!t || (!t.stdio === !t.http)) throw new Error('transport must have exactly one of "stdio" and "http"');
  if (t.stdio && typeof t.stdio.command !== "string") throw new Error("transport.stdio needs a command");
  if (t.http) {
    try { new URL(t.http.url); } catch { throw new Error(`transport.http.url ${JSON.stringify(t.http.url)} is not a URL`); }
  }
  const n = plan.sessions ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_SESSIONS) throw new Error(`sessions must be an integer in [1, ${MAX_SESSIONS}]`);
  const to = plan.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(to) || to <= 0) throw new Error("timeoutMs must be positive");
  checkSteps(plan.steps ?? [], "steps");
}

function errorOf(e) {
  const out = { message: String(e?.message ?? e) };
  // fetch hides the reason (ECONNREFUSED, a reset) in its cause.
  if (e?.cause?.message) out.message += `: ${e.cause.message}`;
  if (sdk.McpError && e instanceof sdk.McpError) {
    out.kind = "mcp";
    out.code = e.code;
    if (e.data !== undefined) out.data = e.data;
  } else if (sdk.StreamableHTTPError && e instanceof sdk.StreamableHTTPError) {
    out.kind = "http";
    if (typeof e.code === "number") out.code = e.code;
  } else {
    out.kind = "other";
    if (typeof e?.code === "number") out.code = e.code;
    else if (typeof e?.code === "string") out.message += ` (${e.code})`;
  }
  return out;
}

async function runStep(client, step, opts) {
  const start = performance.now();
  const r = { op: step.op };
  try {
    switch (step.op) {
      case "listTools": r.result = await client.listTools({}, opts); break;
      case "callTool": r.result = await client.callTool({ name: step.name, arguments: step.arguments ?? {} }, undefined, opts); break;
      case "listResources": r.result = await client.listResources({}, opts); break;
      case "readResource": r.result = await client.readResource({ uri: step.uri }, opts); break;
      case "listPrompts": r.result = await client.listPrompts({}, opts); break;
      case "getPrompt": r.result = await client.getPrompt({ name: step.name, arguments: step.arguments ?? {} }, opts); break;
      case "ping": r.result = await client.ping(opts); break;
      case "sleep": await new Promise((res) => setTimeout(res, step.ms ?? 0)); break;
      case "parallel": r.parallel = await Promise.all(step.steps.map((s) => runStep(client, s, opts))); break;
    }
  } catch (e) {
    r.error = errorOf(e);
  }
  r.ms = performance.now() - start;
  return r;
}

function makeTransport(t) {
  if (t.stdio) {
    return new sdk.StdioClientTransport({
      command: t.stdio.command,
      args: t.stdio.args ?? [],
      env: { ...sdk.getDefaultEnvironment(), ...(t.stdio.env ?? {}) },
      cwd: t.stdio.cwd,
      stderr: "inherit",
    });
  }
  return new sdk.StreamableHTTPClientTransport(new URL(t.http.url), {
    requestInit: { headers: t.http.headers ?? {} },
  });
}

async function runSession(plan, index) {
  const opts = { timeout: plan.timeoutMs ?? DEFAULT_TIMEOUT_MS };
  const s = { index, steps: [] };
  const client = new sdk.Client({ name: "raygo-mcptest", version: "1.0.0" }, { capabilities: {} });
  const transport = makeTransport(plan.transport);
  const start = performance.now();
  try {
    await client.connect(transport, opts);
  } catch (e) {
    s.connectMs = performance.now() - start;
    s.error = errorOf(e);
    try { await client.close(); } catch { /* already failed */ }
    return s;
  }
  s.connectMs = performance.now() - start;
  s.serverInfo = client.getServerVersion();
  for (const step of plan.steps ?? []) s.steps.push(await runStep(client, step, opts));
  try {
    // Over HTTP, end the session on the server too (a DELETE), as a
    // well-behaved client does, so that the server can free it at once.
    if (transport.terminateSession && transport.sessionId) await transport.terminateSession();
    await client.close();
  } catch (e) {
    s.closeError = errorOf(e);
  }
  return s;
}

let plan;
try {
  plan = JSON.parse(await readStdin());
  checkPlan(plan);
} catch (e) {
  die(`bad plan: ${e.message}`);
}

const start = performance.now();
const sessions = await Promise.all(Array.from({ length: plan.sessions ?? 1 }, (_, i) => runSession(plan, i)));
const doc = { totalMs: performance.now() - start, sessions };
const code = sessions.some((s) => s.error) ? 2 : 0;
// Exit only once stdout is flushed: a pipe is written asynchronously.
process.stdout.write(JSON.stringify(doc) + "\n", () => process.exit(code));
