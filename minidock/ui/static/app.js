// minidock ui: the page. It draws what the server pushes on /api/stream (server-sent
// events: "status", "topology" with Graphviz's SVG, "counters"), and asks for a container's
// details and for traces. It changes nothing on the host.
"use strict";

const TOKEN = document.body.dataset.token;
const $ = (sel) => document.querySelector(sel);
let topo = null;        // GET /minidock/topology, as last drawn
let counters = null;    // GET /minidock/counters, the last two
let previous = null;
let selected = null;    // the container whose details are shown
let traced = [];        // ids of the picture's elements on the last trace's path

function api(path) {
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function human(n) {
  if (n === undefined || n === null) return "-";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

// -- the stream -------------------------------------------------------------------
function connect() {
  const es = new EventSource(api("api/stream"));
  es.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
  es.addEventListener("topology", (e) => draw(JSON.parse(e.data)));
  es.addEventListener("counters", (e) => showCounters(JSON.parse(e.data)));
  es.onerror = () => setStatus("reconnecting to minidock ui…", "unreachable");  // EventSource retries
}

function setStatus(text, cls) {
  const s = $("#status");
  s.textContent = text;
  s.className = "status " + (cls || "");
}

function showStatus(st) {
  const modes = {
    events: ["live: following the daemon's events", "events"],
    polling: ["live: polling the topology every 500 ms", "polling"],
    "daemon unreachable": ["the daemon does not answer", "unreachable"],
    starting: ["connecting to the daemon…", ""],
  };
  const [text, cls] = modes[st.mode] || [st.mode, ""];
  setStatus(text + (st.counters ? "" : " (no counters on this daemon)"), cls);
  $("#status").dataset.mode = st.mode;
}

// -- the picture ------------------------------------------------------------------
function draw(msg) {
  const before = new Set((topo ? topo.containers : []).map((c) => c.name));
  topo = msg.topology;
  const graph = $("#graph");
  graph.innerHTML = msg.svg;
  graph.dataset.version = msg.version;
  graph.dataset.drawnAt = Date.now();  // when the change reached the page (the tests time it)
  $("#updated").textContent = "redrawn " + new Date().toLocaleTimeString();
  for (const g of graph.querySelectorAll("g.container")) {
    const name = g.id.slice(3);
    g.addEventListener("click", () => select(name));
    if (before.size && !before.has(name)) g.classList.add("fresh");
  }
  const list = $("#containers");
  list.replaceChildren(...topo.containers.map((c) => {
    const li = el("li", { "data-name": c.name, title: c.netns ? "netns " + c.netns : c.kind }, c.name);
    li.addEventListener("click", () => select(c.name));
    return li;
  }));
  if (selected) {
    if (topo.containers.some((c) => c.name === selected)) select(selected, false);
    else $("#details-name").textContent = selected + " (not running any more)";
  }
  mark();
  if (counters) showCounters(counters, true);
}

function mark() {
  for (const g of document.querySelectorAll("#graph g.selected, #containers li.selected")) g.classList.remove("selected");
  for (const g of document.querySelectorAll("#graph g.traced")) g.classList.remove("traced");
  if (selected) {
    const g = document.getElementById("ns:" + selected);
    if (g) g.classList.add("selected");
    const li = document.querySelector(`#containers li[data-name="${CSS.escape(selected)}"]`);
    if (li) li.classList.add("selected");
  }
  for (const id of traced) {
    const g = document.getElementById(id);
    if (g) g.classList.add("traced");
  }
}

// -- counters -----------------------------------------------------------------------
function line(st) {
  return st ? `rx ${st.rx_packets} pkt ${human(st.rx_bytes)} · tx ${st.tx_packets} pkt ${human(st.tx_bytes)}` : "";
}

function under(g, cls, text) {
  // a line of text under the element's own label (the veth's name, the bridge's name)
  let t = g.querySelector("text." + cls);
  const label = g.querySelector("text:not(.counter)");
  if (!label) return;
  if (!t) {
    t = document.createElementNS("http://www.w3.org/2000/svg", "text");
    t.setAttribute("class", "counter " + cls);
    t.setAttribute("text-anchor", "middle");
    t.setAttribute("x", label.getAttribute("x"));
    const lines = g.querySelectorAll("text:not(.counter)");
    t.setAttribute("y", String(parseFloat(lines[lines.length - 1].getAttribute("y")) + 11));
    g.append(t);
  }
  t.textContent = text;
}

function showCounters(data, redraw) {
  if (!redraw) { previous = counters; counters = data; }
  if (!topo) return;
  const rows = [];
  const add = (key, where, st, old) => {
    if (!st) return;
    const moving = old && (old.rx_packets !== st.rx_packets || old.tx_packets !== st.tx_packets);
    const tr = el("tr", { "data-iface": key, class: moving ? "moving" : "" }, el("td", {}, where),
      el("td", { class: "rx-packets" }, String(st.rx_packets)), el("td", { class: "rx-bytes" }, human(st.rx_bytes)),
      el("td", { class: "tx-packets" }, String(st.tx_packets)), el("td", { class: "tx-bytes" }, human(st.tx_bytes)));
    rows.push(tr);
  };
  const old = previous || {};
  for (const n of topo.networks) {
    const st = (data.Host || {})[n.bridge];
    add("host:" + n.bridge, n.bridge + " (bridge " + n.name + ")", st, (old.Host || {})[n.bridge]);
    const g = document.getElementById("br:" + n.bridge);
    if (g && st) under(g, "bridge-counter", line(st));
  }
  for (const o of (topo.cluster || {}).overlays || []) {
    // an overlay's namespace on this host: br0 and its VXLAN device (what leaves for other hosts)
    const links = (data.Namespaces || {})[o.namespace] || {};
    const was = (old.Namespaces || {})[o.namespace] || {};
    add("ov:" + o.namespace + ":br0", `br0 (overlay ${o.name}, ${o.namespace})`, links.br0, was.br0);
    add("ov:" + o.namespace + ":" + o.vxlan, `${o.vxlan} (overlay ${o.name}: VXLAN to other hosts)`,
      links[o.vxlan], was[o.vxlan]);
    const g = document.getElementById("ov:" + o.namespace);
    if (g && links[o.vxlan]) under(g, "bridge-counter", o.vxlan + " " + line(links[o.vxlan]));
  }
  for (const c of topo.containers) {
    const mine = (data.Containers || {})[c.name] || {};
    const was = (old.Containers || {})[c.name] || {};
    for (const i of c.interfaces) {
      const st = mine[i.ifname];
      add(c.name + ":" + i.ifname, c.name + " " + i.ifname + (i.veth ? " ═ " + i.veth : ""), st, was[i.ifname]);
      const g = document.getElementById("if:" + c.name + ":" + i.ifname);
      if (g && st) under(g, "veth-counter", line(st));
    }
  }
  // the host's other links: its uplink, VXLAN devices, the host ends of veths in no picture
  const shown = new Set([...topo.networks.map((n) => n.bridge),
    ...topo.containers.flatMap((c) => c.interfaces.map((i) => i.veth))]);
  for (const [name, st] of Object.entries(data.Host || {}).sort()) {
    if (name !== "lo" && !shown.has(name)) add("host:" + name, "host " + name, st, (old.Host || {})[name]);
  }
  $("#counters tbody").replaceChildren(...rows);
}

// -- a container's details ----------------------------------------------------------------
function pre(lines, id) {
  const text = Array.isArray(lines) ? lines.join("\n") : lines;
  return el("pre", { id }, text || "(none)");
}

async function select(name, userClick = true) {
  selected = name;
  mark();
  $("#details-name").textContent = name;
  const body = $("#details-body");
  if (userClick) body.replaceChildren(el("p", { class: "hint" }, "reading " + name + "…"));
  let d;
  try {
    const r = await fetch(api(`api/containers/${encodeURIComponent(name)}/details`));
    d = await r.json();
    if (!r.ok) throw new Error(d.message || r.statusText);
  } catch (e) {
    body.replaceChildren(el("p", { class: "unavailable" }, String(e.message || e)));
    return;
  }
  if (selected !== name) return;
  const nets = el("table", { id: "details-networks" },
    el("tr", {}, el("th", {}, "network"), el("th", {}, "interface"), el("th", {}, "address"),
      el("th", {}, "gateway"), el("th", {}, "MAC")),
    ...d.Networks.map((n) => el("tr", {}, el("td", {}, n.Network), el("td", {}, n.Interface + (n.Veth ? " ═ " + n.Veth : "")),
      el("td", {}, [n.IPAddress, n.IPv6Address].filter(Boolean).join(" ")), el("td", {}, n.Gateway), el("td", {}, n.MacAddress))));
  body.replaceChildren(
    el("p", {}, `${d.State}, network mode ${d.NetworkMode}` + (d.Netns ? `, netns ${d.Netns}` : "")),
    nets,
    el("h3", {}, "addresses (ip -o addr, inside)"), pre(d.Addresses, "details-addresses"),
    el("h3", {}, "routes (ip route, inside)"), pre(d.Routes, "details-routes"),
    el("h3", {}, "/etc/hosts"), pre(d.Hosts, "details-hosts"),
    el("h3", {}, "/etc/resolv.conf"), pre(d.ResolvConf, "details-resolv"),
    el("h3", {}, "published ports"), pre(d.Ports, "details-ports"),
    el("h3", {}, "firewall rules that concern it (iptables-save)"), pre(d.Firewall, "details-firewall"),
  );
}

// -- trace ------------------------------------------------------------------------------
// POST /minidock/trace answers {Source, Destination: {Kind, Name, Namespace, Address, Port},
// Proto, Probe: {Outcome, …}, Path: [{Family, Table, Chain, Hook, Kind, Ours, Rule, Comment,
// Verdict, Target, In, Out, Packet}], Interfaces: ["alpine1:eth0", "veth…", "br-…", …],
// Rewrites: [{Kind, From, To, By, After}], Verdict}. The interfaces are found in the picture.

function elementsFor(value) {
  // the picture's parts an interface name or a container names: a bridge, a veth, a box
  const out = [];
  if (!topo || typeof value !== "string" || !value) return out;
  for (const n of topo.networks) if (value === n.bridge) out.push("br:" + n.bridge);
  for (const c of topo.containers) {
    if (value === c.name || value === c.netns) out.push("ns:" + c.name);
    for (const i of c.interfaces) {
      if (value === i.veth || value === c.name + ":" + i.ifname) out.push("if:" + c.name + ":" + i.ifname);
    }
  }
  for (const o of (topo.cluster || {}).overlays || []) {
    if (value === o.namespace || value === o.vxlan) out.push("ov:" + o.namespace);
  }
  if (value === "host") out.push("host");
  return out;
}

function tracedIds(d) {
  const ids = [];
  for (const end of [d.Source, d.Destination]) {
    if (!end) continue;
    ids.push(...elementsFor(end.Kind === "container" ? end.Name : end.Kind === "host" ? "host" : ""));
  }
  const crossed = d.Interfaces || (d.Path || []).flatMap((s) => [s.In, s.Out]);
  for (const name of crossed) ids.push(...elementsFor(name));
  for (const r of d.Rewrites || []) {
    // a DNAT to a published port: its note in the picture
    const m = /DNAT/.test(r.Kind) && /--dport (\d+)/.exec(r.By || "");
    if (m) for (const g of document.querySelectorAll("#graph g.port")) if (g.id.endsWith(":" + m[1] + "/" + d.Proto)) ids.push(g.id);
  }
  return [...new Set(ids)];
}

function traceLines(d) {
  // as `minidock trace` prints it: one line per hook and interfaces, one per rule met, the rewrites
  const out = [];
  if (d.Probe && d.Probe.Outcome) out.push("probe: " + d.Probe.Outcome, "");
  const after = new Map();
  for (const r of d.Rewrites || []) {
    if (!after.has(r.After)) after.set(r.After, []);
    after.get(r.After).push(r);
  }
  let seen = "";
  (d.Path || []).forEach((s, i) => {
    const family = s.Family === "inet" ? "ip" : s.Family;
    if (s.Packet) {
      const ifs = [["in", s.In], ["out", s.Out]].filter(([, n]) => n).map(([w, n]) => w + " " + n).join(" ");
      const key = [family, s.Hook, s.In, s.Out].join("|");
      if (key !== seen) { out.push(`${family} ${s.Hook}  ${ifs}  ${s.Packet}`); seen = key; }
    }
    if (!s.Ours) {
      const what = s.Kind === "rule" ? s.Rule : `(${s.Kind})`;
      out.push(`    ${s.Family} ${s.Table} ${s.Chain}  ${what} → ${s.Verdict}${s.Target ? " " + s.Target : ""}` +
        (s.Comment ? `  [${s.Comment}]` : ""));
    }
    for (const r of after.get(i) || []) out.push(`      ⇒ ${r.Kind}: ${r.From}  becomes  ${r.To}`);
  });
  if (d.Interfaces && d.Interfaces.length) out.push("", "interfaces: " + d.Interfaces.join(" → "));
  return out;
}

async function trace(ev) {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const body = { Source: form.get("src").trim(), Destination: form.get("dst").trim(), Proto: form.get("proto") };
  if (form.get("port")) body.Port = Number(form.get("port"));
  const out = $("#trace-result");
  out.replaceChildren(el("p", { class: "hint" }, "tracing…"));
  let r, d;
  try {
    r = await fetch(api("api/trace"), { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    d = await r.json();
  } catch (e) {
    out.replaceChildren(el("p", { class: "unavailable" }, "trace failed: " + e));
    return;
  }
  traced = [];
  if (r.status === 501 || d.available === false) {
    mark();
    out.replaceChildren(el("p", { class: "unavailable", id: "trace-unavailable" }, "trace not available: " +
      "this daemon has no POST /minidock/trace"));
    return;
  }
  if (!r.ok) {
    mark();
    out.replaceChildren(el("p", { class: "unavailable", id: "trace-error" }, d.message || r.statusText));
    return;
  }
  traced = tracedIds(d);
  mark();
  out.replaceChildren(
    el("p", { class: "verdict", id: "trace-verdict" }, "verdict: " + d.Verdict),
    el("pre", { id: "trace-path" }, traceLines(d).join("\n")),
  );
}

$("#trace-form").addEventListener("submit", trace);
connect();
