"""Create-time settings minidock keeps as given and shows back as Docker does:
the HostConfig keys it has no field for (checked where Docker checks them,
with Docker's defaults filled in at create as moby's daemon does), the log
driver and its options, and Docker's full HostConfig shape for inspect.

What minidock enforces of them: LogConfig (json-file keeps the log; with
none, `logs` is refused as Docker refuses it, though the file is still written
because minidock's non-Tty attach reads it), GroupAdd, PidMode/UTSMode `host`
(the launcher shares the host's namespace), Init (the launcher stays PID 1 as
docker-init: it forwards signals and reaps), RestartPolicy (lifecycle). Cgroup limits (Memory, MemorySwap, CpuShares,
CpusetCpus, CpuPeriod, DeviceCgroupRules, …), Privileged, CapAdd/CapDrop,
SecurityOpt, Sysctls, Runtime and Isolation are stored and shown, never
applied: minidock makes no cgroups and keeps the root's capabilities.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import InvalidParameter

# the drivers minidock answers for: json-file (and local, the same file here) keep the log
LOG_DRIVERS = ("json-file", "local", "none")
READABLE_LOG_DRIVERS = ("json-file", "local")
DEFAULT_LOG_DRIVER = "json-file"
# moby's daemon/logger/jsonfilelog ValidateLogOpt: anything else is refused
JSON_FILE_OPTS = ("max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag",
                  "mode", "max-buffer-size")
LOG_MODES = ("", "blocking", "non-blocking")
RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")
MIN_MEMORY = 6 * 1024 * 1024  # moby's linuxMinMemory
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

# Docker's HostConfig as inspect shows it for a plain `docker run` (API 1.47)
DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": DEFAULT_LOG_DRIVER, "Config": {}},
    "NetworkMode": "bridge", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "Annotations": None,
    "CapAdd": None, "CapDrop": None, "CgroupnsMode": "private", "Dns": [], "DnsOptions": [], "DnsSearch": [],
    "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0,
    "PidMode": "", "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None,
    "UTSMode": "", "UsernsMode": "", "ShmSize": DEFAULT_SHM_SIZE, "Runtime": "runc", "Isolation": "",
    "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
    "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
    "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "",
    "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0,
    "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": None, "PidsLimit": None, "Ulimits": [],
    "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None,
    "ReadonlyPaths": None,
}


def _typed(hc: dict[str, Any], key: str, kind: type | tuple[type, ...], go: str) -> Any:
    """hc[key] if it has Go's type; Docker's JSON decoding error otherwise."""
    value = hc.get(key)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise InvalidParameter(f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                               f"HostConfig.{key} of type {go}")
    return value


_INTS = ("Memory", "MemorySwap", "MemoryReservation", "ShmSize", "CpuShares", "CpuPeriod", "CpuQuota",
         "NanoCpus", "CpuRealtimePeriod", "CpuRealtimeRuntime", "BlkioWeight", "OomScoreAdj", "PidsLimit")
_STRS = ("PidMode", "UTSMode", "IpcMode", "CgroupnsMode", "Runtime", "Isolation", "CpusetCpus", "CpusetMems",
         "CgroupParent", "UsernsMode", "VolumeDriver")
_LISTS = ("GroupAdd", "CapAdd", "CapDrop", "SecurityOpt", "DeviceCgroupRules", "Devices", "Ulimits", "DnsOptions",
          "DnsSearch", "Binds", "Mounts", "VolumesFrom")
_DICTS = ("LogConfig", "RestartPolicy", "Sysctls", "Tmpfs", "StorageOpt")


def check_types(hc: dict[str, Any]) -> None:
    for key in _INTS:
        _typed(hc, key, int, "int64")
    for key in _STRS:
        _typed(hc, key, str, "string")
    for key in _LISTS:
        _typed(hc, key, list, "[]string")
    for key in _DICTS:
        _typed(hc, key, dict, "map[string]string")
    for key in ("LogConfig", "RestartPolicy"):
        inner = hc.get(key) or {}
        _typed(inner, "Type" if key == "LogConfig" else "Name", str, "string")
        _typed(inner, "Config" if key == "LogConfig" else "MaximumRetryCount",
               dict if key == "LogConfig" else int, "map[string]string" if key == "LogConfig" else "int")


def log_config(hc: dict[str, Any]) -> dict[str, Any]:
    """The LogConfig a create asked for, checked as moby's ValidateLogOpts does."""
    given = hc.get("LogConfig") or {}
    kind = given.get("Type") or DEFAULT_LOG_DRIVER
    opts = {str(k): str(v) for k, v in (given.get("Config") or {}).items()}
    if kind not in LOG_DRIVERS:
        raise InvalidParameter(f"logger: no log driver named '{kind}' is registered")
    if opts.get("mode", "") not in LOG_MODES:
        raise InvalidParameter(f"logger: logging mode not supported: {opts['mode']}")
    if kind == "json-file":
        for key in opts:
            if key not in JSON_FILE_OPTS:
                raise InvalidParameter(f"unknown log opt '{key}' for json-file log driver")
    return {"Type": kind, "Config": opts}


def given_host_config(hc: dict[str, Any], modelled: set[str]) -> dict[str, Any]:
    """The HostConfig keys minidock has no field for, checked, with moby's create-time
    adjustments (adaptContainerSettings): MemorySwap twice Memory, the default ShmSize."""
    # Go decodes JSON keys case-insensitively: docker-py's CPURealtimePeriod is CpuRealtimePeriod
    canonical = {k.lower(): k for k in (*DEFAULTS, "Init", "Sysctls", "StorageOpt", "Tmpfs")}
    hc = {canonical.get(k.lower(), k) if k not in modelled else k: v for k, v in hc.items()}
    check_types(hc)
    given = {k: copy.deepcopy(v) for k, v in hc.items() if k not in modelled and v is not None}
    given["LogConfig"] = log_config(hc)
    memory = int(given.get("Memory") or 0)
    if 0 < memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if memory > 0 and not given.get("MemorySwap"):
        given["MemorySwap"] = memory * 2
    if not given.get("ShmSize"):
        given["ShmSize"] = DEFAULT_SHM_SIZE
    for key, valid in (("PidMode", _namespace_mode), ("UTSMode", _host_or_private),
                       ("IpcMode", _ipc_mode), ("CgroupnsMode", _cgroupns_mode)):
        value = given.get(key) or ""
        if not valid(value):
            raise InvalidParameter(f"invalid {_MODE_NAMES[key]}: {value}")
    check_restart_policy(given.get("RestartPolicy") or {}, bool(hc.get("AutoRemove")))
    if (given.get("Runtime") or "runc") != "runc":
        raise InvalidParameter(f"unknown or invalid runtime name: {given['Runtime']}")
    given["Runtime"] = "runc"  # the name Docker shows; minidock's launcher plays its part
    for group in given.get("GroupAdd") or []:
        if not str(group):
            raise InvalidParameter("invalid group: empty")
    given["GroupAdd"] = [str(g) for g in given["GroupAdd"]] if given.get("GroupAdd") else None
    return given


def check_restart_policy(policy: dict[str, Any], auto_remove: bool = False) -> None:
    """moby's ValidateRestartPolicy (at create and update), and AutoRemove's conflict with a policy."""
    name, retries = policy.get("Name") or "", int(policy.get("MaximumRetryCount") or 0)
    if name not in RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy: unknown policy '{name}'; use one of "
                               "'no', 'always', 'on-failure', or 'unless-stopped'")
    if retries < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    if retries and name != "on-failure":
        raise InvalidParameter("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    if auto_remove and name not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")


def restart_wanted(policy: dict[str, Any], code: int, restarts: int, stopped_by_user: bool) -> bool:
    """Whether an exit with `code` starts the container again (moby's restartmanager)."""
    name = policy.get("Name") or "no"
    if stopped_by_user or name == "no":
        return False
    if name == "on-failure":
        retries = int(policy.get("MaximumRetryCount") or 0)
        return code != 0 and (retries == 0 or restarts < retries)
    return True


def restart_at_start(policy: dict[str, Any], code: int, restarts: int, manually_stopped: bool) -> bool:
    """Whether a daemon start starts a container that is not running (moby's restore): `always`
    even after a stop (Docker's documented exception), `unless-stopped` unless stopped."""
    name = policy.get("Name") or "no"
    if name == "always":
        return True
    if name == "unless-stopped":
        return not manually_stopped
    return restart_wanted(policy, code, restarts, manually_stopped)


_MODE_NAMES = {"PidMode": "PID mode", "UTSMode": "UTS mode", "IpcMode": "IPC mode",
               "CgroupnsMode": "cgroup namespace mode"}


def _namespace_mode(value: str) -> bool:
    return value in ("", "host") or (value.startswith("container:") and len(value) > len("container:"))


def _host_or_private(value: str) -> bool:
    return value in ("", "host")


def _ipc_mode(value: str) -> bool:
    return value in ("", "host", "private", "shareable", "none") or _namespace_mode(value)


def _cgroupns_mode(value: str) -> bool:
    return value in ("", "host", "private")


def inspect_host_config(shown: dict[str, Any]) -> dict[str, Any]:
    """Docker's whole HostConfig: its defaults, under what the container was given."""
    out = copy.deepcopy(DEFAULTS)
    out.update({k: v for k, v in shown.items() if v is not None or k not in out})
    if not out.get("CgroupnsMode"):
        out["CgroupnsMode"] = "private"
    if not out.get("IpcMode"):
        out["IpcMode"] = "private"
    return out


def readable_logs(hc_given: dict[str, Any]) -> bool:
    return (hc_given.get("LogConfig") or {}).get("Type", DEFAULT_LOG_DRIVER) in READABLE_LOG_DRIVERS
