import { SCHEMA, isLeaf, type Leaf, type Schema } from './schema.js';

function typeText(leaf: Leaf): string {
  const t =
    leaf.type === 'enum'
      ? (leaf.values ?? []).map((v) => `\`${v}\``).join(' \\| ')
      : leaf.type === 'string[]'
        ? 'list of strings'
        : leaf.type === 'path-gates'
          ? 'mapping: glob → checks'
          : leaf.type;
  return leaf.nullable ? `${t} or null` : t;
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
optional: every key has a default. An unknown key or a value of the wrong type stops the command
with exit code 3, naming the file, the key and the expected type, before anything is created
(no state dir, no worktree). Values are checked beyond their type (D91): durations have lower
bounds (\`pool.leaseTtl\` ≥ 10s, \`monitor.interval\` ≥ 1s); \`postgres.url\` and \`redis.url\` must
parse with a \`postgres://\`/\`postgresql://\` or \`redis://\`/\`rediss://\` scheme (passwords redacted in
the message); \`pool.base\` must be a branch name git accepts; \`pool.keep\` entries stay inside the
worktree; \`pool.root\` may not be \`/\`, under /proc, /sys or /dev, inside the git directory, the
state dir or the checkout; Redis indexes are at most 10000. A YAML alias bomb is an invalid-YAML
error (exit 3). The config cache in the state dir is mode 0600 (D92). Durations are written \`90s\`,
\`30m\`, \`2h\` or as milliseconds. Environment variables in the table override the file.

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
