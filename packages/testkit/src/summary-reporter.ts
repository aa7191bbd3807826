/**
 * A vitest reporter that ends the run with one plain line, `tests: N passed, N failed, N skipped`,
 * which CI systems that don't parse vitest's own summary can read.
 */
interface TestCaseLike {
  result(): { state: string };
}
interface TestModuleLike {
  state(): string;
  children: { allTests(): Iterable<TestCaseLike> };
}

export default class SummaryReporter {
  onTestRunEnd(
    modules: ReadonlyArray<TestModuleLike>,
    unhandledErrors: ReadonlyArray<unknown>,
  ): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    for (const m of modules) {
      // A file that failed to load has no tests but is a failure.
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) failed++;
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === 'passed') passed++;
        else if (s === 'failed') failed++;
        else skipped++;
      }
    }
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
