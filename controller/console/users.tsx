import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { get, post } from './api.ts';
import { StoreSelect, storeKey } from './store-select.tsx';
import type { ConsoleStore, UserView } from './types.ts';

/** Users looks a user up: enrollments, lockout (with the helpdesk's unlock when configured) and history. */
export function Users({ stores, helpdesk }: { stores: ConsoleStore[]; helpdesk: boolean }): JSX.Element {
  const [chosen, setStoreKey] = useState('');
  const store = stores.find((s) => storeKey(s) === chosen) ?? stores[0];
  const [user, setUser] = useState('');
  const [view, setView] = useState<UserView | null>(null);
  const [said, setSaid] = useState<{ text: string; error: boolean } | null>(null);
  const [reason, setReason] = useState('');
  const [helpdeskToken, setHelpdeskToken] = useState('');

  if (store === undefined) return <p>No identity store is served yet.</p>;
  const base = `/console/api/users/${encodeURIComponent(store.namespace)}/${encodeURIComponent(store.name)}/${encodeURIComponent(user)}`;
  /** lookUp reads the user; after an unlock it keeps saying what the unlock did. */
  const lookUp = async (keepSaid = false): Promise<void> => {
    const a = await get<UserView>(base);
    if (!a.ok) {
      setView(null);
      setSaid({ text: `${a.error.code}: ${a.error.message}`, error: true });
      return;
    }
    setView(a.value);
    if (!keepSaid) setSaid(null);
  };
  const unlock = async (): Promise<void> => {
    const a = await post<{ wasLockedOut: boolean }>(
      '/console/api/unlock',
      { namespace: store.namespace, store: store.name, user, reason },
      { 'x-smsauth-helpdesk-token': helpdeskToken },
    );
    if (!a.ok) return setSaid({ text: `${a.error.code}: ${a.error.message}`, error: true });
    await lookUp(true);
    setSaid({ text: a.value.wasLockedOut ? `${user} is unlocked.` : `${user} was not locked out.`, error: false });
  };

  return (
    <section aria-labelledby="users-title">
      <h2 id="users-title">Users</h2>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          void lookUp();
        }}
      >
        <StoreSelect label="Identity store" stores={stores} value={storeKey(store)} onChange={setStoreKey} />
        <label>
          User <input name="user" required value={user} onInput={(e) => setUser(e.currentTarget.value)} autoComplete="off" />
        </label>
        <button type="submit">Look up</button>
      </form>
      <p class={said?.error === true ? 'said error' : 'said'} role={said?.error === true ? 'alert' : 'status'} aria-live="polite">
        {said?.text ?? ''}
      </p>
      {view !== null ? (
        <>
          <h3>Enrollments</h3>
          {view.enrollments.length === 0 ? (
            <p>No SMS enrollment.</p>
          ) : (
            <ul>
              {view.enrollments.map((e) => (
                <li key={e.type}>
                  {e.type}: <span class="to">{e.to}</span>, since <time dateTime={e.enrolledAt}>{new Date(e.enrolledAt).toLocaleString()}</time>
                </li>
              ))}
            </ul>
          )}
          <h3>Lockout</h3>
          {view.lockout.lockedUntil !== null ? (
            <p>
              <strong>Locked out</strong> until <time dateTime={view.lockout.lockedUntil}>{new Date(view.lockout.lockedUntil).toLocaleString()}</time>.
            </p>
          ) : (
            <p>
              Not locked out ({view.lockout.failures} consecutive failure{view.lockout.failures === 1 ? '' : 's'}).
            </p>
          )}
          {helpdesk && view.unlock ? (
            <form
              class="filters"
              onSubmit={(e) => {
                e.preventDefault();
                void unlock();
              }}
            >
              <label>
                Reason <input name="reason" required value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
              </label>
              <label>
                Helpdesk token{' '}
                <input
                  name="helpdeskToken"
                  type="password"
                  required
                  autoComplete="off"
                  value={helpdeskToken}
                  onInput={(e) => setHelpdeskToken(e.currentTarget.value)}
                />
              </label>
              <button type="submit">Unlock (helpdesk)</button>
            </form>
          ) : (
            <p class="hint">Unlocking takes the helpdesk: start smsauth run with --helpdesk-token-file.</p>
          )}
          <h3>History</h3>
          {view.history.length === 0 ? (
            <p>Nothing recorded.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Event</th>
                  <th scope="col">Result</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Role</th>
                </tr>
              </thead>
              <tbody>
                {view.history.map((h) => (
                  <tr key={h.seq}>
                    <td>
                      <time dateTime={h.time}>{new Date(h.time).toLocaleString()}</time>
                    </td>
                    <td>{h.type}</td>
                    <td>{h.result}</td>
                    <td>{h.actor}</td>
                    <td>{h.role ?? '–'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      ) : null}
    </section>
  );
}
