import type { AppliedVersions, DesiredMessage } from '../core/desired.js';
import type { HeartbeatFields } from '../protocol/outbound.js';

/** The `logs` and `log-level` commands (issue 13 item 5), answered from the agent's log ring. */
export interface LogCommands {
  logs(args: Record<string, unknown>): Promise<unknown>;
  logLevel(args: Record<string, unknown>): unknown;
}

/**
 * The agent's side of the link: what the link hands on and asks. Its own file so that the link's
 * parts (commands, heartbeat, intake) and the agent can all name it without importing link.ts.
 */
export interface LinkHost {
  /**
   * A decoded assignment or override, in arrival order (PROTOCOL §3–§5). The host decides and
   * stores it (desired/); a refusal comes back through `m.reject`. Resolves when it is handled.
   */
  offerDesired(m: DesiredMessage): Promise<unknown>;
  /** Versions in force, as in the status document. */
  applied(): AppliedVersions;
  /** Fields of the heartbeat other than ts, deviceId, uptimeSec, backlog (PROTOCOL §8). */
  heartbeatFields(): Promise<HeartbeatFields>;
  /** Commands (PROTOCOL §7). Each returns the `result` object or throws an Error whose message becomes `error`. */
  playNow(campaignId: string): Promise<unknown>;
  screenshot(): Promise<Buffer>;
  restartPlayer(): Promise<void>;
  report(date: string): Promise<unknown>;
  status(): Promise<Record<string, unknown>>;
  /** Absent in agents built without them (tests, the simulator): the commands answer so. */
  readonly logCommands?: LogCommands | undefined;
  /** The `update` command (issue 13): checks its args and starts the update; the result says it was accepted. */
  update(args: Record<string, unknown>): Promise<unknown>;
}
