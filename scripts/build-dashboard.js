'use strict';
// Emits the dashboard page's script (shared/ops/dashboard/page.ts, a browser script type-checked by
// `npm run typecheck`) as plain JavaScript for dashboard-html.ts to inline: types stripped, nothing bundled.
const { mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const ts = require('typescript');

const root = join(__dirname, '..');
const source = readFileSync(join(root, 'shared/ops/dashboard/page.ts'), 'utf8');
const { outputText, diagnostics } = ts.transpileModule(source, {
  fileName: 'page.ts',
  reportDiagnostics: true,
  compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022, removeComments: true },
});
if (diagnostics && diagnostics.length > 0) {
  console.error(
    ts.formatDiagnostics(diagnostics, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => root,
      getNewLine: () => '\n',
    })
  );
  process.exit(1);
}
const outDir = join(root, 'dist/shared/ops/dashboard');
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'page.js'), outputText);
