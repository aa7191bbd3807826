#!/usr/bin/env node
// Thin bin: compiled JavaScript, no TypeScript loader on the hot path.
import { main } from '../dist/cli-integrate.js';

process.exitCode = await main(process.argv.slice(2));
