// What the global setup provides to tests (`inject('redisUrl')`). Type-checked by the root
// tsconfig only; the package build does not depend on vitest.
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    pgUrl: string;
  }
}
