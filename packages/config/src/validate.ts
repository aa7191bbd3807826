import { configError, formatDuration, parseDuration } from '@wtpool/core';
import { coercePathGates } from './path-gates.js';
import { SCHEMA, isLeaf, type Config, type Leaf, type Schema } from './schema.js';

const typeName = (leaf: Leaf): string => {
  const base =
    leaf.type === 'enum'
      ? `one of ${leaf.values?.join(', ')}`
      : leaf.type === 'duration'
        ? `a duration (90s, 30m, 2h or milliseconds)${leaf.min ? ` of at least ${formatDuration(leaf.min)}` : ''}`
        : leaf.type === 'string[]'
          ? 'a list of strings'
          : leaf.type === 'path-gates'
            ? 'a mapping of path globs to checks'
            : leaf.type === 'int'
              ? 'an integer'
              : `a ${leaf.type}`;
  return leaf.nullable ? `${base} or null` : base;
};

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function coerceLeaf(leaf: Leaf, value: unknown, key: string, source: string): unknown {
  const v = coerceType(leaf, value, key, source);
  const problem = v === null || !leaf.check ? undefined : leafProblem(leaf, v);
  if (problem) {
    throw configError(`${source}: ${key} must be ${problem}`, { hint: `fix ${key} in ${source}` });
  }
  return v;
}

function leafProblem(leaf: Leaf, v: unknown): string | undefined {
  const check = leaf.check as (x: unknown) => string | undefined;
  if (Array.isArray(v)) {
    for (const x of v) {
      const p = check(x);
      if (p) return p;
    }
    return undefined;
  }
  return check(v);
}

function coerceType(leaf: Leaf, value: unknown, key: string, source: string): unknown {
  const bad = (extra = '') =>
    configError(`${source}: ${key} must be ${typeName(leaf)}, got ${describe(value)}${extra}`, {
      hint: `fix ${key} in ${source}`,
    });
  if (value === null || value === undefined) {
    if (leaf.nullable) return null;
    throw bad();
  }
  switch (leaf.type) {
    case 'boolean':
      if (typeof value !== 'boolean') throw bad();
      return value;
    case 'int':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) throw bad();
      if (leaf.type === 'int' && !Number.isInteger(value)) throw bad();
      if (
        (leaf.min !== undefined && value < leaf.min) ||
        (leaf.max !== undefined && value > leaf.max)
      ) {
        throw bad(` (allowed: ${leaf.min ?? '…'} to ${leaf.max ?? '…'})`);
      }
      return value;
    }
    case 'duration':
      if (typeof value !== 'number' && typeof value !== 'string') throw bad();
      try {
        const ms = parseDuration(value, key);
        if (leaf.min !== undefined && ms < leaf.min) throw bad();
        return ms;
      } catch {
        throw bad();
      }
    case 'string[]':
      if (!Array.isArray(value) || !value.every((s) => typeof s === 'string')) throw bad();
      return value;
    case 'enum':
      if (typeof value !== 'string' || !leaf.values?.includes(value)) throw bad();
      return value;
    case 'path-gates':
      return coercePathGates(value, key, source);
    case 'string':
      if (typeof value !== 'string') throw bad();
      if (leaf.pattern && !leaf.pattern.test(value)) {
        throw configError(
          `${source}: ${key} must be ${leaf.patternHint ?? `match ${leaf.pattern}`}, got ${JSON.stringify(value)}`,
        );
      }
      return value;
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
          : coerceLeaf(node, value, full, source);
    } else {
      if (
        value !== undefined &&
        value !== null &&
        (typeof value !== 'object' || Array.isArray(value))
      ) {
        throw configError(`${source}: ${full} must be a mapping, got ${describe(value)}`);
      }
      out[key] = walk(node, (value ?? {}) as Record<string, unknown>, full, source);
    }
  }
  return out;
}

function envValue(leaf: Leaf, text: string, name: string): unknown {
  switch (leaf.type) {
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(text)) return true;
      if (/^(0|false|no|off)$/i.test(text)) return false;
      throw configError(`environment: ${name} must be true or false, got ${JSON.stringify(text)}`);
    case 'int':
    case 'number':
      if (!/^-?\d+(\.\d+)?$/.test(text.trim())) {
        throw configError(`environment: ${name} must be a number, got ${JSON.stringify(text)}`);
      }
      return Number(text);
    case 'string[]':
      return text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    default:
      return text;
  }
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
      if (v !== undefined && v !== '') out[key] = envValue(node, v, node.env!);
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
  if (cfg.scale.min > cfg.scale.max) {
    throw configError(
      `${source}: scale.min (${cfg.scale.min}) is larger than scale.max (${cfg.scale.max})`,
    );
  }
  if (cfg.store.backend === 'redis' && !cfg.store.url) {
    throw configError(`${source}: store.url is required when store.backend is redis`, {
      hint: "set store.url to the fleet's Redis, e.g. redis://10.0.0.5:6379/0",
    });
  }
  const portNames = cfg.ports.names;
  if (portNames.length > cfg.ports.stride) {
    throw configError(
      `${source}: ports.names has ${portNames.length} names but a block has ports.stride = ${cfg.ports.stride} ports`,
      { hint: 'raise ports.stride or name fewer ports' },
    );
  }
  const dup = portNames.find((n, i) => portNames.indexOf(n) !== i);
  if (dup) throw configError(`${source}: ports.names lists ${JSON.stringify(dup)} twice`);
  if (cfg.monitor.thresholds.DB_CONN_WARN > cfg.monitor.thresholds.DB_CONN_ERROR) {
    throw configError(`${source}: monitor.thresholds.DB_CONN_WARN is above DB_CONN_ERROR`);
  }
  return cfg;
}

/** The defaults, as a Config. */
export function defaultConfig(env: NodeJS.ProcessEnv = {}): Config {
  return validateConfig({}, 'defaults', env);
}
