import { expect } from 'chai';
import { readCommitted, renderGenerated } from '../../../hack/generate.ts';

describe('generated API files', () => {
  it('crds/ and src/api/types.generated.ts match src/api/schema.ts (run `npm run generate`)', async () => {
    const generated = await renderGenerated();
    expect(generated.size).to.be.greaterThan(3);
    for (const [file, content] of generated) {
      expect(await readCommitted(file), file).to.equal(content);
    }
  });
});
