import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EVENTS, METRICS } from '../../shared/ops/telemetry-names';
import { ALL_TELEMETRY, renderTelemetryTable } from '../../shared/telemetry-catalogue';

const normalize = (table: string): string[] =>
  table
    .trim()
    .split('\n')
    .map((line) =>
      line
        .split('|')
        .map((cell) => cell.trim().replace(/^-+$/, '-'))
        .join('|')
    );

describe('telemetry names', () => {
  it('are unique and every constant is documented', () => {
    const names = ALL_TELEMETRY.map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of [...Object.values(METRICS), ...Object.values(EVENTS)]) expect(names).toContain(name);
  });

  it('match the operations doc table (regenerate with renderTelemetryTable() and paste between the markers)', () => {
    const doc = readFileSync(join(__dirname, '../../docs/operations.md'), 'utf8');
    const match = /<!-- telemetry:begin -->\n([\s\S]*?)<!-- telemetry:end -->/.exec(doc);
    expect(match).not.toBeNull();
    expect(normalize(match![1]!)).toEqual(normalize(renderTelemetryTable()));
  });
});
