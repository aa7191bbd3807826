export * from './errors.js';
export * from './values.js';
export * from './cli.js';
export * from './exec.js';
export * from './prompt.js';
export * from './procstat.js';
export * from './trace.js';
export * from './extra-ca.js';
