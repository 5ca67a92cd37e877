/**
 * The `?` placeholders the Store port takes, rewritten to PostgreSQL's `$1..$n`. A scanner, not a
 * parser: it knows just enough of PostgreSQL's lexical rules to leave alone a `?` that is not a
 * placeholder.
 */

const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;

/**
 * Rewrites `?` placeholders to `$1..$n`, leaving alone those inside 'strings' (E'' with backslash
 * escapes too), "identifiers", $tag$ dollar quotes $tag$, -- line comments and nested block comments.
 */
export function toPostgresPlaceholders(sql: string): { text: string; count: number } {
  let out = '';
  let count = 0;
  let i = 0;
  let from = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    if (c === '?') {
      out += `${sql.slice(from, i)}$${++count}`;
      i++;
      from = i;
    } else if (c === "'") {
      const prev = sql[i - 1];
      const escapes = (prev === 'E' || prev === 'e') && !IDENT_CHAR.test(sql[i - 2] ?? ' ');
      i = skipQuoted(sql, i + 1, "'", escapes);
    } else if (c === '"') {
      i = skipQuoted(sql, i + 1, '"', false);
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? n : end + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      i = skipBlockComment(sql, i + 2);
    } else if (c === '$' && !IDENT_CHAR.test(sql[i - 1] ?? ' ')) {
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 64));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? n : end + tag[0].length;
      } else {
        i++;
      }
    } else {
      i++;
    }
  }
  return count === 0 ? { text: sql, count } : { text: out + sql.slice(from), count };
}

function skipQuoted(sql: string, i: number, quote: string, backslashEscapes: boolean): number {
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    if (backslashEscapes && c === '\\') {
      i += 2;
    } else if (c === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else {
      i++;
    }
  }
  return n;
}

function skipBlockComment(sql: string, i: number): number {
  let depth = 1;
  const n = sql.length;
  while (i < n && depth > 0) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
    } else {
      i++;
    }
  }
  return i;
}
