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
