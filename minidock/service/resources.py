"""A running container's processes as a whole: pause and unpause, `update`
of its resource settings, and `stats`.

minidock puts containers in no cgroup, so:
  - pause stops every process of the container's PID namespace with SIGSTOP
    (again for any that forked meanwhile, until all are stopped) and unpause
    sends SIGCONT: what the cgroup freezer does, seen as state T in `ps`;
  - `update` stores what it is given (Memory, CpuShares, …, RestartPolicy)
    with the HostConfig settings create keeps (HostConfig.given), and inspect
    shows it; none of the limits is enforced;
  - stats reads /proc: CPU time as utime+stime of each process (with what it
    reaped: cutime+cstime), memory as the sum of their proportional set sizes
    (Pss, so shared pages count once), block I/O from /proc/PID/io, tasks as
    their threads; the network counters are each interface's, read over
    netlink inside the container's namespace (IFLA_STATS64).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from ..errors import Conflict, InvalidParameter, MinidockError
from ..kernel import netns, nsview, process, procstats
from ..model import Container
from .common import ZERO_TIME
from .core import Core
from .settings import check_restart_policy

MIN_MEMORY = 6 * 1024 * 1024
# the Resources keys of Docker's UpdateConfig that a non-zero value (or, for these, any value) sets
SET_IF_GIVEN = ("BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
                "BlkioDeviceWriteIOps", "PidsLimit")
SET_IF_NONZERO = ("BlkioWeight", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems",
                  "Memory", "MemorySwap", "MemoryReservation", "CpuRealtimePeriod", "CpuRealtimeRuntime")


class Resources:
    def __init__(self, core: Core) -> None:
        self.core = core

    # -- pause
    async def pause(self, ref: str) -> None:
        c = self.core.container(ref)
        async with self.core.locks.hold(c.id):
            c = self.core.container(c.id)
            if not c.running:
                raise Conflict(f"container {c.id} is not running")
            if c.state.paused:
                raise Conflict(f"container {c.id} is already paused")
            try:
                await procstats.stop_all(c.state.pid)
            except OSError as e:
                procstats.continue_all(c.state.pid)
                raise MinidockError(f"cannot pause container {c.id}: {e}") from None
            c.state.paused = True
            self.core.store.containers.put(c)
        self.core.events.container(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.core.container(ref)
        async with self.core.locks.hold(c.id):
            c = self.core.container(c.id)
            if not c.state.paused or not c.running:
                raise MinidockError(f"Container {c.id} is not paused")
            procstats.continue_all(c.state.pid)
            c.state.paused = False
            self.core.store.containers.put(c)
        self.core.events.container(c, "unpause")

    # -- update
    async def update(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        """Docker's checks (verifyContainerSettings, UpdateContainer), then the values stored."""
        c = self.core.container(ref)
        async with self.core.locks.hold(c.id):
            c = self.core.container(c.id)
            changes = _checked_update(c, body)
            c.host_config.given.update(changes)
            self.core.store.containers.put(c)
        self.core.events.container(c, "update")
        return {"Warnings": []}

    # -- stats
    async def stats(self, ref: str, stream: bool, one_shot: bool) -> AsyncIterator[dict[str, Any]]:
        """Docker's stats JSON: once (after a second, so that precpu_stats is a second
        before cpu_stats, unless one-shot), or every second while it runs."""
        c = self.core.container(ref)
        prev = _empty(c)
        if not stream and not one_shot and c.running:
            prev = await self._read(c, ZERO_TIME, None)
            await asyncio.sleep(1)
        while True:
            c = self.core.store.containers.get(c.id) or c
            now = await self._read(c, prev["read"], prev)
            yield now
            if not stream or not c.running:
                return
            prev = now
            await asyncio.sleep(1)

    async def _read(self, c: Container, preread: str, prev: dict[str, Any] | None) -> dict[str, Any]:
        out = _empty(c)
        out["preread"] = preread
        if prev is not None:
            out["precpu_stats"] = prev["cpu_stats"]
        if not c.running:
            return out
        pids = process.pid_namespace_members(c.state.pid)
        s = procstats.sample(pids)
        out["read"] = _now()
        out["pids_stats"] = {"current": s.tasks}
        if "PidsLimit" in c.host_config.given and c.host_config.given["PidsLimit"]:
            out["pids_stats"]["limit"] = c.host_config.given["PidsLimit"]
        out["cpu_stats"] = {
            "cpu_usage": {"total_usage": s.user_ns + s.system_ns, "usage_in_kernelmode": s.system_ns,
                          "usage_in_usermode": s.user_ns},
            "system_cpu_usage": procstats.system_cpu_ns(), "online_cpus": procstats.online_cpus(),
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        }
        mem = s.memory
        out["memory_stats"] = {
            "usage": mem.get("Pss", 0),
            "stats": {"anon": mem.get("Pss_Anon", 0), "file": mem.get("Pss_File", 0),
                      "shmem": mem.get("Pss_Shmem", 0), "rss": mem.get("Rss", 0), "inactive_file": 0},
            "limit": procstats.memory_total(),
        }
        dev = _device(self.core.dir(c.id))
        out["blkio_stats"] = {
            "io_service_bytes_recursive": [{**dev, "op": "read", "value": s.read_bytes},
                                           {**dev, "op": "write", "value": s.write_bytes}],
            "io_serviced_recursive": [{**dev, "op": "read", "value": s.reads},
                                      {**dev, "op": "write", "value": s.writes}],
            "io_queue_recursive": None, "io_service_time_recursive": None, "io_wait_time_recursive": None,
            "io_merged_recursive": None, "io_time_recursive": None, "sectors_recursive": None,
        }
        if c.netns and netns.exists(c.netns):
            out["networks"] = await nsview.link_stats(c.netns)
        return out


def _empty(c: Container) -> dict[str, Any]:
    """A stopped container's stats, as Docker answers them: zeroes."""
    zero_cpu = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    return {
        "name": "/" + c.name, "id": c.id, "read": ZERO_TIME, "preread": ZERO_TIME,
        "pids_stats": {}, "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None,
                                          "io_queue_recursive": None, "io_service_time_recursive": None,
                                          "io_wait_time_recursive": None, "io_merged_recursive": None,
                                          "io_time_recursive": None, "sectors_recursive": None},
        "num_procs": 0, "storage_stats": {}, "cpu_stats": zero_cpu, "precpu_stats": zero_cpu,
        "memory_stats": {}, "networks": {},
    }


def _device(path: str) -> dict[str, int]:
    """The block device the container's files are on (its upper directory's)."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return {"major": 0, "minor": 0}
    return {"major": os.major(dev), "minor": os.minor(dev)}


def _now() -> str:
    t = time.time_ns()
    secs, nanos = divmod(t, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


def _checked_update(c: Container, body: dict[str, Any]) -> dict[str, Any]:
    cur = c.host_config.given
    changes: dict[str, Any] = {}
    for key in SET_IF_NONZERO:
        if body.get(key):
            changes[key] = body[key]
    for key in SET_IF_GIVEN:
        if body.get(key) is not None:
            changes[key] = body[key]
    # verifyContainerSettings
    memory, swap = body.get("Memory") or 0, body.get("MemorySwap") or 0
    if memory and memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if memory and swap > 0 and swap < memory:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    if not memory and swap > 0 and not cur.get("Memory"):
        raise InvalidParameter("You should always set the Memory limit when using Memoryswap limit, see usage")
    reservation = body.get("MemoryReservation") or 0
    if reservation and reservation < MIN_MEMORY:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if (body.get("CpuShares") or 0) < 0:
        raise InvalidParameter(f"invalid CPU shares ({body['CpuShares']}): value must be a positive integer")
    weight = body.get("BlkioWeight") or 0
    if weight and not 10 <= weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    policy = body.get("RestartPolicy") or {}
    name = policy.get("Name") or ""
    retries = policy.get("MaximumRetryCount") or 0
    check_restart_policy(policy)
    # UpdateContainer
    cannot = f"Cannot update container {c.id}: "
    if body.get("NanoCpus") and (cur.get("CpuPeriod") or cur.get("CpuQuota")):
        which = "CPU Period" if cur.get("CpuPeriod") else "CPU Quota"
        raise Conflict(cannot + f"Conflicting options: Nano CPUs cannot be updated as {which} has already been set")
    if (body.get("CpuPeriod") or body.get("CpuQuota")) and cur.get("NanoCpus"):
        which = "CPU Period" if body.get("CpuPeriod") else "CPU Quota"
        raise Conflict(cannot + f"Conflicting options: {which} cannot be updated as NanoCPUs has already been set")
    if memory:
        # Docker sets MemorySwap to twice Memory at create when only Memory is given
        cur_swap = cur.get("MemorySwap") or (2 * cur["Memory"] if cur.get("Memory") else 0)
        if memory > cur_swap and not swap and cur_swap != -1:
            raise Conflict(cannot + "Memory limit should be smaller than already set memoryswap limit, "
                           "update the memoryswap at the same time")
        if not swap and not cur.get("MemorySwap") and cur_swap:
            changes["MemorySwap"] = cur_swap
    if name:
        if c.host_config.auto_remove and name != "no":
            raise Conflict(cannot + "Restart policy cannot be updated because AutoRemove is enabled for the container")
        changes["RestartPolicy"] = {"Name": name, "MaximumRetryCount": retries}
    return changes
