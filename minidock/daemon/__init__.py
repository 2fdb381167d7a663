"""The daemon: an asyncio HTTP/JSON server on a Unix socket (Docker's Engine API paths)."""
