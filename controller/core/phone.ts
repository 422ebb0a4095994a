import { Metadata, parsePhoneNumberWithError, type CountryCode } from 'libphonenumber-js/max';

/** Why a number is refused; stable codes for the API's error bodies. */
export type NumberRefusal = 'invalid-number' | 'country-not-allowed' | 'premium-rate' | 'shared-cost' | 'voip' | 'not-mobile';

/** NormalizedNumber is a number accepted for SMS: E.164 and its country. */
export interface NormalizedNumber {
  e164: string;
  country: string;
}

/** REFUSED_TYPES are the number types refused, and why: only mobiles (and numbers of no known type) are tied to a subscriber who can receive an SMS code. */
export const REFUSED_TYPES: Readonly<Record<string, NumberRefusal>> = {
  PREMIUM_RATE: 'premium-rate',
  SHARED_COST: 'shared-cost',
  VOIP: 'voip',
  TOLL_FREE: 'not-mobile',
  FIXED_LINE: 'not-mobile',
  PAGER: 'not-mobile',
  UAN: 'not-mobile',
  VOICEMAIL: 'not-mobile',
};

const REFUSAL_TEXT: Record<NumberRefusal, string> = {
  'invalid-number': 'is not a valid phone number; give it in international format, such as +33 6 12 34 56 78',
  'country-not-allowed': 'belongs to a country this identity store does not accept',
  'premium-rate': 'is a premium-rate number; give a mobile number',
  'shared-cost': 'is a shared-cost number; give a mobile number',
  voip: 'is a VoIP number; give a mobile number',
  'not-mobile': 'cannot receive SMS (a landline, toll-free or other non-mobile number); give a mobile number',
};

/**
 * normalizeNumber accepts a number in any common format (+33 6 12..., 0033..., national with a
 * default country), normalises it to E.164 with libphonenumber's full metadata, and refuses
 * invalid numbers, countries outside allowedCountries (null: any) and premium-rate, shared-cost,
 * VoIP and non-mobile numbers. Messages never repeat the number.
 */
export function normalizeNumber(
  input: string,
  allowedCountries: readonly string[] | null,
  defaultCountry?: string,
): { ok: true; value: NormalizedNumber } | { ok: false; reason: NumberRefusal; message: string } {
  const refuse = (reason: NumberRefusal): { ok: false; reason: NumberRefusal; message: string } => ({
    ok: false,
    reason,
    message: `the number ${REFUSAL_TEXT[reason]}`,
  });
  const cleaned = input.trim().replace(/^00/, '+');
  if (cleaned.length === 0 || cleaned.length > 32 || !/^[+\d\s().\-/]+$/.test(cleaned)) return refuse('invalid-number');
  let parsed;
  try {
    parsed = parsePhoneNumberWithError(cleaned, defaultCountry as CountryCode | undefined);
  } catch {
    return refuse('invalid-number');
  }
  // A number with a type is valid (with the full metadata, isValid is "getType found one" wherever
  // a country has types), and each walks the country's patterns: the type is read first, and
  // validity asked only of a number without one.
  const type = parsed.getType();
  if ((type === undefined && !parsed.isValid()) || parsed.country === undefined) return refuse('invalid-number');
  if (allowedCountries !== null && !allowedCountries.includes(parsed.country)) return refuse('country-not-allowed');
  if (type !== undefined && REFUSED_TYPES[type] !== undefined) return refuse(REFUSED_TYPES[type]);
  return { ok: true, value: { e164: parsed.number, country: parsed.country } };
}

/**
 * maskNumber shows a number without revealing it: the country calling code and one dot per
 * remaining digit. It never shows the last four digits, since those are the authentication
 * challenge (lastDigitsChallenge).
 */
export function maskNumber(e164: string): string {
  const split = splitNumber(e164);
  return split === undefined ? '+•••' : `+${split.callingCode} ${'•'.repeat(split.national.length)}`;
}

/** numberPrefix is the calling code and the first digits of a number, the key of per-prefix send limits (SMS pumping). */
export function numberPrefix(e164: string, nationalDigits = 3): string {
  const split = splitNumber(e164);
  return split === undefined ? e164.slice(0, 5) : `+${split.callingCode}${split.national.slice(0, nationalDigits)}`;
}

let metadata: { hasCallingCode(code: string): boolean | undefined } | undefined;

/**
 * splitNumber splits an E.164 number into its country calling code and national number. Calling
 * codes are prefix-free (ITU-T E.164), so the first one to 3 digits that the metadata knows is it:
 * no parse needed, which with the full metadata costs more than the rest of a response.
 */
function splitNumber(e164: string): { callingCode: string; national: string } | undefined {
  if (!/^\+\d{4,15}$/.test(e164)) return undefined;
  // hasCallingCode is in libphonenumber-js's Metadata, not in its type declarations.
  metadata ??= new Metadata() as unknown as { hasCallingCode(code: string): boolean | undefined };
  for (let n = 1; n <= 3; n++) {
    const code = e164.slice(1, 1 + n);
    if (metadata.hasCallingCode(code) === true) return { callingCode: code, national: e164.slice(1 + n) };
  }
  return undefined;
}

/** lastDigits returns the last n digits of a number. */
export function lastDigits(e164: string, n = 4): string {
  return e164.replace(/\D/g, '').slice(-n);
}
