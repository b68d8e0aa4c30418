import { InMemoryEventStore } from '@causeway/core';
import { storeSuite } from '@causeway/conformance';

storeSuite({
  name: 'in-memory',
  capabilities: { concurrentTransactions: true },
  async create() {
    const store = new InMemoryEventStore();
    return {
      store,
      async naiveReadAll(tenantId, afterSeq, limit) {
        return store
          .committedEvents()
          .filter((e) => e.tenantId === tenantId && e.position.seq > afterSeq)
          .slice(0, limit);
      },
      close: () => store.close(),
    };
  },
});
