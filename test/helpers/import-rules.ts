// What may import what (docs/architecture.md), as data the lead adjusts: the rules, and the known
// exceptions the reshape of issue 9 removes. import-scan.ts reads a tree and applies them;
// test/import-rules.test.ts runs them over the repository and over test/fixtures/import-rules
// (a tiny tree that breaks every rule once).
import type { KnownException, Pattern, Rule } from './import-scan.js';

/** The I/O a pure module must not reach: files, sockets, processes, the database, the broker, timers of the wall. */
export const IO_MODULES: Pattern[] = [
  'node:fs', 'node:net', 'node:dgram', 'node:tls', 'node:http', 'node:https', 'node:http2', 'node:dns',
  'node:child_process', 'node:worker_threads', 'node:cluster', 'node:readline', 'node:process', 'node:os',
  'node:timers', 'node:inspector', 'node:v8', 'node:vm',
  'sqlite3', 'mqtt', 'node-schedule', 'systeminformation', 'pino',
];

/** Every `process` member that is the process's state or a side effect (pid, hrtime and the like are not). */
export const PROCESS_MEMBERS = [
  'argv', 'argv0', 'execArgv', 'env', 'exit', 'exitCode', 'abort', 'kill', 'chdir', 'cwd', 'umask',
  'on', 'once', 'off', 'addListener', 'removeListener', 'removeAllListeners', 'prependListener',
  'prependOnceListener', 'emit', 'getuid', 'geteuid', 'getgid', 'getegid', 'setuid', 'setgid',
  'stdin', 'stdout', 'stderr', 'send', 'disconnect',
];

/** The pure parts (issue 9's target layout: a folder not there yet simply matches nothing). */
const PURE_PARTS = ['agent/protocol/**', 'agent/schedule/**'];

export const RULES: Rule[] = [
  {
    kind: 'forbid', id: 'pure-no-io', reach: true,
    why: 'the planner and the wire format are pure functions: no file, socket, process, database, broker, logger or clock, not even through what they import',
    from: PURE_PARTS, to: [...IO_MODULES, 'agent/core/clock.ts', 'agent/core/log.ts', 'agent/fsx/**'],
  },
  {
    kind: 'forbid', id: 'pure-no-config',
    why: 'the planner and the wire format take values, not the config (an error class is no reason)',
    from: PURE_PARTS, to: ['agent/config/**'],
  },
  {
    kind: 'only', id: 'protocol-leaf',
    why: 'the contract is a part of its own: it names topics and shapes, and imports only core types and zod',
    from: ['agent/protocol/**'], allow: ['agent/core/**', 'zod', 'node:crypto', 'node:buffer'],
  },
  {
    kind: 'only', id: 'schedule-pure',
    why: 'the planner is a pure function of (campaigns, overrides, counts, now, timezone)',
    from: ['agent/schedule/**'], allow: ['agent/core/**', 'agent/protocol/**'],
  },
  {
    kind: 'only', id: 'core-bottom',
    why: 'core/ holds the domain types, the clock and the logger that every part uses; it uses none of the parts',
    from: ['agent/core/**'], allow: ['agent/protocol/**', '!agent/**', '!scripts/**', '!fleet/**', '!test/**'],
  },
  {
    kind: 'forbid', id: 'player-driver',
    why: 'the player drives mpv and reports; the engine records what it reports',
    from: ['agent/player/**'],
    to: ['agent/store/**', 'agent/link/**', 'agent/engine/**', 'agent/media/**', 'agent/schedule/**', 'agent/desired/**', 'agent/events/**', 'agent/config/**'],
  },
  {
    kind: 'forbid', id: 'media-no-player',
    why: 'media fetches and verifies clips; the Clip type is the domain\'s, not the player\'s',
    from: ['agent/media/**'], to: ['agent/player/**', 'agent/engine/**', 'agent/link/**'],
  },
  {
    kind: 'forbid', id: 'store-bottom',
    why: 'the store persists what the parts above it hand it; it calls none of them',
    from: ['agent/store/**'],
    to: ['agent/link/**', 'agent/engine/**', 'agent/player/**', 'agent/media/**', 'agent/desired/**', 'agent/events/**', 'agent/schedule/**', 'agent/health/**', 'agent/cli/**', 'agent/sim/**'],
  },
  {
    kind: 'forbid', id: 'concrete-store',
    why: 'parts see the Store interface; only the commands that open a store, the simulator and the store itself name SqliteStore',
    from: ['agent/**'], to: ['agent/store/sqlite-store.ts'],
    unless: ['agent/store/**', 'agent/cli/**', 'agent/sim/**'],
  },
  {
    kind: 'forbid', id: 'link-no-policy',
    why: 'the link routes decoded messages and publishes; desired/ decides, the engine plays',
    from: ['agent/link/**'], to: ['agent/desired/**', 'agent/engine/**', 'agent/player/**', 'agent/schedule/**'],
  },
  {
    kind: 'forbid', id: 'desired-no-transport',
    why: 'desired/ decides and stores what the link hands it; it neither fetches nor plays',
    from: ['agent/desired/**'], to: ['agent/link/**', 'agent/engine/**', 'agent/player/**', 'agent/media/**', 'mqtt'],
  },
  {
    kind: 'only', id: 'events-low',
    why: 'the event recorder sits just above the store: every part may raise events, so it may use none of them',
    from: ['agent/events/**'], allow: ['agent/core/**', 'agent/protocol/**', 'agent/store/store.ts', 'agent/store/recovery.ts'],
  },
  {
    kind: 'forbid', id: 'agent-self-contained',
    why: 'the agent ships alone: it never reaches into the operator tools, the fleet service or the tests',
    from: ['agent/**'], to: ['fleet/**', 'scripts/**', 'test/**'],
  },
  {
    kind: 'only', id: 'fleet-protocol-only',
    why: 'the fleet service speaks to screens through the contract alone',
    from: ['fleet/**'], allow: ['agent/protocol/**', 'fleet/**', '!agent/**', '!scripts/**', '!test/**'],
    // fleet/sim/ is simulate-fleet, a load tool whose virtual screens ARE the agent's engine, store
    // and link (a rewrite of the protocol would test nothing); fleet-sim-apart keeps it out of serve.
    unless: ['fleet/sim/**'],
  },
  {
    kind: 'forbid', id: 'fleet-sim-apart',
    why: 'fleet/sim/ (simulate-fleet) runs the agent\'s own parts as virtual screens; serve never loads it, main.ts imports it lazily for that subcommand only',
    from: ['fleet/**'], to: ['fleet/sim/**'], unless: ['fleet/sim/**', 'fleet/main.ts'],
  },
  {
    kind: 'process', id: 'process-main-only',
    why: 'only agent/main.ts touches the process (argv, env, signals, exit codes, stdio, the uid)',
    scope: ['agent/**'], allowIn: ['agent/main.ts'], members: PROCESS_MEMBERS,
  },
  {
    kind: 'cycle', id: 'folder-cycle', level: 'folder',
    why: 'the parts form a graph without circles, so each can be read and tested from the bottom up',
    scope: ['agent/**'], root: 'agent',
  },
  {
    kind: 'cycle', id: 'file-cycle', level: 'file',
    why: 'no module needs itself to load (a circle is also how a late-bound variable creeps in)',
    scope: ['agent/**', 'scripts/**', 'fleet/**'],
  },
  {
    kind: 'size', id: 'size-reason', maxLines: 300, marker: '// size:',
    why: 'files hold one thing; a file over 300 lines says why at its top',
    scope: ['agent/**'],
  },
];

/**
 * What main breaks as the reshape of issue 9 begins (9d72cfd), each with what removes it. Remove an
 * entry when that lands: the test fails on an entry that matches nothing, so the list only shrinks.
 */
export const KNOWN_EXCEPTIONS: KnownException[] = [];
