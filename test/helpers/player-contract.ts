import type { Test } from 'tap';
import type { Outcome } from '../../agent/core/types.js';
import type { Clip } from '../../agent/core/clip.js';
import type { Player } from '../../agent/player/player.js';
import { spotRecord } from './mpv-harness.js';

/**
 * One Player, seen only through the Player interface, with the means to let its time pass.
 * The contract below runs against every implementation (MQTT.js runs one abstract store suite
 * against every store the same way): `simulate` can only be trusted if SimulatedPlayer does what
 * MpvPlayer does.
 */
export interface ContractSubject {
  player: Player;
  /** Reasons passed to events.onRestarted, in order. */
  restarts: string[];
  /** A playable clip of `seconds`; a different `variant` is a different file. durationMs is set. */
  clip(seconds: number, variant: number): Promise<Clip>;
  /** A clip the player cannot play (a file that is not a video). */
  brokenClip(): Promise<Clip>;
  /** The clock the player stamps onStarted/onEnded with. */
  now(): number;
  /** Lets the player's time pass until `cond` holds: real time for mpv, virtual time for the simulator. */
  until(what: string, cond: () => boolean, boundMs?: number): Promise<void>;
}


const loopUrl = (p: Player): string | undefined => {
  const s = p.state();
  return s.state === 'playing' && s.campaignId === undefined ? s.url : undefined;
};

/** The loop clips seen on screen, one entry per clip change (a cut between clips shows as no clip, skipped). */
function urlWatch(p: Player): { seen: string[]; sample: () => void } {
  const seen: string[] = [];
  let last: string | undefined;
  const sample = (): void => {
    const u = loopUrl(p);
    if (u !== undefined && u !== last) seen.push(u);
    last = u;
  };
  return { seen, sample };
}

const spot = (playId: string, clip: Clip): { playId: string; campaignId: string; clip: Clip } => ({ playId, campaignId: `c-${playId}`, clip });

export function playerContract(t: Test, name: string, make: (t: Test) => Promise<ContractSubject>): void {
  void t.test(`${name}: before start it is down`, async (t) => {
    const s = await make(t);
    const a = await s.clip(1, 0);
    t.equal(s.player.state().state, 'down');
    t.notOk(s.player.busy());
    await t.rejects(s.player.playSpot(spot('p0', a), spotRecord().handlers), /player is down/, 'playSpot rejects');
    await t.rejects(s.player.screenshot(), /player is down/, 'no frame from a player that is down');
  });

  void t.test(`${name}: an empty loop is idle (black); the loop plays its clips in order, repeating`, async (t) => {
    const s = await make(t);
    const [a, b] = [await s.clip(1, 0), await s.clip(1, 1)];
    await s.player.start();
    t.equal(s.player.state().state, 'idle', 'no loop yet: idle');
    await t.rejects(s.player.screenshot(), /nothing is playing/, 'no frame from a black screen');
    s.player.setLoop([a, b]);
    const w = urlWatch(s.player);
    await s.until('five loop clips on screen', () => (w.sample(), w.seen.length >= 5), 30_000);
    t.same(w.seen.slice(0, 5), [a.path, b.path, a.path, b.path, a.path], 'in order, repeating');
    t.notOk(s.player.busy(), 'the loop is not a spot');
  });

  void t.test(`${name}: a spot: the loop gives way at once, the spot plays to its end, the loop resumes with the next clip`, async (t) => {
    const s = await make(t);
    const [a, b, sp] = [await s.clip(3, 0), await s.clip(3, 1), await s.clip(2, 2)];
    await s.player.start();
    s.player.setLoop([a, b]);
    await s.until('a loop clip on screen', () => loopUrl(s.player) !== undefined);
    const gaveWay = loopUrl(s.player);
    const after = gaveWay === a.path ? b.path : a.path;
    const r = spotRecord();
    const requestedAt = s.now();
    await s.player.playSpot(spot('p1', sp), r.handlers);
    t.ok(s.player.busy(), 'busy while the spot plays');
    t.match(s.player.state(), { state: 'playing', campaignId: 'c-p1', url: sp.path }, 'the spot is on screen, not the loop clip');
    await t.rejects(s.player.playSpot(spot('p2', sp), spotRecord().handlers), /a spot is playing \(p1\)/, 'one spot at a time');
    await s.until('the spot ended', () => r.endedCalls > 0, 20_000);
    t.equal(r.outcome, 'completed' satisfies Outcome);
    t.equal(r.detail, undefined, 'a completed spot carries no detail');
    t.ok(r.startedAt !== undefined && r.startedAt >= requestedAt, 'onStarted, stamped after the request');
    t.ok(r.endedAt !== undefined && r.startedAt !== undefined && r.endedAt >= r.startedAt, 'onEnded after onStarted');
    t.notOk(s.player.busy(), 'not busy once ended');
    await s.until('the loop back', () => loopUrl(s.player) !== undefined);
    t.equal(loopUrl(s.player), after, 'the loop resumes with the clip after the one that gave way');
    t.equal(r.endedCalls, 1, 'onEnded exactly once (the loop came back since)');
  });

  void t.test(`${name}: a spot with an empty loop plays, then the screen is black`, async (t) => {
    const s = await make(t);
    const sp = await s.clip(1, 2);
    await s.player.start();
    const r = spotRecord();
    await s.player.playSpot(spot('p1', sp), r.handlers);
    await s.until('the spot ended', () => r.endedCalls > 0, 20_000);
    t.equal(r.outcome, 'completed');
    t.equal(s.player.state().state, 'idle', 'idle after the spot');
  });

  void t.test(`${name}: setLoop during a spot does not cut it and the new loop follows; an emptied loop plays out its clip`, async (t) => {
    const s = await make(t);
    const [a, b, sp] = [await s.clip(3, 0), await s.clip(1, 1), await s.clip(2, 2)];
    await s.player.start();
    s.player.setLoop([a]);
    await s.until('loop on screen', () => loopUrl(s.player) === a.path);
    const r = spotRecord();
    await s.player.playSpot(spot('p1', sp), r.handlers);
    await s.until('the spot started', () => r.startedAt !== undefined, 20_000);
    s.player.setLoop([b]);
    t.match(s.player.state(), { state: 'playing', url: sp.path }, 'the spot stays on screen');
    await s.until('the spot ended', () => r.endedCalls > 0, 20_000);
    t.equal(r.outcome, 'completed', 'not cut by the new loop');
    await s.until('the new loop on screen', () => loopUrl(s.player) !== undefined);
    t.equal(loopUrl(s.player), b.path, 'the new loop follows the spot');

    s.player.setLoop([a]);
    await s.until('a on screen again', () => loopUrl(s.player) === a.path, 20_000);
    s.player.setLoop([]);
    t.equal(loopUrl(s.player), a.path, 'emptying the loop does not cut the clip on screen');
    await s.until('idle once the clip played out', () => s.player.state().state === 'idle', 20_000);
    t.pass('then black');
  });

  void t.test(`${name}: a spot started from the previous spot's onEnded plays (back to back)`, async (t) => {
    const s = await make(t);
    const [a, sp] = [await s.clip(3, 0), await s.clip(1, 2)];
    await s.player.start();
    s.player.setLoop([a]);
    const second = spotRecord();
    const refused: unknown[] = [];
    const first = spotRecord();
    const onEnded = first.handlers.onEnded;
    first.handlers.onEnded = (at, outcome, detail) => {
      onEnded(at, outcome, detail);
      s.player.playSpot(spot('p2', sp), second.handlers).catch((e: unknown) => refused.push(e));
    };
    await s.player.playSpot(spot('p1', sp), first.handlers);
    await s.until('the second spot ended', () => second.endedCalls > 0, 20_000);
    t.same(refused, [], 'accepted as soon as the first ended');
    t.same([first.outcome, second.outcome], ['completed', 'completed']);
    t.ok(second.startedAt! >= first.endedAt!, 'the second started after the first ended');
  });

  void t.test(`${name}: a spot that cannot play fails without starting; the loop goes on`, async (t) => {
    const s = await make(t);
    const [a, bad] = [await s.clip(3, 0), await s.brokenClip()];
    await s.player.start();
    s.player.setLoop([a]);
    await s.until('loop on screen', () => loopUrl(s.player) === a.path);
    const r = spotRecord();
    await s.player.playSpot(spot('bad', bad), r.handlers);
    await s.until('the spot ended', () => r.endedCalls > 0, 20_000);
    t.equal(r.outcome, 'failed');
    t.equal(r.startedAt, undefined, 'never started');
    t.ok(typeof r.detail === 'string' && r.detail.length > 0, `says why: ${r.detail}`);
    t.notOk(s.player.busy());
    await s.until('the loop back', () => loopUrl(s.player) === a.path, 20_000);
    t.equal(r.endedCalls, 1, 'onEnded exactly once');
  });

  void t.test(`${name}: restart(reason) mid-spot: the spot is interrupted with the reason, onRestarted once, the screen comes back`, async (t) => {
    const s = await make(t);
    const [a, b, sp] = [await s.clip(3, 0), await s.clip(3, 1), await s.clip(4, 2)];
    await s.player.start();
    s.player.setLoop([a, b]);
    await s.until('loop on screen', () => loopUrl(s.player) !== undefined);
    const r = spotRecord();
    await s.player.playSpot(spot('p1', sp), r.handlers);
    await s.until('the spot started', () => r.startedAt !== undefined, 20_000);
    await s.player.restart('asked by the NOC');
    t.equal(r.endedCalls, 1, 'the spot ended by the time restart resolved');
    t.equal(r.outcome, 'interrupted');
    t.equal(r.detail, 'asked by the NOC', 'with the reason');
    t.same(s.restarts, ['asked by the NOC'], 'onRestarted once, with the reason');
    t.notOk(s.player.busy());
    await s.until('the loop back', () => loopUrl(s.player) !== undefined, 20_000);
    const again = spotRecord();
    await s.player.playSpot(spot('p2', await s.clip(1, 2)), again.handlers);
    await s.until('a new spot ended', () => again.endedCalls > 0, 20_000);
    t.equal(again.outcome, 'completed', 'a spot plays after the restart');
    t.equal(r.endedCalls, 1, 'the interrupted spot ended once');
  });

  void t.test(`${name}: stop() mid-spot ends it once as interrupted; a stopped player refuses spots and restarts`, async (t) => {
    const s = await make(t);
    const sp = await s.clip(4, 2);
    await s.player.start();
    const r = spotRecord();
    await s.player.playSpot(spot('p1', sp), r.handlers);
    await s.until('the spot started', () => r.startedAt !== undefined, 20_000);
    await s.player.stop();
    t.equal(r.endedCalls, 1, 'ended by the time stop resolved');
    t.equal(r.outcome, 'interrupted');
    t.equal(r.detail, 'player stopped');
    t.equal(s.player.state().state, 'down');
    t.notOk(s.player.busy());
    await t.rejects(s.player.playSpot(spot('p2', sp), spotRecord().handlers), /player is down/);
    await t.rejects(s.player.restart('after stop'), /player is stopped/);
    t.same(s.restarts, [], 'stopping is not a restart');
  });
}
