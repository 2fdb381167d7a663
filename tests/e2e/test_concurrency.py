"""Many clients at once: 50 simultaneous runs on one network, and connect,
disconnect and rm racing on one container, end consistent."""

from __future__ import annotations

import random
import re
from concurrent.futures import ThreadPoolExecutor

from tests.sandbox import Result, Sandbox


def test_fifty_simultaneous_runs_get_fifty_distinct_addresses(fresh: Sandbox) -> None:
    sb = fresh
    sb.cli("network", "create", "crowd")
    names = [f"c{i:02d}" for i in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda n: sb.cli("run", "-d", "--name", n, "--network", "crowd", "busybox",
                                                 "sleep", "600", check=False, timeout=120), names))
    failed = [r for r in results if r.code != 0]
    assert not failed, failed[:3]
    ips = [sb.inspect(n, '{{(index .NetworkSettings.Networks "crowd").IPAddress}}') for n in names]
    assert len(set(ips)) == 50 and all(ips), ips
    assert sb.inconsistencies() == []
    a, b = random.Random(1).sample(names, 2)
    assert sb.cli("exec", a, "ping", "-c", "1", "-W", "2", b).code == 0


def test_connect_disconnect_rm_racing_on_one_container(fresh: Sandbox) -> None:
    sb = fresh
    for net in ("n1", "n2", "n3"):
        sb.cli("network", "create", net)
    rng = random.Random(3)
    for round_ in range(4):
        name = f"x{round_}"
        sb.cli("run", "-d", "--name", name, "--network", "n1", "busybox", "sleep", "600")
        ops = [["network", "connect", "n2", name], ["network", "connect", "n3", name],
               ["network", "disconnect", "n1", name], ["network", "disconnect", "n2", name],
               ["network", "connect", "n2", name]]
        if round_ % 2:
            ops.append(["rm", "-f", name])
        rng.shuffle(ops)
        with ThreadPoolExecutor(max_workers=len(ops)) as pool:
            results: list[Result] = list(pool.map(lambda a: sb.cli(*a, check=False, timeout=60), ops))
        for r in results:  # each either succeeded or was refused in one clear line
            assert r.code == 0 or (len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err), r
        assert sb.inconsistencies() == [], (round_, results)
        if name in sb.cli("ps", "--format", "{{.Names}}").out.split():
            nets = sb.inspect(name, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}").split()
            have = len(re.findall(r"^\d+: eth\d+@", sb.host("ip", "netns", "exec", f"md-{name}", "ip", "-o",
                                                             "link").out, re.M))
            assert have == len(nets), (nets, have)
