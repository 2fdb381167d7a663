"""The CLI's whole transport: HTTP/1.1 over the daemon's Unix socket.

Kept free of pyroute2 and the service layer so `minidock ps` starts fast.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import struct
import sys
from typing import Any
from urllib.parse import quote, urlencode

from . import explain  # stdlib only: the CLI stays free of pyroute2 and the daemon

DEFAULT_SOCKET = "/run/minidock/minidock.sock"


class DaemonError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None = None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def socket_path(host: str | None) -> str:
    host = host or os.environ.get("MINIDOCK_HOST") or f"unix://{DEFAULT_SOCKET}"
    if not host.startswith("unix://"):
        raise DaemonError(0, f"unsupported host {host!r}: only unix:// sockets")
    return host[len("unix://"):]


# an --explain answer is one header line of JSON; http.client's 64 KiB cap on a
# line is too small for a whole firewall's worth of commands
http.client._MAXLINE = 16 << 20  # type: ignore[attr-defined]


class Client:
    def __init__(self, host: str | None = None, explain: bool = False, api_version: str = "1.47") -> None:
        self.path = socket_path(host)
        self.explain = explain
        self.prefix = f"/v{api_version}"  # another engine (the bench's dockerd) may speak an older one
        self._idle: UnixHTTPConnection | None = None

    def _conn(self) -> tuple[UnixHTTPConnection, bool]:
        """The connection the last whole answer left open (HTTP keep-alive, as Docker's clients
        do: `run` makes several requests), unless the daemon has closed it since; else a new one
        (and whether it was kept). Taken, not shared: a second thread asking meanwhile gets a
        connection of its own."""
        conn, self._idle = self._idle, None
        if conn is not None and conn.sock is not None:
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if not readable:  # an idle connection the daemon wrote to or closed is stale
                return conn, True
            conn.close()
        return UnixHTTPConnection(self.path), False

    def _done(self, conn: UnixHTTPConnection, resp: http.client.HTTPResponse) -> None:
        """The answer was read whole: keep its connection for the next request, if it may be."""
        if resp.will_close or self._idle is not None:
            conn.close()
        else:
            self._idle = conn

    def close(self) -> None:
        conn, self._idle = self._idle, None
        if conn is not None:
            conn.close()

    def _send(self, method: str, path: str, query: dict[str, Any] | None, body: Any,
              headers: dict[str, str] | None = None,
              raw: bytes | None = None) -> tuple[UnixHTTPConnection, http.client.HTTPResponse]:
        url = self.prefix + path
        if query:
            q = {k: ("1" if v is True else "0" if v is False else v) for k, v in query.items() if v is not None}
            url += "?" + urlencode(q, doseq=True)
        data = json.dumps(body).encode() if body is not None else raw
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        if self.explain:
            hdrs[explain.EXPLAIN_HEADER] = "1"
        conn, kept = self._conn()
        try:
            try:
                conn.request(method, url, body=data, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError):
                if not kept:
                    raise
                # a kept connection the daemon closed as we wrote: it read nothing, ask anew
                conn.close()
                conn = UnixHTTPConnection(self.path)
                conn.request(method, url, body=data, headers=hdrs)
        except (FileNotFoundError, ConnectionRefusedError):
            raise DaemonError(
                0, f"Cannot connect to the minidock daemon at unix://{self.path}. "
                   "Is the minidock daemon running?") from None
        except PermissionError:
            raise DaemonError(0, f"permission denied while trying to connect to unix://{self.path}") from None
        try:
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            raise DaemonError(0, f"error during connect to unix://{self.path}: {e}") from None

    def call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        conn, resp = self._send(method, path, query, body)
        try:
            raw = resp.read()
        except BaseException:
            conn.close()
            raise
        self._done(conn, resp)
        self._print_explanation(resp)
        data: Any = None
        if raw and resp.getheader("Content-Type", "").startswith("application/json"):
            data = json.loads(raw)
        elif raw:
            data = raw.decode(errors="replace")
        if resp.status >= 400:
            msg = data.get("message") if isinstance(data, dict) else str(data)
            raise DaemonError(resp.status, msg or f"HTTP {resp.status}")
        return data

    def put_tar(self, path: str, query: dict[str, Any], data: bytes) -> None:
        """PUT a tar archive (`cp` into a container)."""
        conn, resp = self._send("PUT", path, query, None, {"Content-Type": "application/x-tar"}, data)
        try:
            raw = resp.read()
        except BaseException:
            conn.close()
            raise
        self._done(conn, resp)
        if resp.status >= 400:
            try:
                msg = json.loads(raw).get("message", "")
            except ValueError:
                msg = raw.decode(errors="replace")
            raise DaemonError(resp.status, msg or f"HTTP {resp.status}")

    def head(self, path: str, query: dict[str, Any] | None = None) -> dict[str, str]:
        """The headers of a HEAD answer (a path's stat); DaemonError(status, "") if it failed."""
        conn, resp = self._send("HEAD", path, query, None)
        try:
            resp.read()
        except BaseException:
            conn.close()
            raise
        self._done(conn, resp)
        if resp.status >= 400:
            raise DaemonError(resp.status, "")
        return {k.lower(): v for k, v in resp.getheaders()}

    def _print_explanation(self, resp: http.client.HTTPResponse) -> None:
        """What the daemon did to the kernel for this request, as shell commands, on stderr."""
        groups = json.loads(resp.getheader(explain.EXPLAIN_HEADER) or "[]") if self.explain else []
        if groups:
            sys.stderr.write(explain.render(groups))
            sys.stderr.flush()

    def stream(self, method: str, path: str, query: dict[str, Any] | None = None) -> http.client.HTTPResponse:
        conn, resp = self._send(method, path, query, None)
        if resp.status >= 400:
            raw = resp.read()
            conn.close()
            try:
                msg = json.loads(raw).get("message", "")
            except ValueError:
                msg = raw.decode(errors="replace")
            raise DaemonError(resp.status, msg)
        return resp

    def hijack(self, path: str, query: dict[str, Any] | None = None, body: Any = None) -> socket.socket:
        """POST that upgrades to a raw stream (attach, exec start); returns the socket.

        Written by hand rather than with http.client, whose buffered reader
        could swallow the first bytes of the stream.
        """
        url = self.prefix + path + ("?" + urlencode(query) if query else "")
        data = json.dumps(body if body is not None else {}).encode()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise DaemonError(0, f"Cannot connect to the minidock daemon at unix://{self.path}. "
                                 "Is the minidock daemon running?") from None
        sock.sendall(
            f"POST {url} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        head = b""
        while b"\r\n\r\n" not in head:
            ch = sock.recv(1)
            if not ch:
                break
            head += ch
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1]) if len(status_line.split()) > 1 else 500
        if status >= 400:
            length = 0
            for line in header_lines:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            raw = b""
            while len(raw) < length:
                chunk = sock.recv(length - len(raw))
                if not chunk:
                    break
                raw += chunk
            sock.close()
            try:
                msg = json.loads(raw).get("message", "")
            except ValueError:
                msg = raw.decode(errors="replace")
            raise DaemonError(status, msg)
        return sock


def demux(buf: bytearray) -> list[tuple[int, bytes]]:
    """Split Docker's multiplexed (stdcopy) frames off the front of `buf`."""
    out = []
    while len(buf) >= 8:
        stream, size = struct.unpack(">BxxxL", bytes(buf[:8]))
        if len(buf) < 8 + size:
            break
        out.append((stream, bytes(buf[8:8 + size])))
        del buf[:8 + size]
    return out


def q(ref: str) -> str:
    return quote(ref, safe="")
