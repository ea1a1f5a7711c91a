import path from 'node:path';
import type { Config } from '../config/config.js';

// Files in the data directory that more than one command opens: `run` writes them, `plan` and
// `doctor` read them, and all three must agree on the name.

export const storeFileOf = (config: Config): string => path.join(config.dataDir, 'agent.db');
