/**
 * Flags that set a config key take their type and bounds from the key's schema entry, so a
 * flag and its key cannot disagree: `--ttl` refuses what `pool.leaseTtl` refuses (D320).
 */
import { configError, durationRange, formatDuration, type OptionSpec } from '@wtpool/core';
import { SCHEMA, isLeaf, type Leaf, type Schema } from './schema.js';

/** The schema entry of a dotted key (`pool.leaseTtl`); a typo is a programming error. */
export function schemaLeaf(key: string): Leaf {
  let node: Leaf | Schema = SCHEMA;
  for (const part of key.split('.')) {
    node = isLeaf(node) ? node : (node[part] as Leaf | Schema);
    if (node === undefined) break;
  }
  if (node === undefined || !isLeaf(node))
    throw configError(`no config key ${key} (see docs/config.md)`);
  return node;
}

const defaultText = (leaf: Leaf) =>
  typeof leaf.default === 'number' && leaf.type === 'duration'
    ? formatDuration(leaf.default)
    : String(leaf.default);

/**
 * An option spec for a flag that overrides config key `key`: its type and bounds come from the
 * schema, its help says which key it overrides and that key's default.
 */
export function keyOption(
  key: string,
  o: { name: string; description: string; value?: string },
): OptionSpec {
  const leaf = schemaLeaf(key);
  const type =
    leaf.type === 'duration'
      ? 'duration'
      : leaf.type === 'int'
        ? 'int'
        : leaf.type === 'string[]'
          ? 'list'
          : leaf.type === 'boolean'
            ? 'boolean'
            : 'string';
  return {
    name: o.name,
    type,
    ...(o.value ? { value: o.value } : {}),
    ...(leaf.min !== undefined ? { min: leaf.min } : {}),
    ...(leaf.max !== undefined ? { max: leaf.max } : {}),
    ...(leaf.type === 'enum' && leaf.values ? { choices: leaf.values } : {}),
    description: `${o.description} (default: ${key}, ${defaultText(leaf)}${leaf.type === 'duration' ? `; ${durationRange(leaf)}` : ''})`,
  };
}
