import { INGEST_NAMES } from './ingest/telemetry-names';
import { SIGNER_NAMES } from './keyvault/telemetry-names';
import { HEARTBEAT_NAMES } from './ops/telemetry-names';
import { SUBMIT_NAMES } from './submit/telemetry-names';
import type { TelemetryName } from './telemetry';
import { WATCH_NAMES } from './watch/telemetry-names';

/**
 * Every custom metric, event and availability test the app sends to Application Insights: each service declares
 * its own names (its telemetry-names.ts), and this catalogue lists them all, so dashboards, alert rules (infra)
 * and the docs use the same names. The docs' table is generated from here (`renderTelemetryTable()`); a unit
 * test fails when they drift apart.
 */
export const ALL_TELEMETRY: TelemetryName[] = [
  ...HEARTBEAT_NAMES,
  ...INGEST_NAMES,
  ...SUBMIT_NAMES,
  ...SIGNER_NAMES,
  ...WATCH_NAMES,
];

/** The telemetry table of docs/operations.md (markdown), generated from this catalogue. */
export function renderTelemetryTable(entries: TelemetryName[] = ALL_TELEMETRY): string {
  const rows = [
    ['name', 'kind', 'unit', 'dimensions', 'emitted by', 'meaning'],
    ...entries.map((t) => [`\`${t.name}\``, t.kind, t.unit, t.dimensions.join(', ') || '—', t.emittedBy, t.meaning]),
  ].map((cells) => cells.map((c) => c.replace(/\|/g, '\\|')));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const separator = `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`;
  return [line(rows[0]!), separator, ...rows.slice(1).map(line)].join('\n') + '\n';
}
