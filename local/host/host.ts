import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync, globSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import {
  CoreApi,
  provideCoreApi,
  type FunctionMetadata,
  type InvocationResponse,
  type LogCategory,
  type LogLevel,
  type RegisteredFunction,
  type RpcBindingInfo,
  type RpcTypedData,
} from './core-api';
import { redactUrl } from '../../shared/redact';
import { parseSchedule } from './ncrontab';
import { compileRoute, type CompiledRoute } from './routes';
import { ServiceBusTrigger, timeSpanMs, type ServiceBusHostSettings } from './service-bus-trigger';

/**
 * A local stand-in for the Azure Functions host (Core Tools cannot be installed here). It loads the app's
 * entry points as the Node.js worker does, through `@azure/functions-core`, and drives the app's triggers:
 * NCRONTAB timers (never overlapping, like the singleton timer lock), HTTP routes with function keys, and
 * Service Bus queue triggers received with the real SDK (local/host/service-bus-trigger.ts) from the namespace
 * the binding's connection setting names.
 * It also serves the host's admin API: POST /admin/functions/{name} runs a non-HTTP function on demand.
 */

export interface HostOptions {
  /** The app folder: its package.json `main` names the entry points, its host.json the host settings. */
  appDir: string;
  /** HTTP port; 0 picks a free one. */
  port: number;
  masterKey?: string;
  functionKey?: string;
  /** Settings the app reads (defaults to process.env); %NAME% binding expressions resolve against them. */
  settings?: Record<string, string | undefined>;
  log?: (line: string) => void;
}

interface HostJson {
  functionTimeout?: string;
  extensions?: {
    http?: { routePrefix?: string };
    serviceBus?: ServiceBusHostSettings;
  };
}

type Trigger = RpcBindingInfo & { name: string };

const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export class FunctionHost {
  readonly api: CoreApi;
  readonly masterKey: string;
  readonly functionKey: string;
  private server: Server | undefined;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<unknown>>();
  private readonly queueTriggers: ServiceBusTrigger[] = [];
  private readonly routes: { fn: RegisteredFunction; route: CompiledRoute; methods: string[]; authLevel: string }[] =
    [];
  private readonly hostJson: HostJson;
  private readonly settings: Record<string, string | undefined>;
  private readonly log: (line: string) => void;
  private stopping = false;
  url = '';

  constructor(private readonly options: HostOptions) {
    this.settings = options.settings ?? process.env;
    this.log = options.log ?? ((line) => console.log(line));
    this.masterKey = options.masterKey ?? randomBytes(24).toString('base64url');
    this.functionKey = options.functionKey ?? randomBytes(24).toString('base64url');
    this.hostJson = JSON.parse(readFileSync(join(options.appDir, 'host.json'), 'utf8')) as HostJson;
    this.api = new CoreApi((level, category, message) => this.write(level, category, message));
  }

  /** Loads the app and starts every trigger. */
  async start(): Promise<void> {
    provideCoreApi(this.api);
    // The worker loads entry points with require() too; the app registers its functions as it loads.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    for (const file of this.entryPoints()) require(file);
    if (!this.api.programmingModel)
      throw new Error('the app did not load @azure/functions: no programming model was set');
    await this.api.runHooks('appStart', { hookData: {} });
    for (const fn of this.api.functions.values()) this.describe(fn); // fail on unsupported triggers before starting any
    await this.startHttp();
    for (const fn of this.api.functions.values()) await this.startTrigger(fn);
    this.write('information', 'system', `Host started with ${this.api.functions.size} function(s) at ${this.url}`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    await Promise.all(this.queueTriggers.map((trigger) => trigger.stop()));
    await Promise.allSettled([...this.running]);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
    await this.api.runHooks('appTerminate', { hookData: {} });
  }

  /** The function list as the real host's admin API shows it. */
  functions(): { name: string; trigger: string; bindings: FunctionMetadata['bindings'] }[] {
    return [...this.api.functions.values()].map((fn) => ({
      name: fn.metadata.name,
      trigger: this.trigger(fn).type ?? '',
      bindings: fn.metadata.bindings,
    }));
  }

  /** Runs one invocation through the library's invocation model, exactly as the worker does. */
  async invoke(
    name: string,
    triggerData: RpcTypedData,
    triggerMetadata: Record<string, RpcTypedData> = {}
  ): Promise<InvocationResponse> {
    const fn = this.api.functions.get(name);
    if (!fn) throw new Error(`no function named "${name}"`);
    const trigger = this.trigger(fn);
    const invocationId = randomUUID();
    const model = this.api.programmingModel!.getInvocationModel({
      invocationId,
      metadata: fn.metadata,
      request: { inputData: [{ name: trigger.name, data: triggerData }], triggerMetadata },
      log: (level, category, message) => this.write(level, category, message, name, invocationId),
    });
    const work = (async () => {
      const { context, inputs } = await model.getArguments();
      const hookData = {};
      await this.api.runHooks('preInvocation', { invocationContext: context, inputs, hookData });
      let result: unknown;
      let error: unknown;
      try {
        result = await this.withTimeout(model.invokeFunction(context, inputs, fn.callback), name);
      } catch (err) {
        error = err;
      }
      // As the Azure worker does, the hooks may change the result or the error (the app shortens its failures there).
      const after = { invocationContext: context, inputs, result, error, hookData };
      await this.api.runHooks('postInvocation', after);
      if (after.error !== undefined) throw after.error instanceof Error ? after.error : new Error(inspect(after.error));
      return model.getResponse(context, after.result);
    })();
    this.running.add(work);
    try {
      return await work;
    } catch (err) {
      this.write('error', 'system', `Executed '${name}' (Failed, Id=${invocationId}): ${(err as Error).message}`);
      throw err;
    } finally {
      this.running.delete(work);
    }
  }

  private entryPoints(): string[] {
    const pkg = JSON.parse(readFileSync(join(this.options.appDir, 'package.json'), 'utf8')) as { main?: string };
    if (!pkg.main)
      throw new Error(`${this.options.appDir}/package.json has no "main": it must name the function entry points`);
    const files = globSync(pkg.main, { cwd: this.options.appDir })
      .map((f) => resolve(this.options.appDir, f))
      .sort();
    if (files.length === 0)
      throw new Error(`no entry point matches "main": "${pkg.main}" in ${this.options.appDir} (did you build?)`);
    return files;
  }

  private trigger(fn: RegisteredFunction): Trigger {
    const entry = Object.entries(fn.metadata.bindings).find(
      ([, b]) => b.direction === 'in' && b.type?.endsWith('Trigger')
    );
    if (!entry) throw new Error(`function "${fn.metadata.name}" has no trigger binding`);
    return { ...entry[1], name: entry[0] };
  }

  private describe(fn: RegisteredFunction): void {
    const type = this.trigger(fn).type;
    if (!['httpTrigger', 'timerTrigger', 'serviceBusTrigger'].includes(type ?? '')) {
      throw new Error(
        `function "${fn.metadata.name}" uses trigger type "${type}", which the local host does not support`
      );
    }
  }

  /** Resolves %SETTING% binding expressions from app settings, as the host does. */
  private resolveSetting(value: unknown, what: string): string {
    return String(value).replace(/%([^%]+)%/g, (_, name: string) => {
      const resolved = this.settings[name];
      if (resolved === undefined) throw new Error(`${what} refers to app setting %${name}%, which is not set`);
      return resolved;
    });
  }

  private async startTrigger(fn: RegisteredFunction): Promise<void> {
    const trigger = this.trigger(fn);
    if (trigger.type === 'timerTrigger') this.startTimer(fn, trigger);
    if (trigger.type === 'serviceBusTrigger') this.startQueue(fn, trigger);
    if (trigger.type === 'httpTrigger') {
      const route = this.resolveSetting(trigger.route ?? fn.metadata.name, `function "${fn.metadata.name}" route`);
      this.routes.push({
        fn,
        route: compileRoute(route),
        methods: ((trigger.methods as string[] | undefined) ?? ['GET', 'POST']).map((m) => m.toUpperCase()),
        authLevel: typeof trigger.authLevel === 'string' ? trigger.authLevel.toLowerCase() : 'function',
      });
    }
  }

  private startTimer(fn: RegisteredFunction, trigger: Trigger): void {
    const name = fn.metadata.name;
    const schedule = parseSchedule(this.resolveSetting(trigger.schedule, `function "${name}" schedule`));
    let last: Date | undefined;
    const fire = async (): Promise<void> => {
      const now = new Date();
      const next = schedule.next(now);
      const status = { Last: (last ?? now).toISOString(), Next: next.toISOString(), LastUpdated: now.toISOString() };
      last = now;
      await this.invoke(name, {
        json: JSON.stringify({ Schedule: { AdjustForDST: true }, ScheduleStatus: status, IsPastDue: false }),
      }).catch(
        () => undefined // already logged; a failed timer run is not retried, as in Azure
      );
    };
    // The next occurrence is computed after a run ends, so runs of one timer never overlap.
    const arm = (): void => {
      if (this.stopping) return;
      const due = schedule.next(new Date()).getTime();
      // setTimeout holds at most ~24.8 days; a later occurrence waits in steps instead of firing at once.
      const wait = (): void => {
        const delay = due - Date.now();
        this.timers.set(
          name,
          delay > MAX_TIMEOUT_MS
            ? setTimeout(wait, MAX_TIMEOUT_MS)
            : setTimeout(() => void fire().finally(arm), Math.max(0, delay))
        );
      };
      wait();
    };
    if (trigger.runOnStartup === true) void fire().finally(arm);
    else arm();
  }

  private startQueue(fn: RegisteredFunction, trigger: Trigger): void {
    const name = fn.metadata.name;
    const queueName = this.resolveSetting(trigger.queueName, `function "${name}" queueName`);
    if (!queueName || queueName === 'undefined')
      throw new Error(
        `function "${name}": the local host supports queue triggers (queueName), not topic subscriptions`
      );
    const setting = typeof trigger.connection === 'string' ? trigger.connection : 'AzureWebJobsServiceBus';
    const connectionString = this.settings[setting];
    if (!connectionString) {
      throw new Error(
        `function "${name}": app setting ${setting} is not set; the local host needs the namespace's connection string there (the local stack sets it; ${setting}__fullyQualifiedNamespace is for a managed identity in Azure)`
      );
    }
    const queueTrigger = new ServiceBusTrigger({
      connectionString,
      queueName,
      cardinality: trigger.cardinality === 'many' ? 'many' : 'one',
      binary: trigger.dataType === 'binary',
      settings: this.hostJson.extensions?.serviceBus ?? {},
      invoke: async ({ data, metadata }) => void (await this.invoke(name, data, metadata)),
      log: (level, message) => this.write(level, 'system', message, name),
    });
    queueTrigger.start();
    this.queueTriggers.push(queueTrigger);
  }

  private async withTimeout<T>(work: Promise<T>, name: string): Promise<T> {
    const ms = timeSpanMs(this.hostJson.functionTimeout ?? '00:05:00');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Timeout value of ${this.hostJson.functionTimeout} was exceeded by function: ${name}`)),
        ms
      );
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async startHttp(): Promise<void> {
    this.server = createServer((req, res) => {
      this.handleHttp(req, res).catch((err: Error) => {
        // The request URL may carry a key (?code=): the host never logs it. The app's error text stays as it is,
        // as Azure's host would log it, so a secret the app lets into it shows in tests.
        this.write('error', 'system', `HTTP ${req.method} ${redactUrl(req.url ?? '/')} failed: ${err.message}`);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal error' }));
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new Error(
            err.code === 'EADDRINUSE'
              ? `Functions host: port ${this.options.port} is already in use`
              : `Functions host: ${err.message}`
          )
        )
      );
      this.server!.listen(this.options.port, '127.0.0.1', () => resolve());
    });
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : this.options.port}`;
  }

  private keyMatches(req: IncomingMessage, url: URL, keys: string[]): boolean {
    const given = (req.headers['x-functions-key'] as string | undefined) ?? url.searchParams.get('code') ?? '';
    return keys.some((key) => sameKey(given, key));
  }

  private async handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (url.pathname === '/admin/host/status')
      return send(200, { state: this.stopping ? 'Stopping' : 'Running', version: this.api.hostVersion });
    if (url.pathname.startsWith('/admin/')) {
      if (!this.keyMatches(req, url, [this.masterKey]))
        return send(401, { error: 'the admin API needs the master key (x-functions-key)' });
      if (url.pathname === '/admin/functions' && req.method === 'GET') return send(200, this.functions());
      const match = /^\/admin\/functions\/([^/]+)$/.exec(url.pathname);
      if (match && req.method === 'POST')
        return this.runOnDemand(
          decodeURIComponent(match[1]!),
          await readBody(req),
          url.searchParams.get('wait') === 'true',
          send
        );
      return send(404, { error: `no admin endpoint ${req.method} ${url.pathname}` });
    }
    const prefix = this.hostJson.extensions?.http?.routePrefix ?? 'api';
    const path = url.pathname.replace(/^\/+/, '');
    if (prefix && !(path === prefix || path.startsWith(`${prefix}/`)))
      return send(404, { error: `no function serves ${url.pathname}` });
    const relative = prefix ? path.slice(prefix.length + 1) : path;
    const method = (req.method ?? 'GET').toUpperCase();
    const matches = this.routes.map((r) => ({ r, params: r.route.match(relative) })).filter((m) => m.params);
    const hit = matches.find((m) => m.r.methods.includes(method));
    if (!hit)
      return matches.length
        ? send(405, { error: `${method} is not allowed on ${url.pathname}` })
        : send(404, { error: `no function serves ${url.pathname}` });
    if (hit.r.authLevel !== 'anonymous') {
      const keys = hit.r.authLevel === 'admin' ? [this.masterKey] : [this.functionKey, this.masterKey];
      if (!this.keyMatches(req, url, keys)) {
        res.writeHead(401).end();
        return;
      }
    }
    const body = await readBody(req);
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')])
    );
    const response = await this.invoke(hit.r.fn.metadata.name, {
      http: {
        method,
        url: url.toString(),
        headers,
        query: Object.fromEntries(url.searchParams),
        params: hit.params,
        body: { bytes: body },
      },
    });
    writeHttpResponse(res, response);
  }

  private async runOnDemand(
    name: string,
    body: Buffer,
    wait: boolean,
    send: (status: number, body: unknown) => void
  ): Promise<void> {
    const fn = this.api.functions.get(name);
    if (!fn) return send(404, { error: `no function named "${name}"` });
    if (this.trigger(fn).type === 'httpTrigger')
      return send(400, { error: `"${name}" is an HTTP function: call its route instead` });
    let input: unknown;
    try {
      input = body.length ? (JSON.parse(body.toString('utf8')) as { input?: unknown }).input : undefined;
    } catch {
      input = null;
    }
    if (input !== undefined && typeof input !== 'string') {
      return send(400, { error: 'the body must be JSON: {"input": "<string>"}' });
    }
    const data =
      this.trigger(fn).type === 'timerTrigger'
        ? { json: JSON.stringify({ Schedule: { AdjustForDST: true }, ScheduleStatus: null, IsPastDue: false }) }
        : { string: input ?? '' };
    // Like the real host: accepted at once and run in the background. `?wait=true` (a local extension, for
    // tests and tools) waits and reports the outcome.
    const run = this.invoke(name, data);
    if (!wait) {
      run.catch(() => undefined);
      return send(202, { status: 'Accepted' });
    }
    try {
      await run;
      send(200, { status: 'Succeeded' });
    } catch (err) {
      send(200, { status: 'Failed', error: (err as Error).message });
    }
  }

  private write(
    level: LogLevel,
    category: LogCategory,
    message: string,
    functionName?: string,
    invocationId?: string
  ): void {
    const where = functionName ? ` ${functionName}${invocationId ? ` (${invocationId.slice(0, 8)})` : ''}` : '';
    this.log(`${new Date().toISOString()} [${level}]${where}${category === 'user' ? '' : ` <${category}>`} ${message}`);
  }
}

/**
 * Compares keys in constant time. Both sides are hashed first, so the buffers always have the same length
 * (timingSafeEqual throws on a length mismatch, which a multibyte key of the right character count caused)
 * and the comparison time says nothing about the key's length either.
 */
function sameKey(given: string, key: string): boolean {
  const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(key));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function writeHttpResponse(res: ServerResponse, response: InvocationResponse): void {
  const http = (response.returnValue?.http ?? response.outputData?.find((o) => o.data?.http)?.data?.http) as
    | { statusCode?: string; headers?: Record<string, string>; body?: { bytes?: Uint8Array; string?: string } }
    | undefined;
  if (!http) {
    res.writeHead(204).end();
    return;
  }
  const body = http.body?.bytes ? Buffer.from(http.body.bytes) : Buffer.from(http.body?.string ?? '');
  res.writeHead(Number(http.statusCode ?? 200), http.headers ?? {}).end(body);
}
