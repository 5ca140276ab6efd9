import { expect } from 'chai';
import type { KubernetesListObject, V1ConfigMap } from '@kubernetes/client-node';
import { listInPages, type ListPage } from '../../../src/k8s/paged-list.ts';

const configMap = (name: string): V1ConfigMap => ({ metadata: { name }, data: { big: 'x'.repeat(100) } });

/** A collection of `size` objects served in pages, as the API server serves limit/continue. */
function pager(size: number) {
  const asked: ListPage[] = [];
  const listPage = async (page: ListPage): Promise<KubernetesListObject<V1ConfigMap>> => {
    asked.push(page);
    const start = Number(page._continue ?? 0);
    const end = Math.min(size, start + page.limit);
    return {
      apiVersion: 'v1',
      kind: 'ConfigMapList',
      metadata: { resourceVersion: '77', ...(end < size ? { _continue: String(end) } : {}) },
      items: Array.from({ length: end - start }, (_, i) => configMap(`cm-${start + i}`)),
    };
  };
  return { asked, listPage };
}

describe('listInPages', () => {
  it('lists the whole collection in pages of the given size, passing each continue token on', async () => {
    const { asked, listPage } = pager(7);
    const list = await listInPages(listPage, () => {}, 3);
    expect(list.items.map((item) => item.metadata?.name)).to.deep.equal(
      Array.from({ length: 7 }, (_, i) => `cm-${i}`),
    );
    expect(asked).to.deep.equal([{ limit: 3 }, { limit: 3, _continue: '3' }, { limit: 3, _continue: '6' }]);
    expect(list.metadata).to.deep.equal({ resourceVersion: '77' });
  });

  it('strips each page before it asks for the next', async () => {
    const { asked, listPage } = pager(5);
    const strippedWhenAsked: number[] = [];
    let stripped = 0;
    const list = await listInPages(
      async (page) => {
        strippedWhenAsked.push(stripped);
        return listPage(page);
      },
      (item) => {
        delete item.data;
        stripped++;
      },
      2,
    );
    expect(strippedWhenAsked).to.deep.equal([0, 2, 4]);
    expect(asked).to.have.length(3);
    expect(list.items.every((item) => item.data === undefined)).to.equal(true);
  });

  it('asks once for an empty collection', async () => {
    const { asked, listPage } = pager(0);
    expect((await listInPages(listPage, () => {})).items).to.deep.equal([]);
    expect(asked).to.deep.equal([{ limit: 500 }]);
  });
});
