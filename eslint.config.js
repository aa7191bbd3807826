import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const BARE_ERROR =
  'no bare Error in packages/*/src: throw a WtpoolError (usageError, configError, failure(code, …) …) with a code from ERROR_CODES; an internal invariant uses ERR_INTERNAL';

const FIXED_SLEEP =
  "no fixed sleep in a test: wait for the event with testkit's until(what, fn), or use jitter() for deliberate random timing";

export default tseslint.config(
  {
    ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', 'packages/worktree-pool/types/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // A test waits for an event by polling it (testkit's `until`), never by a fixed sleep: a
    // sleep long enough on a quiet machine is too short on a loaded one (docs/architecture.md).
    // Deliberately random timing in race tests is testkit's `jitter`.
    files: ['**/*.test.ts', '**/*.testutil.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='Promise'] CallExpression[callee.name='setTimeout']",
          message: FIXED_SLEEP,
        },
      ],
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'node:timers/promises', message: FIXED_SLEEP }] },
      ],
    },
  },
  {
    // One error model (docs/architecture.md, D170): library code throws WtpoolError with a code
    // from ERROR_CODES and an ExitCode. Tests and test helpers may use plain errors; so may
    // packages/testkit, which must not depend on the code it tests.
    files: ['packages/*/src/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.testutil.ts', 'packages/testkit/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'NewExpression[callee.name=/^(Error|TypeError|RangeError|SyntaxError)$/]',
          message: BARE_ERROR,
        },
        {
          selector: 'CallExpression[callee.name=/^(Error|TypeError|RangeError|SyntaxError)$/]',
          message: BARE_ERROR,
        },
      ],
    },
  },
  {
    // The pool's bin is CommonJS (bin/package.json): it compiles its bundle with a V8 code
    // cache, which ESM cannot use on Node 20 (D380). The published package's bins sit beside a
    // copy of it (D396).
    files: ['packages/pool/bin/**/*.js', 'packages/worktree-pool/bin/**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        __filename: 'readonly',
        Buffer: 'readonly',
        performance: 'readonly',
        globalThis: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
