"""Published ports as elements of nftables maps (`minidock daemon --port-maps`).

With the default iptables layout every published port is a DNAT rule, and a
change rewrites our chains: at 5000 published ports one more costs ~60 ms.
Here a port is one element of a map, and one lookup in the kernel replaces
the list of rules, so publishing or withdrawing a port costs the same with
none or 5000 published:

    table ip minidock {
        map hostports { ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }  # -p IP:8080:80
        map ports     { inet_proto . inet_service : ipv4_addr . inet_service }              # -p 8080:80
        chain prerouting  (nat, before iptables' nat)  ! 127/8, to a local address: dnat via the maps
        chain output      (nat, before iptables' nat)  to a local address: dnat via the maps
    }

The ACCEPT into the bridge and the hairpin MASQUERADE stay in iptables, as one
rule per network matching `--ctstate DNAT` (see iptables.ruleset). Look with
`nft list table ip minidock`. Ports on IPv6 addresses are the same maps in
`table ip6 minidock` (ipv6_addr keys and values; ::1 is never DNATed: the daemon
relays it, see service/publish.py).

We talk to the kernel through libnftables (nft's own library, in-process via
ctypes) with one context kept for the daemon's life: spawning `nft` costs a
fork and exec per change, and closing an nfnetlink socket after a delete
waits out an RCU grace period (~13 ms) that a kept socket never pays.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading

from ..ports import Published

TABLE = "minidock"
NFT_CTX_OUTPUT_HANDLE = 1 << 3  # libnftables: reversedns, service, stateless, handle


WILD = ("", "0.0.0.0", "::")


def _family(p: Published) -> str:
    return "ip6" if p.six else "ip"


def _key(p: Published) -> str:
    if p.host_ip not in WILD:
        return f"{p.host_ip} . {p.proto} . {p.host_port}"
    return f"{p.proto} . {p.host_port}"


def _map(p: Published) -> str:
    return "hostports" if p.host_ip not in WILD else "ports"


def element(p: Published) -> str:
    return f"{_key(p)} : {p.container_ip} . {p.container_port}"


def add_commands(published: list[Published]) -> list[str]:
    return [f"add element {_family(p)} {TABLE} {_map(p)} {{ {element(p)} }}" for p in published]


def delete_commands(published: list[Published]) -> list[str]:
    return [f"delete element {_family(p)} {TABLE} {_map(p)} {{ {_key(p)} }}" for p in published]


def table_text(published: list[Published], family: str = "ip") -> str:
    """The whole table (of family ip or ip6), as `nft -f` input: what start-up and repair
    load. Priority -101 is iptables' nat (dstnat, -100) minus one: a port is DNATed here,
    before it."""
    mine = [p for p in published if _family(p) == family]
    ports = ", ".join(element(p) for p in mine if _map(p) == "ports")
    hostports = ", ".join(element(p) for p in mine if _map(p) == "hostports")
    addr = "ipv6_addr" if family == "ip6" else "ipv4_addr"
    dnat = (f"fib daddr type local dnat {family} to {family} daddr . meta l4proto . th dport map @hostports\n"
            f"    fib daddr type local dnat {family} to meta l4proto . th dport map @ports")
    loopback = "ip6 daddr ::1 return" if family == "ip6" else "ip daddr 127.0.0.0/8 return"
    return f"""table {family} {TABLE}
delete table {family} {TABLE}
table {family} {TABLE} {{
  map hostports {{ type {addr} . inet_proto . inet_service : {addr} . inet_service;{
      f" elements = {{ {hostports} }};" if hostports else ""} }}
  map ports {{ type inet_proto . inet_service : {addr} . inet_service;{
      f" elements = {{ {ports} }};" if ports else ""} }}
  chain prerouting {{
    type nat hook prerouting priority -101; policy accept;
    {loopback}
    {dnat}
  }}
  chain output {{
    type nat hook output priority -101; policy accept;{chr(10) + "    " + loopback if family == "ip6" else ""}
    {dnat}
  }}
}}
"""


def remove_text(family: str = "ip") -> str:
    return f"table {family} {TABLE}\ndelete table {family} {TABLE}\n"


def differences(nft: Nft, published: list[Published], family: str = "ip") -> list[str]:
    """What the kernel's maps lack or hold beyond `published` (for `system check`)."""
    published = [p for p in published if _family(p) == family]
    try:
        listing = nft.run(f"list table {family} {TABLE}")
    except RuntimeError:
        return [f"table {family} {TABLE} is missing"]
    have = {e.strip() for block in re.findall(r"elements = \{([^}]*)\}", listing)
            for e in block.replace("\n", " ").split(",") if e.strip()}
    want = {element(p) for p in published}
    return ([f"{e} is missing" for e in sorted(want - have)]
            + [f"{e} is not ours" for e in sorted(have - want)])




class Nft:
    """One libnftables context, kept open, bound to the namespace it was made in."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("nftables") or "libnftables.so.1"
        lib = ctypes.CDLL(path, use_errno=True)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.ctx = lib.nft_ctx_new(0)
        lib.nft_ctx_buffer_output(self.ctx)
        lib.nft_ctx_buffer_error(self.ctx)
        self._lock = threading.Lock()

    def run(self, text: str) -> str:
        """Run nft commands (one transaction); raises with nft's message on failure."""
        with self._lock:
            rc = self.lib.nft_run_cmd_from_buffer(self.ctx, text.encode())
            err = (self.lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode().strip()
            out = (self.lib.nft_ctx_get_output_buffer(self.ctx) or b"").decode()
        if rc != 0:
            raise RuntimeError(f"nft failed: {err.splitlines()[0] if err else rc}")
        return out

    def close(self) -> None:
        if self.ctx:
            self.lib.nft_ctx_free(self.ctx)
            self.ctx = None
