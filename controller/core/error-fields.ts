/**
 * errorFields is what a log line says of an error: its name, its code (fetch says "fetch failed"
 * and keeps the reason, ECONNREFUSED, ENOTFOUND or a TLS failure, in its cause) and the start of
 * its message.
 */
export function errorFields(err: unknown): { name: string; code?: string; message?: string } {
  const message = (err as { message?: string } | undefined)?.message;
  return { ...errorKind(err), ...(message !== undefined ? { message: message.slice(0, 300) } : {}) };
}

/**
 * errorKind is errorFields without the message, for errors whose message could quote what a
 * client sent (an HTTP request's).
 */
export function errorKind(err: unknown): { name: string; code?: string } {
  const e = (err ?? {}) as { name?: string; code?: unknown; cause?: { code?: unknown } };
  const raw = e.code ?? e.cause?.code;
  const code = typeof raw === 'string' || typeof raw === 'number' ? String(raw) : undefined;
  return { name: e.name ?? 'Error', ...(code !== undefined ? { code } : {}) };
}
