import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { AdmissionRequest } from '../../../src/http/admission.ts';
import { mutatePod } from '../../../src/http/pod-admission.ts';

function review(pod: V1Pod, operation: AdmissionRequest['operation'] = 'CREATE'): AdmissionRequest {
  return {
    uid: 'u',
    resource: { group: '', version: 'v1', resource: 'pods' },
    operation,
    userInfo: { username: 'system:serviceaccount:kube-system:job-controller' },
    object: pod as Record<string, unknown>,
  };
}

const jobPod = (spec: Partial<V1Pod['spec']> = {}): V1Pod => ({
  metadata: {
    generateName: 'etl-',
    labels: { 'hourglass.dev/inject': 'true' },
    annotations: { 'hourglass.dev/access': 'get secrets/orders-db' },
    ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'etl', uid: 'job-uid', controller: true }],
  },
  spec: { containers: [{ name: 'main', image: 'busybox' }], ...spec },
});

/** The pod as the API server stores it after the webhook's JSON patch. */
function applied(pod: V1Pod, patch: object[] | undefined): V1Pod {
  const copy = structuredClone(pod) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  for (const { path, value } of (patch ?? []) as { path: string; value: unknown }[]) {
    const keys = path.split('/').slice(1);
    const last = keys.pop()!;
    const parent = keys.reduce((node, key) => node[key], copy);
    if (last === '-') parent.push(value);
    else parent[last] = value;
  }
  return copy as V1Pod;
}

describe('pod admission of zero-code adoption', () => {
  it("gates a Job's pod and mounts its Job's grant Secret, 0444, in every container", () => {
    const pod = jobPod({ initContainers: [{ name: 'init', image: 'busybox' }] });
    const admitted = applied(pod, mutatePod(review(pod)).patch);
    expect(admitted.spec?.schedulingGates).to.deep.equal([{ name: 'hourglass.dev/grant' }]);
    expect(admitted.spec?.volumes).to.deep.equal([
      {
        name: 'hourglass-grant',
        secret: { secretName: 'job-etl-grant', optional: true, defaultMode: 0o444 },
      },
    ]);
    for (const container of [...admitted.spec!.initContainers!, ...admitted.spec!.containers])
      expect(container.volumeMounts).to.deep.equal([
        { name: 'hourglass-grant', mountPath: '/var/run/hourglass', readOnly: true },
      ]);
  });

  it('adds nothing twice when reinvoked after another webhook', () => {
    const pod = jobPod({ schedulingGates: [{ name: 'other' }] });
    const once = applied(pod, mutatePod(review(pod)).patch);
    expect(once.spec?.schedulingGates).to.deep.equal([{ name: 'other' }, { name: 'hourglass.dev/grant' }]);
    expect(mutatePod(review(once)).patch).to.deep.equal([]);
  });

  it('refuses a malformed declaration with the reason', () => {
    const pod = jobPod();
    pod.metadata!.annotations = { 'hourglass.dev/token': 'only-an-audience' };
    const verdict = mutatePod(review(pod));
    expect(verdict.allowed).to.equal(false);
    expect(verdict.message).to.contain('hourglass.dev/token: "only-an-audience" must be AUDIENCE');
  });

  it('refuses a bare pod with only generateName: its request is named after it', () => {
    const pod = jobPod();
    pod.metadata!.ownerReferences = [];
    expect(mutatePod(review(pod)).message).to.contain('needs metadata.name');
  });

  it('lets through pods without the opt-in, and updates', () => {
    const pod = jobPod();
    expect(mutatePod(review(pod, 'UPDATE'))).to.deep.equal({ allowed: true });
    pod.metadata!.labels = {};
    expect(mutatePod(review(pod))).to.deep.equal({ allowed: true });
  });
});
