"""`minidock trace SRC DST`: one real probe, and its path as the kernel traced it.

The source and destination are named as a user names them (a container, `host`,
an outside address, a host port) and resolved here to a namespace to send from
and an address (and port) to send to. kernel/nftrace.py marks the probe, sends
it and reads the kernel's trace events; this module turns the events into the
path a student reads: hooks and interfaces, each rule met (with the comment
that names its network or container), each NAT rewrite, and the verdict.

One trace at a time: the trace tables are one name in the host's ruleset.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter, KernelError, NotFound, not_running
from ..kernel import netns, nftrace
from ..kernel.netns import NETNS_PREFIX
from ..model import Container
from .core import Core

log = logging.getLogger("minidock.trace")
PROTOS = ("icmp", "tcp", "udp")
MAX_TIMEOUT = 10.0


@dataclass
class End:
    """One end of the trace, resolved."""

    kind: str  # container, host, outside, address
    name: str
    namespace: str | None = None  # where the probe is sent from (None: the daemon's own)
    address: str = ""
    port: int = 0
    container: Container | None = None

    def to_json(self) -> dict[str, Any]:
        return {"Kind": self.kind, "Name": self.name, "Namespace": self.namespace or "",
                "Address": self.address, "Port": self.port}


def _is_v4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


def _split_port(ref: str) -> tuple[str, int]:
    """NAME:PORT, ADDRESS:PORT, or a bare host port."""
    if ref.isdigit():
        return "host", int(ref)
    head, sep, tail = ref.rpartition(":")
    if sep and tail.isdigit() and head:
        return head, int(tail)
    return ref, 0


_running = 0  # traces under way in this daemon: their tables are not stale


def stale_tables() -> list[str]:
    """Trace tables no trace of this daemon is using: left by one it did not finish
    (the daemon was killed mid-way). `system check` reports them."""
    if _running:
        return []
    nft = nftrace.open_nft()
    try:
        return nftrace.present(nft)
    finally:
        nft.close()


def remove_stale() -> list[str]:
    """Remove stale trace tables (start-up, `system repair`); returns what was removed."""
    found = stale_tables()
    if found:
        nft = nftrace.open_nft()
        try:
            nftrace.remove(nft)
        finally:
            nft.close()
    return found


class Tracer:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._lock = asyncio.Lock()

    # -- resolving the ends ---------------------------------------------------------------
    async def _source(self, ref: str) -> End:
        if ref == "host":
            return End("host", "host")
        if _is_v4(ref):
            if nftrace.route_source(ref) == ref:  # one of the host's own
                return End("host", ref, address=ref)
            ns = await nftrace.namespace_holding(ref, await self._wired())
            if ns is None:
                raise NotFound(f"no namespace holds address {ref}: an outside source is an address of a "
                               "namespace wired to this host")
            return End("outside", ref, namespace=ns, address=ref)
        c = self.core.container(ref)
        if not c.running:
            raise not_running(ref)
        if c.host_config.network_mode == "host":
            return End("container", c.name, container=c)
        if not c.netns:
            raise InvalidParameter(f"container {c.name} has no network namespace of its own")
        eps = [ep for ep in self.core.store.endpoints(container_id=c.id) if ep.ip]
        return End("container", c.name, namespace=c.netns, address=eps[0].ip if eps else "", container=c)

    async def _wired(self) -> list[str]:
        """Registered namespaces at the far end of one of the host's veths, not containers':
        where an outside address may live (another daemon's outside is no source of ours)."""
        peers = await self.core.host.peer_netnsids()
        out = []
        for name in netns.names():
            if not name.startswith(NETNS_PREFIX) and await self.core.host.netnsid(netns.path(name)) in peers:
                out.append(name)
        return out

    def _inside_ends(self, crossed: list[str]) -> list[str]:
        """The host's interfaces crossed, with the container's end of a veth at either end
        (`alpine1:eth0`): the store knows which veth is whose."""
        if not crossed:
            return crossed
        ends = {ep.veth: ep for ep in self.core.store.endpoints() if ep.veth}
        names = {c.id: c.name for c in self.core.store.containers.view()}
        out = list(crossed)
        first, last = ends.get(crossed[0]), ends.get(crossed[-1])
        if first is not None and first.container_id in names:
            out.insert(0, f"{names[first.container_id]}:{first.ifname}")
        if last is not None and last.container_id in names and len(crossed) > 1:
            out.append(f"{names[last.container_id]}:{last.ifname}")
        return out

    def _host_address(self, src: End) -> str:
        """The host as the source sees it: the gateway of a container's network, the
        host's address towards an outside one, or loopback from the host itself."""
        if src.container is not None and src.namespace is not None:
            eps = self.core.store.endpoints(container_id=src.container.id)
            gw = next((ep.gateway for ep in eps if ep.gateway_endpoint and ep.gateway), "")
            return gw or next((ep.gateway for ep in eps if ep.gateway), "") or "127.0.0.1"
        if src.kind == "outside":
            return nftrace.route_source(src.address) or "127.0.0.1"
        return "127.0.0.1"

    def _destination(self, ref: str, src: End) -> End:
        name, port = _split_port(ref)
        if name == "host":
            return End("host", "host", address=self._host_address(src), port=port)
        if _is_v4(name):
            return End("address", name, address=name, port=port)
        c = self.core.container(name)
        if not c.running:
            raise not_running(name)
        eps = [ep for ep in self.core.store.endpoints(container_id=c.id) if ep.ip]
        if not eps:
            raise InvalidParameter(f"container {c.name} has no IPv4 address to send to")
        shared = set()
        if src.container is not None:
            shared = {ep.network_id for ep in self.core.store.endpoints(container_id=src.container.id)}
        ep = next((e for e in eps if e.network_id in shared), eps[0])
        return End("container", c.name, address=ep.ip, port=port, container=c)

    # -- the trace ------------------------------------------------------------------------
    async def trace(self, source: str, destination: str, port: int, proto: str, timeout: float) -> dict[str, Any]:
        if not source or not destination:
            raise InvalidParameter("a trace needs a source and a destination")
        if proto and proto not in PROTOS:
            raise InvalidParameter(f"invalid protocol {proto!r}: icmp, tcp or udp")
        if not 0 < timeout <= MAX_TIMEOUT:
            raise InvalidParameter(f"invalid timeout {timeout}: between 0 and {MAX_TIMEOUT:g} seconds")
        src = await self._source(source)
        dst = self._destination(destination, src)
        port = port or dst.port
        proto = proto or ("tcp" if port else "icmp")
        if proto == "icmp" and port:
            raise InvalidParameter("an icmp probe has no port: use --proto tcp or udp")
        if proto != "icmp" and not 0 < port < 65536:
            raise InvalidParameter(f"a {proto} probe needs a port (--port, or DST:PORT)")
        dst.port = port
        global _running
        async with self._lock:
            _running += 1
            try:
                return await self._run(src, dst, proto, timeout)
            finally:
                _running -= 1

    async def _run(self, src: End, dst: End, proto: str, timeout: float) -> dict[str, Any]:
        nft = nftrace.open_nft()
        listener = nftrace.Listener()
        sent: nftrace.Sent | None = None
        events: list[nftrace.Event] = []
        try:
            try:
                sent = await nftrace.open_probe(src.namespace, proto, dst.address, dst.port, bind=src.address)
                nftrace.install(nft, sent.probe)
            except (OSError, RuntimeError) as e:
                raise KernelError(f"trace: {e}") from e
            chains = await nftrace.ruleset(nft)
            outcome = await nftrace.fire(sent, timeout)
            await asyncio.sleep(0.1)  # the last events of a dropped or delivered packet
            events = listener.drain()
        finally:
            try:
                nftrace.remove(nft)
            except RuntimeError as e:  # never hide the error that got us here
                log.error("trace: removing the trace tables: %s", e)
            listener.close()
            nft.close()
            if sent is not None:
                sent.sock.close()
        if sent.source and sent.source != "0.0.0.0" and not src.address:
            src.address = sent.source
        path = describe(first_packet(events), chains)
        return {"Source": src.to_json(), "Destination": dst.to_json(), "Proto": proto,
                "Probe": {"Outcome": outcome, "Left": not sent.error, "Error": sent.error,
                          "Reached": outcome.startswith(("answered", "refused"))},
                "Path": path, "Interfaces": self._inside_ends(interfaces(path)), "Rewrites": rewrites(path),
                "Verdict": verdict(path, sent.error)}


def first_packet(events: list[nftrace.Event]) -> list[nftrace.Event]:
    """The events of the probe's first packet: a retransmission is marked again by our rule
    in a hook where it was marked already."""
    marked: set[tuple[str, str]] = set()
    out = []
    for ev in events:
        if ev.kind == "rule" and not ev.handle:
            continue  # the end of a chain, fallen through: the next event says where it went on
        if ev.table == nftrace.TABLE and ev.kind == "rule":
            if (ev.family, ev.chain) in marked:
                break
            marked.add((ev.family, ev.chain))
        out.append(ev)
    return out


def _comment(rule: str) -> str:
    m = re.search(r'--comment "([^"]*)"', rule) or re.search(r'--comment (\S+)', rule)
    return m.group(1) if m else ""


def _packet(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    where = f"{p['saddr']}" + (f":{p['sport']}" if "sport" in p else "")
    to = f"{p['daddr']}" + (f":{p['dport']}" if "dport" in p else "")
    what = p["proto"] + (" echo-request" if p.get("icmp_type") == 8 else "")
    return f"{where} → {to} {what}"


def describe(events: list[nftrace.Event], chains: dict[tuple[str, str, str], nftrace.Chain]) -> list[dict[str, Any]]:
    """Each event as a step of the path: its hook, interfaces, the rule met, the verdict."""
    out = []
    hook = ""
    for ev in events:
        chain = chains.get((ev.family, ev.table, ev.chain))
        if chain is not None and chain.hook:
            hook = chain.hook
        rule = chain.rules.get(ev.handle, "") if (chain is not None and ev.kind == "rule") else ""
        out.append({"Family": ev.family, "Table": ev.table, "Chain": ev.chain, "Hook": hook,
                    "Kind": ev.kind, "Ours": ev.table == nftrace.TABLE, "Rule": rule, "Comment": _comment(rule),
                    "Verdict": ev.verdict, "Target": ev.target, "In": nftrace.ifname(ev.iif),
                    "Out": nftrace.ifname(ev.oif), "Packet": _packet(ev.packet), "Headers": ev.packet or {}})
    return out


def interfaces(path: list[dict[str, Any]]) -> list[str]:
    """The host's interfaces the packet crossed, in order: in through a veth or an uplink,
    the bridge it arrived on, the one it left by, the port out."""
    out: list[str] = []
    for step in path:
        for name in (step["In"], step["Out"]):
            if name and name != "lo" and name not in out:
                out.append(name)
    return out


def rewrites(path: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where the packet's addresses or ports changed between two hooks, and the NAT rule
    that did it (the last one met before): `After` is that rule's index in the path."""
    out: list[dict[str, Any]] = []
    last: dict[str, Any] = {}
    before: dict[str, Any] = {}
    nat, nat_at = "", -1
    for i, step in enumerate(path):
        if step["Kind"] == "rule" and re.search(  # iptables' nat, or --port-maps' own table
                r"\b(DNAT|SNAT|MASQUERADE|dnat|snat|masquerade)\b", step["Rule"]):
            nat, nat_at = f"{step['Table']} {step['Chain']}: {step['Rule']}", i
        h = step["Headers"]
        if not h:
            continue
        key = {k: h.get(k) for k in ("saddr", "sport", "daddr", "dport")}
        if last and key != last:
            kind = " and ".join(w for w, ks in (("DNAT", ("daddr", "dport")), ("SNAT", ("saddr", "sport")))
                                if any(key[k] != last[k] for k in ks))
            out.append({"Kind": kind, "From": _packet(before), "To": step["Packet"], "By": nat,
                        "After": nat_at if nat_at >= 0 else i, "SeenIn": step["Hook"]})
            nat, nat_at = "", -1
        last, before = key, h
    return out


def verdict(path: list[dict[str, Any]], error: str) -> str:
    if error:
        return f"no route: {error}"
    if not path:
        return "the kernel traced nothing: the probe's packet met no hook of this host"
    end = path[-1]
    if end["Verdict"] == "drop":
        what = f"the rule of {end['Comment']}" if end["Comment"] else "a rule"
        if end["Kind"] == "policy":
            what = "the chain's policy"
        return f"dropped in {end['Family']} {end['Table']} {end['Chain']} by {what}: {end['Rule'] or 'policy drop'}"
    if any(s["Ours"] and s["Chain"] == "in" for s in path):
        return f"delivered to the host (input, in {next(s['In'] for s in path if s['Ours'] and s['Chain'] == 'in')})"
    outs = [s for s in path if s["Ours"] and s["Chain"] == "post" and s["Out"]]
    if outs:
        return f"sent out through {outs[-1]['Out']}" + (" (a bridge port)" if outs[-1]["Family"] == "bridge" else "")
    return f"last seen in {end['Family']} {end['Table']} {end['Chain']} ({end['Verdict'] or end['Kind']})"
