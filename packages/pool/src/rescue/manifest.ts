/**
 * What a rescue commit holds beyond its tree, written into its own message (one line,
 * `wtpool-manifest: <json>`): the ignored files it saved, the nested repositories saved beside
 * it (their path and their work ref), the HEAD it was made on, and the permission bits git does
 * not keep. `pool rescue show` and `restore` read it back; a rescue made before it existed has
 * none (its nested repositories are then listed by ref only).
 */

export interface NestedEntry {
  /** Path of the nested repository, relative to the repository this commit was made in. */
  path: string;
  /** Its work ref, as named in the repository this commit was made in. */
  ref: string;
  /** A submodule (a gitlink of the enclosing index) rather than an untracked repository. */
  submodule: boolean;
}

export interface Manifest {
  v: 1;
  /** The branch HEAD was on (`refs/heads/…`), null when detached or unborn. */
  branch: string | null;
  /** The HEAD commit (the rescue commit's parent), null on an unborn branch. */
  head: string | null;
  /** Ignored files saved into the commit (`git add -f`). */
  ignored: string[];
  nested: NestedEntry[];
  /** Ignored files left out (over the size limit); nothing is saved when this is not empty. */
  unsaved: string[];
  /** Nested repositories removed unsaved (`--discard-nested`). */
  discarded: string[];
  /** Permission bits of saved files git would not restore (anything but 0644 and 0755). */
  modes: Record<string, number>;
}

const TAG = 'wtpool-manifest: ';

/** The commit message carrying `m` after the human subject line. */
export function withManifest(subject: string, m: Manifest): string {
  return `${subject}\n\n${TAG}${JSON.stringify(m)}\n`;
}

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

/** The manifest of a rescue commit's message, or null (an older rescue, or not a rescue). */
export function readManifest(message: string): Manifest | null {
  const line = message.split('\n').find((l) => l.startsWith(TAG));
  if (!line) return null;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(line.slice(TAG.length)) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null || raw.v !== 1) return null;
  const nested = Array.isArray(raw.nested)
    ? raw.nested
        .filter(
          (n): n is { path: string; ref: string; submodule?: unknown } =>
            typeof n === 'object' &&
            n !== null &&
            typeof (n as { path?: unknown }).path === 'string' &&
            typeof (n as { ref?: unknown }).ref === 'string',
        )
        .map((n) => ({ path: n.path, ref: n.ref, submodule: n.submodule === true }))
    : [];
  const modes: Record<string, number> = {};
  if (typeof raw.modes === 'object' && raw.modes !== null) {
    for (const [k, v] of Object.entries(raw.modes as Record<string, unknown>))
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0o7777) modes[k] = v;
  }
  return {
    v: 1,
    branch: typeof raw.branch === 'string' ? raw.branch : null,
    head: typeof raw.head === 'string' ? raw.head : null,
    ignored: strings(raw.ignored),
    nested,
    unsaved: strings(raw.unsaved),
    discarded: strings(raw.discarded),
    modes,
  };
}
