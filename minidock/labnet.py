"""A lab cluster's network on one machine, in namespaces: an underlay switch,
an etcd cluster of its own, and the namespaces of the hosts that join it.
`make demo` shows overlays on it; the tests' cluster (tests/cluster.py) adds
a daemon per host.

    /run/netns/<id>-lan      the underlay: bridge "lan" (192.0.2.0/24, TEST-NET-1)
    ├── <id>-etcd1..N        one etcd member each, 192.0.2.11…
    └── <id>-h1..N           a host each: eth0 192.0.2.1… on the underlay (its VXLAN
                             endpoint), its daemon's namespaces registered in a
                             directory of its own (MINIDOCK_NETNS_DIR), as separate
                             machines each have their own /run/netns

Nothing of it reaches the machine's network: every address lives inside these
namespaces, and remove() deletes them all.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

UNDERLAY = "192.0.2"
PROGRESS_INTERVAL = "1s"  # etcd's watch progress notifications, which the daemon's watch expects


def run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    return p


@dataclass
class Member:
    name: str
    ns: str
    ip: str
    data: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://{self.ip}:2379"


@dataclass
class Lab:
    members_n: int = 3
    id: str = field(default_factory=lambda: "mdc" + secrets.token_hex(2))
    members: list[Member] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="minidock-cluster-")
        self.lan = f"{self.id}-lan"

    # -- the underlay
    def _ns(self, name: str) -> str:
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def plug(self, ns: str, ip: str, port: str) -> None:
        """A veth from namespace `ns` (eth0, `ip`) to a port of the underlay switch."""
        run("ip", "-n", self.lan, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "-n", self.lan, "link", "set", port, "master", "lan", "up")
        run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")

    @property
    def store_url(self) -> str:
        return "etcd://" + ",".join(f"{m.ip}:2379" for m in self.members)

    def start_store(self) -> None:
        """The underlay switch and a healthy etcd cluster on it."""
        self._ns(self.lan)
        run("ip", "-n", self.lan, "link", "add", "lan", "type", "bridge")
        run("ip", "-n", self.lan, "link", "set", "lan", "up")
        for i in range(1, self.members_n + 1):
            m = Member(f"etcd{i}", self._ns(f"{self.id}-etcd{i}"), f"{UNDERLAY}.{10 + i}",
                       os.path.join(self.dir, f"etcd{i}"))
            self.plug(m.ns, m.ip, f"p-etcd{i}")
            self.members.append(m)
        for m in self.members:
            self.start_member(m, new=True)
        self.wait_healthy()

    # -- the hosts
    def host_ns(self, i: int) -> str:
        return f"{self.id}-h{i}"

    def node_name(self, i: int) -> str:
        return f"n{i}-{self.id[3:]}"  # unique on the machine: overlay namespaces are named after it

    def netns_dir(self, i: int) -> str:
        return os.path.join(self.dir, f"netns-h{i}")

    def add_host_ns(self, i: int) -> str:
        """Host i's namespace on the underlay, and its namespace registry."""
        ns = self._ns(self.host_ns(i))
        self.plug(ns, f"{UNDERLAY}.{i}", f"p-h{i}")
        os.makedirs(self.netns_dir(i), exist_ok=True)
        return ns

    def cluster_flags(self, i: int) -> list[str]:
        return ["--cluster-store", self.store_url, "--cluster-advertise", f"{UNDERLAY}.{i}",
                "--node-name", self.node_name(i)]

    # -- etcd
    def start_member(self, m: Member, new: bool = False) -> None:
        peers = ",".join(f"{o.name}=http://{o.ip}:2380" for o in self.members)
        argv = ["nsenter", f"--net=/run/netns/{m.ns}", "etcd", "--name", m.name, "--data-dir", m.data,
                "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
                "--listen-peer-urls", f"http://{m.ip}:2380", "--initial-advertise-peer-urls",
                f"http://{m.ip}:2380", "--initial-cluster", peers, "--initial-cluster-token", self.id,
                "--initial-cluster-state", "new" if new else "existing",
                "--experimental-watch-progress-notify-interval", PROGRESS_INTERVAL,
                "--heartbeat-interval", "50", "--election-timeout", "500"]
        with open(os.path.join(self.dir, f"{m.name}.log"), "ab") as log:
            m.proc = subprocess.Popen(argv, stdout=log, stderr=log)

    def stop_member(self, m: Member, sig: int = signal.SIGKILL) -> None:
        if m.proc is not None and m.proc.poll() is None:
            m.proc.send_signal(sig)
            m.proc.wait(timeout=10)
        m.proc = None

    def etcdctl(self, *args: str, check: bool = True) -> str:
        live = [m for m in self.members if m.proc is not None]
        return run("nsenter", f"--net=/run/netns/{live[0].ns}", "etcdctl", "--endpoints",
                   ",".join(x.client_url for x in live), "--command-timeout=3s", *args,
                   check=check, timeout=20).stdout

    def leader(self) -> Member:
        for m in self.members:
            if m.proc is None:
                continue
            out = run("nsenter", f"--net=/run/netns/{m.ns}", "etcdctl", "--endpoints", m.client_url,
                      "endpoint", "status", "-w", "fields", check=False, timeout=10).stdout
            mine = next((ln for ln in out.splitlines() if '"MemberID"' in ln), "")
            lead = next((ln for ln in out.splitlines() if '"Leader"' in ln), "")
            if mine and lead and mine.split(":")[1].strip() == lead.split(":")[1].strip():
                return m
        raise RuntimeError("no etcd leader")

    def wait_healthy(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [m for m in self.members if m.proc is not None]
            try:  # a member still starting may hold one round up: it is asked again, in time
                if run("nsenter", f"--net=/run/netns/{live[0].ns}", "etcdctl", "--dial-timeout=1s",
                       "--command-timeout=2s", "--endpoints", ",".join(m.client_url for m in live),
                       "endpoint", "health", check=False, timeout=10).returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.2)
        raise RuntimeError("etcd did not become healthy:\n" + self.member_logs())

    def member_logs(self) -> str:
        out = []
        for m in self.members:
            with open(os.path.join(self.dir, f"{m.name}.log"), errors="replace") as f:
                out.append(f"--- {m.name}\n" + f.read()[-2000:])
        return "\n".join(out)

    def keys(self) -> list[str]:
        return self.etcdctl("get", "--prefix", "--keys-only", "/minidock/").split()

    # -- teardown
    def remove(self) -> None:
        """etcd stopped, every namespace and registry deleted (the hosts' daemons stopped first)."""
        for m in self.members:
            self.stop_member(m)
        for name in sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []:
            if name.startswith("netns-h"):
                drop_registry(os.path.join(self.dir, name))
        for ns in reversed(self.namespaces):
            run("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def drop_registry(path: str) -> None:
    """A host's namespace directory: what a dead daemon left registered in it, then the
    bind mount the daemon made of it (as iproute2 does of /run/netns)."""
    for name in os.listdir(path):
        run("umount", os.path.join(path, name), check=False)
        os.unlink(os.path.join(path, name))
    while run("umount", path, check=False).returncode == 0:
        pass
