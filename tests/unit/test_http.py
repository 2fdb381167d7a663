"""Unit tests for minidock.daemon.http: routing and request parsing (no sockets)."""

from __future__ import annotations

import asyncio

import pytest

from minidock.daemon.http import Request, Response, Router, _read_request
from minidock.errors import MinidockError


async def _handler(req: Request) -> Response:
    return Response(200, {})


async def _other(req: Request) -> Response:
    return Response(204)


def router() -> Router:
    r = Router()
    r.add("GET", "/containers/json", _handler)
    r.add("GET", "/containers/{id}/json", _other)
    r.add("POST", "/containers/{id}/exec", _handler)
    r.add("POST", "/networks/{id}/connect", _handler)
    r.add("DELETE", "/containers/{id}", _other)
    return r


def test_match_binds_path_params() -> None:
    handler, params, known = router().match("GET", "/containers/c0ffee/json")
    assert handler is _other and params == {"id": "c0ffee"} and known


def test_match_static_route_wins_over_nothing_else() -> None:
    handler, params, _ = router().match("GET", "/containers/json")
    assert handler is _handler and params == {}


def test_match_unquotes_params_and_does_not_cross_slashes() -> None:
    handler, params, _ = router().match("DELETE", "/containers/my%20box")
    assert handler is _other and params == {"id": "my box"}
    assert router().match("DELETE", "/containers/a/b") == (None, {}, False)


def test_match_known_path_wrong_method_reports_known() -> None:
    assert router().match("PUT", "/containers/c1/exec") == (None, {}, True)
    assert router().match("GET", "/nope") == (None, {}, False)


def test_match_is_anchored() -> None:
    assert router().match("GET", "/x/containers/json")[0] is None
    assert router().match("GET", "/containers/json/extra")[0] is None


def read(raw: bytes) -> list[Request | None]:
    """Parse every request in `raw` (then one more read, which must see EOF)."""

    async def go() -> list[Request | None]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        out: list[Request | None] = []
        while True:
            req = await _read_request(reader)
            out.append(req)
            if req is None:
                return out

    return asyncio.run(go())


def test_read_request_strips_the_api_version_prefix_and_parses_the_query() -> None:
    [req, eof] = read(b"GET /v1.47/containers/json?all=1&filters=%7B%22a%22%3A1%7D&all=0 HTTP/1.1\r\n"
                      b"Host: localhost\r\nUser-Agent: Docker-Client/28\r\n\r\n")
    assert eof is None
    assert req is not None
    assert (req.method, req.path) == ("GET", "/containers/json")
    assert req.query == {"all": "0", "filters": '{"a":1}'}  # the last value wins
    assert req.headers["user-agent"] == "Docker-Client/28"  # names are lower-cased
    assert req.body == b"" and req.json() == {}


def test_read_request_without_prefix_keeps_the_path() -> None:
    [req, _] = read(b"GET /_ping HTTP/1.1\r\n\r\n")
    assert req is not None and req.path == "/_ping"
    [req, _] = read(b"GET /v1.41/info HTTP/1.1\r\n\r\n")
    assert req is not None and req.path == "/info"


def test_read_request_content_length_body() -> None:
    body = b'{"Name":"appnet","Driver":"bridge"}'
    raw = (b"POST /v1.47/networks/create HTTP/1.1\r\nContent-Type: application/json\r\n"
           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    [req, _] = read(raw)
    assert req is not None and req.json() == {"Name": "appnet", "Driver": "bridge"}


def test_read_request_chunked_body_then_a_second_request_on_the_same_connection() -> None:
    raw = (b"POST /v1.47/containers/c1/exec HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"7\r\n{\"Cmd\":\r\n"
           b"a;ext=1\r\n[\"ls\",\"-l\"\r\n"
           b"2\r\n]}\r\n"
           b"0\r\n\r\n"
           b"GET /v1.47/version HTTP/1.1\r\n\r\n")
    first, second, eof = read(raw)
    assert first is not None and second is not None and eof is None
    assert first.path == "/containers/c1/exec"
    assert first.body == b'{"Cmd":["ls","-l"]}'
    assert first.json() == {"Cmd": ["ls", "-l"]}
    assert (second.method, second.path) == ("GET", "/version")


def test_parsed_path_routes_with_params() -> None:
    [req, _] = read(b"POST /v1.47/containers/my%2Dbox/exec HTTP/1.1\r\n\r\n")
    assert req is not None
    handler, params, _ = router().match(req.method, req.path)
    assert handler is _handler and params == {"id": "my-box"}


def test_read_request_malformed_request_line() -> None:
    with pytest.raises(MinidockError, match="malformed request line"):
        read(b"NONSENSE\r\n\r\n")


def test_request_json_rejects_bad_json() -> None:
    [req, _] = read(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\n{x}")
    assert req is not None
    with pytest.raises(MinidockError, match="invalid JSON"):
        req.json()


def test_request_flag() -> None:
    [req, _] = read(b"POST /containers/c1/attach?stream=1&stdin=true&logs=0&stdout= HTTP/1.1\r\n\r\n")
    assert req is not None
    assert req.flag("stream") and req.flag("stdin")
    assert not req.flag("logs") and not req.flag("stdout") and not req.flag("missing")


def test_read_request_chunked_body_with_trailer_fields() -> None:
    raw = (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"2\r\n{}\r\n0\r\nX-Checksum: abc\r\n\r\n"
           b"GET /version HTTP/1.1\r\n\r\n")
    first, second, _ = read(raw)
    assert first is not None and first.body == b"{}"
    assert second is not None and second.path == "/version"
