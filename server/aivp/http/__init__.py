"""aivp over streamable HTTP (`aivp serve --http`): the app, its auth, and file downloads.

`app.create_app(server, settings, ...)` wraps the SDK's streamable HTTP app of an aivp `MCPServer` with
DNS-rebinding protection, bearer auth (static tokens and/or OAuth JWTs, `auth.py`), per-tool scopes
(`guard.py`), `/healthz`, RFC 9728 metadata, and `/files/...` downloads (`files.py`); `app.serve(...)`
runs it under uvicorn. `links.py` (standard library only) makes the signed download links that results
carry. This package imports nothing above the settings and the project: the command line builds the
MCP server and hands it in, and other front ends (the review UI) add their routes through `create_app`.
"""
