/**
 * errorFields is what a log line says of an error: its name, its code (fetch says "fetch failed"
 * and keeps the reason, ECONNREFUSED, ENOTFOUND or a TLS failure, in its cause) and the start of
 * its message.
 */
export function errorFields(err: unknown): { name: string; code?: string; message?: string } {
  const e = (err ?? {}) as { name?: string; code?: unknown; message?: string; cause?: { code?: unknown } };
  const raw = e.code ?? e.cause?.code;
  const code = typeof raw === 'string' || typeof raw === 'number' ? String(raw) : undefined;
  return { name: e.name ?? 'Error', ...(code !== undefined ? { code } : {}), ...(e.message !== undefined ? { message: e.message.slice(0, 300) } : {}) };
}
