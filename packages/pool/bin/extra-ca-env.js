'use strict';
// The launcher (bin/pool, D386) moved NODE_EXTRA_CA_CERTS aside so that Node's start did not
// parse those certificates: every child gets it back, and the TLS connections this process
// opens trust them (core/src/extra-ca.ts reads the marker). Required first by every bin the
// launcher can start (this package's pool.js; the published package's five, D396).
const moved = process.env.WTPOOL_NODE_EXTRA_CA_CERTS;
if (moved !== undefined) {
  delete process.env.WTPOOL_NODE_EXTRA_CA_CERTS;
  if (process.env.NODE_EXTRA_CA_CERTS === undefined) {
    process.env.NODE_EXTRA_CA_CERTS = moved;
    globalThis[Symbol.for('wtpool.extra-ca-certs')] = moved;
  }
}
