// The Helm chart charts/hourglass: lint, the values schema, the rendered objects, a server-side
// dry run, and a real install into the local cluster. kwok pods run nothing, so the installed
// controller never serves: these tests check what the chart creates, not the controller.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { stringify } from 'yaml';
import { podWebhook } from '../../src/k8s/pod-webhook.ts';
import { ensureCrds, eventually, kubectl, kubectlOk } from '../support/cluster.ts';
import {
  chartDir,
  find,
  helm,
  helmOk,
  parseManifests,
  render,
  requireHelm,
  template,
  withValuesFile,
  type Manifest,
} from '../support/helm.ts';

const POD_WEBHOOK_NAME = podWebhook('', '').name;
const runId = `${process.pid.toString(36)}${Date.now().toString(36)}`;
/** The release namespace of the dry runs and the install; deleted after the suite. */
const namespace = `hourglass-helm-${runId}`;

/** Values of the cert-manager variant, with every optional object switched on. */
const certManagerValues = {
  certManager: { enabled: true },
  serviceMonitor: { enabled: true, labels: { release: 'prometheus' } },
  replicas: 1,
  podDisruptionBudget: { maxUnavailable: '50%' },
};

const kindsOf = (manifests: Manifest[]) => manifests.map((m) => `${m.kind}/${m.metadata.name}`).sort();
const decode = (base64: string) => Buffer.from(base64, 'base64');
const allRules = (manifests: Manifest[]) =>
  manifests.filter((m) => m.kind === 'ClusterRole' || m.kind === 'Role').flatMap((m) => m.rules ?? []);

/**
 * Each case: a sentence, the bad values, and what helm must say about them. values.schema.json
 * refuses them in `helm template`, `helm install`, `helm upgrade` and `helm lint` alike.
 */
const badValues: [string, object, RegExp][] = [
  ['a negative replica count', { replicas: -1 }, /at '\/replicas': minimum: got -1, want 1/],
  [
    'an unknown log level',
    { logLevel: 'loud' },
    /at '\/logLevel': value must be one of 'error', 'warn', 'info', 'debug'/,
  ],
  [
    'a retainFor that is no Go duration',
    { retainFor: '1 week' },
    /at '\/retainFor': '1 week' does not match pattern/,
  ],
  [
    'a signing key rotation period that is no Go duration',
    { signingKeys: { rotationPeriod: '1 day' } },
    /at '\/signingKeys\/rotationPeriod': '1 day' does not match pattern/,
  ],
  [
    'a concurrency that is no number',
    { concurrency: 'many' },
    /at '\/concurrency': got string, want integer/,
  ],
  ['a misspelt key', { replica: 3 }, /additional properties 'replica' not allowed/],
  [
    'escalate in the grantable ceiling',
    {
      grantable: {
        rules: [{ apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['escalate'] }],
      },
    },
    /at '\/grantable\/rules\/0\/verbs\/0': value must be one of 'get'/,
  ],
  [
    'an issuer with a trailing slash',
    { issuer: 'https://hourglass.example.com/' },
    /at '\/issuer': 'https:\/\/hourglass\.example\.com\/' does not match pattern/,
  ],
  [
    'a root user',
    { podSecurityContext: { runAsUser: 0 } },
    /at '\/podSecurityContext\/runAsUser': minimum: got 0, want 1/,
  ],
  [
    'a maxUnavailable that is neither a number nor a percentage',
    { podDisruptionBudget: { maxUnavailable: 'half' } },
    /at '\/podDisruptionBudget\/maxUnavailable': 'half' does not match pattern/,
  ],
  [
    'several replicas without leader election',
    { replicas: 3, leaderElection: { enabled: false } },
    /at '\/leaderElection\/enabled': value must be true/,
  ],
  [
    'a cert-manager issuerRef without a name',
    { certManager: { enabled: true, issuerRef: { kind: 'ClusterIssuer' } } },
    /at '\/certManager\/issuerRef': missing property 'name'/,
  ],
];

/** Checks in the templates (helm lint ignores a template's fail, so only helm template is asked). */
const badCombinations: [string, object, RegExp][] = [
  [
    'a renewBeforeDays not below validityDays',
    { tls: { selfSigned: { validityDays: 30, renewBeforeDays: 30 } } },
    /tls\.selfSigned\.renewBeforeDays must be less than tls\.selfSigned\.validityDays/,
  ],
  [
    'several replicas without leader election, even without schema validation',
    { replicas: 2, leaderElection: { enabled: false } },
    /replicas is 2 but leaderElection\.enabled is false: more than one replica needs leader election/,
  ],
  [
    'an admission NetworkPolicy that names no peer (it would cut the API server off)',
    { webhook: { networkPolicy: { enabled: true, from: [] } } },
    /webhook\.networkPolicy\.from must name who may reach the admission port/,
  ],
];

describe('the Helm chart charts/hourglass', () => {
  before(async () => {
    await requireHelm();
    await ensureCrds();
    await kubectlOk(['create', 'namespace', namespace]);
  });

  after(async () => {
    await kubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']);
  });

  describe('lint', () => {
    it('passes helm lint --strict with the default values', async () => {
      const result = await helm(['lint', '--strict', chartDir]);
      expect(result.code, result.stdout + result.stderr).to.equal(0);
    });

    it('passes helm lint --strict with cert-manager, a ServiceMonitor and one replica', async () => {
      const result = await withValuesFile(certManagerValues, (args) =>
        helm(['lint', '--strict', chartDir, ...args]),
      );
      expect(result.code, result.stdout + result.stderr).to.equal(0);
    });
  });

  describe('values', () => {
    for (const [sentence, values, message] of badValues) {
      it(`refuses ${sentence}, in helm template and helm lint`, async () => {
        const rendered = await template('hourglass', namespace, values);
        expect(rendered.code, 'helm template accepted the values').to.not.equal(0);
        expect(rendered.stderr).to.match(message);
        const linted = await withValuesFile(values, (args) => helm(['lint', chartDir, ...args]));
        expect(linted.code, 'helm lint accepted the values').to.not.equal(0);
        expect(linted.stdout + linted.stderr).to.match(message);
      });
    }

    for (const [sentence, values, message] of badCombinations) {
      it(`refuses ${sentence}, in helm template`, async () => {
        const rendered = await template('hourglass', namespace, values, ['--skip-schema-validation']);
        expect(rendered.code, 'helm template accepted the values').to.not.equal(0);
        expect(rendered.stderr).to.match(message);
      });
    }

    it('passes the signing key rotation period and publish lead to the controller', async () => {
      const manifests = await render('hourglass', namespace, {
        signingKeys: { rotationPeriod: '6h', publishLead: '5m' },
      });
      const [container] = find(manifests, 'Deployment').spec.template.spec.containers;
      expect(container.env).to.deep.include({ name: 'HOURGLASS_KEY_ROTATION_PERIOD', value: '6h' });
      expect(container.env).to.deep.include({ name: 'HOURGLASS_KEY_PUBLISH_LEAD', value: '5m' });
    });

    it('accepts one replica without leader election', async () => {
      const manifests = await render('hourglass', namespace, {
        replicas: 1,
        leaderElection: { enabled: false },
      });
      const [container] = find(manifests, 'Deployment').spec.template.spec.containers;
      expect(container.env).to.deep.include({ name: 'HOURGLASS_LEADER_ELECTION', value: 'false' });
    });
  });

  describe('helm template with the default values', () => {
    let manifests: Manifest[] = [];
    before(async () => {
      manifests = await render('hourglass', 'hourglass-system');
    });

    it('renders every object of the chart, named after the release', () => {
      expect(kindsOf(manifests)).to.deep.equal(
        [
          'ClusterRole/hourglass-controller',
          'ClusterRole/hourglass-grantable',
          'ClusterRole/hourglass-grantable-default',
          'ClusterRoleBinding/hourglass-controller',
          'ClusterRoleBinding/hourglass-grantable',
          'Deployment/hourglass',
          'MutatingWebhookConfiguration/hourglass',
          'PodDisruptionBudget/hourglass',
          'Role/hourglass-leader-election',
          'RoleBinding/hourglass-leader-election',
          'Secret/hourglass-tls',
          'Service/hourglass',
          'ServiceAccount/hourglass',
          'ValidatingAdmissionPolicy/hourglass-status',
          'ValidatingAdmissionPolicyBinding/hourglass-status',
          'ValidatingWebhookConfiguration/hourglass',
        ].sort(),
      );
      for (const m of manifests) {
        if (
          !['ClusterRole', 'ClusterRoleBinding'].includes(m.kind) &&
          !m.kind.endsWith('WebhookConfiguration') &&
          !m.kind.startsWith('ValidatingAdmissionPolicy')
        ) {
          expect(m.metadata.namespace, `${m.kind}/${m.metadata.name}`).to.equal('hourglass-system');
        }
      }
    });

    it('runs two hardened replicas: non-root, read-only root filesystem, no privilege escalation, seccomp, no capabilities', () => {
      const deployment = find(manifests, 'Deployment');
      expect(deployment.spec.replicas).to.equal(2);
      const pod = deployment.spec.template.spec;
      expect(pod.securityContext).to.deep.include({ runAsNonRoot: true, runAsUser: 65532 });
      expect(pod.securityContext.seccompProfile).to.deep.equal({ type: 'RuntimeDefault' });
      const [container] = pod.containers;
      expect(container.securityContext).to.deep.equal({
        allowPrivilegeEscalation: false,
        privileged: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(container.image).to.equal('ghcr.io/hourglass-dev/hourglass:0.1.0');
      expect(container.resources.requests).to.deep.equal({ cpu: '100m', memory: '128Mi' });
      expect(container.resources.limits).to.deep.equal({ memory: '512Mi' });
      expect(container.livenessProbe.httpGet).to.deep.equal({ path: '/healthz', port: 'http-metrics' });
      expect(container.readinessProbe.httpGet).to.deep.equal({ path: '/readyz', port: 'http-metrics' });
      expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).to.equal(0);
      expect(find(manifests, 'PodDisruptionBudget').spec.maxUnavailable).to.equal(1);
    });

    it('configures the controller: namespace from the downward API, the Service URL as issuer, ports, TLS files, leader election', () => {
      const [container] = find(manifests, 'Deployment').spec.template.spec.containers;
      const env = Object.fromEntries(
        container.env.map((e: Manifest) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
      );
      expect(env).to.deep.equal({
        HOURGLASS_NAMESPACE: 'metadata.namespace',
        HOURGLASS_ISSUER: 'https://hourglass.hourglass-system.svc',
        HOURGLASS_CONCURRENCY: '16',
        LOG_LEVEL: 'info',
        HOURGLASS_HTTPS_PORT: '8443',
        HOURGLASS_HTTP_PORT: '8080',
        HOURGLASS_ADMISSION_PORT: '9443',
        HOURGLASS_TLS_CERT_FILE: '/var/run/hourglass/tls/tls.crt',
        HOURGLASS_TLS_KEY_FILE: '/var/run/hourglass/tls/tls.key',
        HOURGLASS_TLS_CA_FILE: '/var/run/hourglass/tls/ca.crt',
        HOURGLASS_LEADER_ELECTION: 'true',
        HOURGLASS_RETAIN_FOR: '168h',
        HOURGLASS_AWAIT_SUBJECT: '2m',
        HOURGLASS_KEY_ROTATION_PERIOD: '24h',
        HOURGLASS_KEY_PUBLISH_LEAD: '1m',
      });
      const service = find(manifests, 'Service');
      expect(service.spec.ports).to.deep.include({
        name: 'https',
        port: 443,
        targetPort: 'https',
        protocol: 'TCP',
      });
      // Admission has a port of its own, apart from the issuer endpoints.
      expect(service.spec.ports).to.deep.include({
        name: 'admission',
        port: 9443,
        targetPort: 'admission',
        protocol: 'TCP',
      });
      expect(container.ports).to.deep.include({ name: 'admission', containerPort: 9443, protocol: 'TCP' });
      const pod = find(manifests, 'Deployment').spec.template.spec;
      const tlsVolume = pod.volumes.find((v: Manifest) => v.name === 'tls');
      expect(tlsVolume.secret.secretName).to.equal('hourglass-tls');
    });

    it('gives the controller least privilege: no escalate, bind, impersonate or wildcard in any rule', () => {
      const rules = allRules(manifests);
      expect(rules).to.have.length.greaterThan(5);
      for (const rule of rules) {
        for (const field of ['verbs', 'resources', 'apiGroups']) {
          expect(rule[field] ?? [], JSON.stringify(rule)).to.not.include('*');
        }
        expect(rule.verbs, JSON.stringify(rule)).to.not.include.members(['escalate']);
        expect(rule.verbs).to.not.include('bind');
        expect(rule.verbs).to.not.include('impersonate');
      }
      const lease = find(manifests, 'Role', 'hourglass-leader-election');
      expect(lease.rules).to.deep.equal([
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          resourceNames: ['hourglass-controller'],
          verbs: ['get', 'update'],
        },
      ]);
    });

    it('caps grants with the aggregated ClusterRole hourglass-grantable and a default read-only member', () => {
      const grantable = find(manifests, 'ClusterRole', 'hourglass-grantable');
      expect(grantable.aggregationRule).to.deep.equal({
        clusterRoleSelectors: [{ matchLabels: { 'hourglass.dev/aggregate-to-grantable': 'true' } }],
      });
      expect(grantable.rules, 'rules are left to the aggregation controller').to.equal(undefined);
      const binding = find(manifests, 'ClusterRoleBinding', 'hourglass-grantable');
      expect(binding.roleRef.name).to.equal('hourglass-grantable');
      expect(binding.subjects).to.deep.equal([
        { kind: 'ServiceAccount', name: 'hourglass', namespace: 'hourglass-system' },
      ]);
      const member = find(manifests, 'ClusterRole', 'hourglass-grantable-default');
      expect(member.metadata.labels['hourglass.dev/aggregate-to-grantable']).to.equal('true');
      expect(member.rules.flatMap((r: Manifest) => r.verbs)).to.satisfy((verbs: string[]) =>
        verbs.every((v) => ['get', 'list', 'watch'].includes(v)),
      );
      expect(member.rules.flatMap((r: Manifest) => r.resources)).to.include.members([
        'configmaps',
        'secrets',
        'pods/log',
        'deployments',
        'cronjobs',
      ]);
    });

    it('registers fail-closed webhooks for the hourglass kinds, trusting a generated CA that signed the serving certificate', () => {
      const secret = find(manifests, 'Secret', 'hourglass-tls');
      expect(secret.type).to.equal('kubernetes.io/tls');
      const ca = new X509Certificate(decode(secret.data['ca.crt']));
      const cert = new X509Certificate(decode(secret.data['tls.crt']));
      expect(ca.ca).to.equal(true);
      expect(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'signed by the CA').to.equal(true);
      expect(cert.checkPrivateKey(createPrivateKey(decode(secret.data['tls.key'])))).to.equal(true);
      expect(cert.subjectAltName).to.include('DNS:hourglass.hourglass-system.svc');
      expect(new Date(cert.validTo).getTime()).to.be.greaterThan(Date.now() + 365 * 86_400_000);

      for (const [kind, path] of [
        ['MutatingWebhookConfiguration', '/mutate'],
        ['ValidatingWebhookConfiguration', '/validate'],
      ] as const) {
        const [webhook, ...others] = find(manifests, kind).webhooks.filter(
          (w: Manifest) => w.name !== POD_WEBHOOK_NAME,
        );
        expect(others).to.have.length(0);
        expect(webhook).to.deep.include({
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
        });
        expect(webhook.clientConfig.service).to.deep.equal({
          name: 'hourglass',
          namespace: 'hourglass-system',
          path,
          port: 9443,
        });
        expect(webhook.clientConfig.caBundle, `${kind} caBundle`).to.equal(secret.data['ca.crt']);
        const covered = webhook.rules.flatMap((r: Manifest) =>
          r.resources.flatMap((res: string) =>
            r.operations.map((op: string) => `${r.apiGroups}/${r.apiVersions}/${res}:${op}`),
          ),
        );
        expect(covered.sort()).to.deep.equal(
          [
            'hourglass.dev/v1alpha1/accessrequests:CREATE',
            'hourglass.dev/v1alpha1/accessrequests:UPDATE',
            'hourglass.dev/v1alpha1/accessrequests/status:UPDATE',
            'hourglass.dev/v1alpha1/accesspolicies:CREATE',
            'hourglass.dev/v1alpha1/accesspolicies:UPDATE',
            'hourglass.dev/v1alpha1/clusteraccesspolicies:CREATE',
            'hourglass.dev/v1alpha1/clusteraccesspolicies:UPDATE',
          ].sort(),
        );
      }
    });

    it('registers the pod webhook of zero-code adoption as a local controller does: opted-in pods only, fail closed', () => {
      const secret = find(manifests, 'Secret', 'hourglass-tls');
      const webhook = find(manifests, 'MutatingWebhookConfiguration').webhooks.find(
        (w: Manifest) => w.name === POD_WEBHOOK_NAME,
      );
      const local = podWebhook('https://unused/mutate-pods', '');
      expect(webhook.clientConfig.service).to.deep.equal({
        name: 'hourglass',
        namespace: 'hourglass-system',
        path: '/mutate-pods',
        port: 9443,
      });
      expect(webhook.clientConfig.caBundle).to.equal(secret.data['ca.crt']);
      for (const field of [
        'failurePolicy',
        'sideEffects',
        'admissionReviewVersions',
        'objectSelector',
        'rules',
        'reinvocationPolicy',
      ])
        expect(webhook[field], field).to.deep.equal(local[field as keyof typeof local]);
    });
  });

  describe('helm template with other values', () => {
    it('switches to cert-manager: a CA Issuer, a serving Certificate and inject-ca-from instead of a generated Secret', async () => {
      const manifests = await render('hourglass', 'hourglass-system', certManagerValues);
      expect(manifests.filter((m) => m.kind === 'Secret')).to.have.length(0);
      const serving = find(manifests, 'Certificate', 'hourglass-serving');
      expect(serving.spec.secretName).to.equal('hourglass-tls');
      expect(serving.spec.dnsNames).to.include('hourglass.hourglass-system.svc');
      expect(serving.spec.issuerRef).to.deep.equal({ kind: 'Issuer', name: 'hourglass-ca' });
      expect(find(manifests, 'Certificate', 'hourglass-ca').spec.isCA).to.equal(true);
      expect(find(manifests, 'Issuer', 'hourglass-selfsigned').spec).to.deep.equal({ selfSigned: {} });
      expect(find(manifests, 'Issuer', 'hourglass-ca').spec).to.deep.equal({
        ca: { secretName: 'hourglass-ca' },
      });
      for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
        const config = find(manifests, kind);
        expect(config.metadata.annotations['cert-manager.io/inject-ca-from']).to.equal(
          'hourglass-system/hourglass-serving',
        );
        expect(config.webhooks[0].clientConfig.caBundle).to.equal(undefined);
      }
      expect(find(manifests, 'PodDisruptionBudget').spec.maxUnavailable).to.equal('50%');
    });

    it("uses the platform's issuer when certManager.issuerRef is set", async () => {
      const manifests = await render('hourglass', 'hourglass-system', {
        certManager: { enabled: true, issuerRef: { kind: 'ClusterIssuer', name: 'internal-ca' } },
      });
      expect(manifests.filter((m) => m.kind === 'Issuer')).to.have.length(0);
      expect(find(manifests, 'Certificate').spec.issuerRef).to.deep.equal({
        kind: 'ClusterIssuer',
        name: 'internal-ca',
      });
    });

    it('renders a ServiceMonitor that scrapes /metrics on the metrics port', async () => {
      const manifests = await render('hourglass', 'hourglass-system', certManagerValues);
      const monitor = find(manifests, 'ServiceMonitor');
      expect(monitor.metadata.labels.release).to.equal('prometheus');
      expect(monitor.spec.endpoints).to.deep.equal([
        { port: 'http-metrics', path: '/metrics', scheme: 'http', interval: '30s', scrapeTimeout: '10s' },
      ]);
      const service = find(manifests, 'Service');
      expect(service.spec.ports.map((p: Manifest) => p.name)).to.include('http-metrics');
    });

    it('renders no NetworkPolicy by default, and one that lets only the given peers reach the admission port', async () => {
      expect(kindsOf(await render('hourglass', 'hourglass-system'))).to.not.include(
        'NetworkPolicy/hourglass-admission',
      );
      const apiServer = { ipBlock: { cidr: '10.0.0.0/24' } };
      const manifests = await render('hourglass', 'hourglass-system', {
        webhook: { networkPolicy: { enabled: true, from: [apiServer] } },
      });
      const policy = find(manifests, 'NetworkPolicy');
      expect(policy.metadata.name).to.equal('hourglass-admission');
      const podLabels = find(manifests, 'Deployment').spec.template.metadata.labels;
      for (const [key, value] of Object.entries(policy.spec.podSelector.matchLabels))
        expect(podLabels[key], key).to.equal(value);
      expect(policy.spec.policyTypes).to.deep.equal(['Ingress']);
      expect(policy.spec.ingress).to.deep.equal([
        // The issuer endpoints and /metrics stay open to every peer.
        {
          ports: [
            { port: 'https', protocol: 'TCP' },
            { port: 'http-metrics', protocol: 'TCP' },
          ],
        },
        { ports: [{ port: 'admission', protocol: 'TCP' }], from: [apiServer] },
      ]);
      const [container] = find(manifests, 'Deployment').spec.template.spec.containers;
      const named = container.ports.map((p: Manifest) => p.name);
      for (const rule of policy.spec.ingress)
        for (const { port } of rule.ports) expect(named, `container port ${port}`).to.include(port);
    });

    it('widens the default member of the ceiling from values, and ships none for []', async () => {
      const widened = await render('hourglass', 'hourglass-system', {
        grantable: { rules: [{ apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['patch'] }] },
      });
      expect(find(widened, 'ClusterRole', 'hourglass-grantable-default').rules).to.deep.equal([
        { apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['patch'] },
      ]);
      const none = await render('hourglass', 'hourglass-system', { grantable: { rules: [] } });
      expect(kindsOf(none)).to.not.include('ClusterRole/hourglass-grantable-default');
      expect(kindsOf(none)).to.include('ClusterRole/hourglass-grantable');
    });

    it('leaves the user and groups to the platform when they are null (OpenShift), and stays hardened', async () => {
      const manifests = await render('hourglass', 'hourglass-system', {
        podSecurityContext: { runAsUser: null, runAsGroup: null, fsGroup: null },
      });
      const pod = find(manifests, 'Deployment').spec.template.spec;
      expect(pod.securityContext).to.deep.equal({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.containers[0].securityContext.readOnlyRootFilesystem).to.equal(true);
    });

    it('names every object after a release that does not contain "hourglass", and honours issuer and image digest', async () => {
      const digest = `sha256:${'a'.repeat(64)}`;
      const manifests = await render('jit', 'security', {
        issuer: 'https://tokens.example.com',
        image: { digest },
      });
      expect(find(manifests, 'Service').metadata.name).to.equal('jit-hourglass');
      find(manifests, 'ClusterRole', 'jit-hourglass-grantable');
      const [container] = find(manifests, 'Deployment').spec.template.spec.containers;
      expect(container.image).to.equal(`ghcr.io/hourglass-dev/hourglass@${digest}`);
      const issuer = container.env.find((e: Manifest) => e.name === 'HOURGLASS_ISSUER');
      expect(issuer.value).to.equal('https://tokens.example.com');
      const cert = new X509Certificate(decode(find(manifests, 'Secret').data['tls.crt']));
      expect(cert.subjectAltName).to.include('DNS:jit-hourglass.security.svc');
    });
  });

  describe('kubectl apply --dry-run=server of the rendered chart', () => {
    const dryRun = async (manifests: Manifest[]) => {
      const result = await kubectl(
        ['apply', '--dry-run=server', '-f', '-'],
        manifests.map((m) => stringify(m)).join('---\n'),
      );
      expect(result.code, result.stderr).to.equal(0);
      return result.stdout;
    };

    it('is accepted by the API server with the default values, CRDs included', async () => {
      const manifests = await render(`hg-dry-${runId}`, namespace, {}, ['--include-crds']);
      expect(manifests.filter((m) => m.kind === 'CustomResourceDefinition')).to.have.length(3);
      const out = await dryRun(manifests);
      expect(out).to.match(/deployment\.apps\/hg-dry-\S+ created \(server dry run\)/);
      expect(out).to.match(/mutatingwebhookconfiguration\.admissionregistration\.k8s\.io\/\S+ created/);
    });

    it('is accepted with cert-manager and a ServiceMonitor (their own kinds aside: the local cluster has no such CRDs)', async () => {
      const manifests = await render(`hg-dry-${runId}`, namespace, certManagerValues);
      const foreign = ['cert-manager.io/v1', 'monitoring.coreos.com/v1'];
      expect(manifests.filter((m) => foreign.includes(m.apiVersion))).to.have.length(5);
      await dryRun(manifests.filter((m) => !foreign.includes(m.apiVersion)));
    });
  });

  describe('helm install into the local cluster', () => {
    const release = `hg-test-${runId}`;
    const fullname = `${release}-hourglass`;
    const serviceAccount = `system:serviceaccount:${namespace}:${fullname}`;
    const clusterScoped = [
      `mutatingwebhookconfiguration/${fullname}`,
      `validatingwebhookconfiguration/${fullname}`,
      `clusterrole/${fullname}-controller`,
      `clusterrole/${fullname}-grantable`,
      `clusterrole/${fullname}-grantable-default`,
      `clusterrolebinding/${fullname}-controller`,
      `clusterrolebinding/${fullname}-grantable`,
      `validatingadmissionpolicy/${fullname}-status`,
      `validatingadmissionpolicybinding/${fullname}-status`,
    ];
    const policy = {
      apiVersion: 'hourglass.dev/v1alpha1',
      kind: 'AccessPolicy',
      metadata: { name: 'probe', namespace },
      spec: {
        subjects: { serviceAccounts: ['etl'] },
        requesters: { self: true },
        allow: { token: { audiences: ['orders-api'], actions: ['orders:read'], targets: ['x'] } },
        maxTTL: '1h',
        defaultTTL: '15m',
        maxLifetime: '8h',
      },
    };
    const writePolicy = () => kubectl(['create', '--dry-run=server', '-f', '-'], stringify(policy));
    const canI = async (...args: string[]) =>
      (await kubectl(['auth', 'can-i', ...args, `--as=${serviceAccount}`])).stdout.trim();
    const tlsData = async () =>
      JSON.parse(await kubectlOk(['-n', namespace, 'get', 'secret', `${fullname}-tls`, '-o', 'json'])).data;
    const caBundles = async () =>
      Promise.all(
        ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration'].map(
          async (kind) =>
            JSON.parse(await kubectlOk(['get', kind, fullname, '-o', 'json'])).webhooks[0].clientConfig
              .caBundle,
        ),
      );
    /**
     * Nothing serves these webhooks, and with a Service reference the API server would dial an
     * address off this machine for every hourglass write: select no object until uninstalled.
     */
    const neutralizeWebhooks = async () => {
      for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
        const config = JSON.parse(await kubectlOk(['get', kind, fullname, '-o', 'json']));
        const ops = (config.webhooks as unknown[]).map((_, i) => ({
          op: 'add',
          path: `/webhooks/${i}/objectSelector`,
          value: { matchLabels: { 'hourglass.dev/helm-test': 'selects-nothing' } },
        }));
        await kubectlOk(['patch', kind, fullname, '--type=json', '-p', JSON.stringify(ops)]);
      }
      // The status policy would refuse the local controllers' status writes: bind it to nothing.
      await kubectlOk([
        'patch',
        'validatingadmissionpolicybinding',
        `${fullname}-status`,
        '--type=merge',
        '-p',
        JSON.stringify({
          spec: {
            matchResources: {
              objectSelector: { matchLabels: { 'hourglass.dev/helm-test': 'selects-nothing' } },
            },
          },
        }),
      ]);
    };
    let installed = false;
    const uninstall = async () => {
      await helmOk(['uninstall', release, '--namespace', namespace, '--wait', '--timeout', '2m']);
      installed = false;
    };

    before(async () => {
      // A short webhook timeout: nothing serves it, and one test waits for the refusal.
      await helmOk([
        'install',
        release,
        chartDir,
        '--namespace',
        namespace,
        '--set',
        'webhook.timeoutSeconds=3',
        '--timeout',
        '2m',
      ]);
      installed = true;
      await neutralizeWebhooks();
    });

    // While it is installed, every hourglass write in the shared cluster is refused: never leave it.
    after(async () => {
      if (installed) await uninstall();
    });

    it('creates every object of the release, and keeps the CRDs that already existed', async () => {
      const manifests = parseManifests(await helmOk(['get', 'manifest', release, '--namespace', namespace]));
      expect(manifests.length).to.be.greaterThan(10);
      const live = JSON.parse(
        await kubectlOk(['get', '-o', 'json', '-f', '-'], manifests.map((m) => stringify(m)).join('---\n')),
      );
      expect(kindsOf(live.items)).to.deep.equal(kindsOf(manifests));
      for (const crd of ['accessrequests', 'accesspolicies', 'clusteraccesspolicies']) {
        await kubectlOk(['get', 'crd', `${crd}.hourglass.dev`]);
      }
      const notes = await helmOk(['get', 'notes', release, '--namespace', namespace]);
      expect(notes).to.include(`https://${fullname}.${namespace}.svc/.well-known/jwks.json`);
    });

    it('schedules the two controller pods', async () => {
      await eventually(
        async () => {
          const pods = JSON.parse(
            await kubectlOk([
              '-n',
              namespace,
              'get',
              'pods',
              '-l',
              `app.kubernetes.io/instance=${release}`,
              '-o',
              'json',
            ]),
          ).items;
          expect(pods).to.have.length(2);
          for (const pod of pods) expect(pod.spec.nodeName, pod.metadata.name).to.equal('kwok-node-0');
        },
        { timeout: 60_000, what: 'two scheduled controller pods' },
      );
    });

    it('lets the controller hold the grantable ceiling by aggregation, and nothing that escalates', async () => {
      await eventually(
        async () => {
          const role = JSON.parse(
            await kubectlOk(['get', 'clusterrole', `${fullname}-grantable`, '-o', 'json']),
          );
          expect((role.rules ?? []).flatMap((r: Manifest) => r.resources)).to.include('configmaps');
        },
        { what: 'the aggregated grantable ClusterRole' },
      );
      const expectations: [string[], string][] = [
        [['get', 'configmaps', '-n', 'default'], 'yes'],
        [['list', 'deployments.apps', '-n', 'default'], 'yes'],
        [['create', 'rolebindings.rbac.authorization.k8s.io', '-n', 'default'], 'yes'],
        [['create', 'subjectaccessreviews.authorization.k8s.io'], 'yes'],
        [['patch', 'accessrequests.hourglass.dev/status', '-n', 'default'], 'yes'],
        [['update', 'leases.coordination.k8s.io/hourglass-controller', '-n', namespace], 'yes'],
        [['update', 'leases.coordination.k8s.io/other', '-n', namespace], 'no'],
        [['create', 'leases.coordination.k8s.io', '-n', 'default'], 'no'],
        [['delete', 'pods', '-n', 'default'], 'no'],
        [['create', 'accesspolicies.hourglass.dev', '-n', 'default'], 'no'],
        [['escalate', 'roles.rbac.authorization.k8s.io', '-n', 'default'], 'no'],
        [['bind', 'clusterroles.rbac.authorization.k8s.io'], 'no'],
        [['impersonate', 'users'], 'no'],
        [['impersonate', 'serviceaccounts', '-n', 'default'], 'no'],
        [['create', 'mutatingwebhookconfigurations.admissionregistration.k8s.io'], 'no'],
      ];
      for (const [args, answer] of expectations) {
        expect(await canI(...args), `can-i ${args.join(' ')}`).to.equal(answer);
      }
    });

    it('keeps the CA and serving certificate on helm upgrade', async () => {
      const before = { tls: await tlsData(), caBundles: await caBundles() };
      expect(before.caBundles).to.deep.equal([before.tls['ca.crt'], before.tls['ca.crt']]);
      await helmOk([
        'upgrade',
        release,
        chartDir,
        '--namespace',
        namespace,
        '--reuse-values',
        '--timeout',
        '2m',
      ]);
      await neutralizeWebhooks();
      expect(await tlsData()).to.deep.equal(before.tls);
      expect(await caBundles()).to.deep.equal(before.caBundles);
    });

    it('generates a new CA on the first upgrade within renewBeforeDays of expiry', async () => {
      const before = await tlsData();
      await helmOk([
        'upgrade',
        release,
        chartDir,
        '--namespace',
        namespace,
        '--reuse-values',
        '--set',
        'tls.selfSigned.validityDays=4000,tls.selfSigned.renewBeforeDays=3999',
        '--timeout',
        '2m',
      ]);
      await neutralizeWebhooks();
      const after = await tlsData();
      expect(after['ca.crt']).to.not.equal(before['ca.crt']);
      expect(await caBundles()).to.deep.equal([after['ca.crt'], after['ca.crt']]);
      const cert = new X509Certificate(decode(after['tls.crt']));
      expect(cert.verify(new X509Certificate(decode(after['ca.crt'])).publicKey)).to.equal(true);
    });

    it('helm uninstall removes the webhooks and every cluster-scoped object, and hourglass writes work again', async () => {
      await uninstall();
      for (const object of clusterScoped) {
        const result = await kubectl(['get', object]);
        expect(result.code, `${object} is still there`).to.not.equal(0);
        expect(result.stderr).to.match(/NotFound/);
      }
      const left = await kubectlOk([
        '-n',
        namespace,
        'get',
        'deployments,services,secrets,roles',
        '-o',
        'name',
      ]);
      expect(left.trim()).to.equal('');
      const result = await writePolicy();
      expect(result.code, result.stderr).to.equal(0);
    });
  });
});
