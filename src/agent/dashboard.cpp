#include "agent/dashboard.h"

#include <nlohmann/json.hpp>

namespace cloudkeep::agent {

namespace {

using Json = nlohmann::json;

Json Time(const std::optional<TimePoint>& t) {
  return t ? Json(FormatRfc3339(*t)) : Json(nullptr);
}

Json RunJson(const Run& r, const std::string& kind) {
  return {{"job", r.job},
          {"kind", kind},
          {"slot", FormatRfc3339(r.slot)},
          {"started", FormatRfc3339(r.started)},
          {"ended", Time(r.ended)},
          {"outcome", r.outcome},
          {"summary", r.summary},
          {"error", r.error}};
}

}  // namespace

std::string DashboardStateJson(const DashboardInput& in) {
  std::map<std::string, std::string> kinds;
  Json jobs = Json::array();
  for (size_t i = 0; i < in.metrics.jobs.size(); ++i) {
    const JobMetrics& j = in.metrics.jobs[i];
    kinds[j.name] = j.kind;
    Json e = {{"name", j.name},
              {"kind", j.kind},
              {"running", j.running},
              {"next_run", Time(j.next_run)},
              {"last_success", Time(j.last_success)},
              {"volumes", i < in.job_volumes.size() ? Json(in.job_volumes[i]) : Json::array()},
              {"last_run", nullptr}};
    if (j.last_run) e["last_run"] = RunJson(*j.last_run, j.kind);
    // The newest run that has ended: what the page shows while another runs.
    e["last_finished"] = nullptr;
    for (const auto& r : in.runs)
      if (r.job == j.name && r.outcome != "running") {
        e["last_finished"] = RunJson(r, j.kind);
        break;
      }
    jobs.push_back(e);
  }
  Json volumes = Json::array();
  for (const auto& v : in.metrics.volumes)
    volumes.push_back({{"volume", v.volume},
                       {"last_success", Time(v.last_success)},
                       {"last_duration_seconds", v.last_duration_seconds},
                       {"snapshot_count", v.snapshot_count ? Json(*v.snapshot_count) : Json()}});
  Json runs = Json::array();
  for (const auto& r : in.runs) runs.push_back(RunJson(r, kinds.count(r.job) ? kinds[r.job] : ""));
  Json reports = Json::array();
  for (const auto& r : in.reports) {
    Json doc = Json::parse(r.doc, nullptr, false);
    if (doc.is_discarded()) continue;
    reports.push_back({{"job", r.job},
                       {"kind", kinds.count(r.job) ? kinds[r.job] : ""},
                       {"at", FormatRfc3339(r.at)},
                       {"doc", doc}});
  }
  Json state = {{"version", in.metrics.version},
                {"host", in.host},
                {"now", FormatRfc3339(in.now)},
                {"start_time", FormatRfc3339(in.metrics.start_time)},
                {"jobs", jobs},
                {"volumes", volumes},
                {"runs", runs},
                {"reports", reports}};
  return state.dump();
}

// The page. Everything it shows comes from /api/state and is put into the
// document with textContent or as SVG attributes, never as HTML, so a job
// name or an error message cannot inject markup.
const std::string& DashboardHtml() {
  static const std::string page = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cloudkeep agent</title>
<link rel="icon" href="data:,">
<style>
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --dim: #57606a; --line: #d0d7de; }
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 10px 16px; display: flex; flex-wrap: wrap;
         gap: 4px 16px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
header span { color: #c9d1d9; font-size: 13px; }
main { padding: 8px 12px 32px; max-width: 1200px; margin: 0 auto; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 12px 0;
          padding: 8px 12px; }
h2 { font-size: 16px; margin: 4px 0 8px; }
h3 { font-size: 14px; margin: 12px 0 4px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { color: var(--dim); font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.success, .pass { color: var(--ok); font-weight: 600; }
.failure, .timeout, .fail { color: var(--bad); font-weight: 600; }
.warn, .interrupted, .skipped, .unknown, .running { color: var(--warn); font-weight: 600; }
.empty { color: var(--dim); font-style: italic; }
.err { color: var(--bad); }
svg text { font-size: 11px; fill: var(--dim); }
#status { font-size: 12px; }
</style>
</head>
<body>
<header><h1>cloudkeep agent</h1><span id="host"></span><span id="version"></span>
<span id="status">loading…</span></header>
<main>
<section id="jobs"><h2>Jobs</h2><div class="scroll"></div></section>
<section id="timeline"><h2>Snapshots, last 48 hours</h2><div class="scroll"></div></section>
<section id="mesh"><h2>Latency mesh</h2><div></div></section>
<section id="mail"><h2>Mail findings</h2><div></div></section>
<section id="history"><h2>Recent runs</h2><div class="scroll"></div></section>
</main>
<script>
"use strict";
const SVG = "http://www.w3.org/2000/svg";
function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
                                   : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function when(t) {
  if (!t) return "—";
  const d = new Date(t);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}
function us(v) {
  if (v === undefined || v === null) return "—";
  return v >= 1000 ? (v / 1000).toFixed(2) + " ms" : v.toFixed(0) + " µs";
}
function table(head, rows, numeric) {
  const t = el("table");
  const tr = el("tr");
  head.forEach(h => tr.appendChild(el("th", {}, h)));
  t.appendChild(el("thead")).appendChild(tr);
  const tb = t.appendChild(el("tbody"));
  rows.forEach(r => {
    const row = el("tr");
    r.forEach((c, i) => {
      let cell = c;
      if (!(c && c.nodeType)) {
        cell = el("td", {}, c);
        if (numeric && numeric.includes(i)) cell.className = "num";
      }
      row.appendChild(cell);
    });
    tb.appendChild(row);
  });
  return t;
}
function cls(text, c) { return el("td", {class: c}, text); }
function fill(id, node) {
  const box = document.querySelector("#" + id + " > div");
  box.replaceChildren(node);
}
function empty(text) { return el("p", {class: "empty"}, text); }

function renderJobs(s) {
  if (!s.jobs.length) return fill("jobs", empty("No jobs in the config."));
  fill("jobs", table(["job", "kind", "last run", "outcome", "next run", "last success", "error"],
    s.jobs.map(j => {
      // The last run that ended; one in progress shows in the next-run column.
      const r = j.last_finished;
      const outcome = r ? r.outcome : (j.running ? "running" : "never run");
      return [j.name, j.kind, r ? when(r.started) : "—", cls(outcome, outcome),
              j.running ? cls("running now", "running") : when(j.next_run), when(j.last_success),
              cls(r && r.error ? r.error : "", "err")];
    })));
}

function renderTimeline(s) {
  const now = new Date(s.now).getTime(), span = 48 * 3600e3, from = now - span;
  const vols = new Map();
  for (const j of s.jobs) if (j.kind === "snapshot") for (const v of j.volumes) vols.set(v, []);
  for (const v of s.volumes) if (!vols.has(v.volume)) vols.set(v.volume, []);
  const byJob = new Map(s.jobs.map(j => [j.name, j]));
  for (const r of s.runs) {
    const j = byJob.get(r.job);
    if (!j || j.kind !== "snapshot") continue;
    for (const v of j.volumes) if (vols.has(v)) vols.get(v).push(r);
  }
  if (!vols.size) return fill("timeline", empty("No snapshot jobs."));
  const W = 900, label = 220, rowH = 22, H = rowH * vols.size + 24;
  const svg = el("svg:svg", {viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
                             "aria-label": "snapshot timeline"});
  const x = t => label + (W - label - 10) * (t - from) / span;
  for (let h = 0; h <= 48; h += 12) {
    svg.appendChild(el("svg:line", {x1: x(from + h * 3600e3), x2: x(from + h * 3600e3), y1: 0,
                                    y2: H - 18, stroke: "#d0d7de"}));
    svg.appendChild(el("svg:text", {x: x(from + h * 3600e3) - 14, y: H - 4},
                       h === 48 ? "now" : `-${48 - h}h`));
  }
  let i = 0;
  for (const [vol, runs] of vols) {
    const y = i * rowH + 14;
    svg.appendChild(el("svg:text", {x: 4, y: y + 4, class: "vol"}, vol.length > 34 ? "…" + vol.slice(-33) : vol));
    for (const r of runs) {
      const t = new Date(r.started).getTime();
      if (t < from) continue;
      const ok = r.outcome === "success";
      const mark = el("svg:circle", {cx: x(t), cy: y, r: ok ? 4 : 5, class: "run " + r.outcome,
                                     fill: ok ? "#1a7f37" : (r.outcome === "skipped" ? "#9a6700" : "#cf222e")});
      mark.appendChild(el("svg:title", {}, `${r.job} ${when(r.started)}: ${r.outcome}${r.error ? " — " + r.error : ""}`));
      svg.appendChild(mark);
    }
    i++;
  }
  fill("timeline", svg);
}

function renderMesh(s) {
  const reports = s.reports.filter(r => r.kind === "mesh");
  if (!reports.length) return fill("mesh", empty("No mesh report yet."));
  const box = el("div");
  for (const r of reports) {
    const d = r.doc;
    box.appendChild(el("h3", {}, `${r.job} — ${when(r.at)}${d.complete === false ? " (incomplete)" : ""}`));
    const zones = (d.single_zone || []).map(g => [g.zone, g.pairs, us(g.p50_us), us(g.p99_us),
                                                  ((g.loss_ratio || 0) * 100).toFixed(1) + "%"]);
    for (const g of d.cross_zone || [])
      zones.push([`${g.zone_a} ↔ ${g.zone_b}`, g.pairs, us(g.p50_us), us(g.p99_us),
                  ((g.loss_ratio || 0) * 100).toFixed(1) + "%"]);
    const zt = el("div", {class: "scroll zones"});
    zt.appendChild(table(["zones", "pairs", "p50", "p99", "loss"], zones, [1, 2, 3, 4]));
    box.appendChild(zt);
    // The heatmap: median round trip of every measured pair, peer by peer.
    const peers = (d.peers || []).map(p => p.name);
    const cell = new Map((d.pairs || []).map(p => [p.from + "\u0000" + p.to, p]));
    const vals = (d.pairs || []).filter(p => p.p50_us !== undefined).map(p => p.p50_us);
    const lo = Math.min(...vals, Infinity), hi = Math.max(...vals, 0);
    const C = 26, L = 80, svg = el("svg:svg", {viewBox: `0 0 ${L + C * peers.length + 4} ${L + C * peers.length + 4}`,
                                                width: Math.min(600, L + C * peers.length + 4), class: "heatmap",
                                                role: "img", "aria-label": "latency heatmap"});
    peers.forEach((p, a) => {
      svg.appendChild(el("svg:text", {x: 2, y: L + a * C + C / 2 + 4}, p.slice(0, 16)));
      svg.appendChild(el("svg:text", {x: L + a * C + 4, y: L - 4, transform: `rotate(-60 ${L + a * C + 8} ${L - 4})`}, p.slice(0, 16)));
      peers.forEach((q, b) => {
        const m = cell.get(p + "\u0000" + q);
        let fill = "#eaeef2", tip = `${p} → ${q}: not measured`;
        if (m && m.p50_us !== undefined) {
          const f = hi > lo ? (m.p50_us - lo) / (hi - lo) : 0;
          fill = `hsl(${130 - 100 * f}, 60%, ${42 + 12 * (1 - f)}%)`;  // green (fastest) to orange; red is "lost"
          tip = `${p} → ${q}: p50 ${us(m.p50_us)}, p99 ${us(m.p99_us)}, loss ${((m.loss_ratio || 0) * 100).toFixed(1)}%`;
        } else if (m) {
          fill = "#cf222e";
          tip = `${p} → ${q}: lost`;
        }
        const r = el("svg:rect", {x: L + b * C, y: L + a * C, width: C - 2, height: C - 2, fill});
        r.appendChild(el("svg:title", {}, tip));
        svg.appendChild(r);
      });
    });
    if (peers.length) box.appendChild(svg);
  }
  fill("mesh", box);
}

function renderMail(s) {
  const reports = s.reports.filter(r => r.kind === "mail-check");
  if (!reports.length) return fill("mail", empty("No mail check report yet."));
  const box = el("div");
  for (const r of reports) {
    const d = r.doc, c = d.counts || {};
    box.appendChild(el("h3", {}, `${d.domain || r.job} — ${when(r.at)}: ${c.fail || 0} fail, ${c.warn || 0} warn, ${c.pass || 0} pass${d.complete === false ? ", incomplete" : ""}`));
    const rows = (d.findings || []).filter(f => String(f.level).toLowerCase() !== "pass")
      .map(f => [f.group, f.subject, cls(f.level, String(f.level).toLowerCase()), f.message, f.fix || ""]);
    const w = el("div", {class: "scroll findings"});
    w.appendChild(rows.length ? table(["group", "subject", "level", "finding", "fix"], rows)
                              : empty("Every check passed."));
    box.appendChild(w);
  }
  fill("mail", box);
}

function renderHistory(s) {
  if (!s.runs.length) return fill("history", empty("No runs yet."));
  fill("history", table(["started", "job", "outcome", "took", "summary or error"],
    s.runs.slice(0, 50).map(r => {
      const took = r.ended ? ((new Date(r.ended) - new Date(r.started)) / 1000).toFixed(1) + " s" : "—";
      return [when(r.started), r.job, cls(r.outcome, r.outcome), took, r.error || r.summary];
    }), [3]));
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const res = await fetch("api/state", {cache: "no-store"});
    if (!res.ok) throw new Error("HTTP " + res.status);
    const s = await res.json();
    document.getElementById("host").textContent = s.host;
    document.getElementById("version").textContent = "cloudkeep " + s.version;
    renderJobs(s); renderTimeline(s); renderMesh(s); renderMail(s); renderHistory(s);
    status.textContent = "updated " + when(s.now);
    document.body.dataset.loaded = "1";
  } catch (e) {
    status.textContent = "cannot reach the agent: " + e.message;
  }
}
refresh();
setInterval(refresh, 15000);
</script>
</body>
</html>
)HTML";
  return page;
}

}  // namespace cloudkeep::agent
