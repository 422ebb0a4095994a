import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { postEvent } from '../adapters/event-sink.ts';
import { buildBundle, endpointHost, EVENT_TYPES, type EventsBundle, type EventType } from '../core/bundle.ts';
import { parseDuration } from '../core/duration.ts';
import { DEFAULT_NAMESPACE } from '../core/object-key.ts';
import type { IdentityStore } from '../generated/kinds.ts';
import { resolveRefs } from '../runtime/credentials.ts';
import { bundleFileName, parseBundleFile } from '../runtime/bundle-secret.ts';
import { openStateStore, StoreOpenError, type OpenedStore } from '../runtime/open-state-store.ts';
import { cloudEventsOf, parseSigningSecret, shortTypeOf, webhookHeaders, type CloudEvent } from '../verifier/events.ts';
import type { StateStore } from '../verifier/state-store.ts';
import type { HistoryEvent } from '../verifier/types.ts';
import { StartupError, UsageError, type CliIo } from './cli-io.ts';
import { FOLDER_FLAGS, FOLDER_USAGE, loadFolderWithSecrets } from './folder.ts';
import { checkRedisUrl, requireFolder, requireStoreAnswers } from './startup.ts';

/** EVENTS_USAGE is the help text of `smsauth events`. */
export const EVENTS_USAGE = `Usage: smsauth events replay NAMESPACE/STORE --since TIME [--until TIME] [options]

Sends an identity store's events again, from its history, to its events endpoint
(spec.events): oldest first, signed as deliveries are, each with the id it had the first time
(receivers that keep ids see a replay as what it is). For a receiver that lost events: after
a restore, or past the day a delivery is retried. Stops at the first event the receiver does
not accept and says how to resume.

History holds verifications approved and failed, lockouts and enrollment changes; a replayed
user.locked_out has no lockedUntil, and fraud.prefix_blocked is not in history (the metric
smsauth_fraud_guard_total and the logs have it).

The endpoint, from one of:
${FOLDER_USAGE}
      --bundle-dir DIR     the mounted smsauth-bundle Secret (as smsauth sidecar reads it)
The history, from one of:
      --state-dir DIR      smsauth run's state folder: DIR/state.sqlite (default .smsauth)
      --state FILE         a SQLite state file
      --redis URL          the sidecars' Redis

Options:
      --since TIME         from this time: RFC 3339 (2026-12-04T10:00:00Z) or a duration ago (90m, 6h)
      --until TIME         before this time (default now)
      --types LIST         only these types, comma-separated (default: the endpoint's)
      --dry-run            list the events, send nothing

Exit status: 0 all sent (or listed), 1 the receiver did not accept one, 2 usage error, no
such store or no endpoint.
`;

/** runEvents is `smsauth events`; it returns the exit status. */
export async function runEvents(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...FOLDER_FLAGS,
      dir: { type: 'string' },
      'bundle-dir': { type: 'string' },
      'state-dir': { type: 'string', default: '.smsauth' },
      state: { type: 'string' },
      redis: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      types: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  const [action, target, ...extra] = positionals;
  if (action !== 'replay' || target === undefined || extra.length > 0) throw new UsageError('use: smsauth events replay NAMESPACE/STORE --since TIME');
  const [namespace, name] = target.includes('/') ? (target.split('/', 2) as [string, string]) : [DEFAULT_NAMESPACE, target];
  const now = Date.now();
  if (values.since === undefined) throw new UsageError('--since is required: a time (RFC 3339) or a duration ago (6h)');
  const since = timeOf('--since', values.since, now);
  const until = values.until === undefined ? now : timeOf('--until', values.until, now);
  if (until <= since) throw new UsageError('--until must be after --since');
  if (values.dir !== undefined && values['bundle-dir'] !== undefined) throw new UsageError('give --dir or --bundle-dir, not both');

  const endpoint =
    values['bundle-dir'] !== undefined
      ? await fromBundleDir(values['bundle-dir'], name)
      : await fromFolder(values.dir ?? '.', values['secrets-dir'], namespace, name);
  if (!endpoint.ok) {
    io.stderr(`smsauth events: ${namespace}/${name}: ${endpoint.error}\n`);
    return 2;
  }
  const types = values.types === undefined ? endpoint.events.types : typesOf(values.types);
  const key = parseSigningSecret(endpoint.secret);
  if (!key.ok) {
    io.stderr(`smsauth events: ${namespace}/${name}: spec.events.signingSecret ${key.error}\n`);
    return 2;
  }

  const store = await openStore(values);
  try {
    const history = await historyBetween(store, namespace, name, since, until);
    const events = history.flatMap((e) => cloudEventsOf(namespace, name, { kind: 'history', event: e })).filter((c) => types.includes(shortTypeOf(c)));
    const target = endpointHost(endpoint.events.url);
    if (values['dry-run']) {
      for (const c of events) io.stdout(`${c.time}  ${shortTypeOf(c).padEnd(22)} ${c.subject}  ${c.id}\n`);
      io.stdout(`${events.length} event${events.length === 1 ? '' : 's'} from ${history.length} history entries would go to ${target}\n`);
      return 0;
    }
    let sent = 0;
    for (const c of events) {
      const answer = await send(endpoint.events.url, key.key, c);
      if (!answer.ok) {
        io.stderr(
          `smsauth events: ${target} did not accept ${c.id} (${shortTypeOf(c)}, ${c.time}): ${answer.problem}; ${sent} of ${events.length} sent; resume with --since ${c.time}\n`,
        );
        return 1;
      }
      sent += 1;
    }
    io.stdout(`replayed ${sent} event${sent === 1 ? '' : 's'} from ${history.length} history entries to ${target}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

/** timeOf reads a time flag: RFC 3339, or a duration before now. */
function timeOf(flag: string, text: string, now: number): number {
  const ago = parseDuration(text);
  if (ago !== undefined) return now - ago;
  const at = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(at)) throw new UsageError(`${flag} takes a time (2026-12-04T10:00:00Z) or a duration ago (6h)`);
  return at;
}

function typesOf(list: string): EventType[] {
  const types = list.split(',').map((t) => t.trim());
  for (const t of types) if (!(EVENT_TYPES as readonly string[]).includes(t)) throw new UsageError(`--types: ${t} is not one of ${EVENT_TYPES.join(', ')}`);
  return types as EventType[];
}

type Endpoint = { ok: true; events: EventsBundle; secret: string } | { ok: false; error: string };

/** fromFolder reads the store's endpoint and its secret from a folder of resources, as smsauth run does. */
async function fromFolder(dir: string, secretsDir: string | undefined, namespace: string, name: string): Promise<Endpoint> {
  const { result, values } = await loadFolderWithSecrets(dir, secretsDir);
  const store = result.valid
    .map((v) => v.object)
    .find((o): o is IdentityStore => o.kind === 'IdentityStore' && (o.metadata.namespace ?? DEFAULT_NAMESPACE) === namespace && o.metadata.name === name);
  if (store === undefined) return { ok: false, error: `no valid IdentityStore of that name in ${dir}` };
  const events = buildBundle({ store, template: undefined, gateways: [], roles: [], smsOffered: false, smsReason: '' }).events;
  if (events === undefined) return { ok: false, error: 'the store has no events endpoint (spec.events)' };
  const secret = resolveRefs(namespace, { signingSecret: events.signingSecret }, values);
  if (!secret.ok) return { ok: false, error: `spec.events.signingSecret: key ${events.signingSecret.key} of Secret ${events.signingSecret.name} not found` };
  return { ok: true, events, secret: secret.values.signingSecret! };
}

/** fromBundleDir reads the store's endpoint and its secret from the mounted bundle Secret, as smsauth sidecar does. */
async function fromBundleDir(dir: string, name: string): Promise<Endpoint> {
  await requireFolder('--bundle-dir', dir);
  let text: string;
  try {
    text = await readFile(join(dir, bundleFileName(name)), 'utf8');
  } catch {
    return { ok: false, error: `no bundle file ${bundleFileName(name)} in ${dir}` };
  }
  const file = parseBundleFile(text);
  if (!file.ok) return { ok: false, error: `${bundleFileName(name)}: ${file.error}` };
  const events = file.value.bundle.events;
  if (events === undefined) return { ok: false, error: 'the store has no events endpoint (spec.events)' };
  if (file.value.eventsSigningSecret === undefined) return { ok: false, error: 'the bundle holds no signing secret (the controller could not resolve it)' };
  return { ok: true, events, secret: file.value.eventsSigningSecret };
}

/** openStore opens the history to replay: Redis (waited for a few seconds), or a SQLite file that must exist. */
async function openStore(values: { state?: string; redis?: string; 'state-dir': string }): Promise<StateStore> {
  if (values.redis !== undefined && values.state !== undefined) throw new UsageError('give --redis or --state, not both');
  if (values.redis !== undefined) checkRedisUrl('--redis', values.redis);
  const sqlitePath = values.state ?? join(values['state-dir'], 'state.sqlite');
  if (values.redis === undefined && !existsSync(sqlitePath)) {
    throw new StartupError(`no state file ${sqlitePath}: give smsauth run's --state-dir (or --state, or --redis)`);
  }
  let opened: OpenedStore;
  try {
    opened = openStateStore({ redisUrl: values.redis, sqlitePath });
  } catch (err) {
    if (err instanceof StoreOpenError)
      throw new StartupError(`cannot open the state file ${sqlitePath}: ${err.message}; give smsauth run's --state-dir (or --state, or --redis)`);
    throw err;
  }
  try {
    await requireStoreAnswers(opened, values.redis);
  } catch (err) {
    await opened.store.close();
    throw err;
  }
  return opened.store;
}

/** historyBetween reads a store's history in [since, until), oldest first, a page at a time. */
async function historyBetween(store: StateStore, namespace: string, name: string, since: number, until: number): Promise<HistoryEvent[]> {
  const out: HistoryEvent[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await store.listHistory(namespace, name, { since, until, limit: 1000, ...(before !== undefined ? { before } : {}) });
    out.push(...page.events);
    if (page.next === null) break;
    before = page.next;
  }
  return out.reverse();
}

async function send(url: string, key: Buffer, event: CloudEvent): Promise<{ ok: true } | { ok: false; problem: string }> {
  const payload = JSON.stringify(event);
  const answer = await postEvent(url, webhookHeaders(key, event.id, Math.floor(Date.now() / 1000), payload), payload);
  return answer.ok ? { ok: true } : { ok: false, problem: answer.problem };
}
