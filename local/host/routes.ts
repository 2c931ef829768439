/**
 * HTTP trigger route templates as the Functions host reads them: literal segments (case-insensitive),
 * `{name}`, `{name?}` (optional, last), `{name:constraint}` (int, alpha, guid, bool; others are accepted
 * as plain parameters) and `{*rest}` (catch-all, last).
 */
export interface CompiledRoute {
  template: string;
  /** Route parameters when `path` (without the route prefix) matches, otherwise undefined. */
  match(path: string): Record<string, string> | undefined;
}

const CONSTRAINTS: Record<string, RegExp> = {
  int: /^-?\d+$/,
  alpha: /^[a-z]+$/i,
  guid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  bool: /^(true|false)$/i,
};

interface Segment {
  literal?: string;
  param?: string;
  optional?: boolean;
  catchAll?: boolean;
  constraint?: RegExp;
}

function parseSegment(text: string, template: string): Segment {
  const param = /^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+)(?:\([^)]*\))?)?(\?)?\}$/.exec(text);
  if (!param) {
    if (text.includes('{') || text.includes('}')) throw new Error(`route "${template}": cannot read segment "${text}"`);
    return { literal: text.toLowerCase() };
  }
  const [, star, name, constraint, optional] = param;
  return {
    param: name,
    catchAll: star === '*',
    optional: optional === '?',
    constraint: constraint ? CONSTRAINTS[constraint] : undefined,
  };
}

export function compileRoute(template: string): CompiledRoute {
  const segments = template
    .replace(/^\/+|\/+$/g, '')
    .split('/')
    .filter(Boolean)
    .map((s) => parseSegment(s, template));
  return {
    template,
    match(path) {
      const parts = path
        .replace(/^\/+|\/+$/g, '')
        .split('/')
        .filter(Boolean);
      const params: Record<string, string> = {};
      for (let i = 0; i < segments.length; i++) {
        const segment = segments[i]!;
        if (segment.catchAll) {
          const rest = parts.slice(i).map(safeDecode);
          if (rest.includes(undefined)) return undefined;
          params[segment.param!] = rest.join('/');
          return params;
        }
        const part = parts[i];
        if (part === undefined) return segment.optional && i === segments.length - 1 ? params : undefined;
        if (segment.literal !== undefined) {
          if (part.toLowerCase() !== segment.literal) return undefined;
          continue;
        }
        const value = safeDecode(part);
        if (value === undefined) return undefined;
        if (segment.constraint && !segment.constraint.test(value)) return undefined;
        params[segment.param!] = value;
      }
      return parts.length === segments.length ? params : undefined;
    },
  };
}

function safeDecode(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}
