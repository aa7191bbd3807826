#!/usr/bin/env node
import { main } from '../dist/cli-integrate.js';

process.exitCode = await main(process.argv.slice(2));
