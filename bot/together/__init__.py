"""Together AI's video API: the models (no I/O) and the HTTP client (httpx).

Import from the submodules: importing this package loads no HTTP client.
"""
