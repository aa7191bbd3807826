/**
 * The certificates of NODE_EXTRA_CA_CERTS, for a process the `pool` launcher started without
 * them (packages/pool/bin/pool, docs/decisions.md D386). Node 20 parses that file when it starts,
 * before any script: ~37 ms with a system bundle, on every command. The launcher moves the
 * variable aside for Node's start; the bin puts it back for children and leaves the file's name
 * under `Symbol.for('wtpool.extra-ca-certs')`.
 *
 * `trustExtraCaCerts()` then gives this process what Node would have: a TLS context made without
 * a `ca` option trusts Node's root certificates and those of the file; one made with `ca` trusts
 * only its own (Node's rule). Called before the first TLS connection (Redis, PostgreSQL); a
 * no-op in a process Node started with the variable, or without it. A file that cannot be read
 * is a warning, as Node's own ("Ignoring extra certs from …").
 */
import { readFileSync } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';

const MARK = Symbol.for('wtpool.extra-ca-certs');
const PEM = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

let trusted: Promise<void> | undefined;

/** The file whose certificates Node did not load at start, or null. */
export function movedExtraCaCerts(): string | null {
  const file = (globalThis as Record<symbol, unknown>)[MARK];
  return typeof file === 'string' && file !== '' ? file : null;
}

/** Makes this process trust the moved NODE_EXTRA_CA_CERTS as Node would have (once). */
export function trustExtraCaCerts(): Promise<void> {
  return (trusted ??= trust());
}

async function trust(): Promise<void> {
  const file = movedExtraCaCerts();
  if (file === null) return;
  let pems: string[];
  try {
    pems = readFileSync(file, 'latin1').match(PEM) ?? [];
  } catch (e) {
    process.emitWarning(
      `Ignoring extra certs from \`${file}\`, load failed: ${(e as Error).message}`,
    );
    return;
  }
  if (pems.length === 0) return;
  // The module object itself (its `default`): tls.connect calls tls.createSecureContext.
  const tls = (await import('node:tls')).default;
  const create = tls.createSecureContext;
  tls.createSecureContext = (options?: SecureContextOptions) => {
    const made = create(options);
    if (options?.ca === undefined) {
      const ctx = (made as unknown as { context: { addCACert(pem: string): void } }).context;
      for (const pem of pems) ctx.addCACert(pem);
    }
    return made;
  };
}
