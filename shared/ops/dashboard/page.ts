/**
 * The dashboard page's script: browser code (this folder's tsconfig.json has the DOM library), type-checked and
 * linted with the rest against the server's own types, compiled to dist/ and inlined into the page by
 * ../dashboard-html.ts. A script, not a module: nothing comes from outside but types. Charts are inline SVG;
 * everything from the data goes through textContent and attributes, never as HTML.
 */
type HistoryReport = import('../status').HistoryReport;
type BeatSample = import('../model').BeatSample;

(function dashboardPage(): void {
  const SVG = 'http://www.w3.org/2000/svg';
  const WINDOW_MS = 30 * 60 * 1000;
  const REFRESH_MS = 10_000;
  const COLORS = ['#2563eb', '#7c3aed', '#0891b2', '#d97706', '#16a34a', '#db2777'];
  const STATUS_COLOR: Record<string, string> = { up: '#16a34a', degraded: '#d97706', down: '#dc2626' };
  const key = new URLSearchParams(location.search).get('code');

  type Attrs = Record<string, string | number>;
  type Point = [number, number | null];
  interface Series {
    name: string;
    points: Point[];
    unit?: string;
    color?: string;
    unknown?: string;
  }
  interface ChartOptions {
    zero?: boolean;
    integer?: boolean;
    digits?: number;
    step?: boolean;
    empty?: string;
  }

  function byId(id: string): HTMLElement {
    const node = document.getElementById(id);
    if (!node) throw new Error(`the page has no #${id}`);
    return node;
  }
  function el(tag: string, attrs: Attrs = {}, text?: string | number): HTMLElement {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function svg(tag: string, attrs: Attrs = {}, text?: string | number): SVGElement {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function clear(node: Element): void {
    while (node.firstChild) node.removeChild(node.firstChild);
  }
  function num(v: unknown): number | null {
    return typeof v === 'number' && isFinite(v) ? v : null;
  }
  function fmt(v: unknown, digits = 1): string {
    const n = num(v);
    return n === null ? '—' : n.toLocaleString(undefined, { maximumFractionDigits: digits });
  }
  function two(n: number): string {
    return String(n).padStart(2, '0');
  }
  function clock(ms: number, seconds: boolean): string {
    const d = new Date(ms);
    return `${two(d.getHours())}:${two(d.getMinutes())}${seconds ? `:${two(d.getSeconds())}` : ''}`;
  }

  // The x range: the last 30 minutes, or less while there is less data, so a young stack is not a sliver.
  let range = { x0: 0, x1: 0 };
  function setRange(samples: BeatSample[]): void {
    const now = Date.now();
    const first = samples.length ? Date.parse(samples[0]!.t) : now - WINDOW_MS;
    range = { x0: Math.max(now - WINDOW_MS, first - Math.max(5000, (now - first) * 0.05)), x1: now };
  }
  function timeTicks(draw: (t: number, label: string) => void): void {
    const span = range.x1 - range.x0;
    const step = [5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5].find((s) => span / s <= 7) ?? 6e5;
    for (let t = Math.ceil(range.x0 / step) * step; t <= range.x1; t += step) draw(t, clock(t, step < 6e4));
  }

  function niceRange(min: number, max: number, integer?: boolean): { min: number; max: number; step: number } {
    if (min === max) {
      max = min + 1;
      min = Math.max(0, min - 1);
    }
    const span = max - min;
    let step = Math.pow(10, Math.floor(Math.log10(span / 4)));
    step *= [1, 2, 5, 10].find((m) => span / (step * m) <= 4) ?? 10;
    if (integer) step = Math.max(1, Math.round(step));
    return { min: Math.floor(min / step) * step, max: Math.ceil(max / step) * step, step };
  }

  // A time-series line chart over the 30-minute window; null values break the line.
  function lineChart(container: HTMLElement, series: Series[], opts: ChartOptions = {}): void {
    clear(container);
    const [W, H, L, R, T, B] = [600, 190, 52, 14, 10, 24];
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
    container.appendChild(root);
    const x0 = range.x0;
    const span = range.x1 - range.x0;
    const x = (ms: number): number => L + ((ms - x0) / span) * (W - L - R);
    const values: number[] = [];
    for (const s of series) for (const [t, v] of s.points) if (v !== null && t >= x0) values.push(v);
    timeTicks((t, label) => {
      root.appendChild(svg('line', { x1: x(t), x2: x(t), y1: T, y2: H - B, class: 'grid' }));
      root.appendChild(svg('text', { x: x(t), y: H - 7, 'text-anchor': 'middle' }, label));
    });
    if (!values.length) {
      const empty = opts.empty ?? 'no data in the last 30 minutes';
      root.appendChild(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, empty));
      renderLegend(container, series, opts);
      return;
    }
    const lo = opts.zero === false ? Math.min(...values) : Math.min(0, Math.min(...values));
    const r = niceRange(lo, Math.max(...values), opts.integer);
    const y = (v: number): number => H - B - ((v - r.min) / (r.max - r.min)) * (H - T - B);
    for (let v = r.min; v <= r.max + r.step / 2; v += r.step) {
      root.appendChild(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
      root.appendChild(svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v, 2)));
    }
    root.appendChild(svg('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }));
    series.forEach((s, i) => {
      const color = s.color ?? COLORS[i % COLORS.length]!;
      let d = '';
      let pen = false;
      let prev: number | null = null;
      for (const [t, v] of s.points) {
        if (v === null || t < x0) {
          pen = false;
          continue;
        }
        if (pen && opts.step && prev !== null) d += `L${x(t).toFixed(1)} ${y(prev).toFixed(1)}`;
        d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)} ${y(v).toFixed(1)}`;
        pen = true;
        prev = v;
      }
      if (d) {
        const path = { d, fill: 'none', stroke: color, 'stroke-width': 2, 'stroke-linejoin': 'round', class: 'series' };
        root.appendChild(svg('path', path));
      }
      for (const [t, v] of s.points) {
        if (v === null || t < x0) continue;
        const point = { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2.6, fill: color, class: 'point' };
        root.appendChild(svg('circle', point));
      }
    });
    renderLegend(container, series, opts);
  }

  function renderLegend(container: HTMLElement, series: Series[], opts: ChartOptions): void {
    const legend = el('div', { class: 'legend' });
    series.forEach((s, i) => {
      let last: number | null = null;
      for (const [, v] of s.points) if (v !== null) last = v;
      const item = el('span');
      const swatch = el('i');
      swatch.style.background = s.color ?? COLORS[i % COLORS.length]!;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(`${s.name} `));
      const value = last === null ? (s.unknown ?? '—') : fmt(last, opts.digits) + (s.unit ? ` ${s.unit}` : '');
      item.appendChild(el('b', {}, value));
      legend.appendChild(item);
    });
    container.appendChild(legend);
  }

  // One row per validator, one cell per beat, coloured by status.
  function timeline(container: HTMLElement, samples: BeatSample[]): void {
    clear(container);
    const names: string[] = [];
    for (const s of samples) for (const v of s.validators) if (!names.includes(v.name)) names.push(v.name);
    const [W, L, R, rowH, T] = [1200, 170, 10, 22, 4];
    const H = T + Math.max(1, names.length) * rowH + 22;
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
    container.appendChild(root);
    const x0 = range.x0;
    const span = range.x1 - range.x0;
    const x = (ms: number): number => L + ((ms - x0) / span) * (W - L - R);
    timeTicks((t, label) => {
      root.appendChild(svg('line', { x1: x(t), x2: x(t), y1: T, y2: H - 20, class: 'grid' }));
      root.appendChild(svg('text', { x: x(t), y: H - 6, 'text-anchor': 'middle' }, label));
    });
    if (!names.length) {
      root.appendChild(svg('text', { x: W / 2, y: 18, 'text-anchor': 'middle', class: 'empty' }, 'no heartbeat yet'));
      return;
    }
    const times = samples.map((s) => Date.parse(s.t));
    names.forEach((name, row) => {
      const yTop = T + row * rowH;
      root.appendChild(svg('text', { x: 0, y: yTop + 15 }, name));
      root.appendChild(svg('rect', { x: L, y: yTop + 3, width: W - L - R, height: rowH - 8, rx: 3, fill: '#f0f3f6' }));
      samples.forEach((s, i) => {
        const v = s.validators.find((n) => n.name === name);
        if (!v || times[i]! < x0) return;
        const start = x(times[i]!);
        const end =
          i + 1 < samples.length ? x(times[i + 1]!) : Math.min(W - R, start + (i > 0 ? start - x(times[i - 1]!) : 6));
        const cell = svg('rect', {
          x: start.toFixed(1),
          y: yTop + 3,
          width: Math.max(2, end - start - 1).toFixed(1),
          height: rowH - 8,
          rx: 2,
          fill: STATUS_COLOR[v.status] ?? '#cbd2d9',
          class: `beat ${v.status}`,
        });
        const at = new Date(times[i]!).toLocaleTimeString();
        cell.appendChild(svg('title', {}, `${name} ${v.status} at ${at}${v.message ? `: ${v.message}` : ''}`));
        root.appendChild(cell);
      });
    });
  }

  function tile(parent: HTMLElement, label: string, value: string, unit: string, level = ''): void {
    const t = el('div', { class: `tile${level ? ` ${level}` : ''}` });
    t.appendChild(el('div', { class: 'k' }, label));
    const v = el('div', { class: 'v' }, value);
    if (unit) v.appendChild(el('small', {}, unit));
    t.appendChild(v);
    parent.appendChild(t);
  }

  function render(data: HistoryReport): void {
    const st = data.status;
    const samples = data.samples;
    setRange(samples);
    const pills = byId('pills');
    clear(pills);
    for (const [label, overall] of [
      ['Validators', st.validators.overall],
      ['Chain', st.chain.overall],
      ['Pipeline', st.pipeline.overall],
    ] as const) {
      const pill = el('span', { class: `pill ${overall}` });
      pill.appendChild(el('i'));
      pill.appendChild(document.createTextNode(`${label}: ${overall}`));
      pills.appendChild(pill);
    }
    const firing = st.alerts.filter((a) => a.state === 'firing');
    const tiles = byId('tiles');
    clear(tiles);
    const nodes = st.validators.nodes;
    const up = nodes.filter((n) => n.status !== 'down').length;
    const p = st.pipeline;
    tile(tiles, 'Validators up', `${up} / ${nodes.length}`, '', up < nodes.length ? 'bad' : '');
    tile(tiles, 'Head', fmt(st.chain.head, 0), '');
    tile(tiles, 'Block age', fmt(st.chain.blockAgeSeconds), 's', st.chain.overall === 'down' ? 'bad' : '');
    tile(
      tiles,
      'Avg block time',
      fmt(st.chain.avgBlockTimeSeconds, 2),
      's',
      st.chain.overall === 'degraded' ? 'warn' : ''
    );
    tile(tiles, 'Tx / min', fmt(st.chain.txPerMinute), '');
    tile(tiles, 'Members', fmt(st.chain.members, 0), '');
    const validatorSet = st.chain.validatorSet ? `${st.chain.validatorSet.length} validators` : '';
    tile(tiles, 'Consensus', st.chain.consensusSource ?? '—', validatorSet);
    tile(tiles, 'Outbox depth', fmt(p.outboxDepth, 0) + (p.outboxDepthCapped ? '+' : ''), '');
    tile(tiles, 'Oldest pending', fmt(p.oldestPendingAgeSeconds), 's');
    tile(tiles, 'Batches in flight', fmt(p.inFlightBatches, 0), '');
    tile(tiles, 'Oldest unconfirmed', fmt(p.oldestUnconfirmedAgeSeconds), 's');
    tile(tiles, 'Nonce gaps', fmt(p.nonceGaps, 0), '', (p.nonceGaps ?? 0) > 0 ? 'bad' : '');
    tile(tiles, 'Dead letters', fmt(p.deadLetters, 0), '', (p.deadLetters ?? 0) > 0 ? 'bad' : '');
    tile(tiles, 'Rejections', p.rejections === null ? 'n/a' : fmt(p.rejections, 0), '');
    tile(tiles, 'Alerts firing', String(firing.length), '', firing.length ? 'bad' : '');

    const alerts = byId('alerts');
    clear(alerts);
    if (!st.alerts.length) alerts.appendChild(el('div', { class: 'none' }, 'No alerts in the last 30 minutes.'));
    for (const a of st.alerts) {
      const row = el('div', { class: `alert ${a.state}` });
      row.appendChild(el('span', { class: `badge ${a.state === 'firing' ? 'down' : 'up'}` }, a.state));
      row.appendChild(el('span', { class: 'rule' }, a.rule));
      row.appendChild(el('span', {}, a.subject));
      const since = new Date(a.since).toLocaleTimeString();
      const meta = `value ${fmt(a.value, 2)} / threshold ${fmt(a.threshold, 2)} · since ${since}`;
      row.appendChild(el('span', { class: 'meta' }, meta));
      alerts.appendChild(row);
    }

    timeline(byId('timeline'), samples);
    const body = document.querySelector('#nodes tbody');
    if (!body) throw new Error('the page has no #nodes tbody');
    clear(body);
    for (const n of nodes) {
      const tr = el('tr', { class: 'node' });
      const status = el('td');
      status.appendChild(el('span', { class: `badge ${n.status}` }, n.status));
      tr.appendChild(el('td', {}, n.name));
      tr.appendChild(status);
      const cells = [
        fmt(n.head, 0),
        fmt(n.lagBlocks, 0),
        n.blockAgeSeconds === undefined ? '—' : `${fmt(n.blockAgeSeconds)} s`,
        fmt(n.peers, 0),
        n.latencyMs === undefined ? '—' : `${fmt(n.latencyMs, 0)} ms`,
        n.clientVersion ?? '—',
        n.consensus ?? '—',
      ];
      for (const v of cells) tr.appendChild(el('td', {}, v));
      tr.appendChild(el('td', { class: 'note' }, n.message ?? ''));
      body.appendChild(tr);
    }

    const at = (f: (s: BeatSample) => unknown): Point[] => samples.map((s) => [Date.parse(s.t), num(f(s))]);
    lineChart(byId('c-height'), [{ name: 'best head', points: at((s) => s.chain.head) }], {
      zero: false,
      integer: true,
      digits: 0,
    });
    lineChart(
      byId('c-blocktime'),
      [
        { name: 'avg block time', unit: 's', points: at((s) => s.chain.avgBlockTimeSeconds) },
        { name: 'head block age', unit: 's', color: '#d97706', points: at((s) => s.chain.blockAgeSeconds) },
      ],
      { digits: 2 }
    );
    lineChart(byId('c-tpm'), [{ name: 'tx / min', points: at((s) => s.chain.txPerMinute), color: '#0891b2' }]);
    lineChart(byId('c-members'), [{ name: 'members', points: at((s) => s.chain.members), color: '#7c3aed' }], {
      integer: true,
      step: true,
      digits: 0,
    });
    lineChart(
      byId('c-backlog'),
      [
        { name: 'outbox depth', points: at((s) => s.pipeline.outboxDepth) },
        { name: 'dead letters', color: '#dc2626', points: at((s) => s.pipeline.deadLetters) },
        { name: 'rejections / beat', color: '#d97706', unknown: 'n/a', points: at((s) => s.pipeline.rejections) },
      ],
      { integer: true, digits: 0 }
    );
    lineChart(byId('c-lag'), [
      { name: 'oldest pending', unit: 's', points: at((s) => s.pipeline.oldestPendingAgeSeconds) },
      {
        name: 'projection lag',
        unit: 's',
        color: '#7c3aed',
        unknown: 'n/a',
        points: at((s) => s.pipeline.projectionLagSeconds),
      },
    ]);

    const lastBeat = st.sampledAt ? ` · last beat ${new Date(st.sampledAt).toLocaleTimeString()}` : '';
    byId('updated').textContent = `updated ${new Date().toLocaleTimeString()}${lastBeat}`;
    document.body.setAttribute('data-ready', 'true');
  }

  function refresh(): void {
    const headers: Record<string, string> = key ? { 'x-functions-key': key } : {};
    fetch('status/history', { headers, cache: 'no-store', credentials: 'same-origin' })
      .then((res) => {
        // Azure: the Entra sign-in cookie goes with every request (401: signed out; 403: no Operations.Read role).
        // Local: the function key from the page's own ?code= (the local host has no sign-in).
        if (res.status === 401) throw new Error('not signed in: reload the page (locally: open it with ?code=<key>)');
        if (res.status === 403) throw new Error('not allowed: this needs the app role Operations.Read');
        if (!res.ok) throw new Error(`status/history answered HTTP ${res.status}`);
        return res.json() as Promise<HistoryReport>;
      })
      .then((data) => {
        render(data);
        byId('banner').hidden = true;
        byId('live').className = 'dot on';
      })
      .catch((err: Error) => {
        const banner = byId('banner');
        banner.textContent = `Cannot load status: ${err.message}`;
        banner.hidden = false;
        byId('live').className = 'dot err';
      });
  }
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
