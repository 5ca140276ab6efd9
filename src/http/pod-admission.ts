import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { adoption, adoptedRequestName, parseDeclaration, type AdoptedSubject } from '../api/adoption.ts';
import { grantObjectNames } from '../api/types.ts';
import type { AdmissionRequest, Verdict } from './admission.ts';

/** Every container reads the token whatever its uid: the file is 0444 (the Secret holds one grant's token). */
export const TOKEN_FILE_MODE = 0o444;

/** The workload a pod's request is for: the Job that controls it, else the pod itself (by name). */
export function adoptedSubjectOf(pod: V1Pod): AdoptedSubject | undefined {
  const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller === true);
  if (owner?.apiVersion === 'batch/v1' && owner.kind === 'Job') return { kind: 'Job', name: owner.name };
  const name = pod.metadata?.name;
  return name ? { kind: 'Pod', name } : undefined;
}

/**
 * Admits a pod created with the opt-in label (the webhook's objectSelector sends no other): its
 * declaration must parse, and the pod is gated until its grant is live and given the grant
 * Secret as a volume in every container. Any other pod, or operation, is let through unchanged.
 */
export function mutatePod(review: AdmissionRequest): Verdict {
  const pod = review.object as V1Pod | undefined;
  if (review.operation !== 'CREATE' || review.subResource || !pod) return { allowed: true };
  if (pod.metadata?.labels?.[adoption.inject] !== 'true') return { allowed: true };
  const subject = adoptedSubjectOf(pod);
  if (!subject) {
    return {
      allowed: false,
      message: `a pod labelled ${adoption.inject}=true that no Job controls needs metadata.name: its AccessRequest is named after it`,
    };
  }
  const workload = `${subject.kind.toLowerCase()}/${subject.name}`;
  const parsed = parseDeclaration(pod.metadata?.annotations ?? {}, workload);
  if (parsed.errors) return { allowed: false, code: 422, message: parsed.errors.join('; ') };
  return { allowed: true, patch: gateAndVolumePatch(pod, adoptedRequestName(subject)) };
}

function gateAndVolumePatch(pod: V1Pod, requestName: string): object[] {
  const spec = pod.spec;
  const patch: object[] = [];
  const append = (path: string, present: unknown[] | undefined, value: object) =>
    patch.push(present ? { op: 'add', path: `${path}/-`, value } : { op: 'add', path, value: [value] });
  if (!spec?.schedulingGates?.some((gate) => gate.name === adoption.gate))
    append('/spec/schedulingGates', spec?.schedulingGates, { name: adoption.gate });
  if (!spec?.volumes?.some((volume) => volume.name === adoption.volumeName))
    append('/spec/volumes', spec?.volumes, {
      name: adoption.volumeName,
      // Optional: the pod is created before its grant Secret exists (it is gated until then).
      secret: {
        secretName: grantObjectNames(requestName).secretName,
        optional: true,
        defaultMode: TOKEN_FILE_MODE,
      },
    });
  const mount = { name: adoption.volumeName, mountPath: adoption.mountPath, readOnly: true };
  for (const kind of ['initContainers', 'containers'] as const) {
    (spec?.[kind] ?? []).forEach((container: V1Container, index: number) => {
      if (!container.volumeMounts?.some((present) => present.name === adoption.volumeName))
        append(`/spec/${kind}/${index}/volumeMounts`, container.volumeMounts, mount);
    });
  }
  return patch;
}
