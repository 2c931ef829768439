import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Message } from 'rhea';
import { EntityError } from './queue';

/**
 * Claims-based security on `$cbs`: the client puts a SAS token for each entity it opens a link to, and renews it
 * on a timer. The token is checked as Service Bus checks a connection-string token: key name, expiry, and the
 * HMAC-SHA256 signature of the URL-encoded resource and the expiry with the shared access key. A wrong key is
 * refused with 401, so a bad connection string fails locally as it would in Azure.
 */

export interface SharedAccessKey {
  name: string;
  key: string;
}

/** What a valid token grants on one connection: links to `path` and below until the token expires. */
export interface Claim {
  path: string;
  expiresAt: number;
}

const unauthorized = (why: string): EntityError => new EntityError('amqp:unauthorized-access', 401, why);

/** The entity path an audience or SAS resource names: `sb://host:port/Queue/$management` → `queue/$management`. */
export function entityPath(resource: string): string {
  return resource
    .replace(/^[a-z]+:\/\/[^/]*/i, '')
    .replace(/^\/+|\/+$/g, '')
    .toLowerCase();
}

/**
 * Answers a put-token request: the claim it grants, if any, and the reply's application properties (CBS replies
 * use `status-code`). A token for an entity the namespace does not have is refused with 404, as in Azure.
 */
export function putToken(
  request: Message,
  key: SharedAccessKey,
  exists: (path: string) => boolean
): { claim?: Claim; reply: Record<string, unknown> } {
  try {
    const claim = verifyPutToken(request, key);
    if (!exists(claim.path))
      throw new EntityError('amqp:not-found', 404, `The messaging entity '${claim.path}' could not be found.`);
    return { claim, reply: { 'status-code': 202, 'status-description': 'Accepted' } };
  } catch (err) {
    if (!(err instanceof EntityError)) throw err;
    return {
      reply: { 'status-code': err.status, 'status-description': err.message, 'error-condition': err.condition },
    };
  }
}

function verifyPutToken(request: Message, key: SharedAccessKey, now = Date.now()): Claim {
  const props = request.application_properties ?? {};
  const audience: unknown = props.name;
  if (props.operation !== 'put-token' || typeof audience !== 'string')
    throw new EntityError('com.microsoft:argument-error', 400, 'expected a put-token request naming an audience');
  if (props.type !== 'servicebus.windows.net:sastoken')
    throw unauthorized(`token type ${String(props.type)} is not supported here: use a connection string (SAS)`);
  const token: unknown = request.body;
  if (typeof token !== 'string' || !token.startsWith('SharedAccessSignature '))
    throw unauthorized('the token is not a shared access signature');

  const fields = new Map(
    token
      .slice('SharedAccessSignature '.length)
      .split('&')
      .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)] as const)
  );
  const sr = fields.get('sr') ?? '';
  const se = fields.get('se') ?? '';
  const expiresAt = Number(se) * 1000;
  if (decodeURIComponent(fields.get('skn') ?? '') !== key.name)
    throw unauthorized(`InvalidSignature: no shared access key named '${fields.get('skn')}'.`);
  if (!/^\d+$/.test(se) || expiresAt <= now) throw unauthorized('ExpiredToken: the token has expired');
  const expected = createHmac('sha256', key.key).update(`${sr}\n${se}`).digest();
  const given = Buffer.from(decodeURIComponent(fields.get('sig') ?? ''), 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    throw unauthorized('InvalidSignature: The token has an invalid signature.');

  // A token for a resource covers it and everything below (a namespace token covers every entity).
  const granted = entityPath(decodeURIComponent(sr));
  const path = entityPath(audience);
  if (!covers(granted, path)) throw unauthorized(`the token is for '${granted}', not '${path}'`);
  return { path, expiresAt };
}

const covers = (granted: string, path: string): boolean =>
  granted === '' || path === granted || path.startsWith(`${granted}/`);

/** Whether a live claim on the connection covers a link to `path`. */
export const isAuthorized = (claims: Iterable<Claim>, path: string, now = Date.now()): boolean =>
  [...claims].some((c) => c.expiresAt > now && covers(c.path, path));
