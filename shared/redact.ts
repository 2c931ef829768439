/**
 * Endpoint URLs carry credentials: userinfo (`https://user:password@host`), API keys in the path (Infura's
 * `/v3/<key>`, Alchemy's `/v2/<key>`, QuickNode's `/<token>/`) and tokens in the query. Every URL or error text
 * the app prints, stores or sends as telemetry goes through here first, so none of them reaches a log, a table
 * or Application Insights. Redaction is textual, so a URL keeps its shape (and a message stays readable).
 */

export const MASK = '***';

/** A long run of URL-safe characters: a credential when it also looks random (see `looksLikeToken`). */
const TOKEN_SEGMENT = /^[A-Za-z0-9_\-.~+=%]{16,}$/;
/** A version segment (`v2`, `v3`): RPC providers put the project key right after it, whatever its length. */
const VERSION_SEGMENT = /^v\d+$/i;
/** Where a URL starts in free text, and where it ends (whitespace, quotes, brackets, separators). */
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'`<>()[\]{}\\,;]+/gi;
/** Keys of Azure connection strings (storage, Service Bus, Application Insights) and similar `Name=value` pairs. */
const CONNECTION_STRING_KEY =
  /\b(AccountKey|SharedAccessKey|SharedAccessSignature|InstrumentationKey|Password|Pwd|ClientSecret)=[^;\s"']+/gi;

/** One URL with its userinfo, query values, fragment and secret-looking path segments masked. */
export function redactUrl(url: string): string {
  const [beforeFragment = '', ...fragment] = url.split('#');
  const [beforeQuery = '', ...query] = beforeFragment.split('?');
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(beforeQuery)?.[0] ?? '';
  const [authority = '', ...segments] = beforeQuery.slice(scheme.length).split('/');
  return (
    scheme +
    redactAuthority(authority) +
    segments.map((segment, i) => `/${redactSegment(segment, segments[i - 1])}`).join('') +
    (query.length ? `?${redactQuery(query.join('?'))}` : '') +
    (fragment.length ? `#${MASK}` : '')
  );
}

/**
 * Every URL in a text (an error message quoting its request, a list of endpoints) redacted as by `redactUrl`,
 * and the key of every connection string in it (`AccountKey=`, `InstrumentationKey=`, …) masked.
 */
export function redactUrlsIn(text: string): string {
  return text
    .replace(URL_IN_TEXT, (url) => redactUrl(url))
    .replace(CONNECTION_STRING_KEY, (_, name: string) => `${name}=${MASK}`);
}

/** An error's message, safe to log or store: short, every URL and connection-string key in it redacted. */
export function errorMessage(err: unknown): string {
  if (!(err instanceof Error)) return redactUrlsIn(String(err));
  // An ethers error's `message` quotes the whole request: a batch's transaction runs to hundreds of KB and holds
  // credit records. Its short message and the node's own answer say what went wrong.
  const { shortMessage, info } = err as { shortMessage?: unknown; info?: { error?: { message?: unknown } } };
  if (typeof shortMessage !== 'string') return redactUrlsIn(err.message);
  const answer = info?.error?.message;
  return redactUrlsIn(typeof answer === 'string' ? `${shortMessage} (${answer})` : shortMessage);
}

/**
 * A copy of the error to send as telemetry (the original may be rethrown or inspected): its message as
 * errorMessage gives it, and its stack redacted with that message in place of the one it opens with.
 */
export function redactedError(error: Error): Error {
  const copy = new Error(errorMessage(error));
  copy.name = error.name;
  const opening = `${error.name}: ${error.message}`;
  const stack = error.stack?.startsWith(opening)
    ? `${copy.name}: ${copy.message}${error.stack.slice(opening.length)}`
    : error.stack;
  copy.stack = stack && redactUrlsIn(stack);
  return copy;
}

/** `user:password@host:port` → `***@host:port`. */
function redactAuthority(authority: string): string {
  const at = authority.lastIndexOf('@');
  return at < 0 ? authority : `${MASK}@${authority.slice(at + 1)}`;
}

function redactSegment(segment: string, previous: string | undefined): string {
  if (segment === '') return segment;
  const secret = looksLikeToken(segment) || (previous !== undefined && VERSION_SEGMENT.test(previous));
  return secret ? MASK : segment;
}

/**
 * Long and random-looking: with a digit, or mixed case. Names such as `pseudonymization-key` stay readable; a
 * generated key of 16+ characters has a digit or both cases all but always (hex keys: a digit, for certain).
 */
function looksLikeToken(segment: string): boolean {
  if (!TOKEN_SEGMENT.test(segment)) return false;
  return /\d/.test(segment) || (/[a-z]/.test(segment) && /[A-Z]/.test(segment));
}

/** Parameter names stay (they say what was sent); every value goes. */
function redactQuery(query: string): string {
  return query
    .split('&')
    .map((pair) => {
      if (pair === '') return pair;
      const eq = pair.indexOf('=');
      return eq < 0 ? MASK : `${pair.slice(0, eq)}=${MASK}`;
    })
    .join('&');
}
