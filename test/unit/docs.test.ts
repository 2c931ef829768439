import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALERT_RULES } from '../../shared/ops/alerts';

/**
 * docs/read-api.openapi.json against the app: every HTTP function in functions/ is documented with its route and
 * method, nothing else is, and a route that needs the function key says so (health is the one anonymous route).
 */
const root = join(__dirname, '../..');

interface Route {
  path: string;
  method: string;
  anonymous: boolean;
}

/** The routes the app registers, read from the app.http(...) calls in functions/. */
function appRoutes(): Route[] {
  const routes: Route[] = [];
  for (const file of readdirSync(join(root, 'functions')).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(root, 'functions', file), 'utf8');
    for (const m of text.matchAll(/app\.http\('\w+',\s*\{([\s\S]*?)\}\);/g)) {
      const route = /route:\s*'([^']+)'/.exec(m[1]!)?.[1];
      const methods = /methods:\s*\[([^\]]*)\]/.exec(m[1]!)?.[1];
      const auth = /authLevel:\s*'(\w+)'/.exec(m[1]!)?.[1];
      if (!route || !methods || !auth) throw new Error(`${file}: an app.http call without route, methods or authLevel`);
      for (const method of methods.matchAll(/'(\w+)'/g))
        routes.push({ path: `/api/${route}`, method: method[1]!.toLowerCase(), anonymous: auth === 'anonymous' });
    }
  }
  return routes.sort((a, b) => `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`));
}

type Operation = { security?: unknown[]; responses?: Record<string, unknown> };
const doc = JSON.parse(readFileSync(join(root, 'docs/read-api.openapi.json'), 'utf8')) as {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
};

function documented(): Route[] {
  return Object.entries(doc.paths)
    .flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({
        path,
        method,
        anonymous: (op.security ?? [undefined]).length === 0,
      }))
    )
    .sort((a, b) => `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`));
}

describe('the read API document', () => {
  it('is OpenAPI 3 with a response for every operation', () => {
    expect(doc.openapi).toMatch(/^3\./);
    for (const ops of Object.values(doc.paths))
      for (const op of Object.values(ops)) expect(op.responses?.['200']).toBeDefined();
  });

  it('documents exactly the routes the app registers, with their methods and auth', () => {
    const routes = appRoutes();
    expect(routes.length).toBeGreaterThanOrEqual(6);
    // Route templates use {name} in both the host and OpenAPI.
    expect(documented()).toEqual(routes);
  });
});

describe('the operations runbook', () => {
  it("has an entry for every alert rule, the app evaluator's and Azure Monitor's", () => {
    const runbook = readFileSync(join(root, 'docs/operations.md'), 'utf8');
    const headings = [...runbook.matchAll(/^### (.+)$/gm)].flatMap((m) => m[1]!.split(' / '));
    const bicep = readFileSync(join(root, 'infra/modules/alerts.bicep'), 'utf8');
    const rules = [
      ...[...bicep.matchAll(/^\s+name: '(\w+)'\n\s+(?:severity|location)/gm)].map((m) => m[1]!),
      ...Object.values(ALERT_RULES),
    ];
    expect(rules.length).toBeGreaterThanOrEqual(15);
    expect([...new Set(rules)].filter((rule) => !headings.includes(rule))).toEqual([]);
  });
});
