/**
 * PostgreSQL: connections from pg_stat_activity (client backends), total and per database,
 * against max_connections. `pg` is imported lazily so commands that do not touch PostgreSQL do
 * not pay for loading it.
 */
import { redact, serviceUnavailableError, trustExtraCaCerts } from '@wtpool/core';

export interface PgConnections {
  /** max_connections of the server. */
  max: number;
  /** superuser_reserved_connections: ordinary roles get max - reserved. */
  reserved: number;
  /** Client connections, all databases (not counting the monitor's own). */
  total: number;
  /** Client connections per database name. */
  byDatabase: Record<string, number>;
}

export interface PgSnapshot extends PgConnections {
  /** Every database of the cluster, except template0/template1. */
  databases: string[];
}

type PgClient = import('pg').Client;

/** Opens a client to the admin URL with a short connect timeout; throws a readable error. */
export async function pgConnect(url: string): Promise<PgClient> {
  const pg = (await import('pg')).default;
  await trustExtraCaCerts(); // a TLS connection trusts NODE_EXTRA_CA_CERTS (D386)
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  // An idle client whose server goes away emits 'error'; never crash the monitor on it.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => {});
    throw serviceUnavailableError(
      `PostgreSQL at ${redact(url)} is unreachable: ${(e as Error).message}`,
    );
  }
  return client;
}

/** One round trip: settings, connections per database and the database list. */
export async function pgSnapshot(client: PgClient): Promise<PgSnapshot> {
  const r = await client.query<{ kind: string; name: string | null; n: string }>(
    `SELECT 'setting' AS kind, name, setting AS n FROM pg_settings
       WHERE name IN ('max_connections', 'superuser_reserved_connections')
     UNION ALL
     SELECT 'conn', datname, count(*)::text FROM pg_stat_activity
       WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY datname
     UNION ALL
     SELECT 'db', datname, '0' FROM pg_database WHERE datname NOT IN ('template0', 'template1')`,
  );
  const snap: PgSnapshot = { max: 0, reserved: 0, total: 0, byDatabase: {}, databases: [] };
  for (const row of r.rows) {
    const n = Number(row.n);
    if (row.kind === 'setting') {
      if (row.name === 'max_connections') snap.max = n;
      else snap.reserved = n;
    } else if (row.kind === 'conn') {
      snap.total += n;
      if (row.name) snap.byDatabase[row.name] = n;
    } else if (row.name) snap.databases.push(row.name);
  }
  snap.databases.sort();
  return snap;
}

export async function withPg<T>(url: string, fn: (c: PgClient) => Promise<T>): Promise<T> {
  const client = await pgConnect(url);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
