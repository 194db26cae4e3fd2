"""The core of aivp below the MCP tools: from a request in generic terms to checked, priced jobs.

`prepare` turns a `Call` (what a tool was asked) into a `JobRequest` (model, route, inputs, native
payload, estimate); `calls` builds the generic calls of the generation tools; `multishot` the Kling
multi-shot call; `candidates` the keyframe-candidate files; `batch` runs several jobs as one unit.
Everything here takes a `Studio` (settings, project, ledger, runner) explicitly.
"""
