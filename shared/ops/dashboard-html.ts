import { readFileSync } from 'node:fs';
import { join } from 'node:path';

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
<script nonce="${nonce}">${pageScript()}</script>
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

// The page's script: checked TypeScript (dashboard/page.ts), compiled by the build. Tests run this file from
// source (ts-jest); the script always comes from dist/ (npm run build).
const SCRIPT_FILE = __filename.endsWith('.ts')
  ? join(__dirname, '../../dist/shared/ops/dashboard/page.js')
  : join(__dirname, 'dashboard/page.js');
let script: string | undefined;
const pageScript = (): string => (script ??= readFileSync(SCRIPT_FILE, 'utf8'));
