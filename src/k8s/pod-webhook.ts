import type { V1MutatingWebhook } from '@kubernetes/client-node';
import { adoption } from '../api/adoption.ts';

/**
 * The pod admission webhook of zero-code adoption. Its objectSelector sends it only the pods
 * labelled hourglass.dev/inject=true, so it can fail closed for them (an opted-in pod is never
 * created ungated) while the API server never calls it for any other pod, hourglass up or down.
 * The Helm chart registers the same (charts/hourglass/templates/webhook.yaml).
 */
export function podWebhook(url: string, caBundle: string): V1MutatingWebhook {
  return {
    name: 'pods.mutate.hourglass.dev',
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Fail',
    timeoutSeconds: 5,
    clientConfig: { url, caBundle },
    rules: [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        resources: ['pods'],
        operations: ['CREATE'],
        scope: 'Namespaced',
      },
    ],
    objectSelector: { matchLabels: { [adoption.inject]: 'true' } },
    reinvocationPolicy: 'IfNeeded',
  };
}
