import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';

/** Objects per page of a list: the API server's own pagers use 500. */
export const LIST_PAGE_SIZE = 500;

/** The paging arguments of a generated client's list call, which takes them as they are. */
export interface ListPage {
  limit: number;
  _continue?: string;
}

/**
 * Lists a whole collection page by page (limit/continue), passing each object to `strip` as its
 * page arrives, so that at most one page of whole objects is held however large the collection.
 * The pages are one consistent snapshot; the answer carries the last page's metadata, whose
 * resourceVersion is that snapshot's, for the watch that follows.
 */
export async function listInPages<T extends KubernetesObject>(
  listPage: (page: ListPage) => Promise<KubernetesListObject<T>>,
  strip: (object: T) => void,
  pageSize = LIST_PAGE_SIZE,
): Promise<KubernetesListObject<T>> {
  const items: T[] = [];
  let page: KubernetesListObject<T>;
  let next: string | undefined;
  do {
    page = await listPage({ limit: pageSize, ...(next ? { _continue: next } : {}) });
    for (const item of page.items) {
      strip(item);
      items.push(item);
    }
    next = page.metadata?._continue || undefined;
  } while (next);
  return { ...page, items };
}
