import type { JSX } from 'preact';
import type { ConsoleStore } from './types.ts';

/** storeKey is how the console names a store: namespace/name. */
export const storeKey = (s: Pick<ConsoleStore, 'namespace' | 'name'>): string => `${s.namespace}/${s.name}`;

/** StoreSelect is a labelled choice of identity store; with `all`, an option for every store (''). */
export function StoreSelect({
  label,
  stores,
  value,
  onChange,
  all = false,
}: {
  label: string;
  stores: readonly ConsoleStore[];
  value: string;
  onChange: (key: string) => void;
  all?: boolean;
}): JSX.Element {
  return (
    <label>
      {label}{' '}
      <select value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        {all ? <option value="">all</option> : null}
        {stores.map((s) => (
          <option key={storeKey(s)} value={storeKey(s)}>
            {storeKey(s)}
          </option>
        ))}
      </select>
    </label>
  );
}
