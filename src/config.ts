import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from './policy/duration.ts';

const IN_CLUSTER_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface Config {
  /** The namespace hourglass runs in: its signing keys live there, and nothing in it is granted. */
  namespace: string;
  /** The `iss` of every token: in-cluster the Service URL; locally, when unset, the HTTPS listening URL. */
  issuer: string | undefined;
  listenAddress: string;
  /** OIDC discovery, JWKS and introspection (TLS): the issuer's port. 0 picks a free port. */
  httpsPort: number;
  /** The admission webhook (TLS), for the API server only. 0 picks a free port. */
  admissionPort: number;
  /** Metrics and health probes (plain HTTP). 0 picks a free port. */
  httpPort: number;
  tls: { certFile: string; keyFile: string; caFile: string | undefined } | undefined;
  signingKeySecretName: string;
  /** How long each signing key signs before the next one takes over. */
  keyRotationPeriodMs: number;
  /** How long a new signing key is published in the JWKS before it signs. */
  keyPublishLeadMs: number;
  /** Requests reconciled at once. */
  concurrency: number;
  /** Every cached object is reconciled again this often. */
  resyncMs: number;
  logLevel: string;
  /** Reconcile only while holding the Lease hourglass-controller in the controller namespace. */
  leaderElection: boolean;
  /** Final AccessRequests are deleted this long after they ended. */
  retainForMs: number;
  /** A request waits this long after its creation for its subject pod or Job to be created. */
  awaitSubjectMs: number;
  /** A gated opted-in pod whose grant will never be live is failed this long after that became so. */
  adoptionRefusalGraceMs: number;
  /** Register the admission webhook by URL (a controller running outside the cluster). */
  registerWebhooks: boolean;
}

const HELP = `Usage: hourglass-controller [options]
  --namespace NAME        controller namespace (env HOURGLASS_NAMESPACE; in-cluster: the pod's; else hourglass-system)
  --issuer URL            token issuer (env HOURGLASS_ISSUER; in-cluster default https://hourglass.<namespace>.svc,
                          locally the HTTPS listening URL)
  --listen-address ADDR   (env HOURGLASS_LISTEN_ADDRESS; in-cluster 0.0.0.0, locally 127.0.0.1)
  --https-port N          OIDC discovery, JWKS, /introspect (env HOURGLASS_HTTPS_PORT; in-cluster 8443, locally free)
  --admission-port N      the admission webhook, /mutate and /validate, with the same certificate
                          (env HOURGLASS_ADMISSION_PORT; in-cluster 9443, locally free)
  --http-port N           /metrics, /healthz, /readyz (env HOURGLASS_HTTP_PORT; in-cluster 8080, locally free)
  --tls-cert-file F       serving certificate (env HOURGLASS_TLS_CERT_FILE; locally .cluster/pki/hourglass.crt)
  --tls-key-file F        its key (env HOURGLASS_TLS_KEY_FILE)
  --tls-ca-file F         CA that signed it, for webhook caBundles (env HOURGLASS_TLS_CA_FILE)
  --key-rotation-period D how long each signing key signs (env HOURGLASS_KEY_ROTATION_PERIOD; Go duration,
                          default 24h); an old key stays in the JWKS until its last token has expired
  --key-publish-lead D    how long a new key is in the JWKS before it signs (env HOURGLASS_KEY_PUBLISH_LEAD;
                          default 1m; shorter than the rotation period)
  --concurrency N         requests reconciled at once (env HOURGLASS_CONCURRENCY; default 16)
  --resync-seconds N      full resync period (default 300)
  --log-level LEVEL       error|warn|info|debug (env LOG_LEVEL; default info)
  --retain-for DURATION   delete final AccessRequests this long after they ended (env HOURGLASS_RETAIN_FOR;
                          default 168h; the audit log is the lasting record)
  --await-subject DURATION
                          how long a request created before its pod or Job waits for it before it fails
                          SubjectNotFound (env HOURGLASS_AWAIT_SUBJECT; default 2m; 0s fails at once)
  --adoption-refusal-grace D  how long an opted-in pod whose request was denied stays gated, with its
                          Events, before hourglass fails it (env HOURGLASS_ADOPTION_REFUSAL_GRACE; default 2m)
  --[no-]register-webhooks
                          register the admission webhook by URL (env HOURGLASS_REGISTER_WEBHOOKS=true|false;
                          default: true outside a cluster; in-cluster the Helm chart registers it)
  --[no-]leader-election  reconcile only while holding the Lease hourglass-controller (env
                          HOURGLASS_LEADER_ELECTION=true|false; default true in-cluster, false locally)
The cluster is $KUBECONFIG, else .cluster/kubeconfig when it exists, else the in-cluster service account.`;

export function loadConfig(argv = process.argv.slice(2), env = process.env): Config {
  const { values } = parseArgs({
    args: argv,
    allowNegative: true,
    options: {
      namespace: { type: 'string' },
      issuer: { type: 'string' },
      'listen-address': { type: 'string' },
      'https-port': { type: 'string' },
      'admission-port': { type: 'string' },
      'http-port': { type: 'string' },
      'tls-cert-file': { type: 'string' },
      'tls-key-file': { type: 'string' },
      'tls-ca-file': { type: 'string' },
      'key-rotation-period': { type: 'string' },
      'key-publish-lead': { type: 'string' },
      concurrency: { type: 'string' },
      'resync-seconds': { type: 'string' },
      'log-level': { type: 'string' },
      'leader-election': { type: 'boolean' },
      'register-webhooks': { type: 'boolean' },
      'retain-for': { type: 'string' },
      'await-subject': { type: 'string' },
      'adoption-refusal-grace': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const inCluster = existsSync(IN_CLUSTER_NAMESPACE_FILE) && !env.KUBECONFIG;
  const namespace =
    values.namespace ??
    env.HOURGLASS_NAMESPACE ??
    (inCluster ? readFileSync(IN_CLUSTER_NAMESPACE_FILE, 'utf8').trim() : 'hourglass-system');
  const integer = (value: string | undefined, fallback: number, name: string, min = 1) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new Error(`${name} must be an integer >= ${min}, got "${value}"`);
    return n;
  };
  const localPki = path.join(process.cwd(), '.cluster', 'pki');
  const positiveMs = (value: string, name: string) => {
    const ms = parseDuration(value) * 1000;
    if (!(ms > 0)) throw new Error(`${name} must be a positive duration, got "${value}"`);
    return ms;
  };
  const nonNegativeMs = (value: string, name: string) => {
    const ms = parseDuration(value) * 1000;
    if (!(ms >= 0)) throw new Error(`${name} must not be negative, got "${value}"`);
    return ms;
  };
  const keyRotationPeriodMs = positiveMs(
    values['key-rotation-period'] ?? env.HOURGLASS_KEY_ROTATION_PERIOD ?? '24h',
    '--key-rotation-period',
  );
  const keyPublishLeadMs = positiveMs(
    values['key-publish-lead'] ?? env.HOURGLASS_KEY_PUBLISH_LEAD ?? '1m',
    '--key-publish-lead',
  );
  if (keyPublishLeadMs >= keyRotationPeriodMs) {
    throw new Error('--key-publish-lead must be shorter than --key-rotation-period');
  }
  const localCert = path.join(localPki, 'hourglass.crt');
  const certFile =
    values['tls-cert-file'] ?? env.HOURGLASS_TLS_CERT_FILE ?? (existsSync(localCert) ? localCert : undefined);
  const keyFile = values['tls-key-file'] ?? env.HOURGLASS_TLS_KEY_FILE ?? certFile?.replace(/\.crt$/, '.key');
  const caFile =
    values['tls-ca-file'] ??
    env.HOURGLASS_TLS_CA_FILE ??
    (certFile === localCert ? path.join(localPki, 'ca.crt') : undefined);
  return {
    namespace,
    issuer:
      values.issuer ?? env.HOURGLASS_ISSUER ?? (inCluster ? `https://hourglass.${namespace}.svc` : undefined),
    listenAddress:
      values['listen-address'] ?? env.HOURGLASS_LISTEN_ADDRESS ?? (inCluster ? '0.0.0.0' : '127.0.0.1'),
    httpsPort: integer(
      values['https-port'] ?? env.HOURGLASS_HTTPS_PORT,
      inCluster ? 8443 : 0,
      '--https-port',
      0,
    ),
    admissionPort: integer(
      values['admission-port'] ?? env.HOURGLASS_ADMISSION_PORT,
      inCluster ? 9443 : 0,
      '--admission-port',
      0,
    ),
    httpPort: integer(values['http-port'] ?? env.HOURGLASS_HTTP_PORT, inCluster ? 8080 : 0, '--http-port', 0),
    tls: certFile && keyFile ? { certFile, keyFile, caFile } : undefined,
    signingKeySecretName: 'hourglass-signing-keys',
    keyRotationPeriodMs,
    keyPublishLeadMs,
    concurrency: integer(values.concurrency ?? env.HOURGLASS_CONCURRENCY, 16, '--concurrency'),
    resyncMs: integer(values['resync-seconds'], 300, '--resync-seconds') * 1000,
    logLevel: values['log-level'] ?? env.LOG_LEVEL ?? 'info',
    retainForMs: parseDuration(values['retain-for'] ?? env.HOURGLASS_RETAIN_FOR ?? '168h') * 1000,
    awaitSubjectMs: nonNegativeMs(
      values['await-subject'] ?? env.HOURGLASS_AWAIT_SUBJECT ?? '2m',
      '--await-subject',
    ),
    adoptionRefusalGraceMs:
      parseDuration(values['adoption-refusal-grace'] ?? env.HOURGLASS_ADOPTION_REFUSAL_GRACE ?? '2m') * 1000,
    registerWebhooks:
      values['register-webhooks'] ??
      (env.HOURGLASS_REGISTER_WEBHOOKS ? env.HOURGLASS_REGISTER_WEBHOOKS === 'true' : !inCluster),
    leaderElection:
      values['leader-election'] ??
      (env.HOURGLASS_LEADER_ELECTION ? env.HOURGLASS_LEADER_ELECTION === 'true' : inCluster),
  };
}
