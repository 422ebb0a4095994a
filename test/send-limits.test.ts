import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_SEND_LIMITS, neverBinding, resolveSendLimits } from '../controller/core/send-limits.ts';

const limits = suite('send limits');

limits('what a store leaves out keeps the defaults; perClient stays off unless declared', () => {
  assert.equal(resolveSendLimits({}), DEFAULT_SEND_LIMITS);
  assert.equal(resolveSendLimits({ perClient: { count: 20, window: '1h' } }).perClient, { limit: 20, windowMs: 3_600_000 });
});

limits('a narrower limit that can never refuse is named; one whose window does not divide the global one may bind', () => {
  const named = (declared: Parameters<typeof resolveSendLimits>[0]): string[] => neverBinding(resolveSendLimits(declared)).map((n) => n.name);
  assert.equal(named({ perUser: { count: 500, window: '1m' }, global: { count: 200, window: '1m' } }), ['perUser']);
  assert.equal(named({ perUser: { count: 500, window: '30s' }, global: { count: 200, window: '1m' } }), ['perUser']);
  assert.equal(named({ perUser: { count: 500, window: '45s' }, global: { count: 200, window: '1m' } }), [], '45s windows straddle the global ones');
  assert.equal(named({ perUser: { count: 500, window: '1h' }, global: { count: 200, window: '1m' } }), [], 'a longer window binds');
  assert.equal(named({}), []);
});

limits.run();
