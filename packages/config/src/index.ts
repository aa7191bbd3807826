export { loadConfig, parseYamlFile } from './load.js';
export type { LoadedConfig, LoadOptions } from './load.js';
export { validateConfig, defaultConfig, envOverrides } from './validate.js';
export { NON_WORK_TYPES, RULES, SCHEMA, isLeaf } from './schema.js';
export type { Config, ConfigOf, Schema, Leaf, LeafType } from './schema.js';
export { keyOption, schemaLeaf } from './options.js';
export { PATH_CHECKS } from './path-gates.js';
export type { PathGates, PathCheck } from './path-gates.js';
export { relativeHooksPath, resolveRepo, targetDir } from './repo.js';
export type { RepoPaths } from './repo.js';
export {
  slotId,
  slotNumber,
  slotNames,
  fleetHost,
  checkName,
  checkTask,
  checkDatabaseName,
  templateDatabase,
  orphanRescueRefPrefix,
  poolRoot,
  integrationWorktree,
  urlWithPath,
  SLOT_ID,
} from './naming.js';
export type { SlotNames } from './naming.js';
export { renderConfigDocs } from './docs.js';
export { integrationStateDir, integrationWorktrees } from './integration.js';
export { fleetKeys, fleetRepoId } from './fleet.js';
export type { FleetKeys } from './fleet.js';
