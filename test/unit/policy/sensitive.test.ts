import { expect } from 'chai';
import { sensitivity } from '../../../src/policy/sensitive.ts';

const access = (apiGroup: string, resource: string, verb: string, resourceNames: string[] = []) => ({
  apiGroup,
  resource,
  verb,
  resourceNames,
});

describe('sensitivity of exec-equivalent access', () => {
  const INTO_CONTAINERS = 'it reaches into running containers';
  const CHANGES_WORKLOADS = 'it changes what workloads run';
  const PROXIES = 'it proxies requests into running containers';
  const cases: [string, ReturnType<typeof access>, string | undefined][] = [
    [
      'adding an ephemeral container to a pod',
      access('', 'pods/ephemeralcontainers', 'patch'),
      INTO_CONTAINERS,
    ],
    [
      'replacing the ephemeral containers of one named pod',
      access('', 'pods/ephemeralcontainers', 'update', ['etl-pod']),
      INTO_CONTAINERS,
    ],
    [
      'reading pods/ephemeralcontainers (any verb)',
      access('', 'pods/ephemeralcontainers', 'get'),
      INTO_CONTAINERS,
    ],
    ["patching a pod's image", access('', 'pods', 'patch', ['etl-pod']), CHANGES_WORKLOADS],
    ['updating a pod', access('', 'pods', 'update'), CHANGES_WORKLOADS],
    ["patching a Deployment's pod template", access('apps', 'deployments', 'patch'), CHANGES_WORKLOADS],
    ['updating a ReplicaSet', access('apps', 'replicasets', 'update'), CHANGES_WORKLOADS],
    ['patching a StatefulSet', access('apps', 'statefulsets', 'patch'), CHANGES_WORKLOADS],
    ['patching a DaemonSet', access('apps', 'daemonsets', 'patch'), CHANGES_WORKLOADS],
    ['patching a Job', access('batch', 'jobs', 'patch'), CHANGES_WORKLOADS],
    ["updating a CronJob's job template", access('batch', 'cronjobs', 'update'), CHANGES_WORKLOADS],
    ['patching a ReplicationController', access('', 'replicationcontrollers', 'patch'), CHANGES_WORKLOADS],
    [
      'a lookalike workload kind in another group',
      access('example.com', 'deployments', 'patch'),
      CHANGES_WORKLOADS,
    ],
    ['proxying to a pod', access('', 'pods/proxy', 'get'), PROXIES],
    ['proxying to a service', access('', 'services/proxy', 'create'), PROXIES],
    ['proxying to a node', access('', 'nodes/proxy', 'get'), PROXIES],
    ['creating pods, as before', access('', 'pods', 'create'), 'it creates workloads'],
    ['pods/exec, as before', access('', 'pods/exec', 'create'), INTO_CONTAINERS],
    ['reading pods', access('', 'pods', 'get'), undefined],
    ['deleting a pod', access('', 'pods', 'delete'), undefined],
    ['reading pod logs', access('', 'pods/log', 'get'), undefined],
    ['scaling a Deployment', access('apps', 'deployments/scale', 'patch'), undefined],
    ['patching a Service', access('', 'services', 'patch'), undefined],
    ['patching a ConfigMap', access('', 'configmaps', 'patch'), undefined],
  ];
  for (const [what, given, expected] of cases) {
    it(`${expected === undefined ? 'does not treat' : 'treats'} ${what} as sensitive`, () =>
      expect(sensitivity(given)).to.equal(expected));
  }
});
