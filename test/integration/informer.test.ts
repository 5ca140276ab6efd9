import { expect } from 'chai';
import { CoreV1Api, type Informer, type V1ConfigMap } from '@kubernetes/client-node';
import { type InformerRestart, StoppableListWatch, SupervisedInformer } from '../../src/runtime/informer.ts';
import { adminConfig, eventually, kubectlOk, useNamespace } from '../support/cluster.ts';

describe('SupervisedInformer against the local API server', () => {
  const namespace = useNamespace('informer');
  const core = adminConfig().makeApiClient(CoreV1Api);
  const changes: V1ConfigMap[] = [];
  const restarts: InformerRestart[] = [];
  const listWatches: Informer<V1ConfigMap>[] = [];
  /** Every list waits for this first, so that a test decides when the informer may list. */
  let listGate: Promise<void>;
  let openListGate!: () => void;
  const closeListGate = () => (listGate = new Promise((resolve) => (openListGate = resolve)));
  let informer: SupervisedInformer<V1ConfigMap>;

  const changed = (name: string, has: (obj: V1ConfigMap) => boolean = () => true) =>
    eventually(
      async () => {
        const seen = changes.some((obj) => obj.metadata?.name === name && has(obj));
        if (!seen) throw new Error(`onChange has not seen ${name}`);
      },
      { what: `onChange(${name})` },
    );

  before(async () => {
    await kubectlOk(['-n', namespace(), 'create', 'configmap', 'before', '--from-literal=colour=red']);
    closeListGate();
    informer = new SupervisedInformer<V1ConfigMap>({
      kubeConfig: adminConfig(),
      path: `/api/v1/namespaces/${namespace()}/configmaps`,
      list: async () => {
        await listGate;
        return core.listNamespacedConfigMap({ namespace: namespace() });
      },
      onChange: (obj) => changes.push(obj),
      onRestart: (restart) => restarts.push(restart),
      backoff: { initialMs: 100 },
      createListWatch: (source) => {
        const listWatch = new StoppableListWatch(source);
        listWatches.push(listWatch);
        return listWatch;
      },
    });
    informer.start();
  });

  after(() => informer?.stop());

  it('resolves synced() only once its first list has put the ConfigMaps that existed before in the cache', async () => {
    let synced = false;
    void informer.synced().then(() => (synced = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(synced, 'synced before listing').to.equal(false);
    openListGate();
    await informer.synced();
    expect(informer.get(namespace(), 'before')?.data).to.deep.equal({ colour: 'red' });
  });

  it('sees a ConfigMap being created', async () => {
    await kubectlOk(['-n', namespace(), 'create', 'configmap', 'created', '--from-literal=colour=blue']);
    await changed('created');
    expect(informer.get(namespace(), 'created')?.data).to.deep.equal({ colour: 'blue' });
  });

  it('sees a ConfigMap being updated', async () => {
    await kubectlOk([
      '-n',
      namespace(),
      'patch',
      'configmap',
      'created',
      '-p',
      '{"data":{"colour":"green"}}',
    ]);
    await changed('created', (obj) => obj.data?.colour === 'green');
    expect(informer.get(namespace(), 'created')?.data).to.deep.equal({ colour: 'green' });
  });

  it('sees a ConfigMap being deleted, reported with its last state', async () => {
    changes.length = 0;
    await kubectlOk(['-n', namespace(), 'delete', 'configmap', 'created']);
    await changed('created', (obj) => obj.data?.colour === 'green');
    expect(informer.get(namespace(), 'created')).to.equal(undefined);
  });

  it('recovers after its watch is broken: changes made meanwhile come with the next list, later ones by watch', async () => {
    closeListGate();
    changes.length = 0;
    await listWatches.at(-1)!.stop(); // aborts the watch connection; client-node then reports an 'error'
    await eventually(async () => expect(listWatches).to.have.length(2), { what: 'a new ListWatch' });

    await kubectlOk(['-n', namespace(), 'create', 'configmap', 'while-down', '--from-literal=colour=grey']);
    await kubectlOk(['-n', namespace(), 'delete', 'configmap', 'before']);
    expect(changes, 'nothing arrives while the new ListWatch waits to list').to.deep.equal([]);
    openListGate();
    await changed('while-down');
    await changed('before', (obj) => obj.data?.colour === 'red');
    expect(informer.get(namespace(), 'before')).to.equal(undefined);

    await kubectlOk(['-n', namespace(), 'create', 'configmap', 'after', '--from-literal=colour=white']);
    await changed('after');
    expect(informer.get(namespace(), 'after')?.data).to.deep.equal({ colour: 'white' });
    expect(restarts.map((restart) => restart.reason)).to.deep.equal(['error']);
  });
});
