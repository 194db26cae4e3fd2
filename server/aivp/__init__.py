"""aivp: an MCP server and Agent Skill for AI video production."""

__version__ = "0.1.0"
