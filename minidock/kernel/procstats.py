"""A container's processes as the kernel counts them, from /proc (minidock
puts containers in no cgroup of their own): CPU time, memory, block I/O,
tasks; and pause/resume by SIGSTOP/SIGCONT to each of them.

A container is the set of processes in the PID namespace of its PID 1
(process.pid_namespace_members): its own, and those `exec` started.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass, field

from . import process

CLK_TCK = os.sysconf("SC_CLK_TCK")
NS = 1_000_000_000


@dataclass
class Sample:
    """One reading of a container's processes, cumulative since they started."""

    user_ns: int = 0  # their own CPU time and that of the children they reaped
    system_ns: int = 0
    tasks: int = 0  # threads, as pids.current counts them
    memory: dict[str, int] = field(default_factory=dict)  # smaps_rollup, bytes: Rss, Pss, Pss_Anon, …
    read_bytes: int = 0  # what reached the block layer (/proc/PID/io)
    write_bytes: int = 0
    reads: int = 0  # read/write system calls
    writes: int = 0


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data[data.rindex(")") + 2:].split()


def sample(pids: list[int]) -> Sample:
    s = Sample()
    for pid in pids:
        try:
            fields = _stat_fields(pid)  # state is fields[0]: utime is stat's 14th field, fields[11]
            utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
            s.user_ns += (utime + cutime) * NS // CLK_TCK
            s.system_ns += (stime + cstime) * NS // CLK_TCK
            s.tasks += int(fields[17])
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    parts = rest.split()
                    if len(parts) == 2 and parts[1] == "kB":
                        s.memory[key] = s.memory.get(key, 0) + int(parts[0]) * 1024
            with open(f"/proc/{pid}/io") as f:
                io = dict(line.split(": ") for line in f.read().splitlines())
            s.read_bytes += int(io.get("read_bytes", 0))
            s.write_bytes += int(io.get("write_bytes", 0))
            s.reads += int(io.get("syscr", 0))
            s.writes += int(io.get("syscw", 0))
        except (OSError, ValueError, IndexError):
            continue  # gone while we read
    return s


def system_cpu_ns() -> int:
    """The first line of /proc/stat, summed: Docker's system_cpu_usage."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * NS // CLK_TCK


def memory_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def online_cpus() -> int:
    return len(os.sched_getaffinity(0))


def _state(pid: int) -> str:
    st = process.stat(pid)
    return st[0] if st else "X"


async def stop_all(pid: int) -> None:
    """SIGSTOP every process of `pid`'s PID namespace, again for any that forked meanwhile,
    until all of them are stopped (T), or dead."""
    for _ in range(200):
        pending = [p for p in process.pid_namespace_members(pid) if _state(p) not in ("T", "t", "Z", "X")]
        if not pending:
            return
        for p in pending:
            process.kill(p, signal.SIGSTOP)
        await asyncio.sleep(0.005)
    raise OSError(f"processes of {pid} did not stop")


def continue_all(pid: int) -> None:
    for p in process.pid_namespace_members(pid):
        process.kill(p, signal.SIGCONT)
