"""`minidock topology`: the host's container networking as a picture.

The daemon builds the data from its store (`build`, served at
GET /minidock/topology); the CLI draws it as a text tree (`text`) or as
Graphviz DOT (`dot`). Pure: no kernel, no I/O.

    host
    ├── minidock0  network bridge  172.17.0.0/16  gateway 172.17.0.1
    │   └── veth1a2b3c4 ═ eth0 172.17.0.2/16  alpine3  [netns md-alpine3]
    └── br-5c0ffee12345  network alpine-net  172.18.0.0/16  gateway 172.18.0.1
        └── veth5d6e7f8 ═ eth0 172.18.0.2/16  alpine1  [netns md-alpine1]
                          published 0.0.0.0:8080/tcp → 80/tcp

On a host in a cluster, the hosts (each one's VTEP, its underlay address) and
every overlay: its namespace, bridge and VXLAN device here, the local veths,
and the remote endpoints its FDB sends to other hosts.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from .model import CHILD_LINK_DRIVERS


def build(networks: list[dict[str, Any]], containers: list[dict[str, Any]],
          endpoints: list[dict[str, Any]], cluster: dict[str, Any] | None = None) -> dict[str, Any]:
    """The topology from store records: networks, running containers with their interfaces, isolation;
    and the cluster's hosts and overlays (Cluster.topology) on a host that is in one."""
    by_id = {n["id"]: n for n in networks}
    names = {c["id"]: c["name"] for c in containers}
    bridges = sorted((n for n in networks if n["driver"] == "bridge"),
                     key=lambda n: (not n.get("predefined"), n["name"]))
    out_nets = []
    for n in bridges:
        cfg = n["ipam"]["config"][0] if n["ipam"]["config"] else {}
        six = next((c for c in n["ipam"]["config"] if ":" in c["subnet"]), None) if n.get("enable_ipv6") else None
        out_nets.append({"name": n["name"], "driver": "bridge", "bridge": n["bridge"],
                         "subnet": cfg.get("subnet", ""), "gateway": cfg.get("gateway", ""),
                         "subnet6": six["subnet"] if six else "", "gateway6": six["gateway"] if six else "",
                         "internal": bool(n.get("internal"))})
    out_cs = []
    for c in sorted(containers, key=lambda c: c["name"]):
        if c["state"]["status"] != "running":
            continue
        mode = str(c["host_config"]["NetworkMode"])
        first = by_id.get(next(iter(c["networks"].values()))["network_id"]) if c["networks"] else None
        kind = ("container" if mode.startswith("container:")
                else first["driver"] if first is not None else "none")
        ifaces = sorted(({"network": by_id[ep["network_id"]]["name"], "ifname": ep["ifname"], "veth": ep["veth"],
                          "ip": ep.get("ip", ""), "prefixlen": ep.get("prefixlen", 0), "mac": ep.get("mac", ""),
                          "ip6": ep.get("ip6", ""), "prefixlen6": ep.get("prefixlen6", 0)}
                         for ep in endpoints if ep["container_id"] == c["id"] and ep["network_id"] in by_id
                         and by_id[ep["network_id"]]["driver"] in ("bridge", "overlay", *CHILD_LINK_DRIVERS)),
                        key=lambda i: i["ifname"])
        out_cs.append({
            "name": c["name"], "netns": c.get("netns") or "", "kind": kind,
            "shares": names.get(mode.partition(":")[2], mode.partition(":")[2]) if kind == "container" else "",
            "interfaces": ifaces,
            "ports": [{"host_ip": p["host_ip"], "host_port": p["host_port"], "proto": p["proto"],
                       "container_port": p["container_port"]} for p in c.get("ports") or []],
        })
    isolated = [[a["name"], b["name"]] for a, b in combinations(out_nets, 2)]
    lans = []
    for n in sorted((n for n in networks if n["driver"] in CHILD_LINK_DRIVERS), key=lambda n: n["name"]):
        cfg = n["ipam"]["config"][0] if n["ipam"]["config"] else {}
        opts = n.get("options") or {}
        lans.append({"name": n["name"], "driver": n["driver"], "parent": opts.get("parent") or n["bridge"],
                     "mode": opts.get(f"{n['driver']}_mode") or ("bridge" if n["driver"] == "macvlan" else "l2"),
                     "subnet": cfg.get("subnet", ""), "gateway": cfg.get("gateway", "")})
    topo = {"networks": out_nets, "containers": out_cs, "isolated": isolated, "lans": lans}
    if cluster is not None:
        topo["cluster"] = cluster
    return topo


def _port(p: dict[str, Any]) -> str:
    return f"{p['host_ip']}:{p['host_port']}/{p['proto']} → {p['container_port']}/{p['proto']}"


def text(topo: dict[str, Any]) -> str:
    """A tree a terminal shows well."""
    lines = ["host (the daemon's network namespace)"]
    cs = topo["containers"]
    items: list[tuple[str, list[str]]] = []
    for n in topo["networks"]:
        head = (f"{n['bridge']}  network {n['name']}  {n['subnet']}  gateway {n['gateway']}"
                + (f"  {n['subnet6']}  gateway {n['gateway6']}" if n.get("subnet6") else "")
                + ("  [internal: no way out]" if n["internal"] else ""))
        children = []
        for c in cs:
            for i in c["interfaces"]:
                if i["network"] == n["name"]:
                    six = f" {i['ip6']}/{i['prefixlen6']}" if i.get("ip6") else ""
                    children.append((f"{i['veth']} ═ {i['ifname']} {i['ip']}/{i['prefixlen']}{six}  {c['name']}  "
                                     f"[netns {c['netns']}]",
                                     [f"published {_port(p)}" for p in c["ports"] if i["ifname"] == "eth0"]))
        items.append((head, _tree(children)))
    host_users = [c["name"] for c in cs if c["kind"] == "host"]
    if host_users:
        items.append((f"network host (the host's own stack): {', '.join(host_users)}", []))
    for c in cs:
        if c["kind"] == "null":
            items.append((f"network none (loopback only): {c['name']}  [netns {c['netns']}]", []))
        elif c["kind"] == "container":
            items.append((f"{c['name']} shares the network namespace of {c['shares']}  [netns {c['netns']}]", []))
    for n in topo.get("lans", []):
        head = (f"{n['parent']} (parent)  network {n['name']}  {n['driver']} {n['mode']}  {n['subnet']}  "
                f"gateway {n['gateway']} (the LAN's router; no bridge, no NAT)")
        children = [(f"{i['ifname']} {i['ip']}/{i['prefixlen']}  {c['name']}  [netns {c['netns']}]"
                     + (f"  MAC {i['mac']} on the wire" if n["driver"] == "macvlan" else "  the parent's MAC"), [])
                    for c in cs for i in c["interfaces"] if i["network"] == n["name"]]
        items.append((head, _tree(children)))
    items += _overlays(topo)
    lines += _tree(items)
    if topo["isolated"]:
        lines.append("isolation (MINIDOCK-ISOLATION-STAGE-1/2 drop traffic between these bridges):")
        lines += [f"  {a} ✕ {b}" for a, b in topo["isolated"]]
    return "\n".join(lines) + "\n"


def _overlays(topo: dict[str, Any]) -> list[tuple[str, list[str]]]:
    cl = topo.get("cluster")
    if cl is None:
        return []
    hosts = ", ".join(f"{h['Name']} {h['Address']}" + (" (this host)" if h["Self"] else "")
                      + ("" if h["Alive"] else " DEAD") for h in cl["hosts"])
    items = [(f"cluster {cl['store']}: hosts {hosts}; VXLAN endpoints on UDP 4789", [])]
    for o in cl["overlays"]:
        head = (f"{o['namespace']} (netns)  overlay {o['name']}  {o['subnet']}  VNI {o['vni']}  "
                f"br0 {o['gateway']}  {o['vxlan']} ⇄ UDP 4789")
        children = [(f"{i['veth']} ═ {i['ifname']} {i['ip']}/{i['prefixlen']}  {c['name']}  [netns {c['netns']}]", [])
                    for c in topo["containers"] for i in c["interfaces"] if i["network"] == o["name"]]
        children += [(f"remote {r['ip']} {r['name']} on {r['node']}  fdb {r['mac']} → {r['vtep']}", [])
                     for r in o["remote"]]
        items.append((head, _tree(children)))
    return items


def _tree(items: list[tuple[str, list[str]]]) -> list[str]:
    """Lines of a tree: each item a head and its already-drawn sub-lines."""
    out = []
    for k, (head, sub) in enumerate(items):
        last = k == len(items) - 1
        out.append(("└── " if last else "├── ") + head)
        out += [("    " if last else "│   ") + s for s in sub]
    return out


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(topo: dict[str, Any]) -> str:
    """Graphviz DOT: a cluster per bridge, a box per namespace, an edge per veth.

    Nodes and veth edges carry an id, kept by Graphviz into SVG (`minidock ui` finds them
    there): `host`, `br:BRIDGE`, `ov:NAMESPACE` (an overlay's br0), `ns:CONTAINER`,
    `if:CONTAINER:IFNAME`, `port:IP:PORT/PROTO`."""
    out = ["digraph minidock {", "  rankdir=LR;", '  node [shape=box, fontname="monospace"];',
           '  edge [fontname="monospace", fontsize=10];',
           '  host [label="host\\n(the daemon\'s namespace)", shape=box3d, id="host", class="host"];']
    for n in topo["networks"]:
        out.append(f"  subgraph {_q('cluster_' + n['bridge'])} {{")
        out.append(f"    label={_q('network ' + n['name'] + chr(10) + n['subnet'] + (' (internal)' if n['internal'] else ''))};")
        out.append(f"    {_q(n['bridge'])} [shape=ellipse, label={_q(n['bridge'] + chr(10) + n['gateway'])}, "
                   f"id={_q('br:' + n['bridge'])}, class=\"bridge\"];")
        out.append("  }")
        out.append(f"  host -> {_q(n['bridge'])} [dir=none{', style=dotted' if n['internal'] else ''}];")
    for n in topo.get("lans", []):
        out.append(f"  subgraph {_q('cluster_lan_' + n['name'])} {{")
        out.append(f"    label={_q(n['driver'] + ' ' + n['name'] + chr(10) + n['subnet'] + ' mode ' + n['mode'])};")
        out.append(f"    {_q('lan:' + n['name'])} [shape=ellipse, label={_q(n['parent'] + ' (parent)')}];")
        out.append("  }")
        out.append(f"  host -> {_q('lan:' + n['name'])} [dir=none];")
    for o in (topo.get("cluster") or {}).get("overlays", []):
        out.append(f"  subgraph {_q('cluster_' + o['namespace'])} {{")
        out.append(f"    label={_q('overlay ' + o['name'] + chr(10) + o['subnet'] + ' VNI ' + str(o['vni']))};")
        out.append(f"    {_q(o['namespace'])} [shape=ellipse, label={_q('br0 ' + o['gateway'] + chr(10) + o['vxlan'])}, "
                   f"id={_q('ov:' + o['namespace'])}, class=\"bridge\"];")
        for r in o["remote"]:
            out.append(f"    {_q('remote:' + r['ip'])} [style=dashed, label={_q(r['name'] + chr(10) + r['ip'] + ' on ' + r['node'])}];")
            out.append(f"    {_q(o['namespace'])} -> {_q('remote:' + r['ip'])} [dir=none, style=dashed, "
                       f"label={_q('VXLAN → ' + r['vtep'])}];")
        out.append("  }")
    for c in topo["containers"]:
        node = _q("ns:" + c["name"])
        if c["kind"] == "host":
            out.append(f"  {node} [label={_q(c['name'] + chr(10) + 'host network')}, style=rounded, "
                       f"id={node}, class=\"container\"];")
            out.append(f"  host -> {node} [dir=none, style=dashed, label=\"shares\"];")
            continue
        label = "\n".join([c["name"], f"netns {c['netns']}",
                           *[f"{i['ifname']} {i['ip']}/{i['prefixlen']}" for i in c["interfaces"]]])
        out.append(f"  {node} [label={_q(label)}, id={node}, class=\"container\"];")
        for i in c["interfaces"]:
            bridge = (next((n["bridge"] for n in topo["networks"] if n["name"] == i["network"]), None)
                      or next((f"lan:{n['name']}" for n in topo.get("lans", []) if n["name"] == i["network"]), None)
                      or next(o["namespace"] for o in topo["cluster"]["overlays"] if o["name"] == i["network"]))
            out.append(f"  {_q(bridge)} -> {node} [dir=none, label={_q(i['veth'] + ' ═ ' + i['ifname'])}, "
                       f"id={_q('if:' + c['name'] + ':' + i['ifname'])}, class=\"veth\"];")
        if c["kind"] == "container":
            out.append(f"  {node} -> {_q('ns:' + c['shares'])} [style=dashed, label=\"same netns\"];")
        for p in c["ports"]:
            port = _q(f"port:{p['host_ip']}:{p['host_port']}/{p['proto']}")
            out.append(f"  {port} [shape=note, label={_q(p['host_ip'] + ':' + str(p['host_port']) + '/' + p['proto'])}, "
                       f"id={port}, class=\"port\"];")
            out.append(f"  host -> {port} [dir=none];")
            out.append(f"  {port} -> {node} [label={_q('DNAT → ' + str(p['container_port']))}];")
    for a, b in topo["isolated"]:
        ba = next(n["bridge"] for n in topo["networks"] if n["name"] == a)
        bb = next(n["bridge"] for n in topo["networks"] if n["name"] == b)
        out.append(f"  {_q(ba)} -> {_q(bb)} [dir=none, style=dashed, color=red, constraint=false, "
                   'label="isolated"];')
    out.append("}")
    return "\n".join(out) + "\n"
