"""Docker-shaped JSON for containers: /containers/{id}/json and /containers/json."""

from __future__ import annotations

import os
import shlex
from typing import Any

from .. import ports
from ..cli.format import human_duration
from .common import ZERO_TIME, rfc3339


def _network_entry(net: dict[str, Any], ep: dict[str, Any] | None, cfg: dict[str, Any]) -> dict[str, Any]:
    ep = ep or {}
    return {
        "IPAMConfig": {"IPv4Address": cfg["ipv4"]} if cfg.get("ipv4") else None,
        "Links": None,
        "Aliases": cfg.get("aliases") or None,
        "MacAddress": ep.get("mac", ""),
        "NetworkID": net["id"],
        "EndpointID": ep.get("id", ""),
        "Gateway": ep.get("gateway", ""),
        "IPAddress": ep.get("ip", ""),
        "IPPrefixLen": ep.get("prefixlen", 0),
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DriverOpts": None,
        "DNSNames": None,
    }


def container_json(c: dict[str, Any], eps: list[dict[str, Any]], nets: dict[str, dict[str, Any]],
                   container_dir: str) -> dict[str, Any]:
    st = c["state"]
    by_net = {ep["network_id"]: ep for ep in eps}
    networks = {}
    for _name, cfg in c["networks"].items():
        net = nets.get(cfg["network_id"])
        if net is not None:
            networks[net["name"]] = _network_entry(net, by_net.get(net["id"]), cfg)
    primary = next((n for n in networks.values() if n["IPAddress"]), None) if c["host_config"]["NetworkMode"] in ("default", "bridge") else None
    running = st["status"] == "running"
    return {
        "Id": c["id"],
        "Created": rfc3339(c["created"]),
        "Path": c["argv"][0],
        "Args": c["argv"][1:],
        "State": {
            "Status": st["status"],
            "Running": running,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": st["pid"] if running else 0,
            "ExitCode": st["exit_code"],
            "Error": st.get("error", ""),
            "StartedAt": rfc3339(st.get("started_at")),
            "FinishedAt": rfc3339(st.get("finished_at")) if st.get("finished_at") else ZERO_TIME,
        },
        "Image": c["image_name"],
        "ResolvConfPath": os.path.join(container_dir, "resolv.conf"),
        "HostnamePath": os.path.join(container_dir, "hostname"),
        "HostsPath": os.path.join(container_dir, "hosts"),
        "LogPath": os.path.join(container_dir, "container.log"),
        "Name": "/" + c["name"],
        "RestartCount": c.get("restart_count", 0),
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "NetworkMode": c["host_config"]["NetworkMode"],
            "PortBindings": c["host_config"]["PortBindings"],
            "PublishAllPorts": c["host_config"].get("PublishAllPorts", False),
            "AutoRemove": c["host_config"]["AutoRemove"],
            "Dns": c["host_config"]["Dns"],
            "ExtraHosts": c["host_config"]["ExtraHosts"] or None,
            "Links": c["host_config"]["Links"] or None,
            # the one log minidock keeps; docker-py's run() reads it to know that logs work
            "LogConfig": {"Type": "json-file", "Config": {}},
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        },
        "GraphDriver": {
            "Data": {"LowerDir": c["lower"], "UpperDir": os.path.join(container_dir, "upper"),
                     "WorkDir": os.path.join(container_dir, "work"),
                     "MergedDir": os.path.join(container_dir, "merged")},
            "Name": "overlay",
        },
        "Config": c["config"],
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": c["id"] if c.get("netns") else "",
            "SandboxKey": f"/run/netns/{c['netns']}" if c.get("netns") else "",
            "Ports": ports.settings(ports.held(c), c["config"].get("ExposedPorts") or {}) if running else {},
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": primary["EndpointID"] if primary else "",
            "Gateway": primary["Gateway"] if primary else "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": primary["IPAddress"] if primary else "",
            "IPPrefixLen": primary["IPPrefixLen"] if primary else 0,
            "IPv6Gateway": "",
            "MacAddress": primary["MacAddress"] if primary else "",
            "Networks": networks,
        },
    }


def container_summary(c: dict[str, Any], eps: list[dict[str, Any]], nets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One element of /containers/json."""
    st = c["state"]
    by_net = {ep["network_id"]: ep for ep in eps}
    networks = {}
    for cfg in c["networks"].values():
        net = nets.get(cfg["network_id"])
        if net is not None:
            networks[net["name"]] = _network_entry(net, by_net.get(net["id"]), cfg)
    return {
        "Id": c["id"],
        "Names": ["/" + c["name"]],
        "Image": c["image"],
        "ImageID": c["image_name"],
        "Command": shlex.join(c["argv"]),
        "Created": int(c["created"]),
        "Ports": [{"IP": p.host_ip, "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto}
                  for p in ports.held(c)]
        + [{"PrivatePort": port, "Type": proto} for port, proto in _unpublished(c)],
        "Labels": c["config"]["Labels"],
        "State": st["status"],
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": c["host_config"]["NetworkMode"]},
        "NetworkSettings": {"Networks": networks},
        "Mounts": [],
    }


def status_text(c: dict[str, Any], now: float | None = None) -> str:
    import time

    now = now or time.time()
    st = c["state"]
    if st["status"] == "running":
        return "Up " + human_duration(now - st["started_at"])
    if st["status"] == "exited":
        return f"Exited ({st['exit_code']}) {human_duration(now - st['finished_at'])} ago"
    return "Created"


def _unpublished(c: dict[str, Any]) -> list[tuple[int, str]]:
    bound = {(p.container_port, p.proto) for p in ports.held(c)}
    exposed = [ports.parse_key(k) for k in c["config"].get("ExposedPorts") or {}]
    return [pp for pp in exposed if pp not in bound]
