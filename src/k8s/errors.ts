import { ApiException } from '@kubernetes/client-node';

/** The HTTP status of a failed API call, or undefined for any other error. */
export function statusCode(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

/** The machine-readable reason of a failed API call (NotFound, AlreadyExists, Conflict, ...). */
export function statusReason(error: unknown): string | undefined {
  if (!(error instanceof ApiException)) return undefined;
  const body: unknown = typeof error.body === 'string' ? safeParse(error.body) : error.body;
  return typeof body === 'object' && body !== null && 'reason' in body ? String(body.reason) : undefined;
}

/** The server's human-readable message of a failed API call. */
export function statusMessage(error: unknown): string {
  if (error instanceof ApiException) {
    const body: unknown = typeof error.body === 'string' ? safeParse(error.body) : error.body;
    if (typeof body === 'object' && body !== null && 'message' in body) return String(body.message);
    return `HTTP ${error.code}`;
  }
  return error instanceof Error ? error.message : String(error);
}

export const isNotFound = (error: unknown): boolean => statusCode(error) === 404;
export const isAlreadyExists = (error: unknown): boolean =>
  statusCode(error) === 409 && statusReason(error) === 'AlreadyExists';
export const isConflict = (error: unknown): boolean =>
  statusCode(error) === 409 && statusReason(error) !== 'AlreadyExists';
export const isForbidden = (error: unknown): boolean => statusCode(error) === 403;

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Resolves to undefined when the object does not exist. */
export async function ignoreNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** The error and the errors it wraps (fetch's "fetch failed" hides the socket's error in `cause`). */
function* causes(error: unknown): Generator<unknown> {
  for (let depth = 0; error !== undefined && error !== null && depth < 8; depth++) {
    yield error;
    error = (error as { cause?: unknown }).cause;
  }
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
]);

/** An API call that got no answer in time: no response headers, a silent body, or no connection. */
export function isTimeout(error: unknown): boolean {
  for (const cause of causes(error)) {
    const { name, code } = cause as { name?: unknown; code?: unknown };
    if (name === 'TimeoutError' || (typeof code === 'string' && TIMEOUT_CODES.has(code))) return true;
  }
  return false;
}

/**
 * A failed API call that may mean the API server (or etcd behind it) is unreachable: no HTTP
 * answer at all, a timeout, or a 500, 502, 503 or 504. A refusal (4xx) never is.
 */
export function mayBeUnavailable(error: unknown): boolean {
  const status = statusCode(error) ?? (error as { statusCode?: unknown } | undefined)?.statusCode;
  if (typeof status === 'number') return status >= 500 && status <= 504 && status !== 501;
  for (const cause of causes(error)) {
    const { name, code } = cause as { name?: unknown; code?: unknown };
    if (name === 'TimeoutError' || (typeof code === 'string' && /^(E[A-Z]+|UND_ERR_\w+)$/.test(code)))
      return true;
  }
  return false;
}
