"""Detach keys: the key sequence (ctrl-p ctrl-q unless `detachKeys` says
otherwise) that ends an attach or an exec on a terminal without stopping it,
parsed and matched as Docker's term.ToBytes and escapeProxy do."""

from __future__ import annotations

from ..errors import InvalidParameter

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_SPECIAL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_keys(keys: str) -> bytes:
    """`ctrl-p,ctrl-q` as bytes; Docker's message for a sequence it cannot read."""
    codes = bytearray()
    for key in (keys or DEFAULT_DETACH_KEYS).split(","):
        if len(key) == 1:
            codes.append(ord(key))
            continue
        ch = key[5:] if key.startswith("ctrl-") else ""
        if len(ch) != 1 or not ("a" <= ch <= "z" or ch in _SPECIAL):
            raise InvalidParameter(f"Invalid detach keys ({keys}) provided")
        codes.append(ord(ch) - ord("a") + 1 if "a" <= ch <= "z" else _SPECIAL[ch])
    return bytes(codes)


class Escape:
    """Feed it what the client types: it returns what goes on to the process, holding back
    a started sequence; `detached` is set once the whole sequence came."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.matched = 0
        self.detached = False

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            if self.detached:
                break
            if byte == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    self.detached = True
                continue
            out += self.keys[:self.matched]
            self.matched = 0
            if byte == self.keys[0]:
                self.matched = 1
                if len(self.keys) == 1:
                    self.detached = True
                continue
            out.append(byte)
        return bytes(out)
