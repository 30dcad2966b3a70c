import { describe, expect, it } from 'vitest';
import { buildSpec, emptyForm, fieldId, formFields, mapFieldErrors, newApp, newMember, parentPath, parseEnv, wholeNumber } from './form';

describe('buildSpec', () => {
  it('sends only the name and template when nothing else is filled in', () => {
    const form = { ...emptyForm('small'), name: ' team-a-dev ' };
    expect(buildSpec(form)).toEqual({ name: 'team-a-dev', template: 'small' });
  });

  it('joins quantities with their units and keeps pods a number', () => {
    const form = {
      ...emptyForm(),
      name: 'team-a',
      quotaCpu: { amount: '2', unit: '' },
      quotaMemory: { amount: '4', unit: 'Gi' },
      quotaPods: '20',
      defaultCpu: { amount: '250', unit: 'm' },
      isolation: 'isolated' as const,
      podSecurity: 'baseline' as const,
      ttl: '72h',
    };
    expect(buildSpec(form)).toEqual({
      name: 'team-a',
      quota: { cpu: '2', memory: '4Gi', pods: 20 },
      limits: { defaultCpu: '250m' },
      network: { isolation: 'isolated' },
      podSecurity: 'baseline',
      ttl: '72h',
    });
  });

  it('builds apps and members in order', () => {
    const app = { ...newApp(), name: 'web', image: 'nginx:1.27', replicas: '2', port: '8080', env: 'MODE=dev\n\nA=b=c', cpu: { amount: '100', unit: 'm' }, memory: { amount: '128', unit: 'Mi' } };
    const member = { ...newMember(), email: 'bob@example.com', role: 'viewer' as const };
    const spec = buildSpec({ ...emptyForm(), name: 'x-env', apps: [app], members: [member] });
    expect(spec.apps).toEqual([
      { name: 'web', image: 'nginx:1.27', replicas: 2, port: 8080, env: { MODE: 'dev', A: 'b=c' }, resources: { cpu: '100m', memory: '128Mi' }, expose: 'cluster' },
    ]);
    expect(spec.members).toEqual([{ email: 'bob@example.com', role: 'viewer' }]);
  });
});

describe('parseEnv', () => {
  it('is undefined for blank text', () => {
    expect(parseEnv('  \n')).toBeUndefined();
  });
});

describe('field error mapping', () => {
  const form = { ...emptyForm(), apps: [newApp(), newApp()], members: [newMember()] };
  const known = formFields(form);

  it('turns a server path into the input id', () => {
    expect(fieldId('apps[1].resources.cpu')).toBe('field-apps-1-resources-cpu');
    expect(fieldId('quota.cpu')).toBe('field-quota-cpu');
    expect(fieldId('')).toBe('field-form');
  });

  it('walks up a path', () => {
    expect(parentPath('apps[1].resources.cpu')).toBe('apps[1].resources');
    expect(parentPath('apps[1]')).toBe('apps');
    expect(parentPath('apps')).toBe('');
  });

  it('puts each error on its own input, or the nearest one that exists', () => {
    const mapped = mapFieldErrors(
      [
        { field: 'apps[1].resources.cpu', message: 'must be a CPU quantity such as 500m or 2' },
        { field: 'apps[0].env.1BAD', message: 'not a valid name' },
        { field: 'members[0].email', message: 'not an email' },
        { field: 'quota', message: 'over the policy' },
        { field: 'mystery', message: 'unknown' },
        { field: '', message: 'body is not JSON' },
      ],
      known,
    );
    expect(mapped.get('apps[1].resources.cpu')).toEqual(['must be a CPU quantity such as 500m or 2']);
    expect(mapped.get('apps[0].env')).toEqual(['not a valid name']);
    expect(mapped.get('members[0].email')).toEqual(['not an email']);
    expect(mapped.get('')).toEqual(['quota: over the policy', 'mystery: unknown', 'body is not JSON']);
  });

  it('sends an app error for a removed row to the apps group', () => {
    const mapped = mapFieldErrors([{ field: 'apps[5].name', message: 'required' }], known);
    expect(mapped.get('apps')).toEqual(['required']);
  });
});

describe('wholeNumber', () => {
  it('never reads an emptied field as 0', () => {
    expect(wholeNumber('')).toMatch(/required/);
    expect(wholeNumber('  ')).toMatch(/required/);
    expect(wholeNumber('0')).toBe(0);
    expect(wholeNumber(' 12 ')).toBe(12);
    expect(wholeNumber('1.5')).toMatch(/whole number/);
  });
});
