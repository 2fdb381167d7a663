"""The files every container gets its own copy of: /etc/hosts,
/etc/resolv.conf and /etc/hostname. Pure text builders."""

from __future__ import annotations

import ipaddress

HOSTS_HEAD = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def hosts(own: list[tuple[str, str]], extra: list[tuple[str, str]]) -> str:
    """Docker's layout: localhost lines, --add-host/--link lines, then the container's own."""
    lines = [f"{ip}\t{names}\n" for names, ip in extra]
    lines += [f"{ip}\t{names}\n" for ip, names in own]
    return HOSTS_HEAD + "".join(lines)


def host_nameservers(resolv_conf_text: str) -> list[str]:
    out = []
    for line in resolv_conf_text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            out.append(parts[1])
    return out


def resolv_conf(nameservers: list[str], search: list[str] | None = None, options: list[str] | None = None) -> str:
    """Like Docker, loopback resolvers of the host are useless in a container's
    own namespace, so they are dropped."""
    usable = [ns for ns in nameservers if not ns.startswith("127.") and ns != "::1"]
    text = "".join(f"nameserver {ns}\n" for ns in usable)
    if search:
        text += "search " + " ".join(search) + "\n"
    if options:
        text += "options " + " ".join(options) + "\n"
    return text


def parse_extra_host(spec: str, host_gateway: str | None) -> tuple[str, str]:
    """'name:ip' (Docker also accepts 'name=ip'); 'host-gateway' is the host."""
    sep = "=" if "=" in spec else ":"
    name, _, ip = spec.partition(sep)
    if not name or not ip:
        raise ValueError(f"bad format for add-host: {spec!r}")
    if ip == "host-gateway":
        if not host_gateway:
            raise ValueError("unable to derive the IP value for host-gateway")
        ip = host_gateway
    try:
        ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        raise ValueError(f'invalid IP address in add-host: "{ip}"') from None
    return name, ip
