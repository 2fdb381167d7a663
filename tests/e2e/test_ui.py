"""`minidock ui` in a real browser: Debian's headless Chromium driven by Selenium.

Everything runs inside the sandbox's "host" namespace: the test's own thread
enters it (setns) before it starts the ui and chromedriver, so the ui's port,
chromedriver's and the browser's connections are on that namespace's
loopback, and nothing touches the machine's network. Selenium is pointed at
/usr/bin/chromedriver and /usr/bin/chromium: nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from minidock.client import Client, DaemonError
from minidock.kernel import libc
from tests.sandbox import MINIDOCK, Sandbox

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extras)")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)
                                     and shutil.which("dot")),
                                reason="needs Debian's chromium, chromium-driver and graphviz")
REDRAW = 1.0  # seconds from a change to the page's redraw (the "within a second")


@contextlib.contextmanager
def inside(netns_path: str) -> Iterator[None]:
    """The calling thread in another network namespace, and back; what it starts inherits it."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.setns(target, libc.CLONE_NEWNET)
        try:
            yield
        finally:
            libc.setns(home, libc.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(home)


@contextlib.contextmanager
def ui_server(sb: Sandbox) -> Iterator[str]:
    """`minidock ui --listen 127.0.0.1:0` (in the caller's namespace): the URL it prints."""
    proc = subprocess.Popen([*MINIDOCK, "ui", "--listen", "127.0.0.1:0"], env=sb.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+/\?token=[\w-]+)", line)
        assert found, f"no URL printed: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        yield found.group(1)
    finally:
        proc.kill()  # by its PID
        proc.wait(10)


@contextlib.contextmanager
def chromium(tmp: str) -> Iterator[Any]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1600,1500", f"--user-data-dir={tmp}/profile"):
        opts.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, log_output=os.path.join(tmp, "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    try:
        yield driver
    finally:
        driver.quit()  # the browser, then chromedriver, each by the PID it was started with


def wait_for(driver: Any, what: Callable[[Any], Any], timeout: float = 10, message: str = "") -> Any:
    # a redraw replaces the picture's elements: one found just before is then stale, so look again
    return WebDriverWait(driver, timeout, poll_frequency=0.05,
                         ignored_exceptions=(StaleElementReferenceException,)).until(what, message)


def redrawn_after(driver: Any, since: float) -> float:
    """Seconds from `since` (the command that changed the host returned) to the page's redraw,
    by the page's own clock (the same machine's): chromedriver's round trips do not count."""
    drawn = int(driver.find_element(By.ID, "graph").get_attribute("data-drawn-at")) / 1000
    print(f"redrawn {drawn - since:.3f} s after the command returned", file=sys.stderr)
    return drawn - since


def present(element_id: str) -> Callable[[Any], Any]:
    return lambda d: d.find_elements(By.ID, element_id)


def absent(element_id: str) -> Callable[[Any], bool]:
    return lambda d: not d.find_elements(By.ID, element_id)


def kernel_address(sb: Sandbox, name: str, ifname: str = "eth0") -> str:
    """An interface's IPv4 address/prefix inside the container, as the kernel has it."""
    out = sb.in_ns(f"md-{name}", "ip", "-o", "-4", "addr", "show", ifname).out
    return re.search(r"inet (\S+)", out).group(1)  # type: ignore[union-attr]


def host_end(sb: Sandbox, name: str) -> str:
    """The host's end of the container's eth0 veth, found by its peer's ifindex (eth0@ifN)."""
    peer = re.search(r"eth0@if(\d+)", sb.in_ns(f"md-{name}", "ip", "-o", "link", "show", "eth0").out).group(1)  # type: ignore[union-attr]
    return re.search(rf"^{peer}: ([^:@]+)", sb.host("ip", "-o", "link").out, re.M).group(1)  # type: ignore[union-attr]


def tx_packets(sb: Sandbox, name: str) -> int:
    """eth0's transmitted packets inside the container (/proc/net/dev is the reader's namespace's;
    /sys/class/net would be the namespace that mounted /sys)."""
    dev = sb.in_ns(f"md-{name}", "cat", "/proc/net/dev").out
    fields = re.search(r"^\s*eth0:(.*)$", dev, re.M).group(1).split()  # type: ignore[union-attr]
    return int(fields[9])


def shown_counter(driver: Any, iface: str, column: str) -> int:
    cells = driver.find_elements(By.CSS_SELECTOR, f'#counters tr[data-iface="{iface}"] td.{column}')
    return int(cells[0].text) if cells else -1


def http_status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_ui_live_in_a_browser(md: Sandbox, tmp_path: Path) -> None:
    tmp = str(tmp_path)
    md.cli("network", "create", "--subnet", "172.28.0.0/16", "uinet")
    try:
        md.cli("run", "-d", "--name", "web", "--network", "uinet", "-p", "8080:80", "alpine", "sleep", "300")
        md.cli("run", "-d", "--name", "db", "alpine", "sleep", "300")
        with inside(f"/run/netns/{md.name}"), ui_server(md) as url:
            base, token = url.split("?token=")
            # the token guards everything, and nothing on the page changes the host
            assert http_status(base) == 403
            assert http_status(base + "?token=x" + token) == 403
            assert http_status(f"{base}api/topology?token={token}") == 200
            assert http_status(f"{base}api/topology?token={token}", "DELETE") == 405
            with chromium(tmp) as driver:
                driver.get(url)
                # the known setup: both containers, the bridges, the veths, the published port
                wait_for(driver, present("ns:web"), message="web never drawn")
                wait_for(driver, present("ns:db"))
                graph = driver.find_element(By.ID, "graph")
                for name in ("web", "db"):
                    # each box shows the address the kernel gave the container
                    assert kernel_address(md, name) in driver.find_element(By.ID, f"ns:{name}").text
                assert driver.find_elements(By.ID, "br:minidock0") and driver.find_elements(By.ID, "if:web:eth0")
                assert driver.find_elements(By.ID, "port:0.0.0.0:8080/tcp")
                assert "isolated" in graph.text
                # this daemon has GET /events (a daemon without it is polled every 500 ms)
                wait_for(driver, lambda d: d.find_element(By.ID, "status").get_attribute("data-mode") == "events",
                         timeout=5, message="the page never followed the daemon's events")

                # a container started after the page loaded appears, without a reload
                driver.execute_script("window.__loaded_once = 'yes'")
                md.cli("run", "-d", "--name", "late", "alpine", "sleep", "300")
                started = time.time()
                wait_for(driver, present("ns:late"), message="late never drawn")
                assert redrawn_after(driver, started) < REDRAW
                assert driver.execute_script("return window.__loaded_once") == "yes"

                # clicking it shows its address, as the kernel has it inside its namespace
                driver.find_element(By.ID, "ns:late").click()
                address = kernel_address(md, "late")
                wait_for(driver, lambda d: address in d.find_element(By.ID, "details-addresses").text,
                         message="late's address never shown")
                assert "default via " in driver.find_element(By.ID, "details-routes").text
                hosts = md.cli("exec", "late", "cat", "/etc/hosts").out
                last = " ".join(hosts.strip().splitlines()[-1].split())  # the browser shows a tab as a space
                assert last in driver.find_element(By.ID, "details-hosts").text
                # web's firewall rules: its DNAT, named for it, as iptables-save has them
                driver.find_element(By.ID, "ns:web").click()
                web_ip = kernel_address(md, "web").split("/")[0]
                wait_for(driver, lambda d: f"--to-destination {web_ip}:80" in d.find_element(By.ID, "details-firewall").text,
                         message="web's DNAT never shown")
                assert "0.0.0.0:8080 -> 80/tcp" in driver.find_element(By.ID, "details-ports").text

                # the counters move: late sends 3 pings to db; the page shows at least those
                wait_for(driver, lambda d: shown_counter(d, "late:eth0", "tx-packets") >= 0,
                         message="no counters for late's eth0")  # they come every second
                before = shown_counter(driver, "late:eth0", "tx-packets")
                md.cli("exec", "late", "ping", "-c", "3", "-W", "1", kernel_address(md, "db").split("/")[0])
                wait_for(driver, lambda d: shown_counter(d, "late:eth0", "tx-packets") >= before + 3,
                         message="late's tx counter never moved")
                assert shown_counter(driver, "late:eth0", "tx-packets") <= tx_packets(md, "late")
                assert "tx " in driver.find_element(By.ID, "if:late:eth0").text  # drawn on its veth too
                assert shown_counter(driver, "host:minidock0", "tx-packets") >= 0  # and the bridges'

                # a trace: drawn on the picture, or said to be missing on a daemon without one
                form = driver.find_element(By.ID, "trace-form")
                form.find_element(By.NAME, "src").send_keys("late")
                form.find_element(By.NAME, "dst").send_keys("db")
                form.find_element(By.CSS_SELECTOR, "button").click()
                wait_for(driver, lambda d: d.find_elements(By.ID, "trace-unavailable")
                         or d.find_elements(By.ID, "trace-verdict"), timeout=15, message="no trace answer")
                if driver.find_elements(By.ID, "trace-verdict"):
                    # the interfaces the kernel saw the probe cross are marked in the picture
                    marked = {g.get_attribute("id") for g in driver.find_elements(By.CSS_SELECTOR, "#graph g.traced")}
                    assert {"ns:late", "ns:db", "if:late:eth0"} <= marked, marked
                    assert f"in {host_end(md, 'late')}" in driver.find_element(By.ID, "trace-path").text
                else:
                    assert "trace not available" in driver.find_element(By.ID, "trace-unavailable").text

                shot = os.path.join(tmp, "minidock-ui.png")
                assert driver.save_screenshot(shot)
                with open(shot, "rb") as f:
                    png = f.read()
                assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
                print(f"screenshot: {shot}", file=sys.stderr)

                # a stopped container leaves the picture, a new network enters it
                md.cli("stop", "-t", "0", "late")
                started = time.time()
                wait_for(driver, absent("ns:late"), message="late still drawn after stop")
                assert redrawn_after(driver, started) < REDRAW
                md.cli("network", "create", "uinet2")
                started = time.time()
                bridge = "br-" + md.cli("network", "inspect", "-f", "{{.Id}}", "uinet2").out.strip()[:12]
                wait_for(driver, present(f"br:{bridge}"), message="uinet2 never drawn")
                assert redrawn_after(driver, started) < REDRAW
                md.cli("network", "connect", "uinet2", "db")
                started = time.time()
                wait_for(driver, present("if:db:eth1"), message="db's eth1 never drawn")
                assert redrawn_after(driver, started) < REDRAW
                assert kernel_address(md, "db", "eth1") in driver.find_element(By.ID, "ns:db").text
    finally:
        md.cli("rm", "-f", "web", "db", "late", check=False)
        md.cli("network", "rm", "uinet", "uinet2", check=False)


def test_counters_are_the_kernels_and_cost_no_descriptor(md: Sandbox) -> None:
    """GET /minidock/counters, which the page polls every second: each container's numbers are its
    namespace's, and a thousand reads leave the daemon no open socket more."""
    api = Client(f"unix://{md.socket}")
    md.cli("run", "-d", "--name", "c1", "alpine", "sleep", "300")
    md.cli("run", "-d", "--name", "c2", "alpine", "sleep", "300")
    try:
        md.cli("exec", "c1", "ping", "-c", "2", "-W", "1", kernel_address(md, "c2").split("/")[0])
        seen = api.call("GET", "/minidock/counters")
        assert 2 <= seen["Containers"]["c1"]["eth0"]["tx_packets"] <= tx_packets(md, "c1")
        veth = host_end(md, "c1")
        # the host's end of the pair counts the other way round
        assert seen["Host"][veth]["rx_packets"] >= 2 and "minidock0" in seen["Host"]
        assert md.proc is not None
        fds = len(os.listdir(f"/proc/{md.proc.pid}/fd"))
        for _ in range(200):
            api.call("GET", "/minidock/counters")
        assert len(os.listdir(f"/proc/{md.proc.pid}/fd")) <= fds + 2
        d = api.call("GET", "/minidock/containers/c1/details")
        assert any(kernel_address(md, "c1") in a for a in d["Addresses"])
        with pytest.raises(DaemonError, match="No such container: nosuch") as e:
            api.call("GET", "/minidock/containers/nosuch/details")
        assert e.value.status == 404
    finally:
        md.cli("rm", "-f", "c1", "c2", check=False)


def test_an_overlay_drawn_with_its_vxlan_counters() -> None:
    """On a host of a cluster: the overlay's namespace is drawn (the page finds it as ov:NAMESPACE)
    and its VXLAN device's counters move with a ping to a container on the other host."""
    import asyncio
    import html

    from minidock.ui.server import render_svg
    from tests.cluster import Cluster

    cl = Cluster(hosts_n=2)
    cl.start()
    try:
        h1, h2 = cl.hosts
        h1.cli("network", "create", "-d", "overlay", "--subnet", "10.77.0.0/24", "uiov")
        deadline = time.monotonic() + 5
        while not h2.cli("network", "ls", "-q", "--filter", "name=uiov").out.strip():
            assert time.monotonic() < deadline, "uiov never reached host 2"
            time.sleep(0.05)
        h1.cli("run", "-d", "--name", "o1", "--network", "uiov", "alpine", "sleep", "300")
        h2.cli("run", "-d", "--name", "o2", "--network", "uiov", "alpine", "sleep", "300")
        ip2 = h2.inspect("o2", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
        api = Client(f"unix://{h1.socket}")
        topo = api.call("GET", "/minidock/topology")
        (ov,) = topo["cluster"]["overlays"]
        deadline = time.monotonic() + 10  # until host 1 has learnt o2 from the store
        while h1.cli("exec", "o1", "ping", "-c", "1", "-W", "1", ip2, check=False).code != 0:
            assert time.monotonic() < deadline, "o2 never answered across the overlay"
        h1.cli("exec", "o1", "ping", "-c", "3", "-W", "1", ip2)
        seen = api.call("GET", "/minidock/counters")["Namespaces"][ov["namespace"]][ov["vxlan"]]
        dev = h1.in_ns(ov["namespace"], "cat", "/proc/net/dev").out
        fields = re.search(rf"^\s*{ov['vxlan']}:(.*)$", dev, re.M).group(1).split()  # type: ignore[union-attr]
        assert 4 <= seen["tx_packets"] <= int(fields[9])
        svg = html.unescape(asyncio.run(render_svg(topo)))  # Graphviz writes "-" as &#45;
        assert f'id="ov:{ov["namespace"]}"' in svg and 'id="if:o1:eth0"' in svg
    finally:
        cl.destroy()
    assert not cl.overlay_namespaces()
