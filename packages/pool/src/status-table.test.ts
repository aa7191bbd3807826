import { describe, expect, it } from 'vitest';
import { formatStatus } from './status.js';
import type { PoolStatus } from './types.js';

describe('pool status table', () => {
  it('has a heartbeat age column', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    const iso = (ms: number) => new Date(now + ms).toISOString();
    const s: PoolStatus = {
      pool: {
        min: 1,
        max: 2,
        size: 2,
        ready: 1,
        leased: 1,
        provisioning: 0,
        broken: 0,
        waiters: 0,
      },
      slots: [
        {
          id: 'wt-1',
          state: 'leased',
          path: '/p/wt-1',
          branch: 'pool/wt-1/t',
          lease: {
            agent: 'a1',
            task: 't',
            priority: 2,
            token: 1,
            acquiredAt: iso(-600_000),
            heartbeatAt: iso(-90_000),
            expiresAt: iso(3_600_000),
          } as PoolStatus['slots'][number]['lease'],
        },
        { id: 'wt-2', state: 'ready', path: '/p/wt-2', branch: null, lease: null },
      ],
      queue: [],
      capacity: null,
    };
    const lines = formatStatus(s, now).split('\n');
    const header = lines.find((l) => l.startsWith('SLOT'))!;
    const row = lines.find((l) => l.startsWith('wt-1'))!;
    expect(header).toMatch(/PRI\s+HEARTBEAT\s+EXPIRES/);
    // The column lines up under its header.
    expect(row.slice(header.indexOf('HEARTBEAT')).startsWith('1m30s ago')).toBe(true);
    expect(lines.find((l) => l.startsWith('wt-2'))!.slice(header.indexOf('HEARTBEAT'))).toMatch(
      /^-\s/,
    );
  });
});
