'use strict';
/**
 * Checks the Bicep files of infra/ against the Azure resource type schemas, since no Bicep compiler can be
 * installed where this project is built. The schemas are the `types.json` files of Azure/bicep-types-az, the
 * same the Bicep compiler checks resource bodies against (see the README.md beside them).
 *
 * What it checks, for every `resource sym 'Type@version' …` declaration:
 *   - the type exists at that API version;
 *   - every property name written in the body (at any depth, wherever the value is a literal object or an array
 *     of literal objects) exists in the schema, with the schema's spelling, and is not read-only;
 *   - every required property is present (resources declared `existing` are only looked up, not checked);
 *   - a literal string, number or boolean fits the schema type (e.g. one of an enum's values).
 * And for every `module sym 'path' …`: each param passed exists in the module, each param without a default is
 * passed, and each `sym.outputs.x` read is an output of the module.
 *
 * What it does not do: evaluate expressions. A value that is a parameter, a function call or a ternary is not
 * checked, nor are keys computed with `${…}`. It is a parser of the subset of Bicep infra/ is written in: a
 * construct it does not understand is reported as an error, never skipped in silence.
 *
 * Usage: node infra/check-schemas.js [--types <dir>] [--json] [file.bicep …]
 *   Without files it checks infra/main.bicep and infra/modules/*.bicep. The schema folder is --types, else
 *   $AZURE_RESOURCE_TYPES_DIR, else ../shared/azure-resource-types beside the repository. Exit code 1 on any
 *   problem, 2 when the schemas cannot be found.
 */
const { existsSync, readFileSync, readdirSync } = require('node:fs');
const { dirname, join, relative, resolve } = require('node:path');

const repoRoot = resolve(__dirname, '..');

/**
 * Types infra/ uses whose schema is not yet in the shared folder. Each is reported as unchecked (its body is not
 * checked), and an entry whose schema has arrived is an error, so this list cannot go stale.
 */
const AWAITING_SCHEMA = {
  'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31':
    'msi__microsoft.managedidentity__2023-01-31.json is not in the shared folder yet (to be asked for, see its README). Its body has no writable property: only name, location and tags.',
};

// Property flags in the schemas.
const REQUIRED = 1;
const READ_ONLY = 2;

/** Keys of a resource body that are Bicep's own, not the resource type's. */
const BICEP_RESOURCE_KEYS = new Set(['parent', 'scope', 'dependsOn']);

class SchemaDirError extends Error {}

/** Where the schemas are: explicit, environment, or the shared folder beside the repository. */
function findTypesDir(explicit) {
  const candidates = explicit
    ? [explicit]
    : process.env.AZURE_RESOURCE_TYPES_DIR
      ? [process.env.AZURE_RESOURCE_TYPES_DIR]
      : [join(repoRoot, '..', 'shared', 'azure-resource-types')];
  const found = candidates.find((dir) => existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.json')));
  if (!found) {
    throw new SchemaDirError(
      `no Azure resource type schemas at ${candidates.join(' or ')}: the infra/ schema check needs the shared ` +
        'folder azure-resource-types beside the repository (or AZURE_RESOURCE_TYPES_DIR pointing at it)'
    );
  }
  return found;
}

/** Every `ResourceType` node of every schema file, by lower-cased `type@version`. */
function loadSchemas(dir) {
  const types = new Map();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const nodes = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    for (const node of nodes) {
      if (node.$type !== 'ResourceType') continue;
      const key = node.name.toLowerCase();
      if (types.has(key)) throw new Error(`${file}: ${node.name} is declared twice in the schemas`);
      types.set(key, { file, nodes, name: node.name, body: node.body });
    }
  }
  return types;
}

// ---------------------------------------------------------------------------------------------------------------
// Tokens. Bicep strings may hold `${…}` interpolations with nested strings and braces, so strings are read whole.

/** @typedef {{ kind: 'id'|'string'|'number'|'punct'|'newline', text: string, value?: string, literal?: boolean, line: number }} Token */

function tokenize(text, file) {
  /** @type {Token[]} */
  const tokens = [];
  let i = 0;
  let line = 1;
  const push = (kind, textValue, extra = {}) => tokens.push({ kind, text: textValue, line, ...extra });

  /** Index just after the string starting at `start` (a `'`). */
  function skipString(start) {
    if (text.startsWith("'''", start)) {
      const end = text.indexOf("'''", start + 3);
      if (end < 0) throw new Error(`${file}:${line}: unterminated ''' string`);
      return end + 3;
    }
    let j = start + 1;
    while (j < text.length) {
      const c = text[j];
      if (c === '\\') j += 2;
      else if (c === "'") return j + 1;
      else if (c === '$' && text[j + 1] === '{') j = skipInterpolation(j + 2);
      else if (c === '\n') throw new Error(`${file}:${line}: unterminated string`);
      else j++;
    }
    throw new Error(`${file}:${line}: unterminated string`);
  }

  /** Index just after the `}` closing an interpolation whose expression starts at `start`. */
  function skipInterpolation(start) {
    let depth = 1;
    let j = start;
    while (j < text.length) {
      const c = text[j];
      if (c === "'") j = skipString(j);
      else {
        if (c === '{') depth++;
        if (c === '}' && --depth === 0) return j + 1;
        j++;
      }
    }
    throw new Error(`${file}:${line}: unterminated interpolation`);
  }

  while (i < text.length) {
    const c = text[i];
    if (c === '\n') {
      push('newline', '\n');
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (text.startsWith('//', i)) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new Error(`${file}:${line}: unterminated comment`);
      line += (text.slice(i, end).match(/\n/g) || []).length;
      i = end + 2;
    } else if (c === "'") {
      const end = skipString(i);
      const raw = text.slice(i, end);
      const multiLine = raw.startsWith("'''");
      const literal = multiLine || !/(^|[^\\])\$\{/.test(raw);
      const value = multiLine ? raw.slice(3, -3) : raw.slice(1, -1).replace(/\\(.)/g, (_, e) => unescapeChar(e));
      line += (raw.match(/\n/g) || []).length;
      push('string', raw, { value, literal });
      i = end;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 200));
      push('id', m[0]);
      i += m[0].length;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+/.exec(text.slice(i, i + 40));
      push('number', m[0]);
      i += m[0].length;
    } else {
      push('punct', c);
      i++;
    }
  }
  return tokens;
}

function unescapeChar(e) {
  return { n: '\n', r: '\r', t: '\t' }[e] ?? e;
}

// ---------------------------------------------------------------------------------------------------------------
// Values. An object or array literal is parsed into its entries; anything else is kept as an opaque expression.

/** @typedef {{ kind: 'object', entries: { key: string|null, keyLine: number, value: Value }[], line: number }} ObjectValue */
/** @typedef {{ kind: 'array', items: Value[], line: number }} ArrayValue */
/** @typedef {{ kind: 'literal', type: 'string'|'int'|'bool'|'null', value: unknown, line: number }} LiteralValue */
/** @typedef {{ kind: 'expression', line: number }} ExpressionValue */
/** @typedef {ObjectValue|ArrayValue|LiteralValue|ExpressionValue} Value */

class Parser {
  /** @param {Token[]} tokens */
  constructor(tokens, file) {
    this.tokens = tokens;
    this.pos = 0;
    this.file = file;
  }

  peek(offset = 0) {
    return this.tokens[this.pos + offset];
  }

  fail(message, token = this.peek()) {
    throw new Error(`${this.file}:${token ? token.line : 'end'}: ${message}`);
  }

  skipNewlines() {
    while (this.peek() && this.peek().kind === 'newline') this.pos++;
  }

  expect(text) {
    const t = this.peek();
    if (!t || t.text !== text) this.fail(`expected "${text}" but found "${t ? t.text : 'end of file'}"`);
    this.pos++;
    return t;
  }

  /** `{ key: value … }`: entries on their own lines or separated by commas. */
  parseObject() {
    const open = this.expect('{');
    /** @type {ObjectValue} */
    const obj = { kind: 'object', entries: [], line: open.line };
    for (;;) {
      this.skipNewlines();
      const t = this.peek();
      if (!t) this.fail('unterminated object', open);
      if (t.text === '}') {
        this.pos++;
        return obj;
      }
      if (t.text === ',') {
        this.pos++;
        continue;
      }
      if (t.text === '.' && this.peek(1)?.text === '.' && this.peek(2)?.text === '.') {
        this.fail('the spread operator is not supported by this checker');
      }
      let key;
      if (t.kind === 'id') key = t.text;
      else if (t.kind === 'string')
        key = t.literal ? t.value : null; // null: computed with ${…}
      else this.fail(`expected a property name but found "${t.text}"`);
      if (t.kind === 'id' && t.text === 'resource' && this.peek(1)?.kind === 'id') {
        this.fail('nested resource declarations are not supported by this checker');
      }
      this.pos++;
      this.expect(':');
      obj.entries.push({ key, keyLine: t.line, value: this.parseValue() });
    }
  }

  /** `[ item … ]` or `[for … in …: body]`. */
  parseArray() {
    const open = this.expect('[');
    /** @type {ArrayValue} */
    const arr = { kind: 'array', items: [], line: open.line };
    this.skipNewlines();
    if (this.peek()?.text === 'for') {
      // [for x in y: body] or [for x in y: if (cond) body]: the body describes every item.
      this.skipTo(':');
      this.pos++;
      this.skipCondition();
      arr.items.push(this.parseValue());
      this.skipNewlines();
      this.expect(']');
      return arr;
    }
    for (;;) {
      this.skipNewlines();
      const t = this.peek();
      if (!t) this.fail('unterminated array', open);
      if (t.text === ']') {
        this.pos++;
        return arr;
      }
      if (t.text === ',') {
        this.pos++;
        continue;
      }
      arr.items.push(this.parseValue());
    }
  }

  /** After `=` or `:` of a loop: an optional `if (condition)` before the body. */
  skipCondition() {
    if (this.peek()?.text === 'if') {
      this.pos++;
      this.skipBalanced();
    }
  }

  /** Moves to the next `text` at the current nesting depth. */
  skipTo(text) {
    let depth = 0;
    while (this.peek()) {
      const t = this.peek();
      if (depth === 0 && t.text === text) return;
      if ('([{'.includes(t.text) && t.kind === 'punct') depth++;
      if (')]}'.includes(t.text) && t.kind === 'punct') depth--;
      this.pos++;
    }
    this.fail(`expected "${text}"`);
  }

  /** Skips one balanced group starting at ( [ or {. */
  skipBalanced() {
    const open = this.peek();
    const close = { '(': ')', '[': ']', '{': '}' }[open.text];
    if (!close) this.fail(`expected a bracket but found "${open.text}"`);
    let depth = 0;
    while (this.peek()) {
      const t = this.peek();
      this.pos++;
      if (t.kind !== 'punct') continue;
      if ('([{'.includes(t.text)) depth++;
      if (')]}'.includes(t.text) && --depth === 0) return;
    }
    this.fail('unbalanced brackets', open);
  }

  /**
   * One value, up to the end of its line (or a comma, or the closing bracket of the enclosing literal) at depth
   * zero. A value that is exactly one object or array literal is parsed; a lone literal is kept; anything else is
   * an expression.
   */
  parseValue() {
    this.skipNewlines();
    const first = this.peek();
    if (!first) this.fail('expected a value');
    const start = this.pos;
    if (first.text === '{' || first.text === '[') {
      const value = first.text === '{' ? this.parseObject() : this.parseArray();
      if (this.atValueEnd()) return value;
      // A literal followed by more (e.g. `[…][0]`, `{…}.x`): an expression.
      this.pos = start;
    }
    const next = this.peek(1);
    const alone = next === undefined || next.kind === 'newline' || [',', '}', ']'].includes(next.text);
    if (alone) {
      this.pos++;
      if (first.kind === 'string' && first.literal)
        return { kind: 'literal', type: 'string', value: first.value, line: first.line };
      if (first.kind === 'number') return { kind: 'literal', type: 'int', value: Number(first.text), line: first.line };
      if (first.text === 'true' || first.text === 'false')
        return { kind: 'literal', type: 'bool', value: first.text === 'true', line: first.line };
      if (first.text === 'null') return { kind: 'literal', type: 'null', value: null, line: first.line };
      return { kind: 'expression', line: first.line };
    }
    let depth = 0;
    while (this.peek()) {
      const t = this.peek();
      if (depth === 0 && (t.kind === 'newline' || t.text === ',' || t.text === '}' || t.text === ']')) break;
      if (t.kind === 'punct' && '([{'.includes(t.text)) depth++;
      if (t.kind === 'punct' && ')]}'.includes(t.text)) depth--;
      this.pos++;
    }
    return { kind: 'expression', line: first.line };
  }

  atValueEnd() {
    const t = this.peek();
    return t === undefined || t.kind === 'newline' || [',', '}', ']'].includes(t.text);
  }
}

/**
 * The top-level declarations of a Bicep file: resources and modules with their parsed bodies, and the names of
 * params (with whether they have a default) and outputs.
 */
function parseBicep(text, file) {
  const tokens = tokenize(text, file);
  const parser = new Parser(tokens, file);
  const resources = [];
  const modules = [];
  const params = new Map();
  const outputs = new Set();
  // Declarations start a line outside any bracket (a bracket left open spans lines: decorators, var values).
  let atLineStart = true;
  let depth = 0;
  while (parser.peek()) {
    const t = parser.peek();
    if (t.kind === 'newline') {
      parser.pos++;
      atLineStart = depth === 0;
      continue;
    }
    const declares = atLineStart && t.kind === 'id' && parser.peek(1)?.kind === 'id';
    if (declares && (t.text === 'resource' || t.text === 'module')) {
      const symbol = parser.peek(1);
      const target = parser.peek(2);
      if (target?.kind !== 'string' || !target.literal) parser.fail(`cannot read the ${t.text} declaration`);
      parser.pos += 3;
      const existing = parser.peek()?.text === 'existing';
      if (existing) parser.pos++;
      parser.expect('=');
      parser.skipCondition();
      let body;
      let loop = false;
      if (parser.peek()?.text === '[') {
        const arr = parser.parseArray();
        if (arr.items.length !== 1) parser.fail(`a ${t.text} loop must have one body`, t);
        body = arr.items[0];
        loop = true;
      } else {
        body = parser.parseValue();
      }
      if (body.kind !== 'object') parser.fail(`the body of ${t.text} ${symbol.text} is not an object literal`, t);
      const declaration = { symbol: symbol.text, target: target.value, existing, loop, body, line: t.line };
      (t.text === 'resource' ? resources : modules).push(declaration);
      atLineStart = false;
      continue;
    }
    if (declares && t.text === 'param') {
      const name = parser.peek(1).text;
      parser.pos += 2;
      let optional = false;
      // The rest of the declaration: its type (`string?` is optional) and an optional `= default`.
      let inner = 0;
      while (parser.peek() && !(inner === 0 && parser.peek().kind === 'newline')) {
        const p = parser.peek();
        if (p.kind === 'punct' && '([{'.includes(p.text)) inner++;
        if (p.kind === 'punct' && ')]}'.includes(p.text)) inner--;
        if (inner === 0 && (p.text === '=' || p.text === '?')) optional = true;
        parser.pos++;
      }
      params.set(name, { optional });
      continue;
    }
    if (declares && t.text === 'output') outputs.add(parser.peek(1).text);
    if (t.kind === 'punct' && '([{'.includes(t.text)) depth++;
    if (t.kind === 'punct' && ')]}'.includes(t.text)) depth--;
    atLineStart = false;
    parser.pos++;
  }
  return { resources, modules, params, outputs };
}

// ---------------------------------------------------------------------------------------------------------------
// Checking values against schema types.

function deref(nodes, ref) {
  const index = Number(/^#\/(\d+)$/.exec(ref.$ref)?.[1]);
  const node = nodes[index];
  if (!node) throw new Error(`bad schema reference ${ref.$ref}`);
  return node;
}

/** The object shape of a schema type for a given literal object: its properties and whether others are allowed. */
function objectShape(nodes, type, obj) {
  if (type.$type === 'ObjectType') {
    return { name: type.name, properties: type.properties || {}, open: Boolean(type.additionalProperties) };
  }
  if (type.$type === 'DiscriminatedObjectType') {
    const entry = obj.entries.find((e) => e.key === type.discriminator);
    const chosen = entry && entry.value.kind === 'literal' ? type.elements[String(entry.value.value)] : undefined;
    if (!chosen) return undefined; // discriminator not a literal: cannot tell which shape
    const element = deref(nodes, chosen);
    return {
      name: `${type.name} (${type.discriminator} ${String(entry.value.value)})`,
      properties: { ...(type.baseProperties || {}), ...(element.properties || {}) },
      open: Boolean(element.additionalProperties),
    };
  }
  if (type.$type === 'UnionType') {
    const objects = type.elements.map((e) => deref(nodes, e)).filter((e) => e.$type === 'ObjectType');
    if (objects.length === 1) return objectShape(nodes, objects[0], obj);
  }
  return undefined;
}

/** Whether a literal fits a scalar schema type; undefined when the type is not a scalar one. */
function literalFits(nodes, type, literal) {
  switch (type.$type) {
    case 'AnyType':
      return true;
    case 'StringType':
      return literal.type === 'string';
    case 'StringLiteralType':
      return literal.type === 'string' && literal.value === type.value;
    case 'IntegerType':
      return literal.type === 'int';
    case 'BooleanType':
      return literal.type === 'bool';
    case 'UnionType':
      return type.elements.some((e) => literalFits(nodes, deref(nodes, e), literal) === true);
    default:
      return literal.type === 'null' ? true : undefined;
  }
}

function describeType(nodes, type) {
  if (type.$type === 'StringLiteralType') return `'${type.value}'`;
  if (type.$type === 'UnionType') return type.elements.map((e) => describeType(nodes, deref(nodes, e))).join(' | ');
  if (type.$type === 'ObjectType') return `object ${type.name}`;
  return type.$type.replace(/Type$/, '').toLowerCase();
}

/**
 * Checks a value against a schema type, pushing problems. `path` names the property for messages; `skipKeys` are
 * keys that are not the type's (Bicep's own keys of a resource body).
 */
function checkValue(ctx, type, value, path, skipKeys = new Set(), checkRequired = true) {
  const { nodes, problems, file } = ctx;
  if (type.$type === 'AnyType') return;
  if (value.kind === 'literal') {
    const fits = literalFits(nodes, type, value);
    if (fits === false) {
      problems.push(
        `${file}:${value.line}: ${path} is ${JSON.stringify(value.value)}, expected ${describeType(nodes, type)}`
      );
    }
    return;
  }
  if (value.kind === 'array') {
    if (type.$type !== 'ArrayType') {
      if (type.$type !== 'UnionType')
        problems.push(`${file}:${value.line}: ${path} is an array, expected ${describeType(nodes, type)}`);
      return;
    }
    const item = deref(nodes, type.itemType);
    value.items.forEach((v) => checkValue(ctx, item, v, `${path}[]`));
    return;
  }
  if (value.kind !== 'object') return;
  if (type.$type === 'DiscriminatedObjectType') {
    const entry = value.entries.find((e) => e.key === type.discriminator);
    if (entry && entry.value.kind === 'literal' && !(String(entry.value.value) in type.elements)) {
      const known = Object.keys(type.elements).join(', ');
      problems.push(
        `${file}:${entry.keyLine}: ${type.discriminator} ${JSON.stringify(entry.value.value)} is none of ${type.name}'s: ${known}`
      );
      return;
    }
  }
  const shape = objectShape(nodes, type, value);
  if (!shape) {
    if (type.$type === 'DiscriminatedObjectType') {
      const reason = `its ${type.discriminator} is not a literal, so its shape is unknown`;
      ctx.unchecked.push({ type: `${type.name} at ${path || 'the body'}`, file: `${file}:${value.line}`, reason });
    } else if (type.$type !== 'UnionType') {
      problems.push(`${file}:${value.line}: ${path} is an object, expected ${describeType(nodes, type)}`);
    }
    return;
  }
  const byLower = new Map(Object.keys(shape.properties).map((k) => [k.toLowerCase(), k]));
  for (const entry of value.entries) {
    if (entry.key === null || skipKeys.has(entry.key)) continue;
    const where = `${file}:${entry.keyLine}: ${path ? `${path}.` : ''}${entry.key}`;
    const property = shape.properties[entry.key];
    if (!property) {
      const other = byLower.get(entry.key.toLowerCase());
      if (other) problems.push(`${where}: spelled "${other}" in ${shape.name}`);
      else if (!shape.open) problems.push(`${where}: no such property in ${shape.name}`);
      continue;
    }
    if (property.flags & READ_ONLY && !(property.flags & REQUIRED)) {
      problems.push(`${where}: read-only in ${shape.name}`);
      continue;
    }
    checkValue(ctx, deref(nodes, property.type), entry.value, `${path ? `${path}.` : ''}${entry.key}`);
  }
  if (!checkRequired) return;
  const present = new Set(value.entries.map((e) => e.key));
  if (value.entries.some((e) => e.key === null)) return; // a computed key might be the required one
  for (const [name, property] of Object.entries(shape.properties)) {
    if (property.flags & REQUIRED && !present.has(name)) {
      problems.push(`${file}:${value.line}: ${path || 'the body'} lacks the required property ${name} (${shape.name})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * Checks Bicep sources. `sources` is a list of { file, text } (file is used for messages and to find modules);
 * `typesDir` the schema folder. Returns { problems, unchecked, resources } (problems empty when all is well).
 */
function checkSources(sources, typesDir) {
  const types = loadSchemas(typesDir);
  const problems = [];
  const unchecked = [];
  let resourceCount = 0;
  for (const awaited of Object.keys(AWAITING_SCHEMA)) {
    if (types.has(awaited.toLowerCase())) {
      problems.push(
        `${awaited} is listed in AWAITING_SCHEMA (infra/check-schemas.js) but its schema is present: remove the entry`
      );
    }
  }
  for (const { file, text } of sources) {
    let parsed;
    try {
      parsed = parseBicep(text, file);
    } catch (err) {
      problems.push(err.message);
      continue;
    }
    for (const resource of parsed.resources) {
      resourceCount++;
      const at = `${file}:${resource.line}: resource ${resource.symbol} '${resource.target}'`;
      const [typeName, version] = resource.target.split('@');
      if (!version) {
        problems.push(`${at}: no API version`);
        continue;
      }
      const schema = types.get(resource.target.toLowerCase());
      if (!schema) {
        if (resource.target in AWAITING_SCHEMA) {
          unchecked.push({ type: resource.target, file, reason: AWAITING_SCHEMA[resource.target] });
          continue;
        }
        const versions = [...types.keys()]
          .filter((k) => k.startsWith(`${typeName.toLowerCase()}@`))
          .map((k) => k.split('@')[1]);
        problems.push(
          `${at}: no such type and API version in the schemas` +
            (versions.length
              ? ` (the schemas have ${typeName}@${versions.join(', @')})`
              : ` (no version of ${typeName} at all)`)
        );
        continue;
      }
      const body = deref(schema.nodes, schema.body);
      // An `existing` resource is only looked up: its body names it, nothing is required or written.
      checkValue(
        { nodes: schema.nodes, problems, unchecked, file },
        body,
        resource.body,
        '',
        BICEP_RESOURCE_KEYS,
        !resource.existing
      );
    }
    for (const mod of parsed.modules) {
      const modulePath = join(dirname(file), mod.target);
      let moduleText;
      try {
        moduleText = readFileSync(resolve(repoRoot, modulePath), 'utf8');
      } catch {
        problems.push(`${file}:${mod.line}: module ${mod.symbol}: cannot read ${modulePath}`);
        continue;
      }
      const target = parseBicep(moduleText, modulePath);
      const paramsEntry = mod.body.entries.find((e) => e.key === 'params');
      const passed = new Set();
      if (paramsEntry && paramsEntry.value.kind === 'object') {
        for (const e of paramsEntry.value.entries) {
          passed.add(e.key);
          if (!target.params.has(e.key))
            problems.push(`${file}:${e.keyLine}: module ${mod.symbol}: ${modulePath} has no param ${e.key}`);
        }
      }
      for (const [name, { optional }] of target.params) {
        if (!optional && !passed.has(name))
          problems.push(
            `${file}:${mod.line}: module ${mod.symbol}: param ${name} of ${modulePath} is required but not passed`
          );
      }
      for (const m of text.matchAll(new RegExp(`\\b${mod.symbol}!?\\.outputs\\.(\\w+)`, 'g'))) {
        if (!target.outputs.has(m[1])) {
          const line = text.slice(0, m.index).split('\n').length;
          problems.push(`${file}:${line}: ${mod.symbol}.outputs.${m[1]}: ${modulePath} has no such output`);
        }
      }
    }
  }
  return { problems, unchecked, resources: resourceCount };
}

/** The Bicep files of infra/, relative to the repository root. */
function infraBicepFiles() {
  const modules = readdirSync(join(repoRoot, 'infra', 'modules'))
    .filter((f) => f.endsWith('.bicep'))
    .sort();
  return ['infra/main.bicep', ...modules.map((f) => `infra/modules/${f}`)];
}

function checkFiles(files = infraBicepFiles(), typesDir = findTypesDir()) {
  const sources = files.map((file) => ({
    file: relative(repoRoot, resolve(repoRoot, file)),
    text: readFileSync(resolve(repoRoot, file), 'utf8'),
  }));
  return checkSources(sources, typesDir);
}

function main(argv) {
  const files = [];
  let typesDir;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--types') typesDir = argv[++i];
    else if (argv[i] === '--json') json = true;
    else files.push(argv[i]);
  }
  let result;
  try {
    result = checkFiles(files.length ? files : undefined, findTypesDir(typesDir));
  } catch (err) {
    if (err instanceof SchemaDirError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  if (json) console.log(JSON.stringify(result, null, 2));
  else {
    for (const p of result.problems) console.error(p);
    for (const u of result.unchecked) console.error(`unchecked: ${u.type} (${u.file}): ${u.reason}`);
    console.error(`check-schemas.js: ${result.resources} resource declarations, ${result.problems.length} problem(s)`);
  }
  return result.problems.length ? 1 : 0;
}

module.exports = {
  checkSources,
  checkFiles,
  findTypesDir,
  parseBicep,
  infraBicepFiles,
  AWAITING_SCHEMA,
  SchemaDirError,
};

if (require.main === module) process.exitCode = main(process.argv.slice(2));
