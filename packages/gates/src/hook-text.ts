/**
 * The text `gates install` writes, pure (no files): the shared hook script, the block added to
 * a hook directory's `pre-commit` script, and where that block goes.
 *
 * Order (D331): a repository whose own pre-commit fixes what is staged (lint-staged, which runs
 * `prettier --write` or `eslint --fix`; a formatter's `--write`) relies on that fix. Gates run
 * before it would reject the unformatted commit it was about to fix, so adoption would turn an
 * auto-fix into a rejection. The gates therefore run after the last such command (they then
 * check what it staged); elsewhere they run first, before anything slower.
 */
export const HOOK_MARKER = '# wtpool-gates-hook';

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A command that rewrites the staged files: the gates run after it. */
const FIXER = /(^|[\s;&|(])(lint-staged|nano-staged|pretty-quick)\b|\s--write\b|\s--fix\b/;

/** The shell lines of `text` that run a fixer (comments ignored). */
export function fixerLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && FIXER.test(` ${l}`));
}

/**
 * The hook script. It prefers the gates of the checkout being committed to (the toolkit's own
 * packages/gates when dogfooding, else the repository's node_modules), so each branch runs its
 * own version; the installing gates is the fallback. Not finding any is a failure: the gates
 * are mandatory, a missing CLI must not let a commit through. A pre-commit hook that was there
 * before install is chained: after the gates, or before them when it fixes what is staged
 * (`chainedFixes`), so the gates check its result.
 */
export function hookScript(gatesBin: string, opts: { chainedFixes?: boolean } = {}): string {
  const chained = opts.chainedFixes
    ? `# The pre-commit hook that was here before \`gates install\` fixes what is staged: it runs
# first (its failure stops the commit), then the gates check what it staged.
if [ -x "$0.pre-gates" ]; then "$0.pre-gates" "$@" || exit $?; fi
`
    : '';
  const after = opts.chainedFixes
    ? ''
    : `# A pre-commit hook that was here before \`gates install\` runs after the gates.
if [ -x "$0.pre-gates" ]; then exec "$0.pre-gates" "$@"; fi
`;
  return `#!/bin/sh
${HOOK_MARKER} v1: written by \`gates install\`; run it again rather than editing this file.
# Shared by every worktree of this repository (git's hooks directory is in the common dir).
top=$(git rev-parse --show-toplevel) || exit 1
if [ -f "$top/packages/gates/bin/gates.js" ] && [ -f "$top/packages/gates/dist/cli-gates.js" ]; then
  gates="$top/packages/gates/bin/gates.js"
elif [ -f "$top/node_modules/worktree-pool/bin/gates.js" ]; then
  gates="$top/node_modules/worktree-pool/bin/gates.js"
elif [ -f "$top/node_modules/@wtpool/gates/bin/gates.js" ]; then
  gates="$top/node_modules/@wtpool/gates/bin/gates.js"
elif [ -f ${sq(gatesBin)} ]; then
  gates=${sq(gatesBin)}
else
  echo "gates: cannot find the gates CLI; run \\\`pnpm install\\\`, then \\\`gates install\\\`" >&2
  exit 1
fi
${chained}# --repo: the worktree being committed to, even when a pnpm parent set INIT_CWD elsewhere.
node "$gates" pre-commit --repo "$top" || exit $?
${after}`;
}

export const BLOCK_START = `# >>> ${HOOK_MARKER.slice(2)} (\`gates install\` added this block; \`gates uninstall\` removes it)`;
const BLOCK_END = `# <<< ${HOOK_MARKER.slice(2)}`;

/**
 * The block added to a hook directory's `pre-commit` script. It is committed with the
 * repository, so it names no absolute path: `gates` from the worktree's node_modules/.bin
 * (husky puts it on PATH), else from the main checkout's.
 */
export const HOOK_BLOCK = `${BLOCK_START}
command -v gates >/dev/null 2>&1 || PATH="$(git rev-parse --path-format=absolute --git-common-dir)/../node_modules/.bin:$PATH"
gates pre-commit --repo "$(git rev-parse --show-toplevel)" || exit $?
${BLOCK_END}
`;

/** `text` without the gates block. */
export function removeBlock(text: string): string {
  const start = text.indexOf(BLOCK_START);
  if (start === -1) return text;
  const end = text.indexOf(BLOCK_END, start);
  if (end === -1) return text;
  let after = end + BLOCK_END.length;
  if (text[after] === '\n') after++;
  return text.slice(0, start) + text.slice(after);
}

/** Nesting change of one shell line (if/case/loops/braces), enough to find the top level. */
function depthDelta(line: string): number {
  const t = line.replace(/#.*$/, '').trim();
  let d = 0;
  if (/^(if|case|for|while|until)\b/.test(t)) d++;
  if (/(^|;\s*)(fi|esac|done)\b/.test(t)) d--;
  if (/\{\s*$/.test(t) && !/\}\s*$/.test(t.replace(/\{\s*$/, ''))) d++;
  if (/^\}/.test(t)) d--;
  return d;
}

export interface Placement {
  /** The script with the gates block. */
  text: string;
  /** The fixer command the gates run after, or null (they run first). */
  after: string | null;
  /** Why the gates could not go after a fixer, when one replaces the shell (`exec …`). */
  warning: string | null;
}

/** The lines of the gates block already in `text`, or null. */
function existingBlock(text: string): string[] | null {
  const start = text.indexOf(BLOCK_START);
  const end = start === -1 ? -1 : text.indexOf(BLOCK_END, start);
  return end === -1 ? null : text.slice(start, end + BLOCK_END.length).split('\n');
}

/**
 * `text` (a pre-commit script, or '' for a new one) with the gates block: right after the
 * shebang, or, when the script fixes what is staged, after the top-level statement holding its
 * last fixer command. An existing block keeps its text (the repository may have adapted it) and
 * its place, unless it must move to run after a fixer (or before an `exec` one).
 */
export function placeBlock(text: string): Placement {
  const existing = existingBlock(text);
  const lines = (existing ? removeBlock(text) : text).split('\n');
  const first = lines[0]?.startsWith('#!') ? 1 : 0;
  let at = first;
  let after: string | null = null;
  let warning: string | null = null;
  let depth = 0;
  let pending: string | null = null; // a fixer inside a compound statement not yet closed
  lines.forEach((line, i) => {
    if (i < first) return;
    const fixer = fixerLines(line)[0];
    if (fixer && /^exec\s/.test(fixer)) {
      warning = `\`${fixer}\` replaces the shell, so nothing after it runs: the gates run before it`;
    } else if (fixer) pending = fixer;
    depth += depthDelta(line);
    if (pending && depth <= 0) {
      at = i + 1;
      after = pending;
      pending = null;
    }
  });
  if (warning && after === null) at = first;
  if (existing && after === null && warning === null) return { text, after, warning };
  const block = existing ?? HOOK_BLOCK.trimEnd().split('\n');
  // A script without a trailing newline: the block starts on a line of its own.
  if (at === lines.length && lines.at(-1) === '') at = lines.length - 1;
  lines.splice(at, 0, ...block);
  return { text: lines.join('\n'), after, warning };
}
