import { parseDuration } from '../policy/duration.ts';
import { UsageError } from './errors.ts';

const MIN_TTL_SECONDS = 10;
const MAX_TTL_SECONDS = 24 * 3600;

function seconds(text: string, flag: string, example: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw new UsageError(`${flag} "${text}" is not a duration; write it as ${example}`);
  }
}

/** Validates a grant TTL as the API does (a Go duration, 10s to 24h) and returns it unchanged. */
export function parseTtl(text: string): string {
  const value = seconds(text, '--ttl', '"15m" or "1h30m"');
  if (value < MIN_TTL_SECONDS || value > MAX_TTL_SECONDS) {
    throw new UsageError(`--ttl "${text}" must be between 10s and 24h`);
  }
  return text;
}

/** A positive Go duration ("30s", "2m", "1h") as milliseconds. */
export function parseTimeout(text: string, flag = '--timeout'): number {
  const value = seconds(text, flag, '"30s", "2m" or "1h"');
  if (!(value > 0)) throw new UsageError(`${flag} "${text}" must be longer than 0s`);
  return value * 1000;
}

/** A compact human duration, as kubectl prints ages: 45s, 4m32s, 2h5m, 3d4h. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  if (days > 0) return hours > 0 ? `${days}d${hours}h` : `${days}d`;
  if (hours > 0) return minutes > 0 ? `${hours}h${minutes}m` : `${hours}h`;
  if (minutes > 0) return secs > 0 && minutes < 10 ? `${minutes}m${secs}s` : `${minutes}m`;
  return `${secs}s`;
}
