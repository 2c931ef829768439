import Module from 'node:module';

/**
 * The subset of the `@azure/functions-core` module that `@azure/functions` v4 uses. In Azure the Node.js
 * worker provides this module; here the local host does, so the library registers functions exactly as it
 * would in Azure (same metadata, same invocation model) instead of dropping to its no-op test mode.
 */

export type RpcTypedData = Record<string, unknown>;
export interface RpcBindingInfo {
  type?: string;
  direction?: 'in' | 'out' | 'inout';
  [property: string]: unknown;
}
export interface FunctionMetadata {
  name: string;
  bindings: Record<string, RpcBindingInfo>;
  retryOptions?: unknown;
}
export type FunctionCallback = (...args: unknown[]) => unknown;
export type LogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';
export type LogCategory = 'user' | 'system' | 'customMetric';

export interface InvocationRequest {
  inputData?: { name: string; data: RpcTypedData }[];
  triggerMetadata?: Record<string, RpcTypedData>;
  retryContext?: { retryCount: number; maxRetryCount: number };
}

export interface CoreInvocationContext {
  invocationId: string;
  request: InvocationRequest;
  metadata: FunctionMetadata;
  state?: string;
  log(level: LogLevel, category: LogCategory, message: string): void;
}

export interface InvocationResponse {
  invocationId?: string;
  outputData?: { name: string; data: RpcTypedData | null | undefined }[];
  returnValue?: RpcTypedData | null;
}

export interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], handler: FunctionCallback): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<InvocationResponse>;
}

export interface ProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(coreCtx: CoreInvocationContext): InvocationModel;
  getCapabilities(capabilities: Record<string, string>): Promise<Record<string, string>>;
}

export type HookName = 'appStart' | 'appTerminate' | 'preInvocation' | 'postInvocation';
export type HookCallback = (context: Record<string, unknown>) => unknown;

export interface RegisteredFunction {
  metadata: FunctionMetadata;
  callback: FunctionCallback;
}

class Disposable {
  constructor(private readonly dispose_: () => void) {}
  dispose(): void {
    this.dispose_();
  }
}

/** What the app registered while it loaded. One per process: a Function App is one worker process. */
export class CoreApi {
  readonly version = '3.10.1';
  readonly hostVersion = '4.1000.0-local';
  readonly functions = new Map<string, RegisteredFunction>();
  readonly hooks = new Map<HookName, Set<HookCallback>>();
  programmingModel: ProgrammingModel | undefined;
  readonly Disposable = Disposable;

  constructor(private readonly logSink: (level: LogLevel, category: LogCategory, message: string) => void) {}

  setProgrammingModel(model: ProgrammingModel): void {
    this.programmingModel = model;
  }

  getProgrammingModel(): ProgrammingModel | undefined {
    return this.programmingModel;
  }

  registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable {
    if (this.functions.has(metadata.name)) {
      throw new Error(`A function named "${metadata.name}" is already registered`);
    }
    this.functions.set(metadata.name, { metadata, callback });
    return new Disposable(() => this.functions.delete(metadata.name));
  }

  registerHook(hookName: HookName, callback: HookCallback): Disposable {
    const set = this.hooks.get(hookName) ?? new Set<HookCallback>();
    set.add(callback);
    this.hooks.set(hookName, set);
    return new Disposable(() => set.delete(callback));
  }

  log(level: LogLevel, category: LogCategory, message: string): void {
    this.logSink(level, category, message);
  }

  async runHooks(hookName: HookName, context: Record<string, unknown>): Promise<void> {
    for (const hook of this.hooks.get(hookName) ?? []) await hook(context);
  }
}

type ModuleLoad = (request: string, parent: unknown, isMain: boolean) => unknown;

/** Makes `require('@azure/functions-core')` return `api` in this process, as the Azure worker does. */
export function provideCoreApi(api: CoreApi): void {
  const moduleWithLoad = Module as unknown as { _load: ModuleLoad };
  const originalLoad = moduleWithLoad._load;
  moduleWithLoad._load = function (request, parent, isMain) {
    return request === '@azure/functions-core' ? api : originalLoad.call(this, request, parent, isMain);
  };
}
