export * from './errors.js';
export * from './duration.js';
export * from './cli.js';
export * from './exec.js';
export * from './prompt.js';
export * from './procstat.js';
export * from './trace.js';
