"""A minidock daemon in a sandbox "host" namespace, driven through the CLI.

    machine's network (never touched)
    └── /run/netns/<host>      the daemon's "host": minidock0, veths, iptables
        ├── md-<container>     one per container
        └── <outside>          optional: an "outside world" linked to the host
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MINIDOCK = [sys.executable, "-m", "minidock.cli.main"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\nstdout: {self.out}\nstderr: {self.err}"


def sh(*argv: str, check: bool = True, timeout: float = 30, input: str | None = None) -> Result:
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input)
    r = Result(p.returncode, p.stdout, p.stderr)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {r}")
    return r


def wait_for(cond: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `cond` (every 50 ms) until it is true; fail after `timeout` seconds, saying `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _links(text: str) -> str:
    """Each link's name, MTU, master and alias: what we make, not its carrier state."""
    out = []
    for line in text.splitlines():
        name = line.split(":")[1].strip()
        mtu = re.search(r" mtu (\d+)", line)
        master = re.search(r" master (\S+)", line)
        alias = re.search(r" alias (.*?)(?:\\|$)", line)
        out.append(f"{name} mtu={mtu and mtu.group(1)} master={master and master.group(1)} "
                   f"alias={alias and alias.group(1)}")
    return "\n".join(sorted(out))


@dataclass
class Sandbox:
    """One daemon, its host namespace, its state directory."""

    name: str = field(default_factory=lambda: "mdtest-" + secrets.token_hex(3))
    dns_upstream: list[str] = field(default_factory=list)
    root: str = ""
    proc: subprocess.Popen[bytes] | None = None
    extra_ns: list[str] = field(default_factory=list)
    global_flags: list[str] = field(default_factory=list)  # before `daemon`, e.g. --explain
    daemon_env: dict[str, str] = field(default_factory=dict)  # e.g. MINIDOCK_FAULT for one start
    daemon_flags: list[str] = field(default_factory=list)  # after `daemon`, e.g. --port-maps
    # where the daemon registers its namespaces; a lab cluster gives each host one of its own
    netns_dir: str = "/run/netns"
    base: str | None = None  # where its directory is made (tempfile's default: /tmp)

    def __post_init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="minidock-test-", dir=self.base)
        self.socket = os.path.join(self.root, "minidock.sock")
        self.env = {**os.environ, "MINIDOCK_HOST": f"unix://{self.socket}"}

    # -- life cycle
    def create_host(self) -> None:
        sh("ip", "netns", "add", self.name)
        sh("ip", "-n", self.name, "link", "set", "lo", "up")

    def start(self) -> None:
        if self.proc is not None:
            # a daemon that is ending by itself (`system reset`): its socket must not be taken for
            # the new one's, nor its last unlink take the new one's away
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        made_host = not os.path.exists(f"/run/netns/{self.name}")
        if made_host:
            self.create_host()
        argv = ["nsenter", f"--net=/run/netns/{self.name}", *MINIDOCK, *self.global_flags, "daemon",
                "--root", os.path.join(self.root, "state"), "--socket", self.socket, *self.daemon_flags]
        for up in self.dns_upstream:
            argv += ["--dns-upstream", up]
        self.log = open(os.path.join(self.root, "daemon.log"), "ab")
        self.out = open(os.path.join(self.root, "daemon.out"), "ab")
        env = {**os.environ, **self.daemon_env, "MINIDOCK_NETNS_DIR": self.netns_dir}
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=self.log, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(self.socket) and self.cli("version", check=False).code == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        message = f"daemon did not start:\n{self.daemon_log()}"
        if made_host:  # a first start that failed: the fixture never gets to destroy() what it made
            self.stop()
            sh("ip", "netns", "del", self.name, check=False)
        raise AssertionError(message)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def daemon_stdout(self) -> str:
        with open(os.path.join(self.root, "daemon.out")) as f:
            return f.read()

    def daemon_log(self, full: bool = False) -> str:
        try:
            with open(os.path.join(self.root, "daemon.log")) as f:
                text = f.read()
                return text if full else text[-5000:]
        except OSError:
            return ""

    def destroy(self) -> None:
        """Remove every container (through minidock), stop, delete namespaces."""
        if self.proc is not None and self.proc.poll() is None:
            ids = self.cli("ps", "-aq", check=False).out.split()
            if ids:
                self.cli("rm", "-f", *ids, check=False)
        self.stop()
        left = self.stop_keeper()
        for ns in self.extra_ns:
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "del", self.name, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        assert not left, f"the keeper still ran with no container and no daemon: {left}"

    def stop_keeper(self) -> str:
        """The keeper ends by itself once it keeps nothing and no daemon is connected; if it
        still runs (containers left, or a bug), its processes are killed, by PID. What ran."""
        path = os.path.join(self.root, "state", "keeper.pid")
        try:
            with open(path) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return ""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.02)
        if not _alive(pid):
            return ""
        kids = sh("ps", "-o", "pid=", "--ppid", str(pid), check=False).out.split()
        for p in [pid, *map(int, kids)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        return f"keeper {pid} with {len(kids)} processes"

    # -- driving it
    def cli(self, *args: str, check: bool = True, timeout: float = 60, input: str | None = None) -> Result:
        p = subprocess.run([*MINIDOCK, *args], capture_output=True, text=True, env=self.env,
                           timeout=timeout, input=input)
        r = Result(p.returncode, p.stdout, p.stderr)
        if check and p.returncode != 0:
            raise AssertionError(f"minidock {' '.join(args)} failed: {r}\n--- daemon log ---\n{self.daemon_log()}")
        return r

    def host(self, *argv: str, check: bool = True, timeout: float = 30) -> Result:
        """A command in the daemon's host namespace."""
        return sh("nsenter", f"--net=/run/netns/{self.name}", *argv, check=check, timeout=timeout)

    def in_ns(self, ns: str, *argv: str, check: bool = True, timeout: float = 30) -> Result:
        """A command in namespace `ns`: one the daemon made (md-web) or one the test made."""
        where = os.path.join(self.netns_dir, ns)
        if not os.path.exists(where):
            where = f"/run/netns/{ns}"
        return sh("nsenter", f"--net={where}", *argv, check=check, timeout=timeout)

    def inspect(self, ref: str, template: str) -> str:
        return self.cli("inspect", "-f", template, ref).out.strip()

    def ip_of(self, ref: str) -> str:
        return self.inspect(ref, "{{.NetworkSettings.IPAddress}}")

    def add_outside(self, host_ip: str = "198.51.100.1", outside_ip: str = "198.51.100.2") -> str:
        """An 'outside world' namespace wired to the host by a veth pair."""
        ns = self.name + "-out"
        sh("ip", "netns", "add", ns)
        self.extra_ns.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.name, "link", "add", "uplink", "type", "veth", "peer", "name", "wan0", "netns", ns)
        sh("ip", "-n", self.name, "addr", "add", f"{host_ip}/24", "dev", "uplink")
        sh("ip", "-n", self.name, "link", "set", "uplink", "up")
        sh("ip", "-n", ns, "addr", "add", f"{outside_ip}/24", "dev", "wan0")
        sh("ip", "-n", ns, "link", "set", "wan0", "up")
        return ns

    def snapshot(self) -> dict[str, str]:
        """The kernel and the store as a user sees them, for before/after comparisons."""
        rules = "\n".join(ln for ln in self.host("iptables-save").out.splitlines() if not ln.startswith("#"))
        return {
            "links": _links(self.host("ip", "-o", "-d", "link").out),
            "addresses": self.host("ip", "-4", "-o", "addr").out,
            # linkdown follows a bridge's carrier, which the kernel drops some ms after its last port went
            "routes": self.host("ip", "route").out.replace(" linkdown", ""),
            "rules": rules,
            "namespaces": " ".join(sorted(os.listdir(self.netns_dir))),
            "networks": self.cli("network", "ls", "--no-trunc").out,
            "containers": self.cli("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}").out,
        }

    # -- does the store agree with the kernel?
    def inconsistencies(self) -> list[str]:
        """What `ps`/`network ls` say against what `ip` and `iptables-save` show."""
        problems = []
        rows = [ln.split() for ln in self.cli("ps", "-a", "--format", "{{.Names}} {{.State}}").out.splitlines()]
        running = {name for name, state in rows if state == "running"}
        stopped = {name for name, state in rows if state != "running"}
        nets = {}
        for name in self.cli("network", "ls", "--format", "{{.Name}}").out.split():
            info = self.cli("network", "inspect", "-f",
                            '{{index .Options "com.docker.network.bridge.name"}}|{{.Driver}}|{{.Id}}', name).out.strip()
            bridge, driver, net_id = info.split("|")
            if driver == "bridge":
                nets[name] = bridge or "br-" + net_id[:12]
        links = self._settled_links(running)
        for line in links.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            alias = re.search(r" alias minidock:(network|container) (\S+)", line)
            if alias and alias.group(1) == "container" and alias.group(2) not in running:
                problems.append(f"veth {name} of {alias.group(2)}, which is not running")
            if alias and alias.group(1) == "network" and alias.group(2) not in nets:
                problems.append(f"bridge {name} of network {alias.group(2)}, which does not exist")
        for net, bridge in nets.items():
            if f": {bridge}:" not in links:
                problems.append(f"network {net} has no bridge {bridge}")
        namespaces = set(os.listdir(self.netns_dir))
        for name in stopped:
            if f"md-{name}" in namespaces:
                problems.append(f"namespace md-{name} of stopped container {name}")
        addresses: dict[str, str] = {}
        for name in running:
            mode = self.inspect(name, "{{.HostConfig.NetworkMode}}")
            if mode in ("host", "none") or mode.startswith("container:"):
                continue
            if f"md-{name}" not in namespaces:
                problems.append(f"running container {name} has no namespace")
                continue
            ifaces = re.findall(r"^\d+: (eth\d+)@", self.in_ns(f"md-{name}", "ip", "-o", "link",
                                                             check=False).out, re.M)
            joined = self.inspect(name, "{{len .NetworkSettings.Networks}}")
            if str(len(ifaces)) != joined:
                problems.append(f"{name} is on {joined} networks but has interfaces {ifaces}")
            for net, ip in re.findall(r"(\S+)=(\S*)", self.inspect(
                    name, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}")):
                have = self.in_ns(f"md-{name}", "ip", "-4", "-o", "addr", check=False).out
                if not ip or f"inet {ip}/" not in have:
                    problems.append(f"{name} should have {ip} on {net}: {have!r}")
                if ip in addresses:
                    problems.append(f"{ip} handed out twice: {addresses[ip]} and {name}")
                addresses[ip] = name
        rules = self.host("iptables-save").out
        for bridge in set(re.findall(r"-o (br-[0-9a-f]{12}|minidock0)\b", rules)):
            if bridge not in nets.values():
                problems.append(f"firewall rule for missing bridge {bridge}")
        return problems

    def _settled_links(self, running: set[str], wait: float = 3.0) -> str:
        """`ip -o -d link`, once the veths of stopped containers are gone: the kernel deletes
        them with their namespace, in the background (cleanup_net), some ms after the stop."""
        deadline = time.monotonic() + wait
        while True:
            links = self.host("ip", "-o", "-d", "link").out
            owners = re.findall(r" alias minidock:container (\S+)", links)
            if all(o in running for o in owners) or time.monotonic() > deadline:
                return links
            time.sleep(0.05)

    # -- what is left behind
    def residue(self) -> list[str]:
        """Kernel objects of containers that no longer exist."""
        left = []
        known = set(self.cli("ps", "-a", "--format", "{{.Names}}", check=False).out.split())
        for ns in os.listdir(self.netns_dir):
            if ns.startswith("md-") and ns[3:] not in known:
                left.append(f"namespace {ns}")
        if not self.cli("ps", "-q", check=False).out.split():
            for line in self._settled_links(running=set()).splitlines():
                name = line.split(":")[1].strip().split("@")[0]
                if name.startswith("veth"):
                    left.append(f"link {name}")
        return left
