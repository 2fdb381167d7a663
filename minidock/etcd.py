"""A thin asyncio client of etcd v3's JSON gateway (`/v3/kv/…`, `/v3/lease/…`,
`/v3/watch`): ranges, puts, deletes, transactions, leases with keepalive,
and a supervised watch.

Our own rather than etcd3gw: etcd3gw is synchronous (requests, a thread per
watch), talks to one endpoint, and its watch blocks without a deadline when
the member it reads from dies. The daemon needs every call bounded (an
overlay start fails within 3 s when etcd is away), failover across the
cluster's members, and a watch that notices silence (progress
notifications) and resumes from the last revision it saw. Over HTTP/1.1 and
JSON that is two hundred lines with no dependency.

Keys and values are str here; the gateway's base64 stays inside this module.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("minidock.etcd")
CALL_TIMEOUT = 1.0  # per member
CALL_BUDGET = 2.0  # per call, whatever the members: a refusal well within the 3 s users are promised
WATCH_SILENCE = 4.0  # no event nor progress notification for this long: the stream is dead


class EtcdError(Exception):
    pass


class Unavailable(EtcdError):
    """No member answered in time."""


class Compacted(EtcdError):
    """The revision a watch asked to resume from is gone: resync fully."""


def _b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def _unb64(s: str) -> str:
    return base64.b64decode(s).decode()


def prefix_end(prefix: str) -> str:
    """The range end that makes a range request cover every key under `prefix`."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return raw.decode()


@dataclass
class KV:
    key: str
    value: str
    mod_revision: int
    create_revision: int
    lease: int = 0

    @classmethod
    def of(cls, d: dict[str, Any]) -> KV:
        return cls(_unb64(d["key"]), _unb64(d.get("value", "")), int(d.get("mod_revision", 0)),
                   int(d.get("create_revision", 0)), int(d.get("lease", 0)))


@dataclass
class Event:
    kind: str  # "put" or "delete"
    kv: KV
    revision: int


def parse_endpoints(url: str) -> list[tuple[str, int]]:
    """etcd://HOST:2379[,HOST:2379…] (http:// too) → [(host, port)]."""
    out = []
    for part in url.split(","):
        part = part.strip()
        if not part:
            continue
        if "://" not in part:
            part = "etcd://" + part
        u = urlsplit(part)
        if u.scheme not in ("etcd", "http") or not u.hostname:
            raise ValueError(f"invalid cluster store {url!r}: expected etcd://HOST:PORT[,HOST:PORT…]")
        out.append((u.hostname, u.port or 2379))
    if not out:
        raise ValueError(f"invalid cluster store {url!r}: expected etcd://HOST:PORT[,HOST:PORT…]")
    return out


# -- compare and request builders for txn(), in the gateway's JSON
def absent(key: str) -> dict[str, Any]:
    return {"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def holds(key: str, value: str) -> dict[str, Any]:
    return {"key": _b64(key), "target": "VALUE", "result": "EQUAL", "value": _b64(value)}


def unchanged(key: str, mod_revision: int) -> dict[str, Any]:
    return {"key": _b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(mod_revision)}


def put_op(key: str, value: str, lease: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
    if lease:
        body["lease"] = str(lease)
    return {"request_put": body}


def delete_op(key: str, prefix: bool = False) -> dict[str, Any]:
    body = {"key": _b64(key)}
    if prefix:
        body["range_end"] = _b64(prefix_end(key))
    return {"request_delete_range": body}


class Etcd:
    def __init__(self, endpoints: list[tuple[str, int]]) -> None:
        self.endpoints = endpoints
        self._preferred = 0  # the member that answered last
        self.round_trips = 0  # counted for the bench: etcd round trips per start

    # -- transport
    async def _request(self, host: str, port: int, path: str, body: dict[str, Any],
                       timeout: float) -> dict[str, Any]:
        return await asyncio.wait_for(self._exchange(host, port, path, body), timeout)

    async def _exchange(self, host: str, port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            data = json.dumps(body).encode()
            writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
            status, headers = await _read_head(reader)
            raw = await _read_body(reader, headers)
        finally:
            writer.close()
        reply = json.loads(raw or b"{}")
        if status != 200:
            raise EtcdError(reply.get("message") or reply.get("error") or f"HTTP {status}")
        return reply

    async def call(self, path: str, body: dict[str, Any], timeout: float = CALL_TIMEOUT) -> dict[str, Any]:
        """POST to one member after another, starting with the one that answered last."""
        self.round_trips += 1
        last: Exception | None = None
        n = len(self.endpoints)
        deadline = asyncio.get_running_loop().time() + CALL_BUDGET
        for i in range(n):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            k = (self._preferred + i) % n
            host, port = self.endpoints[k]
            try:
                reply = await self._request(host, port, path, body, min(timeout, left))
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
                last = e
                continue
            self._preferred = k
            return reply
        raise Unavailable(f"cluster store unavailable: no etcd member answered ({last or 'no members'})")

    # -- kv
    async def get(self, key: str) -> KV | None:
        kvs = (await self.call("/v3/kv/range", {"key": _b64(key)})).get("kvs") or []
        return KV.of(kvs[0]) if kvs else None

    async def range(self, prefix: str) -> tuple[list[KV], int]:
        """Every key under `prefix`, and the store's revision when read."""
        reply = await self.call("/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))})
        return [KV.of(d) for d in reply.get("kvs") or []], int(reply["header"]["revision"])

    async def put(self, key: str, value: str, lease: int = 0) -> int:
        body = put_op(key, value, lease)["request_put"]
        return int((await self.call("/v3/kv/put", body))["header"]["revision"])

    async def delete(self, key: str, prefix: bool = False) -> int:
        body = delete_op(key, prefix)["request_delete_range"]
        return int((await self.call("/v3/kv/deleterange", body)).get("deleted", 0))

    async def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
                  failure: list[dict[str, Any]] | None = None) -> bool:
        """All of `success` if every compare holds, else `failure`; True if it held."""
        reply = await self.call("/v3/kv/txn", {"compare": compare, "success": success, "failure": failure or []})
        return bool(reply.get("succeeded"))

    # -- leases
    async def grant(self, ttl: int) -> int:
        return int((await self.call("/v3/lease/grant", {"TTL": str(ttl)}))["ID"])

    async def keepalive(self, lease: int) -> int:
        """Renew `lease` once; its remaining TTL, 0 if it has expired."""
        reply = await self.call("/v3/lease/keepalive", {"ID": str(lease)})
        return int((reply.get("result") or {}).get("TTL", 0))

    async def revoke(self, lease: int) -> None:
        with contextlib.suppress(EtcdError):
            await self.call("/v3/kv/lease/revoke", {"ID": str(lease)})

    async def status(self, host: str, port: int) -> dict[str, Any]:
        return await self._request(host, port, "/v3/maintenance/status", {}, CALL_TIMEOUT)

    # -- watch
    async def watch(self, prefix: str, start_revision: int,
                    on_progress: Callable[[int], None] | None = None) -> AsyncIterator[list[Event]]:
        """Batches of events under `prefix` from `start_revision`. Raises Unavailable when no
        member streams (after trying each) and Compacted when the revision is gone; a
        stream silent for WATCH_SILENCE (etcd sends progress notifications more often,
        as asked) is abandoned and resumed elsewhere from the last revision + 1."""
        next_rev = start_revision
        failures = 0
        n = len(self.endpoints)
        while True:
            k = (self._preferred + failures) % n
            host, port = self.endpoints[k]
            try:
                async for batch, rev in self._stream(host, port, prefix, next_rev):
                    failures = 0
                    if batch:
                        yield batch
                    next_rev = max(next_rev, rev + 1)
                    if on_progress is not None:
                        on_progress(rev)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
                log.info("watch on %s:%d ended (%s); resuming from revision %d", host, port, e or "silence",
                         next_rev)
            failures += 1
            if failures >= n:
                if failures >= 2 * n:
                    raise Unavailable("cluster store unavailable: no etcd member streams the watch")
                await asyncio.sleep(0.2)

    async def _stream(self, host: str, port: int, prefix: str,
                      start: int) -> AsyncIterator[tuple[list[Event], int]]:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CALL_TIMEOUT)
        try:
            body = json.dumps({"create_request": {
                "key": _b64(prefix), "range_end": _b64(prefix_end(prefix)),
                "start_revision": str(start), "progress_notify": True}}).encode()
            writer.write(f"POST /v3/watch HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            status, headers = await asyncio.wait_for(_read_head(reader), CALL_TIMEOUT)
            if status != 200:
                raise OSError(f"watch answered HTTP {status}")
            async for chunk in _chunks(reader, WATCH_SILENCE):
                for line in chunk.splitlines():
                    if not line.strip():
                        continue
                    msg = json.loads(line)
                    if "error" in msg:
                        raise OSError(str(msg["error"].get("message")))
                    result = msg.get("result") or {}
                    if int(result.get("compact_revision", 0) or 0) > 0:
                        raise Compacted(f"revision {start} has been compacted")
                    rev = int(result.get("header", {}).get("revision", 0))
                    events = [Event("delete" if e.get("type") == "DELETE" else "put", KV.of(e["kv"]),
                                    int(e["kv"].get("mod_revision", rev))) for e in result.get("events") or []]
                    yield events, rev
        finally:
            writer.close()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    if not status_line:
        raise asyncio.IncompleteReadError(b"", None)
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return status, headers
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = [c async for c in _chunks(reader, CALL_TIMEOUT)]
        return b"".join(parts)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read()


async def _chunks(reader: asyncio.StreamReader, silence: float) -> AsyncIterator[bytes]:
    while True:
        size_line = await asyncio.wait_for(reader.readline(), silence)
        if not size_line:
            raise asyncio.IncompleteReadError(b"", None)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readline()
            return
        data = await asyncio.wait_for(reader.readexactly(size + 2), silence)
        yield data[:-2]
