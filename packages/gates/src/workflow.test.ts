/**
 * .github/workflows/integration.yml: it parses, the action-validator (SchemaStore's
 * github-workflow schema, compiled to WebAssembly) accepts it, it has the shape issue 7 asks
 * for, and every `pnpm <script>` it runs exists in the root package.json.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { validateWorkflow } from '@action-validator/core';
import { PROJECT_ROOT } from '@wtpool/testkit';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';

const file = path.join(PROJECT_ROOT, '.github/workflows/integration.yml');
const text = readFileSync(file, 'utf8');

interface Step {
  run?: string;
  uses?: string;
  with?: Record<string, unknown>;
}
interface Job {
  needs?: string[];
  if?: string;
  services?: Record<string, unknown>;
  env?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  on: Record<string, { branches?: string[] } | null>;
  permissions: Record<string, string>;
  concurrency: { group: string };
  jobs: Record<string, Job>;
}

describe('integration workflow', () => {
  const wf = YAML.parse(text) as Workflow;

  it('parses and passes the workflow schema validator', () => {
    expect(validateWorkflow(text).errors).toEqual([]);
  });

  it('the validator does reject a broken workflow', () => {
    const broken = text.replace('runs-on: ubuntu-latest', 'runs-on: 42\n    bogus-key: true');
    expect(validateWorkflow(broken).errors.length).toBeGreaterThan(0);
  });

  it('runs on push and pull request to integration and on merge_group, read-only, one at a time', () => {
    expect(wf.on.push?.branches).toEqual(['integration']);
    expect(wf.on.pull_request?.branches).toEqual(['integration']);
    expect('merge_group' in wf.on).toBe(true);
    expect(wf.permissions).toEqual({ contents: 'read' });
    expect(wf.concurrency.group).toBeTruthy();
  });

  it('installs the test servers before the gates, uses pnpm and node with caching', () => {
    const job = wf.jobs.gates!;
    // The testkit starts its own redis-server and PostgreSQL on free ports: no containers, no
    // DATABASE_URL/REDIS_URL that nothing reads.
    expect(job.services).toBeUndefined();
    expect(Object.keys(job.env ?? {})).toEqual(['CI']);
    const runs = job.steps.map((s) => s.run ?? '');
    const servers = runs.findIndex((r) => r.includes('bash scripts/ensure-test-services.sh'));
    expect(servers).toBeGreaterThanOrEqual(0);
    expect(runs.indexOf('pnpm gates ci')).toBeGreaterThan(servers);
    const uses = job.steps.map((s) => s.uses ?? '');
    expect(uses.some((u) => u.startsWith('pnpm/action-setup'))).toBe(true);
    const node = job.steps.find((s) => s.uses?.startsWith('actions/setup-node'));
    expect(node?.with?.cache).toBe('pnpm');
  });

  it('ends with one job that needs all the others (the check to require)', () => {
    const names = Object.keys(wf.jobs);
    const finals = names.filter((n) => {
      const needs = wf.jobs[n]!.needs ?? [];
      return names.every((other) => other === n || needs.includes(other));
    });
    expect(finals).toEqual(['required']);
    expect(wf.jobs.required!.if).toBe('always()');
  });

  it('every pnpm script and file it runs exists', () => {
    const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const runs = Object.values(wf.jobs).flatMap((j) => j.steps.map((s) => s.run ?? ''));
    const scripts = runs.flatMap((r) =>
      [...r.matchAll(/\bpnpm\s+(?:-s\s+)?(?:run\s+)?([a-z][\w:-]*)/g)].map((m) => m[1]!),
    );
    const builtins = new Set(['install', 'exec']);
    const wanted = scripts.filter((s) => !builtins.has(s));
    expect(wanted).toContain('gates');
    for (const s of wanted) expect(pkg.scripts, `pnpm ${s}`).toHaveProperty(s);
    for (const r of runs) {
      for (const m of r.matchAll(/\bbash\s+(\S+)/g)) {
        expect(() => readFileSync(path.join(PROJECT_ROOT, m[1]!))).not.toThrow();
      }
    }
  });
});
