import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { canonicalDn, escapeFilterValue, isWithin, parseDn, sameDn } from '../controller/core/dn.ts';

const same = suite('sameDn');
const sameCases: [string, string, boolean][] = [
  ['CN=Alice,OU=Staff,DC=acme,DC=example', 'cn=alice, ou=staff, dc=ACME, dc=example', true],
  ['CN=Smith\\, John,OU=Staff,DC=acme', 'cn=smith\\2c john,ou=staff,dc=acme', true],
  ['CN=Smith\\, John,OU=Staff,DC=acme', 'CN=Smith,John,OU=Staff,DC=acme', false],
  ['CN=Jos\\C3\\A9,DC=acme', 'cn=josé,dc=acme', true],
  ['cn=a+uid=b,dc=x', 'uid=b+cn=a,dc=x', true],
  ['CN=  two   spaces ,DC=x', 'cn=two spaces,dc=x', true],
  ['CN=trailing\\ ,DC=x', 'cn=trailing,dc=x', false],
  ['2.5.4.3=a,dc=x', 'oid.2.5.4.3=a,dc=x', true],
  ['CN=a,DC=x', 'CN=a,DC=x,DC=y', false],
  ['not a dn', 'not a dn', false],
];
for (const [a, b, want] of sameCases) same(`${a} vs ${b}: ${want}`, () => assert.is(sameDn(a, b), want));
same.run();

const within = suite('isWithin');
const withinCases: [string, string, boolean][] = [
  ['CN=Alice,OU=Staff,DC=acme,DC=example', 'OU=Staff,DC=acme,DC=example', true],
  ['CN=Alice,OU=Staff,DC=acme,DC=example', 'ou=staff,dc=acme,dc=example', true],
  ['OU=Staff,DC=acme,DC=example', 'OU=Staff,DC=acme,DC=example', true],
  // The escaped comma is part of the CN: this user is not in OU=Staff (a string suffix says it is).
  ['CN=Smith\\, OU=Staff,DC=acme,DC=example', 'OU=Staff,DC=acme,DC=example', false],
  ['CN=Alice,OU=Staff Two,DC=acme,DC=example', 'OU=Staff,DC=acme,DC=example', false],
  ['CN=Alice,OU=MyStaff,DC=acme,DC=example', 'OU=Staff,DC=acme,DC=example', false],
  ['CN=Alice,DC=example', 'OU=Staff,DC=acme,DC=example', false],
  ['CN=Alice,DC=example', '', false],
];
for (const [dn, container, want] of withinCases) within(`${dn} in ${container}: ${want}`, () => assert.is(isWithin(dn, container), want));
within.run();

const parse = suite('parseDn');
parse('refuses what is not a DN', () => {
  for (const bad of ['no equals sign', 'CN=a,', '=a,dc=x', 'CN=a\\', 'CN="quoted",DC=x', 'CN=#zz,DC=x']) assert.is(parseDn(bad), undefined, bad);
});
parse('the canonical form is a key: equal for the same name', () => {
  assert.is(canonicalDn('CN=Smith\\, John , OU=Staff'), canonicalDn('cn=smith\\2C john,ou=staff'));
  assert.is.not(canonicalDn('CN=Smith\\, John,OU=Staff'), canonicalDn('CN=Smith,CN=John,OU=Staff'));
});
parse.run();

const filter = suite('escapeFilterValue (RFC 4515)');
filter('escapes what would change a filter', () => {
  assert.is(escapeFilterValue('al*ice)(uid=*'), 'al\\2aice\\29\\28uid=\\2a');
  assert.is(escapeFilterValue('a\\b\0'), 'a\\5cb\\00');
  assert.is(escapeFilterValue('josé'), 'josé');
});
filter.run();
