import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hashTag, keyTag, parseRedisTarget } from '../controller/core/redis-target.ts';
import { redisDisplay } from '../controller/cli/startup.ts';

test('one Redis: redis://, rediss:// and a socket path', () => {
  assert.equal(parseRedisTarget('redis://127.0.0.1:6379'), { kind: 'single', url: 'redis://127.0.0.1:6379' });
  assert.equal(parseRedisTarget('rediss://u:p@redis.example:6380/2'), { kind: 'single', url: 'rediss://u:p@redis.example:6380/2' });
  assert.equal(parseRedisTarget('/run/redis.sock'), { kind: 'single', url: '/run/redis.sock' });
  assert.ok('error' in parseRedisTarget('http://127.0.0.1:6379'));
  assert.ok('error' in parseRedisTarget('redis://'));
});

test('a Redis Cluster: seed nodes, credentials (a password may hold colons), TLS, IPv6, ?replicas', () => {
  assert.equal(parseRedisTarget('redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002/'), {
    kind: 'cluster',
    nodes: [
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 6379 },
      { host: '::1', port: 7002 },
    ],
    tls: false,
    replicas: 1,
  });
  assert.equal(parseRedisTarget('rediss+cluster://app:s%40cret:with:colons@h:7000?replicas=0'), {
    kind: 'cluster',
    nodes: [{ host: 'h', port: 7000 }],
    username: 'app',
    password: 's@cret:with:colons',
    tls: true,
    replicas: 0,
  });
  assert.equal(parseRedisTarget('redis+cluster://:only-password@h:7000'), {
    kind: 'cluster',
    nodes: [{ host: 'h', port: 7000 }],
    password: 'only-password',
    tls: false,
    replicas: 1,
  });
  assert.match((parseRedisTarget('redis+cluster://h:7000,h:99999') as { error: string }).error, 'its node 2 is not a host:port');
  assert.match((parseRedisTarget('redis+cluster://u:p%zz@h:7000') as { error: string }).error, 'has a % not followed by two hex digits');
  assert.match((parseRedisTarget('redis+cluster://h:7000?wait=1') as { error: string }).error, '?wait is not a setting');
  assert.match((parseRedisTarget('redis+cluster://h:7000?replicas=x') as { error: string }).error, '?replicas takes a number');
});

test('a cluster password may hold a raw @: the credentials end at the last one', () => {
  assert.equal(parseRedisTarget('redis+cluster://app:p@ss@h1:7000,h2:7000'), {
    kind: 'cluster',
    nodes: [
      { host: 'h1', port: 7000 },
      { host: 'h2', port: 7000 },
    ],
    username: 'app',
    password: 'p@ss',
    tls: false,
    replicas: 1,
  });
  // Whatever is wrong, the error repeats nothing of the URL.
  const error = (parseRedisTarget('redis+cluster://app:p@ss:x@h1:99999') as { error: string }).error;
  assert.is(error, 'its node 1 is not a host:port');
});

test('a Redis URL is printed without its credentials, wherever ioredis reads them (user info, ?password=)', () => {
  assert.is(redisDisplay('rediss+cluster://app:secret@h1:7000,h2:7000/'), 'rediss+cluster://h1:7000,h2:7000');
  assert.is(redisDisplay('redis+cluster://app:p@ss@h1:7000?replicas=2'), 'redis+cluster://h1:7000?replicas=2');
  assert.is(redisDisplay('redis://app:secret@redis.example:6380/2'), 'redis://redis.example:6380/2');
  assert.is(redisDisplay('redis://redis.example:6379/0?password=secret&db=1'), 'redis://redis.example:6379/0');
  assert.is(redisDisplay('/run/redis.sock?password=secret'), '/run/redis.sock');
  assert.is(redisDisplay('/run/redis.sock'), '/run/redis.sock');
});

test('hash tags: the first non-empty {…}, else the whole key', () => {
  assert.is(hashTag('smsauth:vr:{ns/st}/VE1'), 'ns/st');
  assert.is(hashTag('rl:account:{ns/acct}'), 'ns/acct');
  assert.is(hashTag('plain'), 'plain');
  assert.is(hashTag('a{}b{c}'), 'a{}b{c}');
  assert.is(hashTag('a{b'), 'a{b');
});

test('a store and an account are tagged by namespace and name: their keys hash as the tag', () => {
  assert.is(keyTag('ns', 'st'), '{ns/st}');
  assert.is(hashTag(`smsauth:vr:${keyTag('ns', 'st')}/VE1`), hashTag(`rl:user:${keyTag('ns', 'st')}:alice`));
  assert.is.not(hashTag(`rl:account:${keyTag('ns', 'gw')}`), hashTag(`rl:global:${keyTag('ns', 'st')}`));
});

test.run();
