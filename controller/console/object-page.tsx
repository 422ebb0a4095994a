import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { get } from './api.ts';
import { Condition } from './resources.tsx';
import type { ConsoleObject, ObjectDetail } from './types.ts';

/** ObjectPage shows one object: its status, and its YAML with each diagnostic at its line and column. */
export function ObjectPage({
  kind,
  namespace,
  name,
  revision,
  objects,
}: {
  kind: string;
  namespace: string;
  name: string;
  revision: string;
  objects: ConsoleObject[];
}): JSX.Element {
  const [detail, setDetail] = useState<ObjectDetail | null | undefined>(undefined);
  const row = objects.find((o) => o.kind === kind && o.namespace === namespace && o.name === name);
  // Read again whenever the folder's revision or the object's row changes: the page follows edits.
  const rowKey = row === undefined ? '' : `${row.ready}/${row.reason}/${row.observedGeneration}/${row.message}`;
  useEffect(() => {
    let current = true;
    void get<ObjectDetail>(`/console/api/objects/${encodeURIComponent(kind)}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`).then((a) => {
      if (current) setDetail(a.ok ? a.value : null);
    });
    return () => {
      current = false;
    };
  }, [kind, namespace, name, revision, rowKey]);
  const title = `${kind} ${namespace}/${name}`;
  if (detail === undefined) return <p aria-busy="true">Loading {title}…</p>;
  if (detail === null)
    return (
      <section>
        <h2>{title}</h2>
        <p>
          No such object. <a href="#/resources">Back to the resources</a>
        </p>
      </section>
    );
  const o = detail.object;
  const stale = o.liveGeneration !== null && o.observedGeneration !== null && o.liveGeneration < o.observedGeneration;
  return (
    <section aria-labelledby="object-title">
      <p>
        <a href="#/resources">← Resources</a>
      </p>
      <h2 id="object-title">{title}</h2>
      <dl class="summary">
        <dt>Ready</dt>
        <dd>
          <Condition status={o.ready} /> {o.reason}
        </dd>
        <dt>Message</dt>
        <dd>{o.message}</dd>
        <dt>Generation</dt>
        <dd>
          {o.observedGeneration ?? '–'}
          {o.liveGeneration !== null ? (
            <span class={stale ? 'stale' : ''}>
              {' '}
              · serving generation {o.liveGeneration}
              {stale ? ' (the last valid one)' : ''}
            </span>
          ) : null}
        </dd>
      </dl>
      <h3>Conditions</h3>
      <table class="conditions">
        <thead>
          <tr>
            <th scope="col">Type</th>
            <th scope="col">Status</th>
            <th scope="col">Reason</th>
            <th scope="col">Message</th>
          </tr>
        </thead>
        <tbody>
          {detail.conditions.map((c) => (
            <tr key={c.type}>
              <th scope="row">{c.type}</th>
              <td>{c.status}</td>
              <td>{c.reason}</td>
              <td>{c.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Source</h3>
      {detail.source === null ? (
        <p>Where it is declared is not known (its file could not be read).</p>
      ) : (
        <Source source={detail.source} diagnostics={detail.diagnostics} />
      )}
    </section>
  );
}

function Source({ source, diagnostics }: { source: NonNullable<ObjectDetail['source']>; diagnostics: ObjectDetail['diagnostics'] }) {
  const lines = source.text.split('\n');
  const end = source.startLine + lines.length - 1;
  // A diagnostic outside the document's lines (a file-wide one) goes under its first line.
  const at = (d: ObjectDetail['diagnostics'][number]): number => (d.line >= source.startLine && d.line <= end ? d.line : source.startLine);
  return (
    <figure class="source">
      <figcaption>
        <code>{source.file}</code>, from line {source.startLine}
        {diagnostics.length > 0 ? ` · ${diagnostics.length} diagnostic${diagnostics.length === 1 ? '' : 's'}` : ''}
      </figcaption>
      <div class="code" role="region" aria-label={`${source.file}, lines ${source.startLine} to ${end}`} tabIndex={0}>
        {lines.map((text, i) => {
          const n = source.startLine + i;
          return (
            <div key={n}>
              <div class="line" id={`L${n}`}>
                <span class="ln" aria-hidden="true">
                  {n}
                </span>
                <code>{text === '' ? ' ' : text}</code>
              </div>
              {diagnostics
                .filter((d) => at(d) === n)
                .map((d, j) => (
                  <p key={j} class={`diag ${d.severity}`} role="note" data-line={d.line} data-column={d.column}>
                    <span class="where">
                      {source.file}:{d.line}:{d.column}
                    </span>{' '}
                    <strong>{d.severity}</strong> <code>{d.code}</code> {d.message}
                    {d.pointer !== '' ? <span class="pointer"> ({d.pointer})</span> : null}
                  </p>
                ))}
            </div>
          );
        })}
      </div>
    </figure>
  );
}
