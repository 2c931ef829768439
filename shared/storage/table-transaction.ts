import { randomUUID } from 'node:crypto';
import {
  RestError,
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineRequest,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import type { TableClient, TableEntity, TransactionAction, UpdateMode } from '@azure/data-tables';

/**
 * Entity-group transactions, encoded here and sent through the TableClient's own pipeline: its credential
 * (managed identity in Azure, the account key locally), retry, logging and tracing policies are the SDK's.
 *
 * Why not `TableClient.submitTransaction`: it builds a new TableClient and pipeline per transaction and runs
 * every row through that pipeline (a tracing span, URL templating, header and body serialization) only to
 * capture the request as text. Profiled at saturation, that was a third of a Function App host's CPU, for a few
 * dozen bytes per row (measured side by side: docs/design.md, "Where this departs"). What is encoded here is
 * the Table service's documented `$batch` format with the SDK's methods, entity URLs and entity JSON;
 * test/integration/table-transaction.test.ts runs both on Azurite and compares the URLs, rows, ETags and errors.
 */

/** One pool of connections per process: the tables' clients (TableStore) and the transactions share it. */
export const tablesHttpClient = createDefaultHttpClient();

export interface TransactionResult {
  /** The `$batch` request's own status (202). */
  status: number;
  /** One per action, in the actions' order: its status and, for a written row, its new ETag. */
  subResponses: { status: number; etag?: string }[];
}

/** Azure Tables allows at most 100 operations, all in one partition, per transaction. */
export const MAX_TRANSACTION_ACTIONS = 100;

const CRLF = '\r\n';

/**
 * Runs `actions` atomically: all or none. A refused action fails the whole transaction with a RestError
 * carrying that action's status and code (409 EntityAlreadyExists, 404 ResourceNotFound, 412
 * UpdateConditionNotSatisfied...), as the SDK's does.
 */
export async function submitTransaction(table: TableClient, actions: TransactionAction[]): Promise<TransactionResult> {
  const partitionKey = checkActions(table.tableName, actions);
  const base = table.url.split('?')[0]!.replace(/\/$/, '');
  const batch = `batch_${randomUUID()}`;
  const changeset = `changeset_${randomUUID()}`;
  const parts = actions.map((action) => `--${changeset}${CRLF}${subRequest(base, table.tableName, action)}`);
  const body =
    `--${batch}${CRLF}Content-Type: multipart/mixed; boundary=${changeset}${CRLF}${CRLF}` +
    `${parts.join(CRLF)}${CRLF}--${changeset}--${CRLF}--${batch}--${CRLF}`;
  const request = createPipelineRequest({
    url: `${base}/$batch`,
    method: 'POST',
    body,
    headers: createHttpHeaders({
      accept: 'application/json',
      'x-ms-version': '2019-02-02',
      DataServiceVersion: '3.0;',
      MaxDataServiceVersion: '3.0;NetFx',
      'Content-Type': `multipart/mixed; boundary=${batch}`,
    }),
    // Only the local stack's Azurite is reached over http (TableStore allows it there); a bearer token is never
    // sent over http whatever this says (the SDK's credential policy refuses).
    allowInsecureConnection: base.startsWith('http://'),
  });
  const response = await table.pipeline.sendRequest(tablesHttpClient, request);
  return parseResponse(response, actions.length, partitionKey);
}

function checkActions(tableName: string, actions: TransactionAction[]): string {
  if (actions.length === 0 || actions.length > MAX_TRANSACTION_ACTIONS) {
    throw new Error(
      `a transaction on ${tableName} takes 1 to ${MAX_TRANSACTION_ACTIONS} actions, not ${actions.length}`
    );
  }
  const partitionKey = actions[0]![1].partitionKey;
  if (actions.some(([, entity]) => entity.partitionKey !== partitionKey)) {
    throw new Error(`a transaction on ${tableName} must stay in one partition (first: "${partitionKey}")`);
  }
  return partitionKey;
}

function subRequest(base: string, tableName: string, action: TransactionAction): string {
  const entity = action[1];
  const url = `${base}/${tableName}(PartitionKey=${key(entity.partitionKey)},RowKey=${key(entity.rowKey)})`;
  const head = `Content-Type: application/http${CRLF}Content-Transfer-Encoding: binary${CRLF}${CRLF}`;
  const accept = `Accept: application/json${CRLF}DataServiceVersion: 3.0`;
  const json = `Content-Type: application/json${CRLF}${accept}`;
  switch (action[0]) {
    case 'create':
      return (
        `${head}POST ${base}/${tableName} HTTP/1.1${CRLF}${json}${CRLF}Prefer: return-no-content${CRLF}${CRLF}` +
        entityJson(entity)
      );
    case 'delete':
      return `${head}DELETE ${url} HTTP/1.1${CRLF}${accept}${CRLF}If-Match: *${CRLF}${CRLF}`;
    case 'upsert':
      return `${head}${verb(action[2])} ${url} HTTP/1.1${CRLF}${json}${CRLF}${CRLF}${entityJson(entity)}`;
    case 'update':
      return (
        `${head}${verb(action[2])} ${url} HTTP/1.1${CRLF}${json}${CRLF}If-Match: ${action[3]?.etag ?? '*'}${CRLF}${CRLF}` +
        entityJson(entity)
      );
  }
}

/** Replace writes the whole row (PUT); Merge, the default as in the SDK, only the given properties (PATCH). */
const verb = (mode: UpdateMode | undefined): string => (mode === 'Replace' ? 'PUT' : 'PATCH');

/** A key in an entity URL: quotes doubled (OData), then percent-encoded. */
const key = (value: string): string => `'${encodeURIComponent(value.replace(/'/g, "''"))}'`;

/**
 * The row as the service's JSON: PartitionKey and RowKey renamed, ETag and Timestamp (read-only) left out.
 * The app writes strings, numbers and booleans only; any other type is refused rather than guessed at.
 */
function entityJson(entity: TableEntity): string {
  const row: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(entity)) {
    if (name === 'etag' || name === 'timestamp' || value === undefined) continue;
    if (value !== null && !['string', 'number', 'boolean'].includes(typeof value)) {
      throw new Error(`property "${name}" is of type ${typeof value}: rows hold strings, numbers and booleans`);
    }
    row[name === 'partitionKey' ? 'PartitionKey' : name === 'rowKey' ? 'RowKey' : name] = value;
  }
  return JSON.stringify(row);
}

/**
 * The `$batch` answer: a multipart body with one part per action when all succeeded, or the one part of the
 * action that failed (the transaction then changed nothing).
 */
function parseResponse(response: PipelineResponse, count: number, partitionKey: string): TransactionResult {
  const text = response.bodyAsText ?? '';
  if (response.status < 200 || response.status >= 300) throw serviceError(text, response.status, response);
  const boundary = /boundary=(changesetresponse_[^\s;]+)/.exec(text)?.[1];
  if (!boundary) throw answerError(response, 'has no changeset response');
  const subResponses = text
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((part) => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/m.exec(part)?.[1]);
      if (!Number.isInteger(status)) throw answerError(response, 'has a part without a status line');
      if (status >= 300) throw serviceError(part.slice(Math.max(0, part.indexOf('{'))), status, response);
      const etag = /^ETag: *(.+?)\r?$/im.exec(part)?.[1];
      return etag === undefined ? { status } : { status, etag };
    });
  if (subResponses.length !== count) {
    throw answerError(response, `has ${subResponses.length} parts for ${count} actions (partition ${partitionKey})`);
  }
  return { status: response.status, subResponses };
}

function serviceError(body: string, statusCode: number, response: PipelineResponse): RestError {
  let error: { code?: string; message?: { value?: string } } | undefined;
  try {
    error = (JSON.parse(body) as { 'odata.error'?: typeof error })['odata.error'];
  } catch {
    // not JSON (an XML error from the front end): the status says enough
  }
  const message = error?.message?.value ?? `the transaction failed with HTTP ${statusCode}`;
  return new RestError(message, { code: error?.code, statusCode, request: response.request, response });
}

function answerError(response: PipelineResponse, problem: string): Error {
  return new Error(`the Table service's $batch answer (HTTP ${response.status}) ${problem}`);
}
