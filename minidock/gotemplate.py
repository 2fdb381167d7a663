"""Go text/template rendering for docker's ``--format`` / ``-f`` flags.

This module owns format strings: lexing and parsing the Go-template subset docker
users type, executing it against JSON-like Engine API data, printing values the way
Go's ``fmt`` prints docker's Go types (maps sorted, structs as ``{v1 v2}``), docker's
template functions (``json``, ``join``, ``truncate``, ...), the ``table`` prefix
(aligned by the CLI's tabwriter, minidock/cli/tabwriter.py).
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any, NoReturn

from .cli.tabwriter import tabulate, tabwrite

__all__ = ["KNOWN_STRUCT_KEYS", "GoStruct", "Template", "TemplateError", "compile_template",
           "render", "render_table", "tabulate", "unescape_format"]


class TemplateError(ValueError):
    """A parse or execution error, worded like docker's one-line message."""


class GoStruct(dict):
    """A dict that always prints as a Go struct: ``{v1 v2 ...}`` in key order."""


# Dicts reached through these key paths (from the template's root; ``*`` matches any key,
# list elements inherit their list's path) print as Go structs, values in field order.
# Field spec ``Name`` or ``Name:kind``; kind picks the Go zero value (map list bool int ptr).
KNOWN_STRUCT_KEYS: dict[str, list[str]] = {
    "IPAM": ["Driver", "Options:map", "Config:list"],
    "IPAM.Config": ["Subnet", "IPRange", "Gateway", "AuxiliaryAddresses:map"],
    "ConfigFrom": ["Network"],
    "Containers.*": ["Name", "EndpointID", "MacAddress", "IPv4Address", "IPv6Address"],
    "State": ["Status", "Running:bool", "Paused:bool", "Restarting:bool", "OOMKilled:bool",
              "Dead:bool", "Pid:int", "ExitCode:int", "Error", "StartedAt", "FinishedAt",
              "Health:ptr"],
    "Mounts": ["Type", "Name", "Source", "Destination", "Driver", "Mode", "RW:bool",
               "Propagation"],
    "Config": ["Hostname", "Domainname", "User", "AttachStdin:bool", "AttachStdout:bool",
               "AttachStderr:bool", "ExposedPorts:map", "Tty:bool", "OpenStdin:bool",
               "StdinOnce:bool", "Env:list", "Cmd:list", "Healthcheck:ptr", "ArgsEscaped:bool",
               "Image", "Volumes:map", "WorkingDir", "Entrypoint:list", "NetworkDisabled:bool",
               "MacAddress", "OnBuild:list", "Labels:map", "StopSignal", "StopTimeout:ptr",
               "Shell:list"],
    "Config.ExposedPorts.*": [], "Config.Volumes.*": [],
    "NetworkSettings.Ports.*": ["HostIp", "HostPort"],
    "HostConfig.PortBindings.*": ["HostIp", "HostPort"],
}

_PREFIX = "template parsing error: template: "
_WS = " \t\r\n"
_TOKEN_RE = re.compile(r"""(?P<space>[ \t\r\n]+) | (?P<field>\.[^\W\d]\w*) | (?P<var>\$\w*)
 | (?P<number>[+-]?\.?\d(?:[\w.]|(?<=[eEpP])[+-])*|[+-]) | (?P<dot>\.) | (?P<ident>[^\W\d]\w*)
 | (?P<string>"(?:[^"\\\n]|\\.)*"|`[^`]*`) | (?P<char>'(?:[^'\\\n]|\\.)*') | (?P<declare>:=)
 | (?P<assign>=) | (?P<pipe>\|) | (?P<lparen>\() | (?P<rparen>\)) | (?P<comma>,)""", re.X)
_UNTERMINATED = {'"': "unterminated quoted string", "`": "unterminated raw quoted string",
                 "'": "unterminated character constant", ":": "expected :="}
_ESC_RE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.S)
_ESCAPES = dict(zip("abfnrtv\\\"'", "\a\b\f\n\r\t\v\\\"'", strict=True))
_OPERAND = {"ident", "dot", "nil", "var", "field", "lit", "lparen"}
_HEADER_FUNCS = {"json", "split", "join", "title", "lower", "upper", "truncate", "pad"}
_Tok = tuple[str, Any, int, int]  # kind, value, start, end


class _NoValue:
    def __str__(self) -> str:
        return "<no value>"


NO_VALUE: Any = _NoValue()  # a missing map key: prints "<no value>"
_MISSING: Any = object()  # no value piped into a command


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _CallError(Exception):
    pass


class _TypeErr(_CallError):
    pass


def _zero(kind: str) -> Any:
    return {"map": {}, "list": [], "bool": False, "int": 0, "ptr": None}.get(kind, "")


def _gotype(v: Any) -> str:
    if v is None or v is NO_VALUE:
        return "<nil>"
    names = {bool: "bool", int: "int", float: "float64", str: "string", list: "[]interface {}",
             dict: "map[string]interface {}"}
    return next((n for t, n in names.items() if isinstance(v, t)), type(v).__name__)


def _truth(v: Any) -> bool:
    if v is None or v is NO_VALUE:
        return False
    return bool(v) if isinstance(v, (bool, int, float, str, list, tuple, dict)) else True


def _sortkey(k: Any) -> tuple[int, Any]:
    return (0, k) if isinstance(k, (int, float)) and not isinstance(k, bool) else (1, str(k))


def _go_float(f: float) -> str:
    """Go's %v for a float64: shortest digits, exponent form when exp < -4 or >= 6."""
    if f != f or f in (float("inf"), float("-inf")):
        return "NaN" if f != f else ("+Inf" if f > 0 else "-Inf")
    if f == 0:
        return "-0" if str(f)[0] == "-" else "0"
    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()
    ds, x = "".join(map(str, digits)), len(digits) + int(exp) - 1
    if -4 <= x < 6:
        return format(Decimal(repr(f)).normalize(), "f")
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{'-' * sign}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"


def _json(v: Any) -> str:
    """Compact JSON like Go's json.Encoder with SetEscapeHTML(false); dict order kept."""
    if v is None or v is NO_VALUE or isinstance(v, bool):
        return {None: "null", True: "true", False: "false"}.get(None if v is NO_VALUE else v)
    if isinstance(v, float) and (v == 0 or 1e-6 <= abs(v) < 1e21):
        return format(Decimal(repr(v)).normalize(), "f")
    if isinstance(v, (int, float)):
        return re.sub(r"e([+-])0(\d)", r"e\1\2", repr(v))
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(map(_json, v)) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{_json(str(k))}:{_json(x)}" for k, x in v.items()) + "}"
    text = json.dumps(str(v), ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _q(v: Any) -> str:
    return _go_quote(str(v))


def _go_quote(s: str) -> str:
    """strconv.Quote."""
    out = []
    for c in s:
        if c in '"\\' or c in "\a\b\f\n\r\t\v":
            out.append("\\" + next(k for k, v in _ESCAPES.items() if v == c))
        elif c.isprintable():
            out.append(c)
        else:
            n = ord(c)
            out.append(f"\\x{n:02x}" if n < 0x80 else f"\\u{n:04x}" if n < 0x10000 else
                       f"\\U{n:08x}")
    return '"' + "".join(out) + '"'


def _unquote(tok: str) -> str:
    """A Go string, raw string or character literal's value."""
    if tok[0] == "`":
        return tok[1:-1]

    def esc(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "xuU" and len(e) > 1:
            return chr(int(e[1:], 16))
        if e[0] in "01234567" and len(e) == 3 and int(e, 8) < 256:
            return chr(int(e, 8))
        if e in _ESCAPES and e != ("'" if tok[0] == '"' else '"'):
            return _ESCAPES[e]
        raise ValueError("invalid syntax")

    return _ESC_RE.sub(esc, tok[1:-1])


def _number(text: str) -> int | float:
    t = text.replace("_", "")
    try:
        return int(t, 8) if re.fullmatch(r"[+-]?0[0-7]+", t) else int(t, 0)
    except ValueError:
        if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", t):
            return float(t)
    raise ValueError(f"bad number syntax: {_json(text)}")


def _lex(src: str) -> list[_Tok]:
    """Split *src* into text and action tokens, applying ``{{- -}}`` trimming."""
    toks: list[_Tok] = []
    i, n, trim_next = 0, len(src), False

    def fail(pos: int, msg: str) -> NoReturn:
        raise TemplateError(f"{_PREFIX}:{src.count(chr(10), 0, pos) + 1}: {msg}")

    while i < n:
        j = src.find("{{", i)
        text = src[i:] if j < 0 else src[i:j]
        text = text.lstrip(_WS) if trim_next else text
        k = n if j < 0 else j + 2
        if src.startswith("-", k) and src[k + 1:k + 2] in tuple(_WS):
            text, k = text.rstrip(_WS), k + 2
        if text:
            toks.append(("text", text, i, i + len(text)))
        if j < 0:
            break
        if src.startswith("/*", k):
            end = src.find("*/", k + 2)
            m = re.compile(r"(?:[ \t\r\n]-)?}}").match(src, end + 2) if end >= 0 else None
            if m is None:
                fail(k, "unclosed comment" if end < 0 else "comment ends before closing delimiter")
            i, trim_next = m.end(), len(m.group()) > 2
            continue
        toks.append(("left", "{{", j, k))
        while True:
            if k >= n:
                fail(k, "unclosed action")
            if src.startswith("}}", k) or (src[k] in _WS and src.startswith("-}}", k + 1)):
                trim_next = src[k] != "}"
                i = k + 2 + 2 * trim_next
                toks.append(("right", "}}", k, i))
                break
            m = _TOKEN_RE.match(src, k)
            c = src[k]
            if m is None and (c in _UNTERMINATED or not (c.isascii() and c.isprintable())):
                fail(k, _UNTERMINATED.get(c) or
                     f"unrecognized character in action: U+{ord(c):04X} {c!r}")
            kind, val, e = (m.lastgroup or "", m.group(), m.end()) if m else ("other", c, k + 1)
            if kind == "space" and src.startswith("-}}", e):  # leave " -}}" for next round
                e, val = e - 1, val[:-1]
            try:
                if kind in ("number", "string", "char"):
                    kind, val = "lit", _number(val) if kind == "number" else _unquote(val)
                    if m.lastgroup == "char":
                        if len(val) != 1:
                            raise ValueError(f"malformed character constant: {m.group()}")
                        val = ord(val)
            except ValueError as exc:
                fail(k, str(exc))
            if kind == "ident" and val in ("true", "false", "nil"):
                kind, val = ("nil", None) if val == "nil" else ("lit", val == "true")
            elif kind == "ident" and val in ("if", "else", "end", "range", "with", "define",
                                             "template", "block"):
                kind = "kw"
            toks.append((kind, val, k, e))
            k = e
    return toks


class _Parser:
    """Recursive descent over the tokens, mirroring Go's text/template/parse."""

    def __init__(self, src: str) -> None:
        self.src, self.toks, self.i, self.vars = src, _lex(src), 0, ["$"]

    def err(self, msg: str, pos: int | None = None) -> NoReturn:
        pos = self.peek()[2] if pos is None else pos
        raise TemplateError(f"{_PREFIX}:{self.src.count(chr(10), 0, pos) + 1}: {msg}")

    def peek(self) -> _Tok:
        """The next non-space token (spaces are consumed)."""
        while self.i < len(self.toks) and self.toks[self.i][0] == "space":
            self.i += 1
        return self.toks[self.i] if self.i < len(self.toks) else ("eof", "", len(self.src), 0)

    def take(self, *kinds: str, what: str = "") -> _Tok:
        t = self.peek()
        if kinds and t[0] not in kinds:
            self.err("unexpected EOF" if t[0] == "eof" else f"unexpected {_q(t[1])} in {what}", t[2])
        self.i += 1
        return t

    def parse_list(self, in_range: bool) -> tuple[list[Any], str | None]:
        nodes: list[Any] = []
        while self.i < len(self.toks):
            kind, val, pos, _ = self.take()
            if kind == "text":
                nodes.append(("text", val))
                continue
            t = self.peek()
            if t[0] == "kw" and t[1] in ("end", "else"):
                self.i += 1
                if t[1] == "end":
                    self.take("right", what="end")
                return nodes, t[1]
            if t[0] == "kw" and t[1] in ("if", "with", "range"):
                self.i += 1
                nodes.append(self.control(t[1], in_range))
            elif t[0] == "kw":
                self.err(f"{{{{{t[1]}}}}} is not supported", t[2])
            elif t[0] == "ident" and t[1] in ("break", "continue"):
                if not in_range:
                    self.err(f"{{{{{t[1]}}}}} outside {{{{range}}}}", t[2])
                self.i += 1
                self.take("right", what=t[1])
                nodes.append((t[1],))
            else:
                nodes.append(("action", self.pipeline("command", "right")))
        return nodes, None

    def control(self, kind: str, in_range: bool) -> tuple[Any, ...]:
        mark = len(self.vars)
        pipe = self.pipeline(kind, "right")
        body, term = self.parse_list(in_range or kind == "range")
        other = None
        if term == "else":
            t = self.peek()
            if t[0] == "kw" and t[1] == kind and kind in ("if", "with"):  # else if / else with
                self.i += 1
                other, term = [self.control(kind, in_range)], "end"
            else:
                self.take("right", what="else")
                other, term = self.parse_list(in_range)
                if term == "else":
                    self.err("expected end; found {{else}}")
        if term is None:
            self.err("unexpected EOF", len(self.src))
        del self.vars[mark:]
        return (kind, pipe, body, other)

    def pipeline(self, ctx: str, end: str) -> tuple[list[str], bool, list[Any]]:
        decl: list[str] = []
        start, t = self.i, self.peek()
        if t[0] == "var":
            self.i += 1
            if self.peek()[0] == "comma" and ctx == "range":
                self.i += 1
                if self.peek()[0] != "var":
                    self.err("range can only initialize variables")
                decl = [self.take()[1]]
            if self.peek()[0] in ("declare", "assign"):
                decl.insert(0, t[1])
            elif decl or self.peek()[0] == "comma":
                self.err(f"too many declarations in {ctx}" if not decl else
                         "range can only initialize variables")
            else:
                self.i = start
        assign = bool(decl) and self.take()[0] == "assign"
        for name in decl:
            self.use_var(name, t[2]) if assign else self.vars.append(name)
        cmds = []
        while (t := self.peek())[0] != end:
            if t[0] not in _OPERAND:
                self.err({"eof": "unexpected EOF", "rparen": "unexpected right paren",
                          "right": "unclosed left paren"}.get(t[0], f"unexpected {_q(t[1])} in {ctx}"))
            cmds.append(self.command())
        self.i += 1
        if not cmds:
            self.err(f"missing value for {ctx}", t[2])
        for n, cmd in enumerate(cmds[1:], 2):
            if cmd[0][0][0] in ("lit", "nil") or cmd[0][0] == ("chain", ("dot",), []):
                self.err(f"non executable command in pipeline stage {n}", cmd[1])
        return (decl, assign, cmds)

    def command(self) -> tuple[list[Any], int, str, list[tuple[int, str]]]:
        args: list[Any] = []
        spans: list[tuple[int, str]] = []  # each operand's (position, source)
        start = end = self.peek()[2]
        while True:
            op_start = self.peek()[2]
            if (op := self.operand()) is not None:
                args.append(op)
                end = self.toks[self.i - 1][3]
                spans.append((op_start, self.src[op_start:end]))
            if self.toks[self.i][0] == "space":
                continue
            t = self.take()
            if t[0] in ("right", "rparen"):
                self.i -= 1
            elif t[0] != "pipe":
                self.err(f"unexpected {_q(t[1])} in operand", t[2])
            return (args, start, self.src[start:end], spans)

    def use_var(self, name: str, pos: int) -> None:
        if name not in self.vars:
            self.err(f"undefined variable {_json(name)}", pos)

    def operand(self) -> Any:
        kind, val, pos, _ = self.peek()
        if kind not in _OPERAND:
            return None
        self.i += 1
        if kind == "ident" and val not in _FUNCS:
            self.err(f"function {_json(val)} not defined", pos)
        if kind == "var":
            self.use_var(val, pos)
        node = {"lit": ("lit", val), "ident": ("ident", val), "nil": ("nil",), "dot": ("dot",),
                "var": ("var", val), "field": ("dot",)}.get(kind)
        if kind == "lparen":
            node = ("pipe", self.pipeline("parenthesized pipeline", "rparen"))
        names = [val[1:]] if kind == "field" else []
        while self.i < len(self.toks) and self.toks[self.i][0] == "field":
            if kind in ("lit", "nil", "dot"):
                self.err(f"unexpected . after term {_go_quote(self.src[pos:self.toks[self.i][2]])}")
            names.append(self.toks[self.i][1][1:])
            self.i += 1
        return ("chain", node, names) if names or kind in ("dot", "var") else node


class _HeaderCtx:
    """Dot for a table's header row: any field path yields its column header."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def name(self, names: list[str]) -> str:
        key = next((k for k in (".".join(names), names[-1]) if k in self.headers), None)
        return names[-1].upper() if key is None else self.headers[key]


class _Exec:
    """One execution of a parsed template against one data value."""

    def __init__(self, tmpl: Template, data: Any, structs: list[Any], header: bool) -> None:
        self.src, self.structs, self.header = tmpl.source, structs, header
        self.vars: list[list[Any]] = [["$", data]]
        self.paths: dict[int, tuple[Any, tuple[str, ...]]] = {}  # id -> (obj, key path)
        self.out: list[str] = []
        self.at: tuple[int, str] = (0, "")
        self.tag(data, ())

    def err(self, msg: str) -> NoReturn:
        pos, ctx = self.at
        line, col = self.src.count("\n", 0, pos) + 1, pos - self.src.rfind("\n", 0, pos) - 1
        ctx = ctx if len(ctx) <= 20 else ctx[:20] + "..."
        raise TemplateError(f'{_PREFIX}:{line}:{col}: executing "" at <{ctx}>: {msg}')

    def tag(self, obj: Any, path: tuple[str, ...] | None) -> None:
        if isinstance(obj, (dict, list)) and path is not None:
            self.paths[id(obj)] = (obj, path)

    def path_of(self, obj: Any) -> tuple[str, ...] | None:
        entry = self.paths.get(id(obj))
        return entry[1] if entry and entry[0] is obj else None

    def struct(self, obj: Any, path: tuple[str, ...] | None) -> dict[str, str] | None:
        """Ordered Go field name -> kind if *obj* (a dict) stands for a Go struct."""
        if isinstance(obj, GoStruct):
            return dict.fromkeys(obj, "")
        for segs, fields in self.structs if path is not None else ():
            if len(segs) == len(path) and all(s in ("*", p) for s, p in zip(segs, path, strict=True)):
                return fields
        return None

    def fmt(self, v: Any, path: tuple[str, ...] | None = None, plus: bool = False) -> str:
        """Go's fmt %v (or %+v) of the Go value *v* stands for."""
        if v is None or isinstance(v, (bool, float)):
            return "<nil>" if v is None else _go_float(v) if type(v) is float else str(v).lower()
        if isinstance(v, (list, tuple)):
            return "[" + " ".join(self.fmt(x, path, plus) for x in v) + "]"
        if not isinstance(v, dict):
            return "" if isinstance(v, _HeaderCtx) else str(v)
        sub = (lambda k: None) if path is None else (lambda k: (*path, str(k)))
        fields = self.struct(v, path)
        if fields is None:  # a nil map value where structs live is a nil slice of them
            return "map[" + " ".join(
                f"{k}:" + ("[]" if v[k] is None and self.struct({}, sub(k)) is not None else
                           self.fmt(v[k], sub(k), plus)) for k in sorted(v, key=_sortkey)) + "]"
        vals = [(k, _zero(kind) if v.get(k) is None else v[k]) for k, kind in fields.items()]
        return "{" + " ".join(f"{k}:" * plus + self.fmt(x, sub(k), plus) for k, x in vals) + "}"

    def show(self, v: Any) -> str:
        return self.fmt(v, self.path_of(v))

    def walk(self, nodes: list[Any], dot: Any) -> None:
        for node in nodes:
            kind, mark = node[0], len(self.vars)
            if kind == "text":
                self.out.append(node[1])
            elif kind == "action":
                v = self.pipe(node[1], dot)
                self.out.extend([] if node[1][0] else [self.show(v)])
            elif kind in ("if", "with"):
                v = self.pipe(node[1], dot)
                if _truth(v):
                    self.walk(node[2], v if kind == "with" else dot)
                elif node[3] is not None:
                    self.walk(node[3], dot)
            elif kind == "range":
                self.range(node, dot)
            else:
                raise _Break() if kind == "break" else _Continue()
            if kind != "action":
                del self.vars[mark:]

    def range(self, node: tuple[Any, ...], dot: Any) -> None:
        (decl, assign, cmds), body, other = node[1:]
        v = self.pipe(([], False, cmds), dot)
        path = self.path_of(v)
        if isinstance(v, dict):
            items = [(k, v[k]) for k in sorted(v, key=_sortkey)]
            for k, x in items:
                self.tag(x, None if path is None else (*path, str(k)))
        elif isinstance(v, (list, tuple)):
            items = list(enumerate(v))
            for x in v:
                self.tag(x, path)
        elif isinstance(v, int) and not isinstance(v, bool):
            items = [(i, i) for i in range(v)]
        elif v is None or v is NO_VALUE:
            items = []
        else:
            self.err(f"range can't iterate over {self.fmt(v)}")
        if not assign:
            self.vars.extend([name, None] for name in decl)
        for key, elem in items:
            vals = [elem] if len(decl) == 1 else [key, elem]
            for name, val in zip(decl, vals, strict=False):
                self.set_var(name, val)
            inner = len(self.vars)
            try:
                self.walk(body, elem)
            except _Continue:
                pass
            except _Break:
                break
            finally:
                del self.vars[inner:]
        if not items and other is not None:
            self.walk(other, dot)

    def var(self, name: str) -> list[Any]:
        entry = next((e for e in reversed(self.vars) if e[0] == name), None)
        return entry if entry is not None else self.err(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        self.var(name)[1] = value

    def pipe(self, pipe: tuple[list[str], bool, list[Any]], dot: Any) -> Any:
        decl, assign, cmds = pipe
        v = _MISSING
        for args, pos, text, spans in cmds:
            self.at = spans[0]
            if args[0][0] == "ident":
                v = self.call(args[0][1], args[1:], dot, v, (pos, text))
            elif args[0][0] == "nil":
                self.err("nil is not a command")
            elif len(args) > 1 or v is not _MISSING:
                self.err(f"can't give argument to non-function {spans[0][1]}")
            else:
                v = self.arg(args[0], dot)
        for name in decl:
            self.set_var(name, v) if assign else self.vars.append([name, v])
        return v

    def arg(self, node: Any, dot: Any) -> Any:
        kind = node[0]
        if kind == "chain":
            return self.fields(self.arg(node[1], dot), node[2])
        if kind == "var":
            return self.var(node[1])[1]
        if kind == "ident":
            return self.call(node[1], [], dot, _MISSING)
        if kind == "pipe":
            return self.pipe(node[1], dot)
        return {"dot": dot, "lit": node[-1]}.get(kind)

    def fields(self, recv: Any, names: list[str]) -> Any:
        if names and isinstance(recv, _HeaderCtx):
            return recv.name(names)
        for name in names:
            if recv is None or recv is NO_VALUE:
                return NO_VALUE
            if not isinstance(recv, dict):
                self.err(f"can't evaluate field {name} in type {_gotype(recv)}")
            path = self.path_of(recv)
            kind = (self.struct(recv, path) or {}).get(name)
            if name in recv:
                recv = _zero(kind) if recv[name] is None and kind in ("map", "list") else recv[name]
            elif kind is None:
                return NO_VALUE
            else:
                recv = _zero(kind)
            self.tag(recv, None if path is None else (*path, name))
        return recv

    def call(self, name: str, nodes: list[Any], dot: Any, final: Any,
             at: tuple[int, str] | None = None) -> Any:
        n = len(nodes) + (final is not _MISSING)
        fn, lo, hi = _FUNCS[name]
        if not lo <= n <= (hi if hi >= 0 else n):
            self.err(f"wrong number of args for {name}: want "
                     f"{lo if lo == hi else f'at least {lo}'} got {n}")
        self.at = at or self.at
        if name in ("and", "or"):  # short-circuit: first falsy (and) / truthy (or) argument
            for node in nodes:
                if _truth(v := self.arg(node, dot)) != (name == "and"):
                    return v
            return v if final is _MISSING else final
        args = [self.arg(node, dot) for node in nodes] + ([] if final is _MISSING else [final])
        args = [None if a is NO_VALUE else a for a in args]
        if self.header and name in _HEADER_FUNCS:
            return args[0]
        self.at = at or self.at
        try:
            return fn(self, *args)
        except _TypeErr as exc:
            self.err(str(exc))
        except _CallError as exc:
            self.err(f"error calling {name}: {exc}")

    def sprintf(self, fmt: str, args: tuple[Any, ...]) -> str:
        out, used, pos = [], 0, 0
        for m in re.finditer(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?([a-zA-Z%])", fmt):
            flags, width, prec, verb = m.groups()
            out.append(fmt[pos:m.start()])
            pos = m.end()
            if verb == "%" or used >= len(args):
                out.append("%" if verb == "%" else f"%!{verb}(MISSING)")
                continue
            s = self.verb(verb, flags, None if prec is None else int(prec or 0), args[used])
            w, used = int(width or 0), used + 1
            sign = s[0] if "0" in flags and s[:1] in ("-", "+") else ""
            fill = "0" if "0" in flags and "-" not in flags else " "
            out.append(s.ljust(w) if "-" in flags else sign + s[len(sign):].rjust(w - len(sign), fill))
        out.append(fmt[pos:])
        if used < len(args):
            extra = ", ".join(f"{_gotype(a)}={self.show(a)}" for a in args[used:])
            out.append(f"%!(EXTRA {extra})")
        return "".join(out)

    def verb(self, verb: str, flags: str, prec: int | None, a: Any) -> str:
        """One printf conversion; mismatches print like Go's ``%!d(string=x)``."""
        if isinstance(a, (list, tuple)) and verb not in "vT":  # Go applies verbs per element
            return "[" + " ".join(self.verb(verb, flags, prec, x) for x in a) + "]"
        num = isinstance(a, (int, float)) and not isinstance(a, bool)
        s = _gotype(a) if verb == "T" else None
        if verb == "v" or (verb == "s" and not num and not isinstance(a, bool) and a is not None):
            s = self.fmt(a, self.path_of(a), "+" in flags)
            s = s[:prec] if prec is not None and isinstance(a, str) else s
        elif verb == "q" and isinstance(a, str):
            s = _go_quote(a)
        elif verb == "t" and isinstance(a, bool):
            s = self.fmt(a)
        elif verb in "dxXcUq" and num and isinstance(a, int):
            s = ("+" if "+" in flags and verb == "d" and a >= 0 else "") + (
                chr(a) if verb == "c" else f"U+{a:04X}" if verb == "U" else "'" + (
                    "\\'" if a == 39 else _go_quote(chr(a))[1:-1].replace('\\"', '"')) + "'"
                if verb == "q" else format(a, verb))
        elif verb in "xX" and isinstance(a, str):
            s = a.encode().hex().upper() if verb == "X" else a.encode().hex()
        elif verb in "eEfFgG" and num:
            s = (_go_float(float(a)) if verb in "gG" and prec is None else
                 format(float(a), f".{6 if prec is None else prec}{verb}"))
            s = ("+" if "+" in flags and s[0] != "-" else "") + (s.upper() if verb == "G" else s)
        if s is None:
            return f"%!{verb}(<nil>)" if a is None else f"%!{verb}({_gotype(a)}={self.fmt(a)})"
        return s


def _want(v: Any, typ: type | tuple[type, ...], goname: str) -> Any:
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise _TypeErr(f"wrong type for value; expected {goname}; got {_gotype(v)}")
    return v


def _index(st: _Exec, item: Any, *keys: Any) -> Any:
    for key in keys:
        path = st.path_of(item)
        if isinstance(item, dict):
            if key not in item:  # Go returns the map's zero element
                return "" if all(isinstance(x, str) for x in item.values()) else NO_VALUE
            item, path = item[key], None if path is None else (*path, str(key))
        elif isinstance(item, (list, tuple, str)):
            seq = item.encode() if isinstance(item, str) else item
            if not 0 <= _want(key, int, "int") < len(seq):
                raise _CallError(f"index out of range: {key}")
            item = seq[key]
        else:
            raise _CallError("index of untyped nil" if item is None else
                             f"can't index item of type {_gotype(item)}")
        st.tag(item, path)
    return item


def _slice(st: _Exec, item: Any, *idx: Any) -> Any:
    if not isinstance(item, (str, list, tuple)) or len(idx) > 2:
        raise _CallError(f"can't slice item of type {_gotype(item)}")
    lo = _want(idx[0], int, "int") if idx else 0
    hi = _want(idx[1], int, "int") if len(idx) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise _CallError(f"index out of range: {hi if hi > len(item) else lo}")
    return item[lo:hi]


def _evalargs(st: _Exec, args: tuple[Any, ...]) -> str:
    return args[0] if len(args) == 1 and isinstance(args[0], str) else _sprint(st, *args)


def _case(s: Any, upper: bool) -> str:
    """strings.ToUpper/ToLower: rune by rune (so "ß" stays "ß")."""
    conv = [c.upper() if upper else c.lower() for c in _want(s, str, "string")]
    return "".join(c if len(c) == 1 else o for c, o in zip(conv, s, strict=True))


def _length(st: _Exec, v: Any) -> int:
    if isinstance(v, (str, list, tuple, dict)):
        return len(v.encode()) if isinstance(v, str) else len(v)
    raise _CallError("len of nil pointer" if v is None else f"len of type {_gotype(v)}")


def _kind(v: Any) -> str:
    if v is None or isinstance(v, bool):
        return "nil" if v is None else "bool"
    return "num" if isinstance(v, (int, float)) else "str" if isinstance(v, str) else "other"


def _eq(st: _Exec, a: Any, *others: Any) -> bool:
    for b in others:
        ka, kb = _kind(a), _kind(b)
        if "nil" not in (ka, kb) and ka != kb:
            raise _CallError("incompatible types for comparison")
        if ka == "other":
            raise _CallError("non-comparable type")
        if a == b and ka == kb:
            return True
    return False


def _compare(op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def cmp(st: _Exec, a: Any, b: Any) -> bool:
        ka, kb = _kind(a), _kind(b)
        if ka not in ("num", "str") or kb not in ("num", "str"):
            raise _CallError("invalid type for comparison")
        if ka != kb:
            raise _CallError("incompatible types for comparison")
        return op(a, b)
    return cmp


def _sprint(st: _Exec, *args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    return "".join(" " * (i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str))
                   + st.show(a) for i, a in enumerate(args))


def _title(st: _Exec, s: Any) -> str:
    """strings.Title: upper-case letters that follow a separator."""
    def sep(c: str) -> bool:
        return not (c.isalnum() or c == "_") if c.isascii() else c.isspace()
    s = _want(s, str, "string")
    return "".join(c.upper() if sep(p) else c for p, c in zip(" " + s, s, strict=False))


def _join(st: _Exec, items: Any, sep: Any) -> str:
    items = [] if items is None else _want(items, (list, tuple), "[]string")
    return _want(sep, str, "string").join(st.fmt(x) for x in items)


def _split(st: _Exec, s: Any, sep: Any) -> list[str]:
    _want(s, str, "string")
    return list(s) if _want(sep, str, "string") == "" else s.split(sep)


def _pad(st: _Exec, s: Any, prefix: Any, suffix: Any) -> str:
    """docker's pad: surround a non-empty string with spaces."""
    if _want(s, str, "string") == "":
        return s
    return " " * _want(prefix, int, "int") + s + " " * _want(suffix, int, "int")


_FUNCS: dict[str, tuple[Callable[..., Any], int, int]] = {  # name -> (fn, min args, max|-1)
    "and": (_truth, 1, -1), "or": (_truth, 1, -1), "not": (lambda st, v: not _truth(v), 1, 1),
    "index": (_index, 1, -1), "len": (_length, 1, 1), "eq": (_eq, 2, -1),
    "ne": (lambda st, a, b: not _eq(st, a, b), 2, 2),
    "lt": (_compare(lambda a, b: a < b), 2, 2), "le": (_compare(lambda a, b: a <= b), 2, 2),
    "gt": (_compare(lambda a, b: a > b), 2, 2), "ge": (_compare(lambda a, b: a >= b), 2, 2),
    "print": (_sprint, 0, -1), "println": (lambda st, *a: " ".join(map(st.show, a)) + "\n", 0, -1),
    "printf": (lambda st, f, *a: st.sprintf(_want(f, str, "string"), a), 1, -1),
    "json": (lambda st, v: _json(v), 1, 1), "split": (_split, 2, 2), "join": (_join, 2, 2),
    "title": (_title, 1, 1), "lower": (lambda st, s: _case(s, False), 1, 1),
    "upper": (lambda st, s: _case(s, True), 1, 1), "pad": (_pad, 3, 3), "slice": (_slice, 1, -1),
    "html": (lambda st, *a: html.escape(_evalargs(st, a)).replace("&#x27;", "&#39;")
             .replace("&quot;", "&#34;"), 0, -1),
    "urlquery": (lambda st, *a: urllib.parse.quote_plus(_evalargs(st, a), safe=""), 0, -1),
    "truncate": (lambda st, s, n: _want(s, str, "string")[:max(_want(n, int, "int"), 0)], 2, 2),
}


def _compile_structs(spec: dict[str, list[str]]) -> list[Any]:
    out = [(tuple(p.split(".")) if p else (), dict(f.partition(":")[::2] for f in fields))
           for p, fields in spec.items()]
    return sorted(out, key=lambda e: e[0].count("*"))  # exact names beat wildcards


_DEFAULT_STRUCTS = _compile_structs(KNOWN_STRUCT_KEYS)


class Template:
    """A parsed template; the constructor raises TemplateError on bad syntax."""

    def __init__(self, source: str) -> None:
        self.source = source
        parser = _Parser(source)
        self.nodes, term = parser.parse_list(False)
        if term is not None:
            parser.err(f"unexpected {{{{{term}}}}}", parser.toks[parser.i - 1][2])

    def execute(self, data: Any, struct_fields: dict[str, list[str]] | None = None,
                header: bool = False) -> str:
        """Render against *data*; header=True renders a table header (errors ignored)."""
        structs = _DEFAULT_STRUCTS if struct_fields is None else _compile_structs(
            {**KNOWN_STRUCT_KEYS, **struct_fields})
        ex = _Exec(self, data, structs, header)
        try:
            ex.walk(self.nodes, data)
        except TemplateError:
            if not header:  # docker ignores header errors and prints what it has
                raise
        return "".join(ex.out)


@lru_cache(maxsize=256)
def compile_template(template: str) -> Template:
    """Parse *template* once (cached); raises TemplateError on bad syntax."""
    return Template(template)


def render(template: str, data: Any, struct_fields: dict[str, list[str]] | None = None) -> str:
    """Render a Go template against JSON-like *data* like ``docker ... -f`` prints it.

    *struct_fields* adds to / overrides KNOWN_STRUCT_KEYS (key path -> Go field specs).
    """
    return compile_template(template).execute(data, struct_fields)


def unescape_format(fmt: str) -> str:
    """Docker's formatter pre-pass: trim spaces, turn literal ``\\t``/``\\n`` into tab/newline."""
    return fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def render_table(template: str, rows: list[Any], headers: dict[str, str],
                 struct_fields: dict[str, list[str]] | None = None) -> str:
    """Docker's ``--format 'table ...'``: a header line, then one line per row, aligned.

    The ``table`` prefix is optional here. A field path's header is ``headers`` of the
    full dotted path or of its last name, else that name upper-cased.
    """
    tmpl = compile_template(unescape_format(template.removeprefix("table")))
    parts = [tmpl.execute(_HeaderCtx(headers), struct_fields, header=True), "\n"]
    for row in rows:
        parts += [tmpl.execute(row, struct_fields), "\n"]
    return tabwrite("".join(parts))
