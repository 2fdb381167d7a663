"""The daemon's records as typed values: networks, their address plans,
endpoints, containers and their state, published ports.

Each record converts to and from the JSON document the store keeps
(`to_json` / `from_json`; the shapes are the store's since schema 1, so no
migration), and checks what can be checked without I/O. Nothing here talks
to the kernel or the store.

    Network ──< IPAMConfig                 (one IPv4 plan per network today)
       │
       └──< Endpoint >── Container         (one per container per network while it runs)
                            ├── State      created | running | exited
                            ├── HostConfig Docker's HostConfig, the part minidock honours
                            ├── Attachment per network asked for (aliases, --ip)
                            ├── PortBinding per published port while it runs
                            └── MountPoint per bind, volume or tmpfs ──> Volume (named ones)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .ports import Published as PortBinding

__all__ = ["IPAMConfig", "Network", "Endpoint", "State", "HostConfig", "Attachment", "Container",
           "PortBinding", "OPT_NAME", "OPT_MTU", "OPT_ICC", "OPT_MASQ", "OPT_VNI", "GATEWAY_BRIDGE",
           "CHILD_LINK_DRIVERS", "truthy", "MountPoint", "Volume", "ANONYMOUS_LABEL"]

OPT_NAME = "com.docker.network.bridge.name"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
OPT_VNI = "com.docker.network.driver.overlay.vxlanid_list"  # Docker's own key for an overlay's VNI
GATEWAY_BRIDGE = "minidock_gwbridge"  # the way out of overlay networks, as docker_gwbridge
CHILD_LINK_DRIVERS = ("macvlan", "ipvlan")  # a container's link is a child of a host interface (the parent)
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8


def truthy(value: Any, default: bool = True) -> bool:
    """An option's boolean as Docker reads it; unset is `default`."""
    if value is None or value == "":
        return default
    return str(value).lower() in ("1", "true", "yes", "on")


@dataclass
class IPAMConfig:
    subnet: str
    gateway: str
    ip_range: str = ""
    # --aux-address NAME=IP: addresses of the subnet no container gets (a host's own macvlan, a router)
    aux: dict[str, str] = field(default_factory=dict)

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.split("/")[1])

    def to_json(self) -> dict[str, Any]:
        out = {"subnet": self.subnet, "gateway": self.gateway}
        if self.ip_range:
            out["ip_range"] = self.ip_range
        if self.aux:
            out["aux"] = dict(self.aux)
        return out

    @staticmethod
    def from_json(d: dict[str, Any]) -> IPAMConfig:
        return IPAMConfig(d["subnet"], d["gateway"], d.get("ip_range", ""), dict(d.get("aux") or {}))


@dataclass
class Network:
    id: str
    name: str
    driver: str
    created: float
    internal: bool = False
    attachable: bool = False
    ipam: list[IPAMConfig] = field(default_factory=list)
    ipam_options: dict[str, str] | None = None
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    # the link the network owns: its Linux bridge (bridge driver), or the VLAN sub-interface or
    # dummy a macvlan or ipvlan network made for its parent
    bridge: str = ""
    predefined: bool = False
    enable_ipv6: bool = False  # dual stack: ipam holds the IPv4 config first, then the IPv6 one
    scope: str = ""  # as asked at create ("local", "global"); "" is the driver's
    ingress: bool = False

    @property
    def subnet(self) -> str:
        return self.ipam[0].subnet if self.ipam else ""

    @property
    def gateway(self) -> str:
        return self.ipam[0].gateway if self.ipam else ""

    @property
    def ipam6(self) -> IPAMConfig | None:
        """The IPv6 config, on a network with IPv6 enabled."""
        if not self.enable_ipv6:
            return None
        return next((c for c in self.ipam if ":" in c.subnet), None)

    @property
    def user_defined(self) -> bool:
        """A user-defined network: containers on it resolve names through the DNS stub (not the
        gateway bridge, whose addresses are only a way out)."""
        return (self.driver in ("bridge", "overlay", *CHILD_LINK_DRIVERS) and not self.predefined
                and self.name != GATEWAY_BRIDGE)

    @property
    def mtu(self) -> int:
        default = 1500 - VXLAN_OVERHEAD if self.driver == "overlay" else 1500
        return int(self.options.get(OPT_MTU) or default)

    @property
    def vni(self) -> int:
        return int(self.options.get(OPT_VNI) or 0)

    @property
    def icc(self) -> bool:
        return truthy(self.options.get(OPT_ICC))

    @property
    def masquerade(self) -> bool:
        return truthy(self.options.get(OPT_MASQ))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "driver": self.driver, "created": self.created,
            "internal": self.internal, "attachable": self.attachable,
            "ipam": {"driver": "default", "options": self.ipam_options,
                     "config": [c.to_json() for c in self.ipam]},
            "options": dict(self.options), "labels": dict(self.labels), "bridge": self.bridge,
            "predefined": self.predefined, "enable_ipv6": self.enable_ipv6,
            **({"scope": self.scope} if self.scope else {}), **({"ingress": True} if self.ingress else {}),
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> Network:
        ipam = d.get("ipam") or {}
        return Network(
            id=d["id"], name=d["name"], driver=d["driver"], created=d.get("created", 0.0),
            internal=bool(d.get("internal")), attachable=bool(d.get("attachable")),
            ipam=[IPAMConfig.from_json(c) for c in ipam.get("config") or []],
            ipam_options=ipam.get("options"), options=dict(d.get("options") or {}),
            labels=dict(d.get("labels") or {}), bridge=d.get("bridge", ""),
            predefined=bool(d.get("predefined")), enable_ipv6=bool(d.get("enable_ipv6")),
            scope=d.get("scope") or "", ingress=bool(d.get("ingress")),
        )


@dataclass
class Endpoint:
    """A container's interface on one network: what its driver made."""

    container_id: str
    network_id: str
    id: str
    ifname: str  # inside the container: eth0, eth1, …
    veth: str = ""  # the host end (bridge driver)
    aliases: list[str] = field(default_factory=list)
    gateway_endpoint: bool = False  # its network carries the container's default route
    ip: str = ""
    prefixlen: int = 0
    mac: str = ""
    gateway: str = ""
    ip6: str = ""  # on a network with IPv6 enabled
    prefixlen6: int = 0
    gateway6: str = ""

    @property
    def cidr(self) -> str:
        return f"{self.ip}/{self.prefixlen}" if self.ip else ""

    @property
    def cidr6(self) -> str:
        return f"{self.ip6}/{self.prefixlen6}" if self.ip6 else ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> Endpoint:
        return Endpoint(**{f.name: d[f.name] for f in dataclasses.fields(Endpoint) if f.name in d})


@dataclass
class State:
    status: str = "created"  # created | running | exited
    pid: int = 0
    start_time: int = 0  # the kernel's start time of pid: tells a reused pid from ours
    exit_code: int = 0
    error: str = ""
    started_at: float = 0
    finished_at: float = 0
    stopping_signal: int | None = None  # a stop sent it: an unknown exit code is 128 + it
    paused: bool = False  # running, its processes stopped (`pause`); Docker's Status "paused"

    @property
    def running(self) -> bool:
        return self.status == "running"

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.stopping_signal is None:
            del out["stopping_signal"]
        if not self.paused:
            del out["paused"]
        return out

    @staticmethod
    def from_json(d: dict[str, Any]) -> State:
        return State(**{f.name: d[f.name] for f in dataclasses.fields(State) if f.name in d})


_HOST_CONFIG_KEYS = {"network_mode": "NetworkMode", "dns": "Dns", "extra_hosts": "ExtraHosts",
                     "auto_remove": "AutoRemove", "port_bindings": "PortBindings",
                     "publish_all_ports": "PublishAllPorts", "links": "Links",
                     # the mounts as the request gave them (inspect shows them so); `Container.mounts`
                     # holds what they resolved to
                     "binds": "Binds", "mounts": "Mounts", "tmpfs": "Tmpfs", "volumes_from": "VolumesFrom",
                     "volume_driver": "VolumeDriver"}


@dataclass
class HostConfig:
    """Docker's HostConfig: the part minidock honours as fields, under Docker's keys in JSON;
    every other key the create request gave is kept verbatim in `given` and shown back by
    inspect (cgroup limits among them: minidock stores them and enforces none)."""

    network_mode: str = "default"
    dns: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    auto_remove: bool = False
    port_bindings: dict[str, Any] = field(default_factory=dict)
    publish_all_ports: bool = False
    links: list[str] = field(default_factory=list)
    given: dict[str, Any] = field(default_factory=dict)
    binds: list[str] | None = None
    mounts: list[dict[str, Any]] | None = None
    tmpfs: dict[str, str] | None = None
    volumes_from: list[str] | None = None
    volume_driver: str = ""

    @property
    def joined(self) -> str:
        """The container whose network namespace this one shares (`container:<id>`), or ""."""
        mode, sep, other = self.network_mode.partition(":")
        return other if sep and mode == "container" else ""

    @staticmethod
    def modelled_keys() -> set[str]:
        return set(_HOST_CONFIG_KEYS.values())

    def setting(self, key: str, default: Any = None) -> Any:
        """A HostConfig key minidock keeps as given (PidMode, LogConfig, GroupAdd, …)."""
        value = self.given.get(key)
        return default if value is None else value

    def to_json(self) -> dict[str, Any]:
        return {**self.given, **{key: getattr(self, attr) for attr, key in _HOST_CONFIG_KEYS.items()
                                 if getattr(self, attr) is not None}}

    @staticmethod
    def from_json(d: dict[str, Any]) -> HostConfig:
        hc = HostConfig(**{attr: d[key] for attr, key in _HOST_CONFIG_KEYS.items() if key in d})
        hc.port_bindings = hc.port_bindings or {}
        modelled = set(_HOST_CONFIG_KEYS.values())
        hc.given = {k: v for k, v in d.items() if k not in modelled}
        return hc


@dataclass
class Attachment:
    """A network the container asked to be on."""

    network_id: str
    aliases: list[str] = field(default_factory=list)
    ipv4: str = ""  # pinned with --ip
    ipv6: str = ""  # pinned with --ip6
    # the rest of Docker's EndpointSettings: per-network links ("name:alias", names the DNS stub
    # answers for this container only), the MAC its interface gets, link-local addresses added
    # to it (IPAMConfig.LinkLocalIPs), and the driver options, kept as given
    links: list[str] = field(default_factory=list)
    mac: str = ""
    link_local: list[str] = field(default_factory=list)
    driver_opts: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"network_id": self.network_id, "aliases": list(self.aliases), "ipv4": self.ipv4}
        if self.ipv6:
            out["ipv6"] = self.ipv6
        for key in ("links", "mac", "link_local", "driver_opts"):
            value = getattr(self, key)
            if value:
                out[key] = value.copy() if not isinstance(value, str) else value
        return out

    @staticmethod
    def from_json(d: dict[str, Any]) -> Attachment:
        return Attachment(d["network_id"], list(d.get("aliases") or []), d.get("ipv4") or "", d.get("ipv6") or "",
                          list(d.get("links") or []), d.get("mac") or "", list(d.get("link_local") or []),
                          dict(d.get("driver_opts") or {}))


@dataclass
class MountPoint:
    """What one mount of a container resolved to at create (Docker's MountPoint): a host
    directory or file (bind), a volume's data directory (volume), or a fresh tmpfs."""

    type: str  # bind | volume | tmpfs
    destination: str
    source: str = ""  # bind: the host path; volume: its data directory (or a subpath of it)
    name: str = ""  # volume: its name
    driver: str = ""  # volume: "local"
    rw: bool = True
    mode: str = ""  # the options as written after the second colon of -v (Docker's `Mode`)
    propagation: str = ""  # bind: rprivate unless asked
    named: bool = False  # volume: named by the user, so `rm -v` keeps it (anonymous ones go)
    subpath: str = ""  # volume: VolumeOptions.Subpath, relative to its data directory
    options: str = ""  # tmpfs: the mount data (size=…,mode=…)
    make_source: bool = False  # -v /host:/ctr makes a missing /host directory at start, as Docker does
    copy: bool = True  # volume: an empty one is filled from the image's files at its destination

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> MountPoint:
        return MountPoint(**{f.name: d[f.name] for f in dataclasses.fields(MountPoint) if f.name in d})


@dataclass
class Volume:
    """A named volume of the local driver: a directory under <root>/volumes/<name>/_data."""

    name: str
    created: float
    driver: str = "local"
    labels: dict[str, str] | None = None  # Docker shows null when none were given, {} when {} was
    options: dict[str, str] | None = None

    @property
    def id(self) -> str:  # the store's tables key records by id: a volume's is its name
        return self.name

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in (self.labels or {})

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "created": self.created, "driver": self.driver, "labels": self.labels,
                "options": self.options}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Volume:
        return Volume(d["name"], d.get("created", 0.0), d.get("driver") or "local", d.get("labels"), d.get("options"))


ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # Docker's mark of a volume made without a name


@dataclass
class Container:
    id: str
    name: str
    created: float
    image: str  # as asked for
    image_name: str  # as resolved: the image record's name (busybox, host or an imported one)
    lower: str  # the image's root, under the overlay
    argv: list[str]
    config: dict[str, Any]  # Docker's Config block, verbatim as inspect shows it
    host_config: HostConfig = field(default_factory=HostConfig)
    networks: dict[str, Attachment] = field(default_factory=dict)  # by network name, primary first
    state: State = field(default_factory=State)
    netns: str = ""  # under /run/netns while it runs with a namespace
    restart_count: int = 0
    manually_stopped: bool = False  # Docker's HasBeenManuallyStopped: a stop or kill ended its last run
    ports: list[PortBinding] = field(default_factory=list)  # held while it runs
    mounts: list[MountPoint] = field(default_factory=list)  # resolved at create, mounted at each start
    image_id: str = ""  # sha256:… of the image record at create
    layer: str = ""  # its writable layer's id (<root>/layers/<layer>); "": in its own directory

    @property
    def hostname(self) -> str:
        return str(self.config.get("Hostname") or "")

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    @property
    def running(self) -> bool:
        return self.state.running

    @property
    def joined(self) -> str:
        return self.host_config.joined

    @property
    def pinned(self) -> dict[str, str]:
        """network name -> the address asked for with --ip (or --ip6)."""
        return {name: a.ipv4 or a.ipv6 for name, a in self.networks.items() if a.ipv4 or a.ipv6}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "created": self.created, "image": self.image,
            "image_name": self.image_name, "lower": self.lower, "argv": list(self.argv),
            "config": self.config, "host_config": self.host_config.to_json(),
            "networks": {name: a.to_json() for name, a in self.networks.items()},
            "state": self.state.to_json(), "netns": self.netns, "restart_count": self.restart_count,
            "ports": [p.to_dict() for p in self.ports], "image_id": self.image_id,
            **({"mounts": [m.to_json() for m in self.mounts]} if self.mounts else {}),
            **({"manually_stopped": True} if self.manually_stopped else {}),
            **({"layer": self.layer} if self.layer else {}),
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> Container:
        return Container(
            id=d["id"], name=d["name"], created=d.get("created", 0.0), image=d.get("image", ""),
            image_name=d.get("image_name", ""), lower=d.get("lower", "/"), argv=list(d.get("argv") or []),
            config=d.get("config") or {}, host_config=HostConfig.from_json(d.get("host_config") or {}),
            networks={name: Attachment.from_json(a) for name, a in (d.get("networks") or {}).items()},
            state=State.from_json(d.get("state") or {}), netns=d.get("netns") or "",
            restart_count=d.get("restart_count", 0), manually_stopped=bool(d.get("manually_stopped")),
            ports=[PortBinding.from_dict(p) for p in d.get("ports") or []], image_id=d.get("image_id", ""),
            layer=d.get("layer", ""),
            mounts=[MountPoint.from_json(m) for m in d.get("mounts") or []],
        )
