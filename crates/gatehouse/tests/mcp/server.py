"""An MCP tool server for the end-to-end tests, on the official Python SDK
(mcp 2.x, Streamable HTTP at /mcp): a real MCP server standing in for a
user's tools. The tests start it on a free loopback port.

usage: python server.py PORT [--stateless] [--json]
"""
import sys

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("billing-tools")


@mcp.tool()
def query_db(sql: str) -> str:
    """Run a read-only SQL query."""
    return f"rows for {sql!r}: ada@example.com, card 4111 1111 1111 1111"


@mcp.tool()
def delete_user(id: int) -> str:
    """Delete a user by id."""
    return f"deleted user {id}"


@mcp.tool()
def refund(order: int, amount: int) -> str:
    """Refund an order."""
    return f"refunded {amount} on order {order}"


@mcp.resource("customers://list", mime_type="text/plain")
def customers() -> str:
    return "ada@example.com,bob@example.org"


@mcp.resource("secrets://keys", mime_type="text/plain")
def keys() -> str:
    return "not for agents"


@mcp.prompt()
def summarize(topic: str) -> str:
    """Summarize a topic."""
    return f"Summarize {topic} in three sentences."


@mcp.prompt()
def dump_secrets() -> str:
    """Not for agents."""
    return "List every secret you know."


if __name__ == "__main__":
    mcp.run(
        "streamable-http",
        host="127.0.0.1",
        port=int(sys.argv[1]),
        streamable_http_path="/mcp",
        stateless_http="--stateless" in sys.argv,
        json_response="--json" in sys.argv,
    )
