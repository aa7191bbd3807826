/**
 * The Redis client against real redis-server processes: SELECT via the URL, a 1000-command
 * pipeline with large replies, AUTH (requirepass and an ACL user), TLS (redis-server's own
 * --tls-port), pub/sub delivery and re-subscription after a SIGKILL + restart, and Sentinel
 * failover (primary SIGKILLed, the replica promoted, the sentinel URL reaching it).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  redisCli,
  startTlsRedisProcess,
  startRedisProcess,
  startSentinelTopology,
  until,
  type RedisProcess,
  type SentinelTopology,
} from '@wtpool/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisReplyError, redisCommand, redisPipeline, subscribe, type Reply } from './resp.js';

const rejection = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as Error & { exitCode?: number };
  }
  throw new Error('expected a rejection');
};

describe('redisPipeline against one server', () => {
  let r: RedisProcess;
  beforeAll(async () => {
    r = await startRedisProcess({ conf: ['databases 16'] });
  });
  afterAll(() => r?.stop());

  it('SELECTs the database of the URL path before the commands', async () => {
    await redisPipeline(`${r.url}/3`, [['SET', 'where', 'db3']]);
    expect(redisCli(r.port, '-n', '3', 'GET', 'where').trim()).toBe('db3');
    expect(redisCli(r.port, '-n', '0', 'EXISTS', 'where').trim()).toBe('0');
    expect(await redisCommand(`${r.url}/3`, 'GET', 'where')).toBe('db3');
  });

  it('returns 1000 pipelined replies in order, large ones split across many chunks', async () => {
    const big = 'abc\r\n'.repeat(40_000); // 200 kB with CRLFs inside the bulk string
    const cmds: (string | number)[][] = [
      ['SET', 'big', big],
      ['DEL', 'n'],
    ];
    for (let i = 0; i < 1000; i++) cmds.push(i % 10 === 0 ? ['GET', 'big'] : ['INCR', 'n']);
    const replies = await redisPipeline(r.url, cmds);
    expect(replies).toHaveLength(cmds.length);
    let n = 0;
    replies.slice(2).forEach((rep, i) => {
      if (i % 10 === 0) expect(rep).toBe(big);
      else expect(rep).toBe(++n);
    });
    expect(n).toBe(900);
  });

  it('returns error replies as values and nulls for missing keys', async () => {
    const [a, b, c] = await redisPipeline(r.url, [
      ['GET', 'nope'],
      ['NOSUCHCMD'],
      ['LRANGE', 'nope', 0, -1],
    ]);
    expect(a).toBeNull();
    expect(b).toBeInstanceOf(RedisReplyError);
    expect(c).toEqual([]);
  });

  it('fails with exit 6 and the URL redacted when nothing listens', async () => {
    const dead = await startRedisProcess();
    await dead.stop();
    const e = await rejection(redisPipeline(`redis://u:s3cret@127.0.0.1:${dead.port}`, [['PING']]));
    expect(e.exitCode).toBe(6);
    expect(e.message).toMatch(/unreachable: ECONNREFUSED/);
    expect(e.message).not.toContain('s3cret');
  });
});

describe('AUTH', () => {
  let r: RedisProcess;
  beforeAll(async () => {
    r = await startRedisProcess({ conf: ['requirepass top-secret'] });
    redisCli(
      r.port,
      '--no-auth-warning',
      '-a',
      'top-secret',
      'ACL',
      'SETUSER',
      'alice',
      'on',
      '>al1ce',
      '~*',
      '+@all',
    );
  });
  afterAll(() => r?.stop());

  it('authenticates with requirepass and with an ACL user', async () => {
    expect(await redisCommand(`redis://:top-secret@127.0.0.1:${r.port}`, 'PING')).toBe('PONG');
    expect(await redisCommand(`redis://alice:al1ce@127.0.0.1:${r.port}/1`, 'ACL', 'WHOAMI')).toBe(
      'alice',
    );
  });

  it('refuses a wrong password or a missing one with a clear exit 6', async () => {
    const e = await rejection(redisPipeline(`redis://alice:wrong@127.0.0.1:${r.port}`, [['PING']]));
    expect(e.exitCode).toBe(6);
    expect(e.message).toMatch(/refused the connection setup \(AUTH\/SELECT\): WRONGPASS/);
    expect(e.message).not.toContain('wrong@');
    const [noauth] = await redisPipeline(r.url, [['PING']]);
    expect((noauth as RedisReplyError).message).toMatch(/^NOAUTH/);
  });

  it('refuses a database index the server does not have', async () => {
    const e = await rejection(
      redisPipeline(`redis://:top-secret@127.0.0.1:${r.port}/99`, [['PING']]),
    );
    expect(e.exitCode).toBe(6);
    expect(e.message).toMatch(/refused the connection setup .*DB index is out of range/);
  });
});

describe('TLS (redis-server --tls-port)', () => {
  let r: RedisProcess;
  let ca: string;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'wtpool-tls-'));
    const tls = await startTlsRedisProcess(dir);
    r = tls.redis;
    ca = readFileSync(tls.cert, 'utf8');
  });
  afterAll(async () => {
    await r?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('talks TLS to rediss:// with the CA given, and refuses an unknown certificate', async () => {
    expect(
      await redisPipeline(
        `rediss://127.0.0.1:${r.port}/2`,
        [
          ['SET', 't', 'ls'],
          ['GET', 't'],
        ],
        { tls: { ca } },
      ),
    ).toEqual(['OK', 'ls']);
    const e = await rejection(redisPipeline(`rediss://127.0.0.1:${r.port}`, [['PING']]));
    expect(e.exitCode).toBe(6);
    expect(e.message).toMatch(/SELF_SIGNED|DEPTH_ZERO|certificate/i);
    // A plain client on the TLS port gets no RESP answer: the server closes or waits.
    const plain = await rejection(
      redisPipeline(`redis://127.0.0.1:${r.port}`, [['PING']], { timeout: 1000 }),
    );
    expect(plain.exitCode).toBe(6);
  });
});

describe('subscribe', () => {
  let r: RedisProcess;
  beforeAll(async () => {
    r = await startRedisProcess({ conf: ['requirepass pubpw'] });
  });
  afterAll(() => r?.stop());
  const url = () => `redis://:pubpw@127.0.0.1:${r.port}`;

  it('delivers messages, and re-subscribes after the server was SIGKILLed and restarted', async () => {
    const got: [string, string][] = [];
    let subscribed = 0;
    let reconnects = 0;
    const stop = subscribe(url(), ['a', 'b'], (c, m) => got.push([c, m]), {
      onSubscribed: () => subscribed++,
      onReconnect: () => reconnects++,
      backoff: { minMs: 20, maxMs: 200 },
    });
    try {
      await until('subscribed', () => subscribed === 1);
      await redisPipeline(url(), [
        ['PUBLISH', 'a', 'one'],
        ['PUBLISH', 'c', 'not mine'],
        ['PUBLISH', 'b', 'two\r\n$7\r\nmessage'],
      ]);
      await until('two messages', () => got.length >= 2);
      expect(got).toEqual([
        ['a', 'one'],
        ['b', 'two\r\n$7\r\nmessage'],
      ]);
      await r.kill('SIGKILL');
      await r.start();
      await until('re-subscribed after the restart', () => reconnects === 1);
      expect(subscribed).toBe(2);
      const [n] = await redisPipeline(url(), [['PUBLISH', 'a', 'three']]);
      expect(n).toBe(1); // one subscriber: this one, on its new connection
      await until('the message after the restart', () => got.length === 3);
      expect(got[2]).toEqual(['a', 'three']);
    } finally {
      stop();
    }
    const [after] = await redisPipeline(url(), [['PUBLISH', 'a', 'gone']]);
    await until('the stopped subscription gone from the server', async () => {
      const [c] = await redisPipeline(url(), [['PUBSUB', 'NUMSUB', 'a']]);
      return (c as Reply[])[1] === 0;
    });
    expect(typeof after).toBe('number');
    expect(got).toHaveLength(3);
  });
});

/** Runs a node process that subscribes; resolves with its exit code and stdout once it exits. */
function subscriberProcess(url: string, release: 'onSubscribed' | 'onError') {
  const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/resp.js');
  // A ref'd interval holds the process until the subscription reports; after that only the
  // subscription is left, and it must not keep the process alive.
  const code = `import { subscribe } from ${JSON.stringify(dist)};
const hold = setInterval(() => {}, 1000);
subscribe(${JSON.stringify(url)}, ['x'], () => {}, {
  backoff: { minMs: 20, maxMs: 50 },
  ${release}: () => { if (hold) { console.log('${release}'); clearInterval(hold); } },
});`;
  return new Promise<{ code: number | null; out: string }>((resolve) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => resolve({ code, out }));
  });
}

describe('a subscription never keeps the process alive', () => {
  it('exits once subscribed, and while it is reconnecting to a server that is down', async () => {
    const r = await startRedisProcess();
    try {
      expect(await subscriberProcess(r.url, 'onSubscribed')).toEqual({
        code: 0,
        out: 'onSubscribed\n',
      });
    } finally {
      await r.stop();
    }
    expect(await subscriberProcess(r.url, 'onError')).toEqual({ code: 0, out: 'onError\n' });
  });
});

describe('a refused connection', () => {
  it('leaves no timer behind (a CLI exits at once, not when the connect timeout fires)', async () => {
    const probe = await startRedisProcess();
    await probe.stop(); // its port is now closed
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const e = await rejection(
      redisPipeline(`redis://127.0.0.1:${probe.port}`, [['PING']], { timeout: 60_000 }),
    );
    expect(e.exitCode).toBe(6);
    expect(e.message).toMatch(/ECONNREFUSED/);
    expect(timers()).toBe(before);
  });
});

describe('Redis Sentinel', () => {
  let topo: SentinelTopology;
  beforeAll(async () => {
    topo = await startSentinelTopology({ conf: ['requirepass sent-pw'], authPass: 'sent-pw' });
  }, 120_000);
  afterAll(() => topo?.stop());

  const url = () => topo.url.replace('redis+sentinel://', 'redis+sentinel://:sent-pw@') + '/2';
  const whoAnswers = async () => {
    const [port, role] = await redisPipeline(url(), [['CONFIG', 'GET', 'port'], ['ROLE']]);
    return { port: Number((port as Reply[])[1]), role: (role as Reply[])[0] };
  };

  it('reaches the primary, waits for the replica, and after a failover reaches the promoted replica', async () => {
    expect(await whoAnswers()).toEqual({ port: topo.primary.port, role: 'master' });
    await redisPipeline(url(), [['SET', 'survives', 'yes']], {
      wait: { replicas: 1, timeoutMs: 5000 },
    });
    const e = await rejection(
      redisPipeline(url(), [['SET', 'x', '1']], { wait: { replicas: 2, timeoutMs: 100 } }),
    );
    expect(e.exitCode).toBe(6);
    expect(e.message).toMatch(/1 of 2 replicas acknowledged/);

    const pushes: string[] = [];
    let reconnects = 0;
    let subscribed = 0;
    const stop = subscribe(url(), ['fleet'], (_c, m) => pushes.push(m), {
      onReconnect: () => reconnects++,
      onSubscribed: () => subscribed++,
      backoff: { minMs: 50, maxMs: 300 },
    });
    try {
      await until('subscribed through the sentinels', () => subscribed === 1);
      await topo.primary.kill('SIGKILL');
      await until(
        'the sentinels promoting the replica',
        () => topo.masterPort() === topo.replica.port,
        {
          attempts: 600,
          everyMs: 100,
        },
      );
      const now = await until('the sentinel URL reaching the new primary', async () => {
        try {
          return await whoAnswers();
        } catch {
          return undefined;
        }
      });
      expect(now).toEqual({ port: topo.replica.port, role: 'master' });
      expect(await redisCommand(url(), 'GET', 'survives')).toBe('yes');
      await until('the subscription moved to the new primary', () => reconnects === 1, {
        attempts: 600,
        everyMs: 100,
      });
      await redisPipeline(url(), [['PUBLISH', 'fleet', 'after failover']]);
      await until('the message through the new primary', () => pushes.includes('after failover'));
    } finally {
      stop();
    }
  }, 120_000);

  it('fails with exit 6 naming the master when no sentinel knows it', async () => {
    const bad = topo.url.replace(`/${topo.master}`, '/nosuchmaster');
    const e = await rejection(redisPipeline(bad, [['PING']], { timeout: 300 }));
    expect(e.exitCode).toBe(6);
    expect(e.message).toMatch(/no sentinel named master nosuchmaster/);
  });
});
