import { JsonStore, type JsonStoreOptions } from './store.js';

/**
 * A source of fencing tokens: every call to next() returns a number larger than any returned
 * before, by any process, also across restarts (the counter is a JsonStore on disk).
 */
export class FencingCounter {
  private readonly store: JsonStore<{ value: number }>;

  constructor(file: string, opts: Omit<JsonStoreOptions<{ value: number }>, 'initial'> = {}) {
    this.store = new JsonStore(file, { ...opts, initial: { value: 0 } });
  }

  async next(): Promise<number> {
    return this.store.update((d) => ++d.value);
  }

  /** The last token handed out (0 if none). */
  async current(): Promise<number> {
    return (await this.store.read()).value;
  }
}
