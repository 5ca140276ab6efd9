import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { repoRoot } from '../support/cluster.ts';
import { CONTROLLER_NODE_FLAGS } from '../support/controller.ts';

const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');

describe('the controller runs with the same Node flags everywhere', () => {
  it('in the container image', () => {
    const cmd = /^CMD (\[.*\])$/m.exec(read('Dockerfile'))?.[1];
    expect(JSON.parse(cmd ?? '[]')).to.deep.equal([...CONTROLLER_NODE_FLAGS, 'src/main.ts']);
  });

  it('under npm start and in the demo', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start;
    expect(start).to.equal(`node ${CONTROLLER_NODE_FLAGS.join(' ')} src/main.ts`);
    expect(read('hack/demo.sh')).to.contain(`node ${CONTROLLER_NODE_FLAGS.join(' ')} src/main.ts`);
  });
});
