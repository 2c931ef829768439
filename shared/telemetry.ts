import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { TelemetryClient } from 'applicationinsights';
import type { TokenCredential } from '@azure/core-auth';
import { redactedError, redactUrlsIn } from './redact';

export type TelemetryKind = 'metric' | 'event' | 'availability';

/** One name the app sends, documented; shared/telemetry-catalogue.ts lists every service's. */
export interface TelemetryName {
  name: string;
  kind: TelemetryKind;
  /** Unit of a metric's value, or the properties of an event. */
  unit: string;
  /** Custom dimensions (metrics) or properties (events, availability). */
  dimensions: string[];
  emittedBy: string;
  meaning: string;
}

export function telemetryName(
  emittedBy: string,
  name: string,
  kind: TelemetryKind,
  unit: string,
  dimensions: string[],
  meaning: string
): TelemetryName {
  return { name, kind, unit, dimensions, emittedBy, meaning };
}

/** The only way app code emits telemetry: custom metrics, events, availability results and exceptions. */
export interface Telemetry {
  metric(name: string, value: number, dimensions?: Record<string, string>): void;
  event(name: string, properties?: Record<string, string>, measurements?: Record<string, number>): void;
  availability(result: AvailabilityResult): void;
  exception(error: Error, properties?: Record<string, string>): void;
  /** Sends everything buffered (logs every 5 s, metrics every 60 s otherwise) and waits for the endpoint. */
  flush(): Promise<void>;
}

export interface AvailabilityResult {
  name: string;
  runLocation: string;
  success: boolean;
  durationMs: number;
  message?: string;
  properties?: Record<string, string>;
}

export interface TelemetryLogger {
  warn(message: string): void;
}

export interface TelemetryOptions {
  /** Application Insights connection string; undefined selects the dropping telemetry (see below). */
  connectionString?: string;
  /** Cloud role name (ai.cloud.role) that groups this app's telemetry in the portal. */
  roleName: string;
  /**
   * Entra ID for ingestion (Application Insights with local authentication disabled, as in Azure): the
   * exporter only uses a credential handed to it, not APPLICATIONINSIGHTS_AUTHENTICATION_STRING.
   */
  credential?: TokenCredential;
  logger?: TelemetryLogger;
}

const stderrLogger: TelemetryLogger = { warn: (message) => process.stderr.write(`${message}\n`) };

/**
 * Creates a telemetry over the real applicationinsights SDK. Each call gets its own TelemetryClient with
 * `useGlobalProviders: false`: the SDK then builds private OpenTelemetry tracer/meter/logger providers for it
 * instead of registering global ones, so several clients (several stand-ins in one test process, or two
 * connection strings) neither share nor replace each other's pipeline. That path also never installs the
 * distro's auto-collection (HTTP requests/dependencies, console, exceptions, performance counters, live
 * metrics) nor runs its Azure resource detectors (the VM detector probes IMDS at 169.254.169.254): the
 * Functions host already reports requests and dependencies; we only send custom telemetry.
 */
export function createTelemetry(options: TelemetryOptions): Telemetry {
  const logger = options.logger ?? stderrLogger;
  // The only fallback: without a connection string (local runs without the stack), telemetry is dropped,
  // and we say so once rather than failing the app or silently losing ops data.
  if (!options.connectionString) return droppingTelemetry(logger, options.roleName);

  keepSdkLocal();
  const client = new TelemetryClient(options.connectionString, { useGlobalProviders: false });
  client.config.azureMonitorOpenTelemetryOptions = {
    resource: resourceFromAttributes({ 'service.name': options.roleName }),
  };
  // Disk retry caching writes failed batches under the OS temp dir and replays them on later starts: litter
  // for a throwaway local stand-in. In Azure it rides out short ingestion outages, so keep it there.
  client.config.enableUseDiskRetryCaching = !isLoopback(options.connectionString);
  if (options.credential) client.config.aadTokenCredential = options.credential;
  client.initialize();
  stopSettingsPolling();

  // Texts (reasons, error messages) may quote an endpoint URL: none leaves the app with its credentials.
  return {
    metric: (name, value, dimensions) => client.trackMetric({ name, value, properties: redacted(dimensions) }),
    event: (name, properties, measurements) =>
      client.trackEvent({ name, properties: redacted(properties), measurements }),
    availability: (result) =>
      client.trackAvailability({
        id: randomUUID(),
        name: result.name,
        runLocation: result.runLocation,
        success: result.success,
        duration: result.durationMs,
        message: redactUrlsIn(result.message ?? ''),
        properties: redacted(result.properties),
      }),
    exception: (exception, properties) =>
      client.trackException({ exception: redactedError(exception), properties: redacted(properties) }),
    flush: () => client.flush(),
  };
}

function redacted(properties: Record<string, string> | undefined): Record<string, string> | undefined {
  return properties && Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, redactUrlsIn(v)]));
}

function droppingTelemetry(logger: TelemetryLogger, roleName: string): Telemetry {
  let warned = false;
  const drop = (): void => {
    if (warned) return;
    warned = true;
    logger.warn(`telemetry (${roleName}): no Application Insights connection string; telemetry is dropped`);
  };
  return { metric: drop, event: drop, availability: drop, exception: drop, flush: async () => drop() };
}

/**
 * Statsbeat (SDK health metrics the exporter sends to Microsoft's own ingestion endpoints, plus an IMDS probe
 * for the resource provider) is read from the environment when each exporter is built, so it is switched off
 * here, process-wide. Telemetry then only goes to the connection string's ingestion endpoint.
 */
function keepSdkLocal(): void {
  process.env.APPLICATION_INSIGHTS_NO_STATSBEAT = 'true';
  process.env.APPLICATIONINSIGHTS_SDKSTATS_DISABLED = 'true';
}

interface ConfigurationManagerModule {
  ConfigurationManager: { getInstance(): { shutdown(): void } };
}

/**
 * Every Azure Monitor exporter starts a process-wide poller of https://settings.sdk.monitor.azure.com
 * (OneSettings, first call 5–15 s later, then hourly) with no option or variable to turn it off. We stop it
 * right after the exporters are built. The module is internal, so it is loaded by file path from the copy the
 * SDK itself uses; if an SDK upgrade moves it, fail loudly instead of letting the poller run.
 */
function stopSettingsPolling(): void {
  const sdkDir = dirname(require.resolve('applicationinsights'));
  const exporterEntry = require.resolve('@azure/monitor-opentelemetry-exporter', { paths: [sdkDir] });
  const file = join(dirname(exporterEntry), '_configuration', 'configurationManager.js');
  // Plain require on purpose: the file is outside the package's exports map, and it must be the very module
  // instance the SDK loaded (under jest, that is jest's registry, which createRequire would bypass).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const loaded = existsSync(file) ? (require(file) as Partial<ConfigurationManagerModule>) : undefined;
  if (typeof loaded?.ConfigurationManager?.getInstance !== 'function') {
    throw new Error(`telemetry: cannot find the exporter's OneSettings poller at ${file}; update shared/telemetry.ts`);
  }
  loaded.ConfigurationManager.getInstance().shutdown();
}

function isLoopback(connectionString: string): boolean {
  const endpoint = /IngestionEndpoint=([^;]+)/i.exec(connectionString)?.[1];
  if (!endpoint) return false;
  const host = new URL(endpoint.replace(/^http:/i, 'https:')).hostname;
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
}
