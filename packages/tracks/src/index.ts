// Public surface of @wtpool/tracks.
export * from './reader.js';
export * from './status.js';
export * from './graph.js';
export * from './bv.js';
export * from './bv-loader.js';
export * from './evidence.js';
export * from './tracks.js';
export * from './analyze.js';
export * from './recommend.js';
export * from './format.js';
