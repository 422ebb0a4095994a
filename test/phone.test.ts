import fc from 'fast-check';
import { getCountries, getCountryCallingCode, getExampleNumber, parsePhoneNumberWithError } from 'libphonenumber-js/max';
import examples from 'libphonenumber-js/mobile/examples';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lastDigits, maskNumber, normalizeNumber, numberPrefix, REFUSED_TYPES } from '../controller/core/phone.ts';

test('mask and prefix split every country’s example mobile number as libphonenumber’s parse does', () => {
  let checked = 0;
  for (const country of getCountries()) {
    const example = getExampleNumber(country, examples);
    if (example === undefined) continue;
    const parsed = parsePhoneNumberWithError(example.number);
    assert.is(maskNumber(example.number), `+${parsed.countryCallingCode} ${'•'.repeat(parsed.nationalNumber.length)}`, country);
    assert.is(numberPrefix(example.number), `+${parsed.countryCallingCode}${parsed.nationalNumber.slice(0, 3)}`, country);
    checked++;
  }
  assert.ok(checked > 200, `${checked} countries checked`);
});

test('non-geographic calling codes (3 digits) and malformed input', () => {
  assert.is(maskNumber('+80012345678'), '+800 ••••••••');
  assert.is(numberPrefix('+80012345678'), '+800123');
  for (const bad of ['', '+', '+1', '33612345678', '+33 6 12', '+9999999999999999']) assert.is(maskNumber(bad), '+•••');
});

test('a mask never shows the last four digits, which are the authentication challenge', () => {
  const n = normalizeNumber('+33 6 12 34 56 78', null);
  assert.ok(n.ok);
  if (!n.ok) return;
  assert.not.ok(maskNumber(n.value.e164).includes(lastDigits(n.value.e164)));
  assert.not.match(maskNumber(n.value.e164), /\d{2,}\s*$/);
});

test('a number is refused or accepted as libphonenumber’s isValid, then getType, say', () => {
  // The reference: the library's own verdicts, asked one after the other.
  const expected = (input: string): string => {
    let parsed;
    try {
      parsed = parsePhoneNumberWithError(input);
    } catch {
      return 'invalid-number';
    }
    if (!parsed.isValid() || parsed.country === undefined) return 'invalid-number';
    const type = parsed.getType();
    return (type !== undefined && REFUSED_TYPES[type]) || `ok ${parsed.number}`;
  };
  const codes = [...new Set(getCountries().map((c) => getCountryCallingCode(c)))];
  const seen = new Set<string>();
  fc.assert(
    fc.property(fc.constantFrom(...codes), fc.stringMatching(/^\d{4,12}$/), (code, digits) => {
      const input = `+${code}${digits}`;
      const n = normalizeNumber(input, null);
      const verdict = n.ok ? `ok ${n.value.e164}` : n.reason;
      seen.add(verdict.split(' ')[0]!);
      assert.is(verdict, expected(input), input);
    }),
    { numRuns: 5000 },
  );
  // The draw reaches valid numbers and refused types, not only invalid ones.
  assert.ok(seen.has('ok') && seen.has('invalid-number') && seen.has('not-mobile'), [...seen].join(', '));
});

test.run();
