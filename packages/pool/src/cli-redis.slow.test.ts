/** The CLI races of cli.slow.test.ts (real processes), run again on the Redis lease store. */
import { onRedisStore } from './redis-store.testutil.js';

onRedisStore();
await import('./cli.slow.test.js');
