"""An MCP client for the end-to-end tests, on the official Python SDK: an
agent's side. It connects through the gateway with a bearer token, lists
tools, resources and prompts, makes the calls it is given, reads resources, and prints what it got
as one JSON object (errors as {"MCPError": {code, message, data}}).

usage: python client.py URL TOKEN CA_FILE MODE CALLS_JSON
  MODE: auto (2026-07-28, falling back) or legacy (2025-11-25 handshake)
  CALLS_JSON: [["tool", {args}], ...] and ["read", "uri"] entries
"""
import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


def error(e: MCPError) -> dict:
    return {"MCPError": {"code": e.code, "message": e.message, "data": e.error.data}}


async def main(url: str, token: str, ca: str, mode: str, calls: list) -> None:
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        verify=ca,
        timeout=httpx2.Timeout(30, read=120),
    )
    out = {}
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as c:
        out["protocol_version"] = c.protocol_version
        out["tools"] = [t.name for t in (await c.list_tools()).tools]
        out["resources"] = [str(r.uri) for r in (await c.list_resources()).resources]
        out["prompts"] = [p.name for p in (await c.list_prompts()).prompts]
        results = []
        for call in calls:
            try:
                if call[0] == "read":
                    r = await c.read_resource(call[1])
                else:
                    r = await c.call_tool(call[0], call[1])
                results.append(r.model_dump(by_alias=True, exclude_none=True, mode="json"))
            except MCPError as e:
                results.append(error(e))
        out["results"] = results
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])))
