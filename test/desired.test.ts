import t from 'tap';
import type { Assignment, Campaign, MediaRef, Override } from '../agent/core/types.js';
import { effectiveState, nextNotAfter } from '../agent/schedule/desired.js';
import { appliedVersions, type DesiredDoc, type DesiredState } from '../agent/core/desired.js';

const media = (name: string): MediaRef => ({ url: `file:///${name}.mp4`, sha256: 'e'.repeat(64) });
const camp = (id: string, timesPerDay: number): Campaign => ({ id, media: media(id), timesPerDay });
const asg = (source: string, version: number, doc: Omit<Assignment, 'version'> | null): DesiredDoc<Assignment> => ({
  source,
  version,
  doc: doc && { version, ...doc },
  appliedAt: 1,
});
const ovr = (source: string, version: number, doc: Omit<Override, 'version'> | null): DesiredDoc<Override> => ({
  source,
  version,
  doc: doc && { version, ...doc },
  appliedAt: 1,
});

t.test('device over group, earlier group over later, union otherwise', async (t) => {
  const d: DesiredState = {
    assignments: [
      asg('group/late', 4, { campaigns: [camp('shared', 3), camp('late-only', 1), camp('both-groups', 9)] }),
      asg('device', 7, { campaigns: [camp('shared', 10), camp('dev-only', 2)] }),
      asg('group/early', 2, { campaigns: [camp('both-groups', 5), camp('shared', 99)] }),
      asg('group/not-mine', 1, { campaigns: [camp('foreign', 1)] }),
    ],
    overrides: [],
  };
  const e = effectiveState(d, ['early', 'late']);
  t.same(
    e.campaigns.map((c) => [c.id, c.timesPerDay]),
    [
      ['shared', 10],
      ['dev-only', 2],
      ['both-groups', 5],
      ['late-only', 1],
    ],
  );
  t.same(appliedVersions(d, ['early', 'late']), { device: 7, groups: { early: 2, late: 4 }, overrides: { groups: {} } }, 'a group not in the config is not in force');
  t.same(e.overrides, []);
  t.same(e.loop, []);
});

t.test('no device assignment: applied has no device, groups in config order', async (t) => {
  const d: DesiredState = {
    assignments: [asg('group/b', 3, { campaigns: [camp('x', 1)] }), asg('group/a', 5, { campaigns: [camp('x', 2)] })],
    overrides: [],
  };
  const e = effectiveState(d, ['b', 'a']);
  t.same(appliedVersions(d, ['b', 'a']), { groups: { b: 3, a: 5 }, overrides: { groups: {} } });
  t.same(Object.keys(appliedVersions(d, ['b', 'a']).groups), ['b', 'a']);
  t.same(e.campaigns.map((c) => c.timesPerDay), [1], 'group b comes first in config order');
  t.same(effectiveState(d, ['a', 'b']).campaigns.map((c) => c.timesPerDay), [2]);
  t.same(effectiveState({ assignments: [], overrides: [] }, ['a']), { campaigns: [], loop: [], overrides: [] });
  t.same(appliedVersions({ assignments: [], overrides: [] }, ['a']), { groups: {}, overrides: { groups: {} } });
});

t.test('loop: device first, else the first group (config order) that has one', async (t) => {
  const d: DesiredState = {
    assignments: [
      asg('group/a', 1, { campaigns: [] }),
      asg('group/b', 1, { campaigns: [], loop: [media('b-loop')] }),
      asg('group/c', 1, { campaigns: [], loop: [media('c-loop')] }),
    ],
    overrides: [],
  };
  t.same(effectiveState(d, ['a', 'b', 'c']).loop, [media('b-loop')]);
  t.same(effectiveState(d, ['c', 'b']).loop, [media('c-loop')]);
  const withDevice: DesiredState = { ...d, assignments: [...d.assignments, asg('device', 2, { campaigns: [], loop: [media('dev-loop')] })] };
  t.same(effectiveState(withDevice, ['a', 'b', 'c']).loop, [media('dev-loop')]);
  const emptyDevice: DesiredState = { ...d, assignments: [...d.assignments, asg('device', 2, { campaigns: [], loop: [] })] };
  t.same(effectiveState(emptyDevice, ['b']).loop, [media('b-loop')], 'an empty device loop does not hide the group loop');
});

t.test('overrides: device layer first, groups in order, cleared skipped, expiresAt parsed', async (t) => {
  const d: DesiredState = {
    assignments: [],
    overrides: [
      ovr('group/b', 2, { campaigns: { x: { timesPerDay: 4 } } }),
      ovr('group/a', 1, { campaigns: { x: { timesPerDay: 3 } }, expiresAt: '2024-09-01T00:00:00+07:00' }),
      ovr('device', 6, null),
      ovr('group/ignored', 9, { campaigns: { x: { timesPerDay: 100 } } }),
    ],
  };
  const e = effectiveState(d, ['a', 'b']);
  t.same(e.overrides, [
    { source: 'group/a', campaigns: { x: { timesPerDay: 3 } }, expiresAt: Date.parse('2024-08-31T17:00:00Z') },
    { source: 'group/b', campaigns: { x: { timesPerDay: 4 } } },
  ]);
  const withDevice = effectiveState({ ...d, overrides: [...d.overrides.filter((o) => o.source !== 'device'), ovr('device', 7, { campaigns: { x: { windows: ['08:00-09:00'] } } })] }, ['a', 'b']);
  t.same(withDevice.overrides.map((o) => o.source), ['device', 'group/a', 'group/b']);
});

t.test('a cleared document contributes nothing and is not listed as applied', async (t) => {
  const d: DesiredState = { assignments: [asg('device', 3, null), asg('group/a', 2, { campaigns: [camp('y', 1)] })], overrides: [ovr('device', 4, null), ovr('group/a', 5, { campaigns: {} })] };
  const e = effectiveState(d, ['a']);
  t.same(e.campaigns.map((c) => c.id), ['y']);
  t.same(appliedVersions(d, ['a']), { groups: { a: 2 }, overrides: { groups: { a: 5 } } });
});

t.test('applied: the status document\'s bytes (device before groups, overrides last)', async (t) => {
  const d: DesiredState = {
    assignments: [asg('group/all', 3, { campaigns: [] }), asg('device', 7, { campaigns: [] })],
    overrides: [ovr('group/all', 2, { campaigns: {} }), ovr('device', 1, { campaigns: {} })],
  };
  t.equal(JSON.stringify(appliedVersions(d, ['all'])), '{"device":7,"groups":{"all":3},"overrides":{"device":1,"groups":{"all":2}}}');
});

t.test('notAfter (issue 10 item 4): an assignment past it is no longer in force; the next one is when to re-plan', async (t) => {
  const now = Date.parse('2024-08-15T12:00:00Z');
  const state: DesiredState = {
    assignments: [
      asg('device', 3, { campaigns: [camp('d1', 5)], notAfter: '2024-08-15T11:59:59Z' }),
      asg('group/all', 2, { campaigns: [camp('g1', 5)], notAfter: '2024-08-15T13:00:00+00:00' }),
      asg('group/lobby', 1, { campaigns: [camp('l1', 5)] }),
    ],
    overrides: [],
  };
  t.same(effectiveState(state, ['all', 'lobby'], now).campaigns.map((c) => c.id), ['g1', 'l1'], 'the ended device assignment is left out');
  t.same(effectiveState(state, ['all', 'lobby'], Date.parse('2024-08-15T13:00:00Z')).campaigns.map((c) => c.id), ['l1'], 'at its notAfter the group one ends too');
  t.same(effectiveState(state, ['all', 'lobby']).campaigns.map((c) => c.id), ['d1', 'g1', 'l1'], 'without a time, every document held counts (plan, simulate)');
  t.equal(nextNotAfter(state, now), Date.parse('2024-08-15T13:00:00Z'));
  t.equal(nextNotAfter(state, Date.parse('2024-08-15T13:00:00Z')), undefined);
});
