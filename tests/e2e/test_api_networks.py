"""The network API as Docker answers it, driven by Docker's own clients (the `docker`
CLI and docker-py): list filters, predefined names, EndpointSettings (MacAddress,
LinkLocalIPs, Links, DriverOpts) proved on the wire, and the answers of a host in
no swarm."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.clients import docker, needs_cli
from tests.sandbox import Sandbox

docker_py = pytest.importorskip("docker", reason="docker-py is not installed (pip install 'docker>=7')")
NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
                 "to connect this node to swarm and try again.")



@pytest.fixture
def api(md: Sandbox, net_cleanup: None) -> Iterator[Any]:
    """docker-py's low-level client on the sandboxed daemon; afterwards (net_cleanup) no
    container, no user network and no bridge of one is left."""
    c = docker_py.APIClient(base_url=f"unix://{md.socket}", version="auto")
    yield c
    c.close()


def neighbour_mac(md: Sandbox, ref: str, ip: str) -> str:
    """The MAC container `ref`'s ARP cache holds for `ip` (after a packet went there)."""
    out = docker(md, "exec", ref, "ip", "neigh", "show", ip).out
    found = re.search(r"lladdr ([0-9a-f:]{17})", out)
    assert found, out
    return found.group(1)


def test_mac_address_given_at_connect_is_the_interface_s_and_a_neighbour_learns_it(md: Sandbox, api: Any) -> None:
    api.create_network("macnet")
    docker(md, "run", "-d", "--name", "peer", "--network", "macnet", "busybox", "sleep", "300")
    live = api.create_container("busybox", "sleep 300", name="live")
    api.start(live)
    api.connect_container_to_network(live, "macnet", mac_address="02:42:ac:11:00:99")  # running: a new eth1
    later = api.create_container("busybox", "sleep 300", name="later")
    api.connect_container_to_network(later, "macnet", mac_address="02:42:ac:11:00:9a")  # created: at its start
    assert api.inspect_container(later)["NetworkSettings"]["Networks"]["macnet"]["MacAddress"] == "02:42:ac:11:00:9a"
    api.start(later)
    for ref, ifname, mac in (("live", "eth1", "02:42:ac:11:00:99"), ("later", "eth1", "02:42:ac:11:00:9a")):
        assert f"link/ether {mac}" in docker(md, "exec", ref, "ip", "link", "show", ifname).out
        settings = api.inspect_container(ref)["NetworkSettings"]["Networks"]["macnet"]
        assert settings["MacAddress"] == mac
        ip = settings["IPAddress"]
        assert docker(md, "exec", "peer", "ping", "-c", "1", "-W", "2", ip).code == 0
        assert neighbour_mac(md, "peer", ip) == mac  # the address a real ARP reply carried


def test_container_wide_mac_address_moves_to_the_endpoint_as_docker_does(md: Sandbox, api: Any) -> None:
    """docker-py's test_create_with_mac_address: the deprecated Config.MacAddress, with Docker's
    warning, is the default bridge endpoint's MAC; a neighbour's ARP cache learns it."""
    made = api.create_container("busybox", ["sleep", "60"], mac_address="02:42:ac:11:00:0a", name="oldmac")
    assert made["Warnings"] == ["The container-wide MacAddress field is now deprecated. "
                                "It should be specified in EndpointsConfig instead."]
    api.start(made)
    settings = api.inspect_container(made)["NetworkSettings"]
    assert settings["MacAddress"] == "02:42:ac:11:00:0a" == settings["Networks"]["bridge"]["MacAddress"]
    docker(md, "run", "-d", "--name", "arper", "busybox", "sleep", "60")
    assert docker(md, "exec", "arper", "ping", "-c", "1", "-W", "2", settings["IPAddress"]).code == 0
    assert neighbour_mac(md, "arper", settings["IPAddress"]) == "02:42:ac:11:00:0a"


@needs_cli
def test_mac_address_of_docker_run_is_the_interface_s(md: Sandbox, api: Any) -> None:
    docker(md, "network", "create", "runmac")
    out = docker(md, "run", "--rm", "--network", "runmac", "--mac-address", "02:42:0a:00:00:42", "busybox",
                 "ip", "link", "show", "eth0").out
    assert "link/ether 02:42:0a:00:00:42" in out
    r = docker(md, "run", "--rm", "--network", "runmac", "--mac-address", "03:42:0a:00:00:42", "busybox", "true",
               check=False)
    assert r.code != 0 and "invalid MAC address 03:42:0a:00:00:42" in r.err


@needs_cli
def test_link_local_ip_answers_a_ping_from_a_neighbour_on_the_bridge(md: Sandbox, api: Any) -> None:
    docker(md, "network", "create", "llnet")
    docker(md, "run", "-d", "--name", "ll1", "--network", "llnet", "--link-local-ip", "169.254.8.8",
           "--link-local-ip", "fe80::88", "busybox", "sleep", "300")
    docker(md, "run", "-d", "--name", "ll2", "--network", "llnet", "busybox", "sleep", "300")
    docker(md, "network", "disconnect", "llnet", "ll2")
    docker(md, "network", "connect", "--link-local-ip", "169.254.8.9", "--link-local-ip", "fe80::89", "llnet",
           "ll2")  # at connect, live
    assert "inet 169.254.8.8/16" in docker(md, "exec", "ll1", "ip", "addr", "show", "eth0").out
    assert docker(md, "exec", "ll2", "ping", "-c", "1", "-W", "2", "169.254.8.8").code == 0
    mac1 = docker(md, "inspect", "-f", "{{.NetworkSettings.Networks.llnet.MacAddress}}", "ll1").out.strip()
    assert neighbour_mac(md, "ll2", "169.254.8.8") == mac1  # ll1 answered, on the bridge
    assert docker(md, "exec", "ll1", "ping", "-c", "1", "-W", "2", "169.254.8.9").code == 0
    assert "inet6 fe80::88/64" in docker(md, "exec", "ll1", "ip", "addr", "show", "eth0").out
    assert docker(md, "exec", "ll2", "ping", "-6", "-c", "1", "-W", "2", "-I", "eth0", "fe80::88").code == 0
    cfg = api.inspect_container("ll2")["NetworkSettings"]["Networks"]["llnet"]["IPAMConfig"]
    assert cfg["LinkLocalIPs"] == ["169.254.8.9", "fe80::89"]
    docker(md, "run", "-d", "--name", "ll3", "busybox", "sleep", "300")
    md.cli("network", "connect", "--link-local-ip", "169.254.8.10", "llnet", "ll3")  # minidock's own CLI
    assert docker(md, "exec", "ll1", "ping", "-c", "1", "-W", "2", "169.254.8.10").code == 0
    r = docker(md, "network", "connect", "--link-local-ip", "nope", "bridge", "ll1", check=False)
    assert r.code != 0 and "invalid link-local IP address: nope" in r.err


def test_links_and_driver_opts_of_an_endpoint_resolve_for_that_container_only(md: Sandbox, api: Any) -> None:
    """docker-py's test_create_with_links and test_create_with_driveropt, and what Docker's
    resolver does with the link: `bar` is the upstream container, for the linking one only."""
    api.create_network("linknet")
    linker = api.create_container("busybox", "sleep 300", name="linker", host_config=api.create_host_config(
        network_mode="linknet"), networking_config=api.create_networking_config({"linknet": api.create_endpoint_config(
            links=[("upstream", "bar")], driver_opt={"com.docker-py.setting": "on"})}))
    api.start(linker)
    settings = api.inspect_container(linker)["NetworkSettings"]["Networks"]["linknet"]
    assert settings["Links"] == ["upstream:bar"] and settings["DriverOpts"] == {"com.docker-py.setting": "on"}
    r = docker(md, "exec", "linker", "nslookup", "bar", check=False)
    assert r.code != 0  # no upstream yet: the name is unknown
    docker(md, "run", "-d", "--name", "upstream", "--network", "linknet", "busybox", "sleep", "300")
    docker(md, "run", "-d", "--name", "bystander", "--network", "linknet", "busybox", "sleep", "300")
    upstream_ip = api.inspect_container("upstream")["NetworkSettings"]["Networks"]["linknet"]["IPAddress"]
    answer = docker(md, "exec", "linker", "nslookup", "bar").out
    assert f"Address: {upstream_ip}" in answer.split("Name:", 1)[1]
    assert docker(md, "exec", "linker", "ping", "-c", "1", "-W", "2", "bar").code == 0
    assert docker(md, "exec", "bystander", "nslookup", "bar", check=False).code != 0


@needs_cli
def test_network_ls_filters_as_docker(md: Sandbox, api: Any) -> None:
    front = docker(md, "network", "create", "--label", "tier=web", "filt-front").out.strip()
    docker(md, "network", "create", "--label", "tier=db", "filt-back")
    docker(md, "network", "create", "other")
    docker(md, "run", "-d", "--name", "user", "--network", "filt-back", "busybox", "sleep", "300")

    def names(*filters: str) -> list[str]:
        args = [a for f in filters for a in ("--filter", f)]
        return sorted(docker(md, "network", "ls", *args, "--format", "{{.Name}}").out.split())
    assert names("name=filt") == ["filt-back", "filt-front"]
    assert names("name=^filt-f") == ["filt-front"]  # a regular expression, as moby's
    assert names(f"id={front[:10]}") == ["filt-front"]
    assert names("label=tier") == ["filt-back", "filt-front"]
    assert names("label=tier=db") == ["filt-back"]
    assert names("type=builtin") == ["bridge", "host", "none"]
    assert names("type=custom") == ["filt-back", "filt-front", "other"]
    assert names("driver=null") == ["none"]
    assert names("dangling=true") == ["filt-front", "other"]  # filt-back has a container's endpoint
    assert names("scope=local", "name=other") == ["other"]
    assert md.cli("network", "ls", "--filter", "name=^filt-f", "--format", "{{.Name}}").out.split() == \
        ["filt-front"]  # minidock's own CLI: the daemon filters for it too
    r = docker(md, "network", "ls", "--filter", "colour=red", check=False)
    assert r.code != 0 and "invalid filter 'colour'" in r.err
    # docker-py's names=/ids= and a trailing slash, as its tests send them
    assert [n["Name"] for n in api.networks(names=["other"])] == ["other"]
    # a list shows no containers (Docker's since API 1.28); the inspect does
    assert api.networks(names=["filt-back"])[0]["Containers"] == {}
    user_id = api.inspect_container("user")["Id"]
    assert list(api.inspect_network("filt-back")["Containers"]) == [user_id]
    assert [n["Id"] for n in api.networks(ids=[front[:8]])] == [front]
    assert sorted(n["Name"] for n in api._result(api._get(api._url("/networks/")), True)) == \
        ["bridge", "filt-back", "filt-front", "host", "none", "other"]
    # prune's own filters: until (all were made just now) and labels
    assert "filt" not in docker(md, "network", "prune", "-f", "--filter", "until=1h").out
    assert "Deleted Networks:\nfilt-front" in docker(md, "network", "prune", "-f", "--filter", "label=tier=web").out
    assert names("name=filt") == ["filt-back"]  # in use: kept
    assert md.cli("network", "prune", "-f", "--filter", "label!=tier").out.split()[-1] == "other"  # minidock's CLI
    assert f"br-{front[:12]}" not in md.host("ip", "-o", "link").out  # its bridge went with it


@needs_cli
def test_predefined_names_are_forbidden_and_change_nothing(md: Sandbox, api: Any) -> None:
    links_before = md.host("ip", "-o", "link").out.count("\n")
    for name in ("bridge", "host", "none"):
        r = docker(md, "network", "create", name, check=False)
        assert r.code != 0 and f"operation is not permitted on predefined {name} network" in r.err, r
        with pytest.raises(docker_py.errors.APIError) as exc:
            api.create_network(name)
        assert exc.value.status_code == 403
        r = docker(md, "network", "rm", name, check=False)
        assert r.code != 0 and f"{name} is a pre-defined network and cannot be removed" in r.err
    with pytest.raises(docker_py.errors.APIError) as exc:
        api.create_network("hostish", driver="host")
    assert exc.value.status_code == 403 and 'only one instance of "host" network is allowed' in str(exc.value)
    api.create_network("twice")
    with pytest.raises(docker_py.errors.APIError) as exc:
        api.create_network("twice", check_duplicate=True)
    assert exc.value.status_code == 409 and "network with name twice already exists" in str(exc.value)
    r = api._post_json(api._url("/networks/create"), data={"Name": "badlabels", "Labels": ["a=b"]})
    assert r.status_code == 400 and "cannot unmarshal array" in r.json()["message"]
    assert md.host("ip", "-o", "link").out.count("\n") == links_before + 1  # twice's bridge, nothing else
    # a space in a name, as docker-py's test_create_remove_network_with_space_in_name
    api.create_network("test 01")
    assert api.inspect_network("test 01")["Name"] == "test 01"
    api.remove_network("test 01")
    with pytest.raises(docker_py.errors.NotFound):
        api.inspect_network("twice", scope="global")
    assert api.inspect_network("twice", scope="local")["Scope"] == "local"


@needs_cli
def test_a_host_in_no_swarm_answers_as_docker(md: Sandbox, api: Any) -> None:
    for args in (("node", "ls"), ("service", "ls"), ("secret", "ls"), ("config", "ls")):
        r = docker(md, *args, check=False)
        assert r.code != 0 and r.err.strip() == f"Error response from daemon: {NOT_A_MANAGER}", (args, r)
    r = docker(md, "swarm", "leave", "--force", check=False)
    assert r.code != 0 and r.err.strip() == "Error response from daemon: This node is not part of a swarm"
    assert api.leave_swarm(force=True) is True  # docker-py takes 503 for "no swarm" and goes on
    with pytest.raises(docker_py.errors.APIError) as exc:
        api.inspect_swarm()
    assert exc.value.status_code == 503
    with pytest.raises(docker_py.errors.APIError) as exc:
        api.init_swarm("127.0.0.1")
    assert exc.value.status_code == 503 and "no swarm mode" in str(exc.value)
    # the daemon serves on, and a network made after it all works
    docker(md, "network", "create", "after-swarm")
    docker(md, "run", "-d", "--name", "s1", "--network", "after-swarm", "busybox", "sleep", "300")
    assert docker(md, "run", "--rm", "--network", "after-swarm", "busybox", "ping", "-c", "1", "-W", "2",
                  "s1").code == 0
