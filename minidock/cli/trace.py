"""`minidock trace SRC DST`: the path of one real probe through the host, as the
kernel's own trace saw it (the daemon sends the probe and collects the trace)."""

from __future__ import annotations

import sys
from typing import Any

import click

from .common import CONTEXT, Ctx, pass_ctx


@click.command(context_settings=CONTEXT)
@click.argument("src")
@click.argument("dst")
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=0, help="Destination port (tcp, udp)")
@click.option("--proto", type=click.Choice(["icmp", "tcp", "udp"]), default=None,
              help="Probe: an ICMP echo, a TCP SYN or a UDP datagram (default: icmp, or tcp with a port)")
@click.option("--timeout", type=click.FloatRange(0.1, 10), default=2.0, show_default=True,
              help="Seconds to wait for an answer")
@click.option("--json", "as_json", is_flag=True, help="The daemon's answer as JSON")
@pass_ctx
def trace(c: Ctx, src: str, dst: str, port: int, proto: str | None, timeout: float, as_json: bool) -> None:
    """Send a probe from SRC to DST and show its path: hooks and interfaces, every
    netfilter rule it met (with the comment naming its network), NAT rewrites, the verdict.

    SRC: a container, `host`, or an outside address (of a namespace wired to the host).
    DST: a container, `host`, an address, or a host port (8080, host:8080, NAME:PORT).
    Exits 1 when the probe got no answer, as ping does."""
    res = c.call("POST", "/minidock/trace", body={"Source": src, "Destination": dst, "Port": port,
                                                  "Proto": proto or "", "Timeout": timeout})
    if as_json:
        import json

        click.echo(json.dumps(res, indent=2))
        return
    click.echo(render(res), nl=False)
    if not res["Probe"]["Reached"]:
        sys.exit(1)  # as ping: the probe got no answer from its destination


def _end(e: dict[str, Any]) -> str:
    where = f" in {e['Namespace']}" if e["Namespace"] else ""
    addr = e["Address"] + (f":{e['Port']}" if e["Port"] else "")
    return f"{e['Name']} ({addr}{where})" if addr and addr != e["Name"] else f"{e['Name']}{where}"


def render(res: dict[str, Any]) -> str:
    """The trace as a student reads it: one block per hook, a line per rule met."""
    out = [f"trace {res['Proto']} {_end(res['Source'])} → {_end(res['Destination'])}",
           f"probe: {res['Probe']['Outcome']}", ""]
    rewrites: dict[int, list[dict[str, Any]]] = {}
    for r in res["Rewrites"]:
        rewrites.setdefault(r["After"], []).append(r)
    seen: tuple[str, str, str, str] | None = None
    for i, step in enumerate(res["Path"]):
        family = "ip" if step["Family"] in ("ip", "inet") else step["Family"]
        if step["Packet"]:
            key = (family, step["Hook"], step["In"], step["Out"])
            if key != seen:
                ifs = " ".join(f"{w} {n}" for w, n in (("in", step["In"]), ("out", step["Out"])) if n)
                out.append(f"{family + ' ' + step['Hook']:<18} {ifs:<40} {step['Packet']}".rstrip())
                seen = key
        if not step["Ours"]:  # our marking rules and watch points: their packet and interfaces are above
            where = f"{step['Family']} {step['Table']} {step['Chain']}"
            what = step["Rule"] if step["Kind"] == "rule" else f"({step['Kind']})"
            verdict = step["Verdict"] + (f" {step['Target']}" if step["Target"] else "")
            note = f"   [{step['Comment']}]" if step["Comment"] else ""
            out.append(f"    {where:<40} {what}  → {verdict}{note}")
        for r in rewrites.get(i, []):
            out.append(f"      ⇒ {r['Kind']}: {r['From']}  becomes  {r['To']}")
    if res["Interfaces"]:
        out += ["", "interfaces: " + " → ".join(res["Interfaces"])]
    out += ["", f"verdict: {res['Verdict']}", ""]
    return "\n".join(out)
