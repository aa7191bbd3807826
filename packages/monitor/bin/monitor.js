#!/usr/bin/env node
// Thin bin: one bundled file (scripts/bundle.mjs, D65), no TypeScript loader on the hot path.
// NODE_EXTRA_CA_CERTS back for every child, if the launcher (bin/monitor, pool's, D386) moved
// it aside; imported first, so it runs before the bundle loads.
import '../../pool/bin/extra-ca-env.js';
import { main } from '../dist/cli-monitor.bundle.js';

process.exitCode = await main(process.argv.slice(2));
