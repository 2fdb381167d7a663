"""Forgetting connection-tracking entries of an address that is released.

A conntrack entry outlives the endpoint it was made for. If the address is
handed out again, an old ESTABLISHED entry can let packets through that the
firewall would now refuse (enable_icc=false, isolation). libnetwork deletes
them when an endpoint leaves; so do we.
"""

from __future__ import annotations

from pyroute2.conntrack import AsyncConntrack


async def forget(ip: str) -> int:
    """Delete every entry with `ip` at either end; returns how many."""
    ct = AsyncConntrack()
    await ct.setup_endpoint()
    try:
        stale = [e async for e in await ct.dump_entries()
                 if ip in (e.tuple_orig.saddr, e.tuple_orig.daddr, e.tuple_reply.saddr, e.tuple_reply.daddr)]
        for entry in stale:
            try:
                await ct.delete(entry)
            except Exception:  # noqa: BLE001 - it may have expired meanwhile
                pass
        return len(stale)
    finally:
        ct.close()
