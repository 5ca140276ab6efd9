import { randomBytes } from 'node:crypto';
import { GROUP, VERSION, plural, type AccessRequest } from '../../api/types.ts';
import { GLOBAL_HELP } from '../args.ts';
import { Refused, UsageError } from '../errors.ts';
import type { Env, Session } from '../session.ts';

/** The help text of a command: usage, description, its options, then the global ones. */
export function helpText(prog: string, usage: string, description: string, options: string): string {
  return `Usage: ${prog} ${usage}\n\n${description.trim()}\n\nOptions:\n${options.replace(/^\n+/, '').replace(/\n*$/, '\n')}\n${GLOBAL_HELP}`;
}

// Request names become label values: DNS subdomain characters, at most 63.
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function validName(name: string, command: string, what = 'NAME'): string {
  if (name.length > 63 || !NAME.test(name)) {
    throw new UsageError(
      `${what} "${name}" is not a valid AccessRequest name (lowercase letters, digits, "-" and ".", at most 63 characters)`,
      command,
    );
  }
  return name;
}

/** `<pod>-<5 random characters>`, cut to fit 63 characters. */
export function generatedName(podName: string): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const suffix = [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join('');
  const prefix = podName.slice(0, 57).replace(/[-.]+$/, '');
  return `${prefix}-${suffix}`;
}

/** The pod this process runs in, from the downward API. */
export function podFromEnv(env: Env): string | undefined {
  return env.POD_NAME || undefined;
}

export const requestCrd = { group: GROUP, version: VERSION, plural: plural.AccessRequest };

export async function listRequests(
  session: Session,
  namespace: string | undefined,
): Promise<AccessRequest[]> {
  session.refreshCredentials();
  const list = (
    namespace === undefined
      ? await session.custom.listClusterCustomObject(requestCrd)
      : await session.custom.listNamespacedCustomObject({ ...requestCrd, namespace })
  ) as { items?: AccessRequest[] };
  return (list.items ?? []).sort((a, b) =>
    a.metadata.namespace === b.metadata.namespace
      ? a.metadata.name.localeCompare(b.metadata.name)
      : a.metadata.namespace.localeCompare(b.metadata.namespace),
  );
}

/**
 * The request named on the command line, or, inside a pod, this pod's one Granted request (so
 * that a workload can renew without remembering the generated name).
 */
export async function resolveRequestName(
  session: Session,
  namespace: string,
  name: string | undefined,
  podName: string | undefined,
  command: string,
): Promise<string> {
  if (name !== undefined) return name;
  if (podName === undefined) throw new UsageError('NAME is required', command);
  const mine = (await listRequests(session, namespace)).filter(
    (r) => r.spec.subject.podName === podName && r.status?.phase === 'Granted',
  );
  if (mine.length === 0)
    throw new Refused(`no Granted AccessRequest for pod "${podName}" in namespace "${namespace}"`);
  if (mine.length > 1) {
    throw new UsageError(
      `pod "${podName}" has ${mine.length} Granted AccessRequests (${mine.map((r) => r.metadata.name).join(', ')}): name one`,
      command,
    );
  }
  return mine[0]!.metadata.name;
}

/** A value for the renew annotation that was never used before: a time for people, plus randomness. */
export function uniqueRenewValue(now: Date): string {
  return `${now.toISOString().replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/** One request; a missing one is an API error (NotFound, exit 4) with the server's message. */
export async function readRequest(session: Session, namespace: string, name: string): Promise<AccessRequest> {
  session.refreshCredentials();
  return session.requests.get(namespace, name);
}
