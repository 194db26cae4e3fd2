"""The review page: candidates, clips and the storyboard board, to look at and choose.

One HTML page (page.py, static/review.html) serves three ways: as MCP App resources (`ui://aivp/…`,
registered by tools/review.py), in a browser through `aivp review` (serve.py: the routes of routes.py
behind the one-time token of auth.py), and mounted by another Starlette server behind its own auth
(`routes.review_routes(backend, project_root)`). The page only calls aivp's tools and reads its resources.
"""
