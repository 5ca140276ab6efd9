import { expect } from 'chai';
import { KeyedLock } from '../../../src/runtime/keyed-lock.ts';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('KeyedLock', () => {
  it('runs tasks of one key one at a time, in the order they asked', async () => {
    const lock = new KeyedLock();
    const events: string[] = [];
    const task = (name: string) => async () => {
      events.push(`start ${name}`);
      await tick();
      await tick();
      events.push(`end ${name}`);
    };
    await Promise.all([lock.run('sa', task('a')), lock.run('sa', task('b')), lock.run('sa', task('c'))]);
    expect(events).to.deep.equal(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(lock.size).to.equal(0);
  });

  it('runs tasks of different keys concurrently', async () => {
    const lock = new KeyedLock();
    const events: string[] = [];
    const task = (name: string) => async () => {
      events.push(`start ${name}`);
      await tick();
      events.push(`end ${name}`);
    };
    await Promise.all([lock.run('x', task('x')), lock.run('y', task('y'))]);
    expect(events.slice(0, 2)).to.deep.equal(['start x', 'start y']);
  });

  it('goes on with the next task when one fails', async () => {
    const lock = new KeyedLock();
    const failed = lock.run('sa', async () => {
      throw new Error('boom');
    });
    const next = lock.run('sa', async () => 'ran');
    const error = await failed.catch((e: unknown) => e);
    expect((error as Error).message).to.equal('boom');
    expect(await next).to.equal('ran');
    expect(lock.size).to.equal(0);
  });
});
