import { stringify } from 'yaml';
import { flag, positionals, stringValue } from '../args.ts';
import { defineCommand } from '../command.ts';
import { UsageError } from '../errors.ts';
import { describeRequest, requestTable } from '../output.ts';
import { helpText, listRequests, readRequest, validName } from './common.ts';

const FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
type Format = (typeof FORMATS)[number];

export interface StatusOptions {
  name: string | undefined;
  allNamespaces: boolean;
  output: Format;
}

export const status = defineCommand<StatusOptions>({
  name: 'status',
  summary: 'Show AccessRequests: phase, subject, grant, expiry, revocation and conditions',
  help: (prog) =>
    helpText(
      prog,
      'status [NAME] [-A] [-o table|wide|json|yaml]',
      `
Without NAME, lists the AccessRequests of the namespace as kubectl get does. With NAME, shows
that request in detail: phase and reason, subject, what it asks for, the policy decision, the
grant (id, expiry), renewals, revocation and conditions.`,
      `
  -A, --all-namespaces    list the requests of every namespace
  -o, --output FORMAT     table (default), wide (adds reason, policy, grant id), json or yaml`,
    ),
  options: {
    'all-namespaces': { type: 'boolean', short: 'A' },
    output: { type: 'string', short: 'o' },
  },
  parse(parsed) {
    const [name] = positionals(parsed, 'status', ['[NAME]']);
    const allNamespaces = flag(parsed.values, 'all-namespaces');
    if (name !== undefined && allNamespaces)
      throw new UsageError('give NAME or --all-namespaces, not both', 'status');
    const output = stringValue(parsed.values, 'output') ?? 'table';
    if (!(FORMATS as readonly string[]).includes(output)) {
      throw new UsageError(`--output must be one of ${FORMATS.join(', ')}, not "${output}"`, 'status');
    }
    return {
      name: name === undefined ? undefined : validName(name, 'status'),
      allNamespaces,
      output: output as Format,
    };
  },
  async run({ name, allNamespaces, output }, ctx) {
    const session = ctx.session();
    if (name !== undefined) {
      const request = await readRequest(session, session.namespace, name);
      if (output === 'json') ctx.io.stdout.write(`${JSON.stringify(request, null, 2)}\n`);
      else if (output === 'yaml') ctx.io.stdout.write(stringify(request));
      else ctx.io.stdout.write(describeRequest(request, ctx.now()));
      return 0;
    }
    const requests = await listRequests(session, allNamespaces ? undefined : session.namespace);
    if (output === 'json' || output === 'yaml') {
      const list = { apiVersion: 'v1', kind: 'List', items: requests };
      ctx.io.stdout.write(output === 'json' ? `${JSON.stringify(list, null, 2)}\n` : stringify(list));
      return 0;
    }
    if (requests.length === 0) {
      ctx.progress(
        allNamespaces
          ? 'No AccessRequests found.'
          : `No AccessRequests found in namespace "${session.namespace}".`,
      );
      return 0;
    }
    ctx.io.stdout.write(requestTable(requests, { allNamespaces, wide: output === 'wide', now: ctx.now() }));
    return 0;
  },
});
