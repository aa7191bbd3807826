/* eslint-disable */
// Stands in for graceful-fs in the CLI bundles (scripts/bundle.mjs): proper-lockfile uses it
// only as the default `fs`, and @wtpool/lock always passes its own fs to proper-lockfile.
module.exports = require('fs');
