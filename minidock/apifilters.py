"""Docker's `filters` query parameter: parsed, checked against the keys a route
accepts, and matched as moby's `filters.Args` does (pure, no I/O).

    ?filters={"name":{"web":true},"label":["env=prod"]}
      → {"name": ["web"], "label": ["env=prod"]}

Both of Docker's JSON shapes are read: the current one (key → {value: true})
and the legacy one (key → [values]). `match` is moby's `Args.Match`: an exact
value, or a regular expression found anywhere in the source (so `name=web`
matches "myweb1" and `id=3f2a` a network id starting, or containing, 3f2a).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection

from .errors import InvalidParameter

Filters = dict[str, list[str]]


def parse(raw: str | None, accepted: Collection[str] | None = None) -> Filters:
    """The filters of a query string, each key one of `accepted` (Docker's 400 otherwise);
    with `accepted` None any key passes, as moby's /events checks none."""
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise InvalidParameter("invalid filter") from None
    if not isinstance(doc, dict):
        raise InvalidParameter("invalid filter")
    out: Filters = {}
    for key, values in doc.items():
        if isinstance(values, dict):
            out[str(key)] = [str(v) for v, on in values.items() if on is not False]
        elif isinstance(values, list):
            out[str(key)] = [str(v) for v in values]
        else:
            raise InvalidParameter("invalid filter")
    for key in out:
        if accepted is not None and key not in accepted:
            raise InvalidParameter(f"invalid filter '{key}'")
    return out


def exact(f: Filters, key: str, source: str) -> bool:
    """True if `key` is not filtered on, or one of its values is `source`."""
    values = f.get(key)
    return not values or source in values


def match(f: Filters, key: str, source: str) -> bool:
    """True if `key` is not filtered on, or one of its values is `source` or a regular
    expression found in it (a value that is no regular expression matches only itself)."""
    values = f.get(key)
    if not values or source in values:
        return True
    for v in values:
        try:
            if re.search(v, source):
                return True
        except re.error:
            continue
    return False


def match_labels(f: Filters, key: str, labels: dict[str, str]) -> bool:
    """moby's MatchKVList: every `k` or `k=v` value of `key` is among `labels`."""
    values = f.get(key)
    if not values:
        return True
    if not labels:
        return False
    for v in values:
        k, sep, want = v.partition("=")
        if k not in labels or (sep and labels[k] != want):
            return False
    return True

