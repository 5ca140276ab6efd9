import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { grantObjectNames, type AccessRequest } from '../api/types.ts';
import { isForbidden, isNotFound } from '../k8s/errors.ts';
import { CliError, ExitCode, Refused, TimedOut } from './errors.ts';
import { ref } from './output.ts';
import type { Session } from './session.ts';

const RETRY_MS = 250;
/** Reading the token after the grant gets at least this long, however little of the wait's timeout is left. */
const GRACE_MS = 10_000;

/**
 * The token of the request's live grant, from the grant Secret. The subject's service account
 * may read that Secret through the grant's Role. Waits while the Secret still carries another
 * grant id (a renewal records the new id before it rewrites the Secret) and while RBAC has not
 * caught up with a fresh RoleBinding.
 */
export async function readGrantToken(
  session: Session,
  request: AccessRequest,
  deadline: number,
): Promise<string> {
  const grantId = request.status?.grant?.id;
  if (!grantId) throw new Refused(`${ref(request)} has no live grant`);
  const namespace = request.metadata.namespace;
  const secretName = request.status?.grant?.secretName ?? grantObjectNames(request.metadata.name).secretName;
  let last = 'the grant Secret was not readable';
  const until = Math.max(deadline, Date.now() + GRACE_MS);
  for (;;) {
    session.refreshCredentials();
    try {
      const secret = await session.core.readNamespacedSecret({ namespace, name: secretName });
      const data = secret.data ?? {};
      const decode = (key: string) =>
        data[key] === undefined ? undefined : Buffer.from(data[key], 'base64').toString('utf8');
      const storedId = decode('grantId');
      const token = decode('token');
      if (storedId === grantId) {
        if (!token)
          throw new Refused(
            `the grant Secret ${namespace}/${secretName} holds no token: ${ref(request)} asks for none`,
          );
        return token;
      }
      last = `the grant Secret ${namespace}/${secretName} still holds grant ${storedId ?? '<none>'}, not ${grantId}`;
    } catch (error) {
      if (!isNotFound(error) && !isForbidden(error)) throw error;
      last = isNotFound(error)
        ? `the grant Secret ${namespace}/${secretName} does not exist`
        : `not allowed to read the grant Secret ${namespace}/${secretName}`;
    }
    if (Date.now() + RETRY_MS > until)
      throw new TimedOut(`timed out reading the token of ${ref(request)}: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

/**
 * Writes the token readable by its owner only (0600), atomically: a reader sees the old token or
 * the new one, never a partial file.
 */
export async function writeTokenFile(file: string, token: string): Promise<void> {
  const temporary = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`,
  );
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(temporary, token, { mode: 0o600, flag: 'wx' });
    await chmod(temporary, 0o600);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {});
    throw new CliError(ExitCode.apiError, `cannot write the token to ${file}: ${(error as Error).message}`);
  }
}
