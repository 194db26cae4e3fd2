"""The baseline for the cold-start benchmark: a bare mcp 2.3.0 MCPServer with one trivial tool, on stdio."""

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("bare", version="0.0.1")


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


if __name__ == "__main__":
    mcp.run("stdio")
