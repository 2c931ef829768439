import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP_ROLES } from '../../shared/access';
import { ALERT_RULES } from '../../shared/ops/alerts';

/**
 * docs/read-api.openapi.json against the app: every HTTP function in functions/ is documented with its route and
 * method, nothing else is, and a protected route names the app role it needs in Azure and the function key it
 * needs locally (health is the one anonymous route).
 */
const root = join(__dirname, '../..');

interface Route {
  path: string;
  method: string;
  anonymous: boolean;
  /** The app role a protected route requires in Azure. */
  role?: string;
}

/** The routes the app registers, read from the app.http(...) calls in functions/. */
function appRoutes(): Route[] {
  const routes: Route[] = [];
  for (const file of readdirSync(join(root, 'functions')).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(root, 'functions', file), 'utf8');
    for (const m of text.matchAll(/app\.http\('\w+',\s*\{([\s\S]*?)\}\);/g)) {
      const route = /route:\s*'([^']+)'/.exec(m[1]!)?.[1];
      const methods = /methods:\s*\[([^\]]*)\]/.exec(m[1]!)?.[1];
      const auth = /authLevel:\s*('anonymous'|PROTECTED_AUTH_LEVEL)/.exec(m[1]!)?.[1];
      if (!route || !methods || !auth) throw new Error(`${file}: an app.http call without route, methods or authLevel`);
      const anonymous = auth === "'anonymous'";
      const role = /handler:\s*requireRole\(APP_ROLES\.(\w+),/.exec(m[1]!)?.[1];
      if (anonymous === (role !== undefined))
        throw new Error(`${file}: a protected route needs requireRole, and only it`);
      for (const method of methods.matchAll(/'(\w+)'/g)) {
        const entry: Route = { path: `/api/${route}`, method: method[1]!.toLowerCase(), anonymous };
        routes.push(role ? { ...entry, role: APP_ROLES[role as keyof typeof APP_ROLES] } : entry);
      }
    }
  }
  return routes.sort((a, b) => `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`));
}

type Operation = { security?: Record<string, string[]>[]; responses?: Record<string, unknown> };
const doc = JSON.parse(readFileSync(join(root, 'docs/read-api.openapi.json'), 'utf8')) as {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
};

function documented(): Route[] {
  return Object.entries(doc.paths)
    .flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => {
        const role = op.security?.find((s) => s.entraId)?.entraId?.[0];
        const entry: Route = { path, method, anonymous: (op.security ?? [undefined]).length === 0 };
        return role ? { ...entry, role } : entry;
      })
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
