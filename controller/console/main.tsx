// The console of `smsauth run`: resources, the development outbox, a try-it flow and users, live
// from the server's event feed. Preact (3 kB) keeps the bundle small; esbuild builds it at
// `npm run gen` time into controller/generated/console/.
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ObjectPage } from './object-page.tsx';
import { Outbox } from './outbox.tsx';
import { Resources } from './resources.tsx';
import { TryIt } from './try-it.tsx';
import type { ConsoleMessage, Snapshot } from './types.ts';
import { Users } from './users.tsx';

/** State is what the feed keeps current: the snapshot, kept up to date. */
type State = Snapshot;

const EMPTY: State = { revision: '', refused: null, problems: [], objects: [], messages: [], stores: [], helpdesk: false };

/** useFeed follows /console/api/events: the snapshot, then each change; the browser reconnects by itself. */
function useFeed(): { state: State; live: boolean } {
  const [state, setState] = useState<State>(EMPTY);
  const [live, setLive] = useState(false);
  useEffect(() => {
    const source = new EventSource('/console/api/events');
    source.addEventListener('open', () => setLive(true));
    source.addEventListener('error', () => setLive(false));
    source.addEventListener('snapshot', (e) => setState(JSON.parse((e as MessageEvent<string>).data) as Snapshot));
    source.addEventListener('objects', (e) => {
      const next = JSON.parse((e as MessageEvent<string>).data) as Pick<State, 'revision' | 'refused' | 'problems' | 'objects' | 'stores'>;
      setState((s) => ({ ...s, revision: next.revision, refused: next.refused, problems: next.problems, objects: next.objects, stores: next.stores }));
    });
    source.addEventListener('message', (e) => {
      const { message } = JSON.parse((e as MessageEvent<string>).data) as { message: ConsoleMessage };
      setState((s) => ({ ...s, messages: [message, ...s.messages.filter((m) => m.seq !== message.seq)].slice(0, 200) }));
    });
    return () => source.close();
  }, []);
  return { state, live };
}

/** useRoute is the part of the address after #, as the page's links set it. */
function useRoute(): string[] {
  const read = (): string[] =>
    location.hash
      .replace(/^#\/?/, '')
      .split('/')
      .filter((s) => s !== '')
      .map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = (): void => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

const TABS = [
  { path: 'resources', label: 'Resources' },
  { path: 'outbox', label: 'Outbox' },
  { path: 'try', label: 'Try it' },
  { path: 'users', label: 'Users' },
] as const;

function App() {
  const { state, live } = useFeed();
  const route = useRoute();
  const tab = route[0] ?? 'resources';
  const notReady = useMemo(() => state.objects.filter((o) => o.ready !== 'True').length, [state.objects]);
  useEffect(() => {
    const label = TABS.find((t) => t.path === tab)?.label ?? 'Resource';
    document.title = `${label} · smsauth console`;
  }, [tab]);
  return (
    <>
      <header class="top">
        <h1>smsauth console</h1>
        <p class="meta">
          <span>revision {state.revision === '' ? '…' : state.revision.slice(0, 12)}</span>
          <span class={live ? 'live' : 'offline'} role="status">
            {live ? 'live' : 'reconnecting…'}
          </span>
        </p>
      </header>
      <nav aria-label="Console">
        <ul>
          {TABS.map((t) => (
            <li key={t.path}>
              <a href={`#/${t.path}`} aria-current={tab === t.path || (t.path === 'resources' && tab === 'object') ? 'page' : undefined}>
                {t.label}
                {t.path === 'resources' && notReady > 0 ? <span class="badge"> {notReady} not ready</span> : null}
                {t.path === 'outbox' && state.messages.length > 0 ? <span class="badge"> {state.messages.length}</span> : null}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main">
        {tab === 'object' ? (
          <ObjectPage kind={route[1] ?? ''} namespace={route[2] ?? ''} name={route[3] ?? ''} revision={state.revision} objects={state.objects} />
        ) : tab === 'outbox' ? (
          <Outbox messages={state.messages} stores={state.stores} />
        ) : tab === 'try' ? (
          <TryIt stores={state.stores} messages={state.messages} />
        ) : tab === 'users' ? (
          <Users stores={state.stores} helpdesk={state.helpdesk} />
        ) : (
          <Resources objects={state.objects} refused={state.refused} problems={state.problems} />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
