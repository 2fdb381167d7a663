"""The bodies of /info and /version as Docker's: every field Docker's clients
read (docker-py, the docker CLI, moby's Go test harness), filled from the
machine (CPUs, memory, kernel, OS) and from what minidock really does (no
cgroup limits, no swarm, no plugins beyond its built-in drivers)."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from .. import API_VERSION, __version__

MIN_API_VERSION = "1.24"
# what minidock implements of each plugin kind (Docker lists its built-ins the same way)
NETWORK_DRIVERS = ["bridge", "host", "ipvlan", "macvlan", "null", "overlay"]
LOG_DRIVERS = ["json-file", "local", "none"]


def _arch() -> str:
    """Go's GOARCH, as /version's Arch (Docker's /info Architecture is uname's)."""
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _os_release() -> tuple[str, str]:
    """(PRETTY_NAME, VERSION_ID) of the host, as Docker's OperatingSystem and OSVersion."""
    fields: dict[str, str] = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    fields[key] = value.strip('"')
    except OSError:
        pass
    return fields.get("PRETTY_NAME", "Linux"), fields.get("VERSION_ID", "")


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def _sysctl(path: str) -> bool:
    try:
        with open(path) as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def version() -> dict[str, Any]:
    u = os.uname()
    details = {"ApiVersion": API_VERSION, "Arch": _arch(), "BuildTime": "", "Experimental": "false",
               "GitCommit": "", "GoVersion": "", "KernelVersion": u.release, "MinAPIVersion": MIN_API_VERSION,
               "Os": "linux"}
    return {"Platform": {"Name": f"minidock {__version__}"},
            "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
            "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
            "GoVersion": "python" + platform.python_version(), "Os": "linux", "Arch": _arch(),
            "KernelVersion": u.release, "BuildTime": ""}


def info(*, containers: int, running: int, images: int, root: str) -> dict[str, Any]:
    u = os.uname()
    pretty, os_version = _os_release()
    return {
        "ID": "minidock", "Containers": containers, "ContainersRunning": running, "ContainersPaused": 0,
        "ContainersStopped": containers - running, "Images": images, "Driver": "overlay",
        "DriverStatus": [["Backing Filesystem", "overlay"]],
        "Plugins": {"Volume": ["local"], "Network": NETWORK_DRIVERS, "Authorization": None, "Log": LOG_DRIVERS},
        # minidock makes no cgroups: it enforces no limit, and says so
        "MemoryLimit": False, "SwapLimit": False, "KernelMemoryTCP": False, "CpuCfsPeriod": False,
        "CpuCfsQuota": False, "CPUShares": False, "CPUSet": False, "PidsLimit": False, "OomKillDisable": False,
        "IPv4Forwarding": _sysctl("/proc/sys/net/ipv4/ip_forward"),
        "BridgeNfIptables": _sysctl("/proc/sys/net/bridge/bridge-nf-call-iptables"),
        "BridgeNfIp6tables": _sysctl("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
        "Debug": False, "NFd": len(os.listdir("/proc/self/fd")), "NGoroutines": 0,
        "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z",
        "LoggingDriver": "json-file", "CgroupDriver": "none", "CgroupVersion": _cgroup_version(),
        "NEventsListener": 0, "KernelVersion": u.release, "OperatingSystem": pretty, "OSVersion": os_version,
        "OSType": "linux", "Architecture": u.machine, "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": None,
                           "AllowNondistributableArtifactsHostnames": None, "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                           "IndexConfigs": {}, "Mirrors": None},
        "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(), "GenericResources": None, "DockerRootDir": root,
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Name": u.nodename, "Labels": [],
        "ExperimentalBuild": False, "ServerVersion": __version__,
        "Runtimes": {"runc": {"path": "runc"}}, "DefaultRuntime": "runc",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True,  # containers outlive a daemon restart and are adopted
        "Isolation": "", "InitBinary": "", "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""}, "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": [], "CDISpecDirs": [],  # no seccomp, no AppArmor profile
        "Warnings": ["minidock enforces no cgroup limits (memory, CPU, pids): they are kept and shown only"],
    }
