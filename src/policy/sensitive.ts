import { GROUP } from '../api/types.ts';
import type { Access } from './access.ts';

const WORKLOAD_RESOURCES: ReadonlySet<string> = new Set([
  'pods',
  'deployments',
  'replicasets',
  'statefulsets',
  'daemonsets',
  'jobs',
  'cronjobs',
  'replicationcontrollers',
]);
// Any verb: these run commands in, attach to, connect to or add a container to a running pod.
const CONTAINER_ACCESS_SUBRESOURCES: ReadonlySet<string> = new Set([
  'pods/exec',
  'pods/attach',
  'pods/portforward',
  'pods/ephemeralcontainers',
]);
// Changing a pod's or a workload's pod template changes what runs as its service account: an image,
// a command, a volume. As good as exec.
const TEMPLATE_WRITE_VERBS: ReadonlySet<string> = new Set(['update', 'patch']);
const WRITE_VERBS: ReadonlySet<string> = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const RBAC_RESOURCES: ReadonlySet<string> = new Set(['roles', 'rolebindings']);

/**
 * Why an access is sensitive, or undefined when it is not. A sensitive access is covered only by
 * an allowed rule that names its API group, resource and verb literally: no wildcard covers it.
 * Resources are recognised by name whatever their group, so that a lookalike in another group
 * also needs a literal mention rather than slipping under a wildcard.
 */
export function sensitivity({ apiGroup, resource, verb, resourceNames }: Access): string | undefined {
  if ([apiGroup, resource, verb].some((item) => item.includes('*'))) return 'it asks for a wildcard';
  if (apiGroup === GROUP) return "it reaches hourglass's own API";
  if (resource === 'secrets' && resourceNames.length === 0) return 'it reaches every Secret';
  if (verb === 'create' && WORKLOAD_RESOURCES.has(resource)) return 'it creates workloads';
  if (TEMPLATE_WRITE_VERBS.has(verb) && WORKLOAD_RESOURCES.has(resource)) {
    return 'it changes what workloads run';
  }
  if (CONTAINER_ACCESS_SUBRESOURCES.has(resource)) return 'it reaches into running containers';
  if (resource.endsWith('/proxy')) return 'it proxies requests into running containers';
  if (resource === 'serviceaccounts/token') return 'it mints service account tokens';
  if (WRITE_VERBS.has(verb) && RBAC_RESOURCES.has(resource)) return 'it writes RBAC';
  if (resource === 'namespaces') return 'it reaches namespaces';
  return undefined;
}
