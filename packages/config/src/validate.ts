import {
  coerceBoolean,
  coerceDuration,
  coerceInt,
  coerceList,
  coerceNumber,
  configError,
  type Coerced,
} from '@wtpool/core';
import { coercePathGates } from './path-gates.js';
import { RULES, SCHEMA, isLeaf, type Config, type Leaf, type Schema } from './schema.js';

/** An environment override: text, read by the same coercers as a flag's value. */
class EnvText {
  constructor(
    readonly text: string,
    readonly name: string,
  ) {}
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * One key's value: from the file (typed YAML) or, with `text`, from the environment (text that
 * the same coercers read as flags do). Throws a config error naming the key.
 */
export function coerceLeaf(
  leaf: Leaf,
  value: unknown,
  key: string,
  source: string,
  text = false,
): unknown {
  const fail = (expected: string) =>
    configError(`${source}: ${key} must be ${expected}`, { hint: `fix ${key} in ${source}` });
  const r = coerceType(leaf, value, key, source, text);
  if (r.expected !== undefined) throw fail(leaf.nullable ? `${r.expected} (or null)` : r.expected);
  const v = r.value;
  if (v === null || !leaf.check) return v;
  const check = leaf.check as (x: unknown) => string | undefined;
  for (const x of Array.isArray(v) ? v : [v]) {
    const problem = check(x);
    if (problem) throw fail(problem);
  }
  return v;
}

function coerceType(
  leaf: Leaf,
  value: unknown,
  key: string,
  source: string,
  text: boolean,
): Coerced<unknown> {
  if (value === null || value === undefined) {
    return leaf.nullable ? { value: null } : { expected: `set (not null), got ${describe(value)}` };
  }
  const num = { min: leaf.min as number | undefined, max: leaf.max as number | undefined };
  switch (leaf.type) {
    case 'boolean':
      return coerceBoolean(value, text);
    case 'int':
      return coerceInt(value, num, text);
    case 'number':
      return coerceNumber(value, num, text);
    case 'duration':
      return coerceDuration(value, { min: leaf.min, max: leaf.max });
    case 'string[]':
      return coerceList(value, text);
    case 'enum':
      return typeof value === 'string' && leaf.values?.includes(value)
        ? { value }
        : { expected: `one of ${leaf.values?.join(', ')}, got ${describe(value)}` };
    case 'path-gates':
      return { value: coercePathGates(value, key, source) };
    case 'string':
      if (typeof value !== 'string') return { expected: `a string, got ${describe(value)}` };
      if (leaf.pattern && !leaf.pattern.test(value)) {
        return {
          expected: `${leaf.patternHint ?? `match ${leaf.pattern}`}, got ${JSON.stringify(value)}`,
        };
      }
      return { value };
  }
}

function walk(
  schema: Schema,
  raw: Record<string, unknown>,
  prefix: string,
  source: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(raw)) {
    if (!(key in schema)) {
      const known = Object.keys(schema).map((k) => (prefix ? `${prefix}.${k}` : k));
      throw configError(`${source}: unknown key ${prefix ? `${prefix}.${key}` : key}`, {
        hint: `known keys here: ${known.join(', ')} (see docs/config.md)`,
      });
    }
  }
  for (const [key, node] of Object.entries(schema)) {
    const full = prefix ? `${prefix}.${key}` : key;
    const value = raw[key];
    if (isLeaf(node)) {
      out[key] =
        value === undefined
          ? coerceLeaf(node, node.default, full, 'defaults')
          : value instanceof EnvText
            ? coerceLeaf(node, value.text, full, `environment ${value.name}`, true)
            : coerceLeaf(node, value, full, source);
    } else {
      // `scale:` with nothing under it is YAML null: a section emptied by mistake, refused.
      if (
        value !== undefined &&
        (value === null || typeof value !== 'object' || Array.isArray(value))
      ) {
        throw configError(`${source}: ${full} must be a mapping, got ${describe(value)}`);
      }
      out[key] = walk(node, (value ?? {}) as Record<string, unknown>, full, source);
    }
  }
  return out;
}

/** Collects environment overrides into a raw object shaped like the YAML. */
export function envOverrides(
  env: NodeJS.ProcessEnv,
  schema: Schema = SCHEMA,
  out: Record<string, unknown> = {},
): Record<string, unknown> {
  for (const [key, node] of Object.entries(schema)) {
    if (isLeaf(node)) {
      const v = node.env ? env[node.env] : undefined;
      if (v !== undefined && v !== '') out[key] = new EnvText(v, node.env!);
    } else {
      const sub = envOverrides(env, node, {});
      if (Object.keys(sub).length) out[key] = sub;
    }
  }
  return out;
}

function deepMerge(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      !(v instanceof EnvText) &&
      cur &&
      typeof cur === 'object' &&
      !Array.isArray(cur)
        ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Validates a raw config (parsed YAML) plus environment overrides against the schema. */
export function validateConfig(raw: unknown, source: string, env: NodeJS.ProcessEnv = {}): Config {
  if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw configError(`${source}: the top level must be a mapping, got ${describe(raw)}`);
  }
  const base = walk(SCHEMA, (raw ?? {}) as Record<string, unknown>, '', source);
  const overrides = envOverrides(env);
  const cfg = (Object.keys(overrides).length
    ? walk(SCHEMA, deepMerge(base, overrides), '', 'environment')
    : base) as unknown as Config;
  for (const rule of RULES) {
    const problem = rule.problem(cfg);
    if (problem)
      throw configError(`${source}: ${rule.key} ${problem}`, {
        hint: `fix ${rule.key} in ${source}`,
      });
  }
  return cfg;
}

/** The defaults, as a Config. */
export function defaultConfig(env: NodeJS.ProcessEnv = {}): Config {
  return validateConfig({}, 'defaults', env);
}
