export * from './errors.js';
export * from './duration.js';
export * from './cli.js';
