import type { JSX } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { StoreSelect } from './store-select.tsx';
import type { ConsoleMessage, ConsoleStore } from './types.ts';

/** Text shows a message's text with its code marked. */
function Text({ text, code }: { text: string; code: string | null }) {
  if (code === null) return <span>{text}</span>;
  const i = text.indexOf(code);
  return (
    <span>
      {text.slice(0, i)}
      <mark class="code">{code}</mark>
      {text.slice(i + code.length)}
    </span>
  );
}

/** CopyCode copies a code to the clipboard and says so. */
export function CopyCode({ code }: { code: string }): JSX.Element {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class="copy"
      onClick={() => {
        void navigator.clipboard.writeText(code).then(
          () => setDone(true),
          () => setDone(false),
        );
      }}
    >
      {done ? 'Copied' : 'Copy code'}
    </button>
  );
}

/** Outbox is the console gateway's messages, newest first, live. */
export function Outbox({ messages, stores }: { messages: ConsoleMessage[]; stores: ConsoleStore[] }): JSX.Element {
  const [number, setNumber] = useState('');
  const [store, setStore] = useState('');
  const shown = useMemo(() => {
    const digits = number.replace(/\D/g, '');
    return messages.filter((m) => (digits === '' || m.to.replace(/\D/g, '').endsWith(digits)) && (store === '' || `${m.namespace}/${m.store ?? ''}` === store));
  }, [messages, number, store]);
  return (
    <section aria-labelledby="outbox-title">
      <h2 id="outbox-title">Outbox</h2>
      <p class="hint">
        Messages the <code>console</code> gateway would have sent, newest first. Numbers show their last four digits only.
      </p>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Number ends with <input inputMode="numeric" value={number} onInput={(e) => setNumber(e.currentTarget.value)} />
        </label>
        <StoreSelect label="Store" stores={stores} value={store} onChange={setStore} all />
      </form>
      <p aria-live="polite" class="count">
        {shown.length} message{shown.length === 1 ? '' : 's'}
      </p>
      <ol class="messages">
        {shown.map((m) => (
          <li key={m.seq} class="message" data-reference={m.reference}>
            <p class="head">
              <time dateTime={m.time}>{new Date(m.time).toLocaleTimeString()}</time> · to <span class="to">{m.to}</span> · {m.namespace}/{m.store ?? m.gateway}
            </p>
            <p class="text">
              <Text text={m.text} code={m.code} />
            </p>
            {m.code !== null ? <CopyCode code={m.code} /> : null}
          </li>
        ))}
      </ol>
    </section>
  );
}
