import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parse } from 'yaml';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const chartDir = path.join(repoRoot, 'charts', 'hourglass');
const read = (...parts: string[]) => readFile(path.join(repoRoot, ...parts), 'utf8');

type Schema = { properties?: Record<string, Schema>; $ref?: string; definitions?: Record<string, Schema> };

/**
 * The dotted paths of the values in a values tree, as the schema structures them: a map is
 * descended into when the schema lists its properties; lists and free-form maps are values.
 * A path that the schema does not know ends in "?".
 */
function valuePaths(tree: Record<string, unknown>, root: Schema, node: Schema = root, prefix = ''): string[] {
  return Object.entries(tree).flatMap(([key, value]) => {
    let child = node.properties?.[key];
    if (child?.$ref) child = root.definitions?.[child.$ref.replace('#/definitions/', '')];
    if (child === undefined) return [`${prefix}${key}?`];
    return value !== null && typeof value === 'object' && !Array.isArray(value) && child.properties
      ? valuePaths(value as Record<string, unknown>, root, child, `${prefix}${key}.`)
      : [`${prefix}${key}`];
  });
}

const loadValues = async () => ({
  values: parse(await read('charts', 'hourglass', 'values.yaml')),
  schema: JSON.parse(await read('charts', 'hourglass', 'values.schema.json')) as Schema,
});

describe('the Helm chart', () => {
  it('ships exactly the CRDs of crds/ (after `npm run generate`: cp crds/*.yaml charts/hourglass/crds/)', async () => {
    const expected = (await readdir(path.join(repoRoot, 'crds'))).sort();
    const shipped = (await readdir(path.join(chartDir, 'crds'))).sort();
    expect(shipped).to.deep.equal(expected);
    for (const file of expected) {
      expect(await read('charts', 'hourglass', 'crds', file), file).to.equal(await read('crds', file));
    }
  });

  it("installs the package's version by default (Chart.yaml appVersion equals package.json version)", async () => {
    const chart = parse(await read('charts', 'hourglass', 'Chart.yaml'));
    const pkg = JSON.parse(await read('package.json'));
    expect(chart.appVersion).to.equal(pkg.version);
  });

  it('describes every value of values.yaml in values.schema.json', async () => {
    const { values, schema } = await loadValues();
    expect(valuePaths(values, schema).filter((p) => p.endsWith('?'))).to.deep.equal([]);
  });

  it('documents every value of values.yaml in docs/install.md', async () => {
    const { values, schema } = await loadValues();
    const docs = await read('docs', 'install.md');
    const paths = valuePaths(values, schema);
    expect(paths).to.include.members(['image.repository', 'resources.requests']);
    expect(paths.filter((p) => !docs.includes(`| \`${p}\` |`))).to.deep.equal([]);
  });
});
