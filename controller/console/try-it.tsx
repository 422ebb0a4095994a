import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { post } from './api.ts';
import { CopyCode } from './outbox.tsx';
import { StoreSelect, storeKey } from './store-select.tsx';
import type { ConsoleMessage, ConsoleStore, Verification } from './types.ts';

type Step = 'enroll' | 'check-enroll' | 'authenticate' | 'check-authenticate' | 'done';

/** TryIt walks the README's quick start: enroll a number, check the code, authenticate with the last digits. */
export function TryIt({ stores, messages }: { stores: ConsoleStore[]; messages: ConsoleMessage[] }): JSX.Element {
  const offered = stores.filter((s) => s.offered);
  const [chosen, setStoreKey] = useState('');
  const store = offered.find((s) => storeKey(s) === chosen) ?? offered[0];
  const [user, setUser] = useState('');
  const [to, setTo] = useState('');
  const [code, setCode] = useState('');
  const [digits, setDigits] = useState('');
  const [step, setStep] = useState<Step>('enroll');
  const [verification, setVerification] = useState<Verification | null>(null);
  const [said, setSaid] = useState<{ text: string; error: boolean } | null>(null);
  const [busy, setBusy] = useState(false);

  if (store === undefined) return <p>No identity store offers SMS yet: the resources view says why.</p>;
  const scope = { namespace: store.namespace, store: store.name };
  const mine = verification === null ? [] : messages.filter((m) => m.reference === verification.id);

  const act = async (run: () => Promise<void>): Promise<void> => {
    setBusy(true);
    setSaid(null);
    try {
      await run();
    } finally {
      setBusy(false);
    }
  };
  const fail = (e: { code: string; message: string }): void => setSaid({ text: `${e.code}: ${e.message}`, error: true });

  const enroll = () =>
    act(async () => {
      const a = await post<Verification>('/console/api/enroll', { ...scope, user, to });
      if (!a.ok) return fail(a.error);
      setVerification(a.value);
      setCode('');
      setStep('check-enroll');
      setSaid({ text: `Code sent to ${a.value.to}: read it in the outbox below.`, error: false });
    });
  const check = () =>
    act(async () => {
      const a = await post<Verification>('/console/api/check', { ...scope, id: verification?.id ?? '', code });
      if (!a.ok) return fail(a.error);
      setVerification(a.value);
      if (a.value.status !== 'approved') return setSaid({ text: `Not approved: ${a.value.status}, ${a.value.attemptsLeft ?? 0} attempts left.`, error: true });
      if (step === 'check-enroll') {
        setStep('authenticate');
        setDigits(to.replace(/\D/g, '').slice(-4));
        setSaid({ text: `Approved: ${to} is ${user}'s SMS factor now.`, error: false });
      } else {
        setStep('done');
        setSaid({ text: `Approved: ${user} authenticated by SMS.`, error: false });
      }
    });
  const authenticate = () =>
    act(async () => {
      const a = await post<Verification>('/console/api/authenticate', { ...scope, user, ...(store.lastDigitsChallenge ? { lastDigits: digits } : {}) });
      if (!a.ok) return fail(a.error);
      setVerification(a.value);
      setCode('');
      setStep('check-authenticate');
      setSaid({ text: `Code sent to the enrolled number (${a.value.to}).`, error: false });
    });

  return (
    <section aria-labelledby="try-title">
      <h2 id="try-title">Try it</h2>
      <p class="hint">Enroll a number, read the code in the outbox, check it, then authenticate with the number's last digits.</p>
      <form
        class="steps"
        onSubmit={(e) => {
          e.preventDefault();
          if (busy) return;
          void (step === 'enroll' ? enroll() : step === 'authenticate' ? authenticate() : step === 'done' ? Promise.resolve() : check());
        }}
      >
        <fieldset disabled={step !== 'enroll' || busy}>
          <legend>1. Enroll</legend>
          <StoreSelect label="Identity store" stores={offered} value={storeKey(store)} onChange={setStoreKey} />
          <label>
            User <input name="user" required value={user} list="users" onInput={(e) => setUser(e.currentTarget.value)} autoComplete="off" />
          </label>
          <datalist id="users">
            {store.users.map((u) => (
              <option key={u} value={u} />
            ))}
          </datalist>
          <label>
            Mobile number <input name="to" type="tel" required placeholder="+14155550101" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
          </label>
          <button type="submit">Send a code</button>
        </fieldset>
        {step === 'check-enroll' || step === 'check-authenticate' ? (
          <fieldset disabled={busy}>
            <legend>{step === 'check-enroll' ? '2. Check the enrollment code' : '4. Check the sign-in code'}</legend>
            <label>
              Code <input name="code" inputMode="numeric" autoComplete="one-time-code" required value={code} onInput={(e) => setCode(e.currentTarget.value)} />
            </label>
            <button type="submit">Check</button>
          </fieldset>
        ) : null}
        {step === 'authenticate' ? (
          <fieldset disabled={busy}>
            <legend>3. Authenticate</legend>
            {store.lastDigitsChallenge ? (
              <label>
                Last four digits of the number{' '}
                <input name="lastDigits" inputMode="numeric" required pattern="[0-9]{4}" value={digits} onInput={(e) => setDigits(e.currentTarget.value)} />
              </label>
            ) : null}
            <button type="submit">Send a sign-in code</button>
          </fieldset>
        ) : null}
      </form>
      <p class={said?.error === true ? 'said error' : 'said'} role={said?.error === true ? 'alert' : 'status'} aria-live="polite">
        {said?.text ?? ''}
      </p>
      {step === 'done' ? (
        <button
          type="button"
          onClick={() => {
            setStep('enroll');
            setVerification(null);
            setSaid(null);
          }}
        >
          Start again
        </button>
      ) : null}
      {verification !== null ? (
        <section class="pane" aria-labelledby="pane-title">
          <h3 id="pane-title">Outbox for this verification</h3>
          {mine.length === 0 ? (
            <p>Waiting for the message…</p>
          ) : (
            <ol class="messages">
              {mine.map((m) => (
                <li key={m.seq} class="message">
                  <p class="text">{m.text}</p>
                  {m.code !== null ? (
                    <p>
                      <mark class="code">{m.code}</mark>{' '}
                      <button type="button" onClick={() => setCode(m.code ?? '')}>
                        Use this code
                      </button>{' '}
                      <CopyCode code={m.code} />
                    </p>
                  ) : null}
                </li>
              ))}
            </ol>
          )}
        </section>
      ) : null}
      <details>
        <summary>The same with curl</summary>
        <pre>
          <code>{`curl -s localhost:8787/v1/${store.namespace}/${store.name}/verifications \\
  -H 'content-type: application/json' \\
  -d '{"to": "${to || '+14155550101'}", "purpose": "enroll", "user": "${user || 'alice'}"}'
curl -s localhost:8787/v1/${store.namespace}/${store.name}/verifications/ID/check \\
  -H 'content-type: application/json' -d '{"code": "CODE"}'
curl -s localhost:8787/v1/${store.namespace}/${store.name}/users/${user || 'alice'}/challenges \\
  -H 'content-type: application/json' -d '{"type": "SMS", "lastDigits": "0101"}'`}</code>
        </pre>
      </details>
    </section>
  );
}
