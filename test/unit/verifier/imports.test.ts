import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { expect } from 'chai';

const ROOT = resolve(import.meta.dirname, '../../..');
const ENTRY_POINTS = ['src/verifier/index.ts', 'src/verifier/cli.ts'];
// What backends run: the verifier and the token contract it shares with the issuer. Nothing of the
// controller.
const ALLOWED = [/^src\/verifier\//, /^src\/tokens\/contract\.ts$/];

function relativeImports(file: string): string[] {
  const source = readFileSync(resolve(ROOT, file), 'utf8');
  // `... from './x.ts'`, `import './x.ts'` and `import('./x.ts')`.
  const specifiers = source.matchAll(/\bfrom\s+'(\.[^']+)'|\bimport\s*\(?\s*'(\.[^']+)'/g);
  return Array.from(specifiers, ([, from, bare]) =>
    relative(ROOT, resolve(ROOT, dirname(file), (from ?? bare)!)),
  );
}

function moduleGraph(entries: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const pending = [...entries];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    pending.push(...relativeImports(file));
  }
  return seen;
}

describe('the verifier module graph', () => {
  it('reaches only the verifier and the token contract', () => {
    const outside = [...moduleGraph(ENTRY_POINTS)].filter(
      (file) => !ALLOWED.some((allowed) => allowed.test(file)),
    );
    expect(outside).to.deep.equal([]);
  });

  it('shares the token contract with the issuer through a file that imports nothing', () => {
    expect(moduleGraph(ENTRY_POINTS)).to.include('src/tokens/contract.ts');
    expect(moduleGraph(['src/tokens/grant-token.ts'])).to.include('src/tokens/contract.ts');
    expect(readFileSync(resolve(ROOT, 'src/tokens/contract.ts'), 'utf8')).not.to.match(/^\s*import\s/m);
  });
});
