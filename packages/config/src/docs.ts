import { DURATION_MAX, DURATION_MIN, formatDuration } from '@wtpool/core';
import { RULES, SCHEMA, isLeaf, type Leaf, type Schema } from './schema.js';

const bound = (b: number | string) => (typeof b === 'number' ? String(b) : b);

function boundsText(leaf: Leaf): string {
  if (leaf.type === 'duration') {
    const min = leaf.min ?? DURATION_MIN;
    const max = leaf.max ?? DURATION_MAX;
    return `, ${typeof min === 'number' ? formatDuration(min) : min}–${typeof max === 'number' ? formatDuration(max) : max}`;
  }
  if (leaf.min === undefined && leaf.max === undefined) return '';
  return `, ${leaf.min === undefined ? '…' : bound(leaf.min)}–${leaf.max === undefined ? '…' : bound(leaf.max)}`;
}

function typeText(leaf: Leaf): string {
  const t =
    leaf.type === 'enum'
      ? (leaf.values ?? []).map((v) => `\`${v}\``).join(' \\| ')
      : leaf.type === 'string[]'
        ? 'list of strings'
        : leaf.type === 'path-gates'
          ? 'mapping: glob → checks'
          : leaf.type;
  return `${t}${boundsText(leaf)}${leaf.nullable ? ' or null' : ''}`;
}

function defaultText(leaf: Leaf): string {
  if (leaf.default === null || leaf.default === undefined) return '—';
  if (typeof leaf.default === 'object' && !Array.isArray(leaf.default)) return '`{}`';
  return `\`${Array.isArray(leaf.default) ? `[${leaf.default.join(', ')}]` : String(leaf.default)}\``;
}

function rows(schema: Schema, prefix: string, out: string[]): void {
  for (const [key, node] of Object.entries(schema)) {
    const full = prefix ? `${prefix}.${key}` : key;
    if (isLeaf(node)) {
      const desc = node.description.replace(/\|/g, '\\|');
      out.push(
        `| \`${full}\` | ${typeText(node)} | ${defaultText(node)} | ${node.env ? `\`${node.env}\`` : ''} | ${desc} |`,
      );
    } else rows(node, full, out);
  }
}

/** docs/config.md, generated from the schema table (a test keeps the file in step). */
export function renderConfigDocs(): string {
  const sections: string[] = [];
  for (const [section, node] of Object.entries(SCHEMA)) {
    const out: string[] = [];
    rows(node as Schema, section, out);
    sections.push(
      `## ${section}\n\n| key | type | default | environment | meaning |\n|---|---|---|---|---|\n${out.join('\n')}\n`,
    );
  }
  return `# Configuration: pool.config.yaml

<!-- Generated from packages/config/src/schema.ts by \`pnpm docs:config\`; do not edit by hand. -->

Every command reads \`pool.config.yaml\` at the repository root (or \`--config FILE\`). The file is
optional: every key has a default. An unknown key, a value of the wrong type or out of bounds, or
a section left empty (\`scale:\` with nothing under it is null) stops the command with exit code 3,
naming the file, the key and what it must be, before anything is created (no state dir, no
worktree). The type column gives each key's bounds (inclusive); a flag that sets a key (\`--ttl\`
for \`pool.leaseTtl\`, \`--timeout\` for \`pool.waitTimeout\`) takes the same bounds and exits 2
outside them (D320).

- Durations are written \`90s\`, \`30m\`, \`2h\`, \`1d\`, \`250ms\` or as milliseconds; unless a key says
  otherwise they are ${formatDuration(DURATION_MIN)} to ${DURATION_MAX} (Node's timers hold at most 24.8 days): \`0\`, \`00\`,
  \`-1s\`, \`1e99\` and \`99999999999999999999d\` are refused.
- Numbers are decimal: YAML's \`0o7\` and \`0x1f\` are refused, not read as 7 and 31 (D321).
- \`postgres.url\`, \`redis.url\` and \`store.url\` must parse with a \`postgres://\`/\`postgresql://\` or
  \`redis://\`/\`rediss://\` scheme (passwords redacted in the message, D91); a well-formed \`store.url\`
  whose server does not answer is a service error (exit 6), not a config error.
- \`pool.base\` must be a branch name git accepts; \`pool.keep\` and \`pool.disposable\` entries are
  literal paths inside the worktree (no \`..\`, no \`.git\`, no glob characters: \`*\` would keep or
  delete every ignored file); a \`gates.paths\` glob closes every \`[\`.
- \`pool.root\` may not be \`/\`, under /proc, /sys or /dev, inside the git directory, the state dir
  or the checkout, nor contain the checkout (\`..\`, \`../..\`, the home directory); a relative
  root stays within the checkout's parent directory (\`../pool\`), an absolute one may be anywhere
  else (D322).
- Rules between keys: ${RULES.map((r) => r.says).join('; ')}.
- A YAML alias bomb is an invalid-YAML error (exit 3). The config cache in the state dir is mode
  0600 (D92). Environment variables in the table override the file, read as flags are read.

\`\`\`yaml
scale:
  min: 3
  max: 10
postgres:
  url: postgres://app:secret@127.0.0.1:5432/postgres
  migrate: pnpm db:migrate
  migrations: db/migrations/*.sql
redis:
  url: redis://127.0.0.1:6379
ports:
  base: 41000
\`\`\`

${sections.join('\n')}`;
}
