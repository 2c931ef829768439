import { existsSync } from 'node:fs';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../local/chromium';

/** A line series: [seconds, value] points. */
export interface Series {
  label: string;
  color: string;
  points: [number, number][];
  dashed?: boolean;
}

export interface Panel {
  title: string;
  unit: string;
  series: Series[];
}

const W = 1000;
const PANEL_H = 260;
const M = { left: 70, right: 200, top: 34, bottom: 36 };

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function panelSvg(panel: Panel, y0: number): string {
  const pts = panel.series.flatMap((s) => s.points);
  const xMax = niceMax(Math.max(1, ...pts.map((p) => p[0])));
  const yMax = niceMax(Math.max(0, ...pts.map((p) => p[1])) * 1.05);
  const pw = W - M.left - M.right;
  const ph = PANEL_H - M.top - M.bottom;
  const x = (v: number): number => M.left + (v / xMax) * pw;
  const y = (v: number): number => y0 + M.top + ph - (v / yMax) * ph;
  const out: string[] = [];
  out.push(`<text x="${M.left}" y="${y0 + 20}" font-size="15" font-weight="bold">${esc(panel.title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (yMax / 5) * i;
    out.push(
      `<line x1="${M.left}" x2="${M.left + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${M.left - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${+v.toPrecision(3)}</text>`
    );
    const t = (xMax / 5) * i;
    out.push(
      `<text x="${x(t)}" y="${y0 + PANEL_H - 14}" font-size="11" text-anchor="middle">${+t.toFixed(0)} s</text>`
    );
  }
  out.push(
    `<text x="16" y="${y0 + M.top + ph / 2}" font-size="12" transform="rotate(-90 16 ${y0 + M.top + ph / 2})" text-anchor="middle">${esc(panel.unit)}</text>`,
    `<rect x="${M.left}" y="${y0 + M.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`
  );
  panel.series.forEach((s, i) => {
    if (s.points.length > 0) {
      const d = s.points.map(([a, b], j) => `${j === 0 ? 'M' : 'L'}${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ');
      out.push(
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`
      );
    }
    const ly = y0 + M.top + 14 + i * 18;
    out.push(
      `<line x1="${W - M.right + 12}" x2="${W - M.right + 36}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${W - M.right + 42}" y="${ly}" font-size="12">${esc(s.label)}</text>`
    );
  });
  return out.join('\n');
}

export function chartSvg(title: string, panels: Panel[]): string {
  const h = 40 + panels.length * PANEL_H;
  const body = panels.map((p, i) => panelSvg(p, 40 + i * PANEL_H)).join('\n');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif">` +
    `<rect width="100%" height="100%" fill="#fff"/>` +
    `<text x="${W / 2}" y="26" font-size="17" text-anchor="middle">${esc(title)}</text>\n${body}</svg>`
  );
}

/** Renders the SVG to a PNG with headless Chromium (playwright-core); no PNG library is needed. */
export async function renderPng(svg: string, file: string): Promise<void> {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: the PNG chart needs it (the SVG is kept)`);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
  });
  try {
    const width = Number(/width="(\d+)"/.exec(svg)?.[1] ?? 1000);
    const height = Number(/height="(\d+)"/.exec(svg)?.[1] ?? 600);
    const page = await browser.newPage({ viewport: { width, height } });
    await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
    await page.screenshot({ path: file, clip: { x: 0, y: 0, width, height } });
  } finally {
    await browser.close();
  }
}
