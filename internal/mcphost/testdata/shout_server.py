#!/usr/bin/env python3
"""A stdio MCP server in Python's standard library alone: one tool, shout,
that upper-cases its text and says which replica answered. Hosted by
internal/mcphost's tests to show a Python server behind the gateway."""
import json
import os
import sys


def answer(msg_id, result=None, error=None):
    out = {"jsonrpc": "2.0", "id": msg_id}
    if error is not None:
        out["error"] = error
    else:
        out["result"] = result
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


TOOLS = [{
    "name": "shout",
    "description": "Upper-case a text.",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}]

for line in sys.stdin:
    msg = json.loads(line)
    method, msg_id = msg.get("method"), msg.get("id")
    if msg_id is None:
        continue  # a notification
    params = msg.get("params") or {}
    if method == "initialize":
        answer(msg_id, {"protocolVersion": params.get("protocolVersion"), "capabilities": {"tools": {}},
                        "serverInfo": {"name": "py-shout", "version": "1.0"}})
    elif method == "ping":
        answer(msg_id, {})
    elif method == "tools/list":
        answer(msg_id, {"tools": TOOLS})
    elif method == "tools/call" and params.get("name") == "shout":
        text = (params.get("arguments") or {}).get("text", "")
        answer(msg_id, {"content": [{"type": "text", "text": text.upper() + " from " + os.environ.get("RAYGO_MCP_REPLICA", "?")}]})
    else:
        answer(msg_id, error={"code": -32601, "message": "no method " + str(method)})
