import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { errorFields, errorKind } from '../controller/core/error-fields.ts';

const withCode = (code: unknown, message = 'the request said +33612345678'): Error => Object.assign(new Error(message), { code });
class GatewayLikeError extends Error {
  override name = 'GatewayError';
  readonly code = 'ERR_GATEWAY_AUTH';
}

const kind = suite('errorKind');

const cases: { name: string; err: unknown; want: { name: string; code?: string } }[] = [
  { name: 'an error with a string code', err: withCode('ECONNREFUSED'), want: { name: 'Error', code: 'ECONNREFUSED' } },
  { name: 'a numeric code, as text', err: withCode(503), want: { name: 'Error', code: '503' } },
  { name: 'the code of its cause when it has none', err: new Error('outer', { cause: withCode('ETIMEDOUT') }), want: { name: 'Error', code: 'ETIMEDOUT' } },
  { name: 'a code that is neither text nor number is left out', err: withCode({ nested: true }), want: { name: 'Error' } },
  { name: "a subclass's name and code", err: new GatewayLikeError('refused for +33612345678'), want: { name: 'GatewayError', code: 'ERR_GATEWAY_AUTH' } },
  { name: 'something thrown that is not an error', err: 'a string', want: { name: 'Error' } },
  { name: 'nothing', err: undefined, want: { name: 'Error' } },
];
for (const c of cases) {
  kind(c.name, () => {
    assert.equal(errorKind(c.err), c.want);
    assert.not.ok(JSON.stringify(errorKind(c.err)).includes('+336'), 'never the message');
  });
}
kind.run();

const fields = suite('errorFields');

fields('is errorKind with the message, cut to 300 characters', () => {
  assert.equal(errorFields(withCode('EPIPE', 'broken pipe')), { name: 'Error', code: 'EPIPE', message: 'broken pipe' });
  assert.is(errorFields(new Error('x'.repeat(1000))).message?.length, 300);
  assert.equal(errorFields(undefined), { name: 'Error' });
});

fields.run();
