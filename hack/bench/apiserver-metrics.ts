// The API server's own request counter, apiserver_request_total, scraped from GET /metrics.
import type { PooledKubeConfig } from '../../src/k8s/kubeconfig.ts';
import { getRaw } from './kube.ts';

export interface RequestCount {
  verb: string;
  group: string;
  /** resource, or resource/subresource */
  resource: string;
  code: string;
  count: number;
}

export type Snapshot = Map<string, RequestCount>;

export const WRITE_VERBS: ReadonlySet<string> = new Set([
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'APPLY',
  'DELETECOLLECTION',
]);
export const READ_VERBS: ReadonlySet<string> = new Set(['GET', 'LIST']);

const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

export function parseRequestTotals(text: string): Snapshot {
  const snapshot: Snapshot = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const close = line.lastIndexOf('}');
    const value = Number(
      line
        .slice(close + 1)
        .trim()
        .split(' ')[0],
    );
    const labels: Record<string, string> = {};
    for (const match of line.slice(0, close).matchAll(LABEL)) labels[match[1] ?? ''] = match[2] ?? '';
    const resource = labels.subresource
      ? `${labels.resource}/${labels.subresource}`
      : (labels.resource ?? '');
    const entry: RequestCount = {
      verb: labels.verb ?? '',
      group: labels.group ?? '',
      resource,
      code: labels.code ?? '',
      count: 0,
    };
    const key = keyOf(entry);
    const existing = snapshot.get(key);
    // The same series may appear once per component/scope/version: add them up.
    snapshot.set(key, { ...entry, count: (existing?.count ?? 0) + value });
  }
  return snapshot;
}

const keyOf = (c: Omit<RequestCount, 'count'>) => `${c.verb}|${c.group}|${c.resource}|${c.code}`;

export async function scrapeApiserver(kc: PooledKubeConfig): Promise<Snapshot> {
  return parseRequestTotals(await getRaw(kc, '/metrics'));
}

/** What was counted between two snapshots, non-zero rows only. */
export function delta(before: Snapshot, after: Snapshot): RequestCount[] {
  const rows: RequestCount[] = [];
  for (const [key, entry] of after) {
    const count = entry.count - (before.get(key)?.count ?? 0);
    if (count > 0) rows.push({ ...entry, count });
  }
  return rows.sort((a, b) => `${a.group}/${a.resource}`.localeCompare(`${b.group}/${b.resource}`));
}

/** "events.k8s.io/events" or "secrets" (the core group has no prefix). */
export const qualified = (row: Pick<RequestCount, 'group' | 'resource'>) =>
  row.group ? `${row.group}/${row.resource}` : row.resource;
