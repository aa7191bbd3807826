/**
 * `pnpm bench [name…]`: runs the named benchmarks (all when none is named) and prints markdown
 * tables with ratios against baselines measured in the same run. See docs/benchmarks.md.
 */
const SUITES = [
  'lock',
  'pool',
  'mcp',
  'services',
  'monitor',
  'tracks',
  'gates',
  'monorepo',
] as const;

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !(SUITES as readonly string[]).includes(w));
if (unknown.length) {
  console.error(`unknown benchmark ${unknown.join(', ')}; known: ${SUITES.join(', ')}`);
  process.exit(2);
}
const run = wanted.length ? wanted : [...SUITES];
console.log(`# worktree-pool benchmarks (${new Date().toISOString()}, node ${process.version})`);
for (const name of run) {
  let mod: { run?: () => Promise<void> };
  try {
    mod = (await import(`./${name}.ts`)) as { run?: () => Promise<void> };
  } catch (e) {
    if (
      (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' &&
      String(e).includes(`${name}.ts`)
    ) {
      console.log(`\n## ${name}\n\n(not written yet)`);
      continue;
    }
    throw e;
  }
  await mod.run!();
}
