"""The lean road for the three commands people type most: `ps`, `network ls`
and `inspect NAME…`, in their plain forms.

Python pays for every module it imports, and click, typing, re, json and
http.client together cost several times what the whole `docker ps` takes.
This module imports only C modules (`_socket`, `_json`) and the stdlib-free
helpers of format.py and tabwriter.py, speaks just enough HTTP/1.1 over
the Unix socket for one GET, and prints through the same row and table
functions as the click commands, so the bytes are the same.

Anything it does not recognise — another flag, a template, an error from
the daemon, a response it cannot read, --explain — makes `run` return
None and the caller hands the whole command line to click (main.py),
which then does everything itself, error messages included. Only GETs are
sent here, so asking twice is harmless.
"""

from __future__ import annotations

import _json
import _socket
import os
import sys
import time

from .. import API_VERSION
from .format import NETWORK_COLUMNS, PS_COLUMNS, default_table, network_row, ps_row

DEFAULT_SOCKET = "/run/minidock/minidock.sock"  # client.DEFAULT_SOCKET, which costs http.client to import

# the flags each fast command takes (name -> row option); tests hold them to a subset of click's
PS_FLAGS = {"-a": "all", "--all": "all", "-q": "quiet", "--quiet": "quiet", "--no-trunc": "no_trunc"}
NETWORK_LS_FLAGS = {"-q": "quiet", "--quiet": "quiet", "--no-trunc": "no_trunc"}
GLOBAL_FLAGS = ("-H", "--host")
# what urllib.parse.quote(ref, safe="") leaves alone: names of other characters go to click
UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


class Fallback(Exception):
    """This command line or this answer is for the click path."""


class _Decoding:
    """The attributes `_json.make_scanner` reads: json.loads' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_Decoding())


def loads(text: str) -> object:
    """json.loads for a whole document, or Fallback."""
    text = text.strip(" \t\n\r")
    try:
        obj, end = _scan(text, 0)
    except (StopIteration, ValueError):
        raise Fallback from None
    if end != len(text):
        raise Fallback
    return obj


def dumps_indent4(obj: object) -> str:
    """json.dumps(obj, indent=4) for what a JSON document decodes to."""
    out: list[str] = []
    _encode(obj, 0, out)
    return "".join(out)


def _encode(o: object, level: int, out: list[str]) -> None:
    if isinstance(o, str):
        out.append(_json.encode_basestring_ascii(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o))
    elif isinstance(o, list):
        if not o:
            out.append("[]")
            return
        inner = "\n" + "    " * (level + 1)
        out.append("[" + inner)
        for i, item in enumerate(o):
            if i:
                out.append("," + inner)
            _encode(item, level + 1, out)
        out.append("\n" + "    " * level + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = "\n" + "    " * (level + 1)
        out.append("{" + inner)
        for i, (k, v) in enumerate(o.items()):
            if not isinstance(k, str):
                raise Fallback
            if i:
                out.append("," + inner)
            out.append(_json.encode_basestring_ascii(k) + ": ")
            _encode(v, level + 1, out)
        out.append("\n" + "    " * level + "}")
    else:
        raise Fallback


def _float(f: float) -> str:
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "Infinity" if f > 0 else "-Infinity"
    return float.__repr__(f)


# ---------------------------------------------------------------- transport
def get(sock_path: str, path: str) -> tuple[int, object]:
    """GET /v…/path over the Unix socket: (status, decoded JSON body)."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            s.connect(sock_path)
        except OSError:
            raise Fallback from None  # click words "Cannot connect…" and friends
        s.sendall(f"GET /v{API_VERSION}{path} HTTP/1.1\r\nHost: localhost\r\n"
                  "Accept-Encoding: identity\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise Fallback
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise Fallback
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise Fallback
            headers[name.strip().lower()] = value.strip()
        if "transfer-encoding" in headers or not headers.get("content-type", "").startswith("application/json"):
            raise Fallback
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            raise Fallback
        while length is None or len(body) < int(length):
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        if length is not None and len(body) != int(length):
            raise Fallback
    finally:
        s.close()
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise Fallback from None
    return int(parts[1]), loads(text)


def get_ok(sock_path: str, path: str) -> object:
    status, obj = get(sock_path, path)
    if status != 200:
        raise Fallback
    return obj


# ---------------------------------------------------------------- commands
def parse_flags(args: list[str], flags: dict[str, str]) -> dict[str, bool]:
    """`-a -q --no-trunc` and bundles like `-aq`; anything else is click's."""
    short = {name[1]: opt for name, opt in flags.items() if len(name) == 2}
    seen = {opt: False for opt in flags.values()}
    for a in args:
        if a in flags:
            seen[flags[a]] = True
        elif len(a) > 2 and a[0] == "-" and a[1] != "-" and all(ch in short for ch in a[1:]):
            for ch in a[1:]:
                seen[short[ch]] = True
        else:
            raise Fallback
    return seen


def ps(sock_path: str, args: list[str]) -> str:
    o = parse_flags(args, PS_FLAGS)
    summaries = get_ok(sock_path, "/containers/json?all=" + ("1" if o["all"] else "0"))
    if not isinstance(summaries, list):
        raise Fallback
    now = time.time()
    rows = [ps_row(s, o["no_trunc"], now) for s in summaries]
    if o["quiet"]:
        return "".join(r["ID"] + "\n" for r in rows)
    return default_table(rows, PS_COLUMNS)


def network_ls(sock_path: str, args: list[str]) -> str:
    o = parse_flags(args, NETWORK_LS_FLAGS)
    nets = get_ok(sock_path, "/networks")
    if not isinstance(nets, list):
        raise Fallback
    rows = [network_row(n, o["no_trunc"]) for n in sorted(nets, key=lambda n: n["Name"])]
    if o["quiet"]:
        return "".join(r["ID"] + "\n" for r in rows)
    return default_table(rows, NETWORK_COLUMNS)


def inspect(sock_path: str, names: list[str]) -> str:
    """Every name a container or else a network; any name neither (or odd) is click's."""
    if not names:
        raise Fallback
    found = []
    for name in names:
        if not name or name[0] == "-" or not UNRESERVED.issuperset(name):
            raise Fallback
        status, obj = get(sock_path, f"/containers/{name}/json")
        if status == 404:
            status, obj = get(sock_path, f"/networks/{name}")
        if status != 200:
            raise Fallback
        found.append(obj)
    return dumps_indent4(found) + "\n"


def output(argv: list[str]) -> str | None:
    """What `minidock ARGV` prints on stdout, or None when it is click's to do."""
    host = None
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] in GLOBAL_FLAGS and i + 1 < len(argv):
            host, i = argv[i + 1], i + 2
        elif argv[i].startswith("--host="):
            host, i = argv[i][len("--host="):], i + 1
        else:
            return None
    if os.environ.get("MINIDOCK_EXPLAIN") is not None:
        return None
    host = host or os.environ.get("MINIDOCK_HOST") or f"unix://{DEFAULT_SOCKET}"
    if not host.startswith("unix://"):
        return None
    sock_path = host[len("unix://"):]
    cmd = argv[i:]
    try:
        if cmd[:1] == ["ps"]:
            return ps(sock_path, cmd[1:])
        if cmd[:2] == ["network", "ls"]:
            return network_ls(sock_path, cmd[2:])
        if cmd[:1] == ["inspect"]:
            return inspect(sock_path, cmd[1:])
    except (Fallback, KeyError, TypeError, AttributeError, IndexError, ValueError):
        # an answer of an unexpected shape: click's road prints the same traceback or message
        return None
    return None


def run(argv: list[str]) -> int | None:
    """Print the fast answer and return the exit status, or None for click."""
    enc = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    if enc != "utf8":  # click re-encodes misconfigured streams; leave that to it
        return None
    text = output(argv)
    if text is None or "\x1b" in text:  # click strips ANSI escapes off a pipe
        return None
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        return 1
    return 0
