"""A lab cluster on one machine, in namespaces the test makes: an underlay
switch, an etcd cluster of its own, and several minidock hosts.

    /run/netns/<id>-lan      the underlay: bridge "lan" (192.0.2.0/24)
    ├── <id>-etcd1..N        one etcd member each, 192.0.2.11…
    └── <id>-h1..N           one minidock daemon each (a tests.sandbox.Sandbox),
                             eth0 192.0.2.1… on the underlay: its VXLAN endpoint

Each host registers its namespaces (md-web, ov-256-n1-…) in a directory of its own
(<dir>/netns-hN, MINIDOCK_NETNS_DIR), as separate machines each have their own
/run/netns: one host's clean-up never takes another's, and names may repeat.

Nothing of it reaches the machine's network: every address lives inside
these namespaces, and everything is removed by destroy().
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

from tests.sandbox import Sandbox, sh

UNDERLAY = "192.0.2"
PROGRESS_INTERVAL = "1s"  # etcd's watch progress notifications, which our watch expects


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
class Cluster:
    hosts_n: int = 3
    members_n: int = 3
    daemon_flags: list[str] = field(default_factory=list)
    daemon_env: dict[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: "mdc" + secrets.token_hex(2))
    members: list[Member] = field(default_factory=list)
    hosts: list[Sandbox] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="minidock-cluster-")
        self.lan = f"{self.id}-lan"

    # -- underlay
    def _ns(self, name: str) -> str:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def plug(self, ns: str, ip: str, port: str) -> None:
        """A veth from namespace `ns` (eth0, `ip`) to a port of the underlay switch."""
        sh("ip", "-n", self.lan, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", self.lan, "link", "set", port, "master", "lan", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")

    @property
    def store_url(self) -> str:
        return "etcd://" + ",".join(f"{m.ip}:2379" for m in self.members)

    def start(self) -> Cluster:
        try:
            self._ns(self.lan)
            sh("ip", "-n", self.lan, "link", "add", "lan", "type", "bridge")
            sh("ip", "-n", self.lan, "link", "set", "lan", "up")
            for i in range(1, self.members_n + 1):
                m = Member(f"etcd{i}", self._ns(f"{self.id}-etcd{i}"), f"{UNDERLAY}.{10 + i}",
                           os.path.join(self.dir, f"etcd{i}"))
                self.plug(m.ns, m.ip, f"p-etcd{i}")
                self.members.append(m)
            for m in self.members:
                self.start_member(m, new=True)
            self.wait_healthy()
            for i in range(1, self.hosts_n + 1):
                self.add_host(i)
        except BaseException:
            self.destroy()
            raise
        return self

    def add_host(self, i: int) -> Sandbox:
        netns_dir = os.path.join(self.dir, f"netns-h{i}")
        os.makedirs(netns_dir)
        sb = Sandbox(name=f"{self.id}-h{i}", netns_dir=netns_dir, daemon_flags=[
            "--cluster-store", self.store_url, "--cluster-advertise", f"{UNDERLAY}.{i}",
            "--node-name", self.node_name(i), *self.daemon_flags], daemon_env=dict(self.daemon_env))
        sb.create_host()
        self.namespaces.append(sb.name)
        self.plug(sb.name, f"{UNDERLAY}.{i}", f"p-h{i}")
        sb.start()
        self.hosts.append(sb)
        return sb

    def node_name(self, i: int) -> str:
        return f"n{i}-{self.id[3:]}"  # unique on the machine: overlay namespaces are named after it

    def host_of(self, sb: Sandbox) -> int:
        return self.hosts.index(sb) + 1

    def overlay_namespaces(self) -> list[str]:
        """Every host's overlay namespaces, as host:namespace."""
        return sorted(f"h{i}:{n}" for i, sb in enumerate(self.hosts, 1)
                      if os.path.isdir(sb.netns_dir) for n in os.listdir(sb.netns_dir) if n.startswith("ov-"))

    def clean(self) -> None:
        """Remove every container and user network, on every host (overlays from the first)."""
        live = [sb for sb in self.hosts if sb.proc is not None and sb.proc.poll() is None]
        for sb in live:
            ids = sb.cli("ps", "-aq", check=False).out.split()
            if ids:
                sb.cli("rm", "-f", *ids, check=False)
        for sb in live:
            for name in sb.cli("network", "ls", "--filter", "driver=overlay", "--format", "{{.Name}}",
                               check=False).out.split():
                sb.cli("network", "rm", name, check=False)
            sb.cli("network", "prune", "-f", check=False)

    def residue(self, wait: float = 5.0) -> list[str]:
        """What is left of removed objects: overlay namespaces, etcd keys other than the hosts'."""
        deadline = time.monotonic() + wait
        while True:
            left = [f"namespace {n}" for n in self.overlay_namespaces()]
            if any(m.proc is not None for m in self.members):
                left += [f"etcd key {k}" for k in self.keys()
                         if not k.startswith(("/minidock/nodes/", "/minidock/alive/"))]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.1)

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
        log = open(os.path.join(self.dir, f"{m.name}.log"), "ab")
        m.proc = subprocess.Popen(argv, stdout=log, stderr=log)

    def stop_member(self, m: Member, sig: int = signal.SIGKILL) -> None:
        if m.proc is not None and m.proc.poll() is None:
            m.proc.send_signal(sig)
            m.proc.wait(timeout=10)
        m.proc = None

    def etcdctl(self, *args: str, check: bool = True) -> str:
        live = [m for m in self.members if m.proc is not None]
        m = live[0]
        return sh("nsenter", f"--net=/run/netns/{m.ns}", "etcdctl", "--endpoints",
                  ",".join(x.client_url for x in live), "--command-timeout=3s", *args,
                  check=check, timeout=20).out

    def leader(self) -> Member:
        for m in self.members:
            if m.proc is None:
                continue
            out = sh("nsenter", f"--net=/run/netns/{m.ns}", "etcdctl", "--endpoints", m.client_url,
                     "endpoint", "status", "-w", "fields", check=False, timeout=10).out
            mine = next((ln for ln in out.splitlines() if '"MemberID"' in ln), "")
            lead = next((ln for ln in out.splitlines() if '"Leader"' in ln), "")
            if mine and lead and mine.split(":")[1].strip() == lead.split(":")[1].strip():
                return m
        raise AssertionError("no etcd leader")

    def wait_healthy(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [m for m in self.members if m.proc is not None]
            r = sh("nsenter", f"--net=/run/netns/{live[0].ns}", "etcdctl", "--endpoints",
                   ",".join(m.client_url for m in live), "endpoint", "health", check=False, timeout=10)
            if r.code == 0:
                return
            time.sleep(0.2)
        raise AssertionError("etcd did not become healthy:\n" + self.member_logs())

    def member_logs(self) -> str:
        out = []
        for m in self.members:
            with open(os.path.join(self.dir, f"{m.name}.log"), errors="replace") as f:
                out.append(f"--- {m.name}\n" + f.read()[-2000:])
        return "\n".join(out)

    def keys(self) -> list[str]:
        return self.etcdctl("get", "--prefix", "--keys-only", "/minidock/").split()

    # -- teardown
    def destroy(self) -> None:
        self.clean()
        for sb in self.hosts:
            sb.destroy()
            _drop_registry(sb.netns_dir)
        for m in self.members:
            self.stop_member(m)
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def _drop_registry(path: str) -> None:
    """A host's namespace directory: what a dead daemon left registered in it, then the
    bind mount the daemon made of it (as iproute2 does of /run/netns)."""
    if not os.path.isdir(path):
        return
    for name in os.listdir(path):
        sh("umount", os.path.join(path, name), check=False)
        os.unlink(os.path.join(path, name))
    while sh("umount", path, check=False).code == 0:
        pass
