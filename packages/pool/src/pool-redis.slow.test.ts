/** The WorktreePool scenarios of pool.test.ts, run again on the Redis lease store (its second backend). */
import { onRedisStore } from './redis-store.testutil.js';

onRedisStore();
await import('./pool.test.js');
