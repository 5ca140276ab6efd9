// The compromised-key drill (docs/verifier.md): retires one signing key in the controller's Secret.
//   node hack/retire-key.ts <kid> [--namespace hourglass-system] [--secret hourglass-signing-keys]
//   node hack/retire-key.ts --list
// The cluster is $KUBECONFIG, else .cluster/kubeconfig when it exists, else the in-cluster service account.
import { parseArgs } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { keySecretStore } from '../src/k8s/key-secret.ts';
import { loadKubeConfig } from '../src/k8s/kubeconfig.ts';
import { retireKey } from '../src/tokens/key-manager.ts';
import { isRetired, keySetFromSecretData, type KeySet } from '../src/tokens/keys.ts';

// A kid may begin with '-': it goes after '--'.
const USAGE = 'Usage: node hack/retire-key.ts [--namespace NAME] [--secret NAME] -- <kid> | --list [...]';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    namespace: { type: 'string', default: process.env.HOURGLASS_NAMESPACE ?? 'hourglass-system' },
    secret: { type: 'string', default: 'hourglass-signing-keys' },
    list: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
const kid = positionals[0];
if (values.help || (!values.list && (positionals.length !== 1 || !kid))) {
  console.error(USAGE);
  process.exit(values.help ? 0 : 2);
}

const kc = loadKubeConfig();
const store = keySecretStore(kc.makeApiClient(CoreV1Api), values.namespace, values.secret);
const where = `Secret ${values.namespace}/${values.secret}`;
try {
  if (values.list) {
    const stored = await store.read();
    if (!stored) throw new Error(`${where} does not exist`);
    list(await keySetFromSecretData(stored.data), new Date());
  } else {
    const { retired, signing } = await retireKey(store, kid ?? '');
    console.log(`Retired signing key ${retired.kid} in ${where}; key ${signing.kid} signs now.`);
    console.log(
      'Every replica stops publishing and verifying the retired key within its reload period (5s).',
    );
  }
} catch (error) {
  console.error(`Failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await kc.close();
}

function list(set: KeySet, now: Date): void {
  const signing = set.signingAt(now);
  const next = set.next(now);
  const published = new Set(set.publicJwks(now).keys.map((jwk) => jwk.kid));
  for (const key of set.keys) {
    const { from, until } = set.signingPeriod(key);
    const state = isRetired(key, now)
      ? 'retired'
      : key === signing
        ? 'signing'
        : key === next
          ? 'next'
          : published.has(key.kid)
            ? 'published'
            : 'unused';
    const period = `signs ${from.toISOString()} .. ${until?.toISOString() ?? ''}`;
    console.log(`${key.kid}  ${state.padEnd(9)}  created ${key.createdAt.toISOString()}  ${period}`);
  }
}
