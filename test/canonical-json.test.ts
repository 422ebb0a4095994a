import { createHash } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { canonicalJson, contentHash } from '../controller/core/bundle.ts';

const canonical = suite('canonical JSON (the hashed format)');

canonical("RFC 8785's example (section 3.2.2) comes out as JCS writes it", () => {
  const input = JSON.parse(String.raw`{
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  }`);
  assert.is(
    canonicalJson(input),
    String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f` + '\\n' + String.raw`A'B\"\\\\\"/"}`,
  );
});

canonical('keys sort by UTF-16 code units at every level; undefined members are absent, as JSON.stringify has them', () => {
  // U+1F600 is written D83D DE00: by code units it sorts before U+FB33, by code points after.
  assert.is(
    canonicalJson({ b: 1, a: { d: [1, undefined], c: undefined }, '\ufb33': 4, '\ud83d\ude00': 3, '\u20ac': 2 }),
    '{"a":{"d":[1,null]},"b":1,"\u20ac":2,"\ud83d\ude00":3,"\ufb33":4}',
  );
});

canonical('the hash of a value is stable across key order, and is a persisted format', () => {
  assert.is(contentHash({ a: 1, b: [true, 'x'] }), contentHash({ b: [true, 'x'], a: 1 }));
  // The hash is SHA-256 of exactly this text: a change here changes every bundle hash once.
  assert.is(contentHash({ a: 1, b: [true, 'x'] }), createHash('sha256').update('{"a":1,"b":[true,"x"]}').digest('hex'));
});

canonical.run();
