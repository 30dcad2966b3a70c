import { describe, expect, it } from 'vitest';
import { approvalWarnings, changesBounds, describeChanges, mergePatch } from './changes';

describe('mergePatch', () => {
  it('holds only what changed: objects key by key, arrays whole, removals as null', () => {
    const before = { description: 'a', quota: { cpu: '2', memory: '4Gi' }, apps: [{ name: 'web', image: 'nginx:1' }], ttl: '8h' };
    const after = { description: 'a', quota: { cpu: '4', memory: '4Gi' }, apps: [{ name: 'web', image: 'nginx:2' }] };
    expect(mergePatch(before, after)).toEqual({ quota: { cpu: '4' }, apps: [{ name: 'web', image: 'nginx:2' }], ttl: null });
  });

  it('is empty when nothing changed', () => {
    expect(mergePatch({ quota: { cpu: '2' } }, { quota: { cpu: '2' } })).toEqual({});
  });
});

describe('changesBounds', () => {
  it('is true for quota, limits, network, pod security, TTL and template only', () => {
    expect(changesBounds({ quota: { pods: 7 } })).toBe(true);
    expect(changesBounds({ ttl: '24h' })).toBe(true);
    expect(changesBounds({ apps: [], members: [], description: 'x' })).toBe(false);
  });
});

describe('describeChanges', () => {
  it('says each change in words: settings from → to, apps and members by name', () => {
    const before = {
      quota: { cpu: '2', pods: 10 },
      apps: [{ name: 'web', image: 'nginx:1' }, { name: 'old', image: 'busybox' }],
      members: [{ email: 'a@example.com', role: 'owner' as const }],
    };
    const after = {
      quota: { cpu: '4', pods: 10 },
      apps: [{ name: 'web', image: 'nginx:2' }, { name: 'api', image: 'api:1' }],
      members: [
        { email: 'a@example.com', role: 'owner' as const },
        { email: 'b@example.com', role: 'viewer' as const },
      ],
    };
    expect(describeChanges(before, after)).toEqual([
      'CPU quota: 2 → 4',
      'App web: image nginx:1 → nginx:2',
      'App api added',
      'App old removed',
      'Member b@example.com added as viewer',
    ]);
  });

  it('is empty for the same spec', () => {
    expect(describeChanges({ ttl: '8h' }, { ttl: '8h' })).toEqual([]);
  });
});

describe('approvalWarnings', () => {
  it('keeps the warnings that say an admin must approve or will refuse', () => {
    expect(approvalWarnings(["Needs an admin's approval: ttl over", 'Pods run as non-root', 'Will be refused: name'])).toEqual([
      "Needs an admin's approval: ttl over",
      'Will be refused: name',
    ]);
  });
});
