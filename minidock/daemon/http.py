"""A small HTTP/1.1 server for a Unix socket: just what the Engine API needs.

Handlers return a `Response` (JSON or text), a `Stream` (an async iterator of
bytes, sent until it ends, then the connection closes; a chunked one, as Docker's
events, also ends when the client goes away) or a `Hijack` (after
a `101 UPGRADED`, the raw connection belongs to the handler, as Docker does
for attach and exec).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .. import explain, steps
from ..errors import InvalidParameter, MinidockError

log = logging.getLogger("minidock.http")
API_PREFIX = re.compile(r"^/v1\.\d+(?=/)")
REASONS = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request",
           403: "Forbidden", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error",
           501: "Not Implemented"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    multi: dict[str, list[str]] = field(default_factory=dict)  # every value of a repeated query key
    _parsed: Any = field(default=None, repr=False)

    def json(self) -> Any:
        """The body, parsed once (the schema check and the handler both read it)."""
        if self._parsed is None:
            try:
                self._parsed = json.loads(self.body) if self.body else {}
            except ValueError:
                raise InvalidParameter("invalid JSON in request body") from None
        return self._parsed

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true", "yes")


@dataclass
class Response:
    status: int = 200
    body: Any = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)  # more, e.g. X-Docker-Container-Path-Stat

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if self.content_type == "application/json":
            return (json.dumps(self.body) + "\n").encode()
        return str(self.body).encode()


@dataclass
class Stream:
    chunks: AsyncIterator[bytes]
    content_type: str = "application/vnd.docker.raw-stream"
    # HTTP chunks, as Go's server sends a body of unknown length: docker-py decodes a
    # JSON stream (pull, events) chunk by chunk, and a body without them as one document.
    # A chunked stream also ends when the client hangs up, even while it waits for a chunk.
    chunked: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hijack:
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    content_type: str = "application/vnd.docker.raw-stream"


Handler = Callable[[Request], Awaitable[Response | Stream | Hijack]]


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        # {name*} takes slashes too, as an image's repository does (nicolaka/netshoot)
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)",
                                        re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+)", pattern)) + "$")
        self.routes.append((method, regex, handler))

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        path_known = False
        for m, regex, handler in self.routes:
            found = regex.match(path)
            if found:
                path_known = True
                if m == method:
                    return handler, {k: unquote(v) for k, v in found.groupdict().items()}, True
        return None, {}, path_known


def peer_uid(writer: asyncio.StreamWriter) -> int:
    sock = writer.get_extra_info("socket")
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    line = await reader.readline()
    if not line:
        return None
    try:
        method, target, _version = line.decode("latin-1").split()
    except ValueError:
        raise MinidockError("malformed request line") from None
    headers: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()).strip():  # trailer fields, then the blank line
                    pass
                break
            parts.append(await reader.readexactly(size))
            await reader.readline()
        body = b"".join(parts)
    elif headers.get("content-length"):
        length = int(headers["content-length"])
        # a tar for `docker cp` (docker-py sends its length) may be larger than any JSON
        if length > (1 << 30 if method == "PUT" and target.split("?", 1)[0].endswith("/archive") else 64 << 20):
            raise MinidockError("request body too large")
        body = await reader.readexactly(length)
    url = urlsplit(target)
    path = API_PREFIX.sub("", url.path)
    multi = parse_qs(url.query, keep_blank_values=True)
    query = {k: v[-1] for k, v in multi.items()}
    return Request(method, path, query, headers, body, multi=multi)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


BASE_HEADERS = {"Api-Version": "1.47", "Server": "minidock", "Ostype": "linux"}


async def serve_connection(router: Router, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        if peer_uid(writer) != 0:
            await asyncio.wait_for(_read_request(reader), 5)  # read it so the reply is not a reset
            writer.write(_head(403, {**BASE_HEADERS, "Content-Type": "application/json",
                                     "Connection": "close"}))
            writer.write(b'{"message":"permission denied: minidock is for root only"}\n')
            await writer.drain()
            return
        while True:
            try:
                req = await _read_request(reader)
            except (MinidockError, ValueError) as e:
                writer.write(_head(400, {**BASE_HEADERS, "Connection": "close"}))
                log.debug("bad request: %s", e)
                return
            if req is None:
                return
            handler, params, known = router.match(req.method, req.path)
            req.params = params
            # --explain: the kernel steps this request takes come back in a header
            recording = explain.Recording() if req.headers.get(explain.EXPLAIN_HEADER.lower()) else None
            steps.use_recording(recording)
            try:
                if handler is None:
                    raise _NotFoundRoute(req.path, known)
                result = await handler(req)
            except MinidockError as e:
                result = Response(e.status, {"message": e.message})
            except Exception as e:  # noqa: BLE001 - one bad request must not kill the daemon
                log.exception("%s %s failed", req.method, req.path)
                result = Response(500, {"message": f"internal error: {e}"})
            if isinstance(result, Response):
                body = result.encode()
                headers = {**BASE_HEADERS, **result.headers, "Content-Length": str(len(body))}
                if recording is not None:
                    headers[explain.EXPLAIN_HEADER] = json.dumps(recording.groups)
                if result.body is not None:
                    headers["Content-Type"] = result.content_type
                # a HEAD answer has the headers of the GET and no body (Docker's CLI pings with HEAD)
                writer.write(_head(result.status, headers) + (b"" if req.method == "HEAD" else body))
                await writer.drain()
                continue
            if isinstance(result, Stream):
                framing = {"Transfer-Encoding": "chunked"} if result.chunked else {}
                writer.write(_head(200, {**BASE_HEADERS, "Content-Type": result.content_type,
                                         "Connection": "close", **framing, **result.headers}))
                await writer.drain()
                if result.chunked:
                    await _send_chunked(result.chunks, reader, writer)
                    return
                async for chunk in result.chunks:
                    if chunk:
                        writer.write(chunk)
                        await writer.drain()
                return
            writer.write(_head(101, {**BASE_HEADERS, "Content-Type": result.content_type,
                                     "Connection": "Upgrade", "Upgrade": "tcp"}))
            await writer.drain()
            await result.handler(reader, writer)
            return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except Exception:  # noqa: BLE001
            pass


async def _send_chunked(chunks: AsyncIterator[bytes], reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
    """Each item as one HTTP chunk, until the iterator ends or the client's side reads EOF."""
    items = aiter(chunks)
    hangup: asyncio.Future[bytes] = asyncio.ensure_future(reader.read(1))
    try:
        while True:
            nxt: asyncio.Future[bytes] = asyncio.ensure_future(anext(items))
            await asyncio.wait({nxt, hangup}, return_when=asyncio.FIRST_COMPLETED)
            while hangup.done() and not nxt.done():
                if hangup.exception() is not None or not hangup.result():  # the client is gone
                    nxt.cancel()
                    await asyncio.gather(nxt, return_exceptions=True)
                    return
                hangup = asyncio.ensure_future(reader.read(1))  # a stray byte: keep listening
                await asyncio.wait({nxt, hangup}, return_when=asyncio.FIRST_COMPLETED)
            try:
                chunk = nxt.result()
            except StopAsyncIteration:
                break
            if chunk:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    finally:
        hangup.cancel()
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


class _NotFoundRoute(MinidockError):
    def __init__(self, path: str, known: bool) -> None:
        super().__init__(f"page not found: {path}")
        self.status = 405 if known else 404
