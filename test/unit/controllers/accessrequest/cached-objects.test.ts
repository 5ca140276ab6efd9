import { expect } from 'chai';
import type { V1Container, V1Job, V1Pod } from '@kubernetes/client-node';
import { projectJob, projectPod } from '../../../../src/controllers/accessrequest/cached-objects.ts';

const container = (name: string): V1Container => ({
  name,
  image: `registry.example.com/${name}:1.0`,
  env: [{ name: 'SETTING', value: 'x'.repeat(200) }],
  volumeMounts: [{ name: 'config', mountPath: '/etc/config' }],
  resources: { requests: { cpu: '10m' } },
  securityContext: { runAsNonRoot: true },
});

const metadata = () => ({
  name: 'etl-7xk2p',
  namespace: 'batch',
  uid: 'pod-uid',
  resourceVersion: '42',
  labels: { team: 'data' },
  annotations: {
    'example.com/owner': 'team-a',
    'kubectl.kubernetes.io/last-applied-configuration': '{"big":"json"}',
  },
  ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'etl', uid: 'job-uid', controller: true }],
  managedFields: [{ manager: 'kubectl', operation: 'Update' }],
});

const pod = (): V1Pod => ({
  metadata: metadata(),
  spec: {
    serviceAccountName: 'etl',
    nodeName: 'node-1',
    securityContext: { runAsUser: 1000 },
    hostNetwork: true,
    schedulingGates: [{ name: 'hourglass.dev/grant' }],
    containers: [container('app'), container('sidecar')],
    initContainers: [container('init')],
    volumes: [{ name: 'config', configMap: { name: 'config' } }],
  },
  status: { phase: 'Running', podIP: '10.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] },
});

const job = (): V1Job => ({
  metadata: metadata(),
  spec: {
    backoffLimit: 3,
    template: {
      metadata: { labels: { app: 'etl' }, annotations: { note: 'n' } },
      spec: { serviceAccountName: 'etl', containers: [container('app')], volumes: [] },
    },
  },
  status: {
    active: 1,
    startTime: new Date('2030-01-01T00:00:00Z'),
    conditions: [{ type: 'Complete', status: 'True' }],
    uncountedTerminatedPods: { succeeded: ['a'] },
  },
});

describe('the cached projection of a Pod', () => {
  it('keeps what the lifecycle, the requester checks and CEL read', () => {
    const projected = pod();
    projectPod(projected);
    const identity = (name: string) => ({
      name,
      image: `registry.example.com/${name}:1.0`,
      securityContext: { runAsNonRoot: true },
    });
    expect(projected).to.deep.equal({
      metadata: {
        name: 'etl-7xk2p',
        namespace: 'batch',
        uid: 'pod-uid',
        resourceVersion: '42',
        labels: { team: 'data' },
        annotations: { 'example.com/owner': 'team-a' },
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'Job', name: 'etl', uid: 'job-uid', controller: true },
        ],
      },
      spec: {
        serviceAccountName: 'etl',
        nodeName: 'node-1',
        securityContext: { runAsUser: 1000 },
        hostNetwork: true,
        schedulingGates: [{ name: 'hourglass.dev/grant' }],
        containers: [identity('app'), identity('sidecar')],
        initContainers: [identity('init')],
      },
      status: { phase: 'Running' },
    });
  });

  it('gives the same result when a relist hands the projected pod through again', () => {
    const once = pod();
    projectPod(once);
    const twice = structuredClone(once);
    projectPod(twice);
    expect(twice).to.deep.equal(once);
  });

  it('adds no fields a pod does not have', () => {
    const bare: V1Pod = {
      metadata: { name: 'p', namespace: 'batch', uid: 'u' },
      spec: { containers: [{ name: 'c' }] },
    };
    projectPod(bare);
    expect(bare).to.deep.equal({
      metadata: { name: 'p', namespace: 'batch', uid: 'u' },
      spec: { containers: [{ name: 'c' }] },
    });
  });
});

describe('the cached projection of a Job', () => {
  it("keeps its metadata, its pod template's labels, annotations, service account and containers, and its conditions", () => {
    const projected = job();
    projectJob(projected);
    expect(projected.metadata).to.not.have.property('managedFields');
    expect(projected.spec).to.deep.equal({
      template: {
        metadata: { labels: { app: 'etl' }, annotations: { note: 'n' } },
        spec: {
          serviceAccountName: 'etl',
          containers: [
            { name: 'app', image: 'registry.example.com/app:1.0', securityContext: { runAsNonRoot: true } },
          ],
        },
      },
    });
    expect(projected.status).to.deep.equal({
      active: 1,
      startTime: new Date('2030-01-01T00:00:00Z'),
      conditions: [{ type: 'Complete', status: 'True' }],
    });
  });

  it('gives the same result when a relist hands the projected Job through again', () => {
    const once = job();
    projectJob(once);
    const twice = structuredClone(once);
    projectJob(twice);
    expect(twice).to.deep.equal(once);
  });
});
