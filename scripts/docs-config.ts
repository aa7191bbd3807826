// `pnpm docs:config`: writes docs/config.md from the config schema.
import { writeFileSync } from 'node:fs';
import { renderConfigDocs } from '../packages/config/dist/index.js';

writeFileSync(new URL('../docs/config.md', import.meta.url), renderConfigDocs());
