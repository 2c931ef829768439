/**
 * The ops dashboard page: self-contained (inline CSS and JS, charts drawn as inline SVG by the small code below),
 * so it works offline and under a strict Content-Security-Policy (nonce-only scripts and styles). Data comes
 * from `status/history` every 10 s; everything from it is rendered through textContent and SVG attributes,
 * never as HTML. The function key the page was opened with (?code=) is sent as x-functions-key.
 */

export const escapeHtml = (value: string): string =>
  value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function dashboardHtml(options: { bankId: string; nonce: string }): string {
  const bank = escapeHtml(options.bankId);
  const nonce = escapeHtml(options.nonce);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ledger-bridge operations · ${bank}</title>
<style nonce="${nonce}">${CSS}</style>
</head>
<body>
<header>
  <div class="brand"><span class="logo">◆</span> ledger-bridge <span class="sub">operations · ${bank}</span></div>
  <div class="pills" id="pills"></div>
  <div class="updated"><span id="updated">loading…</span><span class="dot" id="live"></span></div>
</header>
<div id="banner" class="banner" hidden></div>
<main>
  <section class="tiles" id="tiles"></section>
  <section class="card wide" id="alerts-card"><h2>Alerts</h2><div id="alerts"></div></section>
  <section class="card wide"><h2>Validators heartbeating <span class="hint">last 30 minutes, one cell per beat</span></h2>
    <div id="timeline" class="chart"></div>
    <table id="nodes"><thead><tr><th>validator</th><th>status</th><th>head</th><th>lag</th><th>block age</th><th>peers</th><th>latency</th><th>client</th><th>consensus</th><th>note</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card"><h2>Block height</h2><div class="chart" id="c-height"></div></section>
  <section class="card"><h2>Block time <span class="hint">average of the last 30 blocks, s</span></h2><div class="chart" id="c-blocktime"></div></section>
  <section class="card"><h2>Transactions per minute</h2><div class="chart" id="c-tpm"></div></section>
  <section class="card"><h2>Consortium members</h2><div class="chart" id="c-members"></div></section>
  <section class="card"><h2>Pipeline backlog <span class="hint">events</span></h2><div class="chart" id="c-backlog"></div></section>
  <section class="card"><h2>Pipeline lag <span class="hint">s</span></h2><div class="chart" id="c-lag"></div></section>
</main>
<footer>Samples are kept 30 minutes in this bank's storage (OpsState table); Application Insights holds the long history.</footer>
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>
`;
}

const CSS = `
:root{--bg:#f4f6f9;--card:#fff;--ink:#1f2933;--muted:#6b7785;--line:#e3e8ee;--ok:#16a34a;--warn:#d97706;--bad:#dc2626;--none:#cbd2d9;--blue:#2563eb}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
header{display:flex;align-items:center;gap:24px;padding:14px 28px;background:#0f1b2d;color:#fff}
.brand{font-weight:600;font-size:17px;letter-spacing:.2px;white-space:nowrap}
.brand .logo{color:#60a5fa}.brand .sub{font-weight:400;color:#9fb3c8;margin-left:6px}
.pills{display:flex;gap:8px;flex:1}
.pill{display:inline-flex;align-items:center;gap:6px;padding:4px 11px;border-radius:999px;background:#1c2b42;font-size:13px;color:#d9e2ec}
.pill i{width:9px;height:9px;border-radius:50%;display:inline-block;background:var(--none)}
.pill.ok i{background:var(--ok)}.pill.degraded i{background:var(--warn)}.pill.down i{background:var(--bad)}
.updated{color:#9fb3c8;font-size:12px;display:flex;align-items:center;gap:8px;white-space:nowrap}
.dot{width:8px;height:8px;border-radius:50%;background:var(--none)}.dot.on{background:var(--ok)}.dot.err{background:var(--bad)}
.banner{margin:16px 28px 0;padding:10px 14px;border-radius:8px;background:#fdecea;color:#8a1c14;border:1px solid #f5c2bd}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:18px;padding:20px 28px}
.tiles{grid-column:1/-1;display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.tile .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.4px}
.tile .v{font-size:24px;font-weight:600;margin-top:4px;font-variant-numeric:tabular-nums}
.tile .v small{font-size:13px;color:var(--muted);font-weight:400;margin-left:3px}
.tile.bad{border-color:#f5c2bd;background:#fff7f6}.tile.warn{border-color:#fde2b0;background:#fffbf2}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 18px 16px;box-shadow:0 1px 2px rgba(16,24,40,.04);min-width:0}
.card.wide{grid-column:1/-1}
h2{font-size:14px;margin:0 0 10px;font-weight:600}
.hint{color:var(--muted);font-weight:400;font-size:12px;margin-left:6px}
.chart svg{width:100%;height:auto;display:block}
.chart .axis{stroke:#c5ced8;stroke-width:1}.chart .grid{stroke:#eef1f5;stroke-width:1}
.chart text{fill:var(--muted);font-size:11px}
.chart .empty{fill:var(--muted);font-size:13px}
.legend{display:flex;gap:16px;flex-wrap:wrap;margin-top:6px;font-size:12px;color:var(--muted)}
.legend b{color:var(--ink);font-variant-numeric:tabular-nums}
.legend i{display:inline-block;width:10px;height:3px;border-radius:2px;margin-right:5px;vertical-align:middle}
table{width:100%;border-collapse:collapse;margin-top:12px;font-size:13px}
th{text-align:left;color:var(--muted);font-weight:500;border-bottom:1px solid var(--line);padding:6px 8px}
td{border-bottom:1px solid #f0f3f6;padding:6px 8px;font-variant-numeric:tabular-nums;white-space:nowrap}
td.note{white-space:normal;color:var(--muted);max-width:380px;overflow-wrap:anywhere}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:500}
.badge.up{background:#e7f6ec;color:#11632f}.badge.degraded{background:#fff4e0;color:#8a4b00}.badge.down{background:#fdecea;color:#8a1c14}
.alert{display:flex;gap:12px;align-items:baseline;padding:7px 0;border-bottom:1px solid #f0f3f6}
.alert:last-child{border-bottom:0}
.alert .rule{font-weight:600}.alert .meta{color:var(--muted);font-size:12px}
.alert.resolved{opacity:.6}
.none{color:var(--muted)}
footer{padding:4px 28px 24px;color:var(--muted);font-size:12px}
`;

// Plain browser JavaScript (no build step); kept small and dependency-free on purpose.
const SCRIPT = String.raw`
(function () {
  'use strict';
  var SVG = 'http://www.w3.org/2000/svg';
  var WINDOW_MS = 30 * 60 * 1000;
  var COLORS = ['#2563eb', '#7c3aed', '#0891b2', '#d97706', '#16a34a', '#db2777'];
  var STATUS_COLOR = { up: '#16a34a', degraded: '#d97706', down: '#dc2626' };
  var key = new URLSearchParams(location.search).get('code');

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    for (var k in attrs || {}) node.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }
  function fmt(v, digits) {
    if (num(v) === null) return '—';
    return Number(v).toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 1 : digits });
  }
  function two(n) { return String(n).padStart(2, '0'); }
  function clock(ms, seconds) { var d = new Date(ms); return two(d.getHours()) + ':' + two(d.getMinutes()) + (seconds ? ':' + two(d.getSeconds()) : ''); }

  // The x range: the last 30 minutes, or less while there is less data, so a young stack is not a sliver.
  var range = { x0: 0, x1: 0 };
  function setRange(samples) {
    var now = Date.now(), first = samples.length ? Date.parse(samples[0].t) : now - WINDOW_MS;
    var x0 = Math.max(now - WINDOW_MS, first - Math.max(5000, (now - first) * 0.05));
    range = { x0: x0, x1: now };
  }
  function timeTicks(draw) {
    var span = range.x1 - range.x0, steps = [5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5];
    var step = steps.filter(function (s) { return span / s <= 7; })[0] || 6e5;
    for (var t = Math.ceil(range.x0 / step) * step; t <= range.x1; t += step) draw(t, clock(t, step < 6e4));
  }

  function niceRange(min, max, integer) {
    if (min === max) { max = min + 1; min = Math.max(0, min - 1); }
    var span = max - min, step = Math.pow(10, Math.floor(Math.log10(span / 4)));
    [1, 2, 5, 10].some(function (m) { if (span / (step * m) <= 4) { step *= m; return true; } return false; });
    if (integer) step = Math.max(1, Math.round(step));
    return { min: Math.floor(min / step) * step, max: Math.ceil(max / step) * step, step: step };
  }

  // A time-series line chart over the 30-minute window; null values break the line.
  function lineChart(container, series, opts) {
    opts = opts || {};
    clear(container);
    var W = 600, H = 190, L = 52, R = 14, T = 10, B = 24;
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    container.appendChild(root);
    var x0 = range.x0, span = range.x1 - range.x0;
    var x = function (ms) { return L + ((ms - x0) / span) * (W - L - R); };
    var values = [];
    series.forEach(function (s) { s.points.forEach(function (p) { if (p[1] !== null && p[0] >= x0) values.push(p[1]); }); });
    timeTicks(function (t, label) {
      root.appendChild(svg('line', { x1: x(t), x2: x(t), y1: T, y2: H - B, class: 'grid' }));
      root.appendChild(svg('text', { x: x(t), y: H - 7, 'text-anchor': 'middle' }, label));
    });
    if (!values.length) {
      root.appendChild(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, opts.empty || 'no data in the last 30 minutes'));
      renderLegend(container, series, opts);
      return;
    }
    var lo = opts.zero === false ? Math.min.apply(null, values) : Math.min(0, Math.min.apply(null, values));
    var r = niceRange(lo, Math.max.apply(null, values), opts.integer);
    var y = function (v) { return H - B - ((v - r.min) / (r.max - r.min)) * (H - T - B); };
    for (var v = r.min; v <= r.max + r.step / 2; v += r.step) {
      root.appendChild(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
      root.appendChild(svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v, 2)));
    }
    root.appendChild(svg('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }));
    series.forEach(function (s, i) {
      var color = s.color || COLORS[i % COLORS.length], d = '', pen = false, prev = null;
      s.points.forEach(function (p) {
        if (p[1] === null || p[0] < x0) { pen = false; return; }
        if (pen && opts.step && prev !== null) d += 'L' + x(p[0]).toFixed(1) + ' ' + y(prev).toFixed(1);
        d += (pen ? 'L' : 'M') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1);
        pen = true; prev = p[1];
      });
      if (d) root.appendChild(svg('path', { d: d, fill: 'none', stroke: color, 'stroke-width': 2, 'stroke-linejoin': 'round', class: 'series' }));
      s.points.forEach(function (p) {
        if (p[1] === null || p[0] < x0) return;
        root.appendChild(svg('circle', { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 2.6, fill: color, class: 'point' }));
      });
    });
    renderLegend(container, series, opts);
  }

  function renderLegend(container, series, opts) {
    var legend = el('div', { class: 'legend' });
    series.forEach(function (s, i) {
      var last = null;
      s.points.forEach(function (p) { if (p[1] !== null) last = p[1]; });
      var item = el('span');
      var sw = el('i'); sw.style.background = s.color || COLORS[i % COLORS.length];
      item.appendChild(sw);
      item.appendChild(document.createTextNode(s.name + ' '));
      item.appendChild(el('b', {}, last === null ? (s.unknown || '—') : fmt(last, opts.digits) + (s.unit ? ' ' + s.unit : '')));
      legend.appendChild(item);
    });
    container.appendChild(legend);
  }

  // One row per validator, one cell per beat, coloured by status.
  function timeline(container, samples) {
    clear(container);
    var names = [];
    samples.forEach(function (s) { s.validators.forEach(function (v) { if (names.indexOf(v.name) < 0) names.push(v.name); }); });
    var W = 1200, L = 170, R = 10, rowH = 22, T = 4, H = T + Math.max(1, names.length) * rowH + 22;
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    container.appendChild(root);
    var x0 = range.x0, span = range.x1 - range.x0;
    var x = function (ms) { return L + ((ms - x0) / span) * (W - L - R); };
    timeTicks(function (t, label) {
      root.appendChild(svg('line', { x1: x(t), x2: x(t), y1: T, y2: H - 20, class: 'grid' }));
      root.appendChild(svg('text', { x: x(t), y: H - 6, 'text-anchor': 'middle' }, label));
    });
    if (!names.length) {
      root.appendChild(svg('text', { x: W / 2, y: 18, 'text-anchor': 'middle', class: 'empty' }, 'no heartbeat yet'));
      return;
    }
    var times = samples.map(function (s) { return Date.parse(s.t); });
    names.forEach(function (name, row) {
      var yTop = T + row * rowH;
      root.appendChild(svg('text', { x: 0, y: yTop + 15 }, name));
      root.appendChild(svg('rect', { x: L, y: yTop + 3, width: W - L - R, height: rowH - 8, rx: 3, fill: '#f0f3f6' }));
      samples.forEach(function (s, i) {
        var v = s.validators.filter(function (n) { return n.name === name; })[0];
        if (!v || times[i] < x0) return;
        var start = x(times[i]);
        var end = i + 1 < samples.length ? x(times[i + 1]) : Math.min(W - R, start + (i > 0 ? start - x(times[i - 1]) : 6));
        var cell = svg('rect', { x: start.toFixed(1), y: yTop + 3, width: Math.max(2, end - start - 1).toFixed(1), height: rowH - 8, rx: 2, fill: STATUS_COLOR[v.status] || '#cbd2d9', class: 'beat ' + v.status });
        cell.appendChild(svg('title', {}, name + ' ' + v.status + ' at ' + new Date(times[i]).toLocaleTimeString() + (v.message ? ': ' + v.message : '')));
        root.appendChild(cell);
      });
    });
  }

  function tile(parent, label, value, unit, level) {
    var t = el('div', { class: 'tile' + (level ? ' ' + level : '') });
    t.appendChild(el('div', { class: 'k' }, label));
    var v = el('div', { class: 'v' }, value);
    if (unit) v.appendChild(el('small', {}, unit));
    t.appendChild(v);
    parent.appendChild(t);
  }

  function render(data) {
    var st = data.status, samples = data.samples;
    setRange(samples);
    var pills = document.getElementById('pills'); clear(pills);
    [['Validators', st.validators.overall], ['Chain', st.chain.overall], ['Pipeline', st.pipeline.overall]].forEach(function (p) {
      var pill = el('span', { class: 'pill ' + p[1] }); pill.appendChild(el('i'));
      pill.appendChild(document.createTextNode(p[0] + ': ' + p[1])); pills.appendChild(pill);
    });
    var firing = st.alerts.filter(function (a) { return a.state === 'firing'; });
    var tiles = document.getElementById('tiles'); clear(tiles);
    var up = st.validators.nodes.filter(function (n) { return n.status !== 'down'; }).length;
    tile(tiles, 'Validators up', up + ' / ' + st.validators.nodes.length, '', up < st.validators.nodes.length ? 'bad' : '');
    tile(tiles, 'Head', fmt(st.chain.head, 0), '');
    tile(tiles, 'Block age', fmt(st.chain.blockAgeSeconds), 's', st.chain.overall === 'down' ? 'bad' : '');
    tile(tiles, 'Avg block time', fmt(st.chain.avgBlockTimeSeconds, 2), 's', st.chain.overall === 'degraded' ? 'warn' : '');
    tile(tiles, 'Tx / min', fmt(st.chain.txPerMinute), '');
    tile(tiles, 'Members', fmt(st.chain.members, 0), '');
    tile(tiles, 'Consensus', st.chain.consensusSource || '—', st.chain.validatorSet ? st.chain.validatorSet.length + ' validators' : '');
    tile(tiles, 'Outbox depth', fmt(st.pipeline.outboxDepth, 0), '');
    tile(tiles, 'Oldest pending', fmt(st.pipeline.oldestPendingAgeSeconds), 's');
    tile(tiles, 'Batches in flight', fmt(st.pipeline.inFlightBatches, 0), '');
    tile(tiles, 'Oldest unconfirmed', fmt(st.pipeline.oldestUnconfirmedAgeSeconds), 's');
    tile(tiles, 'Nonce gaps', fmt(st.pipeline.nonceGaps, 0), '', st.pipeline.nonceGaps > 0 ? 'bad' : '');
    tile(tiles, 'Dead letters', fmt(st.pipeline.deadLetters, 0), '', st.pipeline.deadLetters > 0 ? 'bad' : '');
    tile(tiles, 'Rejections', st.pipeline.rejections === null ? 'n/a' : fmt(st.pipeline.rejections, 0), '');
    tile(tiles, 'Alerts firing', String(firing.length), '', firing.length ? 'bad' : '');

    var alerts = document.getElementById('alerts'); clear(alerts);
    if (!st.alerts.length) alerts.appendChild(el('div', { class: 'none' }, 'No alerts in the last 30 minutes.'));
    st.alerts.forEach(function (a) {
      var row = el('div', { class: 'alert ' + a.state });
      row.appendChild(el('span', { class: 'badge ' + (a.state === 'firing' ? 'down' : 'up') }, a.state));
      row.appendChild(el('span', { class: 'rule' }, a.rule));
      row.appendChild(el('span', {}, a.subject));
      row.appendChild(el('span', { class: 'meta' }, 'value ' + fmt(a.value, 2) + ' / threshold ' + fmt(a.threshold, 2) + ' · since ' + new Date(a.since).toLocaleTimeString()));
      alerts.appendChild(row);
    });

    timeline(document.getElementById('timeline'), samples);
    var body = document.querySelector('#nodes tbody'); clear(body);
    st.validators.nodes.forEach(function (n) {
      var tr = el('tr', { class: 'node' });
      var status = el('td'); status.appendChild(el('span', { class: 'badge ' + n.status }, n.status)); 
      tr.appendChild(el('td', {}, n.name)); tr.appendChild(status);
      [fmt(n.head, 0), fmt(n.lagBlocks, 0), n.blockAgeSeconds === undefined ? '—' : fmt(n.blockAgeSeconds) + ' s',
       fmt(n.peers, 0), n.latencyMs === undefined ? '—' : fmt(n.latencyMs, 0) + ' ms', n.clientVersion || '—', n.consensus || '—']
        .forEach(function (v) { tr.appendChild(el('td', {}, v)); });
      tr.appendChild(el('td', { class: 'note' }, n.message || ''));
      body.appendChild(tr);
    });

    var at = function (f) { return samples.map(function (s) { var v = f(s); return [Date.parse(s.t), num(v)]; }); };
    lineChart(document.getElementById('c-height'), [{ name: 'best head', points: at(function (s) { return s.chain.head; }) }], { zero: false, integer: true, digits: 0 });
    lineChart(document.getElementById('c-blocktime'), [
      { name: 'avg block time', unit: 's', points: at(function (s) { return s.chain.avgBlockTimeSeconds; }) },
      { name: 'head block age', unit: 's', color: '#d97706', points: at(function (s) { return s.chain.blockAgeSeconds; }) }
    ], { digits: 2 });
    lineChart(document.getElementById('c-tpm'), [{ name: 'tx / min', points: at(function (s) { return s.chain.txPerMinute; }), color: '#0891b2' }], {});
    lineChart(document.getElementById('c-members'), [{ name: 'members', points: at(function (s) { return s.chain.members; }), color: '#7c3aed' }], { integer: true, step: true, digits: 0 });
    lineChart(document.getElementById('c-backlog'), [
      { name: 'outbox depth', points: at(function (s) { return s.pipeline.outboxDepth; }) },
      { name: 'dead letters', color: '#dc2626', points: at(function (s) { return s.pipeline.deadLetters; }) },
      { name: 'rejections / beat', color: '#d97706', unknown: 'n/a', points: at(function (s) { return s.pipeline.rejections; }) }
    ], { integer: true, digits: 0 });
    lineChart(document.getElementById('c-lag'), [
      { name: 'oldest pending', unit: 's', points: at(function (s) { return s.pipeline.oldestPendingAgeSeconds; }) },
      { name: 'projection lag', unit: 's', color: '#7c3aed', unknown: 'n/a', points: at(function (s) { return s.pipeline.projectionLagSeconds; }) }
    ], {});

    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString() + (st.sampledAt ? ' · last beat ' + new Date(st.sampledAt).toLocaleTimeString() : '');
    document.body.setAttribute('data-ready', 'true');
  }

  function refresh() {
    var headers = key ? { 'x-functions-key': key } : {};
    fetch('status/history', { headers: headers, cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        if (res.status === 401) throw new Error('not authorised: open the dashboard with ?code=<function key>');
        if (!res.ok) throw new Error('status/history answered HTTP ' + res.status);
        return res.json();
      })
      .then(function (data) {
        render(data);
        document.getElementById('banner').hidden = true;
        document.getElementById('live').className = 'dot on';
      })
      .catch(function (err) {
        var banner = document.getElementById('banner');
        banner.textContent = 'Cannot load status: ' + err.message;
        banner.hidden = false;
        document.getElementById('live').className = 'dot err';
      });
  }
  refresh();
  setInterval(refresh, 10000);
})();
`;
