/**
 * A small declarative CLI runner. A command family (pool, monitor, tracks, gates, integrate)
 * describes its commands and options in one table; the same table parses argv, validates it and
 * prints --help, so help and behaviour cannot drift apart. bin files only set process.exitCode.
 */
import {
  coerceDuration,
  coerceInt,
  coerceList,
  type Coerced,
  type DurationBound,
} from './values.js';
import { ExitCode, WtpoolError, isWtpoolError, redact, usageError } from './errors.js';

/** The toolkit's version, printed by `<bin> --version` (a test keeps it equal to package.json). */
export const VERSION = '0.1.0';

export type OptionType = 'boolean' | 'string' | 'int' | 'duration' | 'list';

export interface OptionSpec {
  name: string;
  type: OptionType;
  description: string;
  /** Value placeholder in help, e.g. N, DUR, PATH. */
  value?: string;
  short?: string;
  default?: string | number | boolean;
  /**
   * For int and duration: inclusive bounds (a duration's as milliseconds or text, e.g. '10s').
   * A flag that sets a config key takes the key's bounds (@wtpool/config's keyOption).
   */
  min?: DurationBound;
  max?: DurationBound;
  /** For string: allowed values. */
  choices?: readonly string[];
}

export interface ArgSpec {
  name: string;
  description: string;
  optional?: boolean;
  /** Takes all remaining positionals (after `--` too). */
  rest?: boolean;
}

export type OptionValues = Record<string, string | number | boolean | string[] | undefined>;

export interface CommandContext {
  args: Record<string, string | string[] | undefined>;
  opts: OptionValues;
  json: boolean;
  debug: boolean;
  /** --repo as given (undefined when absent). */
  repo: string | undefined;
  /** --config as given (undefined when absent). */
  config: string | undefined;
  out: Output;
  /** The command's full name, e.g. "scale status". */
  command: string;
}

export interface CommandSpec {
  name: string;
  aliases?: string[];
  summary: string;
  description?: string;
  args?: ArgSpec[];
  options?: OptionSpec[];
  /** Returns the exit code (default 0). */
  run(ctx: CommandContext): Promise<number | void>;
}

export interface CliSpec {
  bin: string;
  summary: string;
  commands: CommandSpec[];
  /** Extra lines printed at the end of the family's help (exit codes, docs link). */
  footer?: string;
}

export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: 'json', type: 'boolean', description: 'print one JSON document on stdout' },
  {
    name: 'repo',
    type: 'string',
    value: 'PATH',
    description: 'target repository (default: the one containing the current directory)',
  },
  {
    name: 'config',
    type: 'string',
    value: 'FILE',
    description: 'config file (default: pool.config.yaml at the repository root)',
  },
  { name: 'debug', type: 'boolean', description: 'print stack traces of failures' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show help' },
];

/** Where commands print. JSON and results go to stdout; logs and progress go to stderr. */
export class Output {
  constructor(
    readonly json: boolean,
    private readonly stdout: NodeJS.WritableStream = process.stdout,
    private readonly stderr: NodeJS.WritableStream = process.stderr,
  ) {}

  /** True when progress should be shown: a terminal, not JSON mode, not CI. */
  get interactive(): boolean {
    return (
      !this.json &&
      Boolean((this.stderr as NodeJS.WriteStream).isTTY) &&
      !process.env.CI &&
      process.env.TERM !== 'dumb'
    );
  }

  /** The command's result: `value` as JSON, or `human` as text. */
  result(value: unknown, human: string | (() => string)): void {
    // Passwords in URLs are redacted in JSON too; the real values are in files only the user
    // can read (e.g. the slot's .env.worktree, mode 0600), never on a terminal or in a log.
    if (this.json) this.stdout.write(redact(JSON.stringify(value, null, 2)) + '\n');
    else {
      const text = typeof human === 'function' ? human() : human;
      if (text) this.stdout.write(redact(text) + (text.endsWith('\n') ? '' : '\n'));
    }
  }

  /** A log line on stderr (suppressed in JSON mode unless it is a warning). */
  info(message: string): void {
    if (!this.json) this.stderr.write(redact(message) + '\n');
  }

  warn(message: string): void {
    this.stderr.write(`warning: ${redact(message)}\n`);
  }

  /** Progress of long work, only on an interactive terminal. */
  progress(message: string): void {
    if (this.interactive) this.stderr.write(redact(message) + '\n');
  }
}

function optionHelp(o: OptionSpec): string {
  const flag = `${o.short ? `-${o.short}, ` : ''}--${o.name}${o.type === 'boolean' ? '' : ` ${o.value ?? o.type.toUpperCase()}`}`;
  const def = o.default === undefined ? '' : ` (default: ${String(o.default)})`;
  const choices = o.choices ? ` [${o.choices.join('|')}]` : '';
  return `  ${flag.padEnd(28)} ${o.description}${choices}${def}`;
}

function argUsage(a: ArgSpec): string {
  const inner = a.rest ? `${a.name}…` : a.name;
  return a.optional ? `[${inner}]` : `<${inner}>`;
}

export function commandHelp(spec: CliSpec, cmd: CommandSpec): string {
  const args = (cmd.args ?? []).map(argUsage).join(' ');
  const lines = [
    `Usage: ${spec.bin} ${cmd.name}${args ? ' ' + args : ''} [options]`,
    '',
    cmd.summary,
  ];
  if (cmd.description) lines.push('', cmd.description);
  if (cmd.aliases?.length) lines.push('', `Aliases: ${cmd.aliases.join(', ')}`);
  if (cmd.args?.length) {
    lines.push('', 'Arguments:');
    for (const a of cmd.args) lines.push(`  ${a.name.padEnd(28)} ${a.description}`);
  }
  if (cmd.options?.length) {
    lines.push('', 'Options:');
    for (const o of cmd.options) lines.push(optionHelp(o));
  }
  lines.push('', 'Global options:');
  for (const o of GLOBAL_OPTIONS) lines.push(optionHelp(o));
  if (spec.footer) lines.push('', spec.footer);
  return lines.join('\n') + '\n';
}

/** The first word of a command group (`rescue` of `rescue list`, `rescue show`) argv starts with. */
function groupOf(spec: CliSpec, argv: string[]): string | null {
  const first = argv[0];
  if (!first || first.startsWith('-')) return null;
  return spec.commands.some((c) => c.name.startsWith(`${first} `)) ? first : null;
}

/** The family's help; with `group` (e.g. `rescue`), only that group's commands. */
export function familyHelp(spec: CliSpec, group: string | null = null): string {
  const cmds = group ? spec.commands.filter((c) => c.name.startsWith(`${group} `)) : spec.commands;
  const width = Math.max(...cmds.map((c) => c.name.length)) + 2;
  const usage = group ? `${spec.bin} ${group} <command>` : `${spec.bin} <command>`;
  const lines = [`Usage: ${usage} [options]`, '', spec.summary, '', 'Commands:'];
  for (const c of cmds) lines.push(`  ${c.name.padEnd(width)} ${c.summary}`);
  lines.push('', 'Global options:');
  for (const o of GLOBAL_OPTIONS) lines.push(optionHelp(o));
  lines.push('', `Run \`${spec.bin} <command> --help\` for a command's options.`);
  lines.push(`\`${spec.bin} --version\` prints the version (${VERSION}).`);
  if (spec.footer) lines.push('', spec.footer);
  return lines.join('\n') + '\n';
}

function findCommand(spec: CliSpec, tokens: string[]): { cmd: CommandSpec; used: number } | null {
  let best: { cmd: CommandSpec; used: number } | null = null;
  for (const cmd of spec.commands) {
    for (const name of [cmd.name, ...(cmd.aliases ?? [])]) {
      const words = name.split(' ');
      if (words.length <= tokens.length && words.every((w, i) => tokens[i] === w)) {
        if (!best || words.length > best.used) best = { cmd, used: words.length };
      }
    }
  }
  return best;
}

function coerce(o: OptionSpec, raw: string, bin: string): string | number | string[] {
  const checked = <T>(r: Coerced<T>): T => {
    if (r.expected !== undefined) throw usageError(`--${o.name} must be ${r.expected}`);
    return r.value;
  };
  switch (o.type) {
    case 'int':
      return checked(
        coerceInt(
          raw,
          { min: o.min as number | undefined, max: o.max as number | undefined },
          true,
        ),
      );
    case 'duration':
      return checked(coerceDuration(raw, { min: o.min, max: o.max }));
    case 'list':
      return checked(coerceList(raw, true));
    default:
      if (o.choices && !o.choices.includes(raw)) {
        throw usageError(
          `--${o.name} must be one of ${o.choices.join(', ')}, got ${JSON.stringify(raw)}`,
          {
            hint: `see \`${bin} --help\``,
          },
        );
      }
      return raw;
  }
}

export interface ParsedArgv {
  cmd: CommandSpec | null;
  ctx: Omit<CommandContext, 'out'>;
  help: boolean;
}

/** Parses argv against the family's table. Throws usage errors (exit 2). */
export function parseArgv(spec: CliSpec, argv: string[]): ParsedArgv {
  const dashdash = argv.indexOf('--');
  const head = dashdash === -1 ? argv : argv.slice(0, dashdash);
  const tail = dashdash === -1 ? [] : argv.slice(dashdash + 1);
  const firstOpt = head.findIndex((t) => t.startsWith('-'));
  const leading = firstOpt === -1 ? head : head.slice(0, firstOpt);
  const found = findCommand(spec, leading);
  const cmd = found?.cmd ?? null;
  const rest = found ? head.slice(found.used) : head;
  const specs = [...(cmd?.options ?? []), ...GLOBAL_OPTIONS];
  const byName = new Map<string, OptionSpec>();
  for (const o of specs) {
    byName.set(o.name, o);
    if (o.short) byName.set(o.short, o);
  }
  const opts: OptionValues = {};
  const positionals: string[] = [];
  const where = cmd ? `${spec.bin} ${cmd.name}` : spec.bin;
  for (let i = 0; i < rest.length; i++) {
    const tok = rest[i]!;
    if (!tok.startsWith('-') || tok === '-') {
      positionals.push(tok);
      continue;
    }
    const isShort = !tok.startsWith('--');
    const body = isShort ? tok.slice(1) : tok.slice(2);
    const eq = body.indexOf('=');
    let name = eq === -1 ? body : body.slice(0, eq);
    let value: string | undefined = eq === -1 ? undefined : body.slice(eq + 1);
    let o = byName.get(name);
    let negated = false;
    if (!o && !isShort && name.startsWith('no-')) {
      const pos = byName.get(name.slice(3));
      if (pos?.type === 'boolean') {
        o = pos;
        negated = true;
        name = pos.name;
      }
    }
    if (!o) {
      throw usageError(`unknown option ${tok.split('=')[0]} for \`${where}\``, {
        hint: `see \`${where} --help\``,
      });
    }
    if (o.type === 'boolean') {
      // A switch takes no value: `--json=1` is refused rather than read one way or the other.
      if (value !== undefined) {
        throw usageError(`--${o.name} takes no value, got ${JSON.stringify(tok)}`, {
          hint: `write --${o.name} or --no-${o.name}`,
        });
      }
      opts[o.name] = !negated;
      continue;
    }
    if (value === undefined) {
      value = rest[i + 1];
      if (value === undefined || (value.startsWith('--') && value.length > 2)) {
        throw usageError(`--${o.name} needs a value${o.value ? ` (${o.value})` : ''}`, {
          hint: `see \`${where} --help\``,
        });
      }
      i++;
    }
    opts[o.name] = coerce(o, value, where);
  }
  for (const o of specs)
    if (opts[o.name] === undefined && o.default !== undefined) opts[o.name] = o.default;

  const help = opts.help === true;
  const args: Record<string, string | string[] | undefined> = {};
  if (cmd && !help) {
    const argSpecs = cmd.args ?? [];
    let p = 0;
    for (const a of argSpecs) {
      if (a.rest) {
        args[a.name] = [...positionals.slice(p), ...tail];
        p = positionals.length;
        if (!a.optional && (args[a.name] as string[]).length === 0) {
          throw usageError(`missing ${a.name}`, {
            hint: `usage: ${where} ${argSpecs.map(argUsage).join(' ')}`,
          });
        }
        continue;
      }
      const v = positionals[p++];
      if (v === undefined && !a.optional) {
        throw usageError(`missing argument <${a.name}>`, {
          hint: `usage: ${where} ${argSpecs.map(argUsage).join(' ')}`,
        });
      }
      args[a.name] = v;
    }
    if (p < positionals.length) {
      throw usageError(`unexpected argument ${JSON.stringify(positionals[p])} for \`${where}\``, {
        hint: `see \`${where} --help\``,
      });
    }
    if (tail.length && !argSpecs.some((a) => a.rest)) {
      throw usageError(`\`${where}\` takes no command after --`);
    }
  } else if (!cmd && positionals.length && !help) {
    const group = groupOf(spec, positionals);
    throw usageError(`unknown command ${JSON.stringify(positionals.join(' '))}`, {
      hint: `run \`${spec.bin}${group ? ` ${group}` : ''} --help\` for the list of commands`,
    });
  }
  return {
    cmd,
    help,
    ctx: {
      args,
      opts,
      json: opts.json === true,
      debug: opts.debug === true,
      repo: opts.repo as string | undefined,
      config: opts.config as string | undefined,
      command: cmd?.name ?? '',
    },
  };
}

/** Prints an error the way every command does: one or two lines, JSON on stdout in --json mode. */
export function reportError(e: unknown, out: { json: boolean; debug: boolean }): number {
  const err: WtpoolError = isWtpoolError(e)
    ? e
    : new WtpoolError(
        'ERR_INTERNAL',
        ExitCode.FAILURE,
        `internal error: ${e instanceof Error ? e.message : String(e)}`,
        { hint: 'run again with --debug for the stack trace, and report it' },
      );
  if (out.json) process.stdout.write(JSON.stringify({ error: err.toJSON() }, null, 2) + '\n');
  process.stderr.write(`error: ${redact(err.message)}\n`);
  if (err.hint) process.stderr.write(`hint: ${redact(err.hint)}\n`);
  if (out.debug && e instanceof Error && e.stack) process.stderr.write(redact(e.stack) + '\n');
  return err.exitCode;
}

/** Runs a command family. Returns the exit code; the bin sets process.exitCode. */
export async function runCli(spec: CliSpec, argv: string[]): Promise<number> {
  const rough = { json: argv.includes('--json'), debug: argv.includes('--debug') };
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write(`${spec.bin} ${VERSION}\n`);
    return ExitCode.OK;
  }
  try {
    const parsed = parseArgv(spec, argv);
    if (!parsed.cmd) {
      process.stdout.write(familyHelp(spec, parsed.help ? groupOf(spec, argv) : null));
      return parsed.help || argv.length === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    if (parsed.help) {
      process.stdout.write(commandHelp(spec, parsed.cmd));
      return ExitCode.OK;
    }
    const out = new Output(parsed.ctx.json);
    const code = await parsed.cmd.run({ ...parsed.ctx, out });
    return typeof code === 'number' ? code : ExitCode.OK;
  } catch (e) {
    return reportError(e, rough);
  }
}
