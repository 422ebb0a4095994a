// The console's calls: reads, and state-changing requests that carry the page's CSRF token.
import type { ApiError } from './types.ts';

const csrf = (): string => document.querySelector<HTMLMetaElement>('meta[name="smsauth-csrf"]')?.content ?? '';

export type Answer<T> = { ok: true; value: T } | { ok: false; status: number; error: ApiError['error'] };

async function answer<T>(res: Response): Promise<Answer<T>> {
  const body = (await res.json().catch(() => ({}))) as unknown;
  if (res.ok) return { ok: true, value: body as T };
  const error = (body as Partial<ApiError>).error ?? { code: 'http_error', message: `the server answered ${res.status}` };
  return { ok: false, status: res.status, error };
}

export async function get<T>(path: string): Promise<Answer<T>> {
  return answer<T>(await fetch(path, { headers: { accept: 'application/json' }, credentials: 'same-origin' }));
}

export async function post<T>(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
  return answer<T>(
    await fetch(path, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', accept: 'application/json', 'x-smsauth-csrf': csrf() },
      credentials: 'same-origin',
      body: JSON.stringify(body),
    }),
  );
}
