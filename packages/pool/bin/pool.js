#!/usr/bin/env node
'use strict';
// Thin bin: one bundled CommonJS file compiled through a V8 code cache (scripts/bundle.mjs,
// code-cache.js; D65, D380), no TypeScript loader on the hot path.

// `pool run` must not die of a signal before it can release its lease (issue 21 item 10): from
// here until run.ts takes over (it installs its own handlers, then calls dispose), a signal is
// recorded, not fatal. The bundle is loaded after this, so loading it is covered too.
if (process.argv[2] === 'run') {
  const early = { signals: [] };
  const handlers = ['SIGINT', 'SIGTERM', 'SIGHUP'].map((sig) => {
    const h = () => early.signals.push(sig);
    process.on(sig, h);
    return [sig, h];
  });
  early.dispose = () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
  globalThis[Symbol.for('wtpool.run.early-signals')] = early;
}

// NODE_EXTRA_CA_CERTS back for every child, if the launcher (bin/pool, D386) moved it aside.
require('./extra-ca-env.js');

const path = require('node:path');
const { runCached } = require('./code-cache.js');

runCached(
  path.join(__dirname, '../dist/cli-pool.bundle.cjs'),
  (bundle) => bundle.main(process.argv.slice(2)),
  process.argv[2],
);
