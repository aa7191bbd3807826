#!/usr/bin/env node
'use strict';
// CommonJS, as the pool's bin copied beside it (bin/package.json; scripts/pack.mjs). The
// launcher bin/monitor (a copy of packages/pool/bin/pool, D396) may have moved NODE_EXTRA_CA_CERTS
// aside for Node's start: it goes back for every child before the CLI loads.
require('./extra-ca-env.js');

import('../dist/cli-monitor.js').then(async ({ main }) => {
  process.exitCode = await main(process.argv.slice(2));
});
