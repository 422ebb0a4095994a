/**
 * Distinguished names as RFC 4514 writes them, compared as names, never as strings: an escaped
 * comma (`CN=Smith\, John`) is part of a value, `\4A` is `J`, attribute types and values compare
 * without case (as Active Directory and the usual LDAP matching rules do), and spaces around `,`,
 * `=` and `+` do not count.
 */

/** Rdn is one relative distinguished name: its attribute=value pairs (several with `+`), folded for comparison and sorted. */
export type Rdn = readonly string[];

/** parseDn reads a DN into its RDNs, leftmost (the entry itself) first; undefined when it is not a DN. */
export function parseDn(dn: string): Rdn[] | undefined {
  const rdns: Rdn[] = [];
  let pairs: string[] = [];
  let i = 0;
  const text = dn.trim();
  if (text === '') return [];
  while (i <= text.length) {
    // attribute type
    const eq = text.indexOf('=', i);
    if (eq < 0) return undefined;
    const type = text
      .slice(i, eq)
      .trim()
      .toLowerCase()
      .replace(/^oid\./, '');
    if (!/^([a-z][a-z0-9-]*|\d+(\.\d+)*)$/.test(type)) return undefined;
    i = eq + 1;
    // attribute value, up to an unescaped , or + (or the end)
    const value = readValue(text, i);
    if (value === undefined) return undefined;
    pairs.push(`${type}=${value.value}`);
    i = value.end;
    const sep = text[i];
    if (sep === '+') {
      i++;
      continue;
    }
    rdns.push([...pairs].sort());
    pairs = [];
    if (sep === undefined) break;
    if (sep !== ',' && sep !== ';') return undefined;
    i++;
  }
  return rdns;
}

function readValue(text: string, start: number): { value: string; end: number } | undefined {
  let i = start;
  while (text[i] === ' ') i++;
  if (text[i] === '#') {
    // A BER-encoded value in hex: compared as its hex, folded.
    const m = /^#[0-9a-fA-F]+/.exec(text.slice(i));
    if (m === null) return undefined;
    i += m[0].length;
    while (text[i] === ' ') i++;
    return { value: m[0].toLowerCase(), end: i };
  }
  const bytes: number[] = [];
  let trailingSpaces = 0;
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (c === ',' || c === '+' || c === ';') break;
    if (c === '\\') {
      const hex = /^[0-9a-fA-F]{2}/.exec(text.slice(i + 1, i + 3));
      if (hex !== null) {
        bytes.push(parseInt(hex[0], 16));
        i += 2;
      } else {
        const next = text[i + 1];
        if (next === undefined) return undefined;
        bytes.push(...Buffer.from(next, 'utf8'));
        i += 1;
      }
      trailingSpaces = 0;
      continue;
    }
    if (c === '"') return undefined; // RFC 2253 quoting: not a name this module accepts
    bytes.push(...Buffer.from(c, 'utf8'));
    trailingSpaces = c === ' ' ? trailingSpaces + 1 : 0;
  }
  const raw = Buffer.from(bytes.slice(0, bytes.length - trailingSpaces)).toString('utf8');
  // Insignificant spaces inside a value fold to one, as the LDAP string matching rules prepare them.
  return { value: raw.replace(/ +/g, ' ').toLowerCase(), end: i };
}

/** sameDn tells whether two DNs name the same entry. */
export function sameDn(a: string, b: string): boolean {
  const x = parseDn(a);
  const y = parseDn(b);
  return x !== undefined && y !== undefined && x.length === y.length && x.every((rdn, i) => sameRdn(rdn, y[i]!));
}

/** isWithin tells whether the entry named dn is the container itself or below it: the container's RDNs are the last ones of dn. */
export function isWithin(dn: string, container: string): boolean {
  const entry = parseDn(dn);
  const parent = parseDn(container);
  if (entry === undefined || parent === undefined || parent.length === 0 || parent.length > entry.length) return false;
  const offset = entry.length - parent.length;
  return parent.every((rdn, i) => sameRdn(rdn, entry[offset + i]!));
}

/** canonicalDn is a DN's comparison form (for map keys): equal for DNs that sameDn calls equal; undefined when it is not a DN. */
export function canonicalDn(dn: string): string | undefined {
  return parseDn(dn)
    ?.map((rdn) => rdn.map(escapeCanonical).join('+'))
    .join(',');
}

function sameRdn(a: Rdn, b: Rdn): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}

function escapeCanonical(pair: string): string {
  const eq = pair.indexOf('=');
  return `${pair.slice(0, eq)}=${pair.slice(eq + 1).replace(/[\\,+;"<>=#]/g, (c) => `\\${c}`)}`;
}

/** escapeFilterValue escapes a value for an LDAP search filter (RFC 4515): `*`, `(`, `)`, `\` and NUL as `\XX`. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
