import { describe, expect, it } from 'vitest';
import { describeSpec } from './Requests';

describe('describeSpec', () => {
  it('names each bound asked, and nothing left out', () => {
    expect(describeSpec({ template: 'small', quota: { cpu: '2', pods: 0 }, ttl: '72h', apps: [{ name: 'web', image: 'nginx:1.27' }] })).toEqual([
      'template small',
      'CPU 2',
      '0 pods',
      'kept for 72h',
      '1 app',
    ]);
    expect(describeSpec({})).toEqual([]);
  });
});
