"""`make demo` / `python -m minidock.demo`: the default-bridge walkthrough and
a published port, replayed on a freshly started daemon inside a sandbox network namespace;
then an overlay across three hosts (minidock.labnet: an underlay switch, a
three-member etcd and three host namespaces, a daemon in each).

Every command is printed as a student would type it, then its real output.
Nothing touches the machine's real network: the daemon's "host" is a
namespace made here, in a private mount namespace, and all of it is removed
at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from .labnet import UNDERLAY, Lab

FLAG = "MINIDOCK_DEMO_SANDBOX"
HOST_NS = "minidock-demo"
SEED_COMPOSE = """\
version: '3'
services:
  server:
    container_name: server_container
    entrypoint: ["nc", "-l", "11111"]
  client:
    container_name: client_container
    depends_on: [server]
    entrypoint: ["nc", "-vz", "server_container", "11111"]
"""
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


class DemoLab(Lab):
    def node_name(self, i: int) -> str:
        return f"node{i}"  # the demo has the machine's (private) namespaces to itself


class Demo:
    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="minidock-demo-")
        self.sock = os.path.join(self.root, "minidock.sock")
        self.env = {**os.environ, "MINIDOCK_HOST": f"unix://{self.sock}"}
        self.daemon: subprocess.Popen[bytes] | None = None

    def say(self, text: str) -> None:
        print(f"\n{BOLD}# {text}{RESET}", flush=True)

    def run(self, shown: str, argv: list[str], host: bool = False, cwd: str | None = None) -> str:
        print(f"{BOLD}$ {shown}{RESET}", flush=True)
        if host:
            argv = ["nsenter", f"--net=/run/netns/{HOST_NS}", *argv]
        p = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=60,
                           stdin=subprocess.DEVNULL, cwd=cwd)
        out = (p.stdout + p.stderr).rstrip()
        if out:
            print(out, flush=True)
        if p.returncode:
            print(f"{DIM}(exit status {p.returncode}){RESET}", flush=True)
        return p.stdout

    def md(self, *args: str, cwd: str | None = None) -> str:
        return self.run("minidock " + " ".join(_quote(a) for a in args),
                        [sys.executable, "-m", "minidock.cli.main", *args], cwd=cwd)

    def on(self, i: int, *args: str) -> str:
        """minidock on host i of the multi-host part."""
        return self.run(f"[node{i}] minidock " + " ".join(_quote(a) for a in args),
                        [sys.executable, "-m", "minidock.cli.main", "-H", f"unix://{self.node_sock(i)}", *args])

    def on_ns(self, i: int, shown: str, ns: str, *argv: str) -> str:
        """A command on host i (its namespace `ns`, or the host's own)."""
        where = os.path.join(self.lab.netns_dir(i), ns) if ns else f"/run/netns/{self.lab.host_ns(i)}"
        return self.run(f"[node{i}] {shown}", ["nsenter", f"--net={where}", *argv])

    def node_sock(self, i: int) -> str:
        return os.path.join(self.root, f"node{i}.sock")

    def host(self, *args: str) -> str:
        return self.run(" ".join(_quote(a) for a in args) + f"   {DIM}# on the host{RESET}", list(args), host=True)

    def start(self) -> None:
        subprocess.run(["ip", "netns", "add", HOST_NS], check=True)
        subprocess.run(["ip", "-n", HOST_NS, "link", "set", "lo", "up"], check=True)
        log = open(os.path.join(self.root, "daemon.log"), "ab")
        self.daemon = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{HOST_NS}", sys.executable, "-m", "minidock.cli.main", "daemon",
             "--root", os.path.join(self.root, "state"), "--socket", self.sock], stdout=log, stderr=log)
        for _ in range(200):
            if os.path.exists(self.sock):
                return
            time.sleep(0.05)
        raise SystemExit("the daemon did not start; see " + os.path.join(self.root, "daemon.log"))

    def stop(self) -> None:
        if self.daemon is not None:
            ids = subprocess.run([sys.executable, "-m", "minidock.cli.main", "ps", "-aq"], env=self.env,
                                 capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run([sys.executable, "-m", "minidock.cli.main", "rm", "-f", *ids], env=self.env,
                               capture_output=True)
            self.daemon.terminate()
            self.daemon.wait(timeout=15)
        subprocess.run(["ip", "netns", "del", HOST_NS], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def start_cluster(self, hosts: int = 3) -> None:
        self.lab = DemoLab()
        self.nodes: list[subprocess.Popen[bytes]] = []
        self.lab.start_store()
        for i in range(1, hosts + 1):
            ns = self.lab.add_host_ns(i)
            log = open(os.path.join(self.root, f"node{i}.log"), "ab")
            self.nodes.append(subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-m", "minidock.cli.main", "daemon",
                 "--root", os.path.join(self.root, f"node{i}"), "--socket", self.node_sock(i),
                 *self.lab.cluster_flags(i)], stdout=log, stderr=log,
                env={**os.environ, "MINIDOCK_NETNS_DIR": self.lab.netns_dir(i)}))
        for i in range(1, hosts + 1):
            for _ in range(200):
                if os.path.exists(self.node_sock(i)):
                    break
                time.sleep(0.05)
            else:
                raise SystemExit(f"node{i}'s daemon did not start; see {self.root}/node{i}.log")

    def stop_cluster(self) -> None:
        for i in range(1, len(getattr(self, "nodes", [])) + 1):
            cli = [sys.executable, "-m", "minidock.cli.main", "-H", f"unix://{self.node_sock(i)}"]
            ids = subprocess.run([*cli, "ps", "-aq"], capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run([*cli, "rm", "-f", *ids], capture_output=True)
        if getattr(self, "nodes", None):
            cli = [sys.executable, "-m", "minidock.cli.main", "-H", f"unix://{self.node_sock(1)}"]
            subprocess.run([*cli, "network", "rm", "multi"], capture_output=True)
        for proc in getattr(self, "nodes", []):
            proc.terminate()
            proc.wait(timeout=15)
        if hasattr(self, "lab"):
            self.lab.remove()

    def multihost(self) -> None:
        self.say("More than one host (the overlay walkthrough): three hosts on one underlay switch\n"
                 f"# ({UNDERLAY}.0/24, all in namespaces), a three-member etcd, a daemon on each host\n"
                 "# started with --cluster-store etcd://… --cluster-advertise <its underlay address>")
        self.start_cluster()
        self.on(1, "node", "ls")
        self.say("An overlay network is made once, in the store, and every host lists it (SCOPE global)")
        self.on(1, "network", "create", "-d", "overlay", "multi")
        time.sleep(0.3)
        self.on(2, "network", "ls")
        vni = self.on(1, "network", "inspect", "-f",
                      '{{index .Options "com.docker.network.driver.overlay.vxlanid_list"}}', "multi").strip()
        self.say("A container on each host; they find each other by name, across hosts")
        for i in (1, 2, 3):
            self.on(i, "run", "-d", "--name", f"web{i}", "--network", "multi", "busybox", "sleep", "600")
        self.on(1, "exec", "web1", "ping", "-c", "2", "web2")
        self.on(3, "exec", "web3", "ping", "-c", "1", "web1")
        self.say(f"On node1 the overlay is a namespace with a bridge and a VXLAN device (VNI {vni}, UDP 4789);\n"
                 "# each remote container is a permanent FDB entry pointing at its host's address")
        ns = f"ov-{vni}-node1"
        self.on_ns(1, f"ip -n {ns} -d link show vxlan{vni}", ns, "ip", "-d", "link", "show", f"vxlan{vni}")
        self.on_ns(1, f"bridge -n {ns} fdb show dev vxlan{vni}", ns, "bridge", "fdb", "show", "dev", f"vxlan{vni}")
        self.on_ns(1, f"ip -n {ns} neigh show", ns, "ip", "neigh", "show")
        self.say("The cluster's state, in etcd: the network, its VNI, name and subnet, every endpoint")
        m = self.lab.members[0]
        self.run("etcdctl get --prefix --keys-only /minidock/",
                 ["nsenter", f"--net=/run/netns/{m.ns}", "etcdctl", "--endpoints", m.client_url, "get", "--prefix",
                  "--keys-only", "/minidock/"])
        self.say("node1 at a glance: its VTEP, the overlay, its local and remote endpoints")
        self.on(1, "topology")

    def walkthrough(self) -> None:
        self.say("A fresh daemon has three networks: bridge, host and none")
        self.md("network", "ls")
        self.say("The default bridge is a real Linux bridge, minidock0 (Docker's docker0)")
        self.md("network", "inspect", "-f", "{{.Name}}: {{json .IPAM.Config}} bridge={{index .Options \"com.docker.network.bridge.name\"}}", "bridge")
        self.host("ip", "-br", "addr", "show", "minidock0")
        self.say("Start two containers with no network option: they join the default bridge")
        self.md("run", "-dit", "--name", "alpine1", "alpine", "ash")
        self.md("run", "-dit", "--name", "alpine2", "alpine", "ash")
        self.md("ps")
        self.md("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}} {{.MacAddress}}\n{{end}}", "bridge")
        self.say("Each container has its own namespace; the host sees one veth per container on the bridge")
        self.host("ip", "netns", "list")
        self.host("bridge", "link")
        self.md("exec", "alpine1", "ip", "addr", "show")
        self.md("exec", "alpine1", "ip", "route")
        self.say("By IP address the containers reach each other...")
        ip2 = self.md("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "alpine2").strip()
        self.md("exec", "alpine1", "ping", "-c", "2", ip2)
        self.say("...but the default bridge has no name discovery")
        self.md("exec", "alpine1", "ping", "-c", "1", "-W", "1", "alpine2")
        self.md("exec", "alpine1", "cat", "/etc/hosts")
        self.say("Traffic leaving the bridge is masqueraded; forwarding goes through our own chains")
        self.host("iptables", "-t", "nat", "-S", "MINIDOCK-POSTROUTING")
        self.host("iptables", "-S", "MINIDOCK-FORWARD")
        self.say("--network none: only a loopback interface")
        self.md("run", "--rm", "--network", "none", "busybox", "ip", "addr")
        self.say("--network host: the container shares the host's interfaces")
        self.md("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
        self.say("The predefined networks cannot be removed")
        self.md("network", "rm", "bridge")
        self.say("Publishing a port (scenario D): -p 8080:80 is a DNAT rule in the kernel, no proxy process")
        self.md("run", "-d", "--name", "web", "-p", "8080:80", "busybox", "nc", "-ll", "-p", "80", "-e",
                "echo", "hello from web")
        self.md("port", "web")
        self.host("nc", "-w", "2", "127.0.0.1", "8080")
        self.host("iptables", "-t", "nat", "-S", "MINIDOCK")
        self.say("A host port can be published once: the second container is refused and nothing is made")
        self.md("run", "-d", "--name", "web2", "-p", "8080:80", "busybox", "true")
        self.md("rm", "-f", "web")
        self.say("A user-defined network (scenario B): its own bridge and subnet, and names (scenario C).\n"
                 "# --explain shows each kernel step as the command that does the same, and why")
        self.md("--explain", "network", "create", "alpine-net")
        self.md("--explain", "run", "-dit", "--name", "alpine3", "--network", "alpine-net", "alpine", "ash")
        self.md("run", "-dit", "--name", "alpine4", "--network", "alpine-net", "alpine", "ash")
        self.md("exec", "alpine3", "ping", "-c", "1", "alpine4")
        self.say("...and it is isolated from the default bridge")
        self.md("exec", "alpine3", "ping", "-c", "1", "-W", "1", ip2)
        self.say("The whole host at a glance")
        self.md("topology")
        self.say("Compose (scenario E): the seed's two-service file; the client finds the server by name")
        project = os.path.join(self.root, "seed")
        os.makedirs(project)
        with open(os.path.join(project, "docker-compose.yml"), "w") as f:
            f.write(SEED_COMPOSE)
        self.run("cat docker-compose.yml", ["cat", "docker-compose.yml"], cwd=project)
        self.md("compose", "up", cwd=project)
        self.md("compose", "down", cwd=project)
        self.say("Clean up: stop and remove the containers; their namespaces and veths go with them")
        self.md("stop", "-t", "1", "alpine1", "alpine2", "alpine3", "alpine4")
        self.md("rm", "alpine1", "alpine2", "alpine3", "alpine4")
        self.md("network", "rm", "alpine-net")
        self.host("bridge", "link")
        self.host("ip", "netns", "list")


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("the demo needs root (it makes namespaces, bridges and firewall rules)")
    if os.environ.get(FLAG) != "1":
        os.environ[FLAG] = "1"
        script = 'mkdir -p /run/netns && mount -t tmpfs -o mode=755 tmpfs /run/netns && exec "$0" -m minidock.demo'
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c", script, sys.executable])
    demo = Demo()
    try:
        demo.start()
        demo.walkthrough()
        demo.multihost()
    finally:
        demo.stop_cluster()
        demo.stop()
    print(f"\n{BOLD}# Done: the sandbox namespace, its bridge, veths and rules are gone.{RESET}")


if __name__ == "__main__":
    main()
