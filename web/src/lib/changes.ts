import type { EnvironmentSpec } from '../api/environments';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The JSON merge patch (RFC 7396) that turns `before` into `after`: changed
 * keys with their new value (objects patched key by key, arrays replaced
 * whole), removed keys as null. Empty when nothing changed.
 */
export function mergePatch(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(after)) {
    const old = before[key];
    if (same(old, value)) continue;
    patch[key] = isObject(old) && isObject(value) ? mergePatch(old, value) : value;
  }
  for (const key of Object.keys(before)) {
    if (!(key in after) && before[key] !== undefined && before[key] !== null) patch[key] = null;
  }
  return patch;
}

/** The fields whose change the policy judges like a create (the contract's "bounds"). */
const BOUNDS = ['quota', 'limits', 'network', 'podSecurity', 'ttl', 'template'] as const;

/** Whether a patch changes bounds: only those can need an admin's approval. */
export function changesBounds(patch: Record<string, unknown>): boolean {
  return BOUNDS.some((key) => key in patch);
}

const LABELS: Record<string, string> = {
  description: 'Description',
  template: 'Template',
  'quota.cpu': 'CPU quota',
  'quota.memory': 'Memory quota',
  'quota.storage': 'Storage quota',
  'quota.ephemeralStorage': 'Ephemeral storage quota',
  'quota.pods': 'Pod limit',
  'limits.defaultCpu': 'Default CPU per container',
  'limits.defaultMemory': 'Default memory per container',
  'network.isolation': 'Network',
  podSecurity: 'Pod security',
  ttl: 'Lifetime',
};

/** Flattens a value into `path -> text`; apps are keyed by name, members by email. */
function flatten(value: unknown, prefix: string, out: Map<string, string>): void {
  if (Array.isArray(value)) {
    value.forEach((item: unknown, index) => {
      const key = isObject(item) ? String(item.name ?? item.email ?? index) : String(index);
      flatten(item, `${prefix}[${key}]`, out);
    });
  } else if (isObject(value)) {
    for (const [key, item] of Object.entries(value)) flatten(item, prefix ? `${prefix}.${key}` : key, out);
  } else if (value !== undefined && value !== null) {
    out.set(prefix, String(value));
  }
}

function entity(spec: EnvironmentSpec, kind: 'apps' | 'members'): Map<string, Json> {
  const rows: { name?: string; email?: string }[] = spec[kind] ?? [];
  return new Map(rows.map((row) => [String(row.name ?? row.email), row as Json]));
}

/**
 * What a change does, one sentence each, for people: settings as
 * "CPU quota: 2 → 4", apps and members added, removed or changed by name.
 */
export function describeChanges(before: EnvironmentSpec, after: EnvironmentSpec): string[] {
  const lines: string[] = [];
  const settings = (spec: EnvironmentSpec) => {
    const out = new Map<string, string>();
    const rest: Record<string, unknown> = { ...spec };
    delete rest.apps;
    delete rest.members;
    delete rest.name;
    flatten(rest, '', out);
    return out;
  };
  const a = settings(before);
  const b = settings(after);
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const old = a.get(key);
    const now = b.get(key);
    if (old === now) continue;
    const label = LABELS[key] ?? key;
    lines.push(`${label}: ${old ?? 'not set'} → ${now ?? 'not set'}`);
  }
  for (const kind of ['apps', 'members'] as const) {
    const was = entity(before, kind);
    const is = entity(after, kind);
    const noun = kind === 'apps' ? 'App' : 'Member';
    for (const [key, row] of is) {
      const old = was.get(key);
      if (old === undefined) {
        lines.push(kind === 'apps' ? `${noun} ${key} added` : `${noun} ${key} added as ${(row as { role: string }).role}`);
      } else if (!same(old, row)) {
        const o = new Map<string, string>();
        const n = new Map<string, string>();
        flatten(old, '', o);
        flatten(row, '', n);
        const parts = [...new Set([...o.keys(), ...n.keys()])]
          .filter((field) => o.get(field) !== n.get(field))
          .map((field) => `${field} ${o.get(field) ?? 'not set'} → ${n.get(field) ?? 'not set'}`);
        lines.push(`${noun} ${key}: ${parts.join(', ')}`);
      }
    }
    for (const key of was.keys()) if (!is.has(key)) lines.push(`${noun} ${key} removed`);
  }
  return lines;
}

/** The preview's warnings that say the change will wait for an admin. */
export function approvalWarnings(warnings: string[]): string[] {
  return warnings.filter((w) => w.startsWith('Needs an admin') || w.startsWith('Will be refused'));
}
