/**
 * JSON.parse keeps the last of two equal keys in one object, while other parsers keep the first or refuse the
 * text: `{"bankId":"BANK-B",…,"bankId":"BANK-A"}` would be another bank's event to a parser upstream. This finds
 * such a key, at any depth, in a text that JSON.parse has already accepted.
 */

export interface DuplicateKey {
  /** The keys leading to the object that holds the duplicate (`*` for an array element). */
  path: string[];
  key: string;
  /** 1-based positions of the first and the second occurrence among that object's fields. */
  positions: [number, number];
}

interface Container {
  /** Keys seen so far with their positions; undefined for an array. */
  keys?: Map<string, number>;
  fields: number;
  path: string[];
  /** The key whose value is being read, for the path of a nested container. */
  lastKey?: string;
}

const JSON_WHITESPACE = new Set([' ', '\t', '\n', '\r']);

export function findDuplicateKey(text: string): DuplicateKey | undefined {
  const open: Container[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = open.at(-1);
    if (c === '"') {
      const end = stringEnd(text, i);
      let next = end + 1;
      while (JSON_WHITESPACE.has(text[next]!)) next++;
      if (top?.keys && text[next] === ':') {
        const key = JSON.parse(text.slice(i, end + 1)) as string; // unescaped: "a" and "\u0061" are one key
        const position = ++top.fields;
        const first = top.keys.get(key);
        if (first !== undefined) return { path: top.path, key, positions: [first, position] };
        top.keys.set(key, position);
        top.lastKey = key;
      }
      i = end;
    } else if (c === '{' || c === '[') {
      const segment = top === undefined ? [] : [top.keys ? top.lastKey! : '*'];
      open.push({ keys: c === '{' ? new Map() : undefined, fields: 0, path: [...(top?.path ?? []), ...segment] });
    } else if (c === '}' || c === ']') {
      open.pop();
    }
  }
  return undefined;
}

/** The index of the quote that closes the string opening at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  throw new Error('unterminated string: findDuplicateKey expects a text JSON.parse accepted');
}
