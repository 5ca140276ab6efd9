import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const IN_CLUSTER_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface Config {
  /** The namespace hourglass runs in: its signing keys live there, and nothing in it is granted. */
  namespace: string;
  /** The `iss` of every token; in-cluster the Service URL. */
  issuer: string;
  signingKeySecretName: string;
  /** Requests reconciled at once. */
  concurrency: number;
  /** Every cached object is reconciled again this often. */
  resyncMs: number;
  logLevel: string;
}

const HELP = `Usage: hourglass-controller [options]
  --namespace NAME        controller namespace (env HOURGLASS_NAMESPACE; in-cluster: the pod's; else hourglass-system)
  --issuer URL            token issuer (env HOURGLASS_ISSUER; default https://hourglass.<namespace>.svc)
  --concurrency N         requests reconciled at once (env HOURGLASS_CONCURRENCY; default 16)
  --resync-seconds N      full resync period (default 300)
  --log-level LEVEL       error|warn|info|debug (env LOG_LEVEL; default info)
The cluster is $KUBECONFIG, else .cluster/kubeconfig when it exists, else the in-cluster service account.`;

export function loadConfig(argv = process.argv.slice(2), env = process.env): Config {
  const { values } = parseArgs({
    args: argv,
    options: {
      namespace: { type: 'string' },
      issuer: { type: 'string' },
      concurrency: { type: 'string' },
      'resync-seconds': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const namespace =
    values.namespace ??
    env.HOURGLASS_NAMESPACE ??
    (existsSync(IN_CLUSTER_NAMESPACE_FILE)
      ? readFileSync(IN_CLUSTER_NAMESPACE_FILE, 'utf8').trim()
      : 'hourglass-system');
  const positive = (value: string | undefined, fallback: number, name: string) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${value}"`);
    return n;
  };
  return {
    namespace,
    issuer: values.issuer ?? env.HOURGLASS_ISSUER ?? `https://hourglass.${namespace}.svc`,
    signingKeySecretName: 'hourglass-signing-keys',
    concurrency: positive(values.concurrency ?? env.HOURGLASS_CONCURRENCY, 16, '--concurrency'),
    resyncMs: positive(values['resync-seconds'], 300, '--resync-seconds') * 1000,
    logLevel: values['log-level'] ?? env.LOG_LEVEL ?? 'info',
  };
}
