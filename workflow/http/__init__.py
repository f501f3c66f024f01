"""The embedding API over HTTP (extra `http`): `create_app` in `workflow.http.app`, docs/http.md.

Nothing is imported here, so that importing a submodule costs only what it needs.
"""
