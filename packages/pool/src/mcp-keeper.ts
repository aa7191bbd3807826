/**
 * The leases an MCP session holds (`pool mcp`, docs/agents.md): every lease the session granted
 * (`acquire`) or took over (`attach`) is heartbeaten by the server while the session is
 * connected, every TTL/3, so an agent never has to. When the session ends the heartbeats stop
 * and nothing else happens: the lease expires after its TTL and the normal reclaim rescues the
 * work, unless a new session `attach`es it first.
 */
import { isWtpoolError } from '@wtpool/core';
import { errMessage } from './context.js';
import type { WorktreePool } from './pool.js';

interface Kept {
  agent: string;
  token: number;
  ttlMs: number;
  timer: NodeJS.Timeout | null;
}

/** Shortest pause between two heartbeats of one lease (a very short --ttl still gets several). */
const MIN_BEAT_MS = 200;

export class LeaseKeeper {
  readonly #held = new Map<string, Kept>();
  #closed = false;

  constructor(
    private readonly pool: WorktreePool,
    private readonly log: (line: string) => void,
  ) {}

  /** Slots this session heartbeats, with their tokens. */
  list(): { slot: string; agent: string; token: number }[] {
    return [...this.#held].map(([slot, k]) => ({ slot, agent: k.agent, token: k.token }));
  }

  /** Starts heartbeating a lease (replacing an older token of the same slot). */
  keep(slot: string, agent: string, token: number, ttlMs: number): void {
    if (this.#closed) return;
    this.drop(slot);
    const k: Kept = { agent, token, ttlMs, timer: null };
    this.#held.set(slot, k);
    this.#schedule(slot, k);
  }

  /** Stops heartbeating a slot (released, or its lease is gone). */
  drop(slot: string): void {
    const k = this.#held.get(slot);
    if (k?.timer) clearTimeout(k.timer);
    this.#held.delete(slot);
  }

  /** The session ended: no more heartbeats (the leases run out their TTL). */
  close(): void {
    this.#closed = true;
    for (const slot of [...this.#held.keys()]) this.drop(slot);
  }

  #schedule(slot: string, k: Kept): void {
    // One beat at a time (a chain of timeouts, not an interval): a slow store never piles them up.
    k.timer = setTimeout(
      () => {
        k.timer = null;
        this.pool
          .heartbeat({ slot, agent: k.agent, token: k.token })
          .then(() => {
            if (this.#held.get(slot) === k) this.#schedule(slot, k);
          })
          .catch((e: unknown) => {
            if (this.#held.get(slot) !== k) return;
            if (isWtpoolError(e) && (e.exitCode === 4 || e.exitCode === 5)) {
              // Taken back (expired and reclaimed, released elsewhere): not ours any more.
              this.log(`lease of ${slot} (token ${k.token}) is gone: ${e.message}`);
              this.drop(slot);
              return;
            }
            this.log(`heartbeat of ${slot} failed (retrying): ${errMessage(e)}`);
            this.#schedule(slot, k);
          });
      },
      Math.max(MIN_BEAT_MS, Math.floor(k.ttlMs / 3)),
    );
  }
}
