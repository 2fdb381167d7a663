"""The tests' lab cluster: minidock.labnet's underlay, etcd and host namespaces,
with a minidock daemon in each host (a tests.sandbox.Sandbox, whose namespace
registry is the host's own directory).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from minidock.labnet import UNDERLAY, Lab, Member
from tests.sandbox import Sandbox

__all__ = ["UNDERLAY", "Cluster", "Member"]


@dataclass
class Cluster(Lab):
    hosts_n: int = 3
    daemon_flags: list[str] = field(default_factory=list)
    daemon_env: dict[str, str] = field(default_factory=dict)
    hosts: list[Sandbox] = field(default_factory=list)

    def start(self) -> Cluster:
        try:
            self.start_store()
            for i in range(1, self.hosts_n + 1):
                self.add_host(i)
        except BaseException:
            self.destroy()
            raise
        return self

    def add_host(self, i: int) -> Sandbox:
        sb = Sandbox(name=self.add_host_ns(i), netns_dir=self.netns_dir(i),
                     daemon_flags=[*self.cluster_flags(i), *self.daemon_flags], daemon_env=dict(self.daemon_env))
        sb.start()
        self.hosts.append(sb)
        return sb

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

    # -- teardown
    def destroy(self) -> None:
        self.clean()
        for sb in self.hosts:
            sb.destroy()
        self.remove()
