import { DiagnosticCode, type Finding } from './diagnostics.ts';

/** The placeholders a text may use; [Code] is required exactly once. */
export const PLACEHOLDERS = ['Code', 'User', 'Minutes'] as const;

/** Values substituted into a text. */
export interface TextValues {
  code: string;
  user: string;
  minutes: number;
}

/** The encoding an SMS needs. */
export type SmsEncoding = 'GSM-7' | 'UCS-2';

/** SmsSize is how a text travels: its encoding, its length in that encoding's units and its segments. */
export interface SmsSize {
  encoding: SmsEncoding;
  /** Septets for GSM-7, UTF-16 code units for UCS-2. */
  units: number;
  segments: number;
}

// GSM 03.38 default alphabet (one septet each) and its extension table (escape + one septet).
const GSM_BASIC = new Set('@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà');
const GSM_EXTENSION = new Set('^{}\\[~]|€\f');

// Letters that look like Latin ones, folded when checking for misspelled placeholders.
const CONFUSABLES: Record<string, string> = {
  а: 'a',
  с: 'c',
  ԁ: 'd',
  е: 'e',
  һ: 'h',
  і: 'i',
  ј: 'j',
  к: 'k',
  м: 'm',
  о: 'o',
  р: 'p',
  ѕ: 's',
  т: 't',
  у: 'y',
  х: 'x',
  ս: 'u',
  ο: 'o',
  ε: 'e',
  ι: 'i',
  κ: 'k',
  μ: 'm',
  ν: 'v',
  τ: 't',
  υ: 'u',
  ρ: 'p',
  α: 'a',
  ı: 'i',
  ℓ: 'l',
  '0': 'o',
  '1': 'l',
};

/** smsSize measures a text as a gateway will send it: GSM-7 when every character is in the GSM alphabet, else UCS-2. */
export function smsSize(text: string): SmsSize {
  let septets = 0;
  const parts: number[] = [];
  let gsm = true;
  for (const ch of text) {
    if (GSM_BASIC.has(ch)) parts.push(1);
    else if (GSM_EXTENSION.has(ch)) parts.push(2);
    else {
      gsm = false;
      break;
    }
  }
  if (gsm) {
    for (const p of parts) septets += p;
    return { encoding: 'GSM-7', units: septets, segments: countSegments(parts, septets, 160, 153) };
  }
  const units: number[] = [];
  for (const ch of text) units.push(ch.length);
  const total = text.length;
  return { encoding: 'UCS-2', units: total, segments: countSegments(units, total, 70, 67) };
}

// Concatenated parts cannot split an escape sequence or a surrogate pair, so fill greedily by character.
function countSegments(sizes: readonly number[], total: number, single: number, perPart: number): number {
  if (total === 0) return 0;
  if (total <= single) return 1;
  let segments = 1;
  let used = 0;
  for (const s of sizes) {
    if (used + s > perPart) {
      segments += 1;
      used = 0;
    }
    used += s;
  }
  return segments;
}

interface PlaceholderToken {
  raw: string;
  inner: string;
}

function scanTokens(text: string): PlaceholderToken[] {
  const tokens: PlaceholderToken[] = [];
  // ASCII and full-width brackets; a token is short and on one line.
  for (const m of text.matchAll(/[[［]([^[\]［］\n]{0,40})[\]］]/g)) tokens.push({ raw: m[0], inner: m[1] ?? '' });
  return tokens;
}

function skeleton(s: string): string {
  const folded = s
    .normalize('NFKC')
    .replace(/[\p{Default_Ignorable_Code_Point}\s_-]/gu, '')
    .toLowerCase();
  let out = '';
  for (const ch of folded) out += CONFUSABLES[ch] ?? ch;
  return out;
}

/**
 * checkText applies the text rules of the brief to one text: [Code] exactly once, spelled exactly
 * (look-alikes such as [CODE], [code] or a Cyrillic С are named), and no unknown placeholder.
 * pointer locates the text in its object.
 */
export function checkText(text: string, pointer: string): Finding[] {
  const findings: Finding[] = [];
  let codeCount = 0;
  let misspelledCode = false;
  for (const t of scanTokens(text)) {
    const exact = t.raw.startsWith('[') && t.raw.endsWith(']') && (PLACEHOLDERS as readonly string[]).includes(t.inner);
    if (exact) {
      if (t.inner === 'Code') codeCount += 1;
      continue;
    }
    const meant = PLACEHOLDERS.find((p) => skeleton(p) === skeleton(t.inner));
    if (meant !== undefined) {
      if (meant === 'Code') misspelledCode = true;
      findings.push({
        code: DiagnosticCode.PlaceholderMisspelled,
        severity: 'error',
        pointer,
        message: `placeholder ${JSON.stringify(t.raw)} is not spelled exactly; write [${meant}] (ASCII brackets, this capitalisation)`,
      });
    } else if (/^[\p{L}\p{N}_ .-]{1,40}$/u.test(t.inner)) {
      findings.push({
        code: DiagnosticCode.PlaceholderUnknown,
        severity: 'error',
        pointer,
        message: `unknown placeholder ${JSON.stringify(t.raw)}; the placeholders are [Code], [User] and [Minutes]`,
      });
    }
  }
  if (codeCount === 0 && !misspelledCode) {
    const other = /\{\{?\s*code\s*\}?\}|%code%|\$\{?code\}?|<code>/i.exec(text);
    findings.push({
      code: DiagnosticCode.CodePlaceholderMissing,
      severity: 'error',
      pointer,
      message:
        other !== null
          ? `the text has no [Code] placeholder (${JSON.stringify(other[0])} is not one); write [Code] where the code goes`
          : 'the text has no [Code] placeholder; add [Code] where the code goes',
    });
  } else if (codeCount > 1) {
    findings.push({
      code: DiagnosticCode.CodePlaceholderRepeated,
      severity: 'error',
      pointer,
      message: `[Code] appears ${codeCount} times; it must appear exactly once`,
    });
  }
  return findings;
}

/** renderText substitutes the placeholders and, with an origin-bound domain, appends the WebOTP line '@domain #code'. */
export function renderText(text: string, values: TextValues, originBoundDomain?: string): string {
  const body = text.replace(/\[(Code|User|Minutes)\]/g, (_, name: string) =>
    name === 'Code' ? values.code : name === 'User' ? values.user : String(values.minutes),
  );
  return originBoundDomain === undefined ? body : `${body}\n\n@${originBoundDomain} #${values.code}`;
}

/** LONGEST_CODE is the widest code the schema allows, used to size texts for the worst case. */
export const LONGEST_CODE = '0000000000';
/** SIZING_USER stands for a user name when a text is sized before sending (20 characters). */
export const SIZING_USER = 'u'.repeat(20);

/** sizeTemplateText sizes a text rendered with a code of codeLength digits and a 20-character user name. */
export function sizeTemplateText(text: string, codeLength: number, minutes: number, originBoundDomain?: string): SmsSize {
  return smsSize(renderText(text, { code: LONGEST_CODE.slice(0, codeLength), user: SIZING_USER, minutes }, originBoundDomain));
}
