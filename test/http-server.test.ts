import { Agent, request, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AnswerBatch, startHttpServer, type RunningServer } from '../controller/adapters/http-server.ts';
import type { HttpResponse, Route } from '../controller/core/http-route.ts';
import { Signal, waitUntil } from './helpers/wait.ts';

/** Gate holds handlers until it opens, then lets all of them go on in the same turn. */
class Gate {
  private open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.open = resolve));
  waiting = 0;
  readonly arrived = new Signal();
  /** Called by /now's handler as it answers, in its request's turn. */
  onNow: () => void = () => undefined;

  async pass(): Promise<void> {
    this.waiting++;
    this.arrived.fire();
    await this.opened;
  }

  release(): void {
    this.open();
  }
}

function echoRoutes(gate: Gate): Route[] {
  return [
    {
      method: 'GET',
      pattern: '/echo/:n',
      name: 'echo',
      auth: false,
      handler: async (_req, params): Promise<HttpResponse> => {
        await gate.pass();
        return { status: 200, body: { n: params.n } };
      },
    },
    {
      method: 'GET',
      pattern: '/now/:n',
      name: 'now',
      auth: false,
      handler: (_req, params): Promise<HttpResponse> => {
        gate.onNow();
        return Promise.resolve({ status: 200, body: { n: params.n } });
      },
    },
  ];
}

/** within fails a wait that outlasts ms, so that an answer lost fails the test instead of hanging the suite. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function get(url: string, agent: Agent): Promise<{ status: number; body: string }> {
  return within(
    10_000,
    `answer from ${url}`,
    new Promise((resolve, reject) => {
      const req = request(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    }),
  );
}

const test = suite<{ gate: Gate; server: RunningServer }>('http server: answers', {
  gate: undefined as unknown as Gate,
  server: undefined as unknown as RunningServer,
});
test.before.each(async (ctx) => {
  ctx.gate = new Gate();
  ctx.server = await startHttpServer(echoRoutes(ctx.gate), { host: '127.0.0.1', port: 0, log: pino({ level: 'silent' }) });
});
test.after.each(async (ctx) => {
  ctx.gate.release();
  await ctx.server.close(1000);
});

test('128 requests on 64 connections each get their own answer, decided at once or after waiting', async ({ gate, server }) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  // Answered in the turn they arrive in: those go out together at its end.
  const now = Array.from({ length: 64 }, (_, n) => get(`${server.url}/now/${n}`, agent));
  const answers = Array.from({ length: 64 }, (_, n) => get(`${server.url}/echo/${n}`, agent));
  // Every handler waits at the gate; opening it finishes all 64 in the same turn.
  await waitUntil(
    '64 handlers at the gate',
    () => gate.waiting === 64,
    () => gate.arrived.next(),
  );
  gate.release();
  assert.equal(
    (await Promise.all(now)).map((a) => a.body),
    Array.from({ length: 64 }, (_, n) => `{"n":"${n}"}`),
  );
  const got = await Promise.all(answers);
  assert.equal(
    got.map((a) => a.status),
    Array.from({ length: 64 }, () => 200),
  );
  assert.equal(
    got.map((a) => JSON.parse(a.body) as { n: string }),
    Array.from({ length: 64 }, (_, n) => ({ n: String(n) })),
  );
  agent.destroy();
});

test('pipelined requests on one connection are answered in their order, each whole', async ({ server }) => {
  const { port } = new URL(server.url);
  const socket = connect(Number(port), '127.0.0.1');
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (text += d));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const requests = [0, 1, 2, 3, 4].map((n) => `GET /now/${n} HTTP/1.1\r\nHost: x\r\n${n === 4 ? 'Connection: close\r\n' : ''}\r\n`);
  // One write: the server reads the five requests at once.
  socket.write(requests.join(''));
  await within(10_000, 'end of the connection', closed);
  const bodies = [...text.matchAll(/HTTP\/1\.1 200 OK[\s\S]*?\r\n\r\n(\{[^}]*\})/g)].map((m) => m[1]);
  assert.equal(bodies, ['{"n":"0"}', '{"n":"1"}', '{"n":"2"}', '{"n":"3"}', '{"n":"4"}'], text);
});

test('close lets a request in flight have its answer, then stops', async ({ gate, server }) => {
  const agent = new Agent({ keepAlive: true });
  const answer = get(`${server.url}/echo/7`, agent);
  await waitUntil(
    'the handler at the gate',
    () => gate.waiting === 1,
    () => gate.arrived.next(),
  );
  const closing = server.close(5000);
  gate.release();
  const got = await answer;
  assert.equal(got, { status: 200, body: '{"n":"7"}' });
  await within(10_000, 'close', closing);
  agent.destroy();
  const refused = await new Promise<boolean>((resolve) => {
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
  assert.ok(refused, 'nothing listens any more');
});

test('close called in the turn of an answer still waiting for its end: the answer goes out, then the server stops', async ({ gate, server }) => {
  const agent = new Agent({ keepAlive: true });
  let closing: Promise<void> | undefined;
  gate.onNow = () => {
    closing ??= server.close(5000);
  };
  assert.equal(await get(`${server.url}/now/3`, agent), { status: 200, body: '{"n":"3"}' });
  await within(10_000, 'close', closing!);
  agent.destroy();
});

test.run();

/** fakeResponse stands for a ServerResponse: AnswerBatch only ends or destroys it. */
function fakeResponse(fails = false): { ended?: string; destroyed: boolean; res: ServerResponse } {
  const r: { ended?: string; destroyed: boolean; res: ServerResponse } = { destroyed: false, res: undefined as unknown as ServerResponse };
  r.res = {
    end(payload: string) {
      if (fails) throw new Error('cannot end');
      r.ended = payload;
    },
    destroy() {
      r.destroyed = true;
    },
  } as unknown as ServerResponse;
  return r;
}

/** endOfTurn resolves after the check phase's callbacks queued before it. */
const endOfTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const batch = suite('http server: AnswerBatch');

batch('answers decided in their arrival turn are ended together at its end; one decided in a later turn, at once', async () => {
  const answers = new AnswerBatch(() => assert.unreachable('no error'));
  const [a, b, late] = [fakeResponse(), fakeResponse(), fakeResponse()];
  for (const r of [a, b, late]) answers.arrived(r.res);
  answers.end(a.res, 'A');
  answers.end(b.res, 'B');
  const flushed = answers.flushed();
  assert.equal([a.ended, b.ended], [undefined, undefined], 'not before the turn ends');
  await endOfTurn();
  assert.equal([a.ended, b.ended], ['A', 'B']);
  await flushed;
  answers.end(late.res, 'C');
  assert.is(late.ended, 'C', 'decided after its turn: ended at once');
  assert.ok(await Promise.race([answers.flushed().then(() => true), endOfTurn().then(() => false)]), 'nothing waits');
});

batch('an answer that cannot be ended is reported and its response destroyed; the turn’s others are ended', async () => {
  const errors: unknown[] = [];
  const answers = new AnswerBatch((err) => errors.push(err));
  const [broken, fine] = [fakeResponse(true), fakeResponse()];
  answers.arrived(broken.res);
  answers.arrived(fine.res);
  answers.end(broken.res, 'X');
  answers.end(fine.res, 'Y');
  await answers.flushed();
  assert.ok(broken.destroyed);
  assert.is(fine.ended, 'Y');
  assert.is((errors[0] as Error).message, 'cannot end');
});

batch.run();
