#!/usr/bin/env node
// Thin bin: one bundled file (scripts/bundle.mjs, D65), no TypeScript loader on the hot path.
import { main } from '../dist/cli-monitor.bundle.js';

process.exitCode = await main(process.argv.slice(2));
