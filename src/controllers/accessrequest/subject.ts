import type { V1Job, V1Pod } from '@kubernetes/client-node';

/** What hourglass needs to know of the workload a request names. */
export interface Workload {
  kind: 'Pod' | 'Job';
  name: string;
  uid: string;
  serviceAccountName: string;
  /** The pod's labels, or the Job's pod-template labels: what podSelector matches. */
  labels: Record<string, string>;
  /** The pod Succeeded or Failed; the Job is Complete or Failed. */
  finished: boolean;
}

export function workloadOfPod(pod: V1Pod): Workload {
  return {
    kind: 'Pod',
    name: pod.metadata?.name ?? '',
    uid: pod.metadata?.uid ?? '',
    serviceAccountName: pod.spec?.serviceAccountName ?? 'default',
    labels: pod.metadata?.labels ?? {},
    finished: pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed',
  };
}

export function workloadOfJob(job: V1Job): Workload {
  return {
    kind: 'Job',
    name: job.metadata?.name ?? '',
    uid: job.metadata?.uid ?? '',
    serviceAccountName: job.spec?.template.spec?.serviceAccountName ?? 'default',
    labels: job.spec?.template.metadata?.labels ?? {},
    finished: (job.status?.conditions ?? []).some(
      (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
    ),
  };
}
