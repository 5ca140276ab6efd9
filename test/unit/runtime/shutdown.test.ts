import { expect } from 'chai';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/log.ts';
import { runInOrder } from '../../../src/runtime/shutdown.ts';

const log = createLogger('error', new Writable({ write: (_chunk, _encoding, done) => done() }));

describe('runInOrder (shutdown steps)', () => {
  it('runs each step after the previous one has ended', async () => {
    const order: string[] = [];
    const step = (name: string, ms: number) => ({
      done: name,
      timeoutMs: 1_000,
      run: async () => {
        order.push(`start ${name}`);
        await new Promise((resolve) => setTimeout(resolve, ms));
        order.push(`end ${name}`);
      },
    });
    expect(await runInOrder([step('work', 20), step('registration', 0), step('lease', 0)], log)).to.equal(
      true,
    );
    expect(order).to.deep.equal([
      'start work',
      'end work',
      'start registration',
      'end registration',
      'start lease',
      'end lease',
    ]);
  });

  it('gives up a step that stalls beyond its bound, runs the next, and reports it', async () => {
    const ran: string[] = [];
    const clean = await runInOrder(
      [
        { done: 'stalled', timeoutMs: 20, run: () => new Promise(() => {}) },
        { done: 'failing', timeoutMs: 1_000, run: async () => Promise.reject(new Error('refused')) },
        { done: 'next', timeoutMs: 1_000, run: async () => void ran.push('next') },
      ],
      log,
    );
    expect(clean).to.equal(false);
    expect(ran).to.deep.equal(['next']);
  });
});
