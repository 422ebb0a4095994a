import type { JSX } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { ConsoleObject } from './types.ts';

/** Condition shows a condition's status as a word and a colour, never a colour alone. */
export function Condition({ status, good = 'True' }: { status: string; good?: string }): JSX.Element {
  const tone = status === 'Unknown' ? 'unknown' : status === good ? 'good' : 'bad';
  return <span class={`cond ${tone}`}>{status}</span>;
}

export const objectHref = (o: Pick<ConsoleObject, 'kind' | 'namespace' | 'name'>): string =>
  `#/object/${encodeURIComponent(o.kind)}/${encodeURIComponent(o.namespace)}/${encodeURIComponent(o.name)}`;

function Row({ o }: { o: ConsoleObject }) {
  return (
    <tr data-ready={o.ready}>
      <td>{o.kind}</td>
      <th scope="row">
        <a href={objectHref(o)}>
          {o.namespace}/{o.name}
        </a>
      </th>
      <td>
        <Condition status={o.ready} />
      </td>
      <td>
        <Condition status={o.reconciling} good="False" />
      </td>
      <td>
        <Condition status={o.stalled} good="False" />
      </td>
      <td>{o.reason}</td>
      <td class="msg">{o.message}</td>
    </tr>
  );
}

/** Resources lists every object with its status, live. */
export function Resources({ objects, refused, problems }: { objects: ConsoleObject[]; refused: string | null; problems: string[] }): JSX.Element {
  const [filter, setFilter] = useState('');
  const shown = useMemo(() => {
    const f = filter.trim().toLowerCase();
    return f === '' ? objects : objects.filter((o) => `${o.kind} ${o.namespace}/${o.name} ${o.reason}`.toLowerCase().includes(f));
  }, [objects, filter]);
  return (
    <section aria-labelledby="resources-title">
      <h2 id="resources-title">Resources</h2>
      {refused !== null ? (
        <p class="alert" role="alert">
          Not applied: {refused}
        </p>
      ) : null}
      {problems.length > 0 ? (
        <details class="problems" open={problems.length <= 5}>
          <summary>
            {problems.length} problem{problems.length === 1 ? '' : 's'} in the folder
          </summary>
          <ul>
            {problems.map((p, i) => (
              <li key={i}>
                <code>{p}</code>
              </li>
            ))}
          </ul>
        </details>
      ) : null}
      <p>
        <label>
          Filter <input type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} placeholder="kind, name or reason" />
        </label>{' '}
        <span aria-live="polite">
          {shown.length} of {objects.length} objects
        </span>
      </p>
      <div class="scroll">
        <table class="resources">
          <thead>
            <tr>
              <th scope="col">Kind</th>
              <th scope="col">Name</th>
              <th scope="col">Ready</th>
              <th scope="col">Reconciling</th>
              <th scope="col">Stalled</th>
              <th scope="col">Reason</th>
              <th scope="col">Message</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((o) => (
              <Row key={`${o.kind}/${o.namespace}/${o.name}`} o={o} />
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
